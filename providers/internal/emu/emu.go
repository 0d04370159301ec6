// Package emu is the skeleton every vendor emulator (hxytest, dftest, cytest, fctest) is built
// on: an HTTP server on loopback with fault injection, one lock over the vendor's state, a
// clock, launch outcomes, a bounded log of the requests received, a machine per instance (a
// real SSH server, providers/machinetest), and the timed steps by which an instance's status
// changes. The vendor packages keep only their wire formats and rules; each embeds a *Server,
// so its methods are the emulator's.
package emu

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"sync"
	"time"

	"github.com/gpu-mcp/gpu-mcp/providers/internal/faults"
	"github.com/gpu-mcp/gpu-mcp/providers/machinetest"
)

// LaunchOutcome is what happens to instances launched from an offer.
type LaunchOutcome int

const (
	// LaunchNormal: the instance is created and reaches the vendor's running state after
	// StepDelay.
	LaunchNormal LaunchOutcome = iota
	// LaunchNeverRuns: the instance is created and billed but stays in the vendor's
	// creating state forever; its machine never answers with an SSH banner.
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

// MaxRequests is how many requests the log keeps, the latest: a demo that runs for days must
// not keep every request it was sent (several KB each).
const MaxRequests = 1000

// maxBody bounds the request bodies read; no vendor request comes near it.
const maxBody = 1 << 20

// Recorded is one request an emulator received.
type Recorded struct {
	Method   string
	Path     string // without the query string
	RawQuery string
	Header   http.Header
	Body     []byte
}

// Query is the request's query string, parsed.
func (r Recorded) Query() url.Values {
	q, _ := url.ParseQuery(r.RawQuery)
	return q
}

// Options configure the skeleton; each vendor emulator fills them in from its own options.
type Options struct {
	// Vendor names the emulator in its SSH banners.
	Vendor string
	// Credential is the secret the emulator accepts (the vendor's demo value unless a test
	// sets another).
	Credential string
	// Prefix is the vendor's path prefix, which URL includes.
	Prefix string
	// StepDelay is how long each transitional status lasts; 0 completes it by the next
	// request.
	StepDelay time.Duration
	// Now is the clock (nil: time.Now).
	Now func() time.Time
	// Settle applies the status changes due at now to the vendor's state. It runs with the
	// lock held before each request is handled.
	Settle func(now time.Time)
	// IsChange tells a request that changes something from a read, for Changes (nil: none
	// counts).
	IsChange func(r *http.Request) bool
	// Wrap, when set, serves the API through it, for tests that watch or hold requests.
	Wrap func(http.Handler) http.Handler
}

// Server is the running skeleton of one emulator. It is safe for concurrent use; the vendor's
// state is guarded by its lock (Lock, Unlock), which every request holds while it is handled.
type Server struct {
	opts     Options
	ts       *httptest.Server
	handler  http.Handler
	faults   *faults.Injector
	outcomes Outcomes

	mu       sync.Mutex
	dir      string // the machines' sandboxes, one directory each; made on first use, removed by Close
	machines map[string]*machine
	halting  []*machine // of instances that stopped running, halted once mu is released
	retired  []*machine // of removed instances, closed once mu is released
	log      []Recorded // a ring of at most MaxRequests
	logged   int        // requests ever recorded
	changes  int
}

// machine is the machine of one instance, with what the emulator knows of its power.
type machine struct {
	m     *machinetest.Machine
	dir   string
	ready func() bool // the vendor's word: the instance runs; asked with the lock held
	up    bool        // guarded by Server.mu: ready was true when last asked
}

// New starts an emulator on a loopback port that serves api: each request is recorded, the
// lock taken and the due status changes applied (Options.Settle) before api handles it, with
// the lock held.
func New(o Options, api http.Handler) *Server {
	if o.Now == nil {
		o.Now = time.Now
	}
	s := &Server{opts: o, faults: faults.NewInjector(), machines: map[string]*machine{}}
	s.handler = s.faults.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.serve(w, r, api)
	}))
	outer := s.handler
	if o.Wrap != nil {
		outer = o.Wrap(outer)
	}
	s.ts = httptest.NewServer(outer)
	return s
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request, api http.Handler) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, maxBody))
	r.Body = io.NopCloser(bytes.NewReader(body))
	s.Lock()
	defer s.Unlock()
	s.record(Recorded{Method: r.Method, Path: r.URL.Path, RawQuery: r.URL.RawQuery, Header: r.Header.Clone(), Body: body})
	if s.opts.IsChange != nil && s.opts.IsChange(r) {
		s.changes++
	}
	if s.opts.Settle != nil {
		s.opts.Settle(s.Now())
	}
	api.ServeHTTP(w, r)
	s.sweep()
}

// sweep notes the machines whose instance stopped running (a stop, a restart, a timer), so
// that Unlock halts them: a stopped instance's processes die at once, not when someone next
// connects. Call with the lock held.
func (s *Server) sweep() {
	for _, m := range s.machines {
		s.power(m)
	}
}

// power asks whether m's instance runs and, if it stopped since it was last asked, queues the
// machine's halt. Call with the lock held.
func (s *Server) power(m *machine) bool {
	up := m.ready()
	if m.up && !up {
		s.halting = append(s.halting, m)
	}
	m.up = up
	return up
}

func (s *Server) record(r Recorded) {
	if len(s.log) < MaxRequests {
		s.log = append(s.log, r)
	} else {
		s.log[s.logged%MaxRequests] = r
	}
	s.logged++
}

// Lock takes the emulator's lock, which guards the vendor's state too.
func (s *Server) Lock() { s.mu.Lock() }

