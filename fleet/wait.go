package fleet

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/gpu-mcp/gpu-mcp/providers"
	"github.com/gpu-mcp/gpu-mcp/state"
)

// Until is a state a wait waits for.
type Until string

// What a wait can wait for.
const (
	UntilRunning    Until = "running"
	UntilSSHReady   Until = "ssh_ready" // running, and its SSH server answers
	UntilStopped    Until = "stopped"
	UntilImageSaved Until = "image_saved"
)

// Waiter is what to wait for: the instance (by id, or by the order that created it), the
// state, and for UntilImageSaved the image.
type Waiter struct {
	Provider    providers.Provider
	ID, OrderID string
	Until       Until
	ImageID     string // the image's id, for UntilImageSaved
	ImageName   string // or its name, when the vendor named no id
	Timeout     time.Duration
	// OnState, when set, is told each new state the instance is seen in.
	OnState func(providers.Instance)
	// FailWhenIdle ends the wait at once when nothing moves the instance towards the state (a
	// running instance that nothing stops). A caller that has just asked for the change
	// leaves it unset: a vendor may take a moment to show it.
	FailWhenIdle bool
}

// WaitOutcome is how a wait ended.
type WaitOutcome string

const (
	WaitReached WaitOutcome = "reached"
	// WaitTimedOut: not there at the timeout; it may still get there.
	WaitTimedOut WaitOutcome = "timed_out"
	// WaitUnreachable: it will not get there (it failed, is gone, or nothing moves it there).
	WaitUnreachable WaitOutcome = "unreachable"
	// WaitUnconfirmable: the vendor cannot report the state, so it cannot be confirmed.
	WaitUnconfirmable WaitOutcome = "cannot_be_confirmed"
)

// Waited is how a wait ended.
type Waited struct {
	Instance providers.Instance // as last seen; zero when it never was
	Reached  bool
	Outcome  WaitOutcome
	// Detail says why the wait ended without reaching the state, or what the SSH check saw.
	Detail string
}

// Wait polls the instance every poll interval until it reaches w.Until, cannot reach it any
// more, or w.Timeout passes. Vendor read errors are retried until the timeout (the last one
// is the detail); a vanished instance ends the wait. A state the vendor cannot report (an image
// saved on a vendor that does not say) ends it at once, unconfirmed. The error is only the
// context's.
func (f *Fleet) Wait(ctx context.Context, w Waiter) (Waited, error) {
	p, id, orderID, until, timeout := w.Provider, w.ID, w.OrderID, w.Until, w.Timeout
	deadline := time.Now().Add(timeout)
	unreachable := func(inst providers.Instance, why string) (Waited, error) {
		return Waited{Instance: inst, Outcome: WaitUnreachable, Detail: why}, nil
	}
	var last providers.Instance
	lastState, lastDetail := providers.State(""), ""
	seen := false
	for {
		inst, err := findInstance(ctx, p, id, orderID)
		switch {
		case err == nil:
			seen, last = true, inst
			id = inst.ID
			if inst.State != lastState {
				lastState = inst.State
				if w.OnState != nil {
					w.OnState(inst)
				}
			}
			if until == UntilImageSaved {
				if why := unconfirmable(p); why != "" {
					return Waited{Instance: inst, Outcome: WaitUnconfirmable, Detail: why}, nil
				}
			}
			done, failed := reachedState(inst, until)
			if until == UntilImageSaved && failed == "" && !done {
				done, failed = f.imageSaved(ctx, p, inst, w.ImageID, w.ImageName)
			}
			if failed == "" && !done && w.FailWhenIdle {
				failed = f.idle(ctx, p, inst, until, deadline)
			}
			if failed != "" {
				return unreachable(inst, failed)
			}
			if done && until == UntilSSHReady {
				host, port, ok := sshTarget(&inst)
				if !ok {
					return unreachable(inst, p.Name()+" gives no SSH host and port for this instance")
				}
				var ready bool
				ready, lastDetail = sshProbe(ctx, host, port, f.sshProbeTimeout())
				done = ready
			}
			if done {
				return Waited{Instance: inst, Reached: true, Outcome: WaitReached, Detail: lastDetail}, nil
			}
		case providers.KindOf(err) == providers.KindNotFound && (seen || orderID == ""):
			return unreachable(last, "the instance no longer exists at "+p.Name())
		case ctx.Err() != nil:
			return Waited{Instance: last}, ctx.Err()
		default:
			lastDetail = errorText(err)
		}
		if !time.Now().Add(f.o.Poll).Before(deadline) {
			if lastDetail == "" {
				lastDetail = fmt.Sprintf("still %s after %s", orDefault(string(lastState), "not listed"), timeout)
			} else {
				lastDetail = fmt.Sprintf("still %s after %s (%s)", orDefault(string(lastState), "not listed"), timeout, lastDetail)
			}
			return Waited{Instance: last, Outcome: WaitTimedOut, Detail: lastDetail}, nil
		}
		select {
		case <-ctx.Done():
			return Waited{Instance: last}, ctx.Err()
		case <-time.After(f.o.Poll):
		}
	}
}

func (f *Fleet) sshProbeTimeout() time.Duration {
	if f.o.Poll < 3*time.Second {
		return max(f.o.Poll, 200*time.Millisecond)
	}
	return 3 * time.Second
}

// findInstance reads an instance by its id, or, when only the order is known, looks for the
// instance that order created.
func findInstance(ctx context.Context, p providers.Provider, id, orderID string) (providers.Instance, error) {
	if id != "" {
		return p.GetInstance(ctx, id)
	}
	all, err := p.ListInstances(ctx)
	if err != nil {
		return providers.Instance{}, err
	}
	for _, in := range all {
		if orderID != "" && in.OrderID == orderID {
			return in, nil
		}
	}
	return providers.Instance{}, &providers.Error{Kind: providers.KindNotFound, Provider: p.Name(), Op: "launch",
		Message: fmt.Sprintf("no instance of order %s is listed yet", orderID)}
}

