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
}

// Waited is how a wait ended.
type Waited struct {
	Instance providers.Instance // as last seen; zero when it never was
	Reached  bool
	// Detail says why the wait ended without reaching the state, or what the SSH check saw.
	Detail string
}

// Wait polls the instance every poll interval until it reaches w.Until, cannot reach it any
// more, or w.Timeout passes. Vendor read errors are retried until the timeout (the last one
// is the detail); a vanished instance ends the wait. The error is only the context's.
func (f *Fleet) Wait(ctx context.Context, w Waiter) (Waited, error) {
	p, id, orderID, until, timeout := w.Provider, w.ID, w.OrderID, w.Until, w.Timeout
	deadline := time.Now().Add(timeout)
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
			done, failed := reachedState(inst, until)
			if until == UntilImageSaved && inst.ImageSaveStatus == "" && failed == "" {
				done, failed = imageSaved(ctx, p, w.ImageID, w.ImageName)
			}
			if failed != "" {
				return Waited{Instance: inst, Detail: failed}, nil
			}
			if done && until == UntilSSHReady {
				host, port, ok := sshTarget(&inst)
				if !ok {
					return Waited{Instance: inst, Detail: p.Name() + " gives no SSH host and port for this instance"}, nil
				}
				var ready bool
				ready, lastDetail = sshProbe(ctx, host, port, f.sshProbeTimeout())
				done = ready
			}
			if done {
				return Waited{Instance: inst, Reached: true, Detail: lastDetail}, nil
			}
		case providers.KindOf(err) == providers.KindNotFound && (seen || orderID == ""):
			return Waited{Instance: last, Detail: "the instance no longer exists at " + p.Name()}, nil
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
			return Waited{Instance: last, Detail: lastDetail}, nil
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

// imageSaved looks for a saved image in the account's images, for vendors whose instances do
// not report a save's progress.
func imageSaved(ctx context.Context, p providers.Provider, id, name string) (bool, string) {
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
