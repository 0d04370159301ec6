// Package tools defines gpu-mcp's MCP tools: their arguments and results as Go structs (from
// which the JSON Schemas are generated), their handlers, and the confirmation guard.
package tools

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/invopop/jsonschema"
	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/gpu-mcp/gpu-mcp/providers"
)

// Hints are the four MCP tool annotations, all set explicitly on every tool.
type Hints struct {
	ReadOnly, Destructive, Idempotent, OpenWorld bool
}

// Tool is one MCP tool: its description, schemas, hints and handler.
type Tool struct {
	Name        string
	Title       string
	Description string
	Hints       Hints
	Guarded     bool
	InputType   reflect.Type
	OutputType  reflect.Type
	handle      func(ctx context.Context, raw json.RawMessage) *mcp.CallToolResult
	// long, when set, makes the tool's calls operations under the call budget (operations.go).
	long *longSpec
}

// newTool builds a Tool from a typed handler. The handler's error becomes an isError result.
func newTool[In, Out any](name, title, description string, hints Hints, guarded bool,
	h func(ctx context.Context, in *In) (Out, string, error)) Tool {
	t := Tool{
		Name: name, Title: title, Description: description, Hints: hints, Guarded: guarded,
		InputType:  reflect.TypeFor[In](),
		OutputType: reflect.TypeFor[Out](),
	}
	t.handle = rawHandler(name, func(ctx context.Context, in *In) *mcp.CallToolResult {
		out, text, err := h(ctx, in)
		return toolResult(out, text, err)
	})
	return t
}

// rawHandler decodes and checks a tool's arguments and hands them to h, which answers with
// the tool result itself; a panic in h becomes an isError result.
func rawHandler[In any](name string, h func(ctx context.Context, in *In) *mcp.CallToolResult) func(ctx context.Context, raw json.RawMessage) *mcp.CallToolResult {
	return func(ctx context.Context, raw json.RawMessage) (res *mcp.CallToolResult) {
		defer func() {
			if r := recover(); r != nil {
				res = mcp.NewToolResultError(fmt.Sprintf("%s failed inside gpu-mcp (%v); nothing further was attempted. Check with list_instances before retrying a change.", name, r))
			}
		}()
		in := new(In)
		if err := decodeArgs(raw, in); err != nil {
			return mcp.NewToolResultError(fmt.Sprintf("%s: %v", name, err))
		}
		if v, ok := any(in).(interface{ validate() error }); ok {
			if err := v.validate(); err != nil {
				return mcp.NewToolResultError(fmt.Sprintf("%s: %v", name, err))
			}
		}
		if err := checkLimits(reflect.ValueOf(in).Elem()); err != nil {
			return mcp.NewToolResultError(fmt.Sprintf("%s: %v", name, err))
		}
		return h(ctx, in)
	}
}

// toolResult is a handler's answer as a tool result: its error an isError result.
func toolResult(out any, text string, err error) *mcp.CallToolResult {
	var ir *inputRequired
	if errors.As(err, &ir) {
		return ir.res
	}
	if err != nil {
		return mcp.NewToolResultError(errorText(err))
	}
	return &mcp.CallToolResult{
		Content:           []mcp.Content{mcp.NewTextContent(text)},
		StructuredContent: out,
	}
}

// errorText renders a handler error for the agent. Provider errors carry their own remedy.
func errorText(err error) string {
	var pe *providers.Error
	if errors.As(err, &pe) {
		return pe.Error()
	}
	return err.Error()
}

// invalidf is the error for a bad argument.
func invalidf(format string, args ...any) error {
	return &providers.Error{Kind: providers.KindInvalid, Provider: "gpu-mcp", Message: fmt.Sprintf(format, args...)}
}

// decodeArgs decodes tool arguments strictly: unknown fields and wrong types are errors that
// name the argument and what is accepted.
func decodeArgs(raw json.RawMessage, v any) error {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		raw = []byte("{}")
	}
	if raw[0] != '{' {
		return fmt.Errorf("arguments must be a JSON object")
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil {
		if dec.More() {
			return fmt.Errorf("arguments must be a single JSON object")
		}
		return nil
	}
	accepted := strings.Join(argNames(reflect.TypeOf(v).Elem()), ", ")
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return fmt.Errorf("argument %q: expected %s, got %s (accepted arguments: %s)", te.Field, jsonKind(te.Type), te.Value, accepted)
	}
	if msg, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		return fmt.Errorf("unknown argument %s (accepted arguments: %s)", msg, accepted)
	}
	return fmt.Errorf("arguments are not valid JSON: %v", err)
}

