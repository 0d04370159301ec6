// Package vendors is the one list of the GPU clouds gpu-mcp knows. The command, the demo, the
// usage text, the hints that say how to configure a provider, the secrets kept out of the logs
// and the cross-vendor tests all go through it: a new cloud is its adapter package (with its
// emulator and its providers.Vendor) and one line here.
package vendors

import (
	"fmt"
	"reflect"
	"slices"
	"strings"

	"github.com/caarlos0/env/v11"

	"github.com/gpu-mcp/gpu-mcp/providers"
	"github.com/gpu-mcp/gpu-mcp/providers/chenyu"
	"github.com/gpu-mcp/gpu-mcp/providers/datenfab"
	"github.com/gpu-mcp/gpu-mcp/providers/huixingyun"
)

// list is every vendor, in the order people are told of them.
var list = []providers.Vendor{
	huixingyun.Vendor,
	datenfab.Vendor,
	chenyu.Vendor,
}

// All returns the vendors gpu-mcp knows.
func All() []providers.Vendor { return slices.Clone(list) }

// WithExtra adds vendors to the list for the rest of the process. Test binaries call it from
// TestMain, before anything reads the list, so that the cross-vendor suites also run against
// a test-only vendor; nothing else may.
func WithExtra(vs ...providers.Vendor) { list = append(list, vs...) }

// Names lists the vendors' names.
func Names() []string {
	out := make([]string, len(list))
	for i, v := range list {
		out[i] = v.Name
	}
	return out
}

// Titles names the vendors for people: "HuiXingYun, Datenfab and Chenyu".
func Titles() string {
	out := make([]string, len(list))
	for i, v := range list {
		out[i] = v.Title
	}
	if len(out) < 2 {
		return strings.Join(out, "")
	}
	return strings.Join(out[:len(out)-1], ", ") + " and " + out[len(out)-1]
}

// ConfigureHint says how to enable a provider.
func ConfigureHint() string {
	hints := make([]string, len(list))
	for i, v := range list {
		hints[i] = v.Hint
	}
	return "set " + strings.Join(hints, ", or ") + " in the server's environment (or start it with --demo to try the built-in emulators)"
}

// Load reads v's configuration from environ, under v.EnvPrefix.
func Load(v providers.Vendor, environ map[string]string) (providers.VendorConfig, error) {
	cfg := v.Config()
	if err := env.ParseWithOptions(cfg, env.Options{Environment: environ, Prefix: v.EnvPrefix}); err != nil {
		return nil, fmt.Errorf("%s configuration: %w", v.Name, err)
	}
	return cfg, nil
}

// Environ is the environment that configures v as cfg, the inverse of Load: the variables
// cfg's env tags name, with the values it holds (empty ones left out).
func Environ(v providers.Vendor, cfg providers.VendorConfig) map[string]string {
	out := map[string]string{}
	environ(reflect.ValueOf(cfg).Elem(), v.EnvPrefix, func(name string, val reflect.Value) {
		if !val.IsZero() {
			out[name] = fmt.Sprint(val.Interface())
		}
	})
	return out
}

// Variables names every environment variable v reads, sorted.
func Variables(v providers.Vendor) []string {
	var out []string
	environ(reflect.ValueOf(v.Config()).Elem(), v.EnvPrefix, func(name string, _ reflect.Value) { out = append(out, name) })
	slices.Sort(out)
	return out
}

// environ calls f with the variable name and the value of every field of s that an env tag
// names, nested structs (envPrefix) included.
func environ(s reflect.Value, prefix string, f func(name string, val reflect.Value)) {
	t := s.Type()
	for i := range t.NumField() {
		field, val := t.Field(i), s.Field(i)
		if field.Type.Kind() == reflect.Struct {
			if p, ok := field.Tag.Lookup("envPrefix"); ok {
				environ(val, prefix+p, f)
			}
			continue
		}
		if name, _, _ := strings.Cut(field.Tag.Get("env"), ","); name != "" && name != "-" {
			f(prefix+name, val)
		}
	}
}
