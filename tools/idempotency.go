package tools

import "sync"

// launchLedger remembers launches by idempotency key, in this process only, so that an agent
// that repeats a launch (after a timeout, say) gets the first result instead of a second
// machine. A key is bound to the arguments it was first used with.
type launchLedger struct {
	mu      sync.Mutex
	entries map[string]*ledgerEntry
}

type ledgerEntry struct {
	args     string // argsDigest of the arguments the key was first used with
	inFlight bool
	result   *LaunchResult
	text     string
}

// lookup returns the entry for key, or nil.
func (l *launchLedger) lookup(key string) *ledgerEntry {
	l.mu.Lock()
	defer l.mu.Unlock()
	if e, ok := l.entries[key]; ok {
		c := *e
		return &c
	}
	return nil
}

// begin claims key for a launch with args; false when the key is taken.
func (l *launchLedger) begin(key, args string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.entries == nil {
		l.entries = map[string]*ledgerEntry{}
	}
	if _, taken := l.entries[key]; taken {
		return false
	}
	l.entries[key] = &ledgerEntry{args: args, inFlight: true}
	return true
}

// finish records the outcome of a claimed key; a failed launch releases the key, since
// nothing was bought (an unknown outcome keeps it, so that a retry cannot buy twice).
func (l *launchLedger) finish(key string, res *LaunchResult, text string, release bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if release {
		delete(l.entries, key)
		return
	}
	if e, ok := l.entries[key]; ok {
		e.inFlight, e.result, e.text = false, res, text
	}
}
