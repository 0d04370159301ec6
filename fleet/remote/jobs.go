package remote

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Job defaults and limits.
const (
	DefaultStopGrace   = 10 * time.Second
	DefaultLogMaxBytes = 64 << 10
	MaxLogMaxBytes     = 4 << 20
	// JobsDir is where on the machine, under the login directory, each job has its directory
	// <JobsDir>/<id>/ with cmd (the command), started ("<unix time> <boot id>"), pid (of the
	// job's session leader, which is also its process group), log (stdout and stderr),
	// exit ("<status> <unix time>", written when the command ends) and stopped (when
	// StopJob was called).
	JobsDir = ".gpu-mcp/jobs"
)

// JobSpec describes a job to start.
type JobSpec struct {
	ID      string // [A-Za-z0-9_.-], 1-64 characters, not starting with "."; empty: one is made up
	Command string // run as "$SHELL -c Command"
	Dir     string // working directory; empty: the login directory; relative: under it
}

// Job is a job started on the machine.
type Job struct {
	ID        string
	PID       int       // the job's session leader; its process group has the same id
	Dir       string    // the job's directory on the machine (absolute)
	Log       string    // its log file (absolute)
	StartedAt time.Time // by the machine's clock
}

// JobState is what a job is doing.
type JobState string

// Job states.
const (
	JobRunning JobState = "running"
	JobExited  JobState = "exited" // the command ended, and its exit status is known
	JobLost    JobState = "lost"   // no process and no exit status: killed from outside, or the machine restarted
)

// JobStatus is a job's state as the machine records it.
type JobStatus struct {
	ID        string
	State     JobState
	PID       int
	ExitCode  int  // when exited: the command's status, 128+N after signal N (143: TERM, 137: KILL)
	Stopped   bool // StopJob was called for it
	StartedAt time.Time
	EndedAt   time.Time     // zero unless exited
	Runtime   time.Duration // until now while running, until the end once exited; 0 when lost
	Dir       string
	Log       string
	LogBytes  int64
}

// JobLogOptions choose what JobLogs reads: the last Tail lines, or the bytes from Offset on
// (Tail 0), at most MaxBytes either way.
type JobLogOptions struct {
	Tail     int
	Offset   int64
	MaxBytes int64 // DefaultLogMaxBytes when 0, at most MaxLogMaxBytes
}

// JobLogs is a piece of a job's log. Lines are complete lines (ended by "\n", "\r\n" or a
// lone "\r", the way progress bars redraw), sanitized, without their ends; a line still
// being written is held back until it ends, unless it is all there is to read (then it is
// returned, and what follows it comes as another line). Read on from NextOffset to follow
// the log without reading anything twice.
type JobLogs struct {
	Lines      []string
	Offset     int64 // where in the log the first line starts
	NextOffset int64 // where the next read should start
	Size       int64 // the log's size when read
}

// ErrJobNotFound is wrapped by the error for a job id the machine has no record of.
var ErrJobNotFound = errors.New("no such job on the machine")

var jobIDPattern = regexp.MustCompile(`^[A-Za-z0-9_-][A-Za-z0-9_.-]{0,63}$`)

func checkJobID(id string) error {
	if !jobIDPattern.MatchString(id) {
		return fmt.Errorf("job id %q: want 1 to 64 of A-Z a-z 0-9 _ . -, not starting with a dot", sanitizeLine([]byte(id)))
	}
	return nil
}

// NewJobID makes up a job id: the time and a random suffix, so that ids sort by start.
func NewJobID() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return "job-" + time.Now().UTC().Format("20060102-150405") + "-" + hex.EncodeToString(b)
}

func jobDirExpr(id string) string { return `"$HOME"/` + JobsDir + "/" + quote(id) }

