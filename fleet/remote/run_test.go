package remote

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gpu-mcp/gpu-mcp/providers/machinetest"
)

func TestRunExitCodeAndOutput(t *testing.T) {
	r := newRig(t, machinetest.Options{})
	res := r.run(t, `echo "$HOME"; echo warn >&2; exit 3`)
	if res.ExitCode != 3 || res.Stdout != r.m.Dir()+"\n" || res.Stderr != "warn\n" || res.TimedOut || res.Signal != "" {
		t.Fatalf("%+v", res)
	}
	if res := r.run(t, "true"); res.ExitCode != 0 || res.Stdout != "" {
		t.Fatalf("true: %+v", res)
	}
	if _, err := r.pool.Run(ctxT(t), r.tgt, "", RunOptions{}); err == nil {
		t.Fatal("an empty command ran")
	}
	if _, err := r.pool.Run(ctxT(t), r.tgt, "echo a\x00b", RunOptions{}); err == nil || !strings.Contains(err.Error(), "NUL") {
		t.Fatalf("a NUL in the command: %v", err)
	}
}

// The command reaches the machine's shell exactly as given: what it prints there is what
// the same command prints in a local sh (the test's oracle, not the package's).
func TestRunCommandGoesAsGiven(t *testing.T) {
	r := newRig(t, machinetest.Options{})
	cmds := []string{
		`printf '%s|' 'it'"'"'s' "a\"b" 'back\slash' "$HOME" '$HOME' "$(echo sub)" ; echo`,
		"printf '%s\\n' 'line one\nline two' && echo \"tab\there\"",
		`x='ünïcödé ✓ 漢字 🚀'; echo "$x" "${#x}"`,
		`set -- a 'b c' "d'e"; for a in "$@"; do echo "[$a]"; done`,
		"echo '" + strings.Repeat("'\\''", 20) + "'",
		`cat <<'EOF'
$NOT_EXPANDED ` + "`nor this`" + `
EOF`,
		`echo -- --; echo "*" '*'; echo ~ | grep -c /`,
	}
	for _, cmd := range cmds {
		local := exec.Command("/bin/sh", "-c", cmd)
		local.Dir = r.m.Dir()
		local.Env = []string{"HOME=" + r.m.Dir(), "PATH=" + os.Getenv("PATH"), "LANG=C.UTF-8"}
		want, err := local.Output()
		if err != nil {
			t.Fatalf("oracle %q: %v", cmd, err)
		}
		res := r.run(t, cmd)
		if res.Stdout != string(want) || res.ExitCode != 0 {
			t.Errorf("command %q\n got %q (exit %d, stderr %q)\nwant %q", cmd, res.Stdout, res.ExitCode, res.Stderr, want)
		}
	}
}

func TestRunOutputCapKeepsTheTail(t *testing.T) {
	r := newRig(t, machinetest.Options{})
	var all strings.Builder
	for i := 1; i <= 20000; i++ {
		fmt.Fprintf(&all, "%d\n", i)
	}
	res, err := r.pool.Run(ctxT(t), r.tgt, "seq 1 20000; seq 1 20000 >&2", RunOptions{MaxStdout: 1000, MaxStderr: 10})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Stdout) != 1000 || !strings.HasSuffix(all.String(), res.Stdout) || !strings.HasSuffix(res.Stdout, "19999\n20000\n") {
		t.Fatalf("stdout kept %d bytes, %q...", len(res.Stdout), res.Stdout[:min(40, len(res.Stdout))])
	}
	if res.StdoutTruncated != int64(all.Len()-1000) || res.StderrTruncated != int64(all.Len()-10) || res.Stderr != "999\n20000\n" {
		t.Fatalf("cut %d and %d, stderr %q; want %d and %d", res.StdoutTruncated, res.StderrTruncated, res.Stderr, all.Len()-1000, all.Len()-10)
	}
	// A rune cut in two at the head is dropped whole, and counted as cut.
	res, err = r.pool.Run(ctxT(t), r.tgt, `printf 'ééé'`, RunOptions{MaxStdout: 3})
	if err != nil || res.Stdout != "é" || res.StdoutTruncated != 4 {
		t.Fatalf("%+v %v", res, err)
	}
}

