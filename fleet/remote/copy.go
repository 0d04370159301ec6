package remote

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/pkg/sftp"
)

// Copy defaults, for CopyOptions left zero.
const (
	DefaultMaxCopyBytes     = 4 << 30
	DefaultProgressInterval = 250 * time.Millisecond
)

// CopyOptions tune Upload and Download.
type CopyOptions struct {
	MaxBytes int64 // the most bytes one copy moves, all files together; DefaultMaxCopyBytes when 0
	// OnProgress, if set, is called at most once per ProgressInterval and when each file is
	// done, never concurrently, never after the copy returns.
	OnProgress       func(CopyProgress)
	ProgressInterval time.Duration // DefaultProgressInterval when 0
	SkipVerify       bool          // do not run sha256sum on the machine afterwards
	// NoOverwrite makes Download refuse, before it writes anything, when a file it would
	// write exists already on this side.
	NoOverwrite bool
}

// CopyProgress is how far a copy has come.
type CopyProgress struct {
	File      string // the file being copied, as its destination path
	FileBytes int64  // of it, copied so far
	FileSize  int64
	Bytes     int64 // of all files, copied so far
	Total     int64
}

// FileSum is one file copied.
type FileSum struct {
	Path   string // the destination path
	Bytes  int64
	SHA256 string // hex, of the bytes that were sent or received
}

// CopyResult is what a copy did.
type CopyResult struct {
	Files    []FileSum
	Dirs     int      // directories created or found on the destination side
	Skipped  []string // source paths that are neither regular files nor directories (links, devices), not copied
	Bytes    int64
	Duration time.Duration
	// Verified: sha256sum on the machine gave every file the checksum computed here. False
	// when SkipVerify was set, when the machine has no sha256sum, or when it could not read a
	// file there; a checksum that differs is an error, never a false here.
	Verified bool
}

// DiskFullError reports that the machine's disk ran out of space during an upload (or, with
// Written 0, that it lacked the space before anything was sent).
type DiskFullError struct {
	InstanceID string
	Path       string // the file being written, or the destination when nothing was
	Written    int64  // bytes of this upload on the disk before it filled
	Needed     int64  // bytes the whole upload needs
	Free       int64  // free bytes the machine reported, -1 when unknown
}

func (e *DiskFullError) Error() string {
	free := "unknown"
	if e.Free >= 0 {
		free = strconv.FormatInt(e.Free, 10) + " bytes"
	}
	if e.Written == 0 {
		return fmt.Sprintf("the disk of instance %s is too full for this upload: it needs %d bytes at %s, %s are free; "+
			"nothing was written. Free space on the machine (delete files with run_command) or copy less",
			e.InstanceID, e.Needed, e.Path, free)
	}
	return fmt.Sprintf("the disk of instance %s is full: %d of %d bytes were written before it ran out of space "+
		"while writing %s (free now: %s); the file being written was removed, files completed before it stay. "+
		"Free space on the machine (delete files with run_command) or copy less",
		e.InstanceID, e.Written, e.Needed, e.Path, free)
}

// ChecksumError reports a file whose SHA-256 on the machine differs from the one computed
// from the bytes gpu-mcp sent or received.
type ChecksumError struct {
	Path, Local, Remote string
}

func (e *ChecksumError) Error() string {
	return fmt.Sprintf("checksum mismatch for %s: %s here, %s on the machine; the copy is corrupt, copy it again", e.Path, e.Local, e.Remote)
}

// entry is one file or directory of a tree to copy: rel is its slash-separated path under
// the tree's root ("" for the root itself).
type entry struct {
	rel  string
	dir  bool
	mode fs.FileMode
	size int64
}

