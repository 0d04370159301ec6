package statetest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gpu-mcp/gpu-mcp/state"
)

// start is the suite's clock at the beginning of each test: not UTC and with nanoseconds, so
// that the store's UTC and microsecond rules are exercised.
var start = time.Date(2030, 3, 4, 5, 6, 7, 123456789, time.FixedZone("CST", 8*3600))

// Run runs the conformance suite. fresh returns the URL of a new, empty store for each test;
// opening that URL twice must give two handles on the same data (as two processes or
// replicas would have), except for state.MemoryURL, where the suite uses one handle for both.
func Run(t *testing.T, fresh func(t testing.TB) string) {
	tests := []struct {
		name string
		fn   func(t *testing.T, e env)
	}{
		{"Backend", testBackend},
		{"Times", testTimes},
		{"Secret", testSecret},
		{"SecretRace", testSecretRace},
		{"SpendToken", testSpendToken},
		{"SpendTokenRace", testSpendTokenRace},
		{"CreateLaunch", testCreateLaunch},
		{"CreateLaunchRace", testCreateLaunchRace},
		{"UpdateLaunch", testUpdateLaunch},
		{"UpdateLaunchSerialized", testUpdateLaunchSerialized},
		{"ListLaunches", testListLaunches},
		{"PutLease", testPutLease},
		{"ListLeases", testListLeases},
		{"ClaimDue", testClaimDue},
		{"ClaimDueExpiry", testClaimDueExpiry},
		{"ClaimDueExactlyOnce", testClaimDueExactlyOnce},
		{"ReleaseLease", testReleaseLease},
		{"Audit", testAudit},
		{"Operations", testOperations},
		{"ClaimStaleOperation", testClaimStaleOperation},
		{"HostKeys", testHostKeys},
		{"Jobs", testJobs},
		{"Reserve", testReserve},
		{"ReserveSerialized", testReserveSerialized},
		{"Reservations", testReservations},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			url := fresh(t)
			clk := NewClock(start)
			a := Open(t, url, state.Options{Now: clk.Now})
			b := a
			if url != state.MemoryURL {
				b = Open(t, url, state.Options{Now: clk.Now})
			}
			tc.fn(t, env{a: a, b: b, clk: clk})
		})
	}
}

// env is one test's stores and clock: a and b are two handles on the same data.
type env struct {
	a, b state.Store
	clk  *Clock
}

// pick alternates between the two handles.
func (e env) pick(i int) state.Store {
	if i%2 == 0 {
		return e.a
	}
	return e.b
}

// stamp is what the store records for the clock's current time.
func (e env) stamp() time.Time { return e.clk.Now().UTC().Truncate(time.Microsecond) }

var ctx = context.Background()

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// canon re-encodes JSON so that documents equal in meaning are equal in bytes.
func canon(t *testing.T, raw json.RawMessage) json.RawMessage {
	t.Helper()
	if len(raw) == 0 {
		return nil
	}
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatalf("stored JSON does not parse: %v: %s", err, raw)
	}
	out, _ := json.Marshal(v)
	return out
}

// same fails t unless got equals want field by field, with JSON fields compared by meaning.
func same[T any](t *testing.T, what string, got, want T, jsonFields ...func(*T) *json.RawMessage) {
	t.Helper()
	for _, f := range jsonFields {
		*f(&got), *f(&want) = canon(t, *f(&got)), canon(t, *f(&want))
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%s:\n got  %+v\n want %+v", what, got, want)
	}
}

// parallel runs fn(i) for i in [0, n) at once, each on its own goroutine, released together.
func parallel(n int, fn func(i int)) {
	var ready, done sync.WaitGroup
	gate := make(chan struct{})
	ready.Add(n)
	done.Add(n)
	for i := range n {
		go func() {
			defer done.Done()
			ready.Done()
			<-gate
			fn(i)
		}()
	}
	ready.Wait()
	close(gate)
	done.Wait()
}

func testBackend(t *testing.T, e env) {
	if b := e.a.Backend(); b != state.BackendSQLite && b != state.BackendPostgres {
		t.Fatalf("Backend() = %q", b)
	}
	must(t, e.a.Ping(ctx))
	must(t, e.b.Ping(ctx))
}

func testTimes(t *testing.T, e env) {
	due := time.Date(2031, 12, 31, 23, 59, 59, 999999999, time.FixedZone("X", -7*3600))
	l, err := e.a.PutLease(ctx, state.Lease{InstanceID: "p:i", Provider: "p", Kind: state.LeaseTime, Action: state.ActionStop,
		DueAt: due, Enforcer: state.EnforcerGPUMCP})
	must(t, err)
	got, err := e.b.GetLease(ctx, l.ID)
	must(t, err)
	want := due.UTC().Truncate(time.Microsecond)
	if !got.DueAt.Equal(want) || got.DueAt.Location() != time.UTC || got.DueAt.Nanosecond()%1000 != 0 {
		t.Fatalf("DueAt read back as %v, want %v in UTC", got.DueAt, want)
	}
	if !got.NextCheckAt.Equal(want) {
		t.Fatalf("NextCheckAt %v, want DueAt %v for a time lease", got.NextCheckAt, want)
	}
	if !got.CreatedAt.Equal(e.stamp()) {
		t.Fatalf("CreatedAt %v, want the clock's %v", got.CreatedAt, e.stamp())
	}
	if !got.FiredAt.IsZero() || !got.ClaimUntil.IsZero() {
		t.Fatalf("unset times read back as %v and %v, want zero", got.FiredAt, got.ClaimUntil)
	}
}

func testSecret(t *testing.T, e env) {
	calls := 0
	gen := func() ([]byte, error) { calls++; return []byte("first-" + strconv.Itoa(calls)), nil }
	v, err := e.a.Secret(ctx, "confirm", gen)
	must(t, err)
	if string(v) != "first-1" {
		t.Fatalf("new secret = %q, want the generated one", v)
	}
	v, err = e.b.Secret(ctx, "confirm", gen)
	must(t, err)
	if string(v) != "first-1" || calls != 1 {
		t.Fatalf("existing secret = %q after %d generations, want first-1 after 1", v, calls)
	}
	other, err := e.a.Secret(ctx, "other", func() ([]byte, error) { return []byte("x"), nil })
	must(t, err)
	if string(other) != "x" {
		t.Fatalf("a second name got %q", other)
	}
	boom := errors.New("no entropy")
	if _, err := e.a.Secret(ctx, "new", func() ([]byte, error) { return nil, boom }); !errors.Is(err, boom) {
		t.Fatalf("a failing generator: err = %v, want it wrapped", err)
	}
	if _, err := e.a.Secret(ctx, "new", func() ([]byte, error) { return nil, nil }); !errors.Is(err, state.ErrInvalid) {
		t.Fatalf("an empty generated secret: err = %v, want ErrInvalid", err)
	}
	if _, err := e.a.Secret(ctx, "", gen); !errors.Is(err, state.ErrInvalid) {
		t.Fatalf("no name: err = %v, want ErrInvalid", err)
	}
}

