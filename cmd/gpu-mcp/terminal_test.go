package main

import (
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/creack/pty"

	"github.com/gpu-mcp/gpu-mcp/tools"
	"github.com/gpu-mcp/gpu-mcp/vendors"
)

// These tests put a person at gpu-mcp call's terminal: its standard input and standard error
// are a pseudo-terminal, as at a shell prompt, and its standard output a pipe, so that the
// result can be read apart from the question.

// terminalWait bounds how long a step may take before the test gives up; it only keeps a
// broken build from hanging, and is never what a test asserts.
const terminalWait = 2 * time.Minute

// atTerminal is gpu-mcp running with a person at its terminal.
type atTerminal struct {
	t      *testing.T
	ptmx   *os.File
	screen *lockedBuffer // what the terminal shows: the plan, the question, the answer's echo
	stdout *lockedBuffer
	exited chan struct{}
	err    error
}

func startAtTerminal(t *testing.T, env []string, args ...string) *atTerminal {
	t.Helper()
	ptmx, tty, err := pty.Open()
	if err != nil {
		t.Skipf("no pseudo-terminal on this system: %v", err)
	}
	a := &atTerminal{t: t, ptmx: ptmx, screen: &lockedBuffer{}, stdout: &lockedBuffer{}, exited: make(chan struct{})}
	cmd := exec.Command(binPath, args...)
	cmd.Env = slices.Concat(os.Environ(), clearedCredentials, []string{"GPU_MCP_LOG_LEVEL=", "GPU_MCP_POLL_INTERVAL=50ms", "GPU_MCP_DEMO_STEP_DELAY=100ms"}, env)
	cmd.Stdin, cmd.Stderr, cmd.Stdout = tty, tty, a.stdout
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true} // the terminal is its own, as a login's is
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	tty.Close() // the child holds it now: its end closes the screen
	copied := make(chan struct{})
	go func() {
		_, _ = io.Copy(a.screen, ptmx) // until the child's end of the terminal closes
		close(copied)
	}()
	go func() {
		a.err = cmd.Wait()
		<-copied
		close(a.exited)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-a.exited
		ptmx.Close()
	})
	return a
}

// waitFor waits until the terminal shows s.
func (a *atTerminal) waitFor(s string) {
	a.t.Helper()
	deadline := time.Now().Add(terminalWait)
	for !strings.Contains(a.screen.String(), s) {
		select {
		case <-a.exited:
			a.t.Fatalf("gpu-mcp exited (%v) before the terminal showed %q:\n%s\nstdout:\n%s", a.err, s, a.screen.String(), a.stdout.String())
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			a.t.Fatalf("the terminal never showed %q:\n%s", s, a.screen.String())
		}
	}
}

// answer types a line at the terminal.
func (a *atTerminal) answer(line string) {
	a.t.Helper()
	if _, err := a.ptmx.Write([]byte(line + "\n")); err != nil {
		a.t.Fatal(err)
	}
}

// wait waits for gpu-mcp to exit and returns its exit status.
func (a *atTerminal) wait() int {
	a.t.Helper()
	select {
	case <-a.exited:
	case <-time.After(terminalWait):
		a.t.Fatalf("gpu-mcp did not exit:\n%s", a.screen.String())
	}
	var ee *exec.ExitError
	if errors.As(a.err, &ee) {
		return ee.ExitCode()
	}
	if a.err != nil {
		a.t.Fatal(a.err)
	}
	return 0
}

const prompt = "Proceed? [y/N] "

// The test: `gpu-mcp --demo call launch_instance ...` shows the plan, asks, and on y
// launches in the same process, with the token it never showed.
func TestTerminalYesLaunchesInTheDemo(t *testing.T) {
	v := vendors.All()[0].Name
	offer, image := hourlyOffer(t, startSession(t, nil, "--demo"), v)
	b, _ := json.Marshal(map[string]any{"offer_id": offer, "image_id": image})
	a := startAtTerminal(t, nil, "--demo", "call", "launch_instance", string(b), "--json")
	a.waitFor(prompt)
	screen := a.screen.String()
	if !strings.Contains(screen, "asks for your approval") || !strings.Contains(screen, offer) || strings.Contains(screen, "confirm_token") {
		t.Fatalf("the question does not show the plan, or shows a token:\n%s", screen)
	}
	if a.stdout.String() != "" {
		t.Fatalf("something was printed as a result before the answer: %s", a.stdout.String())
	}
	a.answer("y")
	if code := a.wait(); code != 0 {
		t.Fatalf("exit %d after y:\n%s\n%s", code, a.screen.String(), a.stdout.String())
	}
	m := decodeOne(t, a.stdout.String())
	inst, _ := m["instance"].(map[string]any)
	if m["status"] != "done" || m["ready"] != true || !strings.HasPrefix(m["instance_id"].(string), v+":") || inst["state"] != "running" {
		t.Fatalf("the launch after y: %v", m)
	}
}

