package machinetest

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"path"
	"sort"
	"strings"
	"sync"
	"syscall"

	"github.com/pkg/sftp"
)

// sandboxFS serves the sftp subsystem from the sandbox, through an os.Root so that no path or
// symbolic link leads out of it, and holds writes to the disk quota.
type sandboxFS struct {
	home  string
	root  *os.Root
	terse bool

	mu    sync.Mutex
	quota int64 // 0: none
	used  int64 // bytes of the sandbox's files, as last counted plus what sftp wrote since
}

func newSandboxFS(home string, quota int64, terse bool) (*sandboxFS, error) {
	root, err := os.OpenRoot(home)
	if err != nil {
		return nil, err
	}
	return &sandboxFS{home: home, root: root, quota: quota, terse: terse}, nil
}

// setQuota changes the quota, counting the sandbox's files anew.
func (s *sandboxFS) setQuota(n int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.quota = n
	s.used = s.usage()
}

func (s *sandboxFS) handlers() sftp.Handlers {
	return sftp.Handlers{FileGet: s, FilePut: s, FileCmd: s, FileList: s}
}

// rel maps an sftp path (absolute and clean, as the request server hands it over) to a name
// in the root: the sandbox's own absolute path names the sandbox, any other absolute path is
// taken as relative to it.
func (s *sandboxFS) rel(p string) string {
	switch {
	case p == s.home:
		return "."
	case strings.HasPrefix(p, s.home+"/"):
		return p[len(s.home)+1:]
	}
	if r := strings.TrimLeft(path.Clean("/"+p), "/"); r != "" {
		return r
	}
	return "."
}

// named gives an error of the root the sftp path the client used, not the root's name, or
// with terse errors only the status code, as OpenSSH's sftp-server sends them.
func (s *sandboxFS) named(p string, err error) error {
	if err == nil {
		return nil
	}
	if s.terse {
		switch {
		case errors.Is(err, fs.ErrNotExist):
			return sftp.ErrSSHFxNoSuchFile
		case errors.Is(err, fs.ErrPermission):
			return sftp.ErrSSHFxPermissionDenied
		}
		return sftp.ErrSSHFxFailure
	}
	var pe *os.PathError
	if errors.As(err, &pe) {
		return &os.PathError{Op: pe.Op, Path: p, Err: pe.Err}
	}
	var le *os.LinkError
	if errors.As(err, &le) {
		return &os.PathError{Op: le.Op, Path: p, Err: le.Err}
	}
	return err
}

// Fileread opens a file for reading.
func (s *sandboxFS) Fileread(r *sftp.Request) (io.ReaderAt, error) {
	f, err := s.root.Open(s.rel(r.Filepath))
	if err != nil {
		return nil, s.named(r.Filepath, err)
	}
	if fi, err := f.Stat(); err == nil && fi.IsDir() {
		_ = f.Close()
		return nil, s.named(r.Filepath, &os.PathError{Op: "open", Err: syscall.EISDIR})
	}
	return f, nil
}

// Filewrite opens a file for writing.
func (s *sandboxFS) Filewrite(r *sftp.Request) (io.WriterAt, error) { return s.open(r) }

// OpenFile opens a file for reading and writing.
func (s *sandboxFS) OpenFile(r *sftp.Request) (sftp.WriterAtReaderAt, error) { return s.open(r) }

