package tools

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/gpu-mcp/gpu-mcp/fleet/remote"
	"github.com/gpu-mcp/gpu-mcp/providers"
)

// The workspace is the one directory on the gpu-mcp host that the copy tools read from and
// write to (GPU_MCP_WORKSPACE): an agent names files on this host only inside it. A relative
// local_path is under it; an absolute one must lie inside it; ".." that leads out of it, and a
// symbolic link that does, are refused; a download never replaces a file without overwrite.

// maxListedFiles is how many copied files a result lists one by one; FileCount counts all.
const maxListedFiles = 200

// localPath resolves an agent's local_path in the workspace: the path to use, free of
// symbolic links up to its last existing part, with its trailing slash kept (it means "into
// this directory").
func (d *Deps) localPath(p string) (string, error) {
	if d.Workspace == "" {
		return "", invalidf("no workspace is configured for local files (GPU_MCP_WORKSPACE)")
	}
	if strings.TrimSpace(p) == "" {
		return "", argInvalid("local_path", nil, "local_path is required", "give a path relative to the workspace "+d.Workspace)
	}
	if strings.IndexByte(p, 0) >= 0 {
		return "", argInvalid("local_path", nil, "local_path contains a NUL byte", "remove it")
	}
	into := strings.HasSuffix(p, "/") || strings.HasSuffix(p, string(filepath.Separator))
	root, err := filepath.Abs(d.Workspace)
	if err != nil {
		return "", fmt.Errorf("the workspace %s: %w", d.Workspace, err)
	}
	if err := os.MkdirAll(root, 0o700); err != nil {
		return "", fmt.Errorf("cannot create the workspace %s (GPU_MCP_WORKSPACE): %w", root, err)
	}
	realRoot, err := filepath.EvalSymlinks(root)
	if err != nil {
		return "", fmt.Errorf("the workspace %s: %w", root, err)
	}
	full := filepath.Join(root, p)
	if filepath.IsAbs(p) {
		full = filepath.Clean(p)
	}
	if !within(root, full) && !within(realRoot, full) {
		return "", argInvalid("local_path", p, fmt.Sprintf("local_path %q is outside the workspace %s (files on this host are read and written only there)", p, root),
			"give a path relative to the workspace")
	}
	real, err := resolveExisting(full)
	if err != nil {
		return "", fmt.Errorf("local_path %q: %w", p, err)
	}
	if !within(realRoot, real) {
		return "", argInvalid("local_path", p, fmt.Sprintf("local_path %q leads out of the workspace %s through a symbolic link (files on this host are read and written only inside it)", p, root),
			"give a path inside the workspace that no link leads out of")
	}
	if into {
		real += string(filepath.Separator)
	}
	return real, nil
}

// within reports whether p is root or below it.
func within(root, p string) bool {
	rel, err := filepath.Rel(root, p)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)) && !filepath.IsAbs(rel)
}

// resolveExisting resolves the symbolic links of the longest part of p that exists, and puts
// the rest back on.
func resolveExisting(p string) (string, error) {
	rest := ""
	for cur := p; ; {
		real, err := filepath.EvalSymlinks(cur)
		if err == nil {
			return filepath.Join(real, rest), nil
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return "", err
		}
		parent := filepath.Dir(cur)
		if parent == cur {
			return p, nil
		}
		rest = filepath.Join(filepath.Base(cur), rest)
		cur = parent
	}
}

// workspaceRel names a resolved local path for people: relative to the workspace where it can.
func (d *Deps) workspaceRel(p string) string {
	root, err := filepath.EvalSymlinks(d.Workspace)
	if err != nil {
		return p
	}
	if rel, err := filepath.Rel(root, p); err == nil && within(root, p) {
		return rel
	}
	return p
}

// copyProgress reports a copy's bytes as MCP progress.
func copyProgress(ctx context.Context) func(remote.CopyProgress) {
	return func(p remote.CopyProgress) {
		reportProgressAt(ctx, float64(p.Bytes), float64(p.Total), fmt.Sprintf("%s: %d of %d bytes", p.File, p.FileBytes, p.FileSize))
	}
}

// CopiedFile is one file a copy moved.
type CopiedFile struct {
	Path   string `json:"path" jsonschema_description:"where the file landed: on the machine for copy_to_instance, on this host for copy_from_instance"`
	Bytes  int64  `json:"bytes"`
	SHA256 string `json:"sha256" jsonschema_description:"hex"`
}