// Upload copies localPath, a file or a directory tree, to remotePath on the machine over
// SFTP. A relative remotePath, or one starting with "~/", is under the login directory. A
// file goes to remotePath itself, or into it when remotePath ends with "/"; a directory
// becomes remotePath (its contents merged into an existing directory), or goes into it
// when remotePath ends with "/". Missing parent directories are created. Permission bits are
// kept; links and special files are skipped (CopyResult.Skipped).
//
// The size of the whole tree is checked against MaxBytes before anything is sent, and the
// free space on the machine's disk where it reports it; each file is written under a
// temporary name in its directory and renamed when complete, so that a failed copy leaves
// no partial file under the final name. Then sha256sum on the machine checks every file.
func (p *Pool) Upload(ctx context.Context, t Target, localPath, remotePath string, o CopyOptions) (CopyResult, error) {
	start := time.Now()
	o = o.withDefaults()
	if err := checkArg("the local path", localPath); err != nil {
		return CopyResult{}, err
	}
	remotePath, err := remoteArg(remotePath)
	if err != nil {
		return CopyResult{}, err
	}
	entries, skipped, total, err := localTree(localPath)
	if err != nil {
		return CopyResult{}, err
	}
	if total > o.MaxBytes {
		return CopyResult{}, fmt.Errorf("%s holds %d bytes, more than the %d a copy may move", localPath, total, o.MaxBytes)
	}
	sc, release, err := p.sftpClient(ctx, t)
	if err != nil {
		return CopyResult{}, err
	}
	defer release()

	dest, err := uploadDest(sc, t, localPath, remotePath, entries[0].dir)
	if err != nil {
		return CopyResult{}, err
	}
	if free := freeSpace(sc, path.Dir(path.Clean(dest))); free >= 0 && free < total {
		return CopyResult{}, &DiskFullError{InstanceID: t.InstanceID, Path: dest, Needed: total, Free: free}
	}

	res := CopyResult{Skipped: skipped}
	prog := newProgress(o, total)
	for _, e := range entries {
		if err := ctx.Err(); err != nil {
			return res, err
		}
		to := joinRemote(dest, e.rel)
		if e.dir {
			if err := mkdirRemote(sc, t, to, e.mode); err != nil {
				return res, err
			}
			res.Dirs++
			continue
		}
		if e.rel == "" { // a single file: its parents; a tree's come before its files
			if err := sc.MkdirAll(path.Dir(to)); err != nil {
				return res, remoteErr(t, "cannot create the directory of "+to, err)
			}
		}
		from := filepath.Join(localPath, filepath.FromSlash(e.rel))
		sum, n, err := uploadFile(ctx, sc, from, to, e.mode, o.MaxBytes-res.Bytes, func(done int64) {
			prog.update(to, done, e.size, res.Bytes+done)
		})
		if err != nil {
			return res, uploadError(sc, t, to, res.Bytes+n, total, err)
		}
		res.Files = append(res.Files, FileSum{Path: to, Bytes: n, SHA256: sum})
		res.Bytes += n
		prog.done(to, n, res.Bytes)
	}
	if !o.SkipVerify && len(res.Files) > 0 {
		if res.Verified, err = p.verify(ctx, t, res.Files); err != nil {
			return res, err
		}
	}
	res.Duration = time.Since(start)
	return res, nil
}

