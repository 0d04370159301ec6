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

// Hours is the length of one period of m, to compare prepaid prices with hourly ones: a day
// is 24 hours, a week 168, a month 30 days (720 hours); 0 for an unknown mode.
func (m BillingMode) Hours() float64 {
	switch m {
	case BillingHourly:
		return 1
	case BillingDaily:
		return 24
	case BillingWeekly:
		return 24 * 7
	case BillingMonthly:
		return 24 * 30
	}
	return 0
}

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
	Billing BillingMode `json:"billing" jsonschema:"enum=hourly,enum=daily,enum=weekly,enum=monthly"`
	CNY     float64     `json:"cny" jsonschema:"minimum=0" jsonschema_description:"CNY for one GPU for one period"`
}

// Offer is a machine type that can be launched.
type Offer struct {
	ID              string   `json:"id" jsonschema_description:"launch_instance's offer_id"`
	Provider        string   `json:"provider"`
	GPUModel        string   `json:"gpu_model"`
	GPUCounts       []int    `json:"gpu_counts" jsonschema_description:"GPUs one instance can have"`
	VRAMGB          int      `json:"vram_gb,omitempty" jsonschema_description:"per GPU; absent: not said"`
	VCPUs           int      `json:"vcpus,omitempty"`
	RAMGB           int      `json:"ram_gb,omitempty"`
	SystemDiskGB    int      `json:"system_disk_gb,omitempty"`
	DataDiskGB      int      `json:"data_disk_gb,omitempty"`
	Region          string   `json:"region,omitempty" jsonschema_description:"as the vendor names it"`
	RegionName      string   `json:"region_name,omitempty" jsonschema_description:"in English, where known"`
	PricePerGPUHour *float64 `json:"price_per_gpu_hour,omitempty" jsonschema_description:"CNY; absent: no hourly price published"`
	Prices          []Price  `json:"prices,omitempty" jsonschema_description:"per GPU, by billing period"`
	// HourlyEquivalent is set by list_gpu_offers, which sorts by it; adapters leave it nil.
	HourlyEquivalent *float64      `json:"hourly_equivalent,omitempty" jsonschema_description:"CNY per GPU-hour, the sort key: a prepaid price spread over 24, 168 or 720 h"`
	Billing          []BillingMode `json:"billing" jsonschema_description:"modes launch_instance accepts"`
	Available        bool          `json:"available" jsonschema_description:"capacity now"`
	AvailableGPUs    *int          `json:"available_gpus,omitempty" jsonschema_description:"free GPUs, when said"`
	Notes            string        `json:"notes,omitempty"`
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

// LowestHourly is the lowest per-GPU price per hour among the billing modes this offer can be
// launched with, a prepaid period's price spread over its hours (BillingMode.Hours); false when
// none of them has a price.
func (o Offer) LowestHourly() (float64, bool) {
	best, found := 0.0, false
	for _, m := range o.Billing {
		if p, ok := o.PeriodPrice(m); ok && m.Hours() > 0 {
			if h := p / m.Hours(); !found || h < best {
				best, found = h, true
			}
		}
	}
	return best, found
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
	Name string `json:"name"`
	URL  string `json:"url" jsonschema_description:"may embed an access token"`
}

// Connection holds what an agent needs to log into an instance.
type Connection struct {
	SSHHost     string   `json:"ssh_host,omitempty"`
	SSHPort     int      `json:"ssh_port,omitempty"`
	SSHUser     string   `json:"ssh_user,omitempty"`
	SSHPassword string   `json:"ssh_password,omitempty" jsonschema_description:"SECRET: show it to the user only when asked"`
	SSHCommand  string   `json:"ssh_command,omitempty"`
	WebURLs     []WebURL `json:"web_urls,omitempty" jsonschema_description:"Jupyter, apps"`
}

// Empty reports whether c holds nothing.
func (c Connection) Empty() bool {
	return c.SSHHost == "" && c.SSHCommand == "" && len(c.WebURLs) == 0
}

// Instance is a machine on a provider.
type Instance struct {
	ID              string      `json:"id"`
	Provider        string      `json:"provider"`
	Name            string      `json:"name,omitempty"`
	State           State       `json:"state" jsonschema:"enum=pending,enum=starting,enum=running,enum=restarting,enum=stopping,enum=stopped,enum=saving,enum=deleting,enum=error,enum=unknown" jsonschema_description:"normalized state"`
	RawState        string      `json:"raw_state" jsonschema_description:"as the vendor says it"`
	GPUModel        string      `json:"gpu_model,omitempty"`
	GPUCount        int         `json:"gpu_count,omitempty"`
	VCPUs           int         `json:"vcpus,omitempty"`
	RAMGB           int         `json:"ram_gb,omitempty"`
	Image           string      `json:"image,omitempty"`
	Region          string      `json:"region,omitempty"`
	RegionName      string      `json:"region_name,omitempty" jsonschema_description:"in English, where known"`
	Billing         BillingMode `json:"billing,omitempty"`
	PricePerHour    *float64    `json:"price_per_hour,omitempty" jsonschema_description:"CNY, whole instance, when known"`
	CreatedAt       *time.Time  `json:"created_at,omitempty"`
	ExpiresAt       *time.Time  `json:"expires_at,omitempty" jsonschema_description:"end of a prepaid lease"`
	StopsAt         *time.Time  `json:"stops_at,omitempty" jsonschema_description:"scheduled automatic stop"`
	ImageSaveStatus string      `json:"image_save_status,omitempty" jsonschema_description:"of the last save_image: saving, saved or failed"`
	Connection      *Connection `json:"connection,omitempty"`
	OrderID         string      `json:"order_id,omitempty"`
	Managed         *Managed    `json:"managed,omitempty" jsonschema_description:"what gpu-mcp itself promised about the instance: whether it launched it, its auto-stop lease, and whether it is an orphan"`
}

// Managed is what gpu-mcp knows of an instance beside what the vendor reports. It is filled in
// above the adapters, from gpu-mcp's state store (package fleet), never by an adapter.
type Managed struct {
	LaunchedByGPUMCP bool          `json:"launched_by_gpu_mcp" jsonschema_description:"true when gpu-mcp launched it (its launch ledger has it, or it carries gpu-mcp's name)"`
	Key              string        `json:"key,omitempty" jsonschema_description:"the launch's idempotency key in gpu-mcp's ledger"`
	Lease            *ManagedLease `json:"lease,omitempty" jsonschema_description:"when and how gpu-mcp stops or destroys it by itself"`
	Orphan           string        `json:"orphan,omitempty" jsonschema_description:"set when gpu-mcp launched it but keeps no working promise about it: why (its auto-stop is overdue, or its record is gone)"`
	Work             []ManagedWork `json:"work,omitempty" jsonschema_description:"pending stops on its work (a job's end, idle GPUs), watched by gpu-mcp's reconciler"`
}

// ManagedWork is a pending stop of an instance on its work: when a job ends, or when its GPUs
// stay idle.
type ManagedWork struct {
	Kind      string `json:"kind" jsonschema:"enum=job_end,enum=gpu_idle"`
	Action    string `json:"action" jsonschema:"enum=stop,enum=destroy"`
	When      string `json:"when" jsonschema_description:"when it is due, e.g. when its jobs end"`
	LastError string `json:"last_error,omitempty" jsonschema_description:"why the last look at the machine failed"`
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
	ID          string     `json:"id" jsonschema_description:"launch_instance's image_id"`
	Provider    string     `json:"provider"`
	Name        string     `json:"name"`
	Kind        ImageKind  `json:"kind" jsonschema:"enum=public,enum=private,enum=app"`
	Description string     `json:"description,omitempty"`
	Region      string     `json:"region,omitempty"`
	RegionName  string     `json:"region_name,omitempty" jsonschema_description:"in English, where known"`
	SizeGB      float64    `json:"size_gb,omitempty"`
	Status      string     `json:"status,omitempty" jsonschema_description:"saved images: saving, ready or failed"`
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
	// KeepsBilling says, per action, what still bills once it is done (the disks of a stopped
	// instance, the images of a destroyed one), as far as the vendor documents, as a phrase
	// that follows "still billed:"; the plans of stop_instance, destroy_instance and save_image
	// say it.
	KeepsBilling map[Action]string `json:"keeps_billing,omitempty"`
	// ImageSaved says how the vendor shows that a save_image finished.
	ImageSaved SaveReport `json:"image_saved" jsonschema:"enum=instance,enum=images,enum=none"`
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

// SaveReport is how a vendor shows that an image is saved.
type SaveReport string

const (
	// SaveReportInstance: the instance's ImageSaveStatus (saving, saved, failed).
	SaveReportInstance SaveReport = "instance"
	// SaveReportImages: the image appears, or turns ready, among the account's own images.
	SaveReportImages SaveReport = "images"
	// SaveReportNone: nothing shows it; a wait for the image cannot be confirmed.
	SaveReportNone SaveReport = "none"
)

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
	CNY       float64 `json:"cny"`
	CreditCNY float64 `json:"credit_cny,omitempty" jsonschema_description:"prepaid card or vouchers"`
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
