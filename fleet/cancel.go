package fleet

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/gpu-mcp/gpu-mcp/providers"
	"github.com/gpu-mcp/gpu-mcp/state"
)

// ErrCancelled is the cause with which the context of a Launch is cancelled when the user
// no longer wants the launch (cancel_operation, tasks/cancel): the launch then runs the
// cleanup of a launch that did not come up, instead of being followed on in the background
// as a launch whose client merely stopped waiting is. Cancel it with
// context.WithCancelCause(...)(ErrCancelled), after CancelLaunch recorded the wish.
var ErrCancelled = errors.New("the launch was cancelled at the user's request")

// cancelled reports whether ctx ended because the user cancelled the launch.
func cancelled(ctx context.Context) bool {
	return errors.Is(context.Cause(ctx), ErrCancelled)
}

// CancelLaunch records that the user cancelled the launch under key, before anything else
// is done about it, so that whichever gpu-mcp process sees the launch through (this one, or
// the reconciler of another after this one died) cleans its instance up instead of adopting
// it. It reports whether the launch was still in flight; one that is not is left as it is
// (its instance, if any, is the user's: destroy_instance removes it). The Launch call that
// runs the launch, when it is this process's, is then cancelled with ErrCancelled.
func (f *Fleet) CancelLaunch(ctx context.Context, key string) (bool, error) {
	inFlightNow := false
	_, _, err := f.write(ctx, key, func(l *state.Launch, r *record) error {
		if !slices.Contains(inFlight, l.Status) {
			return nil
		}
		inFlightNow = true
		if r.Cancel.IsZero() {
			r.Cancel = f.now().UTC()
		}
		return nil
	})
	if errors.Is(err, state.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, storeError("record the cancellation of launch "+key, err)
	}
	return inFlightNow, nil
}

// Launched is what the ledger holds of the launch under key: nil when there is none (it
// never reached the ledger, so nothing was bought).
func (f *Fleet) Launched(ctx context.Context, key string) (*Prior, error) {
	l, r, err := f.ledgerEntry(ctx, key)
	if l == nil || err != nil {
		return nil, err
	}
	return &Prior{Status: l.Status, Outcome: r.Outcome, Error: l.Error, InFlight: slices.Contains(inFlight, l.Status)}, nil
}

// cancelAttempt ends an attempt the user cancelled after its instance was bought: the
// instance is stopped and destroyed as far as the vendor allows, on the cleanup's own
// deadline.
func (f *Fleet) cancelAttempt(p providers.Provider, att *Attempt, when string) *providers.Instance {
	att.Result, att.Detail = AttemptCancelled, "cancelled at the user's request "+when
	att.Cleanup, att.Billing = f.cleanupLaunch(p, att.InstanceID, att.OrderID)
	f.log.Info().Str("instance", att.InstanceID).Str("order", att.OrderID).Str("cleanup", att.Cleanup).Msg("launch cancelled by the user: cleaned up")
	f.audit(Event{Kind: EventLaunchCleanup, InstanceID: att.InstanceID, Detail: fmt.Sprintf("%s: cancelled by the user; %s; billing: %s", orDefault(att.InstanceID, orderText(att.OrderID)), att.Cleanup, att.Billing), ApprovedAtLaunch: true})
	if att.InstanceID == "" {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if after, err := p.GetInstance(ctx, att.InstanceID); err == nil {
		return &after
	}
	return nil
}