// StartJob starts spec.Command detached on the machine, with setsid and nohup, in a session
// of its own with stdin from /dev/null and stdout and stderr to its log, so that it survives
// the connection, gpu-mcp and its client going away. A wrapper records the pid and, when the
// command ends, its exit status in the job's directory (see JobsDir), so that JobStatus knows
// the outcome later. It returns once the job's pid is recorded. An id already used on the
// machine is refused.
func (p *Pool) StartJob(ctx context.Context, t Target, spec JobSpec) (Job, error) {
	if spec.ID == "" {
		spec.ID = NewJobID()
	}
	if err := checkJobID(spec.ID); err != nil {
		return Job{}, err
	}
	if err := checkArg("the job's command", spec.Command); err != nil {
		return Job{}, err
	}
	cd := `cd "$HOME"`
	if spec.Dir != "" {
		dir, err := remoteArg(spec.Dir)
		if err != nil {
			return Job{}, err
		}
		cd += ` && cd ` + quote(dir)
	}
	const wrapper = `d=$1; echo $$ >"$d/pid"; trap : TERM INT; "${SHELL:-/bin/sh}" -c "$(cat "$d/cmd")"; ` +
		`code=$?; printf '%s %s\n' "$code" "$(date +%s)" >"$d/exit.tmp" && mv -f "$d/exit.tmp" "$d/exit"`
	script := `command -v setsid >/dev/null 2>&1 || { echo 'setsid is not installed (it comes with util-linux)' >&2; exit 90; }; ` +
		`d=` + jobDirExpr(spec.ID) + `; mkdir -p "$HOME"/` + JobsDir + ` || exit 91; ` +
		`mkdir "$d" 2>/dev/null || { echo 'the job id is taken' >&2; exit 92; }; ` +
		cd + ` || { rm -rf "$d"; exit 93; }; ` +
		`printf '%s' ` + quote(spec.Command) + ` >"$d/cmd"; ` +
		`b=; read -r b 2>/dev/null </proc/sys/kernel/random/boot_id; now=$(date +%s); printf '%s %s\n' "$now" "$b" >"$d/started"; ` +
		`setsid nohup /bin/sh -c ` + quote(wrapper) + ` gpu-mcp-job "$d" </dev/null >>"$d/log" 2>&1 & ` +
		`i=0; while [ ! -s "$d/pid" ] && [ $i -lt 200 ]; do sleep 0.05 2>/dev/null || sleep 1; i=$((i+1)); done; ` +
		`[ -s "$d/pid" ] || { echo 'the job did not record its pid' >&2; exit 94; }; ` +
		`read -r p <"$d/pid"; printf '%s\n%s\n%s\n' "$p" "$d" "$now"`
	out, errOut, code, err := p.output(ctx, t, script, 64<<10)
	if err != nil {
		return Job{}, fmt.Errorf("cannot start job %s on %s: %w", spec.ID, t, err)
	}
	switch code {
	case 0:
	case 90:
		return Job{}, fmt.Errorf("cannot start job %s on instance %s: setsid is not installed there (it comes with util-linux)", spec.ID, t.InstanceID)
	case 92:
		return Job{}, fmt.Errorf("cannot start job %s on instance %s: a job with that id exists there; choose another id", spec.ID, t.InstanceID)
	case 93:
		return Job{}, fmt.Errorf("cannot start job %s on instance %s: cannot change to directory %s there: %s", spec.ID, t.InstanceID, spec.Dir, clip(errOut, 300))
	default:
		return Job{}, fmt.Errorf("cannot start job %s on instance %s (exit status %d): %s", spec.ID, t.InstanceID, code, clip(errOut, 300))
	}
	f := strings.Split(strings.TrimRight(string(out), "\n"), "\n")
	if len(f) != 3 {
		return Job{}, fmt.Errorf("job %s on instance %s: unexpected answer %q", spec.ID, t.InstanceID, clip(out, 200))
	}
	pid, err := strconv.Atoi(f[0])
	if err != nil {
		return Job{}, fmt.Errorf("job %s on instance %s: recorded pid %q is no number", spec.ID, t.InstanceID, clip([]byte(f[0]), 40))
	}
	dir := sanitizeLine([]byte(f[1]))
	return Job{ID: spec.ID, PID: pid, Dir: dir, Log: dir + "/log", StartedAt: unixTime(f[2])}, nil
}

// statusScript prints what the job's directory records, one "key value" line each, and
// "alive" while the job's wrapper runs.
func statusScript(id string) string {
	return aliveFunc + `d=` + jobDirExpr(id) + `; [ -d "$d" ] || { echo nojob; exit 0; }; ` +
		`echo "dir $d"; echo "now $(date +%s)"; b=; read -r b 2>/dev/null </proc/sys/kernel/random/boot_id; echo "boot $b"; ` +
		`for f in started pid exit stopped; do if [ -f "$d/$f" ]; then v=; read -r v <"$d/$f"; echo "$f $v"; fi; done; ` +
		`p=; [ -f "$d/pid" ] && read -r p <"$d/pid"; [ -n "$p" ] && alive "$p" && echo alive; ` +
		`echo "logsize $(wc -c <"$d/log" 2>/dev/null)"`
}

// JobStatus reads a job's state from the machine.
func (p *Pool) JobStatus(ctx context.Context, t Target, id string) (JobStatus, error) {
	if err := checkJobID(id); err != nil {
		return JobStatus{}, err
	}
	return p.jobStatus(ctx, t, id, statusScript(id))
}

