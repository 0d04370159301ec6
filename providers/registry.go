package providers

import (
	"fmt"
	"sort"
	"strings"
)

// Registry holds the configured providers by name. It is the one layer that owns the
// provider prefix of identifiers: each adapter is wrapped so that everything above the
// registry sees provider-qualified ids only ("huixingyun:gpu-105b...": offers, images,
// instances, launch results, saved images), and the adapter sees its vendor-local ones only.
type Registry struct {
	byName map[string]Provider
	names  []string
}

// NewRegistry returns a registry of ps, each wrapped to qualify its ids; names must be unique.
func NewRegistry(ps ...Provider) (*Registry, error) {
	r := &Registry{byName: map[string]Provider{}}
	for _, p := range ps {
		n := p.Name()
		if _, dup := r.byName[n]; dup {
			return nil, fmt.Errorf("provider %q registered twice", n)
		}
		r.byName[n] = qualify(p)
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
			Remedy: "no provider is configured; list_providers says how to configure one"}
	}
	return nil, &Error{Kind: KindInvalid, Provider: "gpu-mcp", Message: fmt.Sprintf("unknown provider %q", name),
		Remedy: "configured providers: " + strings.Join(r.names, ", ")}
}

// Resolve finds the provider of a provider-qualified id ("provider:local"), to which the id
// is then given as it is.
func (r *Registry) Resolve(id string) (Provider, error) {
	name, _, err := SplitID(id)
	if err != nil {
		return nil, err
	}
	return r.Get(name)
}

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
