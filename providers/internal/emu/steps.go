package emu

import "time"

// Steps are the changes queued for one emulated instance's status, each due at its time: the
// vendors report a transitional status ("Stopping") for a while, then the final one. They
// take effect lazily, when the emulator next looks (Advance), so that a test's clock decides.
// The status itself stays in the vendor's record, in the vendor's type. The zero value has
// nothing queued.
type Steps[S comparable] struct{ q []step[S] }

type step[S comparable] struct {
	at   time.Time
	to   S
	gone bool
	then func(at time.Time)
}

// Walk sets *status to first at once, drops what was queued, and queues next, one d apart:
// Walk(&st, now, d, "Stopping", "Stopped").
func (s *Steps[S]) Walk(status *S, now time.Time, d time.Duration, first S, next ...S) {
	*status, s.q = first, nil
	for _, n := range next {
		s.Then(now, d, n, nil)
	}
}

// Then queues a change to status to, d after the last queued step or, when none is queued, d
// after from; then, when set, runs as it takes effect (for the record's other fields).
func (s *Steps[S]) Then(from time.Time, d time.Duration, to S, then func(at time.Time)) {
	s.q = append(s.q, step[S]{at: s.last(from).Add(d), to: to, then: then})
}

// ThenGone queues the instance's removal, as Then queues a change.
func (s *Steps[S]) ThenGone(from time.Time, d time.Duration) {
	s.q = append(s.q, step[S]{at: s.last(from).Add(d), gone: true})
}

func (s *Steps[S]) last(from time.Time) time.Time {
	if n := len(s.q); n > 0 {
		return s.q[n-1].at
	}
	return from
}

// Clear drops what was queued.
func (s *Steps[S]) Clear() { s.q = nil }

// Busy reports whether a change is queued.
func (s *Steps[S]) Busy() bool { return len(s.q) > 0 }

// Advance applies to *status the steps due at now, in order, and reports whether one of them
// removed the instance.
func (s *Steps[S]) Advance(now time.Time, status *S) (gone bool) {
	for len(s.q) > 0 && !now.Before(s.q[0].at) {
		st := s.q[0]
		s.q = s.q[1:]
		if st.gone {
			return true
		}
		*status = st.to
		if st.then != nil {
			st.then(st.at)
		}
	}
	return false
}

// At is the status at now, from status with the due steps applied, without applying them;
// false when the instance is gone by then. It suits an SSH endpoint's readiness, which must
// not remove anything.
func (s *Steps[S]) At(now time.Time, status S) (S, bool) {
	for _, st := range s.q {
		if now.Before(st.at) {
			break
		}
		if st.gone {
			return status, false
		}
		status = st.to
	}
	return status, true
}
