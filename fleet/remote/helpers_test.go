package remote

import (
	"bytes"
	"context"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gpu-mcp/gpu-mcp/providers/machinetest"
	"github.com/rs/zerolog"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const testPassword = "Pw-7f3a9c-never-shown"

// rig is a machine on loopback and a pool connected to it.
type rig struct {
	m    *machinetest.Machine
	keys *MemoryHostKeys
	pool *Pool
	tgt  Target
	logs *syncBuffer
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func newRig(t testing.TB, o machinetest.Options) *rig {
	t.Helper()
	if o.Password == "" && len(o.AuthorizedKeys) == 0 {
		o.Password = testPassword
	}
	m, err := machinetest.New(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close() })
	m.SetReady(true)
	r := &rig{m: m, keys: NewMemoryHostKeys(), logs: &syncBuffer{}}
	r.pool = r.newPool(t, PoolOptions{})
	r.tgt = Target{InstanceID: "test:inst-1", Host: m.Host(), Port: m.Port(), User: m.User(), Password: m.Password()}
	return r
}

// newPool is another pool on the rig's host keys and log, as a new gpu-mcp process would be.
func (r *rig) newPool(t testing.TB, o PoolOptions) *Pool {
	o.Logger = zerolog.New(r.logs).Level(zerolog.DebugLevel)
	p := NewPool(r.keys, o)
	t.Cleanup(func() { _ = p.Close() })
	return p
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func (r *rig) run(t testing.TB, cmd string) RunResult {
	t.Helper()
	res, err := r.pool.Run(ctxT(t), r.tgt, cmd, RunOptions{})
	if err != nil {
		t.Fatalf("run %q: %v", cmd, err)
	}
	return res
}

// procStat returns field n (1-based, as in proc(5)) of /proc/pid/stat, "" when there is none.
func procStat(pid, n int) string {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return ""
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 || n < 3 {
		return ""
	}
	f := strings.Fields(s[i+1:])
	if n-3 >= len(f) {
		return ""
	}
	return f[n-3]
}

// alive reports whether pid runs (a zombie does not: it waits only to be reaped).
func alive(pid int) bool {
	st := procStat(pid, 3)
	return st != "" && st != "Z"
}

// eventually polls cond; it fails only after a minute, so that a slow machine is no failure.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(time.Minute); !cond(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%s: still not so after a minute", what)
		}
	}
}

func readPID(t testing.TB, name string) int {
	t.Helper()
	var pid int
	eventually(t, "pid file "+name, func() bool {
		b, err := os.ReadFile(name)
		if err != nil {
			return false
		}
		pid, err = strconv.Atoi(strings.TrimSpace(string(b)))
		return err == nil
	})
	return pid
}
