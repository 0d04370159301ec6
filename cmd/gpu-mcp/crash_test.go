package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"

	"github.com/gpu-mcp/gpu-mcp/providers"
	"github.com/gpu-mcp/gpu-mcp/state"
	"github.com/gpu-mcp/gpu-mcp/state/statetest"
	"github.com/gpu-mcp/gpu-mcp/vendors"
)

// These tests kill gpu-mcp for real (SIGKILL) while the cloud, `gpu-mcp emulate`, runs on in a
// process of its own, and show that nothing gpu-mcp promised is lost: an auto-stop is carried
// out by gpu-mcp reap or by the next gpu-mcp, a launch whose process died between the vendor's
// answer and the ledger is adopted, and replicas carry out a due lease once.

// killable is a gpu-mcp served over stdio, as an MCP host runs it, whose process the test
// can kill.
type killable struct {
	*session
	cmd *exec.Cmd
}

func startKillable(t *testing.T, env []string) *killable {
	t.Helper()
	return startKillableAt(t, env, mcp.LATEST_PROTOCOL_VERSION)
}

// startKillableAt is startKillable with a client of the given protocol version.
func startKillableAt(t *testing.T, env []string, protocol string) *killable {
	t.Helper()
	k := &killable{}
	stderr := &lockedBuffer{}
	env = slices.Concat(clearedCredentials, []string{"GPU_MCP_LOG_LEVEL=debug"}, env)
	tr := transport.NewStdioWithOptions(binPath, env, nil, transport.WithCommandFunc(
		func(_ context.Context, command string, env, args []string) (*exec.Cmd, error) {
			k.cmd = exec.Command(command, args...)
			k.cmd.Env = append(os.Environ(), env...)
			k.cmd.Stderr = stderr
			return k.cmd, nil
		}))
	c := client.NewClient(tr)
	if err := c.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		k.cmd.Process.Kill()
		c.Close()
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	init := mcp.InitializeRequest{}
	init.Params.ProtocolVersion = protocol
	init.Params.ClientInfo = mcp.Implementation{Name: "gpu-mcp-crash-e2e", Version: "1"}
	if _, err := c.Initialize(ctx, init); err != nil {
		t.Fatalf("initialize: %v\n%s", err, stderr.String())
	}
	k.session = &session{t: t, c: c, stderr: stderr}
	return k
}

// kill ends the process with SIGKILL and waits for it.
func (k *killable) kill() {
	k.t.Helper()
	if err := k.cmd.Process.Kill(); err != nil {
		k.t.Fatal(err)
	}
	_, _ = k.cmd.Process.Wait()
}

// gpuMCP runs a gpu-mcp subcommand to its end and returns its stdout and exit status.
func gpuMCP(t *testing.T, env []string, args ...string) (string, int) {
	t.Helper()
	cmd := exec.Command(binPath, args...)
	cmd.Env = slices.Concat(os.Environ(), clearedCredentials, []string{"GPU_MCP_LOG_LEVEL=warn"}, env)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		return stdout.String(), ee.ExitCode()
	case err != nil:
		t.Fatalf("gpu-mcp %v: %v\n%s", args, err, stderr.String())
	}
	return stdout.String(), 0
}

// timerless are the vendors whose adapter has no shutdown timer: gpu-mcp alone stops their
// instances at their auto-stop.
func timerless(t *testing.T, e *emulator) []string {
	t.Helper()
	environ := map[string]string{}
	for _, l := range e.env() {
		k, v, _ := strings.Cut(l, "=")
		environ[k] = v
	}
	var out []string
	for _, v := range vendors.All() {
		cfg, err := vendors.Load(v, environ)
		if err != nil {
			t.Fatal(err)
		}
		if _, timer := cfg.Provider(providers.HTTPOptions{}, nil).(providers.StopScheduler); !timer {
			out = append(out, v.Name)
		}
	}
	if len(out) < 2 {
		t.Fatalf("want at least two vendors without a shutdown timer, have %v", out)
	}
	return out
}

// states are the emulated instances' states by id.
func (e *emulator) states() map[string]providers.State {
	e.t.Helper()
	var m map[string][]instanceView
	if code := e.request(http.MethodGet, "/instances", "", &m); code != http.StatusOK {
		e.t.Fatalf("GET /instances: %d", code)
	}
	out := map[string]providers.State{}
	for _, insts := range m {
		for _, in := range insts {
			out[in.ID] = in.State
		}
	}
	return out
}

// untilPast waits until the wall clock is past at: an auto-stop's due time must have come.
func untilPast(at time.Time) {
	if d := time.Until(at); d > 0 {
		time.Sleep(d + 100*time.Millisecond)
	}
}