func testSecretRace(t *testing.T, e env) {
	const n = 16
	got := make([][]byte, n)
	errs := make([]error, n)
	parallel(n, func(i int) {
		got[i], errs[i] = e.pick(i).Secret(ctx, "race", func() ([]byte, error) { return []byte("value-" + strconv.Itoa(i)), nil })
	})
	for i := range n {
		must(t, errs[i])
		if !bytes.Equal(got[i], got[0]) {
			t.Fatalf("racer %d got %q, racer 0 got %q: racers must agree", i, got[i], got[0])
		}
	}
}

func testSpendToken(t *testing.T, e env) {
	exp := start.Add(5 * time.Minute)
	fresh, err := e.a.SpendToken(ctx, "d1", exp)
	must(t, err)
	if !fresh {
		t.Fatal("a new digest was not fresh")
	}
	for _, s := range []state.Store{e.a, e.b} {
		fresh, err = s.SpendToken(ctx, "d1", exp)
		must(t, err)
		if fresh {
			t.Fatal("a spent digest was fresh again")
		}
	}
	_, err = e.a.SpendToken(ctx, "d2", start.Add(time.Hour))
	must(t, err)
	n, err := e.b.PruneTokens(ctx, exp)
	must(t, err)
	if n != 1 {
		t.Fatalf("PruneTokens at d1's expiry removed %d, want 1", n)
	}
	if fresh, _ := e.a.SpendToken(ctx, "d2", start.Add(time.Hour)); fresh {
		t.Fatal("PruneTokens removed a digest that had not expired")
	}
	if fresh, _ := e.a.SpendToken(ctx, "d1", exp); !fresh {
		t.Fatal("a pruned digest is still recorded")
	}
	if _, err := e.a.SpendToken(ctx, "", exp); !errors.Is(err, state.ErrInvalid) {
		t.Fatalf("empty digest: err = %v, want ErrInvalid", err)
	}
	if _, err := e.a.SpendToken(ctx, "d3", time.Time{}); !errors.Is(err, state.ErrInvalid) {
		t.Fatalf("no expiry: err = %v, want ErrInvalid", err)
	}
}

func testSpendTokenRace(t *testing.T, e env) {
	const n = 50
	var freshCount atomic.Int32
	errs := make([]error, n)
	parallel(n, func(i int) {
		fresh, err := e.pick(i).SpendToken(ctx, "contested", start.Add(time.Minute))
		errs[i] = err
		if fresh {
			freshCount.Add(1)
		}
	})
	for _, err := range errs {
		must(t, err)
	}
	if got := freshCount.Load(); got != 1 {
		t.Fatalf("%d of %d concurrent spends of one digest were fresh, want exactly 1", got, n)
	}
}

func sampleLaunch(key string) state.Launch {
	return state.Launch{Key: key, ArgsHash: "h-" + key, Provider: "chenyu", OfferID: "chenyu:o1", ImageID: "chenyu:img",
		VendorName: "gpu-mcp-" + key, Owner: "replica-1"}
}

func testCreateLaunch(t *testing.T, e env) {
	l := sampleLaunch("k1")
	existing, err := e.a.CreateLaunch(ctx, l)
	must(t, err)
	if existing != nil {
		t.Fatalf("a new key returned an existing record: %+v", existing)
	}
	got, err := e.b.GetLaunch(ctx, "k1")
	must(t, err)
	want := l
	want.Status, want.CreatedAt, want.UpdatedAt = state.LaunchIntent, e.stamp(), e.stamp()
	same(t, "stored launch", got, want)

	e.clk.Advance(time.Second)
	again := l
	again.ArgsHash, again.Owner, again.Status = "other", "replica-2", state.LaunchReady
	existing, err = e.b.CreateLaunch(ctx, again)
	must(t, err)
	if existing == nil {
		t.Fatal("a taken key was created again")
	}
	same(t, "existing launch", *existing, want)
	if got, _ := e.a.GetLaunch(ctx, "k1"); got.ArgsHash != l.ArgsHash || !got.UpdatedAt.Equal(want.UpdatedAt) {
		t.Fatalf("CreateLaunch on a taken key changed the record: %+v", got)
	}

	if _, err := e.a.GetLaunch(ctx, "nope"); !errors.Is(err, state.ErrNotFound) {
		t.Fatalf("GetLaunch of an unknown key: err = %v, want ErrNotFound", err)
	}
	bad := sampleLaunch("k2")
	bad.Status = "bought"
	if _, err := e.a.CreateLaunch(ctx, bad); !errors.Is(err, state.ErrInvalid) {
		t.Fatalf("unknown status: err = %v, want ErrInvalid", err)
	}
	bad = sampleLaunch("k3")
	bad.Result = json.RawMessage("{not json")
	if _, err := e.a.CreateLaunch(ctx, bad); !errors.Is(err, state.ErrInvalid) {
		t.Fatalf("invalid JSON: err = %v, want ErrInvalid", err)
	}
	if _, err := e.a.CreateLaunch(ctx, state.Launch{ArgsHash: "h", Provider: "p"}); !errors.Is(err, state.ErrInvalid) {
		t.Fatalf("no key: err = %v, want ErrInvalid", err)
	}
}

func testCreateLaunchRace(t *testing.T, e env) {
	const n = 30
	existing := make([]*state.Launch, n)
	errs := make([]error, n)
	parallel(n, func(i int) {
		l := sampleLaunch("race")
		l.Owner = "racer-" + strconv.Itoa(i)
		existing[i], errs[i] = e.pick(i).CreateLaunch(ctx, l)
	})
	winner := -1
	for i := range n {
		must(t, errs[i])
		if existing[i] == nil {
			if winner >= 0 {
				t.Fatalf("racers %d and %d both created the key", winner, i)
			}
			winner = i
		}
	}
	if winner < 0 {
		t.Fatal("no racer created the key")
	}
	for i, ex := range existing {
		if ex != nil && ex.Owner != "racer-"+strconv.Itoa(winner) {
			t.Fatalf("racer %d was shown owner %q, want the creator racer-%d", i, ex.Owner, winner)
		}
	}
}

func testUpdateLaunch(t *testing.T, e env) {
	_, err := e.a.CreateLaunch(ctx, sampleLaunch("k"))
	must(t, err)
	e.clk.Advance(time.Minute)
	got, err := e.b.UpdateLaunch(ctx, "k", func(l *state.Launch) error {
		l.Status, l.InstanceID, l.OrderID = state.LaunchCreated, "chenyu:inst_1", "ord-9"
		l.Result = json.RawMessage(`{"ready":false,"attempts":[1,2]}`)
		l.Key, l.CreatedAt = "hijacked", time.Time{}
		return nil
	})
	must(t, err)
	want := sampleLaunch("k")
	want.Status, want.InstanceID, want.OrderID = state.LaunchCreated, "chenyu:inst_1", "ord-9"
	want.Result = json.RawMessage(`{"ready":false,"attempts":[1,2]}`)
	want.CreatedAt, want.UpdatedAt = start.UTC().Truncate(time.Microsecond), e.stamp()
	result := func(l *state.Launch) *json.RawMessage { return &l.Result }
	same(t, "UpdateLaunch's answer", got, want, result)
	stored, err := e.a.GetLaunch(ctx, "k")
	must(t, err)
	same(t, "updated launch", stored, want, result)

	refuse := errors.New("not in this state")
	_, err = e.a.UpdateLaunch(ctx, "k", func(l *state.Launch) error { l.Status = state.LaunchFailed; return refuse })
	if !errors.Is(err, refuse) {
		t.Fatalf("fn's error came back as %v", err)
	}
	if stored, _ := e.a.GetLaunch(ctx, "k"); stored.Status != state.LaunchCreated {
		t.Fatalf("a refused update was written: status %q", stored.Status)
	}
	if _, err := e.a.UpdateLaunch(ctx, "k", func(l *state.Launch) error { l.Status = "gone"; return nil }); !errors.Is(err, state.ErrInvalid) {
		t.Fatalf("an invalid status: err = %v, want ErrInvalid", err)
	}
	if _, err := e.a.UpdateLaunch(ctx, "nope", func(*state.Launch) error { return nil }); !errors.Is(err, state.ErrNotFound) {
		t.Fatalf("unknown key: err = %v, want ErrNotFound", err)
	}
}