func (p *Pool) jobStatus(ctx context.Context, t Target, id, script string) (JobStatus, error) {
	out, errOut, code, err := p.output(ctx, t, script, 64<<10)
	if err != nil {
		return JobStatus{}, fmt.Errorf("cannot read job %s on %s: %w", id, t, err)
	}
	if code != 0 {
		return JobStatus{}, fmt.Errorf("cannot read job %s on instance %s (exit status %d): %s", id, t.InstanceID, code, clip(errOut, 300))
	}
	return parseStatus(t, id, out)
}

func parseStatus(t Target, id string, out []byte) (JobStatus, error) {
	kv := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		k, v, _ := strings.Cut(sc.Text(), " ")
		kv[k] = strings.TrimSpace(v)
	}
	if _, ok := kv["nojob"]; ok {
		return JobStatus{}, fmt.Errorf("job %s on instance %s: %w", id, t.InstanceID, ErrJobNotFound)
	}
	dir := sanitizeLine([]byte(kv["dir"]))
	st := JobStatus{ID: id, Dir: dir, Log: dir + "/log", State: JobLost}
	st.PID, _ = strconv.Atoi(kv["pid"])
	st.LogBytes, _ = strconv.ParseInt(kv["logsize"], 10, 64)
	_, st.Stopped = kv["stopped"]
	started, bootAtStart, _ := strings.Cut(kv["started"], " ")
	st.StartedAt = unixTime(started)
	now := unixTime(kv["now"])
	_, alive := kv["alive"]
	sameBoot := bootAtStart == "" || bootAtStart == kv["boot"]
	switch {
	case kv["exit"] != "":
		codeStr, ended, _ := strings.Cut(kv["exit"], " ")
		st.State = JobExited
		st.ExitCode, _ = strconv.Atoi(codeStr)
		st.EndedAt = unixTime(ended)
		if !st.StartedAt.IsZero() && !st.EndedAt.IsZero() {
			st.Runtime = st.EndedAt.Sub(st.StartedAt)
		}
	case alive && sameBoot:
		st.State = JobRunning
		if !st.StartedAt.IsZero() && !now.IsZero() {
			st.Runtime = now.Sub(st.StartedAt)
		}
	}
	return st, nil
}

func unixTime(s string) time.Time {
	n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	if err != nil || n <= 0 {
		return time.Time{}
	}
	return time.Unix(n, 0)
}

// StopJob ends a running job: TERM to its process group, then, if any of it is left after
// grace (DefaultStopGrace when 0), KILL. The wrapper records the command's status (143 after
// TERM); after a KILL, 137 is recorded for it. The job's state afterwards is returned; a job
// that had already ended is left as it was.
func (p *Pool) StopJob(ctx context.Context, t Target, id string, grace time.Duration) (JobStatus, error) {
	if err := checkJobID(id); err != nil {
		return JobStatus{}, err
	}
	if grace <= 0 {
		grace = DefaultStopGrace
	}
	tries := strconv.Itoa(max(int(grace/(100*time.Millisecond)), 1))
	// The wrapper ends after the command, having recorded its status; KILL then sweeps what
	// is left of the group (and the wrapper, if the command ignored TERM).
	script := aliveFunc + `d=` + jobDirExpr(id) + `; ` +
		`if [ -d "$d" ] && [ ! -f "$d/exit" ] && [ -f "$d/pid" ]; then read -r p <"$d/pid"; ` +
		`if kill -0 -"$p" 2>/dev/null; then date +%s >"$d/stopped"; kill -TERM -"$p" 2>/dev/null; ` +
		`i=0; while [ $i -lt ` + tries + ` ] && alive "$p"; do sleep 0.1 2>/dev/null || sleep 1; i=$((i+1)); done; ` +
		`kill -KILL -"$p" 2>/dev/null; [ -f "$d/exit" ] || printf '137 %s\n' "$(date +%s)" >"$d/exit"; fi; fi; ` +
		statusScript(id)
	return p.jobStatus(ctx, t, id, script)
}

