-- Times are TEXT in the fixed-width form 2006-01-02T15:04:05.000000Z (UTC), so that
-- comparing the text compares the times. JSON is TEXT; booleans are 0 or 1.

CREATE TABLE secrets (
	name       TEXT PRIMARY KEY,
	value      BLOB NOT NULL,
	created_at TEXT NOT NULL
);

CREATE TABLE spent_tokens (
	digest     TEXT PRIMARY KEY,
	expires_at TEXT NOT NULL,
	spent_at   TEXT NOT NULL
) WITHOUT ROWID;
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
	result      TEXT,
	error       TEXT NOT NULL DEFAULT '',
	owner       TEXT NOT NULL DEFAULT '',
	created_at  TEXT NOT NULL,
	updated_at  TEXT NOT NULL
);
CREATE INDEX launches_status ON launches (status);
CREATE INDEX launches_instance ON launches (instance_id) WHERE instance_id <> '';

CREATE TABLE leases (
	id            TEXT PRIMARY KEY,
	instance_id   TEXT NOT NULL,
	provider      TEXT NOT NULL,
	kind          TEXT NOT NULL,
	action        TEXT NOT NULL,
	due_at        TEXT,
	params        TEXT,
	enforcer      TEXT NOT NULL,
	launch_key    TEXT NOT NULL DEFAULT '',
	next_check_at TEXT NOT NULL,
	attempts      INTEGER NOT NULL DEFAULT 0,
	last_error    TEXT NOT NULL DEFAULT '',
	claim_owner   TEXT NOT NULL DEFAULT '',
	claim_until   TEXT,
	fired_at      TEXT,
	outcome       TEXT NOT NULL DEFAULT '',
	created_at    TEXT NOT NULL,
	updated_at    TEXT NOT NULL,
	UNIQUE (instance_id, kind)
);
CREATE INDEX leases_due ON leases (next_check_at) WHERE fired_at IS NULL;

CREATE TABLE audit (
	id           INTEGER PRIMARY KEY AUTOINCREMENT,
	recorded_at  TEXT NOT NULL,
	tool         TEXT NOT NULL,
	args         TEXT,
	plan         TEXT,
	confirmation TEXT NOT NULL DEFAULT '',
	outcome      TEXT NOT NULL DEFAULT '',
	detail       TEXT NOT NULL DEFAULT '',
	demo         INTEGER NOT NULL DEFAULT 0,
	replica      TEXT NOT NULL DEFAULT ''
);
CREATE INDEX audit_recorded ON audit (recorded_at);

CREATE TABLE operations (
	id          TEXT PRIMARY KEY,
	kind        TEXT NOT NULL DEFAULT '',
	tool        TEXT NOT NULL DEFAULT '',
	args        TEXT,
	status      TEXT NOT NULL,
	progress    TEXT NOT NULL DEFAULT '',
	result      TEXT,
	error       TEXT NOT NULL DEFAULT '',
	instance_id TEXT NOT NULL DEFAULT '',
	owner       TEXT NOT NULL DEFAULT '',
	heartbeat   TEXT NOT NULL,
	created_at  TEXT NOT NULL,
	updated_at  TEXT NOT NULL
);
CREATE INDEX operations_pending ON operations (heartbeat) WHERE status = 'pending';

CREATE TABLE host_keys (
	instance_id TEXT PRIMARY KEY,
	host_key    BLOB NOT NULL,
	pinned_at   TEXT NOT NULL
);

CREATE TABLE jobs (
	id                      TEXT PRIMARY KEY,
	instance_id             TEXT NOT NULL,
	command                 TEXT NOT NULL,
	pid                     INTEGER NOT NULL DEFAULT 0,
	log_path                TEXT NOT NULL DEFAULT '',
	started_at              TEXT,
	ended_at                TEXT,
	exit_code               INTEGER,
	stop_instance_when_done INTEGER NOT NULL DEFAULT 0,
	updated_at              TEXT NOT NULL
);
CREATE INDEX jobs_instance ON jobs (instance_id);

CREATE TABLE reservations (
	id             TEXT PRIMARY KEY,
	provider       TEXT NOT NULL,
	instance_id    TEXT NOT NULL DEFAULT '',
	launch_key     TEXT NOT NULL DEFAULT '',
	price_per_hour REAL NOT NULL DEFAULT 0,
	upfront_cny    REAL NOT NULL DEFAULT 0,
	created_at     TEXT NOT NULL,
	expires_at     TEXT NOT NULL
);
CREATE INDEX reservations_expires ON reservations (expires_at);

CREATE TABLE commitments (
	id           TEXT PRIMARY KEY,
	committed_at TEXT NOT NULL,
	provider     TEXT NOT NULL,
	instance_id  TEXT NOT NULL DEFAULT '',
	kind         TEXT NOT NULL,
	cny          REAL NOT NULL
);
CREATE INDEX commitments_at ON commitments (committed_at);