// testUpdateLaunchSerialized proves UpdateLaunch is a read-modify-write under a lock: with
// concurrent increments, none is lost.
func testUpdateLaunchSerialized(t *testing.T, e env) {
	_, err := e.a.CreateLaunch(ctx, sampleLaunch("count"))
	must(t, err)
	const n = 20
	errs := make([]error, n)
	parallel(n, func(i int) {
		_, errs[i] = e.pick(i).UpdateLaunch(ctx, "count", func(l *state.Launch) error {
			c, _ := strconv.Atoi(l.OrderID)
			l.OrderID = strconv.Itoa(c + 1)
			return nil
		})
	})
	for _, err := range errs {
		must(t, err)
	}
	got, err := e.a.GetLaunch(ctx, "count")
	must(t, err)
	if got.OrderID != strconv.Itoa(n) {
		t.Fatalf("%d concurrent increments left %q", n, got.OrderID)
	}
}

func testListLaunches(t *testing.T, e env) {
	for i, st := range []state.LaunchStatus{state.LaunchIntent, state.LaunchReady, state.LaunchFailed, state.LaunchReady} {
		l := sampleLaunch("k" + strconv.Itoa(i))
		l.Status, l.InstanceID = st, "chenyu:i"+strconv.Itoa(i%2)
		_, err := e.a.CreateLaunch(ctx, l)
		must(t, err)
		e.clk.Advance(time.Second)
	}
	keys := func(ls []state.Launch, err error) string {
		t.Helper()
		must(t, err)
		var s []string
		for _, l := range ls {
			s = append(s, l.Key)
		}
		return fmt.Sprint(s)
	}
	for _, c := range []struct {
		f    state.LaunchFilter
		want string
	}{
		{state.LaunchFilter{}, "[k0 k1 k2 k3]"},
		{state.LaunchFilter{Statuses: []state.LaunchStatus{state.LaunchReady}}, "[k1 k3]"},
		{state.LaunchFilter{Statuses: []state.LaunchStatus{state.LaunchIntent, state.LaunchFailed}}, "[k0 k2]"},
		{state.LaunchFilter{InstanceID: "chenyu:i1"}, "[k1 k3]"},
		{state.LaunchFilter{InstanceID: "chenyu:i0", Statuses: []state.LaunchStatus{state.LaunchFailed}}, "[k2]"},
		{state.LaunchFilter{Limit: 2}, "[k0 k1]"},
		{state.LaunchFilter{InstanceID: "none"}, "[]"},
		{state.LaunchFilter{VendorName: "gpu-mcp-k2"}, "[k2]"},
		{state.LaunchFilter{VendorName: "gpu-mcp-k2", InstanceID: "chenyu:i1"}, "[]"},
	} {
		if got := keys(e.b.ListLaunches(ctx, c.f)); got != c.want {
			t.Errorf("ListLaunches(%+v) = %s, want %s", c.f, got, c.want)
		}
	}
}

func timeLease(instance string, due time.Time) state.Lease {
	return state.Lease{InstanceID: instance, Provider: "huixingyun", Kind: state.LeaseTime, Action: state.ActionStop,
		DueAt: due, Enforcer: state.EnforcerGPUMCP, LaunchKey: "launch-" + instance}
}

func testPutLease(t *testing.T, e env) {
	due := start.Add(time.Hour)
	l, err := e.a.PutLease(ctx, timeLease("huixingyun:a", due))
	must(t, err)
	if l.ID == "" {
		t.Fatal("PutLease gave no id")
	}
	want := timeLease("huixingyun:a", due.UTC().Truncate(time.Microsecond))
	want.ID, want.NextCheckAt, want.CreatedAt, want.UpdatedAt = l.ID, want.DueAt, e.stamp(), e.stamp()
	params := func(l *state.Lease) *json.RawMessage { return &l.Params }
	same(t, "new lease", l, want, params)
	got, err := e.b.GetLease(ctx, l.ID)
	must(t, err)
	same(t, "stored lease", got, want, params)

	// The same instance and kind again: the lease is moved, not doubled, and a claim on the
	// old terms is dropped.
	claimed, err := e.a.ClaimDue(ctx, "reaper", due, time.Minute, 10)
	must(t, err)
	if len(claimed) != 1 {
		t.Fatalf("claimed %d leases, want 1", len(claimed))
	}
	e.clk.Advance(time.Minute)
	moved := timeLease("huixingyun:a", due.Add(time.Hour))
	moved.ID, moved.Action, moved.Enforcer, moved.Attempts = "ignored-id", state.ActionDestroy, state.EnforcerVendor, 2
	got, err = e.b.PutLease(ctx, moved)
	must(t, err)
	if got.ID != l.ID || !got.CreatedAt.Equal(l.CreatedAt) || !got.UpdatedAt.Equal(e.stamp()) {
		t.Fatalf("moved lease: id %q created %v updated %v, want id %q, created %v, updated %v", got.ID, got.CreatedAt,
			got.UpdatedAt, l.ID, l.CreatedAt, e.stamp())
	}
	if got.Action != state.ActionDestroy || got.Enforcer != state.EnforcerVendor || got.Attempts != 2 ||
		!got.DueAt.Equal(due.Add(time.Hour).UTC().Truncate(time.Microsecond)) {
		t.Fatalf("moved lease kept old terms: %+v", got)
	}
	if got.ClaimOwner != "" || !got.ClaimUntil.IsZero() {
		t.Fatalf("moving a lease kept the claim: %q until %v", got.ClaimOwner, got.ClaimUntil)
	}
	if _, err := e.a.ReleaseLease(ctx, l.ID, "reaper", func(l *state.Lease) { l.FiredAt = start }); !errors.Is(err, state.ErrNotOwner) {
		t.Fatalf("release after the lease was moved: err = %v, want ErrNotOwner", err)
	}
	if all, _ := e.a.ListLeases(ctx, state.LeaseFilter{}); len(all) != 1 {
		t.Fatalf("%d leases after moving one, want 1", len(all))
	}

	idle := state.Lease{InstanceID: "huixingyun:a", Provider: "huixingyun", Kind: state.LeaseGPUIdle, Action: state.ActionStop,
		Enforcer: state.EnforcerGPUMCP, Params: json.RawMessage(`{"threshold":5,"window":"30m"}`)}
	got, err = e.a.PutLease(ctx, idle)
	must(t, err)
	if got.ID == l.ID || !got.NextCheckAt.Equal(e.stamp()) || !bytes.Equal(canon(t, got.Params), canon(t, idle.Params)) {
		t.Fatalf("an idle lease: %+v, want its own id, next check now and its params", got)
	}
	clash := timeLease("huixingyun:b", due)
	clash.ID = l.ID
	if _, err := e.a.PutLease(ctx, clash); !errors.Is(err, state.ErrExists) {
		t.Fatalf("another instance's lease under a taken id: err = %v, want ErrExists", err)
	}

	for name, bad := range map[string]state.Lease{
		"no instance": {Provider: "p", Kind: state.LeaseTime, Action: state.ActionStop, DueAt: due, Enforcer: state.EnforcerGPUMCP},
		"kind":        {InstanceID: "p:x", Provider: "p", Kind: "forever", Action: state.ActionStop, Enforcer: state.EnforcerGPUMCP},
		"action":      {InstanceID: "p:x", Provider: "p", Kind: state.LeaseTime, DueAt: due, Action: "pause", Enforcer: state.EnforcerGPUMCP},
		"enforcer":    {InstanceID: "p:x", Provider: "p", Kind: state.LeaseTime, DueAt: due, Action: state.ActionStop, Enforcer: "cron"},
		"no due time": {InstanceID: "p:x", Provider: "p", Kind: state.LeaseTime, Action: state.ActionStop, Enforcer: state.EnforcerGPUMCP},
		"params":      {InstanceID: "p:x", Provider: "p", Kind: state.LeaseJobEnd, Action: state.ActionStop, Enforcer: state.EnforcerGPUMCP, Params: json.RawMessage("{")},
	} {
		if _, err := e.a.PutLease(ctx, bad); !errors.Is(err, state.ErrInvalid) {
			t.Errorf("lease with a bad %s: err = %v, want ErrInvalid", name, err)
		}
	}

	must(t, e.b.DeleteLease(ctx, l.ID))
	must(t, e.b.DeleteLease(ctx, l.ID))
	if _, err := e.a.GetLease(ctx, l.ID); !errors.Is(err, state.ErrNotFound) {
		t.Fatalf("a deleted lease: err = %v, want ErrNotFound", err)
	}
}

