// Package state is gpu-mcp's durable store: what the program promised about money and
// machines, kept so that it outlives the process and holds across replicas.
//
// One interface, Store, has two backends chosen by a URL (GPU_MCP_STATE_URL, see Open):
// embedded SQLite (the default, no set-up) for one machine, and PostgreSQL for several
// replicas sharing one database. Both pass the same conformance suite (state/statetest).
//
// Every guarantee that matters is made by the database, never by a read followed by a
// write: "first time only" is a unique insert, "exactly once across replicas" is a row claim,
// "never over the limit" is a transaction serialized against every other one of its kind.
//
// Conventions that hold for every method:
//   - Times are stored in UTC with microsecond precision: a time read back equals the one
//     written, truncated to the microsecond and in UTC. A zero time.Time is stored as NULL
//     and read back as the zero time.
//   - JSON fields (json.RawMessage) must hold valid JSON or be empty (stored as NULL).
//     PostgreSQL keeps them as jsonb, which may reorder keys and drop insignificant
//     whitespace: compare JSON by meaning, not by bytes.
//   - Callbacks given to a method (UpdateLaunch's fn, Reserve's check, ...) run inside the
//     method's transaction. They must not call the Store (on SQLite the one writer
//     connection is theirs: a nested call waits forever), should be quick (they hold a lock
//     other replicas wait for), and may run more than once when the transaction is retried
//     after contention: they may only change the record they are given, or decide.
//   - Errors wrap ErrNotFound, ErrExists, ErrNotOwner, ErrInvalid or ErrSchemaTooNew where
//     those apply (test with errors.Is); an error returned by a callback is returned as it
//     is, so a caller can test for its own errors.
//   - A Store is safe for concurrent use by many goroutines, and any number of processes
//     may open the same database at once.
package state

import (
	"context"
	"encoding/json"
	"errors"
	"time"
)

// Errors the store's methods wrap.
var (
	// ErrNotFound: no record has that key or id.
	ErrNotFound = errors.New("not found in the state store")
	// ErrExists: an insert met a record with the same id.
	ErrExists = errors.New("already exists in the state store")
	// ErrNotOwner: the caller's claim on a lease has been taken by another owner (or there is
	// none), so it may not record an outcome.
	ErrNotOwner = errors.New("the claim is not held by this owner")
	// ErrInvalid: a record or argument was refused before it reached the database.
	ErrInvalid = errors.New("refused by the state store")
	// ErrSchemaTooNew: the database was migrated by a newer gpu-mcp than this one.
	ErrSchemaTooNew = errors.New("the state store's schema is newer than this gpu-mcp")
)

// Backend names, as Store.Backend reports them.
const (
	BackendSQLite   = "sqlite"
	BackendPostgres = "postgres"
)