// Download copies remotePath on the machine, a file or a directory tree, to localPath over
// SFTP; the mirror of Upload, with the same rules for paths, sizes, temporary names and
// checksums. Names in the machine's directory listings that could lead out of localPath
// ("..", a "/") are refused, and so is a path below localPath that is a symbolic link on
// this side (it could lead anywhere), before anything is written.
func (p *Pool) Download(ctx context.Context, t Target, remotePath, localPath string, o CopyOptions) (CopyResult, error) {
	start := time.Now()
	o = o.withDefaults()
	if err := checkArg("the local path", localPath); err != nil {
		return CopyResult{}, err
	}
	remotePath, err := remoteArg(remotePath)
	if err != nil {
		return CopyResult{}, err
	}
	sc, release, err := p.sftpClient(ctx, t)
	if err != nil {
		return CopyResult{}, err
	}
	defer release()
	entries, skipped, total, err := remoteTree(sc, t, remotePath)
	if err != nil {
		return CopyResult{}, err
	}
	if total > o.MaxBytes {
		return CopyResult{}, fmt.Errorf("%s on instance %s holds %d bytes, more than the %d a copy may move", remotePath, t.InstanceID, total, o.MaxBytes)
	}
	dest, err := downloadDest(localPath, path.Base(path.Clean(remotePath)), entries[0].dir)
	if err != nil {
		return CopyResult{}, err
	}
	if err := checkLocalDest(dest, entries, o.NoOverwrite); err != nil {
		return CopyResult{}, err
	}

	res := CopyResult{Skipped: skipped}
	var sources []FileSum
	prog := newProgress(o, total)
	for _, e := range entries {
		if err := ctx.Err(); err != nil {
			return res, err
		}
		to := filepath.Join(dest, filepath.FromSlash(e.rel))
		if e.dir {
			if err := os.MkdirAll(to, 0o755); err != nil {
				return res, fmt.Errorf("cannot create the local directory %s: %w", to, err)
			}
			_ = os.Chmod(to, e.mode.Perm()|0o700)
			res.Dirs++
			continue
		}
		from := joinRemote(remotePath, e.rel)
		sum, n, err := downloadFile(ctx, sc, from, to, e.mode, o.MaxBytes-res.Bytes, func(done int64) {
			prog.update(to, done, e.size, res.Bytes+done)
		})
		if err != nil {
			return res, downloadError(t, from, to, err)
		}
		res.Files = append(res.Files, FileSum{Path: to, Bytes: n, SHA256: sum})
		sources = append(sources, FileSum{Path: from, Bytes: n, SHA256: sum})
		res.Bytes += n
		prog.done(to, n, res.Bytes)
	}
	if !o.SkipVerify && len(sources) > 0 {
		if res.Verified, err = p.verify(ctx, t, sources); err != nil {
			return res, err
		}
	}
	res.Duration = time.Since(start)
	return res, nil
}

func (o CopyOptions) withDefaults() CopyOptions {
	if o.MaxBytes <= 0 {
		o.MaxBytes = DefaultMaxCopyBytes
	}
	if o.ProgressInterval <= 0 {
		o.ProgressInterval = DefaultProgressInterval
	}
	return o
}

// remoteArg checks a remote path and makes "~" and "~/..." relative to the login directory,
// where SFTP and commands both start.
func remoteArg(p string) (string, error) {
	if err := checkArg("the remote path", p); err != nil {
		return "", err
	}
	switch {
	case p == "~":
		return ".", nil
	case p == "~/":
		return "./", nil
	case strings.HasPrefix(p, "~/"):
		return p[2:], nil
	case strings.HasPrefix(p, "~"):
		return "", fmt.Errorf("remote path %q: only the login user's ~ is understood; give the full path", p)
	}
	return p, nil
}

func joinRemote(root, rel string) string {
	if rel == "" {
		return path.Clean(root)
	}
	return path.Join(root, rel)
}

