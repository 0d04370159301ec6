package state

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"
	"time"
)

const leaseCols = "id, instance_id, provider, kind, action, due_at, params, enforcer, launch_key, next_check_at, attempts, last_error, claim_owner, claim_until, fired_at, outcome, created_at, updated_at"

func scanLease(sc scanner) (Lease, error) {
	var l Lease
	err := sc.Scan(&l.ID, &l.InstanceID, &l.Provider, &l.Kind, &l.Action, tm(&l.DueAt), js(&l.Params), &l.Enforcer,
		&l.LaunchKey, tm(&l.NextCheckAt), &l.Attempts, &l.LastError, &l.ClaimOwner, tm(&l.ClaimUntil), tm(&l.FiredAt),
		&l.Outcome, tm(&l.CreatedAt), tm(&l.UpdatedAt))
	return l, err
}

func checkLease(l *Lease) error {
	switch {
	case l.InstanceID == "" || l.Provider == "":
		return invalid("a lease needs an instance id and a provider")
	case !l.Kind.valid():
		return invalid("lease of %s has kind %q: want time, job_end or gpu_idle", l.InstanceID, l.Kind)
	case !l.Action.valid():
		return invalid("lease of %s has action %q: want stop or destroy", l.InstanceID, l.Action)
	case !l.Enforcer.valid():
		return invalid("lease of %s has enforcer %q: want vendor or gpu-mcp", l.InstanceID, l.Enforcer)
	case l.Kind == LeaseTime && l.DueAt.IsZero():
		return invalid("time lease of %s needs a due time", l.InstanceID)
	case l.NextCheckAt.IsZero():
		return invalid("lease of %s needs a next check time", l.InstanceID)
	case l.Attempts < 0:
		return invalid("lease of %s has %d attempts", l.InstanceID, l.Attempts)
	}
	return nil
}

// leaseArgs are a lease's columns in leaseCols order.
func (s *sqlStore) leaseArgs(l *Lease) ([]any, error) {
	params, err := jsonArg("lease params", l.Params)
	if err != nil {
		return nil, err
	}
	return []any{l.ID, l.InstanceID, l.Provider, string(l.Kind), string(l.Action), s.d.ts(l.DueAt), params, string(l.Enforcer),
		l.LaunchKey, s.d.ts(l.NextCheckAt), l.Attempts, l.LastError, l.ClaimOwner, s.d.ts(l.ClaimUntil), s.d.ts(l.FiredAt),
		l.Outcome, s.d.ts(l.CreatedAt), s.d.ts(l.UpdatedAt)}, nil
}

const putLease = "INSERT INTO leases (" + leaseCols + ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)" +
	` ON CONFLICT (instance_id, kind) DO UPDATE SET provider = excluded.provider, action = excluded.action,
	due_at = excluded.due_at, params = excluded.params, enforcer = excluded.enforcer, launch_key = excluded.launch_key,
	next_check_at = excluded.next_check_at, attempts = excluded.attempts, last_error = excluded.last_error,
	claim_owner = '', claim_until = NULL, fired_at = excluded.fired_at, outcome = excluded.outcome,
	updated_at = excluded.updated_at RETURNING ` + leaseCols

func (s *sqlStore) PutLease(ctx context.Context, l Lease) (Lease, error) {
	now := s.stamp()
	if l.ID == "" {
		l.ID = newID("lease")
	}
	if l.NextCheckAt.IsZero() {
		l.NextCheckAt = l.DueAt
		if l.Kind != LeaseTime {
			l.NextCheckAt = now
		}
	}
	l.ClaimOwner, l.ClaimUntil = "", time.Time{}
	l.CreatedAt, l.UpdatedAt = now, now
	if err := checkLease(&l); err != nil {
		return Lease{}, err
	}
	args, err := s.leaseArgs(&l)
	if err != nil {
		return Lease{}, err
	}
	var out Lease
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		out, err = scanLease(tx.QueryRowContext(ctx, putLease, args...))
		return err
	})
	if s.d.conflict(err) {
		return Lease{}, fmt.Errorf("lease id %q belongs to another instance or kind: %w", l.ID, ErrExists)
	}
	if err != nil {
		return Lease{}, s.fail("put lease of "+l.InstanceID, err)
	}
	return out, nil
}

const selectLease = "SELECT " + leaseCols + " FROM leases WHERE id = $1"

