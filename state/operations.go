package state

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

const operationCols = "id, kind, tool, args, status, progress, result, error, instance_id, owner, heartbeat, created_at, updated_at"

func scanOperation(sc scanner) (Operation, error) {
	var o Operation
	err := sc.Scan(&o.ID, &o.Kind, &o.Tool, js(&o.Args), &o.Status, &o.Progress, js(&o.Result), &o.Error, &o.InstanceID,
		&o.Owner, tm(&o.Heartbeat), tm(&o.CreatedAt), tm(&o.UpdatedAt))
	return o, err
}

func checkOperation(o *Operation) error {
	if !o.Status.valid() {
		return invalid("operation %q has status %q: want pending, done, failed or cancelled", o.ID, o.Status)
	}
	if o.Heartbeat.IsZero() {
		return invalid("operation %q needs a heartbeat", o.ID)
	}
	return nil
}

func (s *sqlStore) operationArgs(o *Operation) ([]any, error) {
	args, err := jsonArg("operation arguments", o.Args)
	if err != nil {
		return nil, err
	}
	result, err := jsonArg("operation result", o.Result)
	if err != nil {
		return nil, err
	}
	return []any{o.ID, o.Kind, o.Tool, args, string(o.Status), o.Progress, result, o.Error, o.InstanceID, o.Owner,
		s.d.ts(o.Heartbeat), s.d.ts(o.CreatedAt), s.d.ts(o.UpdatedAt)}, nil
}

func (s *sqlStore) PutOperation(ctx context.Context, o Operation) (Operation, error) {
	now := s.stamp()
	if o.ID == "" {
		o.ID = newID("op")
	}
	if o.Status == "" {
		o.Status = OperationPending
	}
	if o.Heartbeat.IsZero() {
		o.Heartbeat = now
	}
	o.Heartbeat = norm(o.Heartbeat)
	o.CreatedAt, o.UpdatedAt = now, now
	if err := checkOperation(&o); err != nil {
		return Operation{}, err
	}
	args, err := s.operationArgs(&o)
	if err != nil {
		return Operation{}, err
	}
	_, err = s.exec(ctx, "INSERT INTO operations ("+operationCols+") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)", args...)
	if s.d.conflict(err) {
		return Operation{}, fmt.Errorf("operation %q: %w", o.ID, ErrExists)
	}
	if err != nil {
		return Operation{}, s.fail("put operation "+o.ID, err)
	}
	return o, nil
}

const selectOperation = "SELECT " + operationCols + " FROM operations WHERE id = $1"

const updateOperation = `UPDATE operations SET kind = $2, tool = $3, args = $4, status = $5, progress = $6, result = $7,
	error = $8, instance_id = $9, owner = $10, heartbeat = $11, created_at = $12, updated_at = $13 WHERE id = $1`

func (s *sqlStore) UpdateOperation(ctx context.Context, id string, fn func(*Operation) error) (Operation, error) {
	return modify(ctx, s, "operation", selectOperation, id, scanOperation, fn, func(tx *sql.Tx, old Operation, o *Operation) error {
		o.ID, o.CreatedAt, o.UpdatedAt = old.ID, old.CreatedAt, s.stamp()
		o.Heartbeat = norm(o.Heartbeat)
		if err := checkOperation(o); err != nil {
			return err
		}
		args, err := s.operationArgs(o)
		if err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, updateOperation, args...)
		return err
	})
}

func (s *sqlStore) GetOperation(ctx context.Context, id string) (Operation, error) {
	return get(ctx, s, "operation", selectOperation, id, scanOperation)
}

func (s *sqlStore) ListOperations(ctx context.Context, f OperationFilter) ([]Operation, error) {
	var w where
	w.in("status", strs(f.Statuses))
	if f.InstanceID != "" {
		w.add("instance_id = ?", f.InstanceID)
	}
	if f.Owner != "" {
		w.add("owner = ?", f.Owner)
	}
	return list(ctx, s, "operations", "SELECT "+operationCols+" FROM operations"+w.String()+" ORDER BY created_at, id", w.args, scanOperation)
}

