package tools

// Status is what became of a guarded call, in its result and in the audit log.
type Status string

const (
	StatusConfirmationRequired Status = "confirmation_required" // nothing was done yet
	StatusDone                 Status = "done"                  // the action ran
	StatusFailed               Status = "failed"                // it ran but did not achieve its aim
	StatusNothingToDo          Status = "nothing_to_do"         // already in the wanted state
	StatusDeclined             Status = "declined"              // the user said no
	StatusCancelled            Status = "cancelled"             // the user closed the question
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
	ConfirmedNot     Confirmation = "none"
	ConfirmedByToken Confirmation = "token"
	// ConfirmedAtLaunch is the approval of a launch, which covers its cleanup and auto-stop.
	ConfirmedAtLaunch Confirmation = "approved_at_launch"
)

// confirmedBy is the approval by a person's answer through the client: elicitation_accept,
// elicitation_decline or elicitation_cancel.
func confirmedBy(action string) Confirmation { return Confirmation("elicitation_" + action) }

// AttemptResult is what became of one offer launch_instance tried.
type AttemptResult string

const (
	AttemptReady      AttemptResult = "ready"       // running, and SSH answers
	AttemptRunning    AttemptResult = "running"     // running, but SSH did not answer in time
	AttemptOrdered    AttemptResult = "ordered"     // not waited for
	AttemptRefused    AttemptResult = "refused"     // the vendor refused the order; nothing bought
	AttemptNotRunning AttemptResult = "not_running" // bought but did not come up; see the cleanup
	AttemptSkipped    AttemptResult = "skipped"     // not tried
	AttemptError      AttemptResult = "error"
	AttemptUnknown    AttemptResult = "unknown"
)

// usable reports whether the attempt left an instance to use.
func (r AttemptResult) usable() bool {
	return r == AttemptReady || r == AttemptRunning || r == AttemptOrdered
}

// BillingNow says whether what an attempt bought still bills.
type BillingNow string

const (
	BillingNo          BillingNow = "no"
	BillingYes         BillingNow = "yes"
	BillingStorageOnly BillingNow = "storage_only" // stopped, but its disk may bill
	BillingUnknown     BillingNow = "unknown"
)

// StopBy is who stops an instance at its auto-stop time.
type StopBy string

const (
	StopByVendor StopBy = "vendor"  // the vendor's own shutdown timer
	StopByGPUMCP StopBy = "gpu-mcp" // this server process, while it runs
)

// Until is a state wait_instance waits for.
type Until string

const (
	UntilRunning    Until = "running"
	UntilSSHReady   Until = "ssh_ready"
	UntilStopped    Until = "stopped"
	UntilImageSaved Until = "image_saved"
)
