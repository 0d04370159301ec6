// Package emu holds what the vendor emulators (hxytest, dftest, cytest) share: launches that
// go wrong, and the retiring of SSH endpoints. Each emulator re-exports the type and its values, so that users of an
// emulator need not import this package.
package emu

import (
	"sync"

	"github.com/gpu-mcp/gpu-mcp/providers/internal/sshd"
)

// LaunchOutcome is what happens to instances launched from an offer.
type LaunchOutcome int

const (
	// LaunchNormal: the instance is created and reaches the vendor's running state after
	// StepDelay.
	LaunchNormal LaunchOutcome = iota
	// LaunchNeverRuns: the instance is created and billed but stays in the vendor's
	// creating state forever; its SSH endpoint never answers with a banner.
	LaunchNeverRuns
	// LaunchFails: the instance goes to the vendor's failure state after StepDelay; for a
	// vendor without one, it behaves like LaunchNeverRuns.
	LaunchFails
	// LaunchSoldOut: the create call is refused the way the vendor refuses when capacity is
	// gone; no instance is made.
	LaunchSoldOut
)

var names = [...]string{"normal", "never_runs", "fails", "sold_out"}

func (o LaunchOutcome) String() string {
	if o >= 0 && int(o) < len(names) {
		return names[o]
	}
	return "unknown"
}

// Outcomes maps offer keys to outcomes; the key "" applies to every offer without its own.
// The zero value is ready to use and safe for concurrent use.
type Outcomes struct {
	mu sync.Mutex
	m  map[string]LaunchOutcome
}

// Set records o for offerKey ("" = every offer). LaunchNormal for a key removes its entry.
func (t *Outcomes) Set(offerKey string, o LaunchOutcome) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if o == LaunchNormal {
		delete(t.m, offerKey)
		return
	}
	if t.m == nil {
		t.m = map[string]LaunchOutcome{}
	}
	t.m[offerKey] = o
}

// For is the outcome of a launch of offerKey: its own entry, else the "" entry, else
// LaunchNormal.
func (t *Outcomes) For(offerKey string) LaunchOutcome {
	t.mu.Lock()
	defer t.mu.Unlock()
	if o, ok := t.m[offerKey]; ok {
		return o
	}
	return t.m[""]
}

// Retired holds the SSH endpoints of removed instances until the emulator's lock is released:
// an endpoint's readiness func takes that lock, so an endpoint must not be closed (which waits
// for its connections) with the lock held. Use it only with the emulator's lock held.
type Retired struct{ eps []*sshd.Endpoint }

// Add sets endpoints aside, to be closed by the next Unlock.
func (r *Retired) Add(eps ...*sshd.Endpoint) { r.eps = append(r.eps, eps...) }

// Unlock releases mu, which the caller holds, then closes the endpoints set aside.
func (r *Retired) Unlock(mu *sync.Mutex) {
	eps := r.eps
	r.eps = nil
	mu.Unlock()
	for _, ep := range eps {
		_ = ep.Close()
	}
}
