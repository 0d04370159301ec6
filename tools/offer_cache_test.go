package tools

import (
	"context"
	"errors"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/gpu-mcp/gpu-mcp/providers"
)

// gatedProvider counts ListOffers calls; while its gate is set, calls wait for it (or for
// their context); fail makes them fail.
type gatedProvider struct {
	*fakeProvider
	mu    sync.Mutex
	calls int
	gate  chan struct{}
	fail  error
	model string
}

func newGated(name string) *gatedProvider {
	return &gatedProvider{fakeProvider: newFake(name), model: "v1"}
}

func (g *gatedProvider) ListOffers(ctx context.Context) ([]providers.Offer, error) {
	g.mu.Lock()
	g.calls++
	gate, fail, model := g.gate, g.fail, g.model
	g.mu.Unlock()
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if fail != nil {
		return nil, fail
	}
	offers, _ := g.fakeProvider.ListOffers(ctx)
	offers[0].GPUModel = model
	return offers, nil
}

func (g *gatedProvider) set(f func(g *gatedProvider)) {
	g.mu.Lock()
	defer g.mu.Unlock()
	f(g)
}

func (g *gatedProvider) count() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.calls
}

// testClock is a settable clock.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *testClock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func newTestCache(t *testing.T) (*OfferCache, *testClock) {
	clk := &testClock{t: time.Date(2025, 3, 1, 10, 0, 0, 0, time.UTC)}
	c := NewOfferCache(OfferCacheOptions{TTL: 30 * time.Second, MaxStale: 5 * time.Minute, RefreshTimeout: 5 * time.Second})
	c.now = clk.now
	t.Cleanup(c.Close)
	return c, clk
}

// eventually polls cond until it holds. It fails only after a minute: a background refresh
// may wait long for a core on a loaded machine, and that is no failure.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(time.Minute); !cond(); time.Sleep(2 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%s: still not so after a minute", what)
		}
	}
}

// settle waits until no refresh is under way.
func (c *OfferCache) settle(t *testing.T) {
	t.Helper()
	eventually(t, "every refresh finished", func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		for _, e := range c.entries {
			if e.flight != nil {
				return false
			}
		}
		return true
	})
}

func model(t *testing.T, offers []providers.Offer, err error) string {
	t.Helper()
	if err != nil || len(offers) != 1 {
		t.Fatalf("offers %v, %v", offers, err)
	}
	return offers[0].GPUModel
}

func TestOfferCacheServesStaleWhileOneRefreshRuns(t *testing.T) {
	c, clk := newTestCache(t)
	p := newGated("alpha")
	ctx := t.Context()

	offers, note, err := c.Offers(ctx, p)
	if model(t, offers, err) != "v1" || note != nil || p.count() != 1 {
		t.Fatalf("first call: %d calls", p.count())
	}
	clk.add(29 * time.Second)
	if offers, _, err := c.Offers(ctx, p); model(t, offers, err) != "v1" || p.count() != 1 {
		t.Fatalf("within the TTL the vendor was asked again: %d calls", p.count())
	}

	// Past the TTL: the old offers at once, and one refresh, however many callers.
	gate := make(chan struct{})
	p.set(func(g *gatedProvider) { g.gate, g.model = gate, "v2" })
	clk.add(2 * time.Second)
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			offers, note, err := c.Offers(ctx, p)
			if model(t, offers, err) != "v1" || note != nil {
				t.Errorf("stale answer: %v %+v", offers, note)
			}
		})
	}
	wg.Wait()
	// The refresh asks the vendor from a goroutine of its own, which may not have run yet.
	eventually(t, "the refresh asked the vendor", func() bool { return p.count() >= 2 })
	if p.count() != 2 {
		t.Fatalf("%d calls: want exactly one refresh while it runs", p.count())
	}
	close(gate)
	c.settle(t)
	if offers, _, err := c.Offers(ctx, p); model(t, offers, err) != "v2" || p.count() != 2 {
		t.Fatalf("after the refresh: %v, %d calls", offers, p.count())
	}
	// Close waits for every refresh started, so that one a caller started beside the first,
	// whose goroutine had not run by the counts above, has asked the vendor by now.
	c.Close()
	if p.count() != 2 {
		t.Fatalf("%d calls: the 20 callers started more than one refresh", p.count())
	}
}

func TestOfferCacheServesStaleOnErrorsForABoundedTimeAndSaysSo(t *testing.T) {
	c, clk := newTestCache(t)
	p := newGated("alpha")
	ctx := t.Context()
	if _, _, err := c.Offers(ctx, p); err != nil {
		t.Fatal(err)
	}
	p.set(func(g *gatedProvider) {
		g.fail = &providers.Error{Kind: providers.KindUnavailable, Provider: "alpha", Message: "HTTP 503", Remedy: "try again later"}
	})
	clk.add(40 * time.Second)
	if offers, note, err := c.Offers(ctx, p); model(t, offers, err) != "v1" || note != nil {
		t.Fatalf("stale before the refresh failed: %+v", note)
	}
	c.settle(t)
	offers, note, err := c.Offers(ctx, p)
	if model(t, offers, err) != "v1" || note == nil || note.Provider != "alpha" || note.AgeSeconds != 40 || !strings.Contains(note.Error, "HTTP 503") {
		t.Fatalf("stale after a failed refresh: %+v", note)
	}
	c.settle(t)

	// Beyond TTL + MaxStale the old offers are not served: the error is.
	clk.add(5 * time.Minute)
	offers, _, err = c.Offers(ctx, p)
	if err == nil || len(offers) != 0 || !strings.Contains(err.Error(), "HTTP 503") {
		t.Fatalf("offers older than the bound: %v, %v", offers, err)
	}
	// And when the vendor is back, fresh ones.
	p.set(func(g *gatedProvider) { g.fail, g.model = nil, "v3" })
	if offers, note, err := c.Offers(ctx, p); model(t, offers, err) != "v3" || note != nil {
		t.Fatalf("after recovery: %+v", note)
	}
}

