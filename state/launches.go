package state

import (
	"context"
	"database/sql"
	"strconv"
)

const launchCols = "idem_key, args_hash, provider, offer_id, image_id, vendor_name, status, instance_id, order_id, result, error, owner, created_at, updated_at"

func scanLaunch(sc scanner) (Launch, error) {
	var l Launch
	err := sc.Scan(&l.Key, &l.ArgsHash, &l.Provider, &l.OfferID, &l.ImageID, &l.VendorName, &l.Status,
		&l.InstanceID, &l.OrderID, js(&l.Result), &l.Error, &l.Owner, tm(&l.CreatedAt), tm(&l.UpdatedAt))
	return l, err
}

func checkLaunch(l *Launch) error {
	switch {
	case l.Key == "":
		return invalid("a launch needs an idempotency key")
	case l.ArgsHash == "" || l.Provider == "":
		return invalid("launch %q needs an arguments hash and a provider", l.Key)
	case !l.Status.valid():
		return invalid("launch %q has status %q: want intent, ordered, created, ready, failed, cleaned_up or unknown", l.Key, l.Status)
	}
	return nil
}

const insertLaunch = "INSERT INTO launches (" + launchCols + ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) ON CONFLICT (idem_key) DO NOTHING"

func (s *sqlStore) CreateLaunch(ctx context.Context, l Launch) (*Launch, error) {
	if l.Status == "" {
		l.Status = LaunchIntent
	}
	if err := checkLaunch(&l); err != nil {
		return nil, err
	}
	result, err := jsonArg("launch result", l.Result)
	if err != nil {
		return nil, err
	}
	now := s.d.ts(s.stamp())
	res, err := s.exec(ctx, insertLaunch, l.Key, l.ArgsHash, l.Provider, l.OfferID, l.ImageID, l.VendorName, string(l.Status),
		l.InstanceID, l.OrderID, result, l.Error, l.Owner, now, now)
	if err != nil {
		return nil, s.fail("create launch "+strconv.Quote(l.Key), err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return nil, s.fail("create launch "+strconv.Quote(l.Key), err)
	} else if n == 1 {
		return nil, nil
	}
	// The key was taken (its insert has committed: ours waited for it), and launches are
	// never deleted, so the record is there to read.
	existing, err := get(ctx, s, "launch", "SELECT "+launchCols+" FROM launches WHERE idem_key = $1", l.Key, scanLaunch)
	if err != nil {
		return nil, err
	}
	return &existing, nil
}

const selectLaunch = "SELECT " + launchCols + " FROM launches WHERE idem_key = $1"

const updateLaunch = `UPDATE launches SET args_hash = $2, provider = $3, offer_id = $4, image_id = $5, vendor_name = $6,
	status = $7, instance_id = $8, order_id = $9, result = $10, error = $11, owner = $12, updated_at = $13 WHERE idem_key = $1`

func (s *sqlStore) UpdateLaunch(ctx context.Context, key string, fn func(*Launch) error) (Launch, error) {
	return modify(ctx, s, "launch", selectLaunch, key, scanLaunch, fn, func(tx *sql.Tx, old Launch, l *Launch) error {
		l.Key, l.CreatedAt, l.UpdatedAt = old.Key, old.CreatedAt, s.stamp()
		if err := checkLaunch(l); err != nil {
			return err
		}
		result, err := jsonArg("launch result", l.Result)
		if err != nil {
			return err
		}
		_, err = s.txExec(ctx, tx, updateLaunch, l.Key, l.ArgsHash, l.Provider, l.OfferID, l.ImageID, l.VendorName, string(l.Status),
			l.InstanceID, l.OrderID, result, l.Error, l.Owner, s.d.ts(l.UpdatedAt))
		return err
	})
}

func (s *sqlStore) GetLaunch(ctx context.Context, key string) (Launch, error) {
	return get(ctx, s, "launch", selectLaunch, key, scanLaunch)
}

func (s *sqlStore) ListLaunches(ctx context.Context, f LaunchFilter) ([]Launch, error) {
	var w where
	w.in("status", strs(f.Statuses))
	if f.InstanceID != "" {
		w.add("instance_id = ?", f.InstanceID)
	}
	if f.VendorName != "" {
		w.add("vendor_name = ?", f.VendorName)
	}
	return list(ctx, s, "launches", "SELECT "+launchCols+" FROM launches"+w.String()+" ORDER BY created_at, idem_key"+limit(f.Limit), w.args, scanLaunch)
}
