package tools

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

// A shape that several results embed is described in its home tool's output schema, each of
// its described fields with its own words, and given bare in the others, whose schema names
// the home; nothing an agent reads is lost, only repeated less.
func TestSharedFieldsAreDescribedInTheirHomeOnly(t *testing.T) {
	type schema struct {
		Description string                     `json:"description"`
		Properties  map[string]json.RawMessage `json:"properties"`
	}
	served := map[string]schema{}
	for _, tool := range All(&Deps{}) {
		var s schema
		if err := json.Unmarshal(OutputSchema(tool.Name, tool.OutputType), &s); err != nil {
			t.Fatal(err)
		}
		served[tool.Name] = s
	}
	// description is a property's own description; described, whether it or any inside it has one.
	description := func(raw json.RawMessage) string {
		var p struct {
			Description string `json:"description"`
		}
		json.Unmarshal(raw, &p)
		return p.Description
	}
	described := func(raw json.RawMessage) bool { return strings.Contains(string(raw), `"description"`) }
	embedders := map[reflect.Type]map[string]bool{}
	for _, tool := range All(&Deps{}) {
		if tool.OutputType.Kind() != reflect.Struct {
			continue
		}
		s := served[tool.Name]
		for _, f := range reflect.VisibleFields(tool.OutputType) {
			if len(f.Index) < 2 || f.Anonymous || f.Tag.Get("jsonschema") == "-" {
				continue
			}
			shape := tool.OutputType.FieldByIndex(f.Index[:len(f.Index)-1]).Type
			home, shared := describedOnce[shape]
			if !shared {
				continue
			}
			if embedders[shape] == nil {
				embedders[shape] = map[string]bool{}
			}
			embedders[shape][tool.Name] = true
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			p, ok := s.Properties[name]
			if !ok {
				t.Errorf("%s: %s is not in the output schema", tool.Name, name)
				continue
			}
			if home == tool.Name {
				if want := f.Tag.Get("jsonschema_description"); want != "" && description(p) != want {
					t.Errorf("%s, the home of %s: %s lacks its description %q: %s", home, shape.Name(), name, want, p)
				}
				continue
			}
			if described(p) {
				t.Errorf("%s: %s (of %s) is described here as well as in %s: %s", tool.Name, name, shape.Name(), home, p)
			}
			if !strings.Contains(s.Description, home) {
				t.Errorf("%s: the schema does not say that %s describes %s: %q", tool.Name, home, name, s.Description)
			}
			if _, ok := served[home].Properties[name]; !ok {
				t.Errorf("%s, the home of %s, has no %s", home, shape.Name(), name)
			}
		}
	}
	for shape := range describedOnce {
		if len(embedders[shape]) < 2 || !embedders[shape][describedOnce[shape]] {
			t.Errorf("%s is embedded by %v: not by its home and another", shape.Name(), embedders[shape])
		}
	}
	// The deprecated token name stays in results only: no schema shows it.
	for name, s := range served {
		if _, ok := s.Properties["confirmation_token"]; ok {
			t.Errorf("%s: the output schema shows confirmation_token", name)
		}
	}
}
