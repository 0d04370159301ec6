package tools

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/gpu-mcp/gpu-mcp/providers"
)

// Auto-stop bounds: auto_stop_after accepts this range.
const (
	minAutoStop = 5 * time.Second
	maxAutoStop = 30 * 24 * time.Hour
)

// AutoStop says how and when a launched instance will be stopped.
type AutoStop struct {
	At   time.Time `json:"at" jsonschema_description:"when the instance will be stopped"`
	By   StopBy    `json:"by" jsonschema:"enum=vendor,enum=gpu-mcp" jsonschema_description:"vendor: the vendor's own shutdown timer; gpu-mcp: this server process stops it, so only while it keeps running"`
	Note string    `json:"note,omitempty"`
}

// autoStops are the stops this process will make itself, for vendors without a shutdown timer.
// They live in the process: when it ends, the instances keep running.
type autoStops struct {
	mu     sync.Mutex
	timers map[string]*scheduledStop // by qualified instance id
	closed bool
}

type scheduledStop struct {
	at    time.Time
	timer *time.Timer
}

// schedule arranges for d to stop the instance id at at. A later schedule replaces an earlier.
func (s *autoStops) schedule(d *Deps, p providers.Provider, id string, at time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	if s.timers == nil {
		s.timers = map[string]*scheduledStop{}
	}
	if old := s.timers[id]; old != nil {
		old.timer.Stop()
	}
	st := &scheduledStop{at: at}
	st.timer = time.AfterFunc(time.Until(at), func() { s.fire(d, p, id, st) })
	s.timers[id] = st
}

// fire stops the instance if it is still running; a vendor failure is tried again a few
// times, and logged loudly if it persists, since the instance then keeps billing.
func (s *autoStops) fire(d *Deps, p providers.Provider, id string, st *scheduledStop) {
	defer func() {
		s.mu.Lock()
		if s.timers[id] == st {
			delete(s.timers, id)
		}
		s.mu.Unlock()
	}()
	var lastErr error
	for try := 0; try < 3; try++ {
		if try > 0 {
			time.Sleep(d.pollInterval() * 5)
		}
		s.mu.Lock()
		closed := s.closed
		s.mu.Unlock()
		if closed {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		outcome, err := s.stopNow(ctx, p, id)
		cancel()
		if err == nil {
			d.Log.Info().Str("instance", id).Str("outcome", outcome).Msg("auto-stop")
			rec := AuditEntry{Time: time.Now().UTC(), Tool: "auto_stop", Confirmation: ConfirmedAtLaunch, Outcome: StatusDone, Detail: id + ": " + outcome, Demo: d.Demo}
			if aerr := d.Audit.Record(context.Background(), rec); aerr != nil {
				d.Log.Error().Err(aerr).Msg("audit log write failed")
			}
			return
		}
		lastErr = err
		if k := providers.KindOf(err); k == providers.KindUnknown {
			break // the stop may have happened: do not send it again
		}
	}
	d.Log.Error().Str("instance", id).Str("error", errorText(lastErr)).Msg("auto-stop failed: the instance may still be running and billing; stop it with stop_instance")
	rec := AuditEntry{Time: time.Now().UTC(), Tool: "auto_stop", Confirmation: ConfirmedAtLaunch, Outcome: StatusFailed, Detail: id + ": " + errorText(lastErr), Demo: d.Demo}
	if aerr := d.Audit.Record(context.Background(), rec); aerr != nil {
		d.Log.Error().Err(aerr).Msg("audit log write failed")
	}
}

func (s *autoStops) stopNow(ctx context.Context, p providers.Provider, id string) (string, error) {
	inst, err := p.GetInstance(ctx, id)
	if providers.KindOf(err) == providers.KindNotFound {
		return "the instance no longer exists", nil
	}
	if err != nil {
		return "", err
	}
	switch inst.State {
	case providers.StateStopped, providers.StateStopping, providers.StateDeleting:
		return "already " + string(inst.State), nil
	}
	if _, err := p.Precheck(providers.ActionRequest{Action: providers.ActionStop, Instance: inst}); err != nil {
		return "", err
	}
	if err := p.Stop(ctx, id); err != nil {
		return "", err
	}
	return "stopped", nil
}

// overlay shows a stop this process will make on an instance the vendor knows nothing of.
func (s *autoStops) overlay(in *providers.Instance) {
	if in == nil || in.StopsAt != nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if st := s.timers[in.ID]; st != nil {
		at := st.at
		in.StopsAt = &at
	}
}

// close cancels the stops not yet made; it returns them, for the log.
func (s *autoStops) close() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	var left []string
	for id, st := range s.timers {
		st.timer.Stop()
		left = append(left, fmt.Sprintf("%s at %s", id, st.at.UTC().Format(time.RFC3339)))
	}
	s.timers = nil
	return left
}

// Close cancels the auto-stops this process would have made and says so in the log: those
// instances keep running and billing.
func (d *Deps) Close() {
	if left := d.stops.close(); len(left) > 0 {
		d.Log.Warn().Strs("instances", left).Msg("gpu-mcp is stopping: these instances will NOT be auto-stopped and keep billing; stop them with stop_instance")
	}
}

// parseAutoStop reads auto_stop_after ("" means none).
func parseAutoStop(s string) (time.Duration, error) {
	if s == "" {
		return 0, nil
	}
	v, err := time.ParseDuration(s)
	if err != nil || v < minAutoStop || v > maxAutoStop {
		return 0, invalidf("auto_stop_after %q is not accepted; use a duration between 5s and 720h, e.g. \"90m\" or \"8h\"", s)
	}
	return v, nil
}
