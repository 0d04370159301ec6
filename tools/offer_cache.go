package tools

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/gpu-mcp/gpu-mcp/providers"
)

// OfferCacheOptions configure an OfferCache.
type OfferCacheOptions struct {
	// TTL is how long fetched offers are served as they are (0: 30s).
	TTL time.Duration
	// MaxStale is how much longer than TTL offers are still served while a refresh runs or
	// after refreshes failed (0: 10 times TTL). Older offers are never served.
	MaxStale time.Duration
	// RefreshTimeout bounds one fetch of a provider's offers (0: 30s).
	RefreshTimeout time.Duration
}

// OfferCache keeps each provider's offers for a short while, for list_gpu_offers only:
// launch_instance always reads the vendor's live offer before it buys. Offers older than the
// TTL are served at once while one refresh per provider runs in the background
// (stale-while-revalidate); when that refresh fails, the old offers are served up to MaxStale,
// and the answer says how old they are and why. Close stops every refresh.
type OfferCache struct {
	ttl, maxStale, timeout time.Duration
	now                    func() time.Time

	ctx  context.Context // ends the refreshes on Close
	stop context.CancelFunc
	wg   sync.WaitGroup

	mu      sync.Mutex
	closed  bool
	entries map[string]*offerEntry
}

type offerEntry struct {
	offers []providers.Offer
	cut    error     // the *providers.Incomplete the offers came with, if any
	at     time.Time // when offers were fetched; zero: none
	err    error     // the last refresh's failure, when it failed after at
	gen    int       // bumped by Invalidate: a refresh started before does not store its result
	flight *offerFetch
}

// offerFetch is one refresh under way; done closes when offers and err are set.
type offerFetch struct {
	done   chan struct{}
	offers []providers.Offer
	err    error
}

// StaleOffers says that a provider's offers come from the cache because it could not be asked.
type StaleOffers struct {
	Provider   string `json:"provider"`
	AgeSeconds int    `json:"age_seconds" jsonschema:"minimum=0"`
	Error      string `json:"error"`
}

// NewOfferCache returns a cache; Close it to stop its refreshes.
func NewOfferCache(o OfferCacheOptions) *OfferCache {
	if o.TTL <= 0 {
		o.TTL = 30 * time.Second
	}
	if o.MaxStale <= 0 {
		o.MaxStale = 10 * o.TTL
	}
	if o.RefreshTimeout <= 0 {
		o.RefreshTimeout = 30 * time.Second
	}
	ctx, stop := context.WithCancel(context.Background())
	return &OfferCache{ttl: o.TTL, maxStale: o.MaxStale, timeout: o.RefreshTimeout, now: time.Now,
		ctx: ctx, stop: stop, entries: map[string]*offerEntry{}}
}

// Offers returns p's offers: fresh from the cache, stale from the cache while a refresh runs
// (with a note when the last refresh failed), or fetched now when there are none young
// enough. Waiting for a fetch ends with ctx; the fetch itself goes on for the next caller.
// Offers of a list the vendor cut short come with its *providers.Incomplete, as the provider
// gave them.
func (c *OfferCache) Offers(ctx context.Context, p providers.Provider) ([]providers.Offer, *StaleOffers, error) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		offers, err := p.ListOffers(ctx)
		return offers, nil, err
	}
	e := c.entries[p.Name()]
	if e == nil {
		e = &offerEntry{}
		c.entries[p.Name()] = e
	}
	now := c.now()
	if !e.at.IsZero() {
		age := now.Sub(e.at)
		if age < c.ttl {
			offers, cut := e.offers, e.cut
			c.mu.Unlock()
			return offers, nil, cut
		}
		if age < c.ttl+c.maxStale {
			if e.flight == nil {
				c.refresh(p, e)
			}
			var note *StaleOffers
			if e.err != nil {
				note = &StaleOffers{Provider: p.Name(), AgeSeconds: int(age / time.Second), Error: errorText(e.err)}
			}
			offers, cut := e.offers, e.cut
			c.mu.Unlock()
			return offers, note, cut
		}
	}
	f := e.flight
	if f == nil {
		f = c.refresh(p, e)
	}
	c.mu.Unlock()
	select {
	case <-f.done:
		return f.offers, nil, f.err
	case <-ctx.Done():
		return nil, nil, ctx.Err()
	}
}

// refresh starts a fetch of p's offers into e. Called with c.mu held.
func (c *OfferCache) refresh(p providers.Provider, e *offerEntry) *offerFetch {
	f := &offerFetch{done: make(chan struct{})}
	e.flight = f
	gen := e.gen
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		ctx, cancel := context.WithTimeout(c.ctx, c.timeout)
		defer cancel()
		offers, err := listOffersSafely(ctx, p)
		// The offers are as old as the vendor's answer, which is read now: a clock read later,
		// after a waiter was let go, could date them after whatever that waiter did next.
		at := c.now()
		c.mu.Lock()
		defer c.mu.Unlock()
		// Waiters are let go only once the entry holds what they got, so that a caller's next
		// call finds it there.
		defer close(f.done)
		f.offers, f.err = offers, err
		e.flight = nil
		if gen != e.gen {
			return
		}
		var cut error
		if providers.AsIncomplete(err) != nil {
			cut, err = err, nil
		}
		if err != nil {
			e.err = err
			return
		}
		if offers == nil {
			offers = []providers.Offer{}
		}
		e.offers, e.cut, e.at, e.err = offers, cut, at, nil
	}()
	return f
}

// listOffersSafely turns a panic in an adapter into an error: a background refresh has no
// handler above it to recover.
func listOffersSafely(ctx context.Context, p providers.Provider) (offers []providers.Offer, err error) {
	defer func() {
		if r := recover(); r != nil {
			offers, err = nil, fmt.Errorf("%s: internal error while listing offers: %v", p.Name(), r)
		}
	}()
	return p.ListOffers(ctx)
}

// Invalidate forgets a provider's offers, after a launch changed what it has free.
func (c *OfferCache) Invalidate(provider string) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if e := c.entries[provider]; e != nil {
		e.offers, e.cut, e.at, e.err = nil, nil, time.Time{}, nil
		e.gen++
	}
}

// Close stops the refreshes under way and waits for them; afterwards every call asks the
// provider directly.
func (c *OfferCache) Close() {
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	c.stop()
	c.wg.Wait()
}
