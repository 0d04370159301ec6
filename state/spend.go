package state

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

const reservationCols = "id, provider, instance_id, launch_key, price_per_hour, upfront_cny, created_at, expires_at"

func scanReservation(sc scanner) (Reservation, error) {
	var r Reservation
	err := sc.Scan(&r.ID, &r.Provider, &r.InstanceID, &r.LaunchKey, &r.PricePerHour, &r.UpfrontCNY, tm(&r.CreatedAt), tm(&r.ExpiresAt))
	return r, err
}

const commitmentCols = "id, committed_at, provider, instance_id, kind, cny"

func scanCommitment(sc scanner) (Commitment, error) {
	var c Commitment
	err := sc.Scan(&c.ID, tm(&c.At), &c.Provider, &c.InstanceID, &c.Kind, &c.CNY)
	return c, err
}

func (s *sqlStore) Reserve(ctx context.Context, r Reservation, commit *Commitment, check func(Snapshot) error) error {
	switch {
	case r.ID == "" || r.Provider == "" || r.ExpiresAt.IsZero():
		return invalid("a reservation needs an id, a provider and an expiry")
	case r.PricePerHour < 0 || r.UpfrontCNY < 0:
		return invalid("reservation %q has a negative price", r.ID)
	case commit != nil && (commit.Provider == "" || !commit.Kind.valid() || commit.CNY < 0):
		return invalid("a commitment needs a provider, a kind (launch, start, renew or lease_extend) and a CNY amount of 0 or more")
	}
	var c Commitment
	if commit != nil {
		c = *commit
		if c.ID == "" {
			c.ID = newID("commit")
		}
	}
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		if s.d.serializeReserve != "" {
			if _, err := tx.ExecContext(ctx, s.d.serializeReserve); err != nil {
				return err
			}
		}
		now := s.stamp()
		snap := Snapshot{Now: now}
		if _, err := tx.ExecContext(ctx, "DELETE FROM reservations WHERE expires_at <= $1", s.d.ts(now)); err != nil {
			return err
		}
		// Commitments are kept CommitmentRetention, long past the spending window, for a
		// person looking back; older ones go, so the table does not grow without end.
		if _, err := tx.ExecContext(ctx, "DELETE FROM commitments WHERE committed_at < $1", s.d.ts(now.Add(-CommitmentRetention))); err != nil {
			return err
		}
		var err error
		if snap.Reservations, err = txList(ctx, tx, "SELECT "+reservationCols+" FROM reservations ORDER BY created_at, id", nil, scanReservation); err != nil {
			return err
		}
		if snap.Commitments, err = txList(ctx, tx, "SELECT "+commitmentCols+" FROM commitments WHERE committed_at >= $1 ORDER BY committed_at, id",
			[]any{s.d.ts(now.Add(-SpendWindow))}, scanCommitment); err != nil {
			return err
		}
		if err := check(snap); err != nil {
			return callbackError{err}
		}
		created := r.CreatedAt
		if created.IsZero() {
			created = now
		}
		if _, err := tx.ExecContext(ctx, "INSERT INTO reservations ("+reservationCols+") VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
			r.ID, r.Provider, r.InstanceID, r.LaunchKey, r.PricePerHour, r.UpfrontCNY, s.d.ts(created), s.d.ts(r.ExpiresAt)); err != nil {
			return err
		}
		if commit == nil {
			return nil
		}
		at := c.At
		if at.IsZero() {
			at = now
		}
		_, err = tx.ExecContext(ctx, "INSERT INTO commitments ("+commitmentCols+") VALUES ($1, $2, $3, $4, $5, $6)",
			c.ID, s.d.ts(at), c.Provider, c.InstanceID, string(c.Kind), c.CNY)
		return err
	})
	var cb callbackError
	if errors.As(err, &cb) {
		return cb.err
	}
	if s.d.conflict(err) {
		return fmt.Errorf("reservation %q or its commitment: %w", r.ID, ErrExists)
	}
	if err != nil {
		return s.fail("reserve "+r.ID, err)
	}
	return nil
}

// txList is list inside a transaction.
func txList[T any](ctx context.Context, tx *sql.Tx, q string, args []any, scan func(scanner) (T, error)) ([]T, error) {
	rows, err := tx.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

func (s *sqlStore) AttachReservation(ctx context.Context, id, instanceID string) error {
	res, err := s.exec(ctx, "UPDATE reservations SET instance_id = $2 WHERE id = $1", id, instanceID)
	if err != nil {
		return s.fail("attach reservation "+id, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return s.fail("attach reservation "+id, err)
	} else if n == 0 {
		return fmt.Errorf("reservation %q: %w", id, ErrNotFound)
	}
	return nil
}

func (s *sqlStore) ReleaseReservation(ctx context.Context, id string) error {
	if _, err := s.exec(ctx, "DELETE FROM reservations WHERE id = $1", id); err != nil {
		return s.fail("release reservation "+id, err)
	}
	return nil
}

func (s *sqlStore) ActiveReservations(ctx context.Context, now time.Time) ([]Reservation, error) {
	var w where
	if !now.IsZero() {
		w.add("expires_at > ?", s.d.ts(now))
	}
	return list(ctx, s, "reservations", "SELECT "+reservationCols+" FROM reservations"+w.String()+" ORDER BY created_at, id", w.args, scanReservation)
}

func (s *sqlStore) Committed(ctx context.Context, since time.Time) (float64, error) {
	var w where
	if !since.IsZero() {
		w.add("committed_at >= ?", s.d.ts(since))
	}
	var sum float64
	if err := s.r.QueryRowContext(ctx, "SELECT COALESCE(SUM(cny), 0) FROM commitments"+w.String(), w.args...).Scan(&sum); err != nil {
		return 0, s.fail("committed spend", err)
	}
	return sum, nil
}

func (s *sqlStore) CancelCommitment(ctx context.Context, id string) error {
	if _, err := s.exec(ctx, "DELETE FROM commitments WHERE id = $1", id); err != nil {
		return s.fail("cancel commitment "+id, err)
	}
	return nil
}
