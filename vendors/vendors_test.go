package vendors

import (
	"maps"
	"slices"
	"strings"
	"testing"

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

// Every vendor's configuration is read from its variables, says whether it enables the
// vendor, names its secrets, and goes back to the same variables (which the tests that start
// gpu-mcp against an emulator rely on).
func TestConfigurationsRoundTripThroughTheEnvironment(t *testing.T) {
	for _, v := range All() {
		t.Run(v.Name, func(t *testing.T) {
			cfg, emu := v.Emulate(emulated.Options{})
			defer emu.Close()
			environ := Environ(v, cfg)
			if len(environ) == 0 {
				t.Fatal("no variables")
			}
			for k := range environ {
				if !strings.HasPrefix(k, v.EnvPrefix) || !slices.Contains(Variables(v), k) {
					t.Errorf("%s lacks the prefix %s or is not among %v", k, v.EnvPrefix, Variables(v))
				}
			}
			again, err := Load(v, environ)
			if err != nil {
				t.Fatal(err)
			}
			if back := Environ(v, again); !maps.Equal(back, environ) {
				t.Errorf("%v read back as %v", environ, back)
			}
			if on, err := again.Enabled(); !on || err != nil {
				t.Errorf("the emulator's configuration does not enable %s: %v", v.Name, err)
			}
			if secrets := again.Secrets(); len(secrets) == 0 || !slices.Contains(secrets, emu.Credential()) {
				t.Errorf("secrets %q lack the credential", secrets)
			}
			if !strings.Contains(v.Hint, v.EnvPrefix) {
				t.Errorf("hint %q does not name a variable of %s", v.Hint, v.Name)
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
