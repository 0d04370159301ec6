// Package providers holds the seam between the MCP tools and the GPU clouds: the Provider
// interface, the normalized model every vendor adapter maps into, typed errors and the
// registry that resolves provider-qualified identifiers.
package providers

import (
	"context"
	"slices"
	"time"
)

// BillingMode is how an instance is paid for.
type BillingMode string

const (
	BillingHourly  BillingMode = "hourly"
	BillingDaily   BillingMode = "daily"
	BillingWeekly  BillingMode = "weekly"
	BillingMonthly BillingMode = "monthly"
)

// BillingModes lists every mode, in the order of their period length.
var BillingModes = []BillingMode{BillingHourly, BillingDaily, BillingWeekly, BillingMonthly}

// Valid reports whether m is one of BillingModes.
func (m BillingMode) Valid() bool {
	for _, b := range BillingModes {
		if m == b {
			return true
		}
	}
	return false
}

// State is the normalized life-cycle state of an instance.
type State string

const (
	StatePending    State = "pending"    // ordered or being created
	StateStarting   State = "starting"   // booting
	StateRunning    State = "running"    // up and billing
	StateRestarting State = "restarting" // rebooting
	StateStopping   State = "stopping"   // shutting down
	StateStopped    State = "stopped"    // off; disk kept
	StateSaving     State = "saving"     // saving an image
	StateDeleting   State = "deleting"   // being destroyed
	StateError      State = "error"      // the vendor reports a failure
	StateUnknown    State = "unknown"    // a vendor state this program does not know; see RawState
)

// States lists every state, in life-cycle order.
var States = []State{StatePending, StateStarting, StateRunning, StateRestarting, StateStopping, StateStopped,
	StateSaving, StateDeleting, StateError, StateUnknown}

// Transitional reports whether s is on its way to another state.
func (s State) Transitional() bool {
	switch s {
	case StatePending, StateStarting, StateRestarting, StateStopping, StateSaving, StateDeleting:
		return true
	}
	return false
}

// Price is what one GPU costs for one billing period, in CNY.
type Price struct {
	Billing BillingMode `json:"billing" jsonschema:"enum=hourly,enum=daily,enum=weekly,enum=monthly" jsonschema_description:"billing period this price is for"`
	CNY     float64     `json:"cny" jsonschema:"minimum=0" jsonschema_description:"price in CNY of one GPU for one such period"`
}

// Offer is a machine type that can be launched.
type Offer struct {
	ID              string        `json:"id" jsonschema_description:"provider-qualified offer id to pass to launch_instance as offer_id"`
	Provider        string        `json:"provider" jsonschema_description:"provider name"`
	GPUModel        string        `json:"gpu_model" jsonschema_description:"GPU model as the vendor names it"`
	GPUCounts       []int         `json:"gpu_counts" jsonschema_description:"GPU counts one instance of this offer can have"`
	VRAMGB          int           `json:"vram_gb,omitempty" jsonschema_description:"memory per GPU in GB (0 when the vendor does not say)"`
	VCPUs           int           `json:"vcpus,omitempty" jsonschema_description:"virtual CPUs (0 when the vendor does not say)"`
	RAMGB           int           `json:"ram_gb,omitempty" jsonschema_description:"RAM in GB (0 when the vendor does not say)"`
	SystemDiskGB    int           `json:"system_disk_gb,omitempty" jsonschema_description:"system disk in GB"`
	DataDiskGB      int           `json:"data_disk_gb,omitempty" jsonschema_description:"data disk in GB"`
	Region          string        `json:"region,omitempty" jsonschema_description:"region or zone"`
	PricePerGPUHour *float64      `json:"price_per_gpu_hour,omitempty" jsonschema_description:"CNY per GPU per hour; absent when the vendor publishes no price"`
	Prices          []Price       `json:"prices,omitempty" jsonschema_description:"per-GPU prices for each billing period the vendor lists"`
	Billing         []BillingMode `json:"billing" jsonschema_description:"billing modes launch_instance accepts for this offer"`
	Available       bool          `json:"available" jsonschema_description:"whether the vendor reports capacity now"`
	AvailableGPUs   *int          `json:"available_gpus,omitempty" jsonschema_description:"GPUs the vendor reports free for this offer, when it says"`
	Notes           string        `json:"notes,omitempty" jsonschema_description:"vendor-specific remarks"`
}

