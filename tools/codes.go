package tools

import "github.com/gpu-mcp/gpu-mcp/fleet"

// Status is what became of a guarded call, in its result and in the audit log.
type Status string

const (
	StatusConfirmationRequired Status = "confirmation_required" // nothing was done yet
	StatusDone                 Status = "done"                  // the action ran
	StatusFailed               Status = "failed"                // it ran but did not achieve its aim
	StatusNothingToDo          Status = "nothing_to_do"         // already in the wanted state
	StatusDeclined             Status = "declined"              // the user said no
	StatusCancelled            Status = "cancelled"             // the user closed the question
	StatusPending              Status = "pending"               // it runs on past the call budget: see operation_id
	// Only in the audit log: the call was refused (bad input, a limit, a vendor's refusal),
	// or the client was asked to put the question to its user.
	StatusRefused              Status = "refused"
	StatusElicitationRequested Status = "elicitation_requested"
	// Only in the audit log: an approved action is about to reach the vendor; a second
	// record with its outcome follows. The action runs only once this one is recorded.
	StatusRunning Status = "running"
)

// Confirmation is how a guarded call was approved, for the audit log.
type Confirmation string

const (
	ConfirmedNot Confirmation = "none"
	// ConfirmedByToken: a confirmation token came back, which the agent holds: it proves a
	// plan was shown, not that a person agreed.
	ConfirmedByToken Confirmation = "token"
	// ConfirmedUnverified: an answer claimed to be a person's that was refused, because the
	// client did not declare that it can ask its user, or its request state was not the one
	// gpu-mcp gave with its question.
	ConfirmedUnverified Confirmation = "elicitation_unverified"
	// ConfirmedAtLaunch is the approval of a launch, which covers its cleanup and auto-stop;
	// ConfirmedAtSetAutoStop that of set_auto_stop, which covers the stop it set.
	ConfirmedAtLaunch      Confirmation = "approved_at_launch"
	ConfirmedAtSetAutoStop Confirmation = "approved_at_set_auto_stop"
	// ConfirmedNotRequired: a tool that changes a machine ran at once, as GPU_MCP_EXEC=on has
	// it, or a pinned host key was forgotten on the agent's word (accept_new_host_key).
	ConfirmedNotRequired Confirmation = "not_required"
	// ConfirmedWithWork is the request of a lease on work, made with it: start_job's
	// stop_instance_when_done or stop_when_gpu_idle.
	ConfirmedWithWork Confirmation = "asked_with_the_work"
)

// confirmedBy is a person's answer through a client that can ask its user, to the question
// gpu-mcp put: elicitation_accept, elicitation_decline or elicitation_cancel.
func confirmedBy(action string) Confirmation { return Confirmation("elicitation_" + action) }

// Until is a state wait_instance waits for: the fleet's words, as they are.
type Until = fleet.Until

// Waits that wait_instance accepts.
const (
	UntilRunning    = fleet.UntilRunning
	UntilSSHReady   = fleet.UntilSSHReady
	UntilStopped    = fleet.UntilStopped
	UntilImageSaved = fleet.UntilImageSaved
)
