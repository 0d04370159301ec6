package providers

import (
	"strings"
	"testing"
)

func TestSplitID(t *testing.T) {
	good := map[string][2]string{
		"huixingyun:gpu-105b":                       {"huixingyun", "gpu-105b"},
		"datenfab:host-cluster/2/1":                 {"datenfab", "host-cluster/2/1"},
		"chenyu:pod:abc@v1":                         {"chenyu", "pod:abc@v1"},
		"datenfab:images.neolink-ai.com/a/b:2.15.0": {"datenfab", "images.neolink-ai.com/a/b:2.15.0"},
	}
	for in, want := range good {
		p, l, err := SplitID(in)
		if err != nil || p != want[0] || l != want[1] {
			t.Errorf("SplitID(%q) = %q, %q, %v", in, p, l, err)
		}
	}
	bad := map[string]string{
		"gpu-105b":                      "no provider prefix",
		":x":                            "empty",
		"chenyu:":                       "empty",
		"chenyu:a\nb":                   "control character",
		"x:" + strings.Repeat("a", 600): "longer than",
	}
	for in, want := range bad {
		_, _, err := SplitID(in)
		if KindOf(err) != KindInvalid || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "provider:vendor-id") {
			t.Errorf("SplitID(%.20q): %v, want an invalid error containing %q and the accepted form", in, err, want)
		}
	}
}

// stub is a Provider that only has a name; the registry needs no more.
type stub struct {
	Provider
	name string
}

func (s stub) Name() string { return s.name }

func TestRegistryResolve(t *testing.T) {
	r, err := NewRegistry()
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := r.Resolve("chenyu:x"); err == nil || !strings.Contains(err.Error(), "HUIXINGYUN_TOKEN") {
		t.Errorf("empty registry: %v", err)
	}
	if _, err := NewRegistry(stub{name: "a"}, stub{name: "a"}); err == nil {
		t.Error("a provider registered twice was accepted")
	}
	r, _ = NewRegistry(stub{name: "zeta"}, stub{name: "alpha"})
	if got := strings.Join(r.Names(), ","); got != "alpha,zeta" {
		t.Errorf("names %s", got)
	}
	p, local, err := r.Resolve("zeta:inst-1:x")
	if err != nil || p.Name() != "zeta" || local != "inst-1:x" {
		t.Errorf("resolve: %v %q %v", p, local, err)
	}
	if _, _, err := r.Resolve("gamma:x"); err == nil || !strings.Contains(err.Error(), "configured providers: alpha, zeta") {
		t.Errorf("unknown provider: %v", err)
	}
}
