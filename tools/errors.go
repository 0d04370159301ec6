package tools

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/gpu-mcp/gpu-mcp/fleet/remote"
	"github.com/gpu-mcp/gpu-mcp/providers"
)

// ErrorResult is the structured content of every error result (isError), whatever the tool and
// whoever found the fault: what went wrong, what to do, and whether the same call may simply be
// sent again. Client authors can branch on kind and retryable instead of parsing the text.
type ErrorResult struct {
	Kind      providers.ErrorKind `json:"kind" jsonschema:"enum=auth,enum=not_found,enum=invalid,enum=conflict,enum=unsupported,enum=rate_limited,enum=unavailable,enum=rejected,enum=unknown_outcome"`
	Provider  string              `json:"provider" jsonschema_description:"the vendor at fault, or gpu-mcp"`
	Message   string              `json:"message" jsonschema_description:"what went wrong"`
	Remedy    string              `json:"remedy" jsonschema_description:"what to do"`
	Retryable bool                `json:"retryable" jsonschema_description:"true: the same call may succeed later (rate_limited, unavailable); an unknown_outcome is never retryable: check list_instances first"`
	Field     string              `json:"field,omitempty" jsonschema_description:"the argument at fault"`
	Value     any                 `json:"value,omitempty" jsonschema_description:"the value it was given"`
	Accepted  string              `json:"accepted,omitempty" jsonschema_description:"what the argument accepts"`
}

// errorHome is the tool whose output schema writes the error's shape out in full.
const errorHome = "list_providers"

// errorRequired are the properties every error result has.
var errorRequired = []string{"kind", "provider", "message", "remedy", "retryable"}

// asError is err as a *providers.Error: itself when it is one, else gpu-mcp's own error, of
// kind unavailable (a store that failed, a cancelled call), or unknown_outcome when changes is
// set and the call may have changed something before it failed.
func asError(err error, changes bool) *providers.Error {
	var pe *providers.Error
	if errors.As(err, &pe) {
		return pe
	}
	if errors.Is(err, remote.ErrJobNotFound) {
		return &providers.Error{Kind: providers.KindNotFound, Provider: providers.Own, Field: "job_id", Message: err.Error(), Err: err,
			Remedy: "use a job_id that start_job returned for this instance"}
	}
	kind := providers.KindUnavailable
	if changes && !errors.Is(err, context.Canceled) {
		kind = providers.KindUnknown
	}
	return &providers.Error{Kind: kind, Provider: providers.Own, Message: err.Error(), Err: err}
}

// errorText renders an error for the agent on one line, as lists show each provider's failure.
func errorText(err error) string { return asError(err, false).Error() }

// errorResult is the answer of a call that failed: a text of one or two lines (what went wrong;
// what to do) and the same in structured form. changes is set for the tools that change
// something.
func errorResult(err error, changes bool) *mcp.CallToolResult {
	e := asError(err, changes)
	out := ErrorResult{Kind: e.Kind, Provider: orDefault(e.Provider, providers.Own), Message: e.Headline(), Remedy: e.RemedyText(),
		Retryable: e.Retryable(), Field: e.Field, Value: e.Value, Accepted: e.Accepted}
	text := sentence(out.Message)
	if out.Remedy != "" {
		text += "\n" + sentence(out.Remedy)
	}
	return &mcp.CallToolResult{IsError: true, Content: []mcp.Content{mcp.NewTextContent(text)}, StructuredContent: out}
}

// sentence ends s with a full stop.
func sentence(s string) string {
	s = strings.TrimSpace(s)
	if s != "" && !strings.HasSuffix(s, ".") && !strings.HasSuffix(s, "?") && !strings.HasSuffix(s, "!") {
		s += "."
	}
	return s
}

// invalidf is the error for bad input that is not one argument's value (a combination of
// arguments, say).
func invalidf(format string, args ...any) error {
	return &providers.Error{Kind: providers.KindInvalid, Provider: providers.Own, Message: fmt.Sprintf(format, args...)}
}

// badArg is the error for an argument whose value is not accepted: it names the argument, the
// value and what is accepted, once each.
func badArg(field string, value any, accepted string) *providers.Error {
	return &providers.Error{Kind: providers.KindInvalid, Provider: providers.Own, Field: field, Value: value, Accepted: accepted,
		Message: fmt.Sprintf("%s %s is not accepted", field, valueText(value)), Remedy: "use " + accepted}
}

// argInvalid is the error for an argument that is wrong for a reason its value alone does not
// show (it names another provider's offer, it needs another argument): why, and what to do.
func argInvalid(field string, value any, why, remedy string) *providers.Error {
	return &providers.Error{Kind: providers.KindInvalid, Provider: providers.Own, Field: field, Value: value,
		Message: why, Remedy: remedy}
}

// valueText writes a value as the agent sent it: strings quoted, numbers bare.
func valueText(v any) string {
	switch x := v.(type) {
	case string:
		return fmt.Sprintf("%q", x)
	case nil:
		return "null"
	}
	return fmt.Sprint(v)
}

// checkEnums enforces the enum values that the input schema announces (the jsonschema tags
// enum=...), so that a client that does not validate against the schema is told, as any
// other bad value, the argument, its value and what is accepted. An argument without
// omitempty is required.
func checkEnums(v reflect.Value) error {
	for _, f := range reflect.VisibleFields(v.Type()) {
		if f.Anonymous || f.Type.Kind() != reflect.String {
			continue
		}
		var values []string
		for _, kv := range strings.Split(f.Tag.Get("jsonschema"), ",") {
			if val, ok := strings.CutPrefix(kv, "enum="); ok {
				values = append(values, val)
			}
		}
		if len(values) == 0 {
			continue
		}
		name, opts, _ := strings.Cut(f.Tag.Get("json"), ",")
		got := v.FieldByIndex(f.Index).String()
		switch {
		case got == "" && strings.Contains(opts, "omitempty"):
		case got == "":
			return &providers.Error{Kind: providers.KindInvalid, Provider: providers.Own, Field: name, Accepted: orList(values),
				Message: name + " is required", Remedy: "use " + orList(values)}
		case !slices.Contains(values, got):
			return badArg(name, got, orList(values))
		}
	}
	return nil
}

// orList writes "a, b or c".
func orList(items []string) string {
	if len(items) < 2 {
		return strings.Join(items, "")
	}
	return strings.Join(items[:len(items)-1], ", ") + " or " + items[len(items)-1]
}

// count writes n things: "1 file", "3 files".
func count(n int, thing string) string {
	if n == 1 {
		return "1 " + thing
	}
	return strconv.Itoa(n) + " " + thing + "s"
}
