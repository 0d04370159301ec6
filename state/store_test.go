package state_test

import (
	"testing"

	"github.com/gpu-mcp/gpu-mcp/state"
	"github.com/gpu-mcp/gpu-mcp/state/statetest"
)

func TestSQLite(t *testing.T) { statetest.Run(t, statetest.SQLiteURL) }

func TestMemory(t *testing.T) {
	statetest.Run(t, func(testing.TB) string { return state.MemoryURL })
}

func TestPostgres(t *testing.T) {
	statetest.RequirePostgres(t)
	statetest.Run(t, statetest.PostgresURL)
}