// Store is the durable state of gpu-mcp. See the package documentation for the conventions
// every method follows.
type Store interface {
	// Backend is BackendSQLite or BackendPostgres.
	Backend() string
	// Ping checks that the database answers.
	Ping(ctx context.Context) error
	// Close releases the database. The data stays (except for an in-memory store).
	Close() error

	// Secret returns the secret called name, creating it with gen when there is none. Two
	// processes racing on a new name both get the value that was stored first; gen may run
	// in both, and the loser's value is dropped.
	Secret(ctx context.Context, name string, gen func() ([]byte, error)) ([]byte, error)

	// SpendToken records that the confirmation token with this digest was used. It returns
	// true the first time the digest is spent and false every time after, across restarts
	// and replicas (it is a unique insert). expires is when the token stops being valid
	// anyway; after it, PruneTokens may forget the digest. Store digests, never tokens.
	SpendToken(ctx context.Context, digest string, expires time.Time) (fresh bool, err error)
	// PruneTokens deletes digests whose expiry is at or before now and returns how many.
	// Correctness never depends on it (an expired token is refused by its expiry); it only
	// keeps the table small. Once a minute at most is plenty.
	PruneTokens(ctx context.Context, now time.Time) (int64, error)

	// CreateLaunch records the intent of a launch under its idempotency key l.Key, before any
	// vendor is called. When the key is new it stores l (Status defaults to LaunchIntent,
	// CreatedAt and UpdatedAt are set by the store) and returns nil. When the key exists it
	// changes nothing and returns the stored record, so a caller that finds one must not
	// launch again: it compares ArgsHash and reports or waits for the first launch. It is a
	// unique insert: of many concurrent creators of one key exactly one gets nil.
	CreateLaunch(ctx context.Context, l Launch) (existing *Launch, err error)
	// UpdateLaunch applies fn to the launch under key in a transaction that holds the record
	// against every other writer, and stores the result (Key and CreatedAt are kept,
	// UpdatedAt is set). It returns the stored record. If fn returns an error nothing is
	// written and that error is returned. A key whose launch failed before anything was
	// bought can be taken again this way: fn checks the status and resets it to LaunchIntent.
	UpdateLaunch(ctx context.Context, key string, fn func(*Launch) error) (Launch, error)
	// GetLaunch returns the launch under key, or ErrNotFound.
	GetLaunch(ctx context.Context, key string) (Launch, error)
	// ListLaunches returns the launches that match f, oldest first.
	ListLaunches(ctx context.Context, f LaunchFilter) ([]Launch, error)

	// PutLease stores the lease for (l.InstanceID, l.Kind): a new one gets l.ID (or a
	// generated id when empty); an existing one keeps its ID and CreatedAt and takes every
	// other field from l. Any claim on it is dropped, so a reaper that was firing the old
	// terms cannot record an outcome against the new ones (its ReleaseLease gets
	// ErrNotOwner). A zero NextCheckAt means DueAt for a LeaseTime lease and now otherwise.
	// It returns the stored lease.
	PutLease(ctx context.Context, l Lease) (Lease, error)
	// GetLease returns the lease with id, or ErrNotFound.
	GetLease(ctx context.Context, id string) (Lease, error)
	// ListLeases returns the leases that match f, soonest NextCheckAt first.
	ListLeases(ctx context.Context, f LeaseFilter) ([]Lease, error)
	// DeleteLease removes the lease with id; deleting one that is not there is no error.
	DeleteLease(ctx context.Context, id string) error
	// ClaimDue claims up to limit leases that are due at now (NextCheckAt <= now), not fired,
	// and not held by a live claim (ClaimUntil after now), for owner until now+claimFor, and
	// returns them with the claim set, soonest first. It is atomic and exactly once: a lease
	// is in the answer of one claimer only, until the claim expires. An owner that dies
	// while holding a claim loses it at ClaimUntil, and the lease is then claimed again: the
	// actions leases drive (stop, destroy) must be safe to repeat. claimFor should cover the
	// action and its vendor calls with room to spare.
	ClaimDue(ctx context.Context, owner string, now time.Time, claimFor time.Duration, limit int) ([]Lease, error)
	// ReleaseLease records what owner did with a lease it claimed: fn gets the stored lease
	// and sets FiredAt and Outcome (done), or a later NextCheckAt, Attempts and LastError
	// (try again). The claim is then dropped. ID, InstanceID, Kind and CreatedAt are kept
	// whatever fn does. When the lease is claimed by another owner, or by none, nothing is
	// written and the error wraps ErrNotOwner: another replica took over after this claim
	// expired (or the lease was put anew), and its record wins.
	ReleaseLease(ctx context.Context, id, owner string, fn func(*Lease)) (Lease, error)

	// AppendAudit adds rec to the audit trail (At defaults to now; ID is assigned). The trail
	// is append-only. Never put a token, key or password in it.
	AppendAudit(ctx context.Context, rec AuditRecord) error
	// ListAudit returns up to limit records at or after since (zero: from the first), oldest
	// first (limit <= 0: all).
	ListAudit(ctx context.Context, since time.Time, limit int) ([]AuditRecord, error)

	// PutOperation inserts op (ErrExists when op.ID is taken; an empty ID is generated;
	// Status defaults to OperationPending and Heartbeat to now) and returns the stored one.
	PutOperation(ctx context.Context, op Operation) (Operation, error)
	// UpdateOperation applies fn to the operation with id in a transaction, like
	// UpdateLaunch. An owner that may have been replaced checks op.Owner in fn and returns
	// ErrNotOwner. The owner keeps its operation alive by setting Heartbeat here.
	UpdateOperation(ctx context.Context, id string, fn func(*Operation) error) (Operation, error)
	// GetOperation returns the operation with id, or ErrNotFound.
	GetOperation(ctx context.Context, id string) (Operation, error)
	// ListOperations returns the operations that match f, oldest first.
	ListOperations(ctx context.Context, f OperationFilter) ([]Operation, error)
	// ClaimStaleOperation adopts one pending operation whose Heartbeat is before staleBefore
	// (its owner stopped beating: it died): Owner becomes owner and Heartbeat now, atomically,
	// so two replicas never adopt the same one. It returns nil, nil when there is none.
	ClaimStaleOperation(ctx context.Context, owner string, staleBefore time.Time) (*Operation, error)

	// PinHostKey records key as the SSH host key of instanceID if none is recorded (trust on
	// first use, atomically: of two racing callers one pins and both get its key). It returns
	// the pinned key and whether this call pinned it; the caller compares pinned with the key
	// the server showed and refuses to connect when they differ.
	PinHostKey(ctx context.Context, instanceID string, key []byte) (pinned []byte, firstUse bool, err error)
	// ForgetHostKey drops the pinned key of instanceID (the instance was destroyed); no
	// error when there is none.
	ForgetHostKey(ctx context.Context, instanceID string) error

	// PutJob inserts j (ErrExists when j.ID is taken; an empty ID is generated) and returns
	// the stored one.
	PutJob(ctx context.Context, j Job) (Job, error)
	// UpdateJob applies fn to the job with id in a transaction, like UpdateLaunch.
	UpdateJob(ctx context.Context, id string, fn func(*Job) error) (Job, error)
	// GetJob returns the job with id, or ErrNotFound.
	GetJob(ctx context.Context, id string) (Job, error)
	// ListJobs returns the jobs on instanceID (every job when it is empty), oldest first.
	ListJobs(ctx context.Context, instanceID string) ([]Job, error)

	// Reserve is the spend guard's one door. In one transaction serialized against every
	// other Reserve of every replica, it reads a Snapshot (the unexpired reservations and the
	// commitments of the last SpendWindow), calls check with it, and, unless check returns an
	// error, inserts r and commit (when not nil). So when check admits a launch only while the
	// total stays under a limit, concurrent launches can never add up to more than the limit.
	// r needs an ID, a Provider and an ExpiresAt (a reservation of a replica that dies runs
	// out); r.CreatedAt and commit.At default to now. Expired reservations are deleted.
	Reserve(ctx context.Context, r Reservation, commit *Commitment, check func(Snapshot) error) error
	// AttachReservation sets the instance a reservation is for, once the vendor named it.
	AttachReservation(ctx context.Context, id, instanceID string) error
	// ReleaseReservation drops a reservation (its instance is counted from the vendor now, or
	// the launch failed); releasing one that is not there is no error.
	ReleaseReservation(ctx context.Context, id string) error
	// ActiveReservations returns the reservations that expire after now (zero: every one kept),
	// oldest first.
	ActiveReservations(ctx context.Context, now time.Time) ([]Reservation, error)
	// Committed returns the CNY committed at or after since (zero: ever).
	Committed(ctx context.Context, since time.Time) (float64, error)
	// CancelCommitment removes the commitment with id: the money was not spent after all
	// (the vendor refused the order). Cancelling one that is not there is no error.
	CancelCommitment(ctx context.Context, id string) error
}