func TestRunOutputIsSanitized(t *testing.T) {
	r := newRig(t, machinetest.Options{})
	res := r.run(t, `printf '\033[31mred\033[0m \033]0;title\007ok\r\nbar\rbaz\001\tend \342\200\256evil \377\n'`)
	want := "red ok\nbar\nbaz\tend evil \uFFFD\n"
	if res.Stdout != want {
		t.Fatalf("got %q, want %q", res.Stdout, want)
	}
	if _, err := json.Marshal(res); err != nil {
		t.Fatal(err)
	}
}

// A command that outlives its timeout is killed on the machine, even by an sshd that ignores
// signal requests and leaves a closed session's processes running.
func TestRunTimeoutKillsOnTheMachine(t *testing.T) {
	for _, strict := range []bool{false, true} {
		t.Run(fmt.Sprintf("strict=%v", strict), func(t *testing.T) {
			r := newRig(t, machinetest.Options{IgnoreSignals: strict, LeaveOrphans: strict})
			cmd := `echo started; echo $$ > run.pid; sleep 300 & echo $! > child.pid; wait`
			res, err := r.pool.Run(ctxT(t), r.tgt, cmd, RunOptions{Timeout: 300 * time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			if !res.TimedOut || res.ExitCode != -1 || res.Stdout != "started\n" {
				t.Fatalf("%+v", res)
			}
			shell, child := readPID(t, filepath.Join(r.m.Dir(), "run.pid")), readPID(t, filepath.Join(r.m.Dir(), "child.pid"))
			eventually(t, "the timed-out command's processes are gone", func() bool { return !alive(shell) && !alive(child) })
			if res := r.run(t, "echo still usable"); res.Stdout != "still usable\n" {
				t.Fatalf("after the kill: %+v", res)
			}
		})
	}
}

func TestRunCancelKillsOnTheMachine(t *testing.T) {
	r := newRig(t, machinetest.Options{IgnoreSignals: true, LeaveOrphans: true})
	ctx, cancel := context.WithCancel(ctxT(t))
	go func() {
		readPID(t, filepath.Join(r.m.Dir(), "child.pid"))
		cancel()
	}()
	_, err := r.pool.Run(ctx, r.tgt, `sleep 300 & echo $! > child.pid; wait`, RunOptions{})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err %v, want context.Canceled", err)
	}
	child := readPID(t, filepath.Join(r.m.Dir(), "child.pid"))
	eventually(t, "the cancelled command's process is gone", func() bool { return !alive(child) })
}

func TestRunOnLine(t *testing.T) {
	r := newRig(t, machinetest.Options{})
	var mu sync.Mutex
	var got [][2]string
	o := RunOptions{LineInterval: 20 * time.Millisecond, OnLine: func(stream, line string) {
		mu.Lock()
		got = append(got, [2]string{stream, line})
		mu.Unlock()
	}}
	cmd := `echo first; sleep 0.2; echo "\033[1mbold\033[0m" >&2; sleep 0.2; seq 1 5000; printf 'x%.0s' $(seq 1 3000); echo; printf 'last without newline'`
	res, err := r.pool.Run(ctxT(t), r.tgt, cmd, o)
	if err != nil || res.ExitCode != 0 {
		t.Fatalf("%+v %v", res, err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) < 3 || got[0] != [2]string{"stdout", "first"} || got[1] != [2]string{"stderr", "bold"} {
		t.Fatalf("first lines %q", got[:min(3, len(got))])
	}
	if last := got[len(got)-1]; last != [2]string{"stdout", "last without newline"} {
		t.Fatalf("last line %q", last)
	}
	if len(got) > 100 {
		t.Fatalf("%d lines handed on for some 5000 printed in a burst: not rate-limited", len(got))
	}
	for _, l := range got {
		if len(l[1]) > MaxLineBytes+len("…") {
			t.Fatalf("a line of %d bytes handed on", len(l[1]))
		}
	}
}

func TestConnectionIsReused(t *testing.T) {
	r := newRig(t, machinetest.Options{})
	for i := range 20 {
		if res := r.run(t, fmt.Sprintf("echo %d", i)); res.Stdout != fmt.Sprintf("%d\n", i) {
			t.Fatalf("run %d: %+v", i, res)
		}
	}
	if st := r.m.Stats(); st.Authenticated != 1 || st.Commands != 20 {
		t.Fatalf("stats %+v: want 1 login for 20 commands", st)
	}
}

// Concurrent runs share one connection; a server that allows fewer sessions at once than
// the pool (here 3, against the pool's 8) makes them take turns, without failing.
func TestConcurrentRunsShareOneConnection(t *testing.T) {
	for _, max := range []int{0, 3} {
		t.Run(fmt.Sprintf("server-max-sessions=%d", max), func(t *testing.T) {
			r := newRig(t, machinetest.Options{MaxSessions: max})
			var wg sync.WaitGroup
			errs := make(chan error, 30)
			for i := range 30 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					res, err := r.pool.Run(ctxT(t), r.tgt, fmt.Sprintf("sleep 0.1; echo %d", i), RunOptions{})
					if err == nil && res.Stdout != fmt.Sprintf("%d\n", i) {
						err = fmt.Errorf("run %d: %+v", i, res)
					}
					errs <- err
				}()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				if err != nil {
					t.Fatal(err)
				}
			}
			if st := r.m.Stats(); st.Authenticated != 1 || st.Commands != 30 {
				t.Fatalf("stats %+v: want 1 login for 30 commands", st)
			}
		})
	}
}