// sshProbe reports whether an SSH server answers at host:port: a connection that sends the
// "SSH-" banner (as every sshd does first) is ready; one that is refused or closed without a
// word is not (a port forwarder whose machine is not up yet); one that is accepted and stays
// silent is counted as ready, since some vendors' proxies wait for the client to speak.
func sshProbe(ctx context.Context, host string, port int, timeout time.Duration) (bool, string) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var dialer net.Dialer
	conn, err := dialer.DialContext(ctx, "tcp", net.JoinHostPort(host, strconv.Itoa(port)))
	if err != nil {
		return false, "no TCP connection: " + err.Error()
	}
	defer conn.Close()
	deadline, _ := ctx.Deadline()
	_ = conn.SetReadDeadline(deadline)
	line, err := bufio.NewReaderSize(conn, 256).ReadString('\n')
	switch {
	case strings.HasPrefix(line, "SSH-"):
		return true, strings.TrimSpace(line)
	case err != nil && errors.Is(err, context.DeadlineExceeded) || isTimeout(err):
		return line == "", "accepts TCP connections (no banner before the timeout)"
	default:
		return false, "the connection was closed without an SSH banner"
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// sshTarget is where an instance's SSH server should answer, if the vendor says.
func sshTarget(in *providers.Instance) (string, int, bool) {
	if in == nil || in.Connection == nil || in.Connection.SSHHost == "" || in.Connection.SSHPort <= 0 {
		return "", 0, false
	}
	return in.Connection.SSHHost, in.Connection.SSHPort, true
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// reachedState says whether inst is in the state waited for, or why it never will be.
func reachedState(inst providers.Instance, until Until) (done bool, failed string) {
	switch until {
	case UntilRunning, UntilSSHReady:
		switch inst.State {
		case providers.StateRunning:
			return true, ""
		case providers.StateError:
			return false, fmt.Sprintf("the vendor reports a failure (%s)", inst.RawState)
		case providers.StateStopped, providers.StateStopping, providers.StateDeleting:
			return false, fmt.Sprintf("the instance is %s; start it with start_instance", inst.State)
		}
	case UntilStopped:
		switch inst.State {
		case providers.StateStopped:
			return true, ""
		case providers.StateError:
			return false, fmt.Sprintf("the vendor reports a failure (%s)", inst.RawState)
		}
	case UntilImageSaved:
		switch inst.ImageSaveStatus {
		case "saved":
			return inst.State != providers.StateSaving, ""
		case "failed":
			return false, "saving the image failed at the vendor"
		}
	}
	return false, ""
}

// unconfirmable says why a saved image cannot be confirmed on p, or "" when it can.
func unconfirmable(p providers.Provider) string {
	if p.Capabilities().ImageSaved != providers.SaveReportNone {
		return ""
	}
	why := "cannot be confirmed: " + p.Name() + " does not report when an image is ready"
	if p.Capabilities().SaveImageStops {
		why += "; its save stops the instance: wait until=stopped, then check the image in the vendor's console before relying on it"
	}
	return why
}

// idle says why nothing moves inst towards until, so that waiting is pointless, or "" when
// something may: a stop in progress, a save that stops it, the vendor's timer or gpu-mcp's
// auto-stop due before the deadline, a lease on its work. Only a running instance waited for to
// stop is judged.
func (f *Fleet) idle(ctx context.Context, p providers.Provider, inst providers.Instance, until Until, deadline time.Time) string {
	if until != UntilStopped || inst.State != providers.StateRunning {
		return ""
	}
	// Stops are due by the fleet's clock (the vendor's, in production).
	deadline = f.now().Add(time.Until(deadline))
	if inst.ImageSaveStatus == "saving" && p.Capabilities().SaveImageStops {
		return ""
	}
	if inst.StopsAt != nil && inst.StopsAt.Before(deadline) {
		return ""
	}
	leases, err := f.o.Store.ListLeases(ctx, state.LeaseFilter{InstanceID: inst.ID, Pending: true})
	if err != nil {
		return ""
	}
	for _, l := range leases {
		// A lease on work (a job's end, idle GPUs) may fire at any moment.
		if l.Kind != state.LeaseTime || l.DueAt.Before(deadline) {
			return ""
		}
	}
	return "the instance is running and nothing is stopping it: call stop_instance (or set_auto_stop) first, then wait"
}

// imageSaved says whether the image of a save is ready, or why it will not be, for vendors
// whose instance does not show it: by the instance (a vendor that does, and shows no save
// going on), or by the account's images.
func (f *Fleet) imageSaved(ctx context.Context, p providers.Provider, inst providers.Instance, id, name string) (bool, string) {
	if p.Capabilities().ImageSaved == providers.SaveReportInstance {
		if inst.ImageSaveStatus == "" && inst.State != providers.StateSaving {
			return false, "no save is in progress: " + p.Name() + " shows none on the instance; call save_image first"
		}
		return false, ""
	}
	if id == "" && name == "" {
		return false, p.Name() + " does not report a save's progress on the instance; pass the image_id that save_image returned, or the image_name given to it"
	}
	images, err := p.ListImages(ctx, providers.ImageQuery{})
	if err != nil {
		return false, ""
	}
	for _, im := range images {
		if im.Kind == providers.ImagePrivate && ((id != "" && im.ID == id) || (id == "" && im.Name == name)) {
			switch im.Status {
			case "failed":
				return false, "saving the image failed at the vendor"
			case "saving":
				return false, ""
			}
			return true, ""
		}
	}
	return false, ""
}