func testListLeases(t *testing.T, e env) {
	var ids []string
	for i, inst := range []string{"p:a", "p:b", "p:c"} {
		l, err := e.a.PutLease(ctx, timeLease(inst, start.Add(time.Duration(3-i)*time.Hour)))
		must(t, err)
		ids = append(ids, l.ID)
	}
	_, err := e.a.PutLease(ctx, state.Lease{InstanceID: "p:a", Provider: "p", Kind: state.LeaseJobEnd, Action: state.ActionDestroy,
		Enforcer: state.EnforcerGPUMCP, NextCheckAt: start.Add(4 * time.Hour), Params: json.RawMessage(`{"job":"j1"}`)})
	must(t, err)
	claimed, err := e.a.ClaimDue(ctx, "r", start.Add(time.Hour), time.Minute, 1)
	must(t, err)
	if len(claimed) != 1 || claimed[0].ID != ids[2] {
		t.Fatalf("claimed %+v, want the lease of p:c", claimed)
	}
	_, err = e.a.ReleaseLease(ctx, ids[2], "r", func(l *state.Lease) { l.FiredAt, l.Outcome = start.Add(time.Hour), "stopped" })
	must(t, err)
	got := func(f state.LeaseFilter) string {
		t.Helper()
		ls, err := e.b.ListLeases(ctx, f)
		must(t, err)
		var s []string
		for _, l := range ls {
			s = append(s, l.InstanceID+"/"+string(l.Kind))
		}
		return fmt.Sprint(s)
	}
	for _, c := range []struct {
		f    state.LeaseFilter
		want string
	}{
		{state.LeaseFilter{}, "[p:c/time p:b/time p:a/time p:a/job_end]"},
		{state.LeaseFilter{InstanceID: "p:a"}, "[p:a/time p:a/job_end]"},
		{state.LeaseFilter{Kind: state.LeaseJobEnd}, "[p:a/job_end]"},
		{state.LeaseFilter{Pending: true}, "[p:b/time p:a/time p:a/job_end]"},
		{state.LeaseFilter{InstanceID: "p:c", Pending: true}, "[]"},
	} {
		if g := got(c.f); g != c.want {
			t.Errorf("ListLeases(%+v) = %s, want %s", c.f, g, c.want)
		}
	}
}

func testClaimDue(t *testing.T, e env) {
	due, err := e.a.PutLease(ctx, timeLease("p:due", start.Add(-time.Minute)))
	must(t, err)
	_, err = e.a.PutLease(ctx, timeLease("p:later", start.Add(time.Hour)))
	must(t, err)
	fired, err := e.a.PutLease(ctx, timeLease("p:fired", start.Add(-time.Hour)))
	must(t, err)
	claimed, err := e.a.ClaimDue(ctx, "r0", start, time.Minute, 10)
	must(t, err)
	if len(claimed) != 2 || claimed[0].ID != fired.ID || claimed[1].ID != due.ID {
		t.Fatalf("claimed %+v, want the two due leases, soonest first", claimed)
	}
	_, err = e.a.ReleaseLease(ctx, fired.ID, "r0", func(l *state.Lease) { l.FiredAt, l.Outcome = start, "stopped" })
	must(t, err)
	_, err = e.a.ReleaseLease(ctx, due.ID, "r0", func(*state.Lease) {})
	must(t, err)

	e.clk.Advance(time.Second)
	claimed, err = e.b.ClaimDue(ctx, "r1", start, 90*time.Second, 10)
	must(t, err)
	if len(claimed) != 1 || claimed[0].ID != due.ID {
		t.Fatalf("claimed %+v, want only the due, unfired lease", claimed)
	}
	c := claimed[0]
	if c.ClaimOwner != "r1" || !c.ClaimUntil.Equal(start.Add(90*time.Second).UTC().Truncate(time.Microsecond)) || !c.UpdatedAt.Equal(e.stamp()) {
		t.Fatalf("claim recorded as %q until %v (updated %v)", c.ClaimOwner, c.ClaimUntil, c.UpdatedAt)
	}
	stored, err := e.a.GetLease(ctx, due.ID)
	must(t, err)
	if stored.ClaimOwner != "r1" {
		t.Fatalf("the claim is not stored: %+v", stored)
	}
	if again, _ := e.a.ClaimDue(ctx, "r2", start.Add(time.Minute), time.Minute, 10); len(again) != 0 {
		t.Fatalf("a live claim was claimed again: %+v", again)
	}
	for name, args := range map[string]struct {
		owner string
		d     time.Duration
		n     int
	}{"owner": {"", time.Minute, 1}, "duration": {"r", 0, 1}, "limit": {"r", time.Minute, 0}} {
		if _, err := e.a.ClaimDue(ctx, args.owner, start, args.d, args.n); !errors.Is(err, state.ErrInvalid) {
			t.Errorf("ClaimDue without a %s: err = %v, want ErrInvalid", name, err)
		}
	}
}

