package work

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/gpu-mcp/gpu-mcp/fleet/remote"
	"github.com/gpu-mcp/gpu-mcp/providers"
	"github.com/gpu-mcp/gpu-mcp/state"
)

// JobSpec is a job to start.
type JobSpec struct {
	Command string
	Dir     string // working directory on the machine; empty: the login directory
	// StopInstanceWhenDone puts a LeaseJobEnd lease on the instance: it is stopped once this
	// job, and every other job started with the same wish, has ended.
	StopInstanceWhenDone bool
	// StopWhenIdle, when set, puts a LeaseGPUIdle lease on the instance.
	StopWhenIdle *IdlePolicy
}

// StartedJob is a job started on a machine, its record in the store, and the leases put with it.
type StartedJob struct {
	Job    remote.Job
	Record state.Job
	Leases []state.Lease
}

// StartJob starts spec.Command detached on the machine (remote.StartJob: it survives the
// connection, gpu-mcp and its client), then records it in the store with the leases it asks
// for. A job whose promises could not be recorded is stopped again, so that nothing runs that
// was meant to stop the instance and would not: the error says so.
func (w *Work) StartJob(ctx context.Context, m Machine, spec JobSpec) (StartedJob, error) {
	if spec.StopWhenIdle != nil {
		if err := spec.StopWhenIdle.check(); err != nil {
			return StartedJob{}, err
		}
	}
	job, err := w.pool.StartJob(ctx, m.Target, remote.JobSpec{Command: spec.Command, Dir: spec.Dir})
	if err != nil {
		return StartedJob{}, err
	}
	out := StartedJob{Job: job}
	out.Record, out.Leases, err = w.recordJob(ctx, m, job, spec)
	if err != nil {
		if _, serr := w.pool.StopJob(context.WithoutCancel(ctx), m.Target, job.ID, 0); serr != nil {
			return out, fmt.Errorf("job %s started on instance %s, but gpu-mcp could not record it (%w), and stopping it failed too (%v): "+
				"stop it with stop_job, or watch it and the instance yourself", job.ID, m.Instance.ID, err, serr)
		}
		return out, fmt.Errorf("job %s was started on instance %s and stopped again: gpu-mcp could not record it and its auto-stop (%w); nothing runs", job.ID, m.Instance.ID, err)
	}
	w.o.Log.Info().Str("instance", m.Instance.ID).Str("job", job.ID).Int("pid", job.PID).
		Bool("stop_instance_when_done", spec.StopInstanceWhenDone).Bool("stop_when_idle", spec.StopWhenIdle != nil).Msg("job started")
	return out, nil
}

func (w *Work) recordJob(ctx context.Context, m Machine, job remote.Job, spec JobSpec) (state.Job, []state.Lease, error) {
	ctx = context.WithoutCancel(ctx) // the job runs: its record must be kept even if the client left
	started := job.StartedAt
	if started.IsZero() {
		started = w.o.Now()
	}
	rec, err := w.o.Store.PutJob(ctx, state.Job{ID: job.ID, InstanceID: m.Instance.ID, Command: spec.Command, PID: job.PID,
		LogPath: job.Log, StartedAt: started, StopInstanceWhenDone: spec.StopInstanceWhenDone})
	if err != nil {
		return state.Job{}, nil, err
	}
	var leases []state.Lease
	if spec.StopInstanceWhenDone {
		l, err := w.putLease(ctx, m.Instance, state.LeaseJobEnd, jobEndParams{JobID: job.ID}, "")
		if err != nil {
			return rec, nil, err
		}
		leases = append(leases, l)
	}
	if spec.StopWhenIdle != nil {
		l, err := w.StopWhenIdle(ctx, m.Instance, *spec.StopWhenIdle, "")
		if err != nil {
			return rec, leases, err
		}
		leases = append(leases, l)
	}
	return rec, leases, nil
}

