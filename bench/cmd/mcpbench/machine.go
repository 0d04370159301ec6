package main

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"sync"
	"time"
)

// loadSampler samples the machine's 1-minute load average while the harness runs: on a shared
// machine it says how far the figures can be trusted.
type loadSampler struct {
	mu      sync.Mutex
	samples []float64
	stop    chan struct{}
	done    chan struct{}
}

func sampleLoad(every time.Duration) *loadSampler {
	l := &loadSampler{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(l.done)
		tick := time.NewTicker(every)
		defer tick.Stop()
		for {
			l.sample()
			select {
			case <-l.stop:
				return
			case <-tick.C:
			}
		}
	}()
	return l
}

func (l *loadSampler) sample() {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return
	}
	if v, err := parseLoadavg(b); err == nil {
		l.mu.Lock()
		l.samples = append(l.samples, v)
		l.mu.Unlock()
	}
}

// finish stops the sampling and summarizes it.
func (l *loadSampler) finish() summary {
	close(l.stop)
	<-l.done
	l.sample()
	l.mu.Lock()
	defer l.mu.Unlock()
	return summarize(l.samples)
}

// parseLoadavg reads the 1-minute load average, the first field of /proc/loadavg.
func parseLoadavg(b []byte) (float64, error) {
	f := bytes.Fields(b)
	if len(f) == 0 {
		return 0, fmt.Errorf("/proc/loadavg is empty")
	}
	v, err := strconv.ParseFloat(string(f[0]), 64)
	if err != nil {
		return 0, fmt.Errorf("/proc/loadavg %q: %w", clip(b), err)
	}
	return v, nil
}
