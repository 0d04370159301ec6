package state_test

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gpu-mcp/gpu-mcp/state"
	"github.com/gpu-mcp/gpu-mcp/state/statetest"
)

// The multi-process tests start this test binary again as child processes; TestMain runs
// the child's part instead of the tests when childRole is set.
const (
	childRole = "GPU_MCP_STATE_TEST_CHILD"
	childURL  = "GPU_MCP_STATE_TEST_URL"
	childName = "GPU_MCP_STATE_TEST_NAME"
	childOut  = "GPU_MCP_STATE_TEST_OUT"
	childPeer = "GPU_MCP_STATE_TEST_PEER"
)

// due is when the multi-process tests' leases are due, and the "now" their claims use.
var due = time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)

const claimFor = time.Hour

func TestMain(m *testing.M) {
	if role := os.Getenv(childRole); role != "" {
		if err := child(role); err != nil {
			fmt.Fprintln(os.Stderr, "child:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// childResult is what a writer child did.
type childResult struct {
	Fresh   []string // digests it spent first
	Created []string // launch keys it created
	Claimed []string // lease ids it claimed
}

const writes = 200

func child(role string) error {
	s, err := state.Open(ctx, os.Getenv(childURL), state.Options{})
	if err != nil {
		return err
	}
	defer s.Close()
	name := os.Getenv(childName)
	in := bufio.NewReader(os.Stdin)
	switch role {
	case "writer":
		// Both writers are started, then told to go at once, so that their writes overlap.
		fmt.Println("ready")
		if _, err := in.ReadString('\n'); err != nil {
			return err
		}
		var res childResult
		claim := func(n int) (int, error) {
			ls, err := s.ClaimDue(ctx, name, due, claimFor, n)
			for _, l := range ls {
				res.Claimed = append(res.Claimed, l.ID)
			}
			return len(ls), err
		}
		// A barrier in the store itself: each writer records that it started and waits for
		// the other's record, so both are writing by the time either goes on.
		if _, err := s.CreateLaunch(ctx, state.Launch{Key: "started-" + name, ArgsHash: "h", Provider: "chenyu"}); err != nil {
			return err
		}
		for {
			_, err := s.GetLaunch(ctx, "started-"+os.Getenv(childPeer))
			if err == nil {
				break
			}
			if !errors.Is(err, state.ErrNotFound) {
				return err
			}
			time.Sleep(time.Millisecond)
		}
		for n := range writes {
			// One writer goes up, the other down: they meet somewhere in the middle.
			i := n
			if name == "two" {
				i = writes - 1 - n
			}
			d := "digest-" + strconv.Itoa(i)
			fresh, err := s.SpendToken(ctx, d, due.Add(time.Hour))
			if err != nil {
				return err
			}
			if fresh {
				res.Fresh = append(res.Fresh, d)
			}
			key := "launch-" + strconv.Itoa(i)
			existing, err := s.CreateLaunch(ctx, state.Launch{Key: key, ArgsHash: "h", Provider: "chenyu", Owner: name})
			if err != nil {
				return err
			}
			if existing == nil {
				res.Created = append(res.Created, key)
			}
			if _, err := claim(1); err != nil {
				return err
			}
		}
		for {
			n, err := claim(5)
			if err != nil {
				return err
			}
			if n == 0 {
				break
			}
		}
		b, err := json.Marshal(res)
		if err != nil {
			return err
		}
		return os.WriteFile(os.Getenv(childOut), b, 0o600)
	case "holder":
		// Claims every due lease, then dies (SIGKILL from the test) inside a write transaction.
		if _, err := s.ClaimDue(ctx, name, due, claimFor, 100); err != nil {
			return err
		}
		_, err := s.UpdateLaunch(ctx, "held", func(l *state.Launch) error {
			l.Status = state.LaunchFailed
			fmt.Println("holding")
			select {}
		})
		return err
	}
	return fmt.Errorf("unknown role %q", role)
}

// proc is a running child.
type proc struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	out   *bufio.Reader
	file  string
}

func startChild(t *testing.T, role, url, name, peer string) *proc {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	file := filepath.Join(t.TempDir(), name+".json")
	cmd.Env = append(os.Environ(), childRole+"="+role, childURL+"="+url, childName+"="+name, childOut+"="+file, childPeer+"="+peer)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	return &proc{cmd: cmd, stdin: stdin, out: bufio.NewReader(stdout), file: file}
}

func (p *proc) expect(t *testing.T, line string) {
	t.Helper()
	got, err := p.out.ReadString('\n')
	if strings.TrimSpace(got) != line {
		t.Fatalf("child said %q (%v), want %q", got, err, line)
	}
}

func seedLeases(t *testing.T, s state.Store, n int) map[string]bool {
	t.Helper()
	ids := map[string]bool{}
	for i := range n {
		l, err := s.PutLease(ctx, state.Lease{InstanceID: "chenyu:" + strconv.Itoa(i), Provider: "chenyu", Kind: state.LeaseTime,
			Action: state.ActionStop, DueAt: due.Add(-time.Duration(i) * time.Second), Enforcer: state.EnforcerGPUMCP})
		if err != nil {
			t.Fatal(err)
		}
		ids[l.ID] = true
	}
	return ids
}

// TestTwoProcesses: two processes write to one store at once (and race its migrations on
// start): every digest is fresh for one of them only, every launch key created by one, every
// due lease claimed by one, and none is lost.
func TestTwoProcesses(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			url := b.fresh(t)
			kids := []*proc{startChild(t, "writer", url, "one", "two"), startChild(t, "writer", url, "two", "one")}
			for _, k := range kids {
				k.expect(t, "ready")
			}
			s := statetest.Open(t, url, state.Options{})
			leases := seedLeases(t, s, 60)
			for _, k := range kids {
				fmt.Fprintln(k.stdin, "go")
			}
			results := map[string]childResult{}
			for i, k := range kids {
				if err := k.cmd.Wait(); err != nil {
					t.Fatalf("child %d: %v", i, err)
				}
				b, err := os.ReadFile(k.file)
				if err != nil {
					t.Fatal(err)
				}
				var r childResult
				if err := json.Unmarshal(b, &r); err != nil {
					t.Fatal(err)
				}
				results[[]string{"one", "two"}[i]] = r
			}
			fresh, created, claimed := map[string]string{}, map[string]string{}, map[string]string{}
			record := func(seen map[string]string, what, item, who string) {
				if prev, dup := seen[item]; dup {
					t.Fatalf("%s %s went to both %s and %s", what, item, prev, who)
				}
				seen[item] = who
			}
			for who, r := range results {
				for _, d := range r.Fresh {
					record(fresh, "fresh digest", d, who)
				}
				for _, k := range r.Created {
					record(created, "created launch", k, who)
				}
				for _, id := range r.Claimed {
					record(claimed, "claimed lease", id, who)
				}
			}
			if len(fresh) != writes || len(created) != writes || len(claimed) != len(leases) {
				t.Fatalf("%d fresh digests, %d created launches, %d claimed leases; want %d, %d, %d",
					len(fresh), len(created), len(claimed), writes, writes, len(leases))
			}
			for key, who := range created {
				l, err := s.GetLaunch(ctx, key)
				if err != nil || l.Owner != who {
					t.Fatalf("launch %s: owner %q (%v), but %s created it", key, l.Owner, err, who)
				}
			}
			for id, who := range claimed {
				l, err := s.GetLease(ctx, id)
				if err != nil || l.ClaimOwner != who || !leases[id] {
					t.Fatalf("lease %s: claimed by %q (%v), but %s got it", id, l.ClaimOwner, err, who)
				}
			}
			t.Logf("one: %d fresh, %d created, %d claimed; two: %d, %d, %d", len(results["one"].Fresh), len(results["one"].Created),
				len(results["one"].Claimed), len(results["two"].Fresh), len(results["two"].Created), len(results["two"].Claimed))
		})
	}
}

