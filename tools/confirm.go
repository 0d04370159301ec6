package tools

import (
	"context"
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

	"github.com/gpu-mcp/gpu-mcp/state"
)

// Confirmer issues and checks confirmation tokens: an HMAC over the token's purpose, the tool,
// a hash of its canonical arguments, a digest of the plan shown, the expiry and a nonce. A
// token is good once, for its purpose, those arguments and that plan, until it expires.
// Single use is recorded in the state store (a unique insert of the nonce's digest), so it
// holds across restarts and across every process that shares the store and the key.
//
// There are two purposes. A confirm token (Issue, Verify) goes to the agent, which sends it
// back as confirm_token: it proves that a plan was shown. A request state (IssueState,
// VerifyState) goes with a question put to a person through the client (elicitation), which
// echoes it with the person's answer: neither is ever accepted for the other, so an agent
// cannot pass off its confirm token as the state of a question a person answered.
type Confirmer struct {
	key   []byte
	ttl   time.Duration
	now   func() time.Time
	store state.Store

	mu        sync.Mutex
	lastPrune time.Time
}

// DefaultConfirmTTL is how long a confirmation token stays good.
const DefaultConfirmTTL = 5 * time.Minute

// The purposes' prefixes, which the MAC covers.
const (
	tokenPrefix = "gmc1" // a confirm token
	statePrefix = "gme1" // the request state of a question to a person
)

// confirmSecretName is the store's secret that keys the tokens when no secret is configured.
const confirmSecretName = "confirm"

// pruneEvery is how often Verify lets the store forget the digests of expired tokens: an
// expired token is refused by its expiry anyway, so this only keeps the table small.
const pruneEvery = time.Minute

// NewConfirmer returns a Confirmer that records spent tokens in store, keyed by secret; with an
// empty secret the key is the store's "confirm" secret (32 random bytes made by the first
// process that asks), so that a plan made before a restart, or on another replica, can be
// confirmed after it.
func NewConfirmer(ctx context.Context, store state.Store, secret string, ttl time.Duration) (*Confirmer, error) {
	if store == nil {
		return nil, errors.New("confirmation tokens need a state store to record their use")
	}
	key := []byte(secret)
	if secret == "" {
		var err error
		key, err = store.Secret(ctx, confirmSecretName, func() ([]byte, error) {
			k := make([]byte, 32)
			_, err := rand.Read(k)
			return k, err
		})
		if err != nil {
			return nil, fmt.Errorf("the key of the confirmation tokens (set GPU_MCP_CONFIRM_SECRET to give one): %w", err)
		}
	}
	if ttl <= 0 {
		ttl = DefaultConfirmTTL
	}
	return &Confirmer{key: key, ttl: ttl, now: time.Now, store: store}, nil
}

// TokenError says why a token was refused.
type TokenError struct {
	Reason string
	// PlanChanged is set when the token was genuine but the situation changed since the plan:
	// the caller should present the new plan rather than a bare refusal.
	PlanChanged bool
}

func (e *TokenError) Error() string { return e.Reason }

// Issue returns a confirm token for tool, args and plan, and its expiry.
func (c *Confirmer) Issue(tool string, args []byte, planDigest string) (string, time.Time) {
	return c.issue(tokenPrefix, tool, args, planDigest)
}

// IssueState returns the request state of a question about tool, args and plan put to a
// person through the client, and its expiry.
func (c *Confirmer) IssueState(tool string, args []byte, planDigest string) (string, time.Time) {
	return c.issue(statePrefix, tool, args, planDigest)
}

func (c *Confirmer) issue(prefix, tool string, args []byte, planDigest string) (string, time.Time) {
	nonce := make([]byte, 12)
	if _, err := rand.Read(nonce); err != nil {
		panic("no randomness for a confirmation token: " + err.Error())
	}
	exp := c.now().Add(c.ttl).Truncate(time.Second)
	payload := strings.Join([]string{tool, argsDigest(args), planDigest, strconv.FormatInt(exp.Unix(), 10),
		base64.RawURLEncoding.EncodeToString(nonce)}, "|")
	enc := base64.RawURLEncoding.EncodeToString([]byte(payload))
	return prefix + "." + enc + "." + c.mac(prefix, enc), exp
}

