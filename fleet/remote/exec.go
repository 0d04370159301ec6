package remote

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"

	"golang.org/x/crypto/ssh"
)

// output runs one of this package's own short scripts on the machine and returns its stdout
// and stderr, each cut after limit bytes, and its exit status (-1 after a signal). Ending
// ctx closes the session.
func (p *Pool) output(ctx context.Context, t Target, script string, limit int) (stdout, stderr []byte, code int, err error) {
	s, _, release, err := p.session(ctx, t)
	if err != nil {
		return nil, nil, 0, err
	}
	defer release()
	defer s.Close()
	o, e := &headBuffer{max: limit}, &headBuffer{max: limit}
	s.Stdout, s.Stderr = o, e
	if err := s.Start(script); err != nil {
		return nil, nil, 0, fmt.Errorf("cannot run a command on %s: %w", t, err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Wait() }()
	select {
	case err = <-done:
	case <-ctx.Done():
		_ = s.Close()
		<-done
		return o.buf, e.buf, 0, ctx.Err()
	}
	var exit *ssh.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exit) && exit.Signal() == "":
		code = exit.ExitStatus()
	case errors.As(err, &exit):
		code = -1
	default:
		return o.buf, e.buf, 0, fmt.Errorf("lost the connection to %s during a command: %w", t, err)
	}
	return o.buf, e.buf, code, nil
}

// headBuffer keeps the first max bytes written to it.
type headBuffer struct {
	max int
	buf []byte
}

func (h *headBuffer) Write(b []byte) (int, error) {
	h.buf = append(h.buf, b[:min(len(b), max(h.max-len(h.buf), 0))]...)
	return len(b), nil
}

// verify runs sha256sum on the machine over files (their Path is on the machine) and
// compares. It reports whether every file could be checked; a differing sum is an error.
func (p *Pool) verify(ctx context.Context, t Target, files []FileSum) (bool, error) {
	const batchBytes = 64 << 10
	all := true
	for len(files) > 0 {
		var cmd strings.Builder
		cmd.WriteString("exec sha256sum --")
		n := 0
		for n < len(files) && (n == 0 || cmd.Len()+len(files[n].Path) < batchBytes) {
			cmd.WriteString(" " + quote(files[n].Path))
			n++
		}
		batch := files[:n]
		files = files[n:]
		out, _, code, err := p.output(ctx, t, cmd.String(), 1<<20)
		if err != nil {
			return false, fmt.Errorf("cannot verify the copy's checksums on instance %s: %w", t.InstanceID, err)
		}
		if code == 127 {
			return false, nil // no sha256sum on the machine
		}
		sums := parseSHA256Sums(out)
		for _, f := range batch {
			got, ok := sums[f.Path]
			switch {
			case !ok:
				all = false
			case got != f.SHA256:
				return false, &ChecksumError{Path: f.Path, Local: f.SHA256, Remote: got}
			}
		}
	}
	return all, nil
}

// parseSHA256Sums reads sha256sum's lines, "HASH  NAME" or, for a name with a backslash or
// a newline in it, "\HASH  ESCAPED-NAME".
func parseSHA256Sums(out []byte) map[string]string {
	sums := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		escaped := strings.HasPrefix(line, `\`)
		if escaped {
			line = line[1:]
		}
		if len(line) < 66 || (line[64:66] != "  " && line[64:66] != " *") {
			continue
		}
		name := line[66:]
		if escaped {
			name = strings.NewReplacer(`\\`, `\`, `\n`, "\n", `\r`, "\r").Replace(name)
		}
		sums[name] = strings.ToLower(line[:64])
	}
	return sums
}