func testClaimDueExpiry(t *testing.T, e env) {
	l, err := e.a.PutLease(ctx, timeLease("p:x", start))
	must(t, err)
	first, err := e.a.ClaimDue(ctx, "dies", start, time.Minute, 1)
	must(t, err)
	if len(first) != 1 {
		t.Fatalf("claimed %d, want 1", len(first))
	}
	if got, _ := e.b.ClaimDue(ctx, "heir", start.Add(59*time.Second), time.Minute, 1); len(got) != 0 {
		t.Fatal("a claim was taken before it expired")
	}
	got, err := e.b.ClaimDue(ctx, "heir", start.Add(time.Minute), time.Minute, 1)
	must(t, err)
	if len(got) != 1 || got[0].ID != l.ID || got[0].ClaimOwner != "heir" {
		t.Fatalf("after the claim expired: %+v, want the lease claimed by heir", got)
	}
	if _, err := e.a.ReleaseLease(ctx, l.ID, "dies", func(l *state.Lease) { l.FiredAt = start }); !errors.Is(err, state.ErrNotOwner) {
		t.Fatalf("release by the expired claimant: err = %v, want ErrNotOwner", err)
	}
	if s, _ := e.a.GetLease(ctx, l.ID); !s.FiredAt.IsZero() || s.ClaimOwner != "heir" {
		t.Fatalf("the refused release changed the lease: %+v", s)
	}
}

func testClaimDueExactlyOnce(t *testing.T, e env) {
	const leases, claimers = 40, 8
	want := map[string]bool{}
	for i := range leases {
		l, err := e.a.PutLease(ctx, timeLease("p:"+strconv.Itoa(i), start.Add(-time.Duration(i)*time.Second)))
		must(t, err)
		want[l.ID] = true
	}
	var mu sync.Mutex
	got := map[string]string{}
	errs := make([]error, claimers)
	parallel(claimers, func(i int) {
		owner := "claimer-" + strconv.Itoa(i)
		for {
			ls, err := e.pick(i).ClaimDue(ctx, owner, start, time.Hour, 3)
			if err != nil {
				errs[i] = err
				return
			}
			if len(ls) == 0 {
				return
			}
			mu.Lock()
			for _, l := range ls {
				if prev, dup := got[l.ID]; dup {
					errs[i] = fmt.Errorf("lease %s claimed by %s and %s", l.ID, prev, owner)
				}
				if l.ClaimOwner != owner {
					errs[i] = fmt.Errorf("%s got lease %s with claim owner %q", owner, l.ID, l.ClaimOwner)
				}
				got[l.ID] = owner
			}
			mu.Unlock()
		}
	})
	for _, err := range errs {
		must(t, err)
	}
	if len(got) != leases {
		t.Fatalf("%d of %d due leases were claimed", len(got), leases)
	}
	for id := range want {
		if _, ok := got[id]; !ok {
			t.Fatalf("lease %s was never claimed", id)
		}
	}
}

func testReleaseLease(t *testing.T, e env) {
	l, err := e.a.PutLease(ctx, timeLease("p:x", start))
	must(t, err)
	if _, err := e.a.ReleaseLease(ctx, l.ID, "r", func(*state.Lease) {}); !errors.Is(err, state.ErrNotOwner) {
		t.Fatalf("release of an unclaimed lease: err = %v, want ErrNotOwner", err)
	}
	_, err = e.a.ClaimDue(ctx, "r", start, time.Minute, 1)
	must(t, err)
	if _, err := e.b.ReleaseLease(ctx, l.ID, "intruder", func(l *state.Lease) { l.FiredAt = start }); !errors.Is(err, state.ErrNotOwner) {
		t.Fatalf("release by another owner: err = %v, want ErrNotOwner", err)
	}

	// A failed attempt: try again later.
	e.clk.Advance(time.Second)
	retry := start.Add(5 * time.Minute)
	got, err := e.b.ReleaseLease(ctx, l.ID, "r", func(l *state.Lease) {
		l.Attempts++
		l.LastError, l.NextCheckAt = "chenyu: rate limited", retry
		l.ID, l.InstanceID, l.Kind, l.ClaimOwner = "x", "y", state.LeaseGPUIdle, "kept?"
	})
	must(t, err)
	if got.ID != l.ID || got.InstanceID != "p:x" || got.Kind != state.LeaseTime || got.ClaimOwner != "" || !got.ClaimUntil.IsZero() {
		t.Fatalf("release changed the lease's identity or kept the claim: %+v", got)
	}
	if got.Attempts != 1 || got.LastError != "chenyu: rate limited" || !got.NextCheckAt.Equal(retry.UTC().Truncate(time.Microsecond)) ||
		!got.UpdatedAt.Equal(e.stamp()) || !got.FiredAt.IsZero() {
		t.Fatalf("the retry was not recorded: %+v", got)
	}
	stored, err := e.a.GetLease(ctx, l.ID)
	must(t, err)
	same(t, "stored after release", stored, got, func(l *state.Lease) *json.RawMessage { return &l.Params })
	if c, _ := e.a.ClaimDue(ctx, "r", retry.Add(-time.Second), time.Minute, 1); len(c) != 0 {
		t.Fatal("a lease was claimed before its next check")
	}

	// Then done.
	c, err := e.a.ClaimDue(ctx, "r2", retry, time.Minute, 1)
	must(t, err)
	if len(c) != 1 || c[0].Attempts != 1 {
		t.Fatalf("at its next check: %+v", c)
	}
	got, err = e.a.ReleaseLease(ctx, l.ID, "r2", func(l *state.Lease) { l.FiredAt, l.Outcome = retry, "stopped" })
	must(t, err)
	if !got.FiredAt.Equal(retry.UTC().Truncate(time.Microsecond)) || got.Outcome != "stopped" {
		t.Fatalf("firing not recorded: %+v", got)
	}
	if c, _ := e.b.ClaimDue(ctx, "r3", retry.Add(time.Hour), time.Minute, 10); len(c) != 0 {
		t.Fatalf("a fired lease was claimed: %+v", c)
	}
	if _, err := e.a.ReleaseLease(ctx, "lease-none", "r", func(*state.Lease) {}); !errors.Is(err, state.ErrNotFound) {
		t.Fatalf("release of an unknown lease: err = %v, want ErrNotFound", err)
	}
}

