package tools

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gpu-mcp/gpu-mcp/providers"
	"github.com/gpu-mcp/gpu-mcp/state"
	"github.com/gpu-mcp/gpu-mcp/state/statetest"
)

// testConfirmer is a Confirmer keyed by secret on a fresh in-memory store.
func testConfirmer(t testing.TB, secret string) *Confirmer {
	t.Helper()
	return confirmerOn(t, statetest.Open(t, state.MemoryURL, state.Options{}), secret)
}

func confirmerOn(t testing.TB, s state.Store, secret string) *Confirmer {
	t.Helper()
	c, err := NewConfirmer(context.Background(), s, secret, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// failingStore is a store whose token and audit writes fail when told to.
type failingStore struct {
	state.Store
	spendFails, auditFails atomic.Bool
	prunes                 atomic.Int32
}

var errDatabaseDown = errors.New("database is down")

func (f *failingStore) SpendToken(ctx context.Context, digest string, exp time.Time) (bool, error) {
	if f.spendFails.Load() {
		return false, errDatabaseDown
	}
	return f.Store.SpendToken(ctx, digest, exp)
}

func (f *failingStore) PruneTokens(ctx context.Context, now time.Time) (int64, error) {
	f.prunes.Add(1)
	return f.Store.PruneTokens(ctx, now)
}

func (f *failingStore) AppendAudit(ctx context.Context, rec state.AuditRecord) error {
	if f.auditFails.Load() {
		return errDatabaseDown
	}
	return f.Store.AppendAudit(ctx, rec)
}

var stopArgs = []byte(`{"instance_id":"x:y"}`)

// Two handles on one SQLite file are two processes on one machine: a token is good once
// across them, and without a configured secret both use the key the store made.
func TestConfirmerOnTheStoreSpendsATokenOnceAcrossProcesses(t *testing.T) {
	for _, backend := range []struct {
		name string
		url  func(t *testing.T) string
	}{{"sqlite", func(t *testing.T) string { return statetest.SQLiteURL(t) }}, {"postgres", func(t *testing.T) string { return statetest.PostgresURL(t) }}} {
		t.Run(backend.name, func(t *testing.T) {
			u := backend.url(t)
			first := confirmerOn(t, statetest.Open(t, u, state.Options{}), "")
			second := confirmerOn(t, statetest.Open(t, u, state.Options{}), "")
			tok, _ := first.Issue("stop_instance", stopArgs, "d")
			if err := second.Verify(context.Background(), "stop_instance", stopArgs, "d", tok); err != nil {
				t.Fatalf("the other process refused a token made with the store's key: %v", err)
			}
			err := first.Verify(context.Background(), "stop_instance", stopArgs, "d", tok)
			if te, ok := isTokenError(err); !ok || !strings.Contains(te.Reason, "already been used") {
				t.Fatalf("a token spent by the other process: %v", err)
			}
			restarted := confirmerOn(t, statetest.Open(t, u, state.Options{}), "")
			if err := restarted.Verify(context.Background(), "stop_instance", stopArgs, "d", tok); err == nil {
				t.Fatal("a restarted process accepted a spent token")
			}
			if elsewhere := testConfirmer(t, ""); elsewhere.Verify(context.Background(), "stop_instance", stopArgs, "d", tok) == nil {
				t.Fatal("a store with another key accepted the token")
			}
		})
	}
}

// Of 20 calls with one token at once, split over two processes on one store, exactly one goes
// through.
func TestConfirmerConcurrentSpendsOfOneToken(t *testing.T) {
	u := statetest.SQLiteURL(t)
	cs := []*Confirmer{confirmerOn(t, statetest.Open(t, u, state.Options{}), ""), confirmerOn(t, statetest.Open(t, u, state.Options{}), "")}
	tok, _ := cs[0].Issue("stop_instance", stopArgs, "d")
	var ok, used atomic.Int32
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Go(func() {
			err := cs[i%2].Verify(context.Background(), "stop_instance", stopArgs, "d", tok)
			if err == nil {
				ok.Add(1)
			} else if te, isTE := isTokenError(err); isTE && strings.Contains(te.Reason, "already been used") {
				used.Add(1)
			} else {
				t.Errorf("call %d: %v", i, err)
			}
		})
	}
	wg.Wait()
	if ok.Load() != 1 || used.Load() != 19 {
		t.Fatalf("%d accepted and %d refused as used, want 1 and 19", ok.Load(), used.Load())
	}
}

// A genuine token for a plan that no longer holds is spent: the approval was for a situation
// that is gone.
func TestPlanChangedSpendsTheToken(t *testing.T) {
	c := testConfirmer(t, "k")
	tok, _ := c.Issue("stop_instance", stopArgs, "old-plan")
	err := c.Verify(context.Background(), "stop_instance", stopArgs, "new-plan", tok)
	if te, ok := isTokenError(err); !ok || !te.PlanChanged {
		t.Fatalf("a changed plan: %v", err)
	}
	if err := c.Verify(context.Background(), "stop_instance", stopArgs, "old-plan", tok); err == nil {
		t.Fatal("a token spent on a changed plan was accepted afterwards")
	}
}

// A store that cannot record the spending refuses the token: nothing runs unrecorded.
func TestVerifyRefusesWhenTheStoreFails(t *testing.T) {
	fs := &failingStore{Store: statetest.Open(t, state.MemoryURL, state.Options{})}
	c := confirmerOn(t, fs, "k")
	tok, _ := c.Issue("stop_instance", stopArgs, "d")
	fs.spendFails.Store(true)
	err := c.Verify(context.Background(), "stop_instance", stopArgs, "d", tok)
	if err == nil || !strings.Contains(err.Error(), "could not record the confirmation") || !strings.Contains(err.Error(), "nothing was done") {
		t.Fatalf("store down: %v", err)
	}
	if _, isTE := isTokenError(err); isTE {
		t.Fatal("a store failure reads as the token's fault")
	}
	fs.spendFails.Store(false)
	if err := c.Verify(context.Background(), "stop_instance", stopArgs, "d", tok); err != nil {
		t.Fatalf("the token, never spent while the store was down, is refused once it is back: %v", err)
	}
}

// Expired digests are pruned, at most once a minute.
func TestConfirmerPrunesAtMostOnceAMinute(t *testing.T) {
	fs := &failingStore{Store: statetest.Open(t, state.MemoryURL, state.Options{})}
	c := confirmerOn(t, fs, "k")
	now := time.Now()
	c.now = func() time.Time { return now }
	old, _ := c.Issue("stop_instance", stopArgs, "d")
	for range 5 {
		tok, _ := c.Issue("stop_instance", stopArgs, "d")
		if err := c.Verify(context.Background(), "stop_instance", stopArgs, "d", tok); err != nil {
			t.Fatal(err)
		}
	}
	if n := fs.prunes.Load(); n != 1 {
		t.Fatalf("%d prunes within a minute, want 1", n)
	}
	if err := c.Verify(context.Background(), "stop_instance", stopArgs, "d", old); err != nil {
		t.Fatal(err)
	}
	now = now.Add(2 * time.Minute)
	tok, _ := c.Issue("stop_instance", stopArgs, "d")
	if err := c.Verify(context.Background(), "stop_instance", stopArgs, "d", tok); err != nil {
		t.Fatal(err)
	}
	if n := fs.prunes.Load(); n != 2 {
		t.Fatalf("%d prunes after two minutes, want 2", n)
	}
	// The prune forgot the six expired digests (nothing is left for another), and the
	// expiry alone refuses the token whose digest is gone.
	if n, err := fs.Store.PruneTokens(context.Background(), now); err != nil || n != 0 {
		t.Fatalf("%d expired digests left after the prune (%v)", n, err)
	}
	err := c.Verify(context.Background(), "stop_instance", stopArgs, "d", old)
	if te, ok := isTokenError(err); !ok || !strings.Contains(te.Reason, "expired") {
		t.Fatalf("an expired, pruned token: %v", err)
	}
}

// Through the guard: a store that cannot record the token's use, or the approval in the audit
// trail, refuses the action, and the vendor sees nothing.
func TestGuardRefusesWhatItCannotRecord(t *testing.T) {
	for _, c := range []struct {
		name string
		fail func(*failingStore)
		want string
	}{
		{"token", func(fs *failingStore) { fs.spendFails.Store(true) }, "could not record the confirmation"},
		{"audit", func(fs *failingStore) { fs.auditFails.Store(true) }, "could not record the approval in the audit trail"},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := newFake("alpha")
			f.addInstance("i1", providers.StateRunning)
			h := newHarness(t, f)
			fs := &failingStore{Store: statetest.Open(t, state.MemoryURL, state.Options{})}
			h.deps.Confirmer = confirmerOn(t, fs, "k")
			audit, err := NewAuditLog(AuditOptions{Store: fs})
			if err != nil {
				t.Fatal(err)
			}
			h.deps.Audit = audit
			_, m := h.call("stop_instance", map[string]any{"instance_id": "alpha:i1"})
			token, _ := m["confirmation_token"].(string)
			if token == "" {
				t.Fatalf("no plan: %v", m)
			}
			c.fail(fs)
			res, _ := h.call("stop_instance", map[string]any{"instance_id": "alpha:i1", "confirm_token": token})
			if !res.IsError || !strings.Contains(text(res), c.want) || !strings.Contains(text(res), "nothing was done") {
				t.Fatalf("got %q, want a refusal saying %q", text(res), c.want)
			}
			if got := f.mutations(); len(got) != 0 {
				t.Fatalf("the vendor saw %v", got)
			}
		})
	}
}
