// Package emulated is what --demo and the cross-vendor tests see of a vendor emulator (the
// hxytest, dftest and cytest packages, each an in-process fake of its vendor's HTTP API on
// loopback), whatever the vendor: its options, its faults, its launch outcomes and the handle
// of a running one. A vendor's descriptor (providers.Vendor) starts its emulator.
package emulated

import (
	"net/http"
	"time"

	"github.com/gpu-mcp/gpu-mcp/providers/internal/emu"
	"github.com/gpu-mcp/gpu-mcp/providers/internal/faults"
	"github.com/gpu-mcp/gpu-mcp/providers/machinetest"
)

// Options are what every emulator takes.
type Options struct {
	// StepDelay is how long each transitional status of an instance lasts (creating,
	// stopping, ...); 0 completes it by the next request.
	StepDelay time.Duration
	// Now is the emulator's clock (nil: time.Now); a test moves it to reach a vendor's timer.
	Now func() time.Time
	// Wrap, when set, serves the emulated API through it, for tests that watch or hold the
	// requests.
	Wrap func(http.Handler) http.Handler
}

// Faults makes an emulator misbehave: latency, 429, 500, garbage, an HTML error page, a
// dropped connection, a stalled body; for all requests or those of one method and path.
type Faults = faults.Faults

// LaunchOutcome is what happens to the instances launched from an offer.
type LaunchOutcome = emu.LaunchOutcome

// Launch outcomes; see the emulator's package for how its vendor shows each.
const (
	LaunchNormal    = emu.LaunchNormal    // created, running after StepDelay
	LaunchNeverRuns = emu.LaunchNeverRuns // created and billed, but never running
	LaunchFails     = emu.LaunchFails     // created, then the vendor's failure status
	LaunchSoldOut   = emu.LaunchSoldOut   // the order is refused as sold out; nothing made
)

// Recorded is one request an emulator received.
type Recorded = emu.Recorded

// MaxRequests is how many of the latest requests an emulator keeps.
const MaxRequests = emu.MaxRequests

// Server is a running emulator.
type Server interface {
	// URL is the base URL the adapter is configured with.
	URL() string
	// Credential is the secret it accepts (a token, an API key).
	Credential() string
	// SetFaults replaces the faults injected into its answers (none: it behaves again).
	SetFaults(rules ...Faults)
	// FaultsApplied counts the requests a fault was injected into.
	FaultsApplied() int
	// SetLaunchOutcome decides what happens to the instances launched from now on from the
	// offer with this vendor-local id ("": every offer without its own outcome).
	SetLaunchOutcome(offerKey string, o LaunchOutcome)
	// SSHAddr is "127.0.0.1:<port>" of the machine of the instance with this vendor-local id;
	// every emulated instance has one, a real SSH server that serves exactly while the
	// instance runs, with the login the vendor hands out.
	SSHAddr(instanceID string) (string, bool)
	// Machine is that machine, for tests that look at it or change it: RotateHostKey (as
	// rebuilding the instance does), SetGPUUtilization, its sandbox.
	Machine(instanceID string) (*machinetest.Machine, bool)
	// Requests lists the latest requests received, oldest first.
	Requests() []Recorded
	// Changes counts the requests received that change something (buy, stop, delete, ...).
	Changes() int
	// Close shuts the emulator down, the machines and their disks included.
	Close()
}

// Endpoints are the requests of an emulated API that tests aim faults at.
type Endpoints struct {
	// Offers is the path suffix of the request a failing ListOffers fails on, and OfferReads
	// how many of them one ListOffers sends at once.
	Offers     string
	OfferReads int
	// Buy is the method and path suffix of the request that buys an instance.
	Buy Faults
}