func testAudit(t *testing.T, e env) {
	recs := []state.AuditRecord{
		{Tool: "launch_instance", Args: json.RawMessage(`{"offer_id":"chenyu:o"}`), Plan: json.RawMessage(`{"price":1.5}`),
			Confirmation: "token", Outcome: "done", Detail: "chenyu:inst_1", Demo: true, Replica: "r1"},
		{Tool: "stop_instance", Confirmation: "none", Outcome: "confirmation_required", At: start.Add(time.Minute)},
		{Tool: "destroy_instance", Confirmation: "elicitation_decline", Outcome: "declined", Replica: "r2"},
	}
	for i, r := range recs {
		must(t, e.pick(i).AppendAudit(ctx, r))
		e.clk.Advance(2 * time.Minute)
	}
	all, err := e.a.ListAudit(ctx, time.Time{}, 0)
	must(t, err)
	if len(all) != 3 {
		t.Fatalf("ListAudit returned %d records, want 3", len(all))
	}
	wantAt := []time.Time{start, start.Add(time.Minute), start.Add(4 * time.Minute)}
	for i, got := range all {
		want := recs[i]
		want.ID, want.At = got.ID, wantAt[i].UTC().Truncate(time.Microsecond)
		same(t, "audit record "+strconv.Itoa(i), got, want,
			func(a *state.AuditRecord) *json.RawMessage { return &a.Args }, func(a *state.AuditRecord) *json.RawMessage { return &a.Plan })
		if i > 0 && got.ID <= all[i-1].ID {
			t.Fatalf("audit ids not increasing: %d after %d", got.ID, all[i-1].ID)
		}
	}
	since, err := e.b.ListAudit(ctx, start.Add(time.Minute), 1)
	must(t, err)
	if len(since) != 1 || since[0].Tool != "stop_instance" {
		t.Fatalf("ListAudit(since the second, 1) = %+v", since)
	}
	if err := e.a.AppendAudit(ctx, state.AuditRecord{}); !errors.Is(err, state.ErrInvalid) {
		t.Fatalf("a record without a tool: err = %v, want ErrInvalid", err)
	}
}

func testOperations(t *testing.T, e env) {
	op, err := e.a.PutOperation(ctx, state.Operation{Kind: "launch", Tool: "launch_instance", Args: json.RawMessage(`{"wait":true}`),
		Owner: "r1", InstanceID: "chenyu:i"})
	must(t, err)
	if op.ID == "" || op.Status != state.OperationPending || !op.Heartbeat.Equal(e.stamp()) || !op.CreatedAt.Equal(e.stamp()) {
		t.Fatalf("new operation: %+v, want an id, pending, heartbeat and creation now", op)
	}
	args := func(o *state.Operation) *json.RawMessage { return &o.Args }
	result := func(o *state.Operation) *json.RawMessage { return &o.Result }
	got, err := e.b.GetOperation(ctx, op.ID)
	must(t, err)
	same(t, "stored operation", got, op, args, result)
	if _, err := e.b.PutOperation(ctx, state.Operation{ID: op.ID}); !errors.Is(err, state.ErrExists) {
		t.Fatalf("a taken id: err = %v, want ErrExists", err)
	}

	e.clk.Advance(time.Minute)
	got, err = e.b.UpdateOperation(ctx, op.ID, func(o *state.Operation) error {
		if o.Owner != "r1" {
			return state.ErrNotOwner
		}
		o.Status, o.Progress, o.Result = state.OperationDone, "ssh ready", json.RawMessage(`{"ready":true}`)
		o.Heartbeat = e.clk.Now()
		return nil
	})
	must(t, err)
	want := op
	want.Status, want.Progress, want.Result, want.Heartbeat, want.UpdatedAt = state.OperationDone, "ssh ready",
		json.RawMessage(`{"ready":true}`), e.stamp(), e.stamp()
	same(t, "updated operation", got, want, args, result)
	stored, err := e.a.GetOperation(ctx, op.ID)
	must(t, err)
	same(t, "stored updated operation", stored, want, args, result)
	if _, err := e.a.UpdateOperation(ctx, op.ID, func(o *state.Operation) error {
		if o.Owner != "someone else" {
			return state.ErrNotOwner
		}
		return nil
	}); !errors.Is(err, state.ErrNotOwner) {
		t.Fatalf("fn's ErrNotOwner came back as %v", err)
	}
	if _, err := e.a.UpdateOperation(ctx, op.ID, func(o *state.Operation) error { o.Status = "lost"; return nil }); !errors.Is(err, state.ErrInvalid) {
		t.Fatalf("an invalid status: err = %v, want ErrInvalid", err)
	}
	if _, err := e.a.GetOperation(ctx, "op-none"); !errors.Is(err, state.ErrNotFound) {
		t.Fatalf("unknown operation: err = %v, want ErrNotFound", err)
	}

	_, err = e.a.PutOperation(ctx, state.Operation{ID: "op-2", Owner: "r2", InstanceID: "chenyu:j"})
	must(t, err)
	ids := func(f state.OperationFilter) string {
		t.Helper()
		ops, err := e.b.ListOperations(ctx, f)
		must(t, err)
		var s []string
		for _, o := range ops {
			s = append(s, o.ID)
		}
		return fmt.Sprint(s)
	}
	for _, c := range []struct {
		f    state.OperationFilter
		want string
	}{
		{state.OperationFilter{}, fmt.Sprint([]string{op.ID, "op-2"})},
		{state.OperationFilter{Statuses: []state.OperationStatus{state.OperationPending}}, "[op-2]"},
		{state.OperationFilter{Owner: "r1"}, fmt.Sprint([]string{op.ID})},
		{state.OperationFilter{InstanceID: "chenyu:j"}, "[op-2]"},
		{state.OperationFilter{Owner: "r1", Statuses: []state.OperationStatus{state.OperationPending}}, "[]"},
	} {
		if got := ids(c.f); got != c.want {
			t.Errorf("ListOperations(%+v) = %s, want %s", c.f, got, c.want)
		}
	}
}

func testClaimStaleOperation(t *testing.T, e env) {
	_, err := e.a.PutOperation(ctx, state.Operation{ID: "old", Owner: "dead", Heartbeat: start.Add(-time.Hour)})
	must(t, err)
	_, err = e.a.PutOperation(ctx, state.Operation{ID: "alive", Owner: "alive", Heartbeat: start})
	must(t, err)
	_, err = e.a.PutOperation(ctx, state.Operation{ID: "finished", Owner: "dead", Status: state.OperationDone, Heartbeat: start.Add(-time.Hour)})
	must(t, err)
	e.clk.Advance(time.Minute)
	const n = 8
	got := make([]*state.Operation, n)
	errs := make([]error, n)
	parallel(n, func(i int) {
		got[i], errs[i] = e.pick(i).ClaimStaleOperation(ctx, "heir-"+strconv.Itoa(i), start.Add(-time.Minute))
	})
	adopted := 0
	for i := range n {
		must(t, errs[i])
		if got[i] == nil {
			continue
		}
		adopted++
		if got[i].ID != "old" || got[i].Owner != "heir-"+strconv.Itoa(i) || !got[i].Heartbeat.Equal(e.stamp()) {
			t.Fatalf("adopted %+v, want op old, owned by heir-%d, heartbeat now", got[i], i)
		}
	}
	if adopted != 1 {
		t.Fatalf("%d replicas adopted the one stale operation, want 1", adopted)
	}
	if op, err := e.a.ClaimStaleOperation(ctx, "late", start.Add(-time.Minute)); err != nil || op != nil {
		t.Fatalf("nothing stale left, got %+v, %v", op, err)
	}
	stored, err := e.b.GetOperation(ctx, "old")
	must(t, err)
	if stored.Owner == "dead" {
		t.Fatal("the adoption was not stored")
	}
}