// checkLimits enforces the lengths and bounds that the input schema announces (the
// jsonschema tags maxLength, minimum, maximum), so that a client that does not validate
// against the schema meets the same limits. Too short an id is left to the tool, whose
// parsing says better what is wrong with it.
func checkLimits(v reflect.Value) error {
	t := v.Type()
	for i := range t.NumField() {
		f, fv := t.Field(i), v.Field(i)
		if f.Anonymous && f.Type.Kind() == reflect.Struct {
			if err := checkLimits(fv); err != nil {
				return err
			}
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		limits := map[string]float64{}
		for _, kv := range strings.Split(f.Tag.Get("jsonschema"), ",") {
			k, val, _ := strings.Cut(kv, "=")
			if n, err := strconv.ParseFloat(val, 64); err == nil {
				limits[k] = n
			}
		}
		if fv.Kind() == reflect.Pointer {
			if fv.IsNil() {
				continue
			}
			fv = fv.Elem()
		}
		switch fv.Kind() {
		case reflect.String:
			n := utf8.RuneCountInString(fv.String())
			if m, ok := limits["maxLength"]; ok && float64(n) > m {
				return invalidf("argument %q is longer than %g characters (%d)", name, m, n)
			}
		case reflect.Int, reflect.Int64, reflect.Float64:
			x := fv.Convert(reflect.TypeFor[float64]()).Float()
			if m, ok := limits["maximum"]; ok && x > m {
				return invalidf("argument %q must be at most %g, got %g", name, m, x)
			}
			if m, ok := limits["minimum"]; ok && x < m {
				return invalidf("argument %q must be at least %g, got %g", name, m, x)
			}
		}
	}
	return nil
}

func jsonKind(t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int64, reflect.Int32:
		return "an integer"
	case reflect.Float64, reflect.Float32:
		return "a number"
	case reflect.Slice:
		return "an array"
	}
	return t.Kind().String()
}

// argNames lists the JSON names of a struct's fields, embedded structs included.
func argNames(t reflect.Type) []string {
	var names []string
	for i := range t.NumField() {
		f := t.Field(i)
		if f.Anonymous && f.Type.Kind() == reflect.Struct {
			names = append(names, argNames(f.Type)...)
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name != "" && name != "-" {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	return names
}

// Schema generates the JSON Schema of a Go type as MCP wants it: inline, no $schema or $id.
func Schema(t reflect.Type) json.RawMessage {
	r := &jsonschema.Reflector{Anonymous: true, ExpandedStruct: true, DoNotReference: true}
	s := r.ReflectFromType(t)
	s.Version = ""
	b, err := json.Marshal(s)
	if err != nil {
		panic(fmt.Sprintf("schema of %s: %v", t, err))
	}
	return b
}

// MCPTool is the mcp.Tool value of t, with raw schemas and all four hints set.
func (t Tool) MCPTool() mcp.Tool {
	return mcp.Tool{
		Name:            t.Name,
		Title:           t.Title,
		Description:     t.Description,
		RawInputSchema:  Schema(t.InputType),
		RawOutputSchema: Schema(t.OutputType),
		Annotations: mcp.ToolAnnotation{
			Title:           t.Title,
			ReadOnlyHint:    mcp.ToBoolPtr(t.Hints.ReadOnly),
			DestructiveHint: mcp.ToBoolPtr(t.Hints.Destructive),
			IdempotentHint:  mcp.ToBoolPtr(t.Hints.Idempotent),
			OpenWorldHint:   mcp.ToBoolPtr(t.Hints.OpenWorld),
		},
	}
}

// ServerTool is t ready for server.AddTools.
func (t Tool) ServerTool() server.ServerTool {
	return server.ServerTool{
		Tool: t.MCPTool(),
		Handler: func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			raw := req.Params.RawArguments
			if len(raw) == 0 {
				var err error
				if raw, err = json.Marshal(req.Params.Arguments); err != nil {
					return mcp.NewToolResultError(fmt.Sprintf("%s: unreadable arguments: %v", t.Name, err)), nil
				}
			}
			return t.handle(withProgress(withRoundTrip(ctx, req.Params.MultiRoundTripParams), req.Params.Meta), raw), nil
		},
	}
}

// Call runs t on raw JSON arguments, outside any MCP session.
func (t Tool) Call(ctx context.Context, raw json.RawMessage) *mcp.CallToolResult {
	return t.handle(ctx, raw)
}
