package fleet

import (
	"context"
	"time"

	"github.com/gpu-mcp/gpu-mcp/state"
)

// Spending holds are the spend guard's reservations in the state store. The guard (in tools)
// decides on the limits; this is where the room it grants is kept and given back.
//
// A hold is made for every approved launch, fallback offer and start, in the same
// transaction as the check of every limit (state.Store.Reserve, serialized across replicas),
// so that concurrent approvals can never add up to more than a limit. It counts the new
// instance's hourly price until the vendor's listing shows the instance billing; from then on
// the guard counts the instance once, by its id, whether through the listing or the hold, so
// a hold is never ended because its instance is listed (a check that read the vendors just
// before must still see it). Between the vendor's answer and the hold naming the instance, a
// check that lists it already counts it twice: the error is on the side of refusing. It ends:
//   - when the attempt it was made for bought nothing (the vendor refused the order): its
//     commitment is cancelled too;
//   - when the instance it was made for stops billing through gpu-mcp: cleaned up after a
//     failed launch, stopped or destroyed by stop_instance, destroy_instance or a lease;
//   - at the latest HoldFor after it was made, a backstop for a process that died: by then an
//     instance that exists is listed (HuiXingYun lists an order's instance minutes late), and
//     counted from the listing.
//
// The guard also stops counting a launch's hold once the vendor lists its instance in a state
// that does not bill (stopped behind gpu-mcp's back); a start's counts until its instance
// bills, since the listing shows it stopped until the start reaches the vendor.
//
// The commitment that goes with a hold (what the action may cost, for GPU_MCP_MAX_SPEND)
// stays for the store's SpendWindow whatever becomes of the hold, unless nothing was bought.

// HoldFor is how long a hold lasts at most.
const HoldFor = time.Hour

// Hold is the room an approved action takes under the spending limits.
type Hold struct {
	// ID names the hold; its commitment gets the same id. Empty: one is generated.
	ID       string
	Provider string
	// InstanceID is the instance started, or a launch's instance once the vendor named it.
	InstanceID string
	LaunchKey  string
	// PricePerHour is what the instance costs by the hour while the hold lasts (0 for an
	// action that makes nothing bill by the hour: a renewal, a lease moved later).
	PricePerHour float64
	Upfront      float64
	// Commit is what the action commits for GPU_MCP_MAX_SPEND, of Kind; none when Kind is "".
	Commit float64
	Kind   state.CommitmentKind
}

// Reserve runs check on the store's snapshot (the holds in force and the commitments of the
// last state.SpendWindow) and, unless it refuses, keeps h and its commitment, in one
// transaction serialized against every other Reserve of every replica. It returns the
// hold's id; check's error is returned as it is.
func (f *Fleet) Reserve(ctx context.Context, h Hold, check func(state.Snapshot) error) (string, error) {
	if h.ID == "" {
		h.ID = newHoldID()
	}
	now := f.now()
	r := state.Reservation{ID: h.ID, Provider: h.Provider, InstanceID: h.InstanceID, LaunchKey: h.LaunchKey,
		PricePerHour: h.PricePerHour, UpfrontCNY: h.Upfront, CreatedAt: now, ExpiresAt: now.Add(HoldFor)}
	var commit *state.Commitment
	if h.Kind != "" {
		commit = &state.Commitment{ID: h.ID, At: now, Provider: h.Provider, InstanceID: h.InstanceID, Kind: h.Kind, CNY: h.Commit}
	}
	var refused error
	err := f.o.Store.Reserve(ctx, r, commit, func(s state.Snapshot) error {
		refused = check(s)
		return refused
	})
	switch {
	case err == nil:
		return h.ID, nil
	case refused != nil:
		return "", refused
	}
	return "", storeError("hold the spending room under the limits", err)
}

func newHoldID() string { return "hold-" + NewKey()[len("gen-"):] }

// AttachHold records the instance a launch's hold is for, once the vendor named it.
func (f *Fleet) AttachHold(id, instanceID string) {
	if id == "" || instanceID == "" {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := f.o.Store.AttachReservation(ctx, id, instanceID); err != nil {
		f.log.Warn().Err(err).Str("hold", id).Str("instance", instanceID).Msg("the spending hold could not name its instance; it counts on its own until it expires")
	}
}

// attachLaunchHold names the instance of the launch under key in its newest hold that names
// none: the current attempt's, made just before its buy, whose instance the vendor listed
// late (or the process that bought it ended before it saw the instance).
func (f *Fleet) attachLaunchHold(key, instanceID string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	holds, err := f.o.Store.ActiveReservations(ctx, f.now())
	if err != nil {
		f.log.Warn().Err(err).Str("launch", key).Msg("the spending holds could not be read to name the launch's instance; its hold counts on its own until it expires")
		return
	}
	for i := len(holds) - 1; i >= 0; i-- {
		if h := holds[i]; h.LaunchKey == key && h.InstanceID == "" {
			f.AttachHold(h.ID, instanceID)
			return
		}
	}
}

// EndHold ends the hold id; refund also cancels its commitment, for an action that spent
// nothing. A store that fails leaves the hold to expire, which only counts it longer.
func (f *Fleet) EndHold(id string, refund bool) {
	if id == "" {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := f.o.Store.ReleaseReservation(ctx, id); err != nil {
		f.log.Warn().Err(err).Str("hold", id).Msg("a spending hold could not be ended; it counts until it expires")
	}
	if !refund {
		return
	}
	if err := f.o.Store.CancelCommitment(ctx, id); err != nil {
		f.log.Warn().Err(err).Str("hold", id).Msg("a commitment that spent nothing could not be cancelled; it counts toward GPU_MCP_MAX_SPEND for 24 h")
	}
}

// EndHoldsOf ends the holds of an instance that no longer bills by the hour: stopped,
// destroyed, or gone.
func (f *Fleet) EndHoldsOf(instanceID string) {
	if instanceID == "" {
		return
	}
	f.endHolds(func(r state.Reservation) bool { return r.InstanceID == instanceID }, false)
}

// endHolds ends the holds in force that match (refund: see EndHold).
func (f *Fleet) endHolds(match func(state.Reservation) bool, refund bool) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	holds, err := f.o.Store.ActiveReservations(ctx, f.now())
	if err != nil {
		f.log.Warn().Err(err).Msg("spending holds could not be read to end them; they count until they expire")
		return
	}
	for _, r := range holds {
		if match(r) {
			f.EndHold(r.ID, refund)
		}
	}
}

// Spending is what the spend guard previews a plan against: the holds in force and the CNY
// committed in the last state.SpendWindow.
func (f *Fleet) Spending(ctx context.Context) ([]state.Reservation, float64, error) {
	now := f.now()
	holds, err := f.o.Store.ActiveReservations(ctx, now)
	if err != nil {
		return nil, 0, storeError("read the spending holds", err)
	}
	committed, err := f.o.Store.Committed(ctx, now.Add(-state.SpendWindow))
	if err != nil {
		return nil, 0, storeError("read the spending of the last 24 hours", err)
	}
	return holds, committed, nil
}
