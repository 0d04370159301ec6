package tools

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Confirmer issues and checks confirmation tokens: an HMAC over the tool, a hash of its
// canonical arguments, a digest of the plan shown, the expiry and a nonce. A token is good
// once, for those arguments and that plan, until it expires. Processes that share the key
// accept each other's tokens; single use is enforced per process.
type Confirmer struct {
	key []byte
	ttl time.Duration
	now func() time.Time

	mu        sync.Mutex
	used      map[string]time.Time // nonce -> expiry
	lastSweep time.Time
}

// DefaultConfirmTTL is how long a confirmation token stays good.
const DefaultConfirmTTL = 5 * time.Minute

const tokenPrefix = "gmc1"

// NewConfirmer returns a Confirmer keyed by secret; an empty secret gets a random key.
func NewConfirmer(secret string, ttl time.Duration) *Confirmer {
	key := []byte(secret)
	if secret == "" {
		key = make([]byte, 32)
		if _, err := rand.Read(key); err != nil {
			panic("no randomness for the confirmation key: " + err.Error())
		}
	}
	if ttl <= 0 {
		ttl = DefaultConfirmTTL
	}
	return &Confirmer{key: key, ttl: ttl, now: time.Now, used: map[string]time.Time{}}
}

// TokenError says why a token was refused.
type TokenError struct {
	Reason string
	// PlanChanged is set when the token was genuine but the situation changed since the plan:
	// the caller should present the new plan rather than a bare refusal.
	PlanChanged bool
}

func (e *TokenError) Error() string { return e.Reason }

// Issue returns a token for tool, args and plan, and its expiry.
func (c *Confirmer) Issue(tool string, args []byte, planDigest string) (string, time.Time) {
	nonce := make([]byte, 12)
	if _, err := rand.Read(nonce); err != nil {
		panic("no randomness for a confirmation token: " + err.Error())
	}
	exp := c.now().Add(c.ttl).Truncate(time.Second)
	payload := strings.Join([]string{tool, argsDigest(args), planDigest, strconv.FormatInt(exp.Unix(), 10),
		base64.RawURLEncoding.EncodeToString(nonce)}, "|")
	enc := base64.RawURLEncoding.EncodeToString([]byte(payload))
	return tokenPrefix + "." + enc + "." + c.mac(enc), exp
}

// Verify checks token against tool, args and the plan as it stands now, and spends it.
func (c *Confirmer) Verify(tool string, args []byte, planDigest, token string) error {
	parts := strings.Split(token, ".")
	if len(parts) != 3 || parts[0] != tokenPrefix {
		return &TokenError{Reason: "the confirmation token is malformed: it was not issued by this server"}
	}
	if !hmac.Equal([]byte(parts[2]), []byte(c.mac(parts[1]))) {
		return &TokenError{Reason: "the confirmation token is not valid: it was not issued by this server or has been tampered with"}
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return &TokenError{Reason: "the confirmation token is malformed"}
	}
	f := strings.Split(string(raw), "|")
	if len(f) != 5 {
		return &TokenError{Reason: "the confirmation token is malformed"}
	}
	expUnix, err := strconv.ParseInt(f[3], 10, 64)
	if err != nil {
		return &TokenError{Reason: "the confirmation token is malformed"}
	}
	exp := time.Unix(expUnix, 0)
	switch {
	case f[0] != tool:
		return &TokenError{Reason: fmt.Sprintf("the confirmation token was issued for %s, not %s", f[0], tool)}
	case f[1] != argsDigest(args):
		return &TokenError{Reason: "the arguments differ from the ones the confirmation token was issued for; nothing was done"}
	case !c.now().Before(exp):
		return &TokenError{Reason: fmt.Sprintf("the confirmation token expired at %s; nothing was done", exp.UTC().Format(time.RFC3339))}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	// Expired nonces are forgotten at most once a second: a spent token is refused until its
	// own expiry either way, and a sweep per call would cost O(spent tokens).
	if now.Sub(c.lastSweep) >= time.Second || now.Before(c.lastSweep) {
		for n, e := range c.used {
			if !now.Before(e) {
				delete(c.used, n)
			}
		}
		c.lastSweep = now
	}
	if _, spent := c.used[f[4]]; spent {
		return &TokenError{Reason: "the confirmation token has already been used; nothing was done"}
	}
	if f[2] != planDigest {
		// The token is genuine but the plan it approved no longer holds (price or state changed).
		// Spend it anyway: the approval was for a situation that is gone.
		c.used[f[4]] = exp
		return &TokenError{Reason: "the situation changed since the plan was shown (price, availability or instance state); nothing was done", PlanChanged: true}
	}
	c.used[f[4]] = exp
	return nil
}

func (c *Confirmer) mac(s string) string {
	m := hmac.New(sha256.New, c.key)
	m.Write([]byte(s))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// argsDigest fingerprints a tool's canonical arguments, for the tokens that approve them and
// the idempotency keys bound to them.
func argsDigest(args []byte) string {
	h := sha256.Sum256(args)
	return hex.EncodeToString(h[:16])
}

// isTokenError reports whether err is a token refusal.
func isTokenError(err error) (*TokenError, bool) {
	var te *TokenError
	ok := errors.As(err, &te)
	return te, ok
}
