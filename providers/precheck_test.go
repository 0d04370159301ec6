package providers

import (
	"errors"
	"strings"
	"testing"
)

func TestStateRules(t *testing.T) {
	rules := StateRules{
		Provider: "zeta", Title: "Zeta",
		Unsupported: map[Action]string{ActionRenew: "no leases"},
		Busy:        map[State]string{StateDeleting: "it is going away"},
		Actions: map[Action]ActionRule{
			ActionStart: {Allowed: []State{StateStopped}, Warnings: []string{"billing resumes"}},
			ActionStop: {Allowed: []State{StateRunning}, Need: "wait until it runs", NeedIn: map[State]string{StatePending: "it is still booting"},
				Warn: func(req ActionRequest) []string { return []string{"stopping " + req.Instance.ID} }},
			ActionDestroy: {Allowed: []State{StateStopped}, UnknownRefused: true,
				Check: func(req ActionRequest) error {
					if req.Instance.Billing == BillingMonthly {
						return errors.New("prepaid")
					}
					return nil
				}},
		},
	}
	in := func(s State, raw string) Instance {
		return Instance{ID: "i1", State: s, RawState: raw, Billing: BillingHourly}
	}
	cases := []struct {
		name   string
		req    ActionRequest
		kind   ErrorKind // "" = allowed
		inText []string  // in the error, or in the warnings joined
	}{
		{"allowed, with warnings in order", ActionRequest{Action: ActionStop, Instance: in(StateRunning, "up")}, "", []string{"stopping i1"}},
		{"refused by its state", ActionRequest{Action: ActionStart, Instance: in(StateRunning, "up")}, KindConflict,
			[]string{`cannot start instance i1 while it is running (zeta status "up")`, "Zeta can start an instance only when it is stopped"}},
		{"the remedy of a state", ActionRequest{Action: ActionStop, Instance: in(StatePending, "boot")}, KindConflict, []string{"still booting"}},
		{"the remedy of the action", ActionRequest{Action: ActionStop, Instance: in(StateStopped, "off")}, KindConflict, []string{"wait until it runs"}},
		{"an unknown state is a warning", ActionRequest{Action: ActionStart, Instance: in(StateUnknown, "odd")}, "",
			[]string{`gpu-mcp does not recognise zeta status "odd"; Zeta may refuse to start it in that state`, "billing resumes"}},
		{"unless the rule refuses it", ActionRequest{Action: ActionDestroy, Instance: in(StateUnknown, "odd")}, KindConflict, []string{"cannot destroy"}},
		{"the check runs first", ActionRequest{Action: ActionDestroy, Instance: Instance{ID: "i1", State: StateRunning, Billing: BillingMonthly}}, "", []string{"prepaid"}},
		{"busy states refuse everything", ActionRequest{Action: ActionStart, Instance: in(StateDeleting, "del")}, KindConflict, []string{"going away"}},
		{"unsupported", ActionRequest{Action: ActionRenew, Instance: in(StateRunning, "up")}, KindUnsupported, []string{"no leases"}},
		{"unknown action", ActionRequest{Action: "fly", Instance: in(StateRunning, "up")}, KindInvalid, []string{`unknown action "fly"`}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ws, err := rules.Precheck(c.req)
			text := strings.Join(ws, " | ")
			if err != nil {
				text = err.Error()
			}
			switch {
			case c.name == "the check runs first":
				if err == nil || err.Error() != "prepaid" {
					t.Fatalf("%v, want the check's error", err)
				}
			case c.kind == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case c.kind != "" && KindOf(err) != c.kind:
				t.Fatalf("%v, want kind %s", err, c.kind)
			}
			for _, frag := range c.inText {
				if !strings.Contains(text, frag) {
					t.Errorf("%q lacks %q", text, frag)
				}
			}
		})
	}
}
