package main

import (
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

func header(w io.Writer, o options, servers []server) {
	defer fmt.Fprintf(w, "date: %s\n", time.Now().UTC().Format("2006-01-02 15:04 UTC"))
	if o.reps == 0 {
		fmt.Fprintf(w, "mcpbench: %s (%s --demo); %s\n", gpuName, o.bin, strings.Join(demoEnv, " "))
		return
	}
	fmt.Fprintf(w, "mcpbench: %s (%s --demo) | %s %s (%s, one echo tool)", gpuName, o.bin, bareName, mcpGoVersion(o.bare), o.bare)
	if o.ref != "" {
		fmt.Fprintf(w, " | %s @modelcontextprotocol/server-everything %s (node %s)", refName, referenceVersion(o.ref), nodeVersion(o.node))
	}
	fmt.Fprintf(w, "\nsettings: %d repetitions, each starting the %d servers in turn (never two at once), stdio then HTTP; per repetition: "+
		"over stdio %d tools/list and %d of each tools/call, each series after %d untimed calls; over HTTP %s of untimed load at %d clients, "+
		"then %s per level and tool; protocol %s; gpu-mcp: %s, HTTP with a bearer token\n",
		o.reps, len(servers), o.listCalls, o.calls, o.warm, o.httpWarmup, slices.Max(levels), o.duration, protocolVersion, strings.Join(demoEnv, " "))
}

// num formats v with prec decimals, thousands separated by commas.
func num(v float64, prec int) string {
	s := strconv.FormatFloat(v, 'f', prec, 64)
	intPart, frac, _ := strings.Cut(s, ".")
	neg := strings.HasPrefix(intPart, "-")
	intPart = strings.TrimPrefix(intPart, "-")
	var b strings.Builder
	for i, r := range intPart {
		if i > 0 && (len(intPart)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(r)
	}
	out := b.String()
	if neg {
		out = "-" + out
	}
	if frac != "" {
		out += "." + frac
	}
	return out
}

// cell is "min / median / max", or one value when they are equal.
func cell(s summary, prec int) string {
	if s.n == 0 {
		return "-"
	}
	if s.min == s.max {
		return num(s.median, prec)
	}
	return num(s.min, prec) + " / " + num(s.median, prec) + " / " + num(s.max, prec)
}

func ratioOf(a, b summary) (float64, bool) {
	if a.n == 0 || b.n == 0 || b.median == 0 {
		return 0, false
	}
	return a.median / b.median, true
}

func ratioCell(a, b summary) string {
	if r, ok := ratioOf(a, b); ok {
		return fmt.Sprintf("%.2fx", r)
	}
	return "-"
}

// row is one line of the comparison: a metric per server, compared with the bare server's
// metric bare.
type row struct {
	label string
	prec  int
	of    func(s server) (metric, bool) // the server's metric, false when it has none
	bare  metric
	// count says the figure is a count with nothing to compare (no ratio).
	count bool
}

func comparison(w io.Writer, servers []server, results map[string]samples) {
	byName := map[string]server{}
	for _, s := range servers {
		byName[s.name] = s
	}
	same := func(m metric) func(server) (metric, bool) { return func(server) (metric, bool) { return m, true } }
	callRow := func(kind metricKind, i, clients int, label string, prec int) row {
		return row{label: label, prec: prec, bare: metric{kind: kind, clients: clients},
			of: func(s server) (metric, bool) {
				return metric{kind: kind, call: i, clients: clients}, i < len(s.calls)
			}}
	}
	gpu := byName[gpuName]

	rows := []row{
		{label: "start->initialize answer, stdio (ms)", prec: 1, of: same(metric{kind: startStdio}), bare: metric{kind: startStdio}},
		{label: "start->initialize answer, HTTP (ms)", prec: 1, of: same(metric{kind: startHTTP}), bare: metric{kind: startHTTP}},
		{label: "tools/list, stdio (ms per call)", prec: 3, of: same(metric{kind: listTime}), bare: metric{kind: listTime}},
		{label: "tools/list answer (bytes)", prec: 0, of: same(metric{kind: listBytes}), bare: metric{kind: listBytes}},
		{label: "tools in it", prec: 0, of: same(metric{kind: listTools}), count: true},
	}
	for i, tc := range gpu.calls {
		rows = append(rows, callRow(callTime, i, 0, fmt.Sprintf("tools/call, stdio (ms per call): %s | echo", tc.label), 3))
	}
	for i, tc := range gpu.calls {
		for _, n := range levels {
			rows = append(rows, callRow(callsPerSec, i, n, fmt.Sprintf("HTTP calls/s, %s: %s | echo", clientsString(n), tc.label), 0))
		}
	}
	rows = append(rows,
		row{label: "peak RSS, stdio (MiB)", prec: 1, of: same(metric{kind: rssStdio}), bare: metric{kind: rssStdio}},
		row{label: fmt.Sprintf("peak RSS, HTTP after %d sessions (MiB)", levels[len(levels)-1]), prec: 1, of: same(metric{kind: rssHTTP}), bare: metric{kind: rssHTTP}},
	)

	fmt.Fprintln(w, "\nside by side: min / median / max over the repetitions; ratio = median / the bare server's median")
	fmt.Fprintln(w, "(times and RSS: below 1x is less; calls/s: above 1x is more. gpu-mcp's tool is named first, the others answer echo)")
	tw := tabwriter.NewWriter(w, 2, 0, 2, ' ', 0)
	fmt.Fprint(tw, "metric")
	for _, s := range servers {
		fmt.Fprintf(tw, "\t%s", s.name)
	}
	for _, s := range servers {
		if s.name != bareName {
			fmt.Fprintf(tw, "\t%s/bare", s.name)
		}
	}
	fmt.Fprintln(tw)
	bare := results[bareName]
	for _, r := range rows {
		fmt.Fprint(tw, r.label)
		for _, s := range servers {
			c := "-"
			if m, ok := r.of(s); ok {
				sm := results[s.name].summary(m)
				c = cell(sm, r.prec)
			}
			fmt.Fprintf(tw, "\t%s", c)
		}
		b := bare.summary(r.bare)
		for _, s := range servers {
			if s.name == bareName {
				continue
			}
			c := "-"
			if m, ok := r.of(s); ok && !r.count {
				sm := results[s.name].summary(m)
				c = ratioCell(sm, b)
			}
			fmt.Fprintf(tw, "\t%s", c)
		}
		fmt.Fprintln(tw)
	}
	tw.Flush()

	fmt.Fprintln(w, "\nduring the HTTP load (medians): the server's CPU time per call, whoever the client, with its ratio to the bare")
	fmt.Fprintln(w, "server's; and the harness's share of the CPU time harness and server used together")
	tw = tabwriter.NewWriter(w, 2, 0, 2, ' ', 0)
	fmt.Fprint(tw, "server\ttool")
	for _, n := range levels {
		fmt.Fprintf(tw, "\tserver CPU, %s", clientsString(n))
	}
	for _, n := range levels {
		fmt.Fprintf(tw, "\tharness share, %s", clientsString(n))
	}
	fmt.Fprintln(tw)
	for _, s := range servers {
		for i, tc := range s.calls {
			fmt.Fprintf(tw, "%s\t%s", s.name, tc.label)
			for _, n := range levels {
				sm := results[s.name].summary(metric{kind: serverCPU, call: i, clients: n})
				b := bare.summary(metric{kind: serverCPU, clients: n})
				c := num(sm.median, 0) + " µs"
				if s.name != bareName {
					c += " (" + ratioCell(sm, b) + ")"
				}
				fmt.Fprintf(tw, "\t%s", c)
			}
			for _, n := range levels {
				sm := results[s.name].summary(metric{kind: clientShare, call: i, clients: n})
				fmt.Fprintf(tw, "\t%.0f%%", 100*sm.median)
			}
			fmt.Fprintln(tw)
		}
	}
	tw.Flush()
}

func fanOutReport(w io.Writer, fr *fanOutResult) {
	fmt.Fprintf(w, "\ngpu-mcp's offer fan-out over stdio: list_gpu_offers with GPU_MCP_OFFER_CACHE_TTL=0 and GPU_MCP_DEMO_LATENCY=%s (median)\n", fanLatency)
	tw := tabwriter.NewWriter(w, 2, 0, 2, ' ', 0)
	var slowest, sum time.Duration
	for i, v := range vendorNames {
		fmt.Fprintf(tw, "provider=%s alone\t%.1f ms\n", v, ms(fr.alone[i]))
		slowest = max(slowest, fr.alone[i])
		sum += fr.alone[i]
	}
	fmt.Fprintf(tw, "all three\t%.1f ms\n", ms(fr.all))
	tw.Flush()
	fmt.Fprintf(w, "all three / slowest alone = %.2fx, all three / sum of the three alone = %.2fx (concurrent: near 1x and well below 1x)\n",
		float64(fr.all)/float64(slowest), float64(fr.all)/float64(sum))
}

func soakReport(w io.Writer, s server, r *soakResult) {
	fmt.Fprintf(w, "\nsoak: %s over HTTP, %d clients calling %s for %s, %s calls/s; RSS (MiB) each minute:\n  ",
		s.name, soakClients, s.calls[0].label, r.duration, num(r.load.perSecond(), 0))
	var marks []string
	next := time.Minute
	for _, sm := range r.samples {
		switch {
		case sm == r.end:
			marks = append(marks, fmt.Sprintf("end (%s) %.1f", sm.at.Round(time.Second), sm.rss))
		case sm.at >= next && r.end.at-sm.at >= r.every/2:
			marks = append(marks, fmt.Sprintf("%s %.1f", sm.at.Round(time.Second), sm.rss))
			for next <= sm.at {
				next += time.Minute
			}
		}
	}
	fmt.Fprintln(w, strings.Join(marks, ", "))
	lo, hi := r.samples[0].rss, r.samples[0].rss
	for _, sm := range r.samples {
		lo, hi = min(lo, sm.rss), max(hi, sm.rss)
	}
	fmt.Fprintf(w, "RSS after the first minute %.1f MiB, at the end %.1f MiB: %.3fx; samples every %s between %.1f and %.1f MiB; peak (VmHWM) %.1f MiB\n",
		r.atMinute.rss, r.end.rss, r.ratio(), r.every, lo, hi, r.hwm)
}

func passFail(ok bool) string {
	if ok {
		return "PASS"
	}
	return "FAIL"
}

// targets prints the goals set for gpu-mcp, each with what was measured now.
func targets(w io.Writer, results map[string]samples, sr *soakResult) {
	fmt.Fprintln(w, "\ntargets for gpu-mcp (medians; ratios to the bare mcp-go server)")
	tw := tabwriter.NewWriter(w, 2, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "target\tmeasured\tresult")
	gpu, bare := results[gpuName], results[bareName]
	if len(gpu) > 0 {
		bytes := gpu.summary(metric{kind: listBytes})
		fmt.Fprintf(tw, "tools/list answer under 20,000 bytes\t%s bytes\t%s\n", num(bytes.median, 0), passFail(bytes.median < 20000))
		ratioRow := func(label string, m metric, ok func(float64) bool) {
			r, measured := ratioOf(gpu.summary(m), bare.summary(metric{kind: m.kind, clients: m.clients}))
			if !measured {
				fmt.Fprintf(tw, "%s\t-\tnot measured\n", label)
				return
			}
			fmt.Fprintf(tw, "%s\t%.2fx\t%s\n", label, r, passFail(ok(r)))
		}
		under := func(limit float64) func(float64) bool { return func(r float64) bool { return r < limit } }
		atMost := func(limit float64) func(float64) bool { return func(r float64) bool { return r <= limit } }
		atLeast := func(limit float64) func(float64) bool { return func(r float64) bool { return r >= limit } }
		ratioRow("tools/list time under 3x the bare server's (stdio)", metric{kind: listTime}, under(3))
		for _, n := range levels[1:] {
			ratioRow(fmt.Sprintf("warm list_gpu_offers over HTTP at least 0.7x the bare echo's calls/s, %s", clientsString(n)),
				metric{kind: callsPerSec, clients: n}, atLeast(0.7))
		}
		ratioRow("start->initialize under 1.3x the bare server's (stdio)", metric{kind: startStdio}, under(1.3))
		ratioRow("start->initialize under 1.3x the bare server's (HTTP)", metric{kind: startHTTP}, under(1.3))
		ratioRow("peak RSS over stdio at most 1.3x the bare server's", metric{kind: rssStdio}, atMost(1.3))
	}
	if sr != nil {
		fmt.Fprintf(tw, "soak: RSS after %s at most %.0f%% above RSS after the first minute\t%.3fx\t%s\n",
			sr.duration, 100*(soakLimit-1), sr.ratio(), passFail(sr.pass()))
	} else {
		fmt.Fprintln(tw, "soak: RSS after 10m at most 10% above RSS after the first minute\t-\tnot run (make soak, or make bench SOAK=1)")
	}
	tw.Flush()
}