// CopySummary is what a copy did.
type CopySummary struct {
	InstanceID string       `json:"instance_id"`
	LocalPath  string       `json:"local_path" jsonschema_description:"resolved in the workspace"`
	RemotePath string       `json:"remote_path"`
	Files      []CopiedFile `json:"files" jsonschema_description:"the files copied (the first 200), with their checksums"`
	FileCount  int          `json:"file_count"`
	Dirs       int          `json:"dirs" jsonschema_description:"directories created or found at the destination"`
	Bytes      int64        `json:"bytes"`
	DurationMS int64        `json:"duration_ms"`
	Verified   bool         `json:"verified" jsonschema_description:"true when sha256sum on the machine gave every file the checksum computed here; false when the machine has no sha256sum (a differing checksum is an error, never a false here)"`
	Skipped    []string     `json:"skipped,omitempty" jsonschema_description:"source paths that are neither regular files nor directories (links, devices): not copied"`
}

func summarize(instanceID, local, remotePath string, r remote.CopyResult) CopySummary {
	s := CopySummary{InstanceID: instanceID, LocalPath: local, RemotePath: remotePath, Files: []CopiedFile{}, FileCount: len(r.Files),
		Dirs: r.Dirs, Bytes: r.Bytes, DurationMS: r.Duration.Milliseconds(), Verified: r.Verified, Skipped: r.Skipped}
	for _, f := range r.Files[:min(len(r.Files), maxListedFiles)] {
		s.Files = append(s.Files, CopiedFile{Path: f.Path, Bytes: f.Bytes, SHA256: f.SHA256})
	}
	return s
}

func copyText(verb string, s CopySummary) string {
	var b strings.Builder
	check := "verified with sha256sum on the machine"
	if !s.Verified {
		check = "NOT verified (no sha256sum on the machine)"
	}
	fmt.Fprintf(&b, "%s %s (%d bytes) in %s, %s", verb, count(s.FileCount, "file"), s.Bytes, (time.Duration(s.DurationMS) * time.Millisecond).Round(time.Millisecond), check)
	rows := make([][]string, 0, len(s.Files))
	for _, f := range s.Files[:min(len(s.Files), 20)] {
		rows = append(rows, []string{f.Path, fmt.Sprint(f.Bytes), f.SHA256})
	}
	if len(rows) > 0 {
		b.WriteString("\n" + table([]string{"path", "bytes", "sha256"}, rows))
	}
	if s.FileCount > len(rows) {
		fmt.Fprintf(&b, "\n... and %d more (see files)", s.FileCount-len(rows))
	}
	if len(s.Skipped) > 0 {
		fmt.Fprintf(&b, "\nskipped (not regular files): %s", strings.Join(s.Skipped, ", "))
	}
	return b.String()
}

// CopyToArgs names what to upload and where.
type CopyToArgs struct {
	InstanceID string `json:"instance_id" jsonschema:"minLength=3,maxLength=512" jsonschema_description:"provider-qualified id of a running instance"`
	LocalPath  string `json:"local_path" jsonschema:"minLength=1,maxLength=4096" jsonschema_description:"a file or directory on the gpu-mcp host, relative to its workspace (GPU_MCP_WORKSPACE); absolute paths must lie inside it"`
	RemotePath string `json:"remote_path" jsonschema:"minLength=1,maxLength=4096" jsonschema_description:"where on the machine: relative paths and ~/ are under the login directory; ending in / copies into that directory; missing parents are created, and a file of the same name is replaced"`
	HostKeyChoice
	MachineConfirm
}

// CopyToResult is copy_to_instance's answer.
type CopyToResult struct {
	Outcome
	CopySummary
}

