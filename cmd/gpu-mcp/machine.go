package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/rs/zerolog"

	"github.com/gpu-mcp/gpu-mcp/fleet/remote"
	"github.com/gpu-mcp/gpu-mcp/fleet/work"
	"github.com/gpu-mcp/gpu-mcp/providers"
	"github.com/gpu-mcp/gpu-mcp/state"
)

// defaultWorkspace is the workspace under the home directory when GPU_MCP_WORKSPACE is unset:
// a directory of its own, so that an agent never reads or writes the user's other files.
const defaultWorkspace = "gpu-mcp-workspace"

// machineWork sets up the work on instances' machines: the key GPU_MCP_SSH_KEY names (its
// errors never quote it), and the workspace of the copy tools, which is made on first use.
func machineWork(cfg Config, reg *providers.Registry, store state.Store, log zerolog.Logger) (*work.Work, string, error) {
	o := work.Options{Providers: reg, Store: store, Log: log}
	if strings.TrimSpace(cfg.SSHKey) != "" {
		key, err := remote.LoadKey(cfg.SSHKey, []byte(cfg.SSHKeyPassphrase))
		if err != nil {
			return nil, "", err
		}
		o.Key = key
	}
	ws, err := workspace(cfg.Workspace)
	if err != nil {
		return nil, "", err
	}
	w, err := work.New(o)
	if err != nil {
		return nil, "", err
	}
	return w, ws, nil
}

// workspace is GPU_MCP_WORKSPACE as an absolute path ("~/" is the home directory), or
// ~/gpu-mcp-workspace.
func workspace(s string) (string, error) {
	s = strings.TrimSpace(s)
	if s != "" && s != "~" && !strings.HasPrefix(s, "~/") {
		return filepath.Abs(s)
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", errors.Join(fmt.Errorf("GPU_MCP_WORKSPACE: cannot find the home directory; set GPU_MCP_WORKSPACE to an absolute path"), err)
	}
	switch {
	case s == "":
		return filepath.Join(home, defaultWorkspace), nil
	case s == "~":
		return home, nil
	}
	return filepath.Join(home, s[2:]), nil
}
