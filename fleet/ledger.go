package fleet

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gpu-mcp/gpu-mcp/fleet/work"
	"github.com/gpu-mcp/gpu-mcp/providers"
	"github.com/gpu-mcp/gpu-mcp/state"
)

// record is what the ledger keeps of a launch beside the store's columns (in Launch.Result):
// enough for any gpu-mcp process to see the launch through once the one that began it is
// gone.
type record struct {
	Spec     providers.LaunchSpec `json:"spec"` // the current attempt's, with qualified ids
	GPUModel string               `json:"gpu_model,omitempty"`
	Wait     bool                 `json:"wait"`
	WaitFor  time.Duration        `json:"wait_for,omitempty"`
	AutoStop *leaseTerms          `json:"auto_stop,omitempty"`
	IdleStop *idleTerms           `json:"idle_stop,omitempty"`
	// Attempt numbers the current attempt, from 1; Started is when its intent was recorded.
	Attempt  int       `json:"attempt"`
	Started  time.Time `json:"started"`
	Attempts []Attempt `json:"attempts,omitempty"` // the attempts finished before it
	// Outcome is the launch's answer, once it has one: a repeat of the launch gets it.
	Outcome *Outcome `json:"outcome,omitempty"`
	// TakenOver: the process that began the launch is gone, and reconcilers see it through.
	TakenOver bool `json:"taken_over,omitempty"`
	// Cancel is when the user cancelled the launch: its instance is cleaned up, not adopted.
	Cancel time.Time `json:"cancel,omitzero"`
}

// leaseTerms are the auto-stop the user approved with the launch.
type leaseTerms struct {
	After   time.Duration     `json:"after"`
	Action  state.LeaseAction `json:"action"`
	Applied bool              `json:"applied,omitempty"`
}

// idleTerms are a launch's stop when the GPUs stay idle, until put on its instance.
type idleTerms struct {
	Policy  work.IdlePolicy `json:"policy"`
	Applied bool            `json:"applied,omitempty"`
}

func (r *record) waitUntil() time.Time { return r.Started.Add(r.WaitFor) }

func decodeRecord(l *state.Launch) (*record, error) {
	r := &record{}
	if len(l.Result) == 0 {
		return r, nil
	}
	if err := json.Unmarshal(l.Result, r); err != nil {
		return nil, fmt.Errorf("launch %q: its ledger record cannot be read: %w", l.Key, err)
	}
	return r, nil
}

func (r *record) encode() json.RawMessage {
	b, err := json.Marshal(r)
	if err != nil {
		panic(fmt.Sprintf("a launch record must encode: %v", err))
	}
	return b
}

// inFlight are the statuses of a launch that is not seen through yet.
var inFlight = []state.LaunchStatus{state.LaunchIntent, state.LaunchOrdered, state.LaunchCreated, state.LaunchUnknown}

// freed reports whether a launch's key may be used again: its order failed before anything
// was bought (or nothing of it was ever listed), and it has no answer to give.
func freed(l *state.Launch, r *record) bool {
	return l.Status == state.LaunchFailed && r.Outcome == nil
}

// NewKey is the ledger key of a launch whose agent gave none.
func NewKey() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return "gen-" + hex.EncodeToString(b)
}

// maxNameLen bounds a vendor name; every vendor takes 64 characters.
const maxNameLen = 64

// VendorName is the name gpu-mcp gives the instance of a launch at the vendor, derived from
// its ledger key, so that a launch whose answer was lost can be found again by listing:
// gm-<8 hex of sha256(key)>, after the agent's own name when it gave one, and -<n> for the
// n-th offer tried. The ledger keeps the first attempt's name (the launch's).
func VendorName(key, name string, attempt int) string {
	h := sha256.Sum256([]byte(key))
	tag := "gm-" + hex.EncodeToString(h[:4])
	name = strings.TrimSpace(name)
	if name != "" {
		room := maxNameLen - len(tag) - len("-99") - 1
		for len(name) > room {
			_, size := utf8.DecodeLastRuneInString(name)
			name = name[:len(name)-size]
		}
		tag = strings.TrimRight(name, " ._-") + "-" + tag
	}
	return attemptName(tag, attempt)
}