// Verify checks a confirm token against tool, args and the plan as it stands now, and spends
// it. A refusal of the token is a *TokenError; when the store cannot record the spending, the
// error says so and the token must be treated as refused: nothing may run unrecorded.
func (c *Confirmer) Verify(ctx context.Context, tool string, args []byte, planDigest, token string) error {
	parts := strings.Split(token, ".")
	if len(parts) == 3 && parts[0] == statePrefix {
		return &TokenError{Reason: "the confirm_token is not valid: it is the state of a question gpu-mcp put to a person through the client, not a confirm_token"}
	}
	return c.verify(ctx, tokenPrefix, tool, args, planDigest, parts)
}

// VerifyState checks the request state sent with a person's answer, as Verify does a token.
func (c *Confirmer) VerifyState(ctx context.Context, tool string, args []byte, planDigest, state string) error {
	parts := strings.Split(state, ".")
	if len(parts) == 3 && parts[0] == tokenPrefix {
		return &TokenError{Reason: "the answer's request state is a confirmation token, which the agent holds, not the state gpu-mcp gave with its question: it cannot stand for a person's answer"}
	}
	if len(parts) != 3 || parts[0] != statePrefix {
		return &TokenError{Reason: "the answer's request state is not one gpu-mcp gave with a question; nothing was done"}
	}
	return c.verify(ctx, statePrefix, tool, args, planDigest, parts)
}

func (c *Confirmer) verify(ctx context.Context, prefix, tool string, args []byte, planDigest string, parts []string) error {
	if len(parts) != 3 || parts[0] != prefix {
		return &TokenError{Reason: "the confirm_token is malformed: it was not issued by this server"}
	}
	if !hmac.Equal([]byte(parts[2]), []byte(c.mac(prefix, parts[1]))) {
		return &TokenError{Reason: "the confirm_token is not valid: it was not issued by this server or has been tampered with"}
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return &TokenError{Reason: "the confirm_token is malformed"}
	}
	f := strings.Split(string(raw), "|")
	if len(f) != 5 {
		return &TokenError{Reason: "the confirm_token is malformed"}
	}
	expUnix, err := strconv.ParseInt(f[3], 10, 64)
	if err != nil {
		return &TokenError{Reason: "the confirm_token is malformed"}
	}
	exp := time.Unix(expUnix, 0)
	now := c.now()
	switch {
	case f[0] != tool:
		return &TokenError{Reason: fmt.Sprintf("the confirm_token was issued for %s, not %s", f[0], tool)}
	case f[1] != argsDigest(args):
		return &TokenError{Reason: "the arguments differ from the ones the confirm_token was issued for; nothing was done"}
	case !now.Before(exp):
		return &TokenError{Reason: fmt.Sprintf("the confirm_token expired at %s; nothing was done", exp.UTC().Format(time.RFC3339))}
	}
	c.prune(ctx, now)
	// One unique insert decides: of any number of calls with this token, on any replica,
	// exactly one finds it fresh.
	nonce := sha256.Sum256([]byte(f[4]))
	fresh, err := c.store.SpendToken(ctx, hex.EncodeToString(nonce[:]), exp)
	if err != nil {
		return fmt.Errorf("could not record the confirmation: %w; nothing was done", err)
	}
	if !fresh {
		return &TokenError{Reason: "the confirm_token has already been used; nothing was done"}
	}
	if f[2] != planDigest {
		// The token is genuine but the plan it approved no longer holds (price or state
		// changed). It is spent anyway: the approval was for a situation that is gone.
		return &TokenError{Reason: "the situation changed since the plan was shown (price, availability or instance state); nothing was done", PlanChanged: true}
	}
	return nil
}

// prune lets the store forget expired digests, at most once every pruneEvery. Its failure is
// ignored: correctness never depends on it, and a store that fails shows in the SpendToken
// that follows.
func (c *Confirmer) prune(ctx context.Context, now time.Time) {
	c.mu.Lock()
	due := now.Sub(c.lastPrune) >= pruneEvery || now.Before(c.lastPrune)
	if due {
		c.lastPrune = now
	}
	c.mu.Unlock()
	if due {
		_, _ = c.store.PruneTokens(ctx, now)
	}
}

func (c *Confirmer) mac(prefix, s string) string {
	m := hmac.New(sha256.New, c.key)
	m.Write([]byte(prefix + "." + s))
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
