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
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/invopop/jsonschema"
	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/gpu-mcp/gpu-mcp/fleet"
	"github.com/gpu-mcp/gpu-mcp/providers"
	"github.com/gpu-mcp/gpu-mcp/schemas"
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
	t.handle = rawHandler(name, !hints.ReadOnly, func(ctx context.Context, in *In) *mcp.CallToolResult {
		out, text, err := h(ctx, in)
		return toolResult(out, text, err, !hints.ReadOnly)
	})
	return t
}

// rawHandler decodes and checks a tool's arguments and hands them to h, which answers with
// the tool result itself; a panic in h becomes an isError result.
func rawHandler[In any](name string, changes bool, h func(ctx context.Context, in *In) *mcp.CallToolResult) func(ctx context.Context, raw json.RawMessage) *mcp.CallToolResult {
	return func(ctx context.Context, raw json.RawMessage) (res *mcp.CallToolResult) {
		defer func() {
			if r := recover(); r != nil {
				res = errorResult(&providers.Error{Kind: providers.KindUnknown, Provider: providers.Own,
					Message: fmt.Sprintf("%s failed inside gpu-mcp (%v); nothing further was attempted", name, r),
					Remedy:  "check with list_instances before retrying a change"}, changes)
			}
		}()
		in := new(In)
		if err := decodeArgs(raw, in); err != nil {
			return errorResult(err, changes)
		}
		// The schema's bounds first: they name the argument, its value and what is accepted.
		if err := checkLimits(reflect.ValueOf(in).Elem()); err != nil {
			return errorResult(err, changes)
		}
		if err := checkEnums(reflect.ValueOf(in).Elem()); err != nil {
			return errorResult(err, changes)
		}
		if v, ok := any(in).(interface{ validate() error }); ok {
			if err := v.validate(); err != nil {
				return errorResult(err, changes)
			}
		}
		return h(ctx, in)
	}
}

// toolResult is a handler's answer as a tool result: its error an isError result (changes is
// set for the tools that change something).
func toolResult(out any, text string, err error, changes bool) *mcp.CallToolResult {
	var ir *inputRequired
	if errors.As(err, &ir) {
		return ir.res
	}
	if err != nil {
		return errorResult(err, changes)
	}
	if g, ok := out.(interface{ answersAlone() (Outcome, bool) }); ok {
		if o, alone := g.answersAlone(); alone {
			out = o
		}
	}
	return &mcp.CallToolResult{
		Content:           []mcp.Content{mcp.NewTextContent(text)},
		StructuredContent: out,
	}
}

// decodeArgs decodes tool arguments strictly: unknown fields and wrong types are errors that
// name the argument and what is accepted.
func decodeArgs(raw json.RawMessage, v any) error {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		raw = []byte("{}")
	}
	names := argNames(reflect.TypeOf(v).Elem())
	accepted, use := strings.Join(names, ", "), "use only "+strings.Join(names, ", ")
	if len(names) == 0 {
		accepted, use = "no arguments", "send {}: this tool takes no arguments"
	}
	if raw[0] != '{' {
		return &providers.Error{Kind: providers.KindInvalid, Provider: providers.Own, Accepted: accepted,
			Message: "the arguments are not a JSON object", Remedy: "send an object of named arguments; " + use}
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil {
		if dec.More() {
			return invalidf("the arguments are more than one JSON object")
		}
		return nil
	}
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return badArg(te.Field, argValue(raw, te.Field), jsonKind(te.Type))
	}
	if msg, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		field, _ := strconv.Unquote(msg)
		return &providers.Error{Kind: providers.KindInvalid, Provider: providers.Own, Field: field, Accepted: accepted,
			Message: "there is no argument " + msg, Remedy: use}
	}
	return invalidf("the arguments are not valid JSON: %v", err)
}

// argValue is the value the arguments raw gave the top-level argument name, as JSON decodes it.
func argValue(raw json.RawMessage, name string) any {
	var args map[string]any
	if json.Unmarshal(raw, &args) != nil {
		return nil
	}
	return args[name]
}