// HourlyPrice is the price in CNY per hour of one instance of this offer with gpus GPUs,
// and false when the vendor publishes no hourly price.
func (o Offer) HourlyPrice(gpus int) (float64, bool) {
	if o.PricePerGPUHour == nil {
		return 0, false
	}
	if gpus < 1 {
		gpus = 1
	}
	return *o.PricePerGPUHour * float64(gpus), true
}

// PeriodPrice is the per-GPU price of one period of billing mode m, if the vendor lists it.
func (o Offer) PeriodPrice(m BillingMode) (float64, bool) {
	for _, p := range o.Prices {
		if p.Billing == m {
			return p.CNY, true
		}
	}
	if m == BillingHourly && o.PricePerGPUHour != nil {
		return *o.PricePerGPUHour, true
	}
	return 0, false
}

// WebURL is a web endpoint of an instance (Jupyter, TensorBoard, an app).
type WebURL struct {
	Name string `json:"name" jsonschema_description:"what the endpoint serves"`
	URL  string `json:"url" jsonschema_description:"address; may embed an access token"`
}

// Connection holds what an agent needs to log into an instance.
type Connection struct {
	SSHHost     string   `json:"ssh_host,omitempty" jsonschema_description:"SSH host"`
	SSHPort     int      `json:"ssh_port,omitempty" jsonschema_description:"SSH port"`
	SSHUser     string   `json:"ssh_user,omitempty" jsonschema_description:"SSH user"`
	SSHPassword string   `json:"ssh_password,omitempty" jsonschema_description:"SECRET: SSH password; show it to the user only when asked"`
	SSHCommand  string   `json:"ssh_command,omitempty" jsonschema_description:"ready-to-run ssh command"`
	WebURLs     []WebURL `json:"web_urls,omitempty" jsonschema_description:"web endpoints"`
}

// Empty reports whether c holds nothing.
func (c Connection) Empty() bool {
	return c.SSHHost == "" && c.SSHCommand == "" && len(c.WebURLs) == 0
}

// Instance is a machine on a provider.
type Instance struct {
	ID              string      `json:"id" jsonschema_description:"provider-qualified instance id"`
	Provider        string      `json:"provider"`
	Name            string      `json:"name,omitempty"`
	State           State       `json:"state" jsonschema:"enum=pending,enum=starting,enum=running,enum=restarting,enum=stopping,enum=stopped,enum=saving,enum=deleting,enum=error,enum=unknown" jsonschema_description:"normalized state"`
	RawState        string      `json:"raw_state" jsonschema_description:"the state exactly as the vendor reports it"`
	GPUModel        string      `json:"gpu_model,omitempty"`
	GPUCount        int         `json:"gpu_count,omitempty"`
	VCPUs           int         `json:"vcpus,omitempty"`
	RAMGB           int         `json:"ram_gb,omitempty"`
	Image           string      `json:"image,omitempty" jsonschema_description:"image name or reference"`
	Region          string      `json:"region,omitempty"`
	Billing         BillingMode `json:"billing,omitempty" jsonschema_description:"billing mode, when the vendor says"`
	PricePerHour    *float64    `json:"price_per_hour,omitempty" jsonschema_description:"CNY per hour of the whole instance, when known"`
	CreatedAt       *time.Time  `json:"created_at,omitempty"`
	ExpiresAt       *time.Time  `json:"expires_at,omitempty" jsonschema_description:"end of a prepaid lease"`
	StopsAt         *time.Time  `json:"stops_at,omitempty" jsonschema_description:"scheduled automatic stop"`
	ImageSaveStatus string      `json:"image_save_status,omitempty" jsonschema_description:"progress of the last save_image: saving, saved or failed"`
	Connection      *Connection `json:"connection,omitempty"`
	OrderID         string      `json:"order_id,omitempty" jsonschema_description:"vendor order that created the instance"`
	Managed         *Managed    `json:"managed,omitempty" jsonschema_description:"what gpu-mcp itself promised about the instance: whether it launched it, its auto-stop lease, and whether it is an orphan"`
}

