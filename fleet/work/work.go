// Package work is what gpu-mcp does on an instance's machine for an agent, and the promises it
// keeps about that work. It finds a running instance's machine and how to log in to it (the
// vendor's connection details, or the key from GPU_MCP_SSH_KEY), keeps the one pool of SSH
// connections (fleet/remote) whose host keys are pinned in the state store, records the jobs it
// starts (state.Job), and puts and checks the leases on work: stop the instance when its jobs
// end (state.LeaseJobEnd) or when its GPUs stay idle for a while (state.LeaseGPUIdle). Those
// leases fire through fleet's reconciler, which asks CheckLease whether one is due, with no
// client connected.
//
// Credentials never leave this package but to log in: no error, log line or record holds the
// vendor's password or the key.
package work

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/crypto/ssh"

	"github.com/gpu-mcp/gpu-mcp/fleet/remote"
	"github.com/gpu-mcp/gpu-mcp/providers"
	"github.com/gpu-mcp/gpu-mcp/state"
)

// Options configure a Work. Providers and Store are required.
type Options struct {
	Providers *providers.Registry
	Store     state.Store
	// Key, when set, logs in before the vendor's password is tried (GPU_MCP_SSH_KEY).
	Key ssh.Signer
	Log zerolog.Logger
	// Pool tunes the connection pool; its logger is Log.
	Pool remote.PoolOptions
	// Now is the clock of job records and lease checks (default time.Now).
	Now func() time.Time
}

// Work is the work on instances' machines. It is safe for concurrent use.
type Work struct {
	o    Options
	pool *remote.Pool
}

// New returns a Work with its connection pool; Close closes the pool.
func New(o Options) (*Work, error) {
	if o.Providers == nil || o.Store == nil {
		return nil, errors.New("work: a provider registry and a state store are required")
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	o.Pool.Logger = o.Log
	return &Work{o: o, pool: remote.NewPool(remote.StoreHostKeys(o.Store), o.Pool)}, nil
}

// Close closes every connection. Jobs keep running on their machines.
func (w *Work) Close() error { return w.pool.Close() }

// Pool is the connection pool, for the operations that need nothing but a Machine's target.
func (w *Work) Pool() *remote.Pool { return w.pool }

// Machine is a running instance and how to log in to its machine.
type Machine struct {
	Instance providers.Instance
	Target   remote.Target
}

// NotRunningError refuses work on an instance that does not run: its machine cannot be
// reached, and there is nothing on it to ask.
type NotRunningError struct {
	InstanceID string
	Provider   string
	State      providers.State
}

func (e *NotRunningError) Error() string {
	msg := fmt.Sprintf("instance %s is %s: its machine can be worked on only while it runs", e.InstanceID, e.State)
	switch e.State {
	case providers.StatePending, providers.StateStarting, providers.StateRestarting:
		return msg + "; wait for it with wait_instance until=ssh_ready"
	case providers.StateStopped:
		return msg + "; start it with start_instance, then wait_instance until=ssh_ready"
	}
	return msg + "; see get_instance"
}

// Transitional reports whether the instance is on its way to running again.
func (e *NotRunningError) Transitional() bool {
	return e.State == providers.StatePending || e.State == providers.StateStarting || e.State == providers.StateRestarting
}

// Machine reads the instance, which must be running, and returns how to log in to its
// machine: the host, port and user the vendor gives (user root when it names none), its
// password and the configured key.
func (w *Work) Machine(ctx context.Context, instanceID string) (Machine, error) {
	p, err := w.o.Providers.Resolve(instanceID)
	if err != nil {
		return Machine{}, err
	}
	inst, err := p.GetInstance(ctx, instanceID)
	if err != nil {
		return Machine{}, err
	}
	if inst.State != providers.StateRunning {
		return Machine{}, &NotRunningError{InstanceID: inst.ID, Provider: p.Name(), State: inst.State}
	}
	c := inst.Connection
	if c == nil || c.SSHHost == "" || c.SSHPort <= 0 {
		return Machine{}, &providers.Error{Kind: providers.KindUnsupported, Provider: p.Name(), Op: "connect " + inst.ID,
			Message: "the vendor reports no SSH host and port for this instance",
			Remedy:  "check get_instance: an image without SSH (a web-only app) cannot be worked on from here"}
	}
	user := c.SSHUser
	if user == "" {
		user = "root"
	}
	t := remote.Target{InstanceID: inst.ID, Host: c.SSHHost, Port: c.SSHPort, User: user, Password: c.SSHPassword, Signer: w.o.Key}
	if t.Password == "" && t.Signer == nil {
		return Machine{}, &providers.Error{Kind: providers.KindAuth, Provider: p.Name(), Op: "connect " + inst.ID,
			Message: "the vendor gives no SSH password for this instance and no key is configured",
			Remedy:  "set GPU_MCP_SSH_KEY to a private key whose public half is in the machine's ~/.ssh/authorized_keys"}
	}
	return Machine{Instance: inst, Target: t}, nil
}

// AcceptNewHostKey forgets the host key pinned for the instance, so that the next connection
// pins the key its machine presents then. Only for an instance the user says was rebuilt.
func (w *Work) AcceptNewHostKey(ctx context.Context, instanceID string) error {
	return w.pool.AcceptNewHostKey(ctx, instanceID)
}
