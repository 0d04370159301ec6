package datenfab

import (
	"strings"
	"testing"

	"github.com/gpu-mcp/gpu-mcp/providers"
	"github.com/gpu-mcp/gpu-mcp/providers/datenfab/dftest"
)

func TestPrecheck(t *testing.T) {
	inst := func(s providers.State, raw string, b providers.BillingMode) providers.Instance {
		return providers.Instance{ID: "instance-abc", Provider: Name, State: s, RawState: raw, Billing: b}
	}
	running := inst(providers.StateRunning, "Running", providers.BillingHourly)
	stopped := inst(providers.StateStopped, "Shutdown", providers.BillingHourly)
	tests := []struct {
		name     string
		req      providers.ActionRequest
		kind     providers.ErrorKind // "" = allowed
		contains string              // in the error, or in one of the warnings
	}{
		{"destroy running is refused", providers.ActionRequest{Action: providers.ActionDestroy, Instance: running},
			providers.KindConflict, "stop it first"},
		{"destroy stopping is refused", providers.ActionRequest{Action: providers.ActionDestroy, Instance: inst(providers.StateStopping, "ShuttingDown", "")},
			providers.KindConflict, `"ShuttingDown"`},
		{"destroy stopped warns of data loss", providers.ActionRequest{Action: providers.ActionDestroy, Instance: stopped},
			"", "deleted permanently"},
		{"destroy prepaid warns of no refund", providers.ActionRequest{Action: providers.ActionDestroy, Instance: inst(providers.StateStopped, "Shutdown", providers.BillingMonthly)},
			"", "not refunded"},
		{"destroy failed is allowed", providers.ActionRequest{Action: providers.ActionDestroy, Instance: inst(providers.StateError, "Failed", "")},
			"", "deleted permanently"},
		{"save image stopped is refused", providers.ActionRequest{Action: providers.ActionSaveImage, ImageName: "m", Instance: stopped},
			providers.KindConflict, "start it first"},
		{"save image warns it powers off", providers.ActionRequest{Action: providers.ActionSaveImage, ImageName: "m:v1", Instance: running},
			"", "saving the image powers the instance off"},
		{"save image bad name", providers.ActionRequest{Action: providers.ActionSaveImage, ImageName: "Not Valid", Instance: running},
			providers.KindInvalid, "image name"},
		{"stop running warns processes are killed", providers.ActionRequest{Action: providers.ActionStop, Instance: running},
			"", "killed"},
		{"stop creating abandons the creation", providers.ActionRequest{Action: providers.ActionStop, Instance: inst(providers.StatePending, "Creating", "")},
			"", "abandons its creation"},
		{"stop stopped is refused", providers.ActionRequest{Action: providers.ActionStop, Instance: stopped},
			providers.KindConflict, "wait until it is running"},
		{"destroy creating is refused", providers.ActionRequest{Action: providers.ActionDestroy, Instance: inst(providers.StatePending, "Creating", "")},
			providers.KindConflict, "stop it first"},
		{"stop prepaid warns lease", providers.ActionRequest{Action: providers.ActionStop, Instance: inst(providers.StateRunning, "Running", providers.BillingWeekly)},
			"", "prepaid lease"},
		{"start stopped warns a GPU must be free", providers.ActionRequest{Action: providers.ActionStart, Instance: stopped},
			"", "a GPU is allocated again"},
		{"start stopping is refused", providers.ActionRequest{Action: providers.ActionStart, Instance: inst(providers.StateStopping, "ShuttingDown", "")},
			providers.KindConflict, "wait until it is stopped"},
		{"unknown state is let through with a warning", providers.ActionRequest{Action: providers.ActionStart, Instance: inst(providers.StateUnknown, "Hibernating", "")},
			"", `does not recognise datenfab status "Hibernating"`},
		{"deleting refuses everything", providers.ActionRequest{Action: providers.ActionStop, Instance: inst(providers.StateDeleting, "Deleting", "")},
			providers.KindConflict, "being deleted"},
		{"restart unsupported", providers.ActionRequest{Action: providers.ActionRestart, Instance: running},
			providers.KindUnsupported, "stop the instance, then start it"},
		{"renew unsupported", providers.ActionRequest{Action: providers.ActionRenew, Periods: 1, Instance: inst(providers.StateRunning, "Running", providers.BillingMonthly)},
			providers.KindUnsupported, "no renew call"},
	}
	p, srv, _ := setup(t, dftest.Options{})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			warnings, err := p.Precheck(tt.req)
			if tt.kind != "" {
				wantKind(t, err, tt.kind, tt.contains)
				return
			}
			if err != nil {
				t.Fatalf("refused: %v", err)
			}
			if !strings.Contains(strings.Join(warnings, "\n"), tt.contains) {
				t.Errorf("warnings %q lack %q", warnings, tt.contains)
			}
		})
	}
	if n := len(srv.Requests()); n != 0 {
		t.Errorf("Precheck sent %d requests", n)
	}
}
