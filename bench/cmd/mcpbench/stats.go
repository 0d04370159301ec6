package main

import (
	"slices"
	"time"
)

// summary is the spread of one figure over the repetitions.
type summary struct {
	min, median, max float64
	n                int
}

// summarize gives the min, median (the mean of the middle two for an even count) and max.
func summarize(xs []float64) summary {
	if len(xs) == 0 {
		return summary{}
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	mid := len(s) / 2
	median := s[mid]
	if len(s)%2 == 0 {
		median = (s[mid-1] + s[mid]) / 2
	}
	return summary{min: s[0], median: median, max: s[len(s)-1], n: len(s)}
}

// samples are the figures of one server, one value per repetition under each metric.
type samples map[metric][]float64

func (s samples) add(m metric, v float64) { s[m] = append(s[m], v) }

// summary is the spread of m; its n is 0 when m was not measured.
func (s samples) summary(m metric) summary { return summarize(s[m]) }

// metric names one figure. The tool-call metrics carry the index of the call in the server's
// list (0: the call compared across servers) and, over HTTP, the number of clients.
type metric struct {
	kind    metricKind
	call    int
	clients int
}

type metricKind int

const (
	startStdio  metricKind = iota // ms from process start to the initialize answer
	startHTTP                     // the same over HTTP, listening log line and dial included
	listTime                      // ms per tools/list over stdio
	listBytes                     // bytes of the tools/list answer
	listTools                     // tools in it
	callTime                      // ms per tools/call over stdio
	callsPerSec                   // tools/call per second over HTTP
	clientShare                   // the harness's share of the CPU used during a load run
	serverCPU                     // µs of the server's CPU time per call during a load run
	rssStdio                      // MiB, VmHWM after the stdio measurements
	rssHTTP                       // MiB, VmHWM after the HTTP load
)

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func mib(kib int64) float64 { return float64(kib) / 1024 }
