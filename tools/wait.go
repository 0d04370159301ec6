package tools

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

// Waiting bounds: a call that waits never outlives maxWait, whatever the agent asks.
const (
	defaultWait = 5 * time.Minute
	maxWait     = 30 * time.Minute
	minWait     = 5 * time.Second
)

// pollInterval is how often a wait asks the vendor again.
func (d *Deps) pollInterval() time.Duration {
	if d.PollInterval > 0 {
		return d.PollInterval
	}
	return 3 * time.Second
}

// parseWait reads a wait timeout argument ("" means the default).
func parseWait(name, s string) (time.Duration, error) {
	if s == "" {
		return defaultWait, nil
	}
	w, err := time.ParseDuration(s)
	if err != nil || w < minWait || w > maxWait {
		return 0, invalidf("%s %q is not accepted; use a duration between %s and %s, e.g. \"5m\" or \"90s\"", name, s, minWait, maxWait)
	}
	return w, nil
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

// WaitArgs asks to wait for an instance to reach a state.
type WaitArgs struct {
	InstanceID string `json:"instance_id" jsonschema:"minLength=3,maxLength=512" jsonschema_description:"instance id from list_instances"`
	Until      Until  `json:"until" jsonschema:"enum=running,enum=ssh_ready,enum=stopped,enum=image_saved" jsonschema_description:"running; ssh_ready (running and its SSH server answers); stopped; image_saved (the last save_image finished)"`
	ImageID    string `json:"image_id,omitempty" jsonschema:"maxLength=512" jsonschema_description:"for until=image_saved: the image_id save_image returned, if any (HuiXingYun and Datenfab instances do not report a save's progress)"`
	ImageName  string `json:"image_name,omitempty" jsonschema:"maxLength=64" jsonschema_description:"for until=image_saved when save_image returned no image_id: the image_name given to save_image"`
	Timeout    string `json:"timeout,omitempty" jsonschema:"maxLength=16" jsonschema_description:"how long to wait at most, e.g. \"5m\" (default 5m, 5s to 30m); the call then returns with reached=false"`
}

func (a *WaitArgs) validate() error {
	switch a.Until {
	case UntilRunning, UntilSSHReady, UntilStopped, UntilImageSaved:
	case "":
		return invalidf("until is required; use running, ssh_ready, stopped or image_saved")
	default:
		return invalidf("until %q is not accepted; use running, ssh_ready, stopped or image_saved", a.Until)
	}
	if (a.ImageID != "" || a.ImageName != "") && a.Until != UntilImageSaved {
		return invalidf("image_id and image_name apply to until=image_saved only")
	}
	_, err := parseWait("timeout", a.Timeout)
	return err
}

// WaitResult is wait_instance's answer.
type WaitResult struct {
	Reached       bool               `json:"reached" jsonschema_description:"whether the instance reached the state asked for"`
	Until         Until              `json:"until"`
	WaitedSeconds int                `json:"waited_seconds"`
	Detail        string             `json:"detail,omitempty" jsonschema_description:"why the wait ended without reaching the state, or what the SSH check saw"`
	Instance      providers.Instance `json:"instance"`
	Demo          bool               `json:"demo,omitempty"`
}

func waitInstance(d *Deps) Tool {
	return newTool("wait_instance", "Wait for an instance",
		"Wait until an instance is running, its SSH server answers, it is stopped, or its image is saved; for use after launch_instance (wait=false), start_instance, stop_instance or save_image. Sends progress notifications as the state changes; changes nothing. Returns when the state is reached, when it cannot be reached any more (e.g. the instance failed or is gone), or at the timeout.",
		Hints{ReadOnly: true, Idempotent: true, OpenWorld: true}, false,
		func(ctx context.Context, in *WaitArgs) (WaitResult, string, error) {
			p, err := d.resolve(in.InstanceID, "instance_id")
			if err != nil {
				return WaitResult{}, "", err
			}
			if in.ImageID != "" {
				ip, err := d.resolve(in.ImageID, "image_id")
				if err != nil {
					return WaitResult{}, "", err
				}
				if ip.Name() != p.Name() {
					return WaitResult{}, "", invalidf("image_id %s belongs to %s, the instance to %s", in.ImageID, ip.Name(), p.Name())
				}
			}
			timeout, _ := parseWait("timeout", in.Timeout)
			start := time.Now()
			w := waiter{p: p, id: in.InstanceID, until: in.Until, image: strings.TrimSpace(in.ImageID), imageName: in.ImageName, timeout: timeout}
			inst, reached, detail, err := d.waitFor(ctx, w)
			if err != nil {
				return WaitResult{}, "", err
			}
			d.stops.overlay(&inst)
			out := WaitResult{Reached: reached, Until: in.Until, WaitedSeconds: int(time.Since(start).Round(time.Second) / time.Second),
				Detail: detail, Instance: inst, Demo: d.Demo}
			var b strings.Builder
			b.WriteString(d.textPrefix())
			if reached {
				fmt.Fprintf(&b, "%s is %s after %ds.", inst.ID, strings.ReplaceAll(string(in.Until), "_", " "), out.WaitedSeconds)
			} else {
				fmt.Fprintf(&b, "%s did not reach %s after %ds: %s.", inst.ID, strings.ReplaceAll(string(in.Until), "_", " "), out.WaitedSeconds, detail)
			}
			b.WriteString("\n" + instanceText(inst))
			return out, b.String(), nil
		})
}

// waiter is what to wait for: the instance (by id, or by the order that created it), the
// state, and for image_saved the image.
type waiter struct {
	p           providers.Provider
	id, orderID string
	until       Until
	image       string // the image's id, for image_saved
	imageName   string // or its name, when the vendor named no id
	timeout     time.Duration
	// onState, when set, is told each new state instead of the progress notifications.
	onState func(providers.Instance)
}

// waitFor polls the instance until it reaches w.until (running, ssh_ready, stopped or
// image_saved), cannot reach it any more, or the timeout passes. It reports each new state as
// progress. Vendor read errors are retried until
// the timeout (the last one is returned as detail); a vanished instance ends the wait.
func (d *Deps) waitFor(ctx context.Context, w waiter) (providers.Instance, bool, string, error) {
	p, id, orderID, until, timeout := w.p, w.id, w.orderID, w.until, w.timeout
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
				if w.onState != nil {
					w.onState(inst)
				} else {
					reportProgress(ctx, 0, string(inst.State))
				}
			}
			done, failed := reachedState(inst, until)
			if until == UntilImageSaved && inst.ImageSaveStatus == "" && failed == "" {
				done, failed = imageSaved(ctx, p, w.image, w.imageName)
			}
			if failed != "" {
				return inst, false, failed, nil
			}
			if done && until == UntilSSHReady {
				host, port, ok := sshTarget(&inst)
				if !ok {
					return inst, false, p.Name() + " gives no SSH host and port for this instance", nil
				}
				var ready bool
				ready, lastDetail = sshProbe(ctx, host, port, d.sshProbeTimeout())
				done = ready
			}
			if done {
				return inst, true, lastDetail, nil
			}
		case providers.KindOf(err) == providers.KindNotFound && (seen || orderID == ""):
			return last, false, "the instance no longer exists at " + p.Name(), nil
		case ctx.Err() != nil:
			return last, false, "", ctx.Err()
		default:
			lastDetail = errorText(err)
		}
		if !time.Now().Add(d.pollInterval()).Before(deadline) {
			if lastDetail == "" {
				lastDetail = fmt.Sprintf("still %s after %s", orDefault(string(lastState), "not listed"), timeout)
			} else {
				lastDetail = fmt.Sprintf("still %s after %s (%s)", orDefault(string(lastState), "not listed"), timeout, lastDetail)
			}
			return last, false, lastDetail, nil
		}
		select {
		case <-ctx.Done():
			return last, false, "", ctx.Err()
		case <-time.After(d.pollInterval()):
		}
	}
}

func (d *Deps) sshProbeTimeout() time.Duration {
	if d.PollInterval > 0 && d.PollInterval < 3*time.Second {
		return max(d.PollInterval, 200*time.Millisecond)
	}
	return 3 * time.Second
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