// localTree lists localPath: the root first, directories before their contents.
func localTree(localPath string) (entries []entry, skipped []string, total int64, err error) {
	fi, err := os.Stat(localPath)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil, 0, fmt.Errorf("local path %s does not exist (on the machine that runs gpu-mcp)", localPath)
	}
	if err != nil {
		return nil, nil, 0, fmt.Errorf("cannot read the local path %s: %w", localPath, err)
	}
	if !fi.IsDir() {
		if !fi.Mode().IsRegular() {
			return nil, nil, 0, fmt.Errorf("local path %s is neither a regular file nor a directory", localPath)
		}
		return []entry{{mode: fi.Mode(), size: fi.Size()}}, nil, fi.Size(), nil
	}
	err = filepath.WalkDir(localPath, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return fmt.Errorf("cannot read %s: %w", p, err)
		}
		rel, _ := filepath.Rel(localPath, p)
		rel = filepath.ToSlash(rel)
		if rel == "." {
			rel = ""
		}
		info, err := d.Info()
		if err != nil {
			return fmt.Errorf("cannot read %s: %w", p, err)
		}
		switch {
		case rel == "": // the root, maybe a link to a directory
			entries = append(entries, entry{dir: true, mode: fi.Mode()})
		case d.IsDir():
			entries = append(entries, entry{rel: rel, dir: true, mode: info.Mode()})
		case info.Mode().IsRegular():
			entries = append(entries, entry{rel: rel, mode: info.Mode(), size: info.Size()})
			total += info.Size()
		default:
			skipped = append(skipped, p)
		}
		return nil
	})
	return entries, skipped, total, err
}

// remoteTree lists remotePath on the machine, as localTree does here.
func remoteTree(sc *sftp.Client, t Target, remotePath string) (entries []entry, skipped []string, total int64, err error) {
	fi, err := sc.Stat(remotePath)
	if err != nil {
		return nil, nil, 0, remoteErr(t, "cannot read "+remotePath, err)
	}
	if !fi.IsDir() {
		if !fi.Mode().IsRegular() {
			return nil, nil, 0, fmt.Errorf("%s on instance %s is neither a regular file nor a directory", remotePath, t.InstanceID)
		}
		return []entry{{mode: fi.Mode(), size: fi.Size()}}, nil, fi.Size(), nil
	}
	entries = []entry{{dir: true, mode: fi.Mode()}}
	var walk func(dir, rel string) error
	walk = func(dir, rel string) error {
		infos, err := sc.ReadDir(dir)
		if err != nil {
			return remoteErr(t, "cannot list "+dir, err)
		}
		for _, fi := range infos {
			name := fi.Name()
			if err := safeName(name); err != nil {
				return fmt.Errorf("the listing of %s on instance %s has %w", dir, t.InstanceID, err)
			}
			r := path.Join(rel, name)
			switch {
			case fi.IsDir():
				entries = append(entries, entry{rel: r, dir: true, mode: fi.Mode()})
				if err := walk(path.Join(dir, name), r); err != nil {
					return err
				}
			case fi.Mode().IsRegular():
				entries = append(entries, entry{rel: r, mode: fi.Mode(), size: fi.Size()})
				total += fi.Size()
			default:
				skipped = append(skipped, path.Join(dir, name))
			}
		}
		return nil
	}
	return entries, skipped, total, walk(remotePath, "")
}

// safeName refuses a name from the machine that is not one plain path element.
func safeName(name string) error {
	bad := "/\x00" + string(filepath.Separator)
	if name == "" || name == "." || name == ".." || strings.ContainsAny(name, bad) {
		return fmt.Errorf("an entry named %q, which is not a plain file name; nothing was copied from that directory on", sanitizeLine([]byte(name)))
	}
	return nil
}

// uploadDest is where on the machine the root of the upload goes (see Upload).
func uploadDest(sc *sftp.Client, t Target, localPath, remotePath string, isDir bool) (string, error) {
	if strings.HasSuffix(remotePath, "/") {
		dir := path.Clean(remotePath)
		fi, err := sc.Stat(dir)
		if err != nil {
			return "", remoteErr(t, "the remote directory "+dir, err)
		}
		if !fi.IsDir() {
			return "", fmt.Errorf("remote path %s on instance %s is a file, not a directory to copy into", dir, t.InstanceID)
		}
		return path.Join(dir, filepath.Base(filepath.Clean(localPath))), nil
	}
	fi, err := sc.Stat(remotePath)
	switch {
	case err != nil && !errors.Is(err, fs.ErrNotExist):
		return "", remoteErr(t, "cannot read "+remotePath, err)
	case err != nil:
	case fi.IsDir() && !isDir:
		return "", fmt.Errorf("remote path %s on instance %s is a directory; give the file's full path, or end the path with / to copy into the directory", remotePath, t.InstanceID)
	case !fi.IsDir() && isDir:
		return "", fmt.Errorf("remote path %s on instance %s is a file, and %s is a directory; give another path", remotePath, t.InstanceID, localPath)
	}
	return remotePath, nil
}