// launchWithAutoStop launches one instance of each vendor with auto_stop_after, and returns
// the instances and the latest due time.
func launchWithAutoStop(t *testing.T, s *session, names []string, after string) ([]string, time.Time) {
	t.Helper()
	var ids []string
	var due time.Time
	for _, v := range names {
		offer, image := hourlyOffer(t, s, v)
		_, m := s.launch(map[string]any{"offer_id": offer, "image_id": image, "auto_stop_after": after})
		stop, _ := m["auto_stop"].(map[string]any)
		if m["status"] != "done" || stop == nil || stop["by"] != "gpu-mcp" {
			t.Fatalf("%s: launch %v", v, m)
		}
		at, err := time.Parse(time.RFC3339, stop["at"].(string))
		if err != nil {
			t.Fatal(err)
		}
		if at.After(due) {
			due = at
		}
		ids = append(ids, m["instance_id"].(string))
	}
	return ids, due
}

// Done when, 1: instances launched with auto_stop_after 20s on every vendor without a shutdown
// timer, through an MCP client; gpu-mcp is SIGKILLed. After the due time gpu-mcp reap stops
// them (the emulator shows it); without reap, the next gpu-mcp start stops them, by itself.
func TestAutoStopOutlivesAKilledServer(t *testing.T) {
	e := startEmulate(t)
	names := timerless(t, e)
	for _, how := range []string{"reap", "next start"} {
		t.Run(how, func(t *testing.T) {
			t.Parallel()
			env := append(e.env(), "GPU_MCP_STATE_URL="+statetest.SQLiteURL(t), "GPU_MCP_POLL_INTERVAL=100ms", "GPU_MCP_OFFER_CACHE_TTL=0")
			k := startKillable(t, env)
			ids, due := launchWithAutoStop(t, k.session, names, "20s")
			listed := k.ok("list_instances", nil)["instances"].([]any)
			for _, id := range ids {
				i := slices.IndexFunc(listed, func(x any) bool { return x.(map[string]any)["id"] == id })
				if i < 0 || listed[i].(map[string]any)["managed"] == nil {
					t.Fatalf("list_instances does not show what gpu-mcp keeps of %s: %v", id, listed)
				}
			}
			k.kill()
			if how == "next start" {
				untilPast(due)
				startKillable(t, env) // and nothing else: its reconciler stops them
				eventually(t, "the next gpu-mcp stops the instances by itself", func() bool {
					st := e.states()
					return !slices.ContainsFunc(ids, func(id string) bool { return st[id] != providers.StateStopped })
				})
				return
			}
			if out, code := gpuMCP(t, env, "reap"); code != 0 || out != "" {
				t.Fatalf("reap before the due time: exit %d:\n%s", code, out)
			}
			out, code := gpuMCP(t, env, "leases")
			table, orphans, _ := strings.Cut(out, "\norphans: ")
			if code != 0 || strings.Count(table, " pending ") != len(ids) || slices.ContainsFunc(ids, func(id string) bool { return strings.Contains(orphans, id) }) {
				// The other subtest's instances, on the same cloud with another store, are orphans here.
				t.Fatalf("leases: exit %d:\n%s", code, out)
			}
			untilPast(due)
			out, code = gpuMCP(t, env, "reap")
			lines := strings.Split(strings.TrimSpace(out), "\n")
			slices.Sort(lines)
			slices.Sort(ids)
			if code != 0 || len(lines) != len(ids) {
				t.Fatalf("reap after the due time: exit %d:\n%s", code, out)
			}
			for i, id := range ids {
				if !strings.HasPrefix(lines[i], "stopped "+id+" (auto-stop due ") {
					t.Fatalf("reap's line %q, want one that stopped %s", lines[i], id)
				}
			}
			eventually(t, "the emulator shows the instances stopped", func() bool {
				st := e.states()
				return !slices.ContainsFunc(ids, func(id string) bool { return st[id] != providers.StateStopped })
			})
			if out, code := gpuMCP(t, env, "reap"); code != 0 || out != "" {
				t.Fatalf("reap again: exit %d:\n%s", code, out)
			}
			if out, _ := gpuMCP(t, env, "leases"); strings.Count(out, "done ") != len(ids) {
				t.Fatalf("leases after reap:\n%s", out)
			}
		})
	}
}

