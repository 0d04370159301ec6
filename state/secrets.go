package state

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"time"
)

func (s *sqlStore) Secret(ctx context.Context, name string, gen func() ([]byte, error)) ([]byte, error) {
	if name == "" {
		return nil, invalid("a secret needs a name")
	}
	read := func(db *sql.DB) ([]byte, error) {
		var v []byte
		err := db.QueryRowContext(ctx, "SELECT value FROM secrets WHERE name = $1", name).Scan(&v)
		return v, err
	}
	v, err := read(s.r)
	if err == nil {
		return v, nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return nil, s.fail("secret "+strconv.Quote(name), err)
	}
	fresh, err := gen()
	if err != nil {
		return nil, fmt.Errorf("state store: generating the secret %q: %w", name, err)
	}
	if len(fresh) == 0 {
		return nil, invalid("the generator of the secret %q returned nothing", name)
	}
	if _, err := s.exec(ctx, "INSERT INTO secrets (name, value, created_at) VALUES ($1, $2, $3) ON CONFLICT (name) DO NOTHING",
		name, fresh, s.d.ts(s.stamp())); err != nil {
		return nil, s.fail("secret "+strconv.Quote(name), err)
	}
	// Whoever inserted first, the stored value is the secret.
	if v, err = read(s.w); err != nil {
		return nil, s.fail("secret "+strconv.Quote(name), err)
	}
	return v, nil
}

const spendToken = "INSERT INTO spent_tokens (digest, expires_at, spent_at) VALUES ($1, $2, $3) ON CONFLICT (digest) DO NOTHING"

func (s *sqlStore) SpendToken(ctx context.Context, digest string, expires time.Time) (bool, error) {
	if digest == "" || expires.IsZero() {
		return false, invalid("a spent token needs a digest and an expiry")
	}
	res, err := s.exec(ctx, spendToken, digest, s.d.ts(expires), s.d.ts(s.stamp()))
	if err != nil {
		return false, s.fail("spend token", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, s.fail("spend token", err)
	}
	return n == 1, nil
}

func (s *sqlStore) PruneTokens(ctx context.Context, now time.Time) (int64, error) {
	res, err := s.exec(ctx, "DELETE FROM spent_tokens WHERE expires_at <= $1", s.d.ts(now))
	if err != nil {
		return 0, s.fail("prune tokens", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, s.fail("prune tokens", err)
	}
	return n, nil
}

func (s *sqlStore) PinHostKey(ctx context.Context, instanceID string, key []byte) ([]byte, bool, error) {
	if instanceID == "" || len(key) == 0 {
		return nil, false, invalid("pinning a host key needs an instance id and a key")
	}
	res, err := s.exec(ctx, "INSERT INTO host_keys (instance_id, host_key, pinned_at) VALUES ($1, $2, $3) ON CONFLICT (instance_id) DO NOTHING",
		instanceID, key, s.d.ts(s.stamp()))
	if err != nil {
		return nil, false, s.fail("pin host key of "+instanceID, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return nil, false, s.fail("pin host key of "+instanceID, err)
	} else if n == 1 {
		return bytes.Clone(key), true, nil
	}
	var pinned []byte
	if err := s.w.QueryRowContext(ctx, "SELECT host_key FROM host_keys WHERE instance_id = $1", instanceID).Scan(&pinned); err != nil {
		return nil, false, s.fail("pin host key of "+instanceID, err)
	}
	return pinned, false, nil
}

func (s *sqlStore) ForgetHostKey(ctx context.Context, instanceID string) error {
	if _, err := s.exec(ctx, "DELETE FROM host_keys WHERE instance_id = $1", instanceID); err != nil {
		return s.fail("forget host key of "+instanceID, err)
	}
	return nil
}
