package providers

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// ErrorKind classifies a failure so that tools can tell an agent what to do about it.
type ErrorKind string

const (
	KindAuth        ErrorKind = "auth"         // credentials missing, wrong or expired
	KindNotFound    ErrorKind = "not_found"    // no such instance, offer or image
	KindInvalid     ErrorKind = "invalid"      // bad argument
	KindConflict    ErrorKind = "conflict"     // not allowed in the current state
	KindUnsupported ErrorKind = "unsupported"  // the vendor's API cannot do it
	KindRateLimited ErrorKind = "rate_limited" // too many requests; see RetryAfter
	KindUnavailable ErrorKind = "unavailable"  // vendor down, timing out or answering garbage
	KindRejected    ErrorKind = "rejected"     // the vendor refused for a business reason (balance, sold out)
	KindUnknown     ErrorKind = "unknown_outcome"
)

// Error is the one error type adapters return, and the one every error an agent reads becomes.
type Error struct {
	Kind       ErrorKind
	Provider   string
	Op         string        // what was being done, e.g. "stop gpu-105b"
	Message    string        // what went wrong, in the vendor's words where it gave any
	Remedy     string        // what the user or agent can do
	RetryAfter time.Duration // for KindRateLimited, when the vendor said
	Status     int           // HTTP status, when there was one
	Err        error         // underlying cause
	// Field, Value and Accepted describe a bad argument: its name, the value given (nil when
	// it is not worth repeating, e.g. a token) and what it accepts.
	Field    string
	Value    any
	Accepted string
}

// Own is the Provider of the errors gpu-mcp itself finds (bad input, limits, its guard).
const Own = "gpu-mcp"

// Error is the error on one line: what went wrong, and what to do when its maker said.
func (e *Error) Error() string {
	if e.Remedy != "" {
		return e.Headline() + ". " + e.Remedy
	}
	return e.Headline()
}

// Headline says what went wrong, with one prefix at most: the vendor and the operation for a
// vendor's error, the operation alone for gpu-mcp's own.
func (e *Error) Headline() string {
	var s string
	switch {
	case e.Provider != "" && e.Provider != Own && e.Op != "":
		s = e.Provider + ": " + e.Op + ": "
	case e.Provider != "" && e.Provider != Own:
		s = e.Provider + ": "
	case e.Op != "":
		s = e.Op + ": "
	}
	s += strings.TrimRight(e.Message, ". ")
	if e.Kind == KindRateLimited && e.RetryAfter > 0 {
		s += fmt.Sprintf(" (retry after %s)", e.RetryAfter.Round(time.Second))
	}
	return s
}

// RemedyText is what to do: the remedy given, else the usual one for the kind of error.
func (e *Error) RemedyText() string {
	if e.Remedy != "" {
		return e.Remedy
	}
	return defaultRemedy[e.Kind]
}

// defaultRemedy is what to do about an error whose maker named no remedy.
var defaultRemedy = map[ErrorKind]string{
	KindAuth:        "check the provider's credentials in the server's environment",
	KindNotFound:    "check the id with list_instances, list_gpu_offers or list_images",
	KindInvalid:     "correct the arguments; the tool's input schema says what each one accepts",
	KindConflict:    "check the instance with get_instance and try again once its state allows it",
	KindUnsupported: "use the vendor's console for this, or choose another provider",
	KindRateLimited: "wait a few seconds, then try again",
	KindUnavailable: "try again later",
	KindRejected:    "change what the message names, then try again",
	KindUnknown:     "check with list_instances whether it happened before trying again",
}

// Retryable reports whether the same call, unchanged, may succeed later: a rate limit or an
// unavailable vendor. An unknown outcome is not: it must be checked before anything is retried.
func (e *Error) Retryable() bool { return e.Kind == KindRateLimited || e.Kind == KindUnavailable }

func (e *Error) Unwrap() error { return e.Err }

// Errorf builds an *Error of the given kind.
func Errorf(kind ErrorKind, provider, op, remedy, format string, args ...any) *Error {
	return &Error{Kind: kind, Provider: provider, Op: op, Remedy: remedy, Message: fmt.Sprintf(format, args...)}
}

// KindOf returns the kind of err, or "" when err is not an *Error.
func KindOf(err error) ErrorKind {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return ""
}

// Unsupported is the error for an action a vendor's API lacks.
func Unsupported(provider string, a Action, why string) *Error {
	return &Error{Kind: KindUnsupported, Provider: provider,
		Message: fmt.Sprintf("%s is unsupported: %s", a, why),
		Remedy:  "use the vendor's console for this, or choose another provider"}
}

// Incomplete is returned together with the items a list did read, when the vendor's list was
// cut short: the items are good, and more exist than were read. A caller that can show part of
// a list shows them and says so (the error's text); any other caller treats it as the error
// it is.
type Incomplete struct {
	Provider string
	Op       string // the listing, e.g. "list GPU models"
	Listed   int    // items read
	Total    int    // items the vendor reported; 0 when it did not say
	Reason   string // why the rest was not read
}

func (e *Incomplete) Error() string {
	of := ""
	if e.Total > e.Listed {
		of = fmt.Sprintf(" of %d", e.Total)
	}
	return fmt.Sprintf("%s: %s: only %d%s read (%s); the rest are missing", e.Provider, e.Op, e.Listed, of, e.Reason)
}

// AsIncomplete returns err as an *Incomplete, or nil when it is none.
func AsIncomplete(err error) *Incomplete {
	var e *Incomplete
	if errors.As(err, &e) {
		return e
	}
	return nil
}
