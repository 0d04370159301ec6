package vendors

import (
	"slices"
	"strings"
	"testing"

	"github.com/gpu-mcp/gpu-mcp/providers"
	"github.com/gpu-mcp/gpu-mcp/providers/emulated"
)

func TestTheListNamesPeopleAndSaysHowToConfigure(t *testing.T) {
	if got := Titles(); got != "HuiXingYun, Datenfab and Chenyu" {
		t.Errorf("titles %q", got)
	}
	want := "set HUIXINGYUN_TOKEN, or DATENFAB_TOKEN and DATENFAB_NAMESPACE, or CHENYU_API_KEY in the server's environment (or start it with --demo to try the built-in emulators)"
	if got := ConfigureHint(); got != want {
		t.Errorf("hint %q", got)
	}
	if got := strings.Join(Names(), ","); got != "huixingyun,datenfab,chenyu" {
		t.Errorf("names %s", got)
	}
}

// Every vendor's emulator comes with the variables that configure gpu-mcp for it, which are
// among those the vendor reads, enable it, and name its secrets.
func TestEmulatorsComeWithTheirConfiguration(t *testing.T) {
	for _, v := range All() {
		t.Run(v.Name, func(t *testing.T) {
			e, err := Emulate(v, emulated.Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer e.Close()
			if len(e.Env) == 0 || len(e.EnvLines()) != len(e.Env) {
				t.Fatalf("variables %v", e.Env)
			}
			for k := range e.Env {
				if !strings.HasPrefix(k, v.EnvPrefix) || !slices.Contains(Variables(v), k) {
					t.Errorf("%s lacks the prefix %s or is not among %v", k, v.EnvPrefix, Variables(v))
				}
			}
			if on, err := e.Config.Enabled(); !on || err != nil {
				t.Errorf("the emulator's configuration does not enable %s: %v", v.Name, err)
			}
			if secrets := e.Config.Secrets(); !slices.Contains(secrets, e.Credential()) {
				t.Errorf("secrets %q lack the credential", secrets)
			}
			if p := e.Config.Provider(providers.HTTPOptions{}, nil); p.Name() != v.Name {
				t.Errorf("the adapter is called %s", p.Name())
			} else if _, err := p.ListOffers(t.Context()); err != nil {
				t.Errorf("the adapter cannot read its emulator: %v", err)
			}
			for _, name := range strings.Split(v.Hint, " and ") {
				if !slices.Contains(Variables(v), name) {
					t.Errorf("hint %q names %s, which %s does not read", v.Hint, name, v.Name)
				}
			}
			empty, _ := Load(v, map[string]string{})
			if on, err := empty.Enabled(); on || err != nil {
				t.Errorf("no variables enable %s: %v", v.Name, err)
			}
		})
	}
}

func TestAHalfSetConfigurationNamesWhatIsMissing(t *testing.T) {
	v := All()[slices.Index(Names(), "datenfab")]
	for env, missing := range map[string]string{"DATENFAB_TOKEN": "DATENFAB_NAMESPACE", "DATENFAB_NAMESPACE": "DATENFAB_TOKEN"} {
		cfg, err := Load(v, map[string]string{env: "x"})
		if err != nil {
			t.Fatal(err)
		}
		if on, err := cfg.Enabled(); on || err == nil || !strings.Contains(err.Error(), missing+" is not") {
			t.Errorf("only %s: %v, %v", env, on, err)
		}
	}
}
