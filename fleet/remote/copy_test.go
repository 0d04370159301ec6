package remote

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/gpu-mcp/gpu-mcp/providers/machinetest"
)

type treeFile struct {
	data []byte
	mode fs.FileMode
}

// writeTree makes files (slash-separated names) under dir.
func writeTree(t *testing.T, dir string, files map[string]treeFile) {
	t.Helper()
	for name, f := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, f.data, f.mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, f.mode); err != nil {
			t.Fatal(err)
		}
	}
}

// readTree lists the regular files under dir with their contents and modes.
func readTree(t *testing.T, dir string) map[string]treeFile {
	t.Helper()
	got := map[string]treeFile{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		info, _ := d.Info()
		rel, _ := filepath.Rel(dir, p)
		got[filepath.ToSlash(rel)] = treeFile{b, info.Mode().Perm()}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func sameTree(t *testing.T, what string, got, want map[string]treeFile) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d files, want %d: %v", what, len(got), len(want), keys(got))
	}
	for name, w := range want {
		g, ok := got[name]
		if !ok || !bytes.Equal(g.data, w.data) || g.mode != w.mode {
			t.Fatalf("%s: %s is %v (%d bytes, mode %v), want %d bytes, mode %v", what, name, ok, len(g.data), g.mode, len(w.data), w.mode)
		}
	}
}