// Managed is what gpu-mcp knows of an instance beside what the vendor reports. It is filled in
// above the adapters, from gpu-mcp's state store (package fleet), never by an adapter.
type Managed struct {
	LaunchedByGPUMCP bool          `json:"launched_by_gpu_mcp" jsonschema_description:"true when gpu-mcp launched it (its launch ledger has it, or it carries gpu-mcp's name)"`
	Key              string        `json:"key,omitempty" jsonschema_description:"the launch's idempotency key in gpu-mcp's ledger"`
	Lease            *ManagedLease `json:"lease,omitempty" jsonschema_description:"when and how gpu-mcp stops or destroys it by itself"`
	Orphan           string        `json:"orphan,omitempty" jsonschema_description:"set when gpu-mcp launched it but keeps no working promise about it: why (its auto-stop is overdue, or its record is gone)"`
}

// ManagedLease is an instance's auto-stop as gpu-mcp keeps it.
type ManagedLease struct {
	Action       string     `json:"action" jsonschema:"enum=stop,enum=destroy"`
	At           time.Time  `json:"at" jsonschema_description:"when it is due"`
	By           string     `json:"by" jsonschema:"enum=vendor,enum=gpu-mcp" jsonschema_description:"vendor: the vendor's shutdown timer (gpu-mcp checks afterwards that it ran); gpu-mcp: gpu-mcp's reconciler, whenever any gpu-mcp process runs or gpu-mcp reap runs"`
	OverdueSince *time.Time `json:"overdue_since,omitempty" jsonschema_description:"set when it is due and not done: the instance may still bill"`
	LastError    string     `json:"last_error,omitempty" jsonschema_description:"why the last attempt failed"`
	DoneAt       *time.Time `json:"done_at,omitempty" jsonschema_description:"when gpu-mcp carried it out"`
	Outcome      string     `json:"outcome,omitempty" jsonschema_description:"what carrying it out found or did"`
}

// ImageKind tells where an image comes from.
type ImageKind string

const (
	ImagePublic  ImageKind = "public"  // the vendor's images
	ImagePrivate ImageKind = "private" // the account's own saved images
	ImageApp     ImageKind = "app"     // an application template (one-click app, pod)
)

// Image is something an instance can be launched from.
type Image struct {
	ID          string     `json:"id" jsonschema_description:"provider-qualified image id to pass to launch_instance as image_id"`
	Provider    string     `json:"provider"`
	Name        string     `json:"name"`
	Kind        ImageKind  `json:"kind" jsonschema:"enum=public,enum=private,enum=app"`
	Description string     `json:"description,omitempty"`
	Region      string     `json:"region,omitempty"`
	SizeGB      float64    `json:"size_gb,omitempty"`
	Status      string     `json:"status,omitempty" jsonschema_description:"for saved images: saving, ready or failed"`
	CreatedAt   *time.Time `json:"created_at,omitempty"`
}

// ImageQuery narrows ListImages. Both fields hold vendor-local values at the adapter (the
// registry's wrapper takes a qualified OfferID).
type ImageQuery struct {
	OfferID string // images usable with this offer
	Region  string // images in this region
}

// LaunchSpec is a request to create an instance. Its ids are qualified above the registry and
// vendor-local at the adapter.
type LaunchSpec struct {
	OfferID  string
	ImageID  string
	GPUCount int
	Billing  BillingMode
	Periods  int // prepaid periods to buy; 0 means 1 for prepaid modes
	Name     string
}

// LaunchResult tells what a launch created. InstanceID may be empty when the vendor answered
// with an order only and the instance is not yet visible.
type LaunchResult struct {
	InstanceID string
	OrderID    string
	Instance   *Instance
}

// Action names a change a tool can make to an instance.
type Action string

