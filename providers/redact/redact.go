// Package redact removes secrets from text before it leaves gpu-mcp. Vendors, proxies and
// firewalls quote the request in their error bodies ("invalid token: Bearer ..."); what they
// quote must reach neither the agent nor a log.
//
// A Redactor removes two things: the secrets it was given (configured credentials, and more
// added while the program runs), in the forms they travel in (as they are, URL-encoded,
// JSON-escaped); and anything shaped like a credential, known or not: the value of an
// Authorization header, a bearer token, Basic credentials, and the value of a token, secret,
// password or api_key field in a query string, a JSON object, a header echo or a Go map dump.
// Each is replaced by Mask.
package redact

import (
	"encoding/base64"
	"encoding/json"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
)

// Mask replaces what is removed.
const Mask = "[redacted]"

// minSecret is the shortest secret removed as it is: shorter values are more often ordinary
// words and numbers than credentials ("short" is refused as a bearer token, and the refusal
// must still say "too short"). Shapes of credentials are removed whatever their length.
const minSecret = 8

// Redactor removes secrets from text. It is safe for concurrent use; the nil *Redactor knows
// no secrets but still removes anything shaped like a credential.
type Redactor struct {
	mu       sync.RWMutex
	secrets  map[string]bool
	replacer *strings.Replacer // nil until a secret is added
}

// New returns a Redactor that knows secrets; empty ones are ignored.
func New(secrets ...string) *Redactor {
	r := &Redactor{secrets: map[string]bool{}}
	r.Add(secrets...)
	return r
}

// Add makes r remove secrets from now on (an SSH password learnt at launch, say). Ones
// shorter than 8 characters are ignored.
func (r *Redactor) Add(secrets ...string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	changed := false
	for _, s := range secrets {
		for _, v := range forms(strings.TrimSpace(s)) {
			if len(v) >= minSecret && !r.secrets[v] {
				r.secrets[v] = true
				changed = true
			}
		}
	}
	if !changed {
		return
	}
	all := make([]string, 0, len(r.secrets))
	for s := range r.secrets {
		all = append(all, s)
	}
	// strings.Replacer tries its old strings in argument order at each position: the longest
	// first, so that a secret containing another is removed whole.
	slices.SortFunc(all, func(a, b string) int { return len(b) - len(a) })
	pairs := make([]string, 0, 2*len(all))
	for _, s := range all {
		pairs = append(pairs, s, Mask)
	}
	r.replacer = strings.NewReplacer(pairs...)
}

// forms are the ways s appears in text that quotes a request: as it is, URL-encoded (a query
// string) and JSON-escaped (a body).
func forms(s string) []string {
	if s == "" {
		return nil
	}
	out := []string{s, url.QueryEscape(s), url.PathEscape(s)}
	if b, err := json.Marshal(s); err == nil {
		out = append(out, string(b[1:len(b)-1]))
	}
	return out
}

// String returns s without the known secrets and without anything shaped like a credential.
func (r *Redactor) String(s string) string {
	if r != nil {
		r.mu.RLock()
		rep := r.replacer
		r.mu.RUnlock()
		if rep != nil {
			s = rep.Replace(s)
		}
	}
	// Go's regexp costs about a microsecond per byte here: most text names no credential, and
	// a cheap look for the words the patterns start with spares it.
	lower := strings.ToLower(s)
	if containsAny(lower, keyedWords) {
		s = keyed.ReplaceAllString(s, "${1}${2}${3}"+Mask)
	}
	if !containsAny(lower, schemeWords) {
		return s
	}
	return scheme.ReplaceAllStringFunc(s, func(m string) string {
		sub := scheme.FindStringSubmatch(m)
		if strings.EqualFold(sub[1], "basic") && !isBasicCredential(sub[2]) {
			return m // the word "basic" in a sentence
		}
		return sub[1] + " " + Mask
	})
}

var (
	// keyed is a credential-named field and its value: "Authorization: Bearer x",
	// "?api_key=x&", `"token": "x"`, `\"password\":\"x\"`, "map[Authorization:[x]]". The name,
	// the separator and an auth scheme are kept, so that the message still says what was there.
	// A name only has to end in the keyword (access_token, ssh_password).
	keyed = regexp.MustCompile(`(?i)(authorization|x-api-key|token|secret|passw(?:or)?d|api[_-]?key|apikey|access[_-]?key|private[_-]?key|signature)` +
		`(\\?["']?\s*[:=]\s*\[?\\?["']?)((?:bearer|basic|digest|token)\s+)?[^\s"'\\&,;\[\]{}()<>]+`)
	// scheme is a bearer token or Basic credentials outside a named field ("invalid: Bearer x").
	scheme = regexp.MustCompile(`(?i)\b(bearer|basic)\s+([A-Za-z0-9._~+/-]{8,}=*)`)
)

// keyedWords and schemeWords are what a match of keyed or scheme contains, in lower case.
var (
	keyedWords  = []string{"authorization", "x-api-key", "token", "secret", "passw", "api_key", "api-key", "apikey", "access_key", "access-key", "private_key", "private-key", "signature"}
	schemeWords = []string{"bearer", "basic"}
)

func containsAny(s string, words []string) bool {
	for _, w := range words {
		if strings.Contains(s, w) {
			return true
		}
	}
	return false
}

// isBasicCredential reports whether s is the base64 of "user:password".
func isBasicCredential(s string) bool {
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		b, err = base64.RawStdEncoding.DecodeString(strings.TrimRight(s, "="))
	}
	return err == nil && strings.Contains(string(b), ":")
}
