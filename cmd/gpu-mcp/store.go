package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/gpu-mcp/gpu-mcp/state"
)

// storeOpenTimeout bounds opening the store, migrations included: a database that does not
// answer must stop the start, not hang it.
const storeOpenTimeout = time.Minute

// openStore opens the state store the configuration names (GPU_MCP_STATE_URL or --state;
// empty: the default file). Under --demo an unnamed store is an in-memory one, so that trying
// gpu-mcp never touches the real store; a named one is used as it is.
func openStore(cfg Config) (state.Store, error) {
	u := cfg.StateURL
	if cfg.Demo && strings.TrimSpace(u) == "" {
		u = state.MemoryURL
	}
	ctx, cancel := context.WithTimeout(context.Background(), storeOpenTimeout)
	defer cancel()
	s, err := state.Open(ctx, u, state.Options{})
	if err != nil {
		return nil, err
	}
	return s, nil
}

// replicaID names this process among the replicas that share a store, in the audit trail and
// in the claims it makes: host, process id and a random part (a pid is reused).
func replicaID() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "localhost"
	}
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return fmt.Sprintf("%s-%d-%s", host, os.Getpid(), hex.EncodeToString(b))
}
