package emu

import "testing"

func TestOutcomesPerOfferAndDefault(t *testing.T) {
	var o Outcomes
	if got := o.For("a"); got != LaunchNormal {
		t.Fatalf("empty table: %v", got)
	}
	o.Set("", LaunchSoldOut)
	o.Set("a", LaunchNeverRuns)
	for _, c := range []struct {
		key  string
		want LaunchOutcome
	}{{"a", LaunchNeverRuns}, {"b", LaunchSoldOut}, {"", LaunchSoldOut}} {
		if got := o.For(c.key); got != c.want {
			t.Errorf("For(%q) = %v, want %v", c.key, got, c.want)
		}
	}
	o.Set("", LaunchNormal)
	if got := o.For("b"); got != LaunchNormal {
		t.Errorf("after reset: %v", got)
	}
	if LaunchFails.String() != "fails" || LaunchOutcome(9).String() != "unknown" {
		t.Errorf("names: %s %s", LaunchFails, LaunchOutcome(9))
	}
}