// LaunchStatus is where a launch stands. Its steps are recorded in order: LaunchIntent before
// the vendor is called, LaunchOrdered once the vendor took the order, LaunchCreated when
// the vendor's instance id is known, then LaunchReady, or LaunchFailed and LaunchCleanedUp.
// LaunchUnknown: the vendor's answer was lost, so whether anything was bought is not known.
type LaunchStatus string

// Launch statuses.
const (
	LaunchIntent    LaunchStatus = "intent"
	LaunchOrdered   LaunchStatus = "ordered"
	LaunchCreated   LaunchStatus = "created"
	LaunchReady     LaunchStatus = "ready"
	LaunchFailed    LaunchStatus = "failed"
	LaunchCleanedUp LaunchStatus = "cleaned_up"
	LaunchUnknown   LaunchStatus = "unknown"
)

func (s LaunchStatus) valid() bool {
	switch s {
	case LaunchIntent, LaunchOrdered, LaunchCreated, LaunchReady, LaunchFailed, LaunchCleanedUp, LaunchUnknown:
		return true
	}
	return false
}

// Launch is one entry of the launch ledger.
type Launch struct {
	Key      string // idempotency key: the agent's, or one gpu-mcp generated
	ArgsHash string // digest of the canonical arguments the key was first used with
	Provider string
	OfferID  string
	ImageID  string
	// VendorName is the name gpu-mcp gave the instance at the vendor, so that an instance
	// whose creation answer was lost can be found again by listing.
	VendorName string
	Status     LaunchStatus
	InstanceID string // provider-qualified, once known
	OrderID    string // the vendor's order number, where it has one
	Result     json.RawMessage
	Error      string
	Owner      string // the replica working on it
	CreatedAt  time.Time
	UpdatedAt  time.Time
}

