package state

import (
	"context"
	"time"
)

const auditCols = "id, recorded_at, tool, args, plan, confirmation, outcome, detail, demo, replica"

func scanAudit(sc scanner) (AuditRecord, error) {
	var a AuditRecord
	err := sc.Scan(&a.ID, tm(&a.At), &a.Tool, js(&a.Args), js(&a.Plan), &a.Confirmation, &a.Outcome, &a.Detail, &a.Demo, &a.Replica)
	return a, err
}

func (s *sqlStore) AppendAudit(ctx context.Context, rec AuditRecord) error {
	if rec.Tool == "" {
		return invalid("an audit record needs a tool")
	}
	if rec.At.IsZero() {
		rec.At = s.stamp()
	}
	args, err := jsonArg("audit arguments", rec.Args)
	if err != nil {
		return err
	}
	plan, err := jsonArg("audit plan", rec.Plan)
	if err != nil {
		return err
	}
	_, err = s.exec(ctx, `INSERT INTO audit (recorded_at, tool, args, plan, confirmation, outcome, detail, demo, replica)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
		s.d.ts(rec.At), rec.Tool, args, plan, rec.Confirmation, rec.Outcome, rec.Detail, rec.Demo, rec.Replica)
	if err != nil {
		return s.fail("append audit", err)
	}
	return nil
}

func (s *sqlStore) ListAudit(ctx context.Context, since time.Time, n int) ([]AuditRecord, error) {
	var w where
	if !since.IsZero() {
		w.add("recorded_at >= ?", s.d.ts(since))
	}
	return list(ctx, s, "audit", "SELECT "+auditCols+" FROM audit"+w.String()+" ORDER BY recorded_at, id"+limit(n), w.args, scanAudit)
}