// JobLogs reads a piece of a job's log (see JobLogOptions and JobLogs).
func (p *Pool) JobLogs(ctx context.Context, t Target, id string, o JobLogOptions) (JobLogs, error) {
	if err := checkJobID(id); err != nil {
		return JobLogs{}, err
	}
	switch {
	case o.Tail < 0 || o.Offset < 0:
		return JobLogs{}, fmt.Errorf("job logs: tail %d, offset %d: want 0 or more", o.Tail, o.Offset)
	case o.Tail > 0 && o.Offset > 0:
		return JobLogs{}, errors.New("job logs: give tail (the last lines) or offset (read on from there), not both")
	case o.MaxBytes <= 0:
		o.MaxBytes = DefaultLogMaxBytes
	case o.MaxBytes > MaxLogMaxBytes:
		o.MaxBytes = MaxLogMaxBytes
	}
	m := strconv.FormatInt(o.MaxBytes, 10)
	// st..e is the piece to read; one byte before st comes along, to see whether st begins a line.
	var span string
	if o.Tail > 0 {
		span = `st=$((s > ` + m + ` ? s - ` + m + ` : 0)); e=$s; `
	} else {
		off := strconv.FormatInt(o.Offset, 10)
		span = `st=` + off + `; if [ $st -gt $s ]; then echo "beyond $s"; exit 0; fi; e=$((s - st > ` + m + ` ? st + ` + m + ` : s)); `
	}
	script := `d=` + jobDirExpr(id) + `; [ -d "$d" ] || { echo nojob; exit 0; }; f="$d/log"; ` +
		`if [ -f "$f" ]; then s=$(wc -c <"$f"); s=$((s)); else s=0; fi; ` + span +
		`c=$((st > 0 ? 1 : 0)); echo "ok $s $st $c"; [ $e -gt $st ] && tail -c +$((st - c + 1)) "$f" | head -c $((e - st + c)); exit 0`
	out, errOut, code, err := p.output(ctx, t, script, int(o.MaxBytes)+256)
	if err != nil {
		return JobLogs{}, fmt.Errorf("cannot read the log of job %s on %s: %w", id, t, err)
	}
	if code != 0 {
		return JobLogs{}, fmt.Errorf("cannot read the log of job %s on instance %s (exit status %d): %s", id, t.InstanceID, code, clip(errOut, 300))
	}
	head, data, _ := bytes.Cut(out, []byte("\n"))
	f := strings.Fields(string(head))
	switch {
	case len(f) == 1 && f[0] == "nojob":
		return JobLogs{}, fmt.Errorf("job %s on instance %s: %w", id, t.InstanceID, ErrJobNotFound)
	case len(f) == 2 && f[0] == "beyond":
		return JobLogs{}, fmt.Errorf("job logs: offset %d is past the end of the log of job %s (%s bytes); read from 0 or a smaller offset", o.Offset, id, f[1])
	case len(f) != 4 || f[0] != "ok":
		return JobLogs{}, fmt.Errorf("job %s on instance %s: unexpected answer %q", id, t.InstanceID, clip(head, 200))
	}
	size, _ := strconv.ParseInt(f[1], 10, 64)
	start, _ := strconv.ParseInt(f[2], 10, 64)
	prev := byte('\n')
	if f[3] == "1" && len(data) > 0 {
		prev, data = data[0], data[1:]
	}
	logs := splitLog(data, start, prev, o.Tail > 0)
	if o.Tail > 0 && len(logs.lines) > o.Tail {
		logs.lines, logs.starts = logs.lines[len(logs.lines)-o.Tail:], logs.starts[len(logs.starts)-o.Tail:]
	}
	r := JobLogs{Offset: logs.next, NextOffset: logs.next, Size: size}
	if len(logs.starts) > 0 {
		r.Offset = logs.starts[0]
	}
	for _, l := range logs.lines {
		r.Lines = append(r.Lines, sanitizeLine(l))
	}
	return r, nil
}

type logLines struct {
	lines  [][]byte
	starts []int64 // offset of each line in the log
	next   int64   // the offset after the last byte consumed
}

// splitLog splits data, which starts at offset start of the log and follows the byte prev,
// into complete lines (see JobLogs). midLine: when data may start inside a line (a tail),
// that first piece is dropped if other lines follow it.
func splitLog(data []byte, start int64, prev byte, midLine bool) logLines {
	var r logLines
	i := 0
	if prev == '\r' && len(data) > 0 && data[0] == '\n' {
		i = 1 // the rest of a "\r\n" that the last read ended in
	}
	lineStart := i
	for ; i < len(data); i++ {
		c := data[i]
		if c != '\n' && c != '\r' {
			continue
		}
		r.lines = append(r.lines, data[lineStart:i])
		r.starts = append(r.starts, start+int64(lineStart))
		if c == '\r' && i+1 < len(data) && data[i+1] == '\n' {
			i++
		}
		lineStart = i + 1
	}
	r.next = start + int64(lineStart)
	if lineStart < len(data) && len(r.lines) == 0 {
		// Only an unfinished line: hand it over rather than nothing, and read on after it.
		r.lines = append(r.lines, data[lineStart:])
		r.starts = append(r.starts, start+int64(lineStart))
		r.next = start + int64(len(data))
	}
	if midLine && prev != '\n' && prev != '\r' && len(r.lines) > 1 {
		r.lines, r.starts = r.lines[1:], r.starts[1:]
	}
	return r
}
