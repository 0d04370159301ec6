package remote

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"sync"

	"golang.org/x/crypto/ssh"
)

// HostKeys pins each instance's SSH host key on first use. Keys are in the SSH wire format
// (ssh.PublicKey.Marshal). StoreHostKeys keeps them in the durable state store;
// MemoryHostKeys serves tests and single processes.
type HostKeys interface {
	// Pin records key for instanceID if none is recorded, atomically, and returns the key
	// recorded now: key itself with firstUse true, or the earlier key, which the caller
	// compares with key.
	Pin(ctx context.Context, instanceID string, key []byte) (pinned []byte, firstUse bool, err error)
	// Forget removes instanceID's key, so that the next connection pins anew. Forgetting an
	// instance with no key is no error.
	Forget(ctx context.Context, instanceID string) error
}

// HostKeyChangedError refuses a connection whose host key differs from the one pinned for
// the instance: the instance was rebuilt, or someone is between gpu-mcp and the machine.
type HostKeyChangedError struct {
	InstanceID string
	Pinned     string // fingerprint of the pinned key, "SHA256:..."
	Presented  string // fingerprint of the key the machine presented
}

func (e *HostKeyChangedError) Error() string {
	return fmt.Sprintf("the SSH host key of instance %s changed: pinned %s, the machine now presents %s; "+
		"nothing was sent to it. If the instance was rebuilt (a new image or system disk gives it a new key), "+
		"call again with accept_new_host_key=true (or forget the pinned key); otherwise do not connect, "+
		"someone may be intercepting the connection", e.InstanceID, e.Pinned, e.Presented)
}

// KeyStore is the part of the durable state store (state.Store) that keeps host keys.
type KeyStore interface {
	PinHostKey(ctx context.Context, instanceID string, key []byte) (pinned []byte, firstUse bool, err error)
	ForgetHostKey(ctx context.Context, instanceID string) error
}

// StoreHostKeys pins host keys in the durable state store, so that a pin holds across
// restarts and replicas.
func StoreHostKeys(s KeyStore) HostKeys { return storeKeys{s} }

type storeKeys struct{ s KeyStore }

func (k storeKeys) Pin(ctx context.Context, instanceID string, key []byte) ([]byte, bool, error) {
	return k.s.PinHostKey(ctx, instanceID, key)
}

func (k storeKeys) Forget(ctx context.Context, instanceID string) error {
	return k.s.ForgetHostKey(ctx, instanceID)
}

// MemoryHostKeys is a HostKeys in memory, safe for concurrent use.
type MemoryHostKeys struct {
	mu   sync.Mutex
	keys map[string][]byte
}

// NewMemoryHostKeys returns an empty MemoryHostKeys.
func NewMemoryHostKeys() *MemoryHostKeys { return &MemoryHostKeys{keys: map[string][]byte{}} }

// Pin implements HostKeys.
func (m *MemoryHostKeys) Pin(_ context.Context, instanceID string, key []byte) ([]byte, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if k, ok := m.keys[instanceID]; ok {
		return bytes.Clone(k), false, nil
	}
	m.keys[instanceID] = bytes.Clone(key)
	return bytes.Clone(key), true, nil
}

// Forget implements HostKeys.
func (m *MemoryHostKeys) Forget(_ context.Context, instanceID string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.keys, instanceID)
	return nil
}

// Fingerprint is the SHA256 fingerprint of a key in wire format, as ssh-keygen -l prints it.
func Fingerprint(key []byte) string {
	if pk, err := ssh.ParsePublicKey(key); err == nil {
		return ssh.FingerprintSHA256(pk)
	}
	sum := sha256.Sum256(key)
	return "SHA256:" + base64.RawStdEncoding.EncodeToString(sum[:])
}
