package tools

import (
	"context"
	"strings"
	"testing"
)

// The running record says who approved an action as it was approved: a token proves only that
// the plan was shown, --yes is a script's, the terminal a person's, elicitation the client's user.
func TestApprovedBySaysWhoApproved(t *testing.T) {
	for c, want := range map[Confirmation]string{
		ConfirmedByToken:           "proves the plan was shown, not who agreed",
		ConfirmedAtTerminal:        "at gpu-mcp call's terminal",
		ConfirmedByCLIYes:          "without asking anyone",
		confirmedBy("accept"):      "MCP elicitation",
		Confirmation("unheard_of"): "(unheard_of)",
	} {
		got := approvedBy(context.Background(), c)
		if !strings.Contains(got, want) {
			t.Errorf("%s: %q, want it to say %q", c, got, want)
		}
		if c != confirmedBy("accept") && strings.Contains(got, "elicitation") {
			t.Errorf("%s is recorded as an elicitation: %q", c, got)
		}
	}
}

// An operation keeps its call's arguments without the token, under either of its names.
func TestOperationsKeepNoToken(t *testing.T) {
	got := string(withoutToken([]byte(`{"instance_id":"a:i1","confirm_token":"gmc1.x","confirmation_token":"gmc1.y"}`)))
	if got != `{"instance_id":"a:i1"}` {
		t.Fatalf("kept %s", got)
	}
}