// attemptName is the vendor name of a launch's n-th attempt, from the launch's name.
func attemptName(base string, n int) string {
	if n <= 1 {
		return base
	}
	return base + "-" + strconv.Itoa(n)
}

// vendorNameRE matches the names VendorName makes; its first group is the launch's name.
var vendorNameRE = regexp.MustCompile(`^((?:.*-)?gm-[0-9a-f]{8})(?:-[0-9]+)?$`)

// launchName is the launch's name in an instance's vendor name, when gpu-mcp gave it.
func launchName(name string) (string, bool) {
	m := vendorNameRE.FindStringSubmatch(name)
	if m == nil {
		return "", false
	}
	return m[1], true
}

// Prior is what the ledger holds of a launch whose key was seen before.
type Prior struct {
	Status state.LaunchStatus
	// Outcome is the launch's answer; nil while it runs, or when its outcome is unknown.
	Outcome *Outcome
	// Error is what went wrong, when the outcome is unknown.
	Error string
	// InFlight: the launch is not seen through yet (Launched sets it).
	InFlight bool
}

// ledgerEntry reads the launch under key and its record: nil, with no error, when the ledger
// has none.
func (f *Fleet) ledgerEntry(ctx context.Context, key string) (*state.Launch, *record, error) {
	l, err := f.o.Store.GetLaunch(ctx, key)
	if errors.Is(err, state.ErrNotFound) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, storeError("look up the launch ledger", err)
	}
	r, err := decodeRecord(&l)
	if err != nil {
		return nil, nil, storeError("look up the launch ledger", err)
	}
	return &l, r, nil
}

// Lookup finds the launch under key, for a repeat of it: nil when the key is new (or free
// again, because nothing was bought under it). The same key with other arguments is refused.
func (f *Fleet) Lookup(ctx context.Context, key, argsHash string) (*Prior, error) {
	l, r, err := f.ledgerEntry(ctx, key)
	if l == nil || err != nil {
		return nil, err
	}
	if freed(l, r) {
		return nil, nil
	}
	if l.ArgsHash != argsHash {
		return nil, keyReused(key)
	}
	return &Prior{Status: l.Status, Outcome: r.Outcome, Error: l.Error}, nil
}

func keyReused(key string) error {
	return &providers.Error{Kind: providers.KindInvalid, Provider: "gpu-mcp", Op: "launch",
		Message: fmt.Sprintf("idempotency_key %q was already used with other arguments; use a new key for a different launch", key)}
}

// keyTaken is the error of a launch whose key another launch holds: in progress, done, or
// with an unknown outcome. Nothing was bought again.
func keyTaken(key string) error {
	return &providers.Error{Kind: providers.KindConflict, Provider: "gpu-mcp", Op: "launch",
		Message: fmt.Sprintf("a launch with idempotency_key %q is already in progress or done; nothing was bought again", key),
		Remedy:  "check list_instances"}
}

// storeError is the error of a state store that failed: nothing was bought.
func storeError(what string, err error) error {
	return &providers.Error{Kind: providers.KindUnavailable, Provider: "gpu-mcp", Op: what, Err: err,
		Message: "the state store failed: " + err.Error(),
		Remedy:  "check GPU_MCP_STATE_URL and the database; nothing was bought"}
}

// write applies fn to the ledger entry of key and its record, and stores both. fn may
// return an error to write nothing.
func (f *Fleet) write(ctx context.Context, key string, fn func(*state.Launch, *record) error) (state.Launch, *record, error) {
	var out *record
	l, err := f.o.Store.UpdateLaunch(ctx, key, func(l *state.Launch) error {
		r, err := decodeRecord(l)
		if err != nil {
			return err
		}
		if err := fn(l, r); err != nil {
			return err
		}
		l.Result = r.encode()
		out = r
		return nil
	})
	return l, out, err
}

// note records a step of a launch. A step is a fact (the vendor took the order, the instance
// exists) and is recorded whoever owns the launch now; only a failure of the store is
// logged, loudly, since the ledger then lags behind the vendor.
func (f *Fleet) note(key string, fn func(*state.Launch, *record)) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, _, err := f.write(ctx, key, func(l *state.Launch, r *record) error { fn(l, r); return nil }); err != nil {
		f.log.Error().Err(err).Str("launch", key).Msg("the launch ledger could not record a step; the reconciler finds the instance again by its name")
	}
}
