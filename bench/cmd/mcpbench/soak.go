package main

import (
	"errors"
	"fmt"
	"sync"
	"time"
)

// soakClients is how many HTTP clients the soak runs.
const soakClients = 64

// soakLimit is the soak's rule: RSS at the end at most this much above RSS after one minute.
const soakLimit = 1.10

// rssSample is the server's resident memory at a time since the load began.
type rssSample struct {
	at  time.Duration
	rss float64 // MiB
}

type soakResult struct {
	duration      time.Duration
	every         time.Duration
	samples       []rssSample
	atMinute, end rssSample
	hwm           float64 // MiB
	load          loadResult
}

func (r *soakResult) ratio() float64 { return r.end.rss / r.atMinute.rss }

func (r *soakResult) pass() bool { return r.ratio() <= soakLimit }

// soak runs soakClients clients calling s's first tool for o.soak, sampling the server's RSS
// every o.soakEvery, and compares the RSS at the end with the RSS after the first minute.
func soak(o options, s server) (*soakResult, error) {
	if o.soak <= time.Minute {
		return nil, fmt.Errorf("-soak %s: must be longer than a minute (the rule compares the end with the first minute)", o.soak)
	}
	p, clients, _, err := startHTTPServer(o, s, soakClients)
	if err != nil {
		return nil, err
	}
	defer p.stop(grace)
	defer closeAll(clients)
	fail := func(err error) (*soakResult, error) {
		return nil, fmt.Errorf("%s soak: %w%s", s.name, err, p.describe())
	}
	reqs, err := prepareCalls(clients, s.calls[0])
	if err != nil {
		return fail(err)
	}

	r := &soakResult{duration: o.soak, every: o.soakEvery}
	var (
		wg        sync.WaitGroup
		stop      = make(chan struct{})
		sampleErr error
	)
	t0 := time.Now()
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(o.soakEvery)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case now := <-tick.C:
				mem, err := p.memory()
				if err != nil {
					sampleErr = err
					return
				}
				r.samples = append(r.samples, rssSample{at: now.Sub(t0), rss: mib(mem.rss)})
			}
		}
	}()
	r.load, err = runLoad(p, clients, reqs, o.soak)
	close(stop)
	wg.Wait()
	if err != nil {
		return fail(err)
	}
	if sampleErr != nil {
		return fail(sampleErr)
	}
	mem, err := p.memory()
	if err != nil {
		return fail(err)
	}
	r.end = rssSample{at: time.Since(t0), rss: mib(mem.rss)}
	r.hwm = mib(mem.hwm)
	r.samples = append(r.samples, r.end)
	for _, sm := range r.samples {
		if sm.at >= time.Minute {
			r.atMinute = sm
			break
		}
	}
	if r.atMinute.rss == 0 {
		return fail(errors.New("no RSS sample after the first minute"))
	}
	return r, nil
}