// On the shared clouds of `gpu-mcp emulate`: a yes (in any case) launches once and the trail
// says a person at the terminal approved; anything else buys nothing, changes nothing, and
// the next process sees no new instance.
func TestTerminalAnswerDecides(t *testing.T) {
	for _, c := range []struct {
		answer string
		runs   bool
	}{{"y", true}, {"YES", true}, {"n", false}, {"", false}, {"sure", false}} {
		t.Run("answer "+c.answer, func(t *testing.T) {
			cc := newCloudCall(t)
			listed := func() int {
				out, _, code := gpuMCPProcess(t, cc.env, "", "call", "list_instances", "--json")
				instances, ok := decodeOne(t, out)["instances"].([]any)
				if code != 0 || !ok {
					t.Fatalf("list_instances: exit %d:\n%s", code, out)
				}
				return len(instances)
			}
			changes, inCloud, inList := cc.changes(t), cc.instances(t), listed()
			a := startAtTerminal(t, cc.env, "call", "launch_instance", cc.args)
			a.waitFor(prompt)
			if n := cc.e.buys(cc.v); n != 0 {
				t.Fatalf("%d buys before the answer", n)
			}
			a.answer(c.answer)
			code := a.wait()
			if !c.runs {
				if code != exitDeclined || strings.TrimSpace(a.stdout.String()) != "Nothing was done." {
					t.Fatalf("exit %d, stdout %q; want %d and Nothing was done.", code, a.stdout.String(), exitDeclined)
				}
				if cc.e.buys(cc.v) != 0 || cc.changes(t) != changes || cc.instances(t) != inCloud || listed() != inList {
					t.Fatalf("declined, yet %d buys, %d changes, %d new instances, %d more listed", cc.e.buys(cc.v), cc.changes(t)-changes, cc.instances(t)-inCloud, listed()-inList)
				}
				if got := cc.confirmations(t); !slices.Equal(got, []string{"confirmation_required/none"}) {
					t.Fatalf("the audit trail has %q", got)
				}
				return
			}
			if code != 0 || cc.e.buys(cc.v) != 1 || cc.instances(t) != inCloud+1 || listed() != inList+1 {
				t.Fatalf("exit %d, %d buys, %d new instances, %d more listed:\n%s\n%s", code, cc.e.buys(cc.v), cc.instances(t)-inCloud, listed()-inList, a.screen.String(), a.stdout.String())
			}
			if !strings.Contains(a.stdout.String(), "Launched") {
				t.Errorf("the result of the launch:\n%s", a.stdout.String())
			}
			terminal := string(tools.ConfirmedAtTerminal)
			if got, want := cc.confirmations(t), []string{"confirmation_required/none", "running/" + terminal, "done/" + terminal}; !slices.Equal(got, want) {
				t.Errorf("the audit trail has %q, want %q", got, want)
			}
		})
	}
}

// A yes typed at the terminal is a person's approval, which GPU_MCP_REQUIRE_ELICITATION asks
// for (--yes is refused under it: TestCallYes).
func TestTerminalYesCountsUnderRequireElicitation(t *testing.T) {
	cc := newCloudCall(t, "GPU_MCP_REQUIRE_ELICITATION=true")
	a := startAtTerminal(t, cc.env, "call", "launch_instance", cc.args)
	a.waitFor(prompt)
	a.answer("y")
	if code := a.wait(); code != 0 || cc.e.buys(cc.v) != 1 {
		t.Fatalf("exit %d, %d buys:\n%s\n%s", code, cc.e.buys(cc.v), a.screen.String(), a.stdout.String())
	}
	if got := cc.confirmations(t); !slices.Contains(got, "done/"+string(tools.ConfirmedAtTerminal)) {
		t.Errorf("the audit trail has %q", got)
	}
}

// --no-input at a terminal asks nothing: the plan and its token, as without a terminal.
func TestTerminalNoInputOnlyPrintsThePlan(t *testing.T) {
	cc := newCloudCall(t)
	a := startAtTerminal(t, cc.env, "call", "launch_instance", cc.args, "--no-input")
	if code := a.wait(); code != 0 || strings.Contains(a.screen.String(), "Proceed?") || cc.e.buys(cc.v) != 0 {
		t.Fatalf("exit %d, %d buys, terminal:\n%s", code, cc.e.buys(cc.v), a.screen.String())
	}
	if tokenInText.FindString(a.stdout.String()) == "" || !strings.Contains(a.screen.String(), "nothing was done") {
		t.Fatalf("no plan with its token:\n%s\n%s", a.stdout.String(), a.screen.String())
	}
}

// The machine tools are guarded with GPU_MCP_EXEC=confirm: the terminal asks before a command
// runs on the machine, and runs it on y.
func TestTerminalConfirmsACommandOnTheMachine(t *testing.T) {
	env := []string{"GPU_MCP_EXEC=confirm"}
	var running string
	for _, in := range startSession(t, env, "--demo").ok("list_instances", map[string]any{"state": "running"})["instances"].([]any) {
		running = in.(map[string]any)["id"].(string)
		break
	}
	if running == "" {
		t.Fatal("the demo has no running instance to run a command on")
	}
	b, _ := json.Marshal(map[string]any{"instance_id": running, "command": "echo ran-$((6*7))"})
	a := startAtTerminal(t, env, "--demo", "call", "run_command", string(b))
	a.waitFor(prompt)
	if a.stdout.String() != "" {
		t.Fatal("something was printed as a result before the answer")
	}
	a.answer("y")
	if code := a.wait(); code != 0 || !strings.Contains(a.stdout.String(), "ran-42") {
		t.Fatalf("exit %d after y:\n%s\n%s", code, a.screen.String(), a.stdout.String())
	}
}
