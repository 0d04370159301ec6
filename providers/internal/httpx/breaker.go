package httpx

import (
	"errors"
	"sync"
	"time"

	"github.com/gpu-mcp/gpu-mcp/providers"
)

// Breaker defaults.
const (
	DefaultBreakerThreshold = 5
	DefaultBreakerCooldown  = 30 * time.Second
)

// ErrVendorSkipped is wrapped by the error of a request the breaker did not send.
var ErrVendorSkipped = errors.New("vendor skipped by the circuit breaker")

// Breaker skips a vendor that keeps failing. After Threshold failures in a row it opens: every
// request is refused at once, without being sent, until Cooldown has passed. Then one trial
// request is let through (others are still refused): its success closes the breaker, its
// failure opens it for another Cooldown. Only transport failures, timeouts and 5xx answers
// count as failures; any other answer shows the vendor is there and resets the count.
//
// One Breaker serves every client of a vendor; it is safe for concurrent use.
type Breaker struct {
	threshold int
	cooldown  time.Duration
	now       func() time.Time

	mu        sync.Mutex
	failures  int
	lastErr   string
	openUntil time.Time // zero: closed
	trialOut  bool      // a trial request is under way
}

// NewBreaker returns the breaker o asks for, or nil when o.BreakerThreshold is negative.
func NewBreaker(o providers.HTTPOptions) *Breaker {
	if o.BreakerThreshold < 0 {
		return nil
	}
	b := &Breaker{threshold: o.BreakerThreshold, cooldown: o.BreakerCooldown, now: time.Now}
	if b.threshold == 0 {
		b.threshold = DefaultBreakerThreshold
	}
	if b.cooldown <= 0 {
		b.cooldown = DefaultBreakerCooldown
	}
	return b
}

// openError describes a refusal by an open breaker.
type openError struct {
	failures int
	lastErr  string
	until    time.Time
	trialOut bool
	now      time.Time
}

// allow reports whether a request may be sent, and whether it is the trial request.
func (b *Breaker) allow() (trial bool, refused *openError) {
	if b == nil {
		return false, nil
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.openUntil.IsZero() {
		return false, nil
	}
	now := b.now()
	if now.Before(b.openUntil) || b.trialOut {
		return false, &openError{failures: b.failures, lastErr: b.lastErr, until: b.openUntil, trialOut: b.trialOut, now: now}
	}
	b.trialOut = true
	return true, nil
}

// outcome of one request, as the breaker counts it.
type outcome int

const (
	neutral outcome = iota // cancelled by the caller: says nothing about the vendor
	success
	failure
)

// record counts the outcome of a request that allow let through.
func (b *Breaker) record(trial bool, o outcome, why string) {
	if b == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if trial {
		b.trialOut = false
	}
	switch o {
	case success:
		b.failures, b.lastErr, b.openUntil = 0, "", time.Time{}
	case failure:
		b.failures++
		b.lastErr = why
		if trial || b.failures >= b.threshold {
			b.openUntil = b.now().Add(b.cooldown)
		}
	}
}
