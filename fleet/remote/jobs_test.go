package remote

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gpu-mcp/gpu-mcp/providers/machinetest"
)

func (r *rig) status(t *testing.T, p *Pool, id string) JobStatus {
	t.Helper()
	st, err := p.JobStatus(ctxT(t), r.tgt, id)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// A job outlives the client: the pool that started it closes (gpu-mcp and its client went
// away), and a new pool finds it running, follows its log, and learns its exit status.
func TestJobSurvivesTheClientAndReportsItsExit(t *testing.T) {
	for _, strict := range []bool{false, true} {
		t.Run(fmt.Sprintf("strict=%v", strict), func(t *testing.T) {
			r := newRig(t, machinetest.Options{IgnoreSignals: strict, LeaveOrphans: strict})
			cmd := `i=0; while [ ! -f stop-now ]; do i=$((i+1)); echo "tick $i"; sleep 0.02; done; echo done >&2; exit 7`
			job, err := r.pool.StartJob(ctxT(t), r.tgt, JobSpec{ID: "train-1", Command: cmd})
			if err != nil {
				t.Fatal(err)
			}
			jobDir := filepath.Join(r.m.Dir(), ".gpu-mcp", "jobs", "train-1")
			if job.ID != "train-1" || job.PID <= 0 || job.Dir != jobDir || job.Log != jobDir+"/log" || job.StartedAt.IsZero() {
				t.Fatalf("%+v", job)
			}
			if b, _ := os.ReadFile(filepath.Join(jobDir, "cmd")); string(b) != cmd {
				t.Fatalf("recorded command %q", b)
			}
			if err := r.pool.Close(); err != nil {
				t.Fatal(err)
			}
			p2 := r.newPool(t, PoolOptions{})
			st := r.status(t, p2, "train-1")
			if st.State != JobRunning || st.PID != job.PID || !alive(job.PID) {
				t.Fatalf("after the client went away: %+v", st)
			}
			// Follow the log by offset: every tick once, in order, none twice.
			var lines []string
			var off int64
			eventually(t, "ticks in the log", func() bool {
				logs, err := p2.JobLogs(ctxT(t), r.tgt, "train-1", JobLogOptions{Offset: off})
				if err != nil {
					t.Fatal(err)
				}
				if logs.Offset != off && len(logs.Lines) > 0 {
					t.Fatalf("read from %d, lines start at %d", off, logs.Offset)
				}
				lines = append(lines, logs.Lines...)
				off = logs.NextOffset
				return len(lines) >= 5
			})
			for i, l := range lines {
				if l != fmt.Sprintf("tick %d", i+1) {
					t.Fatalf("line %d is %q: %q", i, l, lines)
				}
			}
			if err := os.WriteFile(filepath.Join(r.m.Dir(), "stop-now"), nil, 0o644); err != nil {
				t.Fatal(err)
			}
			eventually(t, "the job exits", func() bool { return r.status(t, p2, "train-1").State == JobExited })
			st = r.status(t, p2, "train-1")
			if st.ExitCode != 7 || st.Stopped || st.EndedAt.Before(st.StartedAt) || st.Runtime < 0 || st.LogBytes == 0 {
				t.Fatalf("exited: %+v", st)
			}
			tail, err := p2.JobLogs(ctxT(t), r.tgt, "train-1", JobLogOptions{Tail: 2})
			if err != nil {
				t.Fatal(err)
			}
			if len(tail.Lines) != 2 || !strings.HasPrefix(tail.Lines[0], "tick ") || tail.Lines[1] != "done" || tail.NextOffset != tail.Size || tail.Size != st.LogBytes {
				t.Fatalf("tail: %+v", tail)
			}
			rest, err := p2.JobLogs(ctxT(t), r.tgt, "train-1", JobLogOptions{Offset: off})
			if err != nil {
				t.Fatal(err)
			}
			if all := append(lines, rest.Lines...); all[len(all)-1] != "done" || rest.NextOffset != rest.Size {
				t.Fatalf("following to the end: %q, next %d of %d", rest.Lines, rest.NextOffset, rest.Size)
			}
		})
	}
}

func TestStopJob(t *testing.T) {
	r := newRig(t, machinetest.Options{})
	if _, err := r.pool.StartJob(ctxT(t), r.tgt, JobSpec{ID: "polite", Command: `sleep 300 & echo $! > polite.child; wait`}); err != nil {
		t.Fatal(err)
	}
	if _, err := r.pool.StartJob(ctxT(t), r.tgt, JobSpec{ID: "stubborn", Command: `trap '' TERM; sleep 300 & echo $! > stubborn.child; while :; do wait; done`}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		id   string
		code int
	}{{"polite", 143}, {"stubborn", 137}} {
		child := readPID(t, filepath.Join(r.m.Dir(), c.id+".child"))
		before := r.status(t, r.pool, c.id)
		st, err := r.pool.StopJob(ctxT(t), r.tgt, c.id, 300*time.Millisecond)
		if err != nil {
			t.Fatal(err)
		}
		if st.State != JobExited || st.ExitCode != c.code || !st.Stopped {
			t.Fatalf("%s: %+v, want exited %d and stopped", c.id, st, c.code)
		}
		eventually(t, c.id+": no process left after StopJob", func() bool { return !alive(before.PID) && !alive(child) })
		again, err := r.pool.StopJob(ctxT(t), r.tgt, c.id, 0)
		if err != nil || again.ExitCode != c.code {
			t.Fatalf("%s: stopping again: %+v %v", c.id, again, err)
		}
	}
}

func TestJobLostWhenKilledFromOutside(t *testing.T) {
	r := newRig(t, machinetest.Options{})
	job, err := r.pool.StartJob(ctxT(t), r.tgt, JobSpec{ID: "victim", Command: "sleep 300"})
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(-job.PID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the job is lost", func() bool { return r.status(t, r.pool, "victim").State == JobLost })
	if st := r.status(t, r.pool, "victim"); st.Runtime != 0 || st.ExitCode != 0 {
		t.Fatalf("%+v", st)
	}
}

func TestJobCommandAndDirectory(t *testing.T) {
	r := newRig(t, machinetest.Options{})
	if err := os.MkdirAll(filepath.Join(r.m.Dir(), "work"), 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := "pwd; printf '%s|' 'it'\"'\"'s' \"$HOME\" '$HOME' 'ünï ✓'; echo\necho 'second line'"
	local := exec.Command("/bin/sh", "-c", cmd)
	local.Dir = filepath.Join(r.m.Dir(), "work")
	local.Env = []string{"HOME=" + r.m.Dir(), "PATH=" + os.Getenv("PATH")}
	want, err := local.Output()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.pool.StartJob(ctxT(t), r.tgt, JobSpec{ID: "q", Command: cmd, Dir: "~/work"}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the job exits", func() bool { return r.status(t, r.pool, "q").State == JobExited })
	logs, err := r.pool.JobLogs(ctxT(t), r.tgt, "q", JobLogOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(logs.Lines, "\n") + "\n"; got != string(want) {
		t.Fatalf("log %q, want %q", got, want)
	}
	if id := NewJobID(); checkJobID(id) != nil {
		t.Fatalf("made-up id %q is invalid", id)
	}
	job, err := r.pool.StartJob(ctxT(t), r.tgt, JobSpec{Command: "true"})
	if err != nil || !strings.HasPrefix(job.ID, "job-") {
		t.Fatalf("a job without an id: %+v %v", job, err)
	}
}

func TestJobErrors(t *testing.T) {
	r := newRig(t, machinetest.Options{})
	ctx := ctxT(t)
	if _, err := r.pool.StartJob(ctx, r.tgt, JobSpec{ID: "dup", Command: "sleep 300"}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		err  func() error
		want string
	}{
		{"taken id", func() error {
			_, err := r.pool.StartJob(ctx, r.tgt, JobSpec{ID: "dup", Command: "true"})
			return err
		}, "a job with that id exists there"},
		{"bad id", func() error {
			_, err := r.pool.StartJob(ctx, r.tgt, JobSpec{ID: "../etc", Command: "true"})
			return err
		}, "want 1 to 64 of"},
		{"no command", func() error {
			_, err := r.pool.StartJob(ctx, r.tgt, JobSpec{ID: "x"})
			return err
		}, "the job's command is empty"},
		{"missing dir", func() error {
			_, err := r.pool.StartJob(ctx, r.tgt, JobSpec{ID: "nodir", Command: "true", Dir: "no/such"})
			return err
		}, "cannot change to directory no/such"},
		{"unknown job", func() error {
			_, err := r.pool.JobStatus(ctx, r.tgt, "ghost")
			if !errors.Is(err, ErrJobNotFound) {
				return fmt.Errorf("not ErrJobNotFound: %w", err)
			}
			_, err = r.pool.JobLogs(ctx, r.tgt, "ghost", JobLogOptions{})
			if !errors.Is(err, ErrJobNotFound) {
				return fmt.Errorf("logs: not ErrJobNotFound: %w", err)
			}
			_, err = r.pool.StopJob(ctx, r.tgt, "ghost", 0)
			return err
		}, "no such job on the machine"},
		{"offset past the end", func() error {
			_, err := r.pool.JobLogs(ctx, r.tgt, "dup", JobLogOptions{Offset: 1 << 40})
			return err
		}, "is past the end of the log"},
		{"tail and offset", func() error {
			_, err := r.pool.JobLogs(ctx, r.tgt, "dup", JobLogOptions{Tail: 1, Offset: 1})
			return err
		}, "not both"},
	} {
		if err := c.err(); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v\nwant it to say %q", c.name, err, c.want)
		}
	}
	if _, err := os.Stat(filepath.Join(r.m.Dir(), ".gpu-mcp", "jobs", "nodir")); !os.IsNotExist(err) {
		t.Fatalf("a job that could not start left its directory: %v", err)
	}
}

func TestSplitLog(t *testing.T) {
	for _, c := range []struct {
		name    string
		data    string
		start   int64
		prev    byte
		midLine bool
		lines   []string
		next    int64
	}{
		{"complete lines", "a\nb\n", 0, '\n', false, []string{"a", "b"}, 4},
		{"a line still being written is held back", "a\nb", 10, '\n', false, []string{"a"}, 12},
		{"unless it is all there is", "partial", 10, '\n', false, []string{"partial"}, 17},
		{"CR and CRLF end lines", "1%\r2%\r\nok\n", 0, '\n', false, []string{"1%", "2%", "ok"}, 10},
		{"the LF of a CRLF split over two reads", "\nnext\n", 5, '\r', false, []string{"next"}, 11},
		{"a tail starting inside a line drops that piece", "ece\nwhole\n", 100, 'x', true, []string{"whole"}, 110},
		{"unless nothing else is there", "ece\n", 100, 'x', true, []string{"ece"}, 104},
		{"nothing", "", 7, '\n', false, nil, 7},
	} {
		got := splitLog([]byte(c.data), c.start, c.prev, c.midLine)
		var lines []string
		for _, l := range got.lines {
			lines = append(lines, string(l))
		}
		if strings.Join(lines, "|") != strings.Join(c.lines, "|") || got.next != c.next {
			t.Errorf("%s: lines %q next %d, want %q next %d", c.name, lines, got.next, c.lines, c.next)
		}
	}
}