func TestDeadConnectionIsRedialed(t *testing.T) {
	r := newRig(t, machinetest.Options{})
	r.run(t, "true")
	r.m.Halt()
	if res := r.run(t, "echo again"); res.Stdout != "again\n" {
		t.Fatalf("%+v", res)
	}
	if st := r.m.Stats(); st.Authenticated != 2 {
		t.Fatalf("stats %+v: want a second login after the first connection died", st)
	}
}

func TestIdleConnectionIsClosed(t *testing.T) {
	r := newRig(t, machinetest.Options{})
	r.pool = r.newPool(t, PoolOptions{KeepAlive: 10 * time.Millisecond, IdleTimeout: 30 * time.Millisecond})
	r.run(t, "true")
	eventually(t, "the idle connection is closed", func() bool {
		r.pool.mu.Lock()
		defer r.pool.mu.Unlock()
		return len(r.pool.conns) == 0
	})
	r.run(t, "true")
	if st := r.m.Stats(); st.Authenticated != 2 {
		t.Fatalf("stats %+v", st)
	}
}

func TestUnreachableMachine(t *testing.T) {
	r := newRig(t, machinetest.Options{})
	r.m.SetReady(false) // the instance is not running: connections close at once
	_, err := r.pool.Run(ctxT(t), r.tgt, "true", RunOptions{})
	if err == nil || !strings.Contains(err.Error(), "instance test:inst-1") {
		t.Fatalf("err %v", err)
	}
	_ = r.m.Close()
	_, err = r.pool.Run(ctxT(t), r.tgt, "true", RunOptions{})
	if err == nil || !strings.Contains(err.Error(), "cannot reach instance test:inst-1") {
		t.Fatalf("closed port: %v", err)
	}
	bad := r.tgt
	bad.Port = 0
	if _, err := r.pool.Run(ctxT(t), bad, "true", RunOptions{}); err == nil || !strings.Contains(err.Error(), "port") {
		t.Fatalf("no port: %v", err)
	}
	if err := r.pool.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := r.pool.Run(ctxT(t), r.tgt, "true", RunOptions{}); !errors.Is(err, ErrPoolClosed) {
		t.Fatalf("after Close: %v", err)
	}
}