// downloadDest is where here the root of the download goes (see Download).
func downloadDest(localPath, base string, isDir bool) (string, error) {
	if strings.HasSuffix(localPath, "/") || strings.HasSuffix(localPath, string(filepath.Separator)) {
		fi, err := os.Stat(localPath)
		if err != nil || !fi.IsDir() {
			return "", fmt.Errorf("local directory %s does not exist (on the machine that runs gpu-mcp)", localPath)
		}
		return filepath.Join(localPath, base), nil
	}
	fi, err := os.Stat(localPath)
	switch {
	case err != nil && !errors.Is(err, fs.ErrNotExist):
		return "", fmt.Errorf("cannot read the local path %s: %w", localPath, err)
	case err != nil:
	case fi.IsDir() && !isDir:
		return "", fmt.Errorf("local path %s is a directory; give the file's full path, or end the path with / to copy into the directory", localPath)
	case !fi.IsDir() && isDir:
		return "", fmt.Errorf("local path %s is a file, and the remote path is a directory; give another path", localPath)
	}
	if dir := filepath.Dir(localPath); dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return "", fmt.Errorf("cannot create the local directory %s: %w", dir, err)
		}
	}
	return localPath, nil
}

// checkLocalDest refuses a download that would write through a symbolic link below dest, or,
// with noOverwrite, replace a file there.
func checkLocalDest(dest string, entries []entry, noOverwrite bool) error {
	for _, e := range entries {
		to := filepath.Join(dest, filepath.FromSlash(e.rel))
		fi, err := os.Lstat(to)
		switch {
		case errors.Is(err, fs.ErrNotExist):
		case err != nil:
			return fmt.Errorf("cannot read the local path %s: %w", to, err)
		case e.rel != "" && fi.Mode()&fs.ModeSymlink != 0:
			return fmt.Errorf("local path %s is a symbolic link; nothing was downloaded (remove it, or download elsewhere)", to)
		case !e.dir && noOverwrite:
			return fmt.Errorf("local file %s exists; nothing was downloaded (pass overwrite to replace it, or download elsewhere)", to)
		}
	}
	return nil
}

func mkdirRemote(sc *sftp.Client, t Target, dir string, mode fs.FileMode) error {
	if err := sc.MkdirAll(dir); err != nil {
		return remoteErr(t, "cannot create the directory "+dir, err)
	}
	if err := sc.Chmod(dir, mode.Perm()|0o700); err != nil {
		return remoteErr(t, "cannot set the permissions of "+dir, err)
	}
	return nil
}

// tempName is a name beside name for a file being copied; "*" stands for a random part.
// name is shortened so that the result stays within the usual 255-byte limit.
func tempName(name string) string {
	const keep = 200
	if len(name) > keep {
		cut := keep
		for cut > 0 && !utf8.RuneStart(name[cut]) {
			cut--
		}
		name = name[:cut]
	}
	return "." + name + ".gpu-mcp-*.tmp"
}

func randomTempName(name string) string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	t := tempName(name)
	i := strings.LastIndexByte(t, '*')
	return t[:i] + hex.EncodeToString(b) + t[i+1:]
}

