package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/creack/pty"

	"github.com/gpu-mcp/gpu-mcp/vendors"
)

// The README's walk-throughs, run line by line as a reader would: in a shell of their own, with
// gpu-mcp on the PATH (this test binary, which is gpu-mcp), from a fresh directory. The lines
// are the code between <!-- walkthrough --> and <!-- /walkthrough --> in README.md. As the
// README says, a line's placeholders are filled in from what the lines before printed:
//
//	<offer_id>, <image_id>, <instance_id>  the first id of the table the last list_gpu_offers,
//	                                       list_images or list_instances printed
//	<confirm_token>                        the confirm_token="..." printed last
//
// A line whose comment says "Proceed? [y/N] ANSWER" gets a terminal for its standard input
// and standard error, must ask, and gets ANSWER typed; the others read /dev/null. A line must
// exit 0, or N when its comment says "exits N".

// walkthroughLine is one line of a walk-through and what its comment expects.
type walkthroughLine struct {
	text   string
	answer string // typed when it asks Proceed? [y/N]; "": it gets no terminal
	exit   int
}

var (
	walkthroughComment = regexp.MustCompile(`\s{2,}#\s+(.*)$`)
	proceedAnswer      = regexp.MustCompile(`Proceed\? \[y/N\] (\S+)`)
	exitsStatus        = regexp.MustCompile(`\bexits (\d+)\b`)
	placeholder        = regexp.MustCompile(`<[a-z_]+>`)
)

// readWalkthroughs returns the README's walk-throughs, each its lines in order.
func readWalkthroughs(t *testing.T) [][]walkthroughLine {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	var out [][]walkthroughLine
	var cur []walkthroughLine
	in := false
	for n, line := range strings.Split(string(b), "\n") {
		switch trimmed := strings.TrimSpace(line); {
		case trimmed == "<!-- walkthrough -->":
			in, cur = true, nil
		case trimmed == "<!-- /walkthrough -->":
			if !in || len(cur) == 0 {
				t.Fatalf("README.md:%d: a walk-through's end without its beginning or any line", n+1)
			}
			out, in = append(out, cur), false
		case !in || trimmed == "" || strings.HasPrefix(trimmed, "```") || strings.HasPrefix(trimmed, "#"):
		default:
			l := walkthroughLine{text: line}
			if m := walkthroughComment.FindStringSubmatch(line); m != nil {
				if a := proceedAnswer.FindStringSubmatch(m[1]); a != nil {
					l.answer = a[1]
				}
				if e := exitsStatus.FindStringSubmatch(m[1]); e != nil {
					l.exit, _ = strconv.Atoi(e[1])
				}
			}
			cur = append(cur, l)
		}
	}
	if in {
		t.Fatal("README.md: a walk-through without its end marker")
	}
	return out
}

// walkthroughShell is one bash, the reader's, that runs a walk-through's lines in turn.
type walkthroughShell struct {
	t      *testing.T
	cmd    *exec.Cmd
	in     io.WriteCloser
	marks  chan string // the exit statuses the shell reports, one per line
	stderr *lockedBuffer
	logs   string // each line's stdout and stderr, as files
	ptmx   *os.File
	tty    *os.File
	screen *lockedBuffer // what the terminal shows
}

const exitMark = "gpu-mcp-walkthrough-exit:"

func startWalkthroughShell(t *testing.T) *walkthroughShell {
	t.Helper()
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("no bash to run the README's lines in")
	}
	ptmx, tty, err := pty.Open()
	if err != nil {
		t.Skipf("no pseudo-terminal on this system: %v", err)
	}
	bin := t.TempDir()
	if err := os.Symlink(binPath, filepath.Join(bin, "gpu-mcp")); err != nil {
		t.Fatal(err)
	}
	sh := &walkthroughShell{t: t, marks: make(chan string, 1), stderr: &lockedBuffer{}, logs: t.TempDir(), ptmx: ptmx, tty: tty, screen: &lockedBuffer{}}
	sh.cmd = exec.Command(bash, "--norc", "--noprofile")
	sh.cmd.Dir = t.TempDir()
	// A reader's environment, with this test's settings cleared; the clouds change state
	// briskly (nothing in the README depends on how fast).
	sh.cmd.Env = append(append(os.Environ(), clearedCredentials...), "PATH="+bin+string(os.PathListSeparator)+os.Getenv("PATH"),
		"GPU_MCP_STATE_URL=", "GPU_MCP_LOG_LEVEL=", "GPU_MCP_DEMO_LATENCY=", "GPU_MCP_DEMO_STEP_DELAY=100ms", "GPU_MCP_POLL_INTERVAL=50ms")
	sh.cmd.Stderr = sh.stderr
	sh.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // its background jobs die with it
	if sh.in, err = sh.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	out, err := sh.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := sh.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		_, _ = io.Copy(sh.screen, ptmx)
	}()
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if v, ok := strings.CutPrefix(sc.Text(), exitMark); ok {
				sh.marks <- v
			}
		}
		close(sh.marks)
	}()
	t.Cleanup(func() {
		_ = syscall.Kill(-sh.cmd.Process.Pid, syscall.SIGKILL)
		_ = sh.cmd.Wait()
		tty.Close()
		ptmx.Close()
	})
	return sh
}

