package tools

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/gpu-mcp/gpu-mcp/state"
)

// AuditLog records every guarded call in the state store's audit trail, which every replica
// on the store shares, and, when a file is given (GPU_MCP_AUDIT_LOG), as one JSON line there
// too. It never holds a token, key or password: arguments are recorded without
// confirm_token, plans carry no secrets, and every configured credential is redacted from
// both copies as a last line of defence.
type AuditLog struct {
	store   state.Store
	replica string
	log     zerolog.Logger
	secrets []string

	mu sync.Mutex
	f  *os.File
}

// AuditOptions say where the audit goes.
type AuditOptions struct {
	// Store receives every entry (required).
	Store state.Store
	// Replica names this process in the store's records.
	Replica string
	// Path, when set, is a file that receives a JSON line per entry, created with mode 0600.
	Path string
	// Secrets are strings that must never appear in the audit.
	Secrets []string
	// Log is where a failure to write the file copy is reported.
	Log zerolog.Logger
}

// auditWriteTimeout bounds one write of the audit trail: a call whose client went away still
// gets its outcome recorded, but a database that does not answer cannot hold it forever.
const auditWriteTimeout = 30 * time.Second

// AuditEntry is one entry of the audit trail.
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

// NewAuditLog returns the audit of o.Store, with the file copy at o.Path opened for appending
// when it is set.
func NewAuditLog(o AuditOptions) (*AuditLog, error) {
	if o.Store == nil {
		return nil, errors.New("audit log: a state store is required")
	}
	a := &AuditLog{store: o.Store, replica: o.Replica, log: o.Log}
	for _, s := range o.Secrets {
		if len(s) >= 4 {
			a.secrets = append(a.secrets, s)
		}
	}
	if o.Path == "" {
		return a, nil
	}
	f, err := os.OpenFile(o.Path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("audit log: %w", err)
	}
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return nil, fmt.Errorf("audit log: %w", err)
	}
	a.f = f
	return a, nil
}

// Record adds e to the store's trail, and writes it to the file copy. It returns the store's
// error, which decides (the trail is the record); a failure of the file copy is logged.
func (a *AuditLog) Record(ctx context.Context, e AuditEntry) error {
	if a == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), auditWriteTimeout)
	defer cancel()
	rec := state.AuditRecord{At: e.Time, Tool: e.Tool, Args: a.redactJSON(e.Arguments), Confirmation: string(e.Confirmation),
		Outcome: string(e.Outcome), Detail: a.redact(e.Detail), Demo: e.Demo, Replica: a.replica}
	if e.Plan != nil {
		plan, err := json.Marshal(e.Plan)
		if err != nil {
			return err
		}
		rec.Plan = a.redactJSON(plan)
	}
	err := a.store.AppendAudit(ctx, rec)
	if ferr := a.writeFile(e); ferr != nil {
		a.log.Error().Err(ferr).Str("tool", e.Tool).Str("outcome", string(e.Outcome)).Msg("audit log file (GPU_MCP_AUDIT_LOG) write failed")
	}
	if err != nil {
		return fmt.Errorf("audit trail: %w", err)
	}
	return nil
}

func (a *AuditLog) writeFile(e AuditEntry) error {
	if a.f == nil {
		return nil
	}
	b, err := json.Marshal(e)
	if err != nil {
		return err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	_, err = a.f.WriteString(a.redact(string(b)) + "\n")
	return err
}

func (a *AuditLog) redact(s string) string {
	for _, sec := range a.secrets {
		s = strings.ReplaceAll(s, sec, "[redacted]")
	}
	return s
}

// redactJSON redacts raw; a secret that spanned an escape sequence could leave it invalid
// JSON, which is then recorded as a string that says so.
func (a *AuditLog) redactJSON(raw json.RawMessage) json.RawMessage {
	if len(raw) == 0 {
		return nil
	}
	out := json.RawMessage(a.redact(string(raw)))
	if !json.Valid(out) {
		return json.RawMessage(`"[redacted]"`)
	}
	return out
}

// Close closes the file copy; the store is its owner's to close.
func (a *AuditLog) Close() error {
	if a == nil || a.f == nil {
		return nil
	}
	return a.f.Close()
}