// Unlock releases the lock, then halts the machines of the instances that stopped running
// meanwhile, and closes those of the instances removed, deleting their disks: a machine asks
// for its readiness under the lock, so it must not be waited for with the lock held.
func (s *Server) Unlock() {
	halting, retired := s.halting, s.retired
	s.halting, s.retired = nil, nil
	s.mu.Unlock()
	for _, m := range halting {
		m.m.Halt()
	}
	for _, m := range retired {
		_ = m.m.Close()
		_ = os.RemoveAll(m.dir)
	}
}

// URL is the base URL to give the adapter, the vendor's path prefix included.
func (s *Server) URL() string { return s.ts.URL + s.opts.Prefix }

// Handler serves the emulated API (paths start with the vendor's prefix), faults included,
// for mounting in another server.
func (s *Server) Handler() http.Handler { return s.handler }

// Credential is the secret the emulator accepts: the token or API key.
func (s *Server) Credential() string { return s.opts.Credential }

// Now is the emulator's clock.
func (s *Server) Now() time.Time { return s.opts.Now() }

// StepDelay is how long each transitional status lasts.
func (s *Server) StepDelay() time.Duration { return s.opts.StepDelay }

// Close shuts the emulator down, the instances' machines and their disks included.
func (s *Server) Close() {
	s.faults.Stop()
	s.ts.Close()
	s.Lock()
	for id := range s.machines {
		s.Forget(id)
	}
	dir := s.dir
	s.Unlock()
	if dir != "" {
		_ = os.RemoveAll(dir)
	}
}

// SetFaults replaces the faults injected into the emulator's answers: each request gets the
// first rule that matches it. Without arguments the emulator behaves again.
func (s *Server) SetFaults(rules ...faults.Faults) { s.faults.Set(rules...) }

// FaultsApplied counts the requests a fault was injected into.
func (s *Server) FaultsApplied() int { return s.faults.Applied() }

// SetLaunchOutcome decides what happens to the instances launched from now on from offerKey,
// the adapter's local offer id; "" applies to every offer without its own outcome.
func (s *Server) SetLaunchOutcome(offerKey string, o LaunchOutcome) { s.outcomes.Set(offerKey, o) }

// Outcome is the launch outcome of offerKey (see SetLaunchOutcome).
func (s *Server) Outcome(offerKey string) LaunchOutcome { return s.outcomes.For(offerKey) }

// Requests lists the requests received, oldest first: the last MaxRequests of them.
func (s *Server) Requests() []Recorded {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Recorded, 0, len(s.log))
	start := 0
	if s.logged > MaxRequests {
		start = s.logged % MaxRequests
	}
	for i := range s.log {
		r := s.log[(start+i)%len(s.log)]
		r.Header, r.Body = r.Header.Clone(), bytes.Clone(r.Body)
		out = append(out, r)
	}
	return out
}

// Changes counts the requests received that change something (Options.IsChange), refused ones
// included: a test proves with it that a plan sent nothing but reads.
func (s *Server) Changes() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.changes
}

// Machine describes the machine of a new instance: the login its instance payload hands out
// (the machine accepts exactly that user and password), and its GPUs, which its nvidia-smi
// reports.
type Machine struct {
	User, Password string
	GPUModel       string
	GPUCount       int
	GPUMemoryMiB   int // per GPU; 0: machinetest's default
}

// safeDirName is an instance id that can name its sandbox as it is.
var safeDirName = regexp.MustCompile(`^[A-Za-z0-9_-][A-Za-z0-9_.-]{0,99}$`)

// Listen starts the machine of a new instance id on 127.0.0.1: a real SSH server with a host
// key of its own and a sandbox under the emulator's directory, which serves while ready says
// the instance runs (asked with the lock held). When ready turns false (a stop, a restart),
// the machine is halted: its connections and processes end, its disk stays for the next
// start. Forget removes it, disk and all. Call with the lock held.
func (s *Server) Listen(id string, spec Machine, ready func() bool) (*machinetest.Machine, error) {
	if s.dir == "" {
		dir, err := os.MkdirTemp("", "gpu-mcp-"+s.opts.Vendor+"-emulator-")
		if err != nil {
			return nil, err
		}
		s.dir = dir
	}
	name := id
	if !safeDirName.MatchString(name) {
		h := sha256.Sum256([]byte(id))
		name = hex.EncodeToString(h[:8])
	}
	if _, ok := s.machines[id]; ok {
		return nil, fmt.Errorf("emu: instance %s has a machine already", id)
	}
	dir := filepath.Join(s.dir, name)
	mt, err := machinetest.New(machinetest.Options{Vendor: s.opts.Vendor, User: spec.User, Password: spec.Password,
		GPUModel: spec.GPUModel, GPUCount: spec.GPUCount, GPUMemoryMiB: spec.GPUMemoryMiB, Dir: dir})
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	m := &machine{m: mt, dir: dir, ready: ready}
	mt.SetReadyFunc(func() bool {
		s.Lock()
		defer s.Unlock()
		return s.power(m)
	})
	s.machines[id] = m
	return mt, nil
}

// Forget retires the machine of a removed instance; the next Unlock closes it and deletes its
// disk. Call with the lock held.
func (s *Server) Forget(id string) {
	if m, ok := s.machines[id]; ok {
		s.retired = append(s.retired, m)
		delete(s.machines, id)
	}
}

// SSHAddr is "127.0.0.1:<port>" of the machine of the instance id.
func (s *Server) SSHAddr(id string) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m, ok := s.machines[id]
	if !ok {
		return "", false
	}
	return m.m.Addr(), true
}

// Machine is the machine of the instance id, for tests that look at it or change it: its
// host key (RotateHostKey, as a rebuild does), its GPUs' utilization, its sandbox.
func (s *Server) Machine(id string) (*machinetest.Machine, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m, ok := s.machines[id]
	if !ok {
		return nil, false
	}
	return m.m, true
}