// uploadFile writes the local file from to a temporary name beside to, then renames it. It
// returns the hex SHA-256 of the bytes sent and their number.
func uploadFile(ctx context.Context, sc *sftp.Client, from, to string, mode fs.FileMode, limit int64, progress func(int64)) (string, int64, error) {
	src, err := os.Open(from)
	if err != nil {
		return "", 0, fmt.Errorf("cannot read the local file %s: %w", from, err)
	}
	defer src.Close()
	tmp := path.Join(path.Dir(to), randomTempName(path.Base(to)))
	dst, err := sc.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL)
	if err != nil {
		return "", 0, err
	}
	h := sha256.New()
	r := &countingReader{ctx: ctx, r: io.TeeReader(src, h), limit: limit, progress: progress}
	_, err = dst.ReadFromWithConcurrency(r, 0)
	if r.err != nil {
		err = r.err
	} else if isSFTPFailure(err) {
		// Measured before the partial file goes: a full disk often reports only "failure".
		err = &writeFailure{err: err, free: freeSpace(sc, path.Dir(to))}
	}
	if err == nil {
		err = dst.Chmod(mode.Perm())
	}
	if cerr := dst.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		if err = sc.PosixRename(tmp, to); err != nil && !isUnsupported(err) {
			err = fmt.Errorf("cannot rename %s to %s: %w", tmp, to, err)
		} else if err != nil {
			_ = sc.Remove(to)
			err = sc.Rename(tmp, to)
		}
	}
	if err != nil {
		_ = sc.Remove(tmp)
		return "", r.n, err
	}
	return hex.EncodeToString(h.Sum(nil)), r.n, nil
}

// downloadFile is uploadFile the other way.
func downloadFile(ctx context.Context, sc *sftp.Client, from, to string, mode fs.FileMode, limit int64, progress func(int64)) (string, int64, error) {
	src, err := sc.Open(from)
	if err != nil {
		return "", 0, err
	}
	defer src.Close()
	if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
		return "", 0, fmt.Errorf("cannot create the local directory %s: %w", filepath.Dir(to), err)
	}
	dst, err := os.CreateTemp(filepath.Dir(to), tempName(filepath.Base(to)))
	if err != nil {
		return "", 0, fmt.Errorf("cannot write in the local directory %s: %w", filepath.Dir(to), err)
	}
	h := sha256.New()
	w := &countingWriter{ctx: ctx, w: dst, h: h, limit: limit, progress: progress}
	_, err = src.WriteTo(w)
	if w.err != nil {
		err = w.err
	}
	if err == nil {
		err = dst.Chmod(mode.Perm())
	}
	if cerr := dst.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(dst.Name(), to)
	}
	if err != nil {
		_ = os.Remove(dst.Name())
		return "", w.n, err
	}
	return hex.EncodeToString(h.Sum(nil)), w.n, nil
}

var errGrew = errors.New("the file grew past the copy's size limit while it was being copied")

// countingReader counts what passes, stops at limit bytes or when ctx ends.
type countingReader struct {
	ctx      context.Context
	r        io.Reader
	n, limit int64
	progress func(int64)
	err      error
}

func (c *countingReader) Read(b []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		c.err = err
		return 0, err
	}
	n, err := c.r.Read(b)
	c.n += int64(n)
	if c.n > c.limit {
		c.err = errGrew
		return n, errGrew
	}
	c.progress(c.n)
	return n, err
}

// countingWriter writes to w and h, counts, stops at limit bytes or when ctx ends.
type countingWriter struct {
	ctx      context.Context
	w        io.Writer
	h        hash.Hash
	n, limit int64
	progress func(int64)
	err      error
}

func (c *countingWriter) Write(b []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		c.err = err
		return 0, err
	}
	if c.n+int64(len(b)) > c.limit {
		c.err = errGrew
		return 0, errGrew
	}
	n, err := c.w.Write(b)
	c.h.Write(b[:n])
	c.n += int64(n)
	if err != nil {
		c.err = err
		return n, err
	}
	c.progress(c.n)
	return n, nil
}

