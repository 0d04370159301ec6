// Package vendors is the one list of the GPU clouds gpu-mcp knows. The command, the demo, the
// usage text, the hints that say how to configure a provider, the secrets kept out of the logs
// and the cross-vendor tests all go through it: a new cloud is its adapter package (with its
// emulator and its providers.Vendor) and one line here.
package vendors

import (
	"fmt"
	"net/url"
	"slices"
	"strings"

	"github.com/caarlos0/env/v11"

	"github.com/gpu-mcp/gpu-mcp/providers"
	"github.com/gpu-mcp/gpu-mcp/providers/chenyu"
	"github.com/gpu-mcp/gpu-mcp/providers/datenfab"
	"github.com/gpu-mcp/gpu-mcp/providers/emulated"
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

// Load reads v's configuration from environ, under v.EnvPrefix. A variable whose name ends in
// _URL (a vendor's base URL) must be an http or https URL with a host: a typo there would
// otherwise show only at the first call, as a vendor that cannot be reached.
func Load(v providers.Vendor, environ map[string]string) (providers.VendorConfig, error) {
	cfg := v.Config()
	if err := env.ParseWithOptions(cfg, env.Options{Environment: environ, Prefix: v.EnvPrefix}); err != nil {
		return nil, fmt.Errorf("%s configuration: %w", v.Name, err)
	}
	for _, name := range Variables(v) {
		if val := environ[name]; strings.HasSuffix(name, "_URL") && val != "" {
			if err := CheckURL(name, val); err != nil {
				return nil, err
			}
		}
	}
	return cfg, nil
}

// CheckURL refuses a URL that is not http or https with a host, naming the variable it came from.
func CheckURL(name, val string) error {
	u, err := url.Parse(val)
	if err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != "" {
		return nil
	}
	return fmt.Errorf("%s %q is not accepted; use an http or https URL with a host, such as https://api.example.com (unset: the vendor's own)", name, val)
}

// Emulated is a running emulator of a vendor, with what configures gpu-mcp for it.
type Emulated struct {
	emulated.Server
	// Env holds the variables, by their full names, that point gpu-mcp at the emulator.
	Env map[string]string
	// Config is Env as Load reads it.
	Config providers.VendorConfig
}

// Emulate starts v's emulator on loopback.
func Emulate(v providers.Vendor, o emulated.Options) (*Emulated, error) {
	srv, vars := v.Emulate(o)
	e := &Emulated{Server: srv, Env: map[string]string{}}
	for k, val := range vars {
		e.Env[v.EnvPrefix+k] = val
	}
	cfg, err := Load(v, e.Env)
	if err != nil {
		srv.Close()
		return nil, err
	}
	e.Config = cfg
	return e, nil
}

// EnvLines is Env as NAME=value lines, for a process's environment.
func (e *Emulated) EnvLines() []string {
	var out []string
	for k, v := range e.Env {
		out = append(out, k+"="+v)
	}
	slices.Sort(out)
	return out
}

// Variables names every environment variable v reads, sorted.
func Variables(v providers.Vendor) []string {
	params, err := env.GetFieldParamsWithOptions(v.Config(), env.Options{Prefix: v.EnvPrefix})
	if err != nil {
		panic(fmt.Sprintf("%s: the configuration is not a struct with env tags: %v", v.Name, err))
	}
	out := make([]string, len(params))
	for i, p := range params {
		out[i] = p.Key
	}
	slices.Sort(out)
	return out
}