// Done when, 2: gpu-mcp is SIGKILLed between the vendor's answer to a buy and the ledger's
// next write (the test hook holds it there), on every vendor. The next gpu-mcp adopts the
// instance: list_instances shows it with its lease, a repeat of the launch with the same
// idempotency_key returns it, and the emulator saw one buy.
func TestLaunchKilledAfterTheBuyIsAdopted(t *testing.T) {
	e := startEmulate(t)
	env := append(e.env(), "GPU_MCP_STATE_URL="+statetest.SQLiteURL(t), "GPU_MCP_POLL_INTERVAL=100ms", "GPU_MCP_OFFER_CACHE_TTL=0")
	first := startKillable(t, append(slices.Clone(env), testHookEnv+"=pause_after_buy"))
	type launch struct {
		vendor string
		args   map[string]any
		buys   int64
	}
	var launches []launch
	for i, v := range vendors.Names() {
		offer, image := hourlyOffer(t, first.session, v)
		args := map[string]any{"offer_id": offer, "image_id": image, "auto_stop_after": "1h", "idempotency_key": "crash-" + v,
			"stop_when_gpu_idle": map[string]any{"below_pct": 5, "for": "30m"}}
		plan := first.ok("launch_instance", args)
		l := launch{vendor: v, args: args, buys: e.buys(v)}
		go func() {
			req := mcp.CallToolRequest{}
			req.Params.Name, req.Params.Arguments = "launch_instance", withToken(args, plan["confirmation_token"].(string))
			_, _ = first.c.CallTool(context.Background(), req) // never answered: the process is killed
		}()
		eventually(t, v+"'s buy paused by the test hook", func() bool { return strings.Count(first.stderr.String(), testHookPaused) == i+1 })
		launches = append(launches, l)
	}
	first.kill()

	next := startKillable(t, env)
	for _, l := range launches {
		var adopted map[string]any
		eventually(t, "the next gpu-mcp adopts the launch on "+l.vendor, func() bool {
			for _, x := range next.ok("list_instances", map[string]any{"provider": l.vendor})["instances"].([]any) {
				x := x.(map[string]any)
				// Adopted with its auto-stop and the stop when its GPUs stay idle that it asked for.
				if m, _ := x["managed"].(map[string]any); m != nil && m["key"] == l.args["idempotency_key"] && m["lease"] != nil &&
					strings.Contains(fmt.Sprint(m["work"]), "kind:gpu_idle") {
					adopted = x
					return true
				}
			}
			return false
		})
		res, m := next.call("launch_instance", l.args)
		if res.IsError || m["status"] != "nothing_to_do" || m["instance_id"] != adopted["id"] || !strings.Contains(resultText(res), "nothing was bought again") {
			t.Fatalf("%s: the launch repeated with its key: %v\n%s", l.vendor, m, resultText(res))
		}
		if n := e.buys(l.vendor) - l.buys; n != 1 {
			t.Fatalf("%s: %d buys, want 1", l.vendor, n)
		}
	}
}

// Done when, 3: two replicas on one PostgreSQL and one cloud carry out each due lease once:
// one stop per instance reaches the vendor, and the shared audit trail has one auto-stop each.
func TestReplicasCarryOutADueLeaseOnce(t *testing.T) {
	storeURL := statetest.PostgresURL(t)
	e := startEmulate(t)
	names := timerless(t, e)
	env := append(e.env(), "GPU_MCP_STATE_URL="+storeURL, "GPU_MCP_AUTH_TOKEN="+testAuthToken, "GPU_MCP_POLL_INTERVAL=100ms", "GPU_MCP_OFFER_CACHE_TTL=0")
	// Two replicas, both reconciling; the launches go through one of them.
	s := startNetServer(t, "http", env).connect(nil)
	startNetServer(t, "http", env)
	before := map[string]changesView{}
	e.request(http.MethodGet, "/changes", "", &before)
	var ids []string
	for range 2 {
		more, _ := launchWithAutoStop(t, s, names, "5s")
		ids = append(ids, more...)
	}
	eventually(t, "the replicas stop every instance", func() bool {
		st := e.states()
		return !slices.ContainsFunc(ids, func(id string) bool { return st[id] != providers.StateStopped })
	})
	trail := statetest.Open(t, storeURL, state.Options{})
	stops := map[string]int{}
	// The trail's record follows the stop.
	eventually(t, "an auto-stop in the trail for every instance", func() bool {
		recs, err := trail.ListAudit(context.Background(), time.Time{}, 0)
		if err != nil {
			t.Fatal(err)
		}
		clear(stops)
		for _, r := range recs {
			if r.Tool == "auto_stop" {
				id, _, _ := strings.Cut(r.Detail, ": ")
				stops[id]++
			}
		}
		return !slices.ContainsFunc(ids, func(id string) bool { return stops[id] == 0 })
	})
	for _, id := range ids {
		if stops[id] != 1 {
			t.Fatalf("%s: %d auto-stops in the trail, want 1: %v", id, stops[id], stops)
		}
	}
	after := map[string]changesView{}
	e.request(http.MethodGet, "/changes", "", &after)
	for _, v := range names {
		if n := (after[v].Changes - before[v].Changes) - int(after[v].Buys-before[v].Buys); n != 2 {
			t.Fatalf("%s: %d changes besides the buys reached the vendor for its 2 due leases, want 2 stops", v, n)
		}
	}
}
