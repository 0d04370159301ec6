package main

import (
	"container/list"
	"context"
	"crypto/rand"
	"errors"
	"sync"
	"time"
)

// sessionTable holds the live MCP sessions of a network transport, GPU_MCP_MAX_SESSIONS of
// them at most, so that a client with a valid token cannot make the server hold as many as it
// likes: opening one more ends the least recently used. On streamable HTTP, where a session
// outlives its requests, a session unused for GPU_MCP_SESSION_IDLE expires, unless a stream
// of it is open (the open connection says the client is there). A session is known here from
// its start (initialize, or a stream) until it ends, expires or is evicted; an id the table
// does not know is refused. It is the SessionIdManager of mcp-go's streamable HTTP server.
type sessionTable struct {
	max  int
	idle time.Duration // 0: sessions do not expire
	now  func() time.Time
	// end releases the transport's state of a session the table dropped (evicted or
	// expired); nil when ending its stream is enough.
	end func(id string)

	mu    sync.Mutex
	order list.List // of *liveSession, most recently used first
	byID  map[string]*list.Element
}

// liveSession is one entry of the table.
type liveSession struct {
	id   string
	used time.Time
	// stream ends the session's open stream (nil: none); streamNo tells a stream from the one
	// that replaced it.
	stream   context.CancelFunc
	streamNo uint64
}

var errUnknownSession = errors.New("no such session: it ended, expired or was evicted to stay within GPU_MCP_MAX_SESSIONS; initialize a new one")

func newSessionTable(max int, idle time.Duration, end func(id string)) *sessionTable {
	return &sessionTable{max: max, idle: idle, now: time.Now, end: end, byID: map[string]*list.Element{}}
}

// newSessionID returns an unguessable id (130 random bits); the prefix is mcp-go's.
func newSessionID() string { return "mcp-session-" + rand.Text() }

// Generate starts a session (mcp-go calls it on initialize).
func (t *sessionTable) Generate() string {
	id := newSessionID()
	t.mu.Lock()
	dropped := t.add(id, nil)
	t.mu.Unlock()
	t.release(dropped)
	return id
}

// Validate accepts the id of a live session, which counts as a use of it.
func (t *sessionTable) Validate(id string) (isTerminated bool, err error) {
	t.mu.Lock()
	dropped := t.expire()
	e, ok := t.byID[id]
	if ok {
		t.use(e)
	}
	t.mu.Unlock()
	t.release(dropped)
	if !ok {
		return false, errUnknownSession
	}
	return false, nil
}

// Terminate ends a session its client closed (DELETE) or the server is closing; the
// transport releases its own state.
func (t *sessionTable) Terminate(id string) (isNotAllowed bool, err error) {
	t.mu.Lock()
	var stream context.CancelFunc
	if e, ok := t.byID[id]; ok {
		stream = t.remove(e).stream
	}
	t.mu.Unlock()
	if stream != nil {
		stream()
	}
	return false, nil
}

// touch counts as a use of session id, if it is live.
func (t *sessionTable) touch(id string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if e, ok := t.byID[id]; ok {
		t.use(e)
	}
}

// known reports whether session id is live.
func (t *sessionTable) known(id string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	_, ok := t.byID[id]
	return ok
}

// len is how many sessions are live.
func (t *sessionTable) len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.byID)
}

// attach records the open stream of live session id, which cancel ends; a stream the session
// had already is ended (one stream per session). detach, called when the stream is over,
// keeps the session. ok is false when id is not live.
func (t *sessionTable) attach(id string, cancel context.CancelFunc) (detach func(), ok bool) {
	t.mu.Lock()
	dropped := t.expire()
	e, ok := t.byID[id]
	var replaced context.CancelFunc
	var no uint64
	if ok {
		s := e.Value.(*liveSession)
		replaced = s.stream
		s.stream = cancel
		s.streamNo++
		no = s.streamNo
		t.use(e)
	}
	t.mu.Unlock()
	t.release(dropped)
	if replaced != nil {
		replaced()
	}
	if !ok {
		return nil, false
	}
	return func() {
		t.mu.Lock()
		defer t.mu.Unlock()
		if e, ok := t.byID[id]; ok && e.Value.(*liveSession).streamNo == no {
			e.Value.(*liveSession).stream = nil
			t.use(e)
		}
	}, true
}

// openStream starts a session that lives as long as its stream, which cancel ends (an SSE
// stream, or a streamable HTTP GET without a session). detach, called when the stream is
// over, ends the session.
func (t *sessionTable) openStream(cancel context.CancelFunc) (id string, detach func()) {
	id = newSessionID()
	t.mu.Lock()
	dropped := t.add(id, cancel)
	t.mu.Unlock()
	t.release(dropped)
	return id, func() {
		t.mu.Lock()
		defer t.mu.Unlock()
		if e, ok := t.byID[id]; ok {
			t.remove(e)
		}
	}
}

// add puts a new session first and returns the sessions that no longer fit; t.mu is held.
func (t *sessionTable) add(id string, stream context.CancelFunc) []*liveSession {
	dropped := t.expire()
	t.byID[id] = t.order.PushFront(&liveSession{id: id, used: t.now(), stream: stream})
	for len(t.byID) > t.max {
		dropped = append(dropped, t.remove(t.order.Back()))
	}
	return dropped
}

// expire removes the sessions unused for t.idle, which sit at the back; a session with an
// open stream counts as used now. t.mu is held.
func (t *sessionTable) expire() []*liveSession {
	if t.idle <= 0 {
		return nil
	}
	var dropped []*liveSession
	now := t.now()
	for e := t.order.Back(); e != nil; e = t.order.Back() {
		s := e.Value.(*liveSession)
		if now.Sub(s.used) < t.idle {
			break
		}
		if s.stream != nil {
			s.used = now
			t.order.MoveToFront(e)
			continue
		}
		dropped = append(dropped, t.remove(e))
	}
	return dropped
}

func (t *sessionTable) use(e *list.Element) {
	e.Value.(*liveSession).used = t.now()
	t.order.MoveToFront(e)
}

func (t *sessionTable) remove(e *list.Element) *liveSession {
	s := t.order.Remove(e).(*liveSession)
	delete(t.byID, s.id)
	return s
}

// release ends the streams and the transport state of dropped sessions; t.mu is not held,
// since ending a session calls into the transport.
func (t *sessionTable) release(dropped []*liveSession) {
	for _, s := range dropped {
		if s.stream != nil {
			s.stream()
		}
		if t.end != nil {
			t.end(s.id)
		}
	}
}