func testHostKeys(t *testing.T, e env) {
	pinned, first, err := e.a.PinHostKey(ctx, "p:i", []byte("key-1"))
	must(t, err)
	if !first || string(pinned) != "key-1" {
		t.Fatalf("first use: pinned %q first %v", pinned, first)
	}
	pinned, first, err = e.b.PinHostKey(ctx, "p:i", []byte("key-2"))
	must(t, err)
	if first || string(pinned) != "key-1" {
		t.Fatalf("a second key: pinned %q first %v, want key-1 and not first use", pinned, first)
	}
	must(t, e.a.ForgetHostKey(ctx, "p:i"))
	must(t, e.a.ForgetHostKey(ctx, "p:i"))
	if pinned, first, _ := e.b.PinHostKey(ctx, "p:i", []byte("key-3")); !first || string(pinned) != "key-3" {
		t.Fatalf("after forgetting: pinned %q first %v", pinned, first)
	}
	const n = 10
	keys := make([][]byte, n)
	firsts := make([]bool, n)
	errs := make([]error, n)
	parallel(n, func(i int) {
		keys[i], firsts[i], errs[i] = e.pick(i).PinHostKey(ctx, "p:race", []byte("k"+strconv.Itoa(i)))
	})
	winners := 0
	for i := range n {
		must(t, errs[i])
		if firsts[i] {
			winners++
		}
		if !bytes.Equal(keys[i], keys[0]) {
			t.Fatalf("racers saw different pinned keys: %q and %q", keys[i], keys[0])
		}
	}
	if winners != 1 {
		t.Fatalf("%d racers pinned, want 1", winners)
	}
	if _, _, err := e.a.PinHostKey(ctx, "p:i", nil); !errors.Is(err, state.ErrInvalid) {
		t.Fatalf("an empty key: err = %v, want ErrInvalid", err)
	}
}

func testJobs(t *testing.T, e env) {
	j, err := e.a.PutJob(ctx, state.Job{InstanceID: "p:i", Command: "python train.py", PID: 4242, LogPath: "/root/.gpu-mcp/j.log",
		StartedAt: start, StopInstanceWhenDone: true})
	must(t, err)
	if j.ID == "" || !j.UpdatedAt.Equal(e.stamp()) {
		t.Fatalf("new job: %+v", j)
	}
	got, err := e.b.GetJob(ctx, j.ID)
	must(t, err)
	same(t, "stored job", got, j)
	if got.ExitCode != nil || !got.EndedAt.IsZero() {
		t.Fatalf("a running job has exit code %v, ended %v", got.ExitCode, got.EndedAt)
	}
	if _, err := e.a.PutJob(ctx, state.Job{ID: j.ID, InstanceID: "p:i", Command: "x"}); !errors.Is(err, state.ErrExists) {
		t.Fatalf("a taken id: err = %v, want ErrExists", err)
	}
	e.clk.Advance(time.Hour)
	got, err = e.a.UpdateJob(ctx, j.ID, func(j *state.Job) error {
		code := 0
		j.ExitCode, j.EndedAt = &code, e.clk.Now()
		return nil
	})
	must(t, err)
	if got.ExitCode == nil || *got.ExitCode != 0 || !got.EndedAt.Equal(e.stamp()) || !got.UpdatedAt.Equal(e.stamp()) {
		t.Fatalf("ended job: %+v", got)
	}
	stored, err := e.b.GetJob(ctx, j.ID)
	must(t, err)
	same(t, "stored ended job", stored, got)

	_, err = e.a.PutJob(ctx, state.Job{ID: "j2", InstanceID: "p:other", Command: "sleep 1", StartedAt: start.Add(time.Minute)})
	must(t, err)
	for inst, want := range map[string]int{"p:i": 1, "p:other": 1, "": 2, "p:none": 0} {
		js, err := e.b.ListJobs(ctx, inst)
		must(t, err)
		if len(js) != want {
			t.Errorf("ListJobs(%q) = %d jobs, want %d", inst, len(js), want)
		}
	}
	if _, err := e.a.UpdateJob(ctx, "none", func(*state.Job) error { return nil }); !errors.Is(err, state.ErrNotFound) {
		t.Fatalf("unknown job: err = %v, want ErrNotFound", err)
	}
	if _, err := e.a.PutJob(ctx, state.Job{InstanceID: "p:i"}); !errors.Is(err, state.ErrInvalid) {
		t.Fatalf("a job without a command: err = %v, want ErrInvalid", err)
	}
}