// LaunchFilter selects launches; zero fields select everything.
type LaunchFilter struct {
	Statuses   []LaunchStatus // any of these
	InstanceID string
	VendorName string
	Limit      int
}

// LeaseKind is what ends a lease.
type LeaseKind string

// Lease kinds.
const (
	LeaseTime    LeaseKind = "time"     // a point in time (DueAt)
	LeaseJobEnd  LeaseKind = "job_end"  // a job's end (Params names it)
	LeaseGPUIdle LeaseKind = "gpu_idle" // GPUs idle for a while (Params: threshold, window)
)

func (k LeaseKind) valid() bool {
	return k == LeaseTime || k == LeaseJobEnd || k == LeaseGPUIdle
}

// LeaseAction is what happens to the instance when its lease ends.
type LeaseAction string

// Lease actions.
const (
	ActionStop    LeaseAction = "stop"
	ActionDestroy LeaseAction = "destroy"
)

func (a LeaseAction) valid() bool { return a == ActionStop || a == ActionDestroy }

// Enforcer is who carries out a lease.
type Enforcer string

// Enforcers.
const (
	// EnforcerVendor: the vendor's own timer (gpu-mcp still checks that it did).
	EnforcerVendor Enforcer = "vendor"
	// EnforcerGPUMCP: gpu-mcp's reaper, in whichever replica claims it.
	EnforcerGPUMCP Enforcer = "gpu-mcp"
)

func (e Enforcer) valid() bool { return e == EnforcerVendor || e == EnforcerGPUMCP }

// Lease is a promise gpu-mcp made about an instance that must be kept with no client
// connected: stop or destroy it at a time, when a job ends, or when its GPUs are idle. There
// is at most one lease per (InstanceID, Kind).
type Lease struct {
	ID         string
	InstanceID string // provider-qualified
	Provider   string
	Kind       LeaseKind
	Action     LeaseAction
	DueAt      time.Time       // LeaseTime: when the action is due
	Params     json.RawMessage // LeaseJobEnd, LeaseGPUIdle: job id, threshold, window
	Enforcer   Enforcer
	LaunchKey  string // the launch that made it, if any
	// NextCheckAt is when a reaper next looks at the lease: DueAt for a time lease, the next
	// poll for the others, later after a failed attempt.
	NextCheckAt time.Time
	Attempts    int
	LastError   string
	ClaimOwner  string    // the reaper working on it; empty when unclaimed
	ClaimUntil  time.Time // the claim's end
	FiredAt     time.Time // when the action was carried out; zero while pending
	Outcome     string
	CreatedAt   time.Time
	UpdatedAt   time.Time
}

// LeaseFilter selects leases; zero fields select everything.
type LeaseFilter struct {
	InstanceID string
	Kind       LeaseKind
	Pending    bool // only leases not fired yet
}