// freeSpace is the free space the machine reports for the file system of dir (or of its
// nearest existing parent), -1 when it reports none.
func freeSpace(sc *sftp.Client, dir string) int64 {
	for {
		if vfs, err := sc.StatVFS(dir); err == nil {
			return int64(vfs.FreeSpace())
		} else if !errors.Is(err, fs.ErrNotExist) {
			return -1
		}
		parent := path.Dir(dir)
		if parent == dir {
			return -1
		}
		dir = parent
	}
}

// writeFailure is an SFTP write that failed, with the free space left at that moment.
type writeFailure struct {
	err  error
	free int64
}

func (w *writeFailure) Error() string { return w.err.Error() }
func (w *writeFailure) Unwrap() error { return w.err }

func isSFTPFailure(err error) bool {
	var se *sftp.StatusError
	return errors.As(err, &se) && se.FxCode() == sftp.ErrSSHFxFailure
}

func isUnsupported(err error) bool {
	var se *sftp.StatusError
	return errors.As(err, &se) && se.FxCode() == sftp.ErrSSHFxOpUnsupported
}

// diskFullBelow is the free space under which a write that failed without saying why is
// taken for a full disk.
const diskFullBelow = 1 << 20

// uploadError explains a failed upload, recognizing a full disk: by the server's message
// where it says so, else by the free space left when the server only says "failure".
func uploadError(sc *sftp.Client, t Target, to string, written, total int64, err error) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	if errors.Is(err, errGrew) {
		return fmt.Errorf("cannot upload to %s: %w", to, err)
	}
	var wf *writeFailure
	if errors.As(err, &wf) && (strings.Contains(strings.ToLower(err.Error()), "no space left") || wf.free >= 0 && wf.free < diskFullBelow) {
		return &DiskFullError{InstanceID: t.InstanceID, Path: to, Written: written, Needed: total, Free: freeSpace(sc, path.Dir(to))}
	}
	return remoteErr(t, "cannot upload to "+to, err)
}

func downloadError(t Target, from, to string, err error) error {
	switch {
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return err
	case errors.Is(err, errGrew):
		return fmt.Errorf("cannot download %s: %w", from, err)
	case errors.Is(err, syscall.ENOSPC):
		return fmt.Errorf("the local disk is full (on the machine that runs gpu-mcp) while writing %s: %w", to, err)
	}
	var pe *fs.PathError
	var se *sftp.StatusError
	if errors.As(err, &pe) && !errors.As(err, &se) {
		return fmt.Errorf("cannot write the local file %s: %w", to, err)
	}
	return remoteErr(t, "cannot download "+from, err)
}

// remoteErr explains an SFTP failure on t, with the server's own text sanitized.
func remoteErr(t Target, what string, err error) error {
	var se *sftp.StatusError
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("%s: no such file or directory on instance %s", what, t.InstanceID)
	case errors.Is(err, fs.ErrPermission):
		return fmt.Errorf("%s: permission denied on instance %s (user %s)", what, t.InstanceID, t.User)
	case errors.As(err, &se):
		return fmt.Errorf("%s on instance %s: %s", what, t.InstanceID, clip([]byte(se.Error()), 300))
	}
	return fmt.Errorf("%s on instance %s: %w", what, t.InstanceID, err)
}

// progress rate-limits CopyOptions.OnProgress.
type progress struct {
	fn       func(CopyProgress)
	interval time.Duration
	total    int64
	last     time.Time
}

func newProgress(o CopyOptions, total int64) *progress {
	return &progress{fn: o.OnProgress, interval: o.ProgressInterval, total: total}
}

func (p *progress) update(file string, done, size, all int64) {
	if p.fn == nil || time.Since(p.last) < p.interval {
		return
	}
	p.last = time.Now()
	p.fn(CopyProgress{File: file, FileBytes: done, FileSize: size, Bytes: all, Total: p.total})
}

func (p *progress) done(file string, size, all int64) {
	if p.fn == nil {
		return
	}
	p.last = time.Now()
	p.fn(CopyProgress{File: file, FileBytes: size, FileSize: size, Bytes: all, Total: p.total})
}
