package tools

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestSchemasUpToDate fails when schemas/ differs from what the code generates.
// Regenerate on purpose with `make schemas` (UPDATE_SCHEMAS=1).
func TestSchemasUpToDate(t *testing.T) {
	dir := filepath.Join("..", "schemas")
	update := os.Getenv("UPDATE_SCHEMAS") == "1"
	want := map[string]bool{}
	for _, tool := range All(&Deps{}) {
		for kind, raw := range map[string]json.RawMessage{"input": Schema(tool.InputType), "output": OutputSchema(tool.Name, tool.OutputType)} {
			var buf bytes.Buffer
			if err := json.Indent(&buf, raw, "", "  "); err != nil {
				t.Fatal(err)
			}
			buf.WriteByte('\n')
			name := tool.Name + "." + kind + ".json"
			want[name] = true
			path := filepath.Join(dir, name)
			if update {
				if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
				continue
			}
			got, err := os.ReadFile(path)
			if err != nil {
				t.Errorf("%s: %v (run make schemas)", path, err)
				continue
			}
			if !bytes.Equal(got, buf.Bytes()) {
				t.Errorf("%s differs from the generated schema: run make schemas and review the diff", path)
			}
		}
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if !want[e.Name()] {
			if update {
				os.Remove(filepath.Join(dir, e.Name()))
				continue
			}
			t.Errorf("schemas/%s belongs to no tool: run make schemas", e.Name())
		}
	}
}

// TestSchemasAreStrictObjects checks what clients rely on: objects, no stray keys accepted,
// described properties.
func TestSchemasAreStrictObjects(t *testing.T) {
	for _, tool := range All(&Deps{}) {
		var s struct {
			Type                 string                    `json:"type"`
			AdditionalProperties *bool                     `json:"additionalProperties"`
			Properties           map[string]map[string]any `json:"properties"`
			Schema               string                    `json:"$schema"`
		}
		if err := json.Unmarshal(Schema(tool.InputType), &s); err != nil {
			t.Fatal(err)
		}
		if s.Type != "object" || s.AdditionalProperties == nil || *s.AdditionalProperties || s.Schema != "" {
			t.Errorf("%s input schema: type %q additionalProperties %v $schema %q", tool.Name, s.Type, s.AdditionalProperties, s.Schema)
		}
		for name, p := range s.Properties {
			if p["description"] == nil {
				t.Errorf("%s.%s has no description", tool.Name, name)
			}
		}
	}
}

// TestSchemaPatternsAcceptWhatTheToolsAccept checks every pattern of an input schema: a client
// that validates arguments against it must not refuse what the tool takes.
func TestSchemaPatternsAcceptWhatTheToolsAccept(t *testing.T) {
	accepted := map[string][]string{"image_name": {"ckpt-1", "e2e-snap:v1", "a", strings.Repeat("x", 64)}}
	refused := map[string][]string{"image_name": {"bad name!", "-leading-dash"}}
	for _, tool := range All(&Deps{}) {
		var s struct {
			Properties map[string]struct {
				Pattern string `json:"pattern"`
			} `json:"properties"`
		}
		if err := json.Unmarshal(Schema(tool.InputType), &s); err != nil {
			t.Fatal(err)
		}
		for name, p := range s.Properties {
			if p.Pattern == "" {
				continue
			}
			re, err := regexp.Compile(p.Pattern)
			if err != nil || !strings.HasPrefix(p.Pattern, "^") || !strings.HasSuffix(p.Pattern, "$") {
				t.Errorf("%s.%s: pattern %q is not an anchored regular expression (%v)", tool.Name, name, p.Pattern, err)
				continue
			}
			if len(accepted[name]) == 0 {
				t.Errorf("%s.%s: no examples to check its pattern with", tool.Name, name)
			}
			for _, v := range accepted[name] {
				if !re.MatchString(v) {
					t.Errorf("%s.%s: pattern %q refuses %q, which the tool takes", tool.Name, name, p.Pattern, v)
				}
			}
			for _, v := range refused[name] {
				if re.MatchString(v) {
					t.Errorf("%s.%s: pattern %q takes %q", tool.Name, name, p.Pattern, v)
				}
			}
		}
	}
}
