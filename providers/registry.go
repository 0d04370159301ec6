package providers

import (
	"fmt"
	"sort"
	"strings"
)

// Registry holds the configured providers by name.
type Registry struct {
	byName map[string]Provider
	names  []string
}

// NewRegistry returns a registry of ps; names must be unique.
func NewRegistry(ps ...Provider) (*Registry, error) {
	r := &Registry{byName: map[string]Provider{}}
	for _, p := range ps {
		n := p.Name()
		if _, dup := r.byName[n]; dup {
			return nil, fmt.Errorf("provider %q registered twice", n)
		}
		r.byName[n] = p
		r.names = append(r.names, n)
	}
	sort.Strings(r.names)
	return r, nil
}

// Names lists the registered providers, sorted.
func (r *Registry) Names() []string { return append([]string(nil), r.names...) }

// All returns the providers in name order.
func (r *Registry) All() []Provider {
	out := make([]Provider, 0, len(r.names))
	for _, n := range r.names {
		out = append(out, r.byName[n])
	}
	return out
}

// Len is the number of providers.
func (r *Registry) Len() int { return len(r.names) }

// Get returns the provider called name.
func (r *Registry) Get(name string) (Provider, error) {
	if p, ok := r.byName[name]; ok {
		return p, nil
	}
	if len(r.names) == 0 {
		return nil, &Error{Kind: KindInvalid, Provider: "gpu-mcp", Message: fmt.Sprintf("provider %q is not configured", name),
			Remedy: "no provider is configured: " + ConfigureHint}
	}
	return nil, &Error{Kind: KindInvalid, Provider: "gpu-mcp", Message: fmt.Sprintf("unknown provider %q", name),
		Remedy: "configured providers: " + strings.Join(r.names, ", ")}
}

// Resolve splits a provider-qualified id ("provider:local") and finds its provider.
func (r *Registry) Resolve(id string) (Provider, string, error) {
	name, local, err := SplitID(id)
	if err != nil {
		return nil, "", err
	}
	p, err := r.Get(name)
	if err != nil {
		return nil, "", err
	}
	return p, local, nil
}

// ConfigureHint says how to enable a provider.
const ConfigureHint = "set HUIXINGYUN_TOKEN, or DATENFAB_TOKEN and DATENFAB_NAMESPACE, or CHENYU_API_KEY in the server's environment (or start it with --demo to try the built-in emulators)"

// QualifyID joins a provider name and a vendor-local id.
func QualifyID(provider, local string) string { return provider + ":" + local }

// maxIDLen bounds identifiers; no vendor id comes near it.
const maxIDLen = 512

// SplitID parses "provider:local". The local part may itself contain colons.
func SplitID(id string) (provider, local string, err error) {
	bad := func(why string) error {
		return &Error{Kind: KindInvalid, Provider: "gpu-mcp", Message: fmt.Sprintf("malformed id %q: %s", truncate(id, 80), why),
			Remedy: "ids look like provider:vendor-id (e.g. huixingyun:gpu-105b638...), as list tools return them"}
	}
	if len(id) > maxIDLen {
		return "", "", bad(fmt.Sprintf("longer than %d characters", maxIDLen))
	}
	provider, local, ok := strings.Cut(strings.TrimSpace(id), ":")
	if !ok {
		return "", "", bad("no provider prefix")
	}
	if provider == "" || local == "" {
		return "", "", bad("empty provider or vendor id")
	}
	for _, c := range local {
		if c < 0x20 || c == 0x7f {
			return "", "", bad("control character")
		}
	}
	return provider, local, nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