// TestKilledProcess: a process killed (SIGKILL) inside a write transaction, holding claims,
// leaves nothing half-written, does not block other writers, and its claims pass to another
// owner once they expire, not before.
func TestKilledProcess(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			url := b.fresh(t)
			s := statetest.Open(t, url, state.Options{})
			if _, err := s.CreateLaunch(ctx, state.Launch{Key: "held", ArgsHash: "h", Provider: "chenyu"}); err != nil {
				t.Fatal(err)
			}
			leases := seedLeases(t, s, 3)
			k := startChild(t, "holder", url, "doomed", "")
			k.expect(t, "holding")
			for id := range leases {
				if l, err := s.GetLease(ctx, id); err != nil || l.ClaimOwner != "doomed" {
					t.Fatalf("lease %s before the kill: claim %q, %v", id, l.ClaimOwner, err)
				}
			}
			if err := k.cmd.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			if err := k.cmd.Wait(); err == nil {
				t.Fatal("the child exited cleanly")
			}
			if l, err := s.GetLaunch(ctx, "held"); err != nil || l.Status != state.LaunchIntent {
				t.Fatalf("after the kill: launch status %q (%v), want the committed intent", l.Status, err)
			}
			if _, err := s.UpdateLaunch(ctx, "held", func(l *state.Launch) error { l.Status = state.LaunchReady; return nil }); err != nil {
				t.Fatalf("writing after the holder died: %v", err)
			}
			if got, err := s.ClaimDue(ctx, "heir", due.Add(claimFor-time.Second), claimFor, 10); err != nil || len(got) != 0 {
				t.Fatalf("the dead owner's live claims were taken: %d, %v", len(got), err)
			}
			got, err := s.ClaimDue(ctx, "heir", due.Add(claimFor), claimFor, 10)
			if err != nil || len(got) != len(leases) {
				t.Fatalf("after the claims expired: %d claimed (%v), want %d", len(got), err, len(leases))
			}
		})
	}
}