func copyToInstance(d *Deps) Tool {
	return execTool(d, "copy_to_instance", "Copy files to the machine",
		"Copy a file or a directory tree from the gpu-mcp host's workspace to a running instance's machine over SFTP, with progress notifications; the result lists each file's SHA-256, checked on the machine with sha256sum. Files are written under a temporary name and renamed when complete. Refused before anything is sent: a missing path, a copy over 4 GiB, a disk without the room.",
		Hints{Destructive: true, Idempotent: true, OpenWorld: true},
		func(ctx context.Context, in *CopyToArgs) (*prepared[CopyToResult], error) {
			local, err := d.localPath(in.LocalPath)
			if err != nil {
				return nil, err
			}
			files, bytes, err := localSize(local)
			if err != nil {
				return nil, err
			}
			m, err := d.machine(ctx, in.InstanceID)
			if err != nil {
				return nil, err
			}
			plan := machinePlan(m, "copy_to_instance", fmt.Sprintf("Copy %s (%s, %d bytes) from this host to %s on %s instance %s.",
				d.workspaceRel(local), count(files, "file"), bytes, in.RemotePath, m.Instance.Provider, m.Instance.ID), in.HostKeyChoice,
				"files of the same names at the destination are replaced")
			return &prepared[CopyToResult]{plan: plan, run: func(ctx context.Context) (CopyToResult, string, error) {
				if in.AcceptNewHostKey {
					if err := d.acceptNewHostKey(ctx, "copy_to_instance", m); err != nil {
						return CopyToResult{}, "", err
					}
				}
				res, err := d.Work.Pool().Upload(ctx, m.Target, local, in.RemotePath, remote.CopyOptions{OnProgress: copyProgress(ctx)})
				if err != nil {
					return CopyToResult{}, "", err
				}
				out := CopyToResult{CopySummary: summarize(m.Instance.ID, local, in.RemotePath, res)}
				return out, copyText("copied to "+m.Instance.ID+":", out.CopySummary), nil
			}}, nil
		})
}

// localSize counts the regular files under p and their bytes, for the plan.
func localSize(p string) (files int, bytes int64, err error) {
	fi, err := os.Stat(p)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, 0, &providers.Error{Kind: providers.KindNotFound, Provider: providers.Own, Field: "local_path",
			Message: fmt.Sprintf("local path %s does not exist (on the machine that runs gpu-mcp)", p), Remedy: "give a file or directory of the workspace"}
	}
	if err != nil {
		return 0, 0, fmt.Errorf("cannot read the local path %s: %w", p, err)
	}
	if !fi.IsDir() {
		return 1, fi.Size(), nil
	}
	err = filepath.WalkDir(p, func(_ string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if e.Type().IsRegular() {
			if info, err := e.Info(); err == nil {
				files++
				bytes += info.Size()
			}
		}
		return nil
	})
	return files, bytes, err
}

// CopyFromArgs names what to download and where.
type CopyFromArgs struct {
	InstanceID string `json:"instance_id" jsonschema:"minLength=3,maxLength=512" jsonschema_description:"provider-qualified id of a running instance"`
	RemotePath string `json:"remote_path" jsonschema:"minLength=1,maxLength=4096" jsonschema_description:"a file or directory on the machine: relative paths and ~/ are under the login directory"`
	LocalPath  string `json:"local_path" jsonschema:"minLength=1,maxLength=4096" jsonschema_description:"where on the gpu-mcp host, relative to its workspace (GPU_MCP_WORKSPACE); ending in / copies into that directory; missing directories are created"`
	Overwrite  bool   `json:"overwrite,omitempty" jsonschema_description:"replace local files that exist (default false: the copy is refused before anything is written)"`
	HostKeyChoice
}

// CopyFromResult is copy_from_instance's answer.
type CopyFromResult struct {
	CopySummary
	Demo bool `json:"demo,omitempty"`
}

func copyFromInstance(d *Deps) Tool {
	return newTool("copy_from_instance", "Copy files from the machine",
		"Copy a file or a directory tree from a running instance's machine to the gpu-mcp host's workspace over SFTP, with progress notifications; the result lists each file's SHA-256, checked on the machine with sha256sum. Changes nothing on the machine. Existing local files are kept unless overwrite is true; paths outside the workspace are refused.",
		Hints{ReadOnly: true, Idempotent: true, OpenWorld: true}, false,
		func(ctx context.Context, in *CopyFromArgs) (CopyFromResult, string, error) {
			local, err := d.localPath(in.LocalPath)
			if err != nil {
				return CopyFromResult{}, "", err
			}
			m, err := d.connect(ctx, "copy_from_instance", in.InstanceID, in.HostKeyChoice)
			if err != nil {
				return CopyFromResult{}, "", err
			}
			if strings.HasSuffix(local, string(filepath.Separator)) {
				if err := os.MkdirAll(local, 0o755); err != nil {
					return CopyFromResult{}, "", fmt.Errorf("cannot create the local directory %s: %w", local, err)
				}
			}
			res, err := d.Work.Pool().Download(ctx, m.Target, in.RemotePath, local, remote.CopyOptions{OnProgress: copyProgress(ctx), NoOverwrite: !in.Overwrite})
			if err != nil {
				return CopyFromResult{}, "", err
			}
			out := CopyFromResult{CopySummary: summarize(m.Instance.ID, local, in.RemotePath, res), Demo: d.Demo}
			return out, d.textPrefix() + copyText("copied from "+m.Instance.ID+":", out.CopySummary), nil
		})
}