func (s *sqlStore) GetLease(ctx context.Context, id string) (Lease, error) {
	return get(ctx, s, "lease", selectLease, id, scanLease)
}

func (s *sqlStore) ListLeases(ctx context.Context, f LeaseFilter) ([]Lease, error) {
	var w where
	if f.InstanceID != "" {
		w.add("instance_id = ?", f.InstanceID)
	}
	if f.Kind != "" {
		w.add("kind = ?", string(f.Kind))
	}
	if f.Pending {
		w.add("fired_at IS NULL")
	}
	return list(ctx, s, "leases", "SELECT "+leaseCols+" FROM leases"+w.String()+" ORDER BY next_check_at, id", w.args, scanLease)
}

func (s *sqlStore) DeleteLease(ctx context.Context, id string) error {
	if _, err := s.exec(ctx, "DELETE FROM leases WHERE id = $1", id); err != nil {
		return s.fail("delete lease "+id, err)
	}
	return nil
}

func (s *sqlStore) ClaimDue(ctx context.Context, owner string, now time.Time, claimFor time.Duration, n int) ([]Lease, error) {
	if owner == "" || claimFor <= 0 || n <= 0 {
		return nil, invalid("a claim needs an owner, a positive duration and a positive limit")
	}
	// The CTE picks the due rows once; on PostgreSQL it locks them, skipping rows another
	// claimer has locked, and re-checks a row another claimer updated meanwhile, so a row is
	// in one claimer's answer only.
	q := `WITH due AS MATERIALIZED (SELECT id FROM leases
		WHERE fired_at IS NULL AND next_check_at <= $1 AND (claim_until IS NULL OR claim_until <= $1)
		ORDER BY next_check_at, id LIMIT $2` + s.d.skipLocked + `)
	UPDATE leases SET claim_owner = $3, claim_until = $4, updated_at = $5 WHERE id IN (SELECT id FROM due) RETURNING ` + leaseCols
	var out []Lease
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		out = out[:0]
		rows, err := tx.QueryContext(ctx, q, s.d.ts(now), n, owner, s.d.ts(now.Add(claimFor)), s.d.ts(s.stamp()))
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			l, err := scanLease(rows)
			if err != nil {
				return err
			}
			out = append(out, l)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, s.fail("claim due leases", err)
	}
	slices.SortFunc(out, func(a, b Lease) int {
		if c := a.NextCheckAt.Compare(b.NextCheckAt); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return out, nil
}

const updateLease = `UPDATE leases SET provider = $2, action = $3, due_at = $4, params = $5, enforcer = $6, launch_key = $7,
	next_check_at = $8, attempts = $9, last_error = $10, claim_owner = $11, claim_until = $12, fired_at = $13,
	outcome = $14, updated_at = $15 WHERE id = $1`

func (s *sqlStore) ReleaseLease(ctx context.Context, id, owner string, fn func(*Lease)) (Lease, error) {
	if owner == "" {
		return Lease{}, invalid("releasing a lease needs its owner")
	}
	claimed := func(l *Lease) error {
		if l.ClaimOwner != owner {
			holder := "nobody"
			if l.ClaimOwner != "" {
				holder = l.ClaimOwner
			}
			return fmt.Errorf("lease %s of %s is claimed by %s, not %s: %w", l.ID, l.InstanceID, holder, owner, ErrNotOwner)
		}
		fn(l)
		return nil
	}
	return modify(ctx, s, "lease", selectLease, id, scanLease, claimed, func(tx *sql.Tx, old Lease, l *Lease) error {
		l.ID, l.InstanceID, l.Kind, l.CreatedAt = old.ID, old.InstanceID, old.Kind, old.CreatedAt
		l.ClaimOwner, l.ClaimUntil, l.UpdatedAt = "", time.Time{}, s.stamp()
		l.DueAt, l.NextCheckAt, l.FiredAt = norm(l.DueAt), norm(l.NextCheckAt), norm(l.FiredAt)
		if err := checkLease(l); err != nil {
			return err
		}
		params, err := jsonArg("lease params", l.Params)
		if err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, updateLease, l.ID, l.Provider, string(l.Action), s.d.ts(l.DueAt), params, string(l.Enforcer),
			l.LaunchKey, s.d.ts(l.NextCheckAt), l.Attempts, l.LastError, l.ClaimOwner, s.d.ts(l.ClaimUntil), s.d.ts(l.FiredAt),
			l.Outcome, s.d.ts(l.UpdatedAt))
		return err
	})
}