// TestOfferCacheDatesOffersByTheVendorsAnswer pins down a race that once made the test above
// flaky: the refresh read the clock after it had let its waiters go, so a caller that moved
// the clock on at once could see its offers dated after the move, fresh when they were not.
// Here the clock, read by the refresh, waits for the caller to have returned and moved it;
// it gives up after a while, since a refresh that reads it before letting the caller go
// (as it must) would otherwise wait forever.
func TestOfferCacheDatesOffersByTheVendorsAnswer(t *testing.T) {
	c, clk := newTestCache(t)
	start := clk.now()
	returned, refreshRead := make(chan struct{}), make(chan struct{})
	var reads atomic.Int32
	c.now = func() time.Time {
		if reads.Add(1) == 1 { // Offers' own look at the clock, before the refresh starts
			return clk.now()
		}
		defer close(refreshRead)
		select {
		case <-returned:
		case <-time.After(200 * time.Millisecond):
		}
		return clk.now()
	}
	p := newGated("alpha")
	if _, _, err := c.Offers(t.Context(), p); err != nil {
		t.Fatal(err)
	}
	clk.add(time.Hour)
	close(returned)
	<-refreshRead
	c.mu.Lock()
	at := c.entries["alpha"].at
	c.mu.Unlock()
	if !at.Equal(start) {
		t.Fatalf("offers fetched at %s are dated %s, after the caller moved the clock", start, at)
	}
}

func TestOfferCacheWaitEndsWithTheCallerButTheFetchGoesOn(t *testing.T) {
	c, _ := newTestCache(t)
	p := newGated("alpha")
	gate := make(chan struct{})
	p.set(func(g *gatedProvider) { g.gate = gate })
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Millisecond)
	defer cancel()
	if _, _, err := c.Offers(ctx, p); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("a caller whose deadline passed: %v", err)
	}
	close(gate)
	c.settle(t)
	if offers, _, err := c.Offers(t.Context(), p); model(t, offers, err) != "v1" || p.count() != 1 {
		t.Fatalf("the fetch the first caller started was not kept: %d calls", p.count())
	}
}

func TestOfferCacheInvalidateAndClose(t *testing.T) {
	c, _ := newTestCache(t)
	p := newGated("alpha")
	ctx := t.Context()
	c.Offers(ctx, p)
	c.Invalidate("alpha")
	c.Offers(ctx, p)
	if p.count() != 2 {
		t.Fatalf("%d calls: an invalidated provider was not asked again", p.count())
	}
	// A refresh blocked at the vendor ends when the cache closes.
	p.set(func(g *gatedProvider) { g.gate = make(chan struct{}) })
	c.Invalidate("alpha")
	go c.Offers(ctx, p)
	eventually(t, "the refresh asked the vendor", func() bool { return p.count() == 3 })
	done := make(chan struct{})
	go func() { c.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(time.Minute):
		t.Fatal("Close did not stop the refresh under way")
	}
	p.set(func(g *gatedProvider) { g.gate = nil })
	if offers, _, err := c.Offers(ctx, p); model(t, offers, err) != "v1" || p.count() != 4 {
		t.Fatalf("after Close the provider is asked directly: %d calls", p.count())
	}
}

func TestListOffersUsesTheCacheLaunchReadsLive(t *testing.T) {
	p := newGated("alpha")
	reg, err := providers.NewRegistry(p)
	if err != nil {
		t.Fatal(err)
	}
	cache, clk := newTestCache(t)
	d := &Deps{Providers: reg, Confirmer: testConfirmer(t, "k"), Log: zerolog.New(io.Discard), Offers: cache, Fleet: newTestFleet(t, reg)}
	tools := map[string]Tool{}
	for _, tool := range All(d) {
		tools[tool.Name] = tool
	}
	call := func(name, args string) string {
		t.Helper()
		res := tools[name].Call(t.Context(), []byte(args))
		if res.IsError {
			t.Fatalf("%s: %s", name, text(res))
		}
		return text(res)
	}
	call("list_gpu_offers", `{}`)
	call("list_gpu_offers", `{"gpu":"4090"}`)
	if p.count() != 1 {
		t.Fatalf("%d vendor reads for two list_gpu_offers within the TTL", p.count())
	}
	plan := call("launch_instance", `{"offer_id":"alpha:o1","image_id":"alpha:img1"}`)
	if p.count() != 2 || !strings.Contains(plan, "CONFIRMATION REQUIRED") {
		t.Fatalf("launch planned on the cache (%d reads): %s", p.count(), plan)
	}

	// A failed refresh shows in the answer.
	p.set(func(g *gatedProvider) { g.fail = errors.New("alpha: HTTP 503") })
	clk.add(time.Minute)
	call("list_gpu_offers", `{}`)
	cache.settle(t)
	res := tools["list_gpu_offers"].Call(t.Context(), []byte(`{}`))
	if res.IsError || !strings.Contains(text(res), "alpha offers are 60s old") || !strings.Contains(text(res), "HTTP 503") {
		t.Fatalf("stale offers are not flagged: %s", text(res))
	}
}
