package providers

import (
	"time"

	"github.com/gpu-mcp/gpu-mcp/providers/redact"
)

// HTTPOptions tune how an adapter talks to its vendor: how long one request may take, how
// reads are retried and when a failing vendor is skipped. Every adapter's Config carries one.
// The zero value is a 30s timeout per request, no retries, and a breaker that skips the vendor
// for 30s after 5 failures in a row.
type HTTPOptions struct {
	// Timeout bounds one HTTP request, its answer's body included (0: 30s).
	Timeout time.Duration
	// Retries is how many more times a read is sent after a transport failure, a timeout, a
	// 5xx or a 429 answer (0: never). A call that buys, starts, stops, saves, renews or deletes
	// is never sent twice: its outcome after such a failure is unknown, and the error says so.
	Retries int
	// RetryBackoff is the wait before the first retry, doubled for each further one, with
	// jitter (0: 250ms).
	RetryBackoff time.Duration
	// MaxRetryAfter is the longest Retry-After a read waits out before retrying (0: 10s). A
	// longer one, or one past the caller's deadline, is returned as a rate-limit error that
	// says when to try again.
	MaxRetryAfter time.Duration
	// BreakerThreshold is how many failures in a row (transport errors, timeouts, 5xx answers;
	// never auth or other 4xx refusals) make the adapter skip the vendor for BreakerCooldown;
	// afterwards one trial request decides whether it is back (0: 5; negative: never skip).
	BreakerThreshold int
	// BreakerCooldown is how long a failing vendor is skipped (0: 30s).
	BreakerCooldown time.Duration
	// Redactor removes secrets from the vendor's words (error bodies quote requests) before
	// they become an error. The adapter adds its own credentials to it. nil: a Redactor of the
	// adapter's own credentials.
	Redactor *redact.Redactor
}