func testReserve(t *testing.T, e env) {
	// A commitment older than CommitmentRetention goes at the next Reserve.
	ancient := state.Commitment{ID: "c-ancient", At: start.Add(-state.CommitmentRetention - time.Hour), Provider: "chenyu", Kind: state.CommitRenew, CNY: 1000}
	must(t, e.a.Reserve(ctx, state.Reservation{ID: "r-ancient", Provider: "chenyu", ExpiresAt: start.Add(-time.Second)},
		&ancient, func(state.Snapshot) error { return nil }))
	old := state.Commitment{ID: "c-old", At: start.Add(-25 * time.Hour), Provider: "chenyu", Kind: state.CommitRenew, CNY: 100}
	must(t, e.a.Reserve(ctx, state.Reservation{ID: "r-old", Provider: "chenyu", PricePerHour: 9, ExpiresAt: start.Add(-time.Second)},
		&old, func(state.Snapshot) error { return nil }))
	if total, err := e.b.Committed(ctx, time.Time{}); err != nil || total != 100 {
		t.Fatalf("all commitments kept = %v (%v), want 100: the one past its retention must be gone", total, err)
	}
	r1 := state.Reservation{ID: "r1", Provider: "chenyu", LaunchKey: "k1", PricePerHour: 2.5, UpfrontCNY: 10, ExpiresAt: start.Add(10 * time.Minute)}
	c1 := state.Commitment{Provider: "chenyu", Kind: state.CommitLaunch, CNY: 10}
	var seen state.Snapshot
	must(t, e.a.Reserve(ctx, r1, &c1, func(s state.Snapshot) error { seen = s; return nil }))
	if len(seen.Reservations) != 0 || len(seen.Commitments) != 0 || !seen.Now.Equal(e.stamp()) {
		t.Fatalf("the first snapshot holds an expired reservation or an old commitment: %+v", seen)
	}
	e.clk.Advance(time.Minute)
	r2 := state.Reservation{ID: "r2", Provider: "datenfab", PricePerHour: 1, ExpiresAt: start.Add(20 * time.Minute)}
	must(t, e.b.Reserve(ctx, r2, nil, func(s state.Snapshot) error { seen = s; return nil }))
	want := r1
	want.CreatedAt, want.ExpiresAt = start.UTC().Truncate(time.Microsecond), r1.ExpiresAt.UTC().Truncate(time.Microsecond)
	if len(seen.Reservations) != 1 {
		t.Fatalf("second snapshot reservations: %+v", seen.Reservations)
	}
	same(t, "reservation in the snapshot", seen.Reservations[0], want)
	if len(seen.Commitments) != 1 || seen.Commitments[0].CNY != 10 || seen.Commitments[0].ID == "" ||
		!seen.Commitments[0].At.Equal(start.UTC().Truncate(time.Microsecond)) || seen.Commitments[0].Kind != state.CommitLaunch {
		t.Fatalf("second snapshot commitments: %+v", seen.Commitments)
	}
	if seen.ReservedPerHour() != 2.5 || seen.Committed() != 10 {
		t.Fatalf("snapshot sums: %v per hour, %v committed", seen.ReservedPerHour(), seen.Committed())
	}

	over := errors.New("over the limit")
	err := e.a.Reserve(ctx, state.Reservation{ID: "r3", Provider: "chenyu", ExpiresAt: start.Add(time.Hour)},
		&state.Commitment{ID: "c3", Provider: "chenyu", Kind: state.CommitLaunch, CNY: 5}, func(state.Snapshot) error { return over })
	if !errors.Is(err, over) {
		t.Fatalf("check's refusal came back as %v", err)
	}
	active, err := e.a.ActiveReservations(ctx, e.clk.Now())
	must(t, err)
	if len(active) != 2 || active[0].ID != "r1" || active[1].ID != "r2" {
		t.Fatalf("active reservations after a refusal: %+v, want r1 and r2", active)
	}
	total, err := e.b.Committed(ctx, start.Add(-time.Hour))
	must(t, err)
	if total != 10 {
		t.Fatalf("committed in the last hour = %v, want 10 (the refused commitment must not count)", total)
	}
	total, err = e.b.Committed(ctx, start.Add(-48*time.Hour))
	must(t, err)
	if total != 110 {
		t.Fatalf("committed in 48 h = %v, want 110", total)
	}
	if err := e.a.Reserve(ctx, r1, nil, func(state.Snapshot) error { return nil }); !errors.Is(err, state.ErrExists) {
		t.Fatalf("a taken reservation id: err = %v, want ErrExists", err)
	}
	for name, r := range map[string]state.Reservation{
		"id": {Provider: "p", ExpiresAt: start}, "provider": {ID: "x", ExpiresAt: start}, "expiry": {ID: "x", Provider: "p"},
		"price": {ID: "x", Provider: "p", ExpiresAt: start, PricePerHour: -1},
	} {
		if err := e.a.Reserve(ctx, r, nil, func(state.Snapshot) error { return nil }); !errors.Is(err, state.ErrInvalid) {
			t.Errorf("a reservation without a valid %s: err = %v, want ErrInvalid", name, err)
		}
	}
	if err := e.a.Reserve(ctx, state.Reservation{ID: "x", Provider: "p", ExpiresAt: start.Add(time.Hour)},
		&state.Commitment{Provider: "p", Kind: "gift"}, func(state.Snapshot) error { return nil }); !errors.Is(err, state.ErrInvalid) {
		t.Fatalf("a commitment of an unknown kind: err = %v, want ErrInvalid", err)
	}
}

// testReserveSerialized: concurrent Reserves whose check admits a reservation only while
// fewer than allowed are active. Serialized, exactly allowed succeed.
func testReserveSerialized(t *testing.T, e env) {
	const n, allowed = 20, 5
	full := errors.New("full")
	errs := make([]error, n)
	parallel(n, func(i int) {
		r := state.Reservation{ID: "r" + strconv.Itoa(i), Provider: "chenyu", PricePerHour: 1, ExpiresAt: start.Add(time.Hour)}
		c := state.Commitment{Provider: "chenyu", Kind: state.CommitLaunch, CNY: 1}
		errs[i] = e.pick(i).Reserve(ctx, r, &c, func(s state.Snapshot) error {
			if s.ReservedPerHour()+1 > allowed || s.Committed()+1 > allowed {
				return full
			}
			return nil
		})
	})
	ok := 0
	for _, err := range errs {
		switch {
		case err == nil:
			ok++
		case !errors.Is(err, full):
			t.Fatal(err)
		}
	}
	if ok != allowed {
		t.Fatalf("%d of %d concurrent reservations passed a check that admits %d", ok, n, allowed)
	}
	active, err := e.a.ActiveReservations(ctx, start)
	must(t, err)
	total, err := e.b.Committed(ctx, start.Add(-time.Hour))
	must(t, err)
	if len(active) != allowed || total != allowed {
		t.Fatalf("%d active reservations and %v committed, want %d of each", len(active), total, allowed)
	}
}

func testReservations(t *testing.T, e env) {
	must(t, e.a.Reserve(ctx, state.Reservation{ID: "r", Provider: "p", ExpiresAt: start.Add(time.Hour)}, nil, func(state.Snapshot) error { return nil }))
	must(t, e.b.AttachReservation(ctx, "r", "p:inst"))
	active, err := e.a.ActiveReservations(ctx, start)
	must(t, err)
	if len(active) != 1 || active[0].InstanceID != "p:inst" {
		t.Fatalf("after attaching: %+v", active)
	}
	if err := e.a.AttachReservation(ctx, "none", "p:x"); !errors.Is(err, state.ErrNotFound) {
		t.Fatalf("attaching an unknown reservation: err = %v, want ErrNotFound", err)
	}
	if active, _ := e.a.ActiveReservations(ctx, start.Add(time.Hour)); len(active) != 0 {
		t.Fatalf("a reservation is active at its expiry: %+v", active)
	}
	must(t, e.b.ReleaseReservation(ctx, "r"))
	must(t, e.b.ReleaseReservation(ctx, "r"))
	if active, _ := e.a.ActiveReservations(ctx, start); len(active) != 0 {
		t.Fatalf("a released reservation is active: %+v", active)
	}

	// A commitment whose money was not spent is cancelled, on any replica, once.
	must(t, e.a.Reserve(ctx, state.Reservation{ID: "r-start", Provider: "p", ExpiresAt: start.Add(time.Hour)},
		&state.Commitment{ID: "c-start", Provider: "p", InstanceID: "p:inst", Kind: state.CommitStart, CNY: 7}, func(state.Snapshot) error { return nil }))
	must(t, e.a.Reserve(ctx, state.Reservation{ID: "r-keep", Provider: "p", ExpiresAt: start.Add(time.Hour)},
		&state.Commitment{ID: "c-keep", Provider: "p", Kind: state.CommitLaunch, CNY: 2}, func(state.Snapshot) error { return nil }))
	must(t, e.b.CancelCommitment(ctx, "c-start"))
	must(t, e.a.CancelCommitment(ctx, "c-start"))
	total, err := e.a.Committed(ctx, time.Time{})
	must(t, err)
	var seen state.Snapshot
	must(t, e.b.Reserve(ctx, state.Reservation{ID: "r-look", Provider: "p", ExpiresAt: start.Add(time.Hour)}, nil, func(s state.Snapshot) error { seen = s; return nil }))
	if total != 2 || len(seen.Commitments) != 1 || seen.Commitments[0].ID != "c-keep" {
		t.Fatalf("after cancelling: %v committed, snapshot %+v", total, seen.Commitments)
	}
}