func keys(m map[string]treeFile) []string {
	var k []string
	for n := range m {
		k = append(k, n)
	}
	sort.Strings(k)
	return k
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func TestUploadAndDownloadATree(t *testing.T) {
	r := newRig(t, machinetest.Options{})
	src := t.TempDir()
	tree := map[string]treeFile{
		"train.py":                {[]byte("print('hi')\n"), 0o644},
		"run.sh":                  {[]byte("#!/bin/sh\necho run\n"), 0o755},
		"secret.env":              {[]byte("TOKEN=x\n"), 0o600},
		"data/big.bin":            {randomBytes(3<<20 + 17), 0o644},
		"data/empty":              {nil, 0o644},
		"data/deep/er/ünï cødé.t": {[]byte("unicode name"), 0o640},
		"-dash starts":            {[]byte("a name sha256sum could take for an option"), 0o644},
	}
	writeTree(t, src, tree)
	if err := os.Symlink("/etc/passwd", filepath.Join(src, "link")); err != nil {
		t.Fatal(err)
	}
	var progress []CopyProgress
	res, err := r.pool.Upload(ctxT(t), r.tgt, src, "proj", CopyOptions{OnProgress: func(p CopyProgress) { progress = append(progress, p) }})
	if err != nil {
		t.Fatal(err)
	}
	sameTree(t, "on the machine", readTree(t, filepath.Join(r.m.Dir(), "proj")), tree)
	var total int64
	for _, f := range tree {
		total += int64(len(f.data))
	}
	if !res.Verified || res.Bytes != total || len(res.Files) != len(tree) || len(res.Skipped) != 1 || res.Skipped[0] != filepath.Join(src, "link") {
		t.Fatalf("result: verified %v bytes %d files %d skipped %v", res.Verified, res.Bytes, len(res.Files), res.Skipped)
	}
	for _, f := range res.Files {
		rel := strings.TrimPrefix(f.Path, "proj/")
		if want := tree[rel]; f.SHA256 != sha(want.data) || f.Bytes != int64(len(want.data)) {
			t.Fatalf("%s: sum %s bytes %d", f.Path, f.SHA256, f.Bytes)
		}
	}
	if len(progress) == 0 || progress[len(progress)-1].Bytes != total || progress[len(progress)-1].Total != total {
		t.Fatalf("progress %+v", progress)
	}
	if leftovers, _ := filepath.Glob(filepath.Join(r.m.Dir(), "proj", "*", ".*.tmp")); len(leftovers) > 0 {
		t.Fatalf("temporary files left: %v", leftovers)
	}

	dst := filepath.Join(t.TempDir(), "back")
	res, err = r.pool.Download(ctxT(t), r.tgt, "~/proj", dst, CopyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	sameTree(t, "downloaded", readTree(t, dst), tree)
	if !res.Verified || res.Bytes != total {
		t.Fatalf("download: verified %v bytes %d", res.Verified, res.Bytes)
	}
	// Into an existing directory, with a trailing slash; uploads merge into what is there.
	into := t.TempDir()
	if _, err := r.pool.Download(ctxT(t), r.tgt, "proj/run.sh", into+"/", CopyOptions{}); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(into, "run.sh")); string(b) != "#!/bin/sh\necho run\n" {
		t.Fatalf("into a directory: %q", b)
	}
}

func TestUploadAFile(t *testing.T) {
	r := newRig(t, machinetest.Options{})
	local := filepath.Join(t.TempDir(), "model.pt")
	data := randomBytes(100_000)
	if err := os.WriteFile(local, data, 0o640); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ remote, lands string }{
		{"model.pt", "model.pt"},
		{"ckpt/new/model-copy.pt", "ckpt/new/model-copy.pt"}, // parents are made
		{"ckpt/", "ckpt/model.pt"},                           // into a directory
		{"/workspace/abs.pt", "workspace/abs.pt"},            // the machine's "/" is its sandbox
		{r.m.Dir() + "/home.pt", "home.pt"},                  // the login directory's absolute path
	} {
		res, err := r.pool.Upload(ctxT(t), r.tgt, local, c.remote, CopyOptions{})
		if err != nil {
			t.Fatalf("%s: %v", c.remote, err)
		}
		b, err := os.ReadFile(filepath.Join(r.m.Dir(), c.lands))
		if err != nil || !bytes.Equal(b, data) || len(res.Files) != 1 || res.Files[0].SHA256 != sha(data) {
			t.Fatalf("%s: landed %d bytes at %s (%v), result %+v", c.remote, len(b), c.lands, err, res.Files)
		}
		fi, _ := os.Stat(filepath.Join(r.m.Dir(), c.lands))
		if fi.Mode().Perm() != 0o640 {
			t.Fatalf("%s: mode %v", c.remote, fi.Mode())
		}
	}
	// Overwriting replaces the whole file.
	if err := os.WriteFile(local, []byte("short"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := r.pool.Upload(ctxT(t), r.tgt, local, "model.pt", CopyOptions{}); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(r.m.Dir(), "model.pt")); string(b) != "short" {
		t.Fatalf("overwritten: %q", b)
	}
}

// A download that would replace a local file is refused with NoOverwrite, and one that would
// write through a local symbolic link always, before anything is written.
func TestDownloadRefusesOverwriteAndLocalLinks(t *testing.T) {
	r := newRig(t, machinetest.Options{})
	writeTree(t, filepath.Join(r.m.Dir(), "out"), map[string]treeFile{"a.txt": {[]byte("new a"), 0o644}, "sub/b.txt": {[]byte("new b"), 0o644}})
	dst := t.TempDir()
	writeTree(t, dst, map[string]treeFile{"out/sub/b.txt": {[]byte("old b"), 0o644}})
	_, err := r.pool.Download(ctxT(t), r.tgt, "out", filepath.Join(dst, "out"), CopyOptions{NoOverwrite: true})
	if err == nil || !strings.Contains(err.Error(), "b.txt exists; nothing was downloaded") {
		t.Fatalf("overwrite refused: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dst, "out", "a.txt")); !os.IsNotExist(err) {
		t.Fatalf("a refused download wrote a.txt: %v", err)
	}
	if _, err := r.pool.Download(ctxT(t), r.tgt, "out", filepath.Join(dst, "out"), CopyOptions{}); err != nil {
		t.Fatalf("without NoOverwrite: %v", err)
	}
	if b, _ := os.ReadFile(filepath.Join(dst, "out", "sub", "b.txt")); string(b) != "new b" {
		t.Fatalf("replaced: %q", b)
	}

	outside := t.TempDir()
	linked := t.TempDir()
	if err := os.Symlink(outside, filepath.Join(linked, "sub")); err != nil {
		t.Fatal(err)
	}
	_, err = r.pool.Download(ctxT(t), r.tgt, "out", linked, CopyOptions{})
	if err == nil || !strings.Contains(err.Error(), "is a symbolic link") {
		t.Fatalf("through a link: %v", err)
	}
	if ents, _ := os.ReadDir(outside); len(ents) != 0 {
		t.Fatalf("written through the link: %v", ents)
	}
}

func TestCopyErrors(t *testing.T) {
	r := newRig(t, machinetest.Options{})
	dir := t.TempDir()
	file := filepath.Join(dir, "f.txt")
	if err := os.WriteFile(file, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(r.m.Dir(), "adir"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(r.m.Dir(), "afile"), []byte("y"), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx := ctxT(t)
	for _, c := range []struct {
		name string
		err  func() error
		want string
	}{
		{"missing local", func() error {
			_, err := r.pool.Upload(ctx, r.tgt, filepath.Join(dir, "nope"), "x", CopyOptions{})
			return err
		}, "does not exist (on the machine that runs gpu-mcp)"},
		{"file onto a remote directory", func() error {
			_, err := r.pool.Upload(ctx, r.tgt, file, "adir", CopyOptions{})
			return err
		}, "is a directory; give the file's full path, or end the path with /"},
		{"directory onto a remote file", func() error {
			_, err := r.pool.Upload(ctx, r.tgt, dir, "afile", CopyOptions{})
			return err
		}, "is a file"},
		{"into a missing remote directory", func() error {
			_, err := r.pool.Upload(ctx, r.tgt, file, "nodir/", CopyOptions{})
			return err
		}, "no such file or directory on instance test:inst-1"},
		{"over the size limit", func() error {
			big := filepath.Join(t.TempDir(), "big")
			_ = os.WriteFile(big, make([]byte, 2000), 0o644)
			_, err := r.pool.Upload(ctx, r.tgt, big, "limited-big", CopyOptions{MaxBytes: 1000})
			return err
		}, "holds 2000 bytes, more than the 1000 a copy may move"},
		{"missing remote", func() error {
			_, err := r.pool.Download(ctx, r.tgt, "no/such/file", filepath.Join(dir, "out"), CopyOptions{})
			return err
		}, "cannot read no/such/file: no such file or directory on instance test:inst-1"},
		{"remote file onto a local directory", func() error {
			_, err := r.pool.Download(ctx, r.tgt, "afile", dir, CopyOptions{})
			return err
		}, "local path " + dir + " is a directory"},
		{"remote over the size limit", func() error {
			_ = os.WriteFile(filepath.Join(r.m.Dir(), "big"), make([]byte, 2000), 0o644)
			_, err := r.pool.Download(ctx, r.tgt, "big", filepath.Join(dir, "out2"), CopyOptions{MaxBytes: 1000})
			return err
		}, "holds 2000 bytes, more than the 1000"},
		{"other users' home", func() error {
			_, err := r.pool.Upload(ctx, r.tgt, file, "~bob/x", CopyOptions{})
			return err
		}, "only the login user's ~ is understood"},
	} {
		err := c.err()
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v\nwant it to say %q", c.name, err, c.want)
		}
	}
	if _, err := os.Stat(filepath.Join(r.m.Dir(), "limited-big")); !os.IsNotExist(err) {
		t.Fatalf("a copy over the limit wrote: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "out2")); !os.IsNotExist(err) {
		t.Fatalf("a download over the limit wrote: %v", err)
	}
}

func TestUploadToAFullDisk(t *testing.T) {
	for _, terse := range []bool{false, true} {
		name := "says no space left"
		if terse {
			name = "says only failure, as OpenSSH does"
		}
		t.Run(name, func(t *testing.T) {
			r := newRig(t, machinetest.Options{DiskQuota: 1 << 20, TerseSFTPErrors: terse})
			local := filepath.Join(t.TempDir(), "big.bin")
			if err := os.WriteFile(local, randomBytes(2<<20), 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := r.pool.Upload(ctxT(t), r.tgt, local, "big.bin", CopyOptions{})
			var full *DiskFullError
			if !errors.As(err, &full) || full.Written != 0 || full.Needed != 2<<20 || full.Free != 1<<20 {
				t.Fatalf("before sending: %v (%+v)", err, full)
			}
			if !strings.Contains(err.Error(), "too full") || !strings.Contains(err.Error(), "nothing was written") {
				t.Fatalf("text: %v", err)
			}
			// The disk fills while the upload runs (another program writes).
			r.m.SetDiskQuota(8 << 20)
			filled := false
			_, err = r.pool.Upload(ctxT(t), r.tgt, local, "big.bin", CopyOptions{OnProgress: func(CopyProgress) {
				if !filled {
					filled = true
					r.m.SetDiskQuota(1 << 20)
				}
			}})
			if !errors.As(err, &full) || full.Written <= 0 || full.Path != "big.bin" {
				t.Fatalf("while sending: %v (%+v)", err, full)
			}
			if !strings.Contains(err.Error(), "disk of instance test:inst-1 is full") {
				t.Fatalf("text: %v", err)
			}
			ents, _ := os.ReadDir(r.m.Dir())
			if len(ents) != 0 {
				t.Fatalf("left on the machine: %v", ents)
			}
		})
	}
}

func TestChecksumMismatchIsAnError(t *testing.T) {
	r := newRig(t, machinetest.Options{})
	src := t.TempDir()
	writeTree(t, src, map[string]treeFile{"a": {[]byte("first"), 0o644}, "b": {[]byte("second"), 0o644}})
	tampered := false
	_, err := r.pool.Upload(ctxT(t), r.tgt, src, "up", CopyOptions{OnProgress: func(p CopyProgress) {
		if p.File == "up/b" && !tampered {
			tampered = true // "a" is done: change it on the machine behind the copy's back
			_ = os.WriteFile(filepath.Join(r.m.Dir(), "up", "a"), []byte("FIRST"), 0o644)
		}
	}})
	var bad *ChecksumError
	if !errors.As(err, &bad) || bad.Path != "up/a" || bad.Local != sha([]byte("first")) || bad.Remote != sha([]byte("FIRST")) {
		t.Fatalf("%v", err)
	}
}

func TestCopyWithoutSha256sumIsUnverified(t *testing.T) {
	r := newRig(t, machinetest.Options{})
	local := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(local, []byte("data"), 0o644); err != nil {
		t.Fatal(err)
	}
	res, err := r.pool.Upload(ctxT(t), r.tgt, local, "f", CopyOptions{SkipVerify: true})
	if err != nil || res.Verified {
		t.Fatalf("%+v %v", res, err)
	}
	if st := r.m.Stats(); st.Commands != 0 {
		t.Fatalf("SkipVerify ran %d commands", st.Commands)
	}
	// A file sha256sum cannot see (here: sftp's / is the sandbox, the shell's is the host's).
	res, err = r.pool.Upload(ctxT(t), r.tgt, local, "/nonexistent-on-host/f", CopyOptions{})
	if err != nil || res.Verified {
		t.Fatalf("%+v %v", res, err)
	}
}

func TestSafeName(t *testing.T) {
	for _, bad := range []string{"", ".", "..", "a/b", "../x", "a\x00b"} {
		if safeName(bad) == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	for _, good := range []string{"a", ".hidden", "a..b", "ünï cødé", "-x"} {
		if err := safeName(good); err != nil {
			t.Errorf("%q refused: %v", good, err)
		}
	}
}

func TestParseSHA256Sums(t *testing.T) {
	h := strings.Repeat("ab", 32)
	out := h + "  plain\n\\" + h + "  new\\nline\\\\x\n" + h + " *binary\nsha256sum: gone: No such file or directory\n"
	got := parseSHA256Sums([]byte(out))
	want := map[string]string{"plain": h, "new\nline\\x": h, "binary": h}
	if len(got) != len(want) {
		t.Fatalf("%q", got)
	}
	for k, v := range want {
		if got[k] != v {
			t.Fatalf("%q: %q", k, got)
		}
	}
}
