package fleet

import (
	"strings"
	"time"

	"github.com/gpu-mcp/gpu-mcp/providers"
	"github.com/gpu-mcp/gpu-mcp/state"
)

// AttemptResult is what became of one offer a launch tried.
type AttemptResult string

// Attempt results.
const (
	AttemptReady      AttemptResult = "ready"       // running, and SSH answers
	AttemptRunning    AttemptResult = "running"     // running, but SSH did not answer in time
	AttemptOrdered    AttemptResult = "ordered"     // not waited for
	AttemptRefused    AttemptResult = "refused"     // the vendor refused the order; nothing bought
	AttemptNotRunning AttemptResult = "not_running" // bought but did not come up; see the cleanup
	AttemptSkipped    AttemptResult = "skipped"     // not tried
	AttemptError      AttemptResult = "error"
	AttemptUnknown    AttemptResult = "unknown"
	AttemptCancelled  AttemptResult = "cancelled" // the user cancelled it; see the cleanup
)

// Usable reports whether the attempt left an instance to use.
func (r AttemptResult) Usable() bool {
	return r == AttemptReady || r == AttemptRunning || r == AttemptOrdered
}

// BillingNow says whether what an attempt bought still bills.
type BillingNow string

// Billing states.
const (
	BillingNo          BillingNow = "no"
	BillingYes         BillingNow = "yes"
	BillingStorageOnly BillingNow = "storage_only" // stopped, but its disk may bill
	BillingUnknown     BillingNow = "unknown"
)

// StopBy is who stops an instance at its auto-stop time.
type StopBy string

// Who enforces a lease.
const (
	StopByVendor StopBy = "vendor"  // the vendor's own shutdown timer, checked by gpu-mcp afterwards
	StopByGPUMCP StopBy = "gpu-mcp" // gpu-mcp's reconciler, in whichever gpu-mcp process runs
)

// Attempt is one offer a launch tried.
type Attempt struct {
	OfferID    string        `json:"offer_id"`
	InstanceID string        `json:"instance_id,omitempty"`
	OrderID    string        `json:"order_id,omitempty"`
	Result     AttemptResult `json:"result" jsonschema:"enum=ready,enum=running,enum=ordered,enum=refused,enum=not_running,enum=skipped,enum=error,enum=unknown,enum=cancelled" jsonschema_description:"ready: running and SSH answers; running: running but SSH did not answer in time; ordered: not waited for; refused: the vendor refused the order (e.g. sold out), nothing bought; not_running: bought but did not come up, see cleanup; skipped: not tried (limits); error or unknown: see detail; cancelled: the user cancelled the launch, see cleanup"`
	Detail     string        `json:"detail,omitempty"`
	Cleanup    string        `json:"cleanup,omitempty" jsonschema_description:"what was done with an instance that did not come up"`
	Billing    BillingNow    `json:"billing" jsonschema:"enum=no,enum=yes,enum=storage_only,enum=unknown" jsonschema_description:"whether what this attempt bought still bills"`

	err error // the vendor's error when the order itself failed
}

// AutoStop says how and when a launched instance will be stopped.
type AutoStop struct {
	At     time.Time `json:"at" jsonschema_description:"when the instance will be stopped"`
	By     StopBy    `json:"by" jsonschema:"enum=vendor,enum=gpu-mcp" jsonschema_description:"vendor: the vendor's own shutdown timer (gpu-mcp checks afterwards that it ran); gpu-mcp: gpu-mcp stops it, whenever any gpu-mcp process runs or gpu-mcp reap runs (from cron, say), else at the next start of gpu-mcp"`
	Action string    `json:"action,omitempty" jsonschema:"enum=stop,enum=destroy" jsonschema_description:"what happens then (default stop)"`
	Note   string    `json:"note,omitempty"`
}

// Outcome is what a launch came to: the instance it left, if any, and every attempt.
type Outcome struct {
	// Failed: no attempt left a usable instance.
	Failed     bool                `json:"failed,omitempty"`
	InstanceID string              `json:"instance_id,omitempty"`
	OrderID    string              `json:"order_id,omitempty"`
	Ready      bool                `json:"ready,omitempty"`
	SSHCommand string              `json:"ssh_command,omitempty"`
	Instance   *providers.Instance `json:"instance,omitempty"`
	AutoStop   *AutoStop           `json:"auto_stop,omitempty"`
	// IdleLease is the stop when the GPUs stay idle (LaunchRequest.IdleStop), once put.
	IdleLease *state.Lease `json:"idle_lease,omitempty"`
	Attempts  []Attempt    `json:"attempts,omitempty"`
	// Billing says what the launch left billing.
	Billing string `json:"billing,omitempty"`
	// Notes are remarks for the user (an auto-stop that could not be arranged, ...).
	Notes []string `json:"notes,omitempty"`
}

func (o *Outcome) note(s string) { o.Notes = append(o.Notes, s) }

// settle fills in Failed and Billing from the attempts.
func (o *Outcome) settle() {
	o.Failed = len(o.Attempts) == 0 || !o.Attempts[len(o.Attempts)-1].Result.Usable()
	o.Billing = billingSummary(o.Attempts)
}

func billingSummary(atts []Attempt) string {
	var parts []string
	for _, a := range atts {
		id := a.InstanceID
		if id == "" {
			id = orderText(a.OrderID)
		}
		switch a.Billing {
		case BillingYes:
			parts = append(parts, id+" bills")
		case BillingStorageOnly:
			parts = append(parts, id+" is stopped (its disk may still bill)")
		case BillingUnknown:
			if id == "" {
				id = "the order to " + a.OfferID
			}
			parts = append(parts, id+": unknown, check list_instances")
		}
	}
	if len(parts) == 0 {
		return "nothing: no instance of this call exists"
	}
	return strings.Join(parts, "; ")
}

func orderText(id string) string {
	if id == "" {
		return ""
	}
	return "order " + id
}

// withoutSecrets drops the password from a copy of inst: the ledger never keeps one.
func withoutSecrets(inst *providers.Instance) *providers.Instance {
	if inst == nil {
		return nil
	}
	c := *inst
	if c.Connection != nil && c.Connection.SSHPassword != "" {
		conn := *c.Connection
		conn.SSHPassword = ""
		c.Connection = &conn
	}
	return &c
}
