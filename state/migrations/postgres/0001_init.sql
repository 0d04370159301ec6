-- Times are TIMESTAMPTZ (microseconds), JSON is JSONB.

CREATE TABLE secrets (
	name       TEXT PRIMARY KEY,
	value      BYTEA NOT NULL,
	created_at TIMESTAMPTZ NOT NULL
);

CREATE TABLE spent_tokens (
	digest     TEXT PRIMARY KEY,
	expires_at TIMESTAMPTZ NOT NULL,
	spent_at   TIMESTAMPTZ NOT NULL
);
CREATE INDEX spent_tokens_expires ON spent_tokens (expires_at);

CREATE TABLE launches (
	idem_key    TEXT PRIMARY KEY,
	args_hash   TEXT NOT NULL,
	provider    TEXT NOT NULL,
	offer_id    TEXT NOT NULL DEFAULT '',
	image_id    TEXT NOT NULL DEFAULT '',
	vendor_name TEXT NOT NULL DEFAULT '',
	status      TEXT NOT NULL,
	instance_id TEXT NOT NULL DEFAULT '',
	order_id    TEXT NOT NULL DEFAULT '',
	result      JSONB,
	error       TEXT NOT NULL DEFAULT '',
	owner       TEXT NOT NULL DEFAULT '',
	created_at  TIMESTAMPTZ NOT NULL,
	updated_at  TIMESTAMPTZ NOT NULL
);
CREATE INDEX launches_status ON launches (status);
CREATE INDEX launches_instance ON launches (instance_id) WHERE instance_id <> '';

CREATE TABLE leases (
	id            TEXT PRIMARY KEY,
	instance_id   TEXT NOT NULL,
	provider      TEXT NOT NULL,
	kind          TEXT NOT NULL,
	action        TEXT NOT NULL,
	due_at        TIMESTAMPTZ,
	params        JSONB,
	enforcer      TEXT NOT NULL,
	launch_key    TEXT NOT NULL DEFAULT '',
	next_check_at TIMESTAMPTZ NOT NULL,
	attempts      INTEGER NOT NULL DEFAULT 0,
	last_error    TEXT NOT NULL DEFAULT '',
	claim_owner   TEXT NOT NULL DEFAULT '',
	claim_until   TIMESTAMPTZ,
	fired_at      TIMESTAMPTZ,
	outcome       TEXT NOT NULL DEFAULT '',
	created_at    TIMESTAMPTZ NOT NULL,
	updated_at    TIMESTAMPTZ NOT NULL,
	UNIQUE (instance_id, kind)
);
CREATE INDEX leases_due ON leases (next_check_at) WHERE fired_at IS NULL;

CREATE TABLE audit (
	id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	recorded_at  TIMESTAMPTZ NOT NULL,
	tool         TEXT NOT NULL,
	args         JSONB,
	plan         JSONB,
	confirmation TEXT NOT NULL DEFAULT '',
	outcome      TEXT NOT NULL DEFAULT '',
	detail       TEXT NOT NULL DEFAULT '',
	demo         BOOLEAN NOT NULL DEFAULT FALSE,
	replica      TEXT NOT NULL DEFAULT ''
);
CREATE INDEX audit_recorded ON audit (recorded_at);

CREATE TABLE operations (
	id          TEXT PRIMARY KEY,
	kind        TEXT NOT NULL DEFAULT '',
	tool        TEXT NOT NULL DEFAULT '',
	args        JSONB,
	status      TEXT NOT NULL,
	progress    TEXT NOT NULL DEFAULT '',
	result      JSONB,
	error       TEXT NOT NULL DEFAULT '',
	instance_id TEXT NOT NULL DEFAULT '',
	owner       TEXT NOT NULL DEFAULT '',
	heartbeat   TIMESTAMPTZ NOT NULL,
	created_at  TIMESTAMPTZ NOT NULL,
	updated_at  TIMESTAMPTZ NOT NULL
);
CREATE INDEX operations_pending ON operations (heartbeat) WHERE status = 'pending';

CREATE TABLE host_keys (
	instance_id TEXT PRIMARY KEY,
	host_key    BYTEA NOT NULL,
	pinned_at   TIMESTAMPTZ NOT NULL
);

CREATE TABLE jobs (
	id                      TEXT PRIMARY KEY,
	instance_id             TEXT NOT NULL,
	command                 TEXT NOT NULL,
	pid                     INTEGER NOT NULL DEFAULT 0,
	log_path                TEXT NOT NULL DEFAULT '',
	started_at              TIMESTAMPTZ,
	ended_at                TIMESTAMPTZ,
	exit_code               INTEGER,
	stop_instance_when_done BOOLEAN NOT NULL DEFAULT FALSE,
	updated_at              TIMESTAMPTZ NOT NULL
);
CREATE INDEX jobs_instance ON jobs (instance_id);

CREATE TABLE reservations (
	id             TEXT PRIMARY KEY,
	provider       TEXT NOT NULL,
	instance_id    TEXT NOT NULL DEFAULT '',
	launch_key     TEXT NOT NULL DEFAULT '',
	price_per_hour DOUBLE PRECISION NOT NULL DEFAULT 0,
	upfront_cny    DOUBLE PRECISION NOT NULL DEFAULT 0,
	created_at     TIMESTAMPTZ NOT NULL,
	expires_at     TIMESTAMPTZ NOT NULL
);
CREATE INDEX reservations_expires ON reservations (expires_at);

CREATE TABLE commitments (
	id           TEXT PRIMARY KEY,
	committed_at TIMESTAMPTZ NOT NULL,
	provider     TEXT NOT NULL,
	instance_id  TEXT NOT NULL DEFAULT '',
	kind         TEXT NOT NULL,
	cny          DOUBLE PRECISION NOT NULL
);
CREATE INDEX commitments_at ON commitments (committed_at);