// checkLimits enforces the lengths and bounds that the input schema announces (the
// jsonschema tags maxLength, minimum, maximum), so that a client that does not validate
// against the schema meets the same limits. Too short an id is left to the tool, whose
// parsing says better what is wrong with it.
func checkLimits(v reflect.Value) error {
	for _, l := range limitsOf(v.Type()) {
		fv := v.FieldByIndex(l.index)
		if fv.Kind() == reflect.Pointer {
			if fv.IsNil() {
				continue
			}
			fv = fv.Elem()
		}
		switch fv.Kind() {
		case reflect.String:
			if n := utf8.RuneCountInString(fv.String()); l.hasMaxLength && n > l.maxLength {
				return &providers.Error{Kind: providers.KindInvalid, Provider: providers.Own, Field: l.name,
					Accepted: fmt.Sprintf("at most %d characters", l.maxLength),
					Message:  fmt.Sprintf("%s is %d characters long", l.name, n), Remedy: fmt.Sprintf("use at most %d characters", l.maxLength)}
			}
		case reflect.Int, reflect.Int64, reflect.Float64:
			x := fv.Convert(reflect.TypeFor[float64]()).Float()
			if (l.hasMaximum && x > l.maximum) || (l.hasMinimum && x < l.minimum) {
				return badArg(l.name, fv.Interface(), rangeText(l.minimum, l.hasMinimum, l.maximum, l.hasMaximum))
			}
		}
	}
	return nil
}

// fieldLimits are the bounds of one argument, from its jsonschema tag.
type fieldLimits struct {
	index                                []int
	name                                 string
	maxLength                            int
	minimum, maximum                     float64
	hasMaxLength, hasMinimum, hasMaximum bool
}

// argLimits holds the fieldLimits of each arguments type, read from its tags once.
var argLimits sync.Map // reflect.Type -> []fieldLimits

func limitsOf(t reflect.Type) []fieldLimits {
	if ls, ok := argLimits.Load(t); ok {
		return ls.([]fieldLimits)
	}
	var ls []fieldLimits
	for _, f := range reflect.VisibleFields(t) {
		if f.Anonymous {
			continue
		}
		l := fieldLimits{index: f.Index}
		l.name, _, _ = strings.Cut(f.Tag.Get("json"), ",")
		for _, kv := range strings.Split(f.Tag.Get("jsonschema"), ",") {
			k, val, _ := strings.Cut(kv, "=")
			n, err := strconv.ParseFloat(val, 64)
			if err != nil {
				continue
			}
			switch k {
			case "maxLength":
				l.maxLength, l.hasMaxLength = int(n), true
			case "minimum":
				l.minimum, l.hasMinimum = n, true
			case "maximum":
				l.maximum, l.hasMaximum = n, true
			}
		}
		if l.hasMaxLength || l.hasMinimum || l.hasMaximum {
			ls = append(ls, l)
		}
	}
	argLimits.Store(t, ls)
	return ls
}