func (s *sandboxFS) open(r *sftp.Request) (sftp.WriterAtReaderAt, error) {
	pf := r.Pflags()
	flag := os.O_WRONLY
	if pf.Read {
		flag = os.O_RDWR
	}
	if pf.Creat {
		flag |= os.O_CREATE
	}
	if pf.Trunc {
		flag |= os.O_TRUNC
	}
	if pf.Excl {
		flag |= os.O_EXCL
	}
	name := s.rel(r.Filepath)
	f, err := s.root.OpenFile(name, flag, 0o644)
	if err != nil {
		return nil, s.named(r.Filepath, err)
	}
	fi, err := f.Stat()
	if err == nil && fi.IsDir() {
		err = &os.PathError{Op: "open", Err: syscall.EISDIR}
	}
	if err != nil {
		_ = f.Close()
		return nil, s.named(r.Filepath, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.quota > 0 {
		s.used = s.usage()
	}
	return &quotaFile{File: f, fs: s, path: r.Filepath, size: fi.Size()}, nil
}

// usage adds up the sizes of the sandbox's regular files.
func (s *sandboxFS) usage() int64 {
	var n int64
	_ = fs.WalkDir(s.root.FS(), ".", func(_ string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if fi, err := d.Info(); err == nil {
				n += fi.Size()
			}
		}
		return nil
	})
	return n
}

// quotaFile refuses a write that would take the sandbox past its quota, as a full disk does.
type quotaFile struct {
	*os.File
	fs   *sandboxFS
	path string
	size int64 // guarded by fs.mu
}

func (f *quotaFile) WriteAt(b []byte, off int64) (int, error) {
	f.fs.mu.Lock()
	if grow := off + int64(len(b)) - f.size; grow > 0 {
		if f.fs.quota > 0 && f.fs.used+grow > f.fs.quota {
			f.fs.mu.Unlock()
			return 0, f.fs.named(f.path, &os.PathError{Op: "write", Err: syscall.ENOSPC})
		}
		f.fs.used += grow
		f.size += grow
	}
	f.fs.mu.Unlock()
	return f.File.WriteAt(b, off)
}

// Filecmd changes the tree: Setstat, Rename, Rmdir, Remove, Mkdir. Links are not served.
func (s *sandboxFS) Filecmd(r *sftp.Request) error {
	name := s.rel(r.Filepath)
	switch r.Method {
	case "Setstat":
		return s.named(r.Filepath, s.setstat(name, r))
	case "Rename":
		// SFTP version 3 renames refuse an existing target; posix-rename replaces it.
		if _, err := s.root.Lstat(s.rel(r.Target)); err == nil {
			return s.named(r.Target, &os.PathError{Op: "rename", Err: syscall.EEXIST})
		}
		return s.PosixRename(r)
	case "Rmdir", "Remove":
		fi, err := s.root.Lstat(name)
		if err != nil {
			return s.named(r.Filepath, err)
		}
		if fi.IsDir() != (r.Method == "Rmdir") {
			errno := syscall.ENOTDIR
			if fi.IsDir() {
				errno = syscall.EISDIR
			}
			return s.named(r.Filepath, &os.PathError{Op: strings.ToLower(r.Method), Err: errno})
		}
		return s.named(r.Filepath, s.root.Remove(name))
	case "Mkdir":
		return s.named(r.Filepath, s.root.Mkdir(name, 0o755))
	}
	return sftp.ErrSSHFxOpUnsupported
}

func (s *sandboxFS) setstat(name string, r *sftp.Request) error {
	flags, attrs := r.AttrFlags(), r.Attributes()
	if flags.Size {
		f, err := s.root.OpenFile(name, os.O_WRONLY, 0)
		if err != nil {
			return err
		}
		err = f.Truncate(int64(attrs.Size))
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
	}
	if flags.Permissions {
		if err := s.root.Chmod(name, attrs.FileMode().Perm()); err != nil {
			return err
		}
	}
	if flags.Acmodtime {
		if err := s.root.Chtimes(name, attrs.AccessTime(), attrs.ModTime()); err != nil {
			return err
		}
	}
	return nil
}

// PosixRename renames, replacing an existing target.
func (s *sandboxFS) PosixRename(r *sftp.Request) error {
	return s.named(r.Filepath, s.root.Rename(s.rel(r.Filepath), s.rel(r.Target)))
}

// StatVFS reports the quota as the disk when there is one, else the disk the sandbox is on.
func (s *sandboxFS) StatVFS(r *sftp.Request) (*sftp.StatVFS, error) {
	const block = 4096
	s.mu.Lock()
	quota := s.quota
	if quota > 0 {
		s.used = s.usage()
	}
	free := max(quota-s.used, 0)
	s.mu.Unlock()
	if quota > 0 {
		return &sftp.StatVFS{Bsize: block, Frsize: block, Blocks: uint64(quota / block),
			Bfree: uint64(free / block), Bavail: uint64(free / block), Namemax: 255}, nil
	}
	var st syscall.Statfs_t
	if err := syscall.Statfs(s.home, &st); err != nil {
		return nil, s.named(r.Filepath, err)
	}
	return &sftp.StatVFS{Bsize: uint64(st.Bsize), Frsize: uint64(st.Frsize), Blocks: st.Blocks,
		Bfree: st.Bfree, Bavail: st.Bavail, Files: st.Files, Ffree: st.Ffree, Favail: st.Ffree,
		Namemax: uint64(st.Namelen)}, nil
}

// Filelist answers List (a directory's entries) and Stat.
func (s *sandboxFS) Filelist(r *sftp.Request) (sftp.ListerAt, error) {
	name := s.rel(r.Filepath)
	switch r.Method {
	case "List":
		d, err := s.root.Open(name)
		if err != nil {
			return nil, s.named(r.Filepath, err)
		}
		defer d.Close()
		ents, err := d.ReadDir(-1)
		if err != nil {
			return nil, s.named(r.Filepath, err)
		}
		sort.Slice(ents, func(i, j int) bool { return ents[i].Name() < ents[j].Name() })
		infos := make(lister, 0, len(ents))
		for _, e := range ents {
			if fi, err := e.Info(); err == nil {
				infos = append(infos, fi)
			}
		}
		return infos, nil
	case "Stat":
		fi, err := s.root.Stat(name)
		if err != nil {
			return nil, s.named(r.Filepath, err)
		}
		return lister{fi}, nil
	}
	return nil, sftp.ErrSSHFxOpUnsupported
}

// Lstat is Stat without following a final symbolic link.
func (s *sandboxFS) Lstat(r *sftp.Request) (sftp.ListerAt, error) {
	fi, err := s.root.Lstat(s.rel(r.Filepath))
	if err != nil {
		return nil, s.named(r.Filepath, err)
	}
	return lister{fi}, nil
}

// RealPath makes p absolute against the working directory, the sandbox's own path.
func (s *sandboxFS) RealPath(p string) (string, error) {
	if !path.IsAbs(p) {
		p = path.Join(s.home, p)
	}
	return path.Clean(p), nil
}

// Readlink returns a symbolic link's target.
func (s *sandboxFS) Readlink(p string) (string, error) {
	t, err := s.root.Readlink(s.rel(p))
	return t, s.named(p, err)
}

type lister []os.FileInfo

func (l lister) ListAt(out []os.FileInfo, off int64) (int, error) {
	if off >= int64(len(l)) {
		return 0, io.EOF
	}
	n := copy(out, l[off:])
	if n < len(out) {
		return n, io.EOF
	}
	return n, nil
}
