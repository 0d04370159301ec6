// Package remote works on the machine behind an instance over SSH, for the tools that act on
// it: it runs commands (Run), copies files and directories over SFTP (Upload, Download),
// starts and follows detached jobs (StartJob, JobStatus, JobLogs, StopJob) and reads the
// GPUs' state (GPUStatus). All of them are methods of a Pool.
//
// Contract, for every function here:
//
//   - Connections are reused: a Pool keeps one SSH connection per instance id, address and
//     user, shared by concurrent calls, kept alive, closed when idle, dialed again when dead.
//   - Host keys are pinned on first use through HostKeys, per instance. A key that differs
//     from the pinned one is refused with a *HostKeyChangedError; Pool.AcceptNewHostKey
//     forgets the pin, for an instance the user says was rebuilt.
//   - Credentials (the vendor's password, a key from GPU_MCP_SSH_KEY, its passphrase) are used
//     to log in and appear in no error text and no log line. Target's String, GoString and
//     JSON leave them out.
//   - Commands and paths go to the machine as given, as the argument of one SSH exec request
//     or SFTP operation, quoted for the machine's shell where this package wraps them; no local
//     shell ever sees them.
//   - What the machine sends back is untrusted data: text in results and errors has passed
//     Sanitize (no control characters or terminal escapes, valid UTF-8), and sizes are capped.
//
// The machine must run a POSIX shell as the user's login shell (sh, bash, dash, zsh, ksh), and
// the usual tools of a Linux image: setsid for jobs, sha256sum for verified copies (without it
// copies are reported unverified), nvidia-smi for GPUStatus.
package remote

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"unicode/utf8"

	"golang.org/x/crypto/ssh"
)

// Target is the machine of one instance, with connection details as the vendor gives them.
// Password, Signer or both log in (the key is tried first).
type Target struct {
	InstanceID string     `json:"instance_id"`
	Host       string     `json:"host"`
	Port       int        `json:"port"`
	User       string     `json:"user"`
	Password   string     `json:"-"`
	Signer     ssh.Signer `json:"-"`
}

// String names the target without its credentials.
func (t Target) String() string {
	return fmt.Sprintf("instance %s (%s@%s)", t.InstanceID, t.User, t.addr())
}

// GoString is String, so that %#v leaves the credentials out too.
func (t Target) GoString() string { return t.String() }

func (t Target) addr() string { return net.JoinHostPort(t.Host, strconv.Itoa(t.Port)) }

func (t Target) check() error {
	var missing []string
	if t.InstanceID == "" {
		missing = append(missing, "instance id")
	}
	if t.Host == "" {
		missing = append(missing, "host")
	}
	if t.Port <= 0 || t.Port > 65535 {
		missing = append(missing, "port (1-65535)")
	}
	if t.User == "" {
		missing = append(missing, "user")
	}
	if t.Password == "" && t.Signer == nil {
		missing = append(missing, "password or key (the vendor's password, or GPU_MCP_SSH_KEY)")
	}
	if len(missing) > 0 {
		return fmt.Errorf("cannot connect to instance %q: the connection details lack %s", t.InstanceID, strings.Join(missing, ", "))
	}
	return nil
}

// ErrPoolClosed is returned by a Pool after Close.
var ErrPoolClosed = errors.New("remote: pool closed")

// quote makes s one word for a POSIX shell, exactly: s in single quotes, each single quote
// in s written as quote, backslash, quote, quote (close, escaped quote, reopen).
func quote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// checkArg refuses what cannot reach the machine intact: no shell word or path holds a NUL.
func checkArg(what, s string) error {
	if s == "" {
		return fmt.Errorf("%s is empty", what)
	}
	if strings.IndexByte(s, 0) >= 0 {
		return fmt.Errorf("%s contains a NUL byte, which no command or path on the machine can hold", what)
	}
	return nil
}

// Sanitize makes text from the machine safe to hand on as data: invalid UTF-8 becomes U+FFFD,
// terminal escape sequences (CSI, OSC and the like) are removed, and so are control
// characters other than newline and tab, and the Unicode controls that reorder or hide text
// (bidirectional overrides and isolates, zero-width characters). "\r\n" becomes "\n", and a
// lone "\r" (a progress bar redrawing its line) becomes "\n".
func Sanitize(b []byte) string { return sanitize(b, true) }

// sanitizeLine is Sanitize for one line: line breaks are removed too.
func sanitizeLine(b []byte) string { return sanitize(b, false) }

func sanitize(b []byte, newlines bool) string {
	var sb strings.Builder
	sb.Grow(len(b))
	for i := 0; i < len(b); {
		c := b[i]
		switch {
		case c == 0x1b:
			i = skipEscape(b, i)
			continue
		case c == '\r':
			if newlines && (i+1 >= len(b) || b[i+1] != '\n') {
				sb.WriteByte('\n')
			}
		case c == '\n':
			if newlines {
				sb.WriteByte('\n')
			}
		case c == '\t':
			sb.WriteByte('\t')
		case c < 0x20 || c == 0x7f:
		case c < utf8.RuneSelf:
			sb.WriteByte(c)
		default:
			r, n := utf8.DecodeRune(b[i:])
			switch {
			case r == utf8.RuneError && n == 1:
				sb.WriteRune(utf8.RuneError)
			case r == 0x9b: // C1 CSI
				i = skipCSI(b, i+n)
				continue
			case hiddenRune(r):
			default:
				sb.WriteRune(r)
			}
			i += n
			continue
		}
		i++
	}
	return sb.String()
}

// hiddenRune reports C1 controls and the format characters that reorder or hide text.
func hiddenRune(r rune) bool {
	switch {
	case r >= 0x80 && r <= 0x9f:
		return true
	case r >= 0x200b && r <= 0x200f, r >= 0x202a && r <= 0x202e, r >= 0x2066 && r <= 0x2069:
		return true
	case r == 0xfeff, r == 0x061c:
		return true
	}
	return false
}

// skipEscape returns the index after the escape sequence that starts at b[i] == ESC.
func skipEscape(b []byte, i int) int {
	i++
	if i >= len(b) {
		return i
	}
	switch b[i] {
	case '[':
		return skipCSI(b, i+1)
	case ']', 'P', '_', '^', 'X': // OSC, DCS, APC, PM, SOS: up to BEL or ST (ESC \)
		for i++; i < len(b); i++ {
			if b[i] == 0x07 {
				return i + 1
			}
			if b[i] == 0x1b && i+1 < len(b) && b[i+1] == '\\' {
				return i + 2
			}
		}
		return i
	}
	for i < len(b) && b[i] >= 0x20 && b[i] <= 0x2f { // intermediate bytes, then the final one
		i++
	}
	return min(i+1, len(b))
}

// skipCSI returns the index after a control sequence's parameters and final byte.
func skipCSI(b []byte, i int) int {
	for i < len(b) {
		c := b[i]
		i++
		if c >= 0x40 && c <= 0x7e {
			break
		}
	}
	return i
}

// clip shortens text from the machine for an error message.
func clip(b []byte, n int) string {
	s := strings.TrimSpace(Sanitize(b))
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}