// AuditRecord is one guarded call in the audit trail.
type AuditRecord struct {
	ID           int64 // assigned by the store, increasing
	At           time.Time
	Tool         string
	Args         json.RawMessage // without the confirmation token
	Plan         json.RawMessage
	Confirmation string // none, token, elicitation_accept, ...
	Outcome      string
	Detail       string
	Demo         bool
	Replica      string
}

// OperationStatus is where a long operation stands.
type OperationStatus string

// Operation statuses.
const (
	OperationPending   OperationStatus = "pending"
	OperationDone      OperationStatus = "done"
	OperationFailed    OperationStatus = "failed"
	OperationCancelled OperationStatus = "cancelled"
)

func (s OperationStatus) valid() bool {
	switch s {
	case OperationPending, OperationDone, OperationFailed, OperationCancelled:
		return true
	}
	return false
}

// Operation is a long tool call that outlives its client's patience: the client gets its ID
// and follows it; another replica adopts it if its owner dies (ClaimStaleOperation).
type Operation struct {
	ID         string
	Kind       string
	Tool       string
	Args       json.RawMessage
	Status     OperationStatus
	Progress   string // the last progress message, for humans
	Result     json.RawMessage
	Error      string
	InstanceID string
	Owner      string
	Heartbeat  time.Time // the owner's last sign of life
	CreatedAt  time.Time
	UpdatedAt  time.Time
}

// OperationFilter selects operations; zero fields select everything.
type OperationFilter struct {
	Statuses   []OperationStatus
	InstanceID string
	Owner      string
}

// Job is a detached command running on an instance.
type Job struct {
	ID         string
	InstanceID string
	Command    string
	PID        int
	LogPath    string // on the instance
	StartedAt  time.Time
	EndedAt    time.Time // zero while it runs
	ExitCode   *int      // nil while it runs, or when it was killed without one
	// StopInstanceWhenDone: a LeaseJobEnd lease goes with it.
	StopInstanceWhenDone bool
	UpdatedAt            time.Time
}

// Reservation holds spending room for a launch between the spend check and the moment the
// vendor's bill shows the instance.
type Reservation struct {
	ID           string
	Provider     string
	InstanceID   string // empty until the vendor named it
	LaunchKey    string
	PricePerHour float64 // CNY
	UpfrontCNY   float64
	CreatedAt    time.Time
	ExpiresAt    time.Time
}

// CommitmentKind is what committed money.
type CommitmentKind string

// Commitment kinds.
const (
	CommitLaunch      CommitmentKind = "launch"
	CommitStart       CommitmentKind = "start"
	CommitRenew       CommitmentKind = "renew"
	CommitLeaseExtend CommitmentKind = "lease_extend"
)

func (k CommitmentKind) valid() bool {
	return k == CommitLaunch || k == CommitStart || k == CommitRenew || k == CommitLeaseExtend
}

// Commitment is money gpu-mcp agreed to spend, in the spend ledger.
type Commitment struct {
	ID         string // generated when empty
	At         time.Time
	Provider   string
	InstanceID string
	Kind       CommitmentKind
	CNY        float64
}

// SpendWindow is how far back a Snapshot looks for commitments.
const SpendWindow = 24 * time.Hour

// CommitmentRetention is how long a commitment is kept: Reserve deletes older ones.
const CommitmentRetention = 30 * 24 * time.Hour

// Snapshot is what Reserve's check decides on.
type Snapshot struct {
	Now          time.Time
	Reservations []Reservation // unexpired, oldest first
	Commitments  []Commitment  // of the last SpendWindow, oldest first
}

// ReservedPerHour is the hourly price of every reservation in s.
func (s Snapshot) ReservedPerHour() float64 {
	var sum float64
	for _, r := range s.Reservations {
		sum += r.PricePerHour
	}
	return sum
}

// Committed is the CNY of every commitment in s.
func (s Snapshot) Committed() float64 {
	var sum float64
	for _, c := range s.Commitments {
		sum += c.CNY
	}
	return sum
}
