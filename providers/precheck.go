package providers

import (
	"fmt"
	"slices"
	"strings"
)

// StateRules is the one rule every adapter's Precheck follows, each vendor filling in its
// states: per action, the instance states it is allowed in, what to do when it is not, and
// what the plan must warn of. An action is refused in a state it does not allow; in a state
// gpu-mcp does not know (StateUnknown) it is let through with a warning, since the vendor
// decides, unless its rule says otherwise.
type StateRules struct {
	// Provider names the errors ("datenfab"); Title names the vendor in warnings ("Datenfab").
	Provider, Title string
	// Unsupported are the actions the vendor's API lacks, with the reason (as in
	// Capabilities.Unsupported).
	Unsupported map[Action]string
	// Busy are the states in which nothing can be done to an instance, with the remedy.
	Busy map[State]string
	// Actions are the rules of the actions the vendor can do; an action without one is an
	// error of the caller.
	Actions map[Action]ActionRule
}

// ActionRule is what one action needs and what it warns of.
type ActionRule struct {
	// Allowed are the states the action may be done in; none: any state.
	Allowed []State
	// UnknownRefused refuses the action in a state gpu-mcp does not know, instead of letting
	// it through with a warning.
	UnknownRefused bool
	// Need is the remedy of a refusal by the state; empty: the allowed states are named.
	// NeedIn overrides it in some states.
	Need   string
	NeedIn map[State]string
	// Check refuses for reasons beyond the state (the billing, the image name, a save in
	// progress). It runs before the state is looked at.
	Check func(ActionRequest) error
	// Loss says what the action interrupts or deletes, in the vendor's terms; empty: the
	// usual words for the action (usualLoss). It is the plan's one sentence on the matter, so
	// Warnings and Warn say nothing more of it.
	Loss string
	// Warnings are said by every plan of the action; Warn adds those that depend on the
	// request, after them. Neither speaks of the price or the billing that starts or stops:
	// the tool says that, once, from the offer or the instance (and Capabilities.KeepsBilling).
	Warnings []string
	Warn     func(ActionRequest) []string
}

// usualLoss is what an action interrupts or deletes on any vendor whose rule says nothing
// more exact.
var usualLoss = map[Action]string{
	ActionStop:    "running processes are killed and unsaved work in memory is lost; the disks are kept",
	ActionRestart: "running processes are killed and the machine reboots; the disks are kept",
	ActionDestroy: "the instance and all data on its disks are deleted permanently; this cannot be undone",
}

// Precheck refuses an action the vendor would refuse in the instance's current state, and
// returns the warnings for its plan.
func (r StateRules) Precheck(req ActionRequest) ([]string, error) {
	if why, ok := r.Unsupported[req.Action]; ok {
		return nil, Unsupported(r.Provider, req.Action, why)
	}
	rule, ok := r.Actions[req.Action]
	if !ok {
		return nil, Errorf(KindInvalid, r.Provider, req.Op(), "use launch, start, stop, restart, save_image, renew or destroy",
			"unknown action %q", req.Action)
	}
	st := req.Instance.State
	if why, busy := r.Busy[st]; busy {
		return nil, Refusal(r.Provider, req, why)
	}
	if rule.Check != nil {
		if err := rule.Check(req); err != nil {
			return nil, err
		}
	}
	var warnings []string
	if len(rule.Allowed) > 0 && !slices.Contains(rule.Allowed, st) {
		if unknown := st == StateUnknown || st == ""; !unknown || rule.UnknownRefused {
			return nil, Refusal(r.Provider, req, rule.need(r.Title, req.Action, st))
		}
		warnings = append(warnings, fmt.Sprintf("gpu-mcp does not recognise %s status %q; %s may refuse to %s it in that state",
			r.Provider, req.Instance.RawState, r.Title, verb(req.Action)))
	}
	if loss := rule.Loss; loss != "" {
		warnings = append(warnings, loss)
	} else if loss := usualLoss[req.Action]; loss != "" {
		warnings = append(warnings, loss)
	}
	warnings = append(warnings, rule.Warnings...)
	if rule.Warn != nil {
		warnings = append(warnings, rule.Warn(req)...)
	}
	return warnings, nil
}

func (a ActionRule) need(title string, action Action, st State) string {
	if n, ok := a.NeedIn[st]; ok {
		return n
	}
	if a.Need != "" {
		return a.Need
	}
	states := make([]string, len(a.Allowed))
	for i, s := range a.Allowed {
		states[i] = string(s)
	}
	return fmt.Sprintf("%s can %s an instance only when it is %s; check it with get_instance and try again once it is",
		title, verb(action), strings.Join(states, " or "))
}

// Refusal is the error for an action the instance's state does not allow: it names the state
// as gpu-mcp and as the vendor call it, and what to do.
func Refusal(provider string, req ActionRequest, remedy string) *Error {
	return Errorf(KindConflict, provider, req.Op(), remedy, "cannot %s instance %s while it is %s (%s status %q)",
		verb(req.Action), req.Instance.ID, req.Instance.State, provider, req.Instance.RawState)
}

// Op names the action and its instance, for errors: "stop gpu-105b".
func (r ActionRequest) Op() string {
	if r.Instance.ID == "" {
		return string(r.Action)
	}
	return string(r.Action) + " " + r.Instance.ID
}

func verb(a Action) string {
	if a == ActionSaveImage {
		return "save an image of"
	}
	return string(a)
}
