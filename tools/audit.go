package tools

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"
)

// AuditLog receives one JSON line per guarded call. It never holds a token, key or password:
// arguments are recorded without confirm_token, plans carry no secrets, and every configured
// credential is redacted from the line as a last line of defence.
type AuditLog struct {
	mu      sync.Mutex
	f       *os.File
	secrets []string
}

// AuditEntry is one line of the audit log.
type AuditEntry struct {
	Time         time.Time       `json:"time"`
	Tool         string          `json:"tool"`
	Arguments    json.RawMessage `json:"arguments"`
	Plan         *Plan           `json:"plan,omitempty"`
	Confirmation Confirmation    `json:"confirmation"`
	Outcome      Status          `json:"outcome"`
	Detail       string          `json:"detail,omitempty"`
	Demo         bool            `json:"demo,omitempty"`
}

// OpenAuditLog opens (creating it with mode 0600) the file at path for appending. secrets are
// strings that must never appear in it.
func OpenAuditLog(path string, secrets ...string) (*AuditLog, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("audit log: %w", err)
	}
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return nil, fmt.Errorf("audit log: %w", err)
	}
	a := &AuditLog{f: f}
	for _, s := range secrets {
		if len(s) >= 4 {
			a.secrets = append(a.secrets, s)
		}
	}
	return a, nil
}

// Record appends e. A failure to write is returned so that the caller can log it.
func (a *AuditLog) Record(e AuditEntry) error {
	if a == nil {
		return nil
	}
	b, err := json.Marshal(e)
	if err != nil {
		return err
	}
	line := string(b)
	for _, s := range a.secrets {
		line = strings.ReplaceAll(line, s, "[redacted]")
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	_, err = a.f.WriteString(line + "\n")
	return err
}

// Close closes the file.
func (a *AuditLog) Close() error {
	if a == nil {
		return nil
	}
	return a.f.Close()
}
