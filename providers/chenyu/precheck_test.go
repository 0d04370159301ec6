package chenyu

import (
	"strings"
	"testing"

	"github.com/gpu-mcp/gpu-mcp/providers"
)

func TestPrecheck(t *testing.T) {
	p := New(Config{APIKey: "k"})
	inst := func(s providers.State, raw, save string) providers.Instance {
		return providers.Instance{ID: "inst_1", Provider: Name, State: s, RawState: raw, ImageSaveStatus: save}
	}
	running := inst(providers.StateRunning, "2", "")
	stopped := inst(providers.StateStopped, "22", "")
	for _, tc := range []struct {
		name     string
		action   providers.Action
		in       providers.Instance
		image    string
		kind     providers.ErrorKind // "" = allowed
		errFrag  string
		warnFrag string
	}{
		{"start stopped", providers.ActionStart, stopped, "", "", "", "if no such GPU is free"},
		{"start abnormal stop", providers.ActionStart, inst(providers.StateError, "23", ""), "", "", "", "GPU"},
		{"start running", providers.ActionStart, running, "", providers.KindConflict, "only a stopped instance", ""},
		{"start starting", providers.ActionStart, inst(providers.StateStarting, "24", ""), "", providers.KindConflict, `chenyu status "24"`, ""},
		{"stop running", providers.ActionStop, running, "", "", "", "processes are killed"},
		{"stop stopping", providers.ActionStop, inst(providers.StateStopping, "21", ""), "", providers.KindConflict, "only a running instance", ""},
		{"stop while saving", providers.ActionStop, inst(providers.StateRunning, "2", "saving"), "", providers.KindConflict, "being saved", ""},
		{"restart running", providers.ActionRestart, running, "", "", "", "reboots"},
		{"restart stopped", providers.ActionRestart, stopped, "", providers.KindConflict, "running instance", ""},
		{"save running", providers.ActionSaveImage, running, "snap", "", "", "shuts the instance down"},
		{"save stopped", providers.ActionSaveImage, stopped, "snap", providers.KindConflict, "only from a running instance", ""},
		{"save twice", providers.ActionSaveImage, inst(providers.StateRunning, "2", "saving"), "snap", providers.KindConflict, "already being saved", ""},
		{"save without name", providers.ActionSaveImage, running, " ", providers.KindInvalid, "no image name", ""},
		{"destroy running", providers.ActionDestroy, running, "", providers.KindConflict, "stop it first", ""},
		{"destroy restarting", providers.ActionDestroy, inst(providers.StateRestarting, "27", ""), "", providers.KindConflict, "wait until it is stopped", ""},
		{"destroy stuck creating aborts the boot", providers.ActionDestroy, inst(providers.StatePending, "1", ""), "", "", "", "aborts the boot"},
		{"destroy stuck starting aborts the boot", providers.ActionDestroy, inst(providers.StateStarting, "24", ""), "", "", "", "aborts the boot"},
		{"destroy stopping", providers.ActionDestroy, inst(providers.StateStopping, "21", ""), "", providers.KindConflict, "wait until it is stopped", ""},
		{"stop creating", providers.ActionStop, inst(providers.StatePending, "1", ""), "", providers.KindConflict, "only a running instance", ""},
		{"destroy stopped", providers.ActionDestroy, stopped, "", "", "", "cannot be undone"},
		{"destroy abnormal", providers.ActionDestroy, inst(providers.StateError, "23", ""), "", "", "", "deleted permanently"},
		{"destroy unknown status", providers.ActionDestroy, inst(providers.StateUnknown, "99", ""), "", "", "", `does not recognise chenyu status "99"`},
		{"stop unknown status", providers.ActionStop, inst(providers.StateUnknown, "99", ""), "", "", "", "Chenyu may refuse"},
		{"renew", providers.ActionRenew, running, "", providers.KindUnsupported, "no renew call", ""},
		{"launch (the tool says the billing)", providers.ActionLaunch, providers.Instance{}, "", "", "", ""},
		{"unknown action", providers.Action("teleport"), running, "", providers.KindInvalid, "unknown action", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			warnings, err := p.Precheck(providers.ActionRequest{Action: tc.action, Instance: tc.in, ImageName: tc.image})
			if tc.kind != "" {
				wantKind(t, err, tc.kind, tc.errFrag)
				return
			}
			if err != nil {
				t.Fatalf("refused: %v", err)
			}
			if w := strings.Join(warnings, " | "); !strings.Contains(w, tc.warnFrag) {
				t.Fatalf("warnings %q lack %q", w, tc.warnFrag)
			}
		})
	}
}