const (
	ActionLaunch    Action = "launch"
	ActionStart     Action = "start"
	ActionStop      Action = "stop"
	ActionRestart   Action = "restart"
	ActionSaveImage Action = "save_image"
	ActionRenew     Action = "renew"
	ActionDestroy   Action = "destroy"
)

// Capabilities says what a provider can do, so that list_providers can tell an agent in advance.
type Capabilities struct {
	// Unsupported maps an action the vendor's API lacks to the reason.
	Unsupported map[Action]string `json:"unsupported,omitempty"`
	// Billing lists the billing modes a launch may ask for.
	Billing []BillingMode `json:"billing"`
	// Notes are short, vendor-specific rules an agent should know (e.g. destroy preconditions).
	Notes []string `json:"notes,omitempty"`
	// SaveImageStops is true when saving an image stops the instance.
	SaveImageStops bool `json:"save_image_stops_instance"`
	// PublishesPrices is false for vendors whose API has no prices.
	PublishesPrices bool `json:"publishes_prices"`
	// BillingStates are the states in which an instance may be billed its hourly price for
	// compute, so that the spending limits count it (what a stopped instance's disk costs is
	// not an hourly price the limits compare). Each vendor lists its own, from its documents;
	// a state whose billing the vendor does not document counts, since it may bill.
	BillingStates []State `json:"billing_states"`
}

// Bills reports whether an instance in state s may be billed its hourly price. A vendor that
// lists no BillingStates is taken to bill in every state but stopped.
func (c Capabilities) Bills(s State) bool {
	if c.BillingStates == nil {
		return s != StateStopped
	}
	return slices.Contains(c.BillingStates, s)
}

// Supports reports whether a is available, and if not, why.
func (c Capabilities) Supports(a Action) (bool, string) {
	why, missing := c.Unsupported[a]
	return !missing, why
}

// ActionRequest is what Precheck inspects before a guarded action is planned.
type ActionRequest struct {
	Action    Action
	Instance  Instance    // current state, from GetInstance
	Periods   int         // renew
	ImageName string      // save_image
	Launch    *LaunchSpec // launch: what will be bought
}

// Provider is one GPU cloud. An adapter takes and returns vendor-local ids; the Registry
// wraps it so that everything above sees provider-qualified ones. Errors are *Error values.
type Provider interface {
	Name() string
	Capabilities() Capabilities

	ListOffers(ctx context.Context) ([]Offer, error)
	ListImages(ctx context.Context, q ImageQuery) ([]Image, error)
	ListInstances(ctx context.Context) ([]Instance, error)
	GetInstance(ctx context.Context, id string) (Instance, error)

	// Precheck refuses an action the vendor would refuse in the instance's current state
	// (e.g. destroying a running instance), before any confirmation is asked for. It also
	// returns warnings for the plan: what the action interrupts or loses.
	Precheck(req ActionRequest) (warnings []string, err error)

	Launch(ctx context.Context, spec LaunchSpec) (LaunchResult, error)
	Start(ctx context.Context, id string) error
	Stop(ctx context.Context, id string) error
	Restart(ctx context.Context, id string) error
	// SaveImage returns the id or reference of the image being saved, when known.
	SaveImage(ctx context.Context, id, name string) (string, error)
	Renew(ctx context.Context, id string, periods int) error
	Destroy(ctx context.Context, id string) error
}

// Balance is an account's remaining money, for vendors that report it.
type Balance struct {
	CNY       float64 `json:"cny" jsonschema_description:"cash balance in CNY"`
	CreditCNY float64 `json:"credit_cny,omitempty" jsonschema_description:"prepaid card or voucher balance in CNY"`
}

// BalanceReporter is implemented by providers whose API reports the account balance.
type BalanceReporter interface {
	Balance(ctx context.Context) (Balance, error)
}

// StopScheduler is implemented by providers whose API can stop an instance at a set time.
type StopScheduler interface {
	// ScheduleStop asks the vendor to stop id at the given time; a zero time cancels.
	ScheduleStop(ctx context.Context, id string, at time.Time) error
}