// run runs line n in the shell, answering its question if it has one, and returns its exit
// status and what it printed.
func (sh *walkthroughShell) run(n int, l walkthroughLine, text string) (exit int, stdout, stderr string) {
	sh.t.Helper()
	outFile, errFile := filepath.Join(sh.logs, fmt.Sprintf("%d.out", n)), filepath.Join(sh.logs, fmt.Sprintf("%d.err", n))
	redirect := fmt.Sprintf("</dev/null >'%s' 2>'%s'", outFile, errFile)
	if l.answer != "" {
		redirect = fmt.Sprintf("<'%s' >'%s' 2>'%s'", sh.tty.Name(), outFile, sh.tty.Name())
	}
	seen := len(sh.screen.String())
	// The line's own comment ends at its line end, so the group closes on the next.
	if _, err := fmt.Fprintf(sh.in, "{ %s\n} %s; echo \"%s$?\"\n", text, redirect, exitMark); err != nil {
		sh.t.Fatalf("the shell is gone (%v):\n%s", err, sh.stderr.String())
	}
	deadline := time.After(3 * time.Minute) // only keeps a broken build from hanging
	asked := false
	for {
		select {
		case v, ok := <-sh.marks:
			if !ok {
				sh.t.Fatalf("the shell exited at %q:\n%s", text, sh.stderr.String())
			}
			exit, _ = strconv.Atoi(v)
			o, _ := os.ReadFile(outFile)
			e, _ := os.ReadFile(errFile)
			if l.answer != "" {
				e = []byte(sh.screen.String()[seen:])
				if !asked {
					sh.t.Fatalf("%q never asked %q; its terminal:\n%s\nstdout:\n%s", text, prompt, e, o)
				}
			}
			return exit, string(o), string(e)
		case <-deadline:
			sh.t.Fatalf("%q did not finish; its terminal:\n%s", text, sh.screen.String()[seen:])
		case <-time.After(10 * time.Millisecond):
			if l.answer != "" && !asked && strings.Contains(sh.screen.String()[seen:], prompt) {
				asked = true
				if _, err := sh.ptmx.Write([]byte(l.answer + "\n")); err != nil {
					sh.t.Fatal(err)
				}
			}
		}
	}
}

// walkthroughFiller fills a walk-through's placeholders from what its lines printed.
type walkthroughFiller struct {
	tables map[string]string // tool: what its last call printed
	token  string
}

var (
	tableTools = map[string]string{"<offer_id>": "list_gpu_offers", "<image_id>": "list_images", "<instance_id>": "list_instances"}
	// firstTableID finds the first id of a table: a row starts with an id of a vendor of the list.
	firstTableID = regexp.MustCompile(`(?m)^\s*((?:` + strings.Join(vendors.Names(), "|") + `):[^\s|]+)`)
)

func (f *walkthroughFiller) fill(t *testing.T, line string) string {
	t.Helper()
	return placeholder.ReplaceAllStringFunc(line, func(p string) string {
		if p == "<confirm_token>" {
			if f.token == "" {
				t.Fatalf("%q needs %s, and no line before printed a confirm_token", line, p)
			}
			return f.token
		}
		tool, ok := tableTools[p]
		if !ok {
			t.Fatalf("%q has the placeholder %s, which the walk-through test does not know (README: Try a whole life cycle by hand)", line, p)
		}
		m := firstTableID.FindStringSubmatch(f.tables[tool])
		if m == nil {
			t.Fatalf("%q needs %s, and the last %s printed no table of ids:\n%s", line, p, tool, f.tables[tool])
		}
		return m[1]
	})
}

func (f *walkthroughFiller) saw(line, stdout string) {
	for _, tool := range tableTools {
		if strings.Contains(line, " "+tool+" ") || strings.HasSuffix(strings.TrimSpace(line), " "+tool) {
			f.tables[tool] = stdout
		}
	}
	if m := tokenInText.FindStringSubmatch(stdout); m != nil {
		f.token = m[1]
	}
}

func TestReadmeWalkthrough(t *testing.T) {
	walkthroughs := readWalkthroughs(t)
	if len(walkthroughs) == 0 {
		t.Fatal("README.md has no walk-through between <!-- walkthrough --> markers")
	}
	answered := 0
	for i, lines := range walkthroughs {
		t.Run(fmt.Sprint(i+1), func(t *testing.T) {
			sh := startWalkthroughShell(t)
			f := &walkthroughFiller{tables: map[string]string{}}
			for n, l := range lines {
				text := f.fill(t, l.text)
				exit, stdout, stderr := sh.run(n, l, text)
				if exit != l.exit {
					t.Fatalf("README walk-through %d, line %d: %s\nexited %d, the README says %d\nstdout:\n%s\nstderr:\n%s", i+1, n+1, text, exit, l.exit, stdout, stderr)
				}
				f.saw(l.text, stdout)
				if l.answer != "" {
					answered++
				}
			}
		})
	}
	if answered == 0 {
		t.Error("no line of the walk-throughs answers a Proceed? [y/N]: the terminal's question is not walked through")
	}
}