func (s *sqlStore) ClaimStaleOperation(ctx context.Context, owner string, staleBefore time.Time) (*Operation, error) {
	if owner == "" {
		return nil, invalid("adopting an operation needs an owner")
	}
	q := `WITH stale AS MATERIALIZED (SELECT id FROM operations WHERE status = 'pending' AND heartbeat < $1
		ORDER BY heartbeat, id LIMIT 1` + s.d.skipLocked + `)
	UPDATE operations SET owner = $2, heartbeat = $3, updated_at = $3 WHERE id IN (SELECT id FROM stale) RETURNING ` + operationCols
	var out *Operation
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		o, err := scanOperation(tx.QueryRowContext(ctx, q, s.d.ts(staleBefore), owner, s.d.ts(s.stamp())))
		if errors.Is(err, sql.ErrNoRows) {
			out = nil
			return nil
		}
		out = &o
		return err
	})
	if err != nil {
		return nil, s.fail("adopt a stale operation", err)
	}
	return out, nil
}

const jobCols = "id, instance_id, command, pid, log_path, started_at, ended_at, exit_code, stop_instance_when_done, updated_at"

func scanJob(sc scanner) (Job, error) {
	var j Job
	var exit sql.NullInt64
	err := sc.Scan(&j.ID, &j.InstanceID, &j.Command, &j.PID, &j.LogPath, tm(&j.StartedAt), tm(&j.EndedAt), &exit,
		&j.StopInstanceWhenDone, tm(&j.UpdatedAt))
	if exit.Valid {
		code := int(exit.Int64)
		j.ExitCode = &code
	}
	return j, err
}

func (s *sqlStore) jobArgs(j *Job) []any {
	var exit any
	if j.ExitCode != nil {
		exit = *j.ExitCode
	}
	return []any{j.ID, j.InstanceID, j.Command, j.PID, j.LogPath, s.d.ts(j.StartedAt), s.d.ts(j.EndedAt), exit,
		j.StopInstanceWhenDone, s.d.ts(j.UpdatedAt)}
}

func checkJob(j *Job) error {
	if j.InstanceID == "" || j.Command == "" {
		return invalid("a job needs an instance id and a command")
	}
	return nil
}

func (s *sqlStore) PutJob(ctx context.Context, j Job) (Job, error) {
	if j.ID == "" {
		j.ID = newID("job")
	}
	j.StartedAt = norm(j.StartedAt)
	j.EndedAt = norm(j.EndedAt)
	j.UpdatedAt = s.stamp()
	if err := checkJob(&j); err != nil {
		return Job{}, err
	}
	_, err := s.exec(ctx, "INSERT INTO jobs ("+jobCols+") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)", s.jobArgs(&j)...)
	if s.d.conflict(err) {
		return Job{}, fmt.Errorf("job %q: %w", j.ID, ErrExists)
	}
	if err != nil {
		return Job{}, s.fail("put job "+j.ID, err)
	}
	return j, nil
}

const selectJob = "SELECT " + jobCols + " FROM jobs WHERE id = $1"

func (s *sqlStore) UpdateJob(ctx context.Context, id string, fn func(*Job) error) (Job, error) {
	return modify(ctx, s, "job", selectJob, id, scanJob, fn, func(tx *sql.Tx, old Job, j *Job) error {
		j.ID, j.UpdatedAt = old.ID, s.stamp()
		j.StartedAt = norm(j.StartedAt)
		j.EndedAt = norm(j.EndedAt)
		if err := checkJob(j); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `UPDATE jobs SET instance_id = $2, command = $3, pid = $4, log_path = $5, started_at = $6,
			ended_at = $7, exit_code = $8, stop_instance_when_done = $9, updated_at = $10 WHERE id = $1`, s.jobArgs(j)...)
		return err
	})
}

func (s *sqlStore) GetJob(ctx context.Context, id string) (Job, error) {
	return get(ctx, s, "job", selectJob, id, scanJob)
}

func (s *sqlStore) ListJobs(ctx context.Context, instanceID string) ([]Job, error) {
	var w where
	if instanceID != "" {
		w.add("instance_id = ?", instanceID)
	}
	return list(ctx, s, "jobs", "SELECT "+jobCols+" FROM jobs"+w.String()+" ORDER BY started_at, id", w.args, scanJob)
}