// rangeText says what a bounded number accepts: "0 to 64", "1 or more", "at most 500".
func rangeText(lo float64, hasMin bool, hi float64, hasMax bool) string {
	switch {
	case hasMin && hasMax:
		return fmt.Sprintf("%g to %g", lo, hi)
	case hasMin:
		return fmt.Sprintf("%g or more", lo)
	}
	return fmt.Sprintf("at most %g", hi)
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
		if name != "" && name != "-" && f.Tag.Get("jsonschema") != "-" {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	return names
}

// Schema generates the JSON Schema of a Go type as MCP wants it: inline, no $schema or $id,
// objects closed to properties they do not name. Input schemas are this.
func Schema(t reflect.Type) json.RawMessage {
	return marshalSchema(t, reflectSchema(&jsonschema.Reflector{Anonymous: true, ExpandedStruct: true, DoNotReference: true}, t))
}

func reflectSchema(r *jsonschema.Reflector, t reflect.Type) *jsonschema.Schema {
	s := r.ReflectFromType(t)
	s.Version = ""
	return s
}

func marshalSchema(t reflect.Type, s *jsonschema.Schema) json.RawMessage {
	b, err := json.Marshal(s)
	if err != nil {
		panic(fmt.Sprintf("schema of %s: %v", t, err))
	}
	return b
}

// sharedShapes are the shapes that several tools return. Each is written out in full in the
// output schema of one tool, its home; the others' output schemas give it as an object whose
// description (the field's) says where it is described. A client that validates results
// accepts the same answers, and tools/list does not repeat the shape in every tool.
var sharedShapes = map[reflect.Type]string{
	reflect.TypeFor[providers.Instance](): "get_instance",
	reflect.TypeFor[Plan]():               "launch_instance",
	reflect.TypeFor[fleet.AutoStop]():     "launch_instance",
}

// describedOnce are the shapes that several tools' results embed, each with its home tool: their
// properties are described in the home's output schema only. The other tools give them bare
// (type, enum, format, required), and their schema's description names the homes.
var describedOnce = map[reflect.Type]string{
	reflect.TypeFor[Outcome]():     "launch_instance",
	reflect.TypeFor[Pending]():     "launch_instance",
	reflect.TypeFor[JobInfo]():     "job_status",
	reflect.TypeFor[CopySummary](): "copy_to_instance",
}

// describeOnce strips from s, tool's output schema of type t, the descriptions of the
// properties t embeds from a shape in describedOnce whose home is another tool.
func describeOnce(tool string, t reflect.Type, s *jsonschema.Schema) {
	if t.Kind() != reflect.Struct {
		return
	}
	var homes []string
	for _, f := range reflect.VisibleFields(t) {
		if len(f.Index) < 2 || f.Anonymous {
			continue
		}
		home, shared := describedOnce[t.FieldByIndex(f.Index[:len(f.Index)-1]).Type]
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		p, ok := s.Properties.Get(name)
		if !shared || home == tool || !ok {
			continue
		}
		stripDescriptions(p)
		if !slices.Contains(homes, home) {
			homes = append(homes, home)
		}
	}
	if len(homes) > 0 {
		s.Description = "shared fields: described in " + strings.Join(homes, ", ")
	}
}

func stripDescriptions(s *jsonschema.Schema) {
	if s == nil {
		return
	}
	s.Description = ""
	stripDescriptions(s.Items)
	if s.Properties != nil {
		for p := s.Properties.Oldest(); p != nil; p = p.Next() {
			stripDescriptions(p.Value)
		}
	}
}

// OutputSchema generates the JSON Schema of tool's result of type t: as Schema, but open to
// properties it does not name (results may grow), with the shared shapes (sharedShapes)
// written out only in their home tool, and admitting the error result every tool may answer
// with (ErrorResult): the result's required properties are one branch of an anyOf, the
// error's the other. The error's shape is written out in full in the schema of errorHome, the
// first tool an agent calls; the others give its required properties and say where it is.
func OutputSchema(tool string, t reflect.Type) json.RawMessage {
	r := &jsonschema.Reflector{Anonymous: true, ExpandedStruct: true, DoNotReference: true, AllowAdditionalProperties: true,
		Mapper: func(t reflect.Type) *jsonschema.Schema {
			if home, shared := sharedShapes[t]; shared && home != tool {
				return &jsonschema.Schema{Type: "object"}
			}
			return nil
		}}
	s := reflectSchema(r, t)
	describeOnce(tool, t, s)
	errorShape := &jsonschema.Schema{Required: errorRequired, Description: "isError result, as in " + errorHome}
	if tool == errorHome {
		errorShape = reflectSchema(r, reflect.TypeFor[ErrorResult]())
		errorShape.Type, errorShape.AdditionalProperties = "", nil
		errorShape.Description = "an error result (isError), the same for every tool"
	}
	result := &jsonschema.Schema{Required: s.Required}
	if _, guarded := outcomeField(t); guarded {
		// A plan, or a plan declined, is the Outcome alone (see answersAlone): only its status
		// is sure to be there.
		result.Required = []string{"status"}
	}
	if len(s.Required) == 0 {
		result.Type = "object" // an empty schema would be written as true
	}
	s.AnyOf = []*jsonschema.Schema{result, errorShape}
	s.Required, s.AdditionalProperties = nil, nil
	return marshalSchema(t, s)
}

// MCPTool is the mcp.Tool value of t, with raw schemas and all four hints set. The schemas
// are schemas/' files (which `make schemas` writes from these types, and a test keeps true),
// so that building the server reflects on no type; a tool without its files, which only a
// build whose schemas were not regenerated has, gets them generated.
func (t Tool) MCPTool() mcp.Tool {
	in, out := schemas.Input(t.Name), schemas.Output(t.Name)
	if in == nil || out == nil {
		in, out = Schema(t.InputType), OutputSchema(t.Name, t.OutputType)
	}
	return mcp.Tool{
		Name:            t.Name,
		Title:           t.Title,
		Description:     t.Description,
		RawInputSchema:  in,
		RawOutputSchema: out,
		Annotations: mcp.ToolAnnotation{
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
					return errorResult(invalidf("the arguments cannot be read: %v", err), false), nil
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

// outcomeField is the Outcome a result type embeds, the mark of a guarded tool's result.
func outcomeField(t reflect.Type) (reflect.StructField, bool) {
	if t.Kind() != reflect.Struct {
		return reflect.StructField{}, false
	}
	return t.FieldByName("Outcome")
}