// JobState is a job as gpu-mcp knows it: from the machine while its instance runs, else from
// the record gpu-mcp kept (Recorded).
type JobState struct {
	remote.JobStatus
	// Recorded: the machine could not be asked (the instance does not run); what follows is
	// gpu-mcp's record, as last seen.
	Recorded bool
	// StopInstanceWhenDone: the job was started with that wish.
	StopInstanceWhenDone bool
}

// JobStatus reads the job's state from the machine and brings the store's record up to date
// (the end and exit code, once known). A job gpu-mcp did not start is reported as well; it
// has no record.
func (w *Work) JobStatus(ctx context.Context, m Machine, id string) (JobState, error) {
	st, err := w.pool.JobStatus(ctx, m.Target, id)
	if err != nil {
		return JobState{}, err
	}
	rec, _ := w.noteJob(ctx, m.Instance.ID, st)
	return JobState{JobStatus: st, StopInstanceWhenDone: rec.StopInstanceWhenDone}, nil
}

// RecordedJob is what the store recorded of job id on the instance, for when its machine
// cannot be asked.
func (w *Work) RecordedJob(ctx context.Context, instanceID, id string) (JobState, error) {
	rec, err := w.o.Store.GetJob(ctx, id)
	if errors.Is(err, state.ErrNotFound) || err == nil && rec.InstanceID != instanceID {
		return JobState{}, fmt.Errorf("gpu-mcp has no record of a job %s on instance %s", id, instanceID)
	}
	if err != nil {
		return JobState{}, err
	}
	st := remote.JobStatus{ID: rec.ID, PID: rec.PID, Log: rec.LogPath, StartedAt: rec.StartedAt, EndedAt: rec.EndedAt, State: remote.JobRunning}
	switch {
	case rec.ExitCode != nil:
		st.State, st.ExitCode = remote.JobExited, *rec.ExitCode
		st.Runtime = rec.EndedAt.Sub(rec.StartedAt)
	case !rec.EndedAt.IsZero():
		st.State = remote.JobLost
	}
	return JobState{JobStatus: st, Recorded: true, StopInstanceWhenDone: rec.StopInstanceWhenDone}, nil
}

// StopJob ends a running job (remote.StopJob) and records its end.
func (w *Work) StopJob(ctx context.Context, m Machine, id string, grace time.Duration) (JobState, error) {
	st, err := w.pool.StopJob(ctx, m.Target, id, grace)
	if err != nil {
		return JobState{}, err
	}
	rec, _ := w.noteJob(ctx, m.Instance.ID, st)
	return JobState{JobStatus: st, StopInstanceWhenDone: rec.StopInstanceWhenDone}, nil
}

// noteJob records the end of a job that gpu-mcp started, once the machine reports one. A
// job without a record (started by hand, or by a gpu-mcp on another store) is left alone.
func (w *Work) noteJob(ctx context.Context, instanceID string, st remote.JobStatus) (state.Job, error) {
	rec, err := w.o.Store.GetJob(ctx, st.ID)
	if err != nil || rec.InstanceID != instanceID || st.State == remote.JobRunning || !rec.EndedAt.IsZero() {
		return rec, err
	}
	return w.o.Store.UpdateJob(context.WithoutCancel(ctx), st.ID, func(j *state.Job) error { ended(j, st, w.o.Now()); return nil })
}

// ended records in j the end st reports; now stands in for an end time the machine lost.
func ended(j *state.Job, st remote.JobStatus, now time.Time) {
	j.EndedAt = st.EndedAt
	if j.EndedAt.IsZero() {
		j.EndedAt = now
	}
	if st.State == remote.JobExited {
		code := st.ExitCode
		j.ExitCode = &code
	}
}

// notRunning reports whether err says that the instance does not run (or is gone), and its state.
func notRunning(err error) (*NotRunningError, bool) {
	var nr *NotRunningError
	if errors.As(err, &nr) {
		return nr, true
	}
	if providers.KindOf(err) == providers.KindNotFound {
		return &NotRunningError{State: "gone"}, true
	}
	return nil, false
}
