package remote

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/gpu-mcp/gpu-mcp/providers/machinetest"
)

// BenchmarkRun is one command's round trip on a warm, pooled connection: a new session, the
// wrapper that reports the process group, `true`, the exit status.
func BenchmarkRun(b *testing.B) {
	r := newRig(b, machinetest.Options{})
	r.run(b, "true") // dial and pin outside the loop
	ctx := ctxT(b)
	for b.Loop() {
		if res, err := r.pool.Run(ctx, r.tgt, "true", RunOptions{}); err != nil || res.ExitCode != 0 {
			b.Fatalf("%+v %v", res, err)
		}
	}
}

// BenchmarkRunNewConnection is the same with a connection dialed for each command (TCP,
// key exchange, host key check, password login), what pooling saves.
func BenchmarkRunNewConnection(b *testing.B) {
	r := newRig(b, machinetest.Options{})
	ctx := ctxT(b)
	for b.Loop() {
		p := NewPool(r.keys, PoolOptions{})
		res, err := p.Run(ctx, r.tgt, "true", RunOptions{})
		_ = p.Close()
		if err != nil || res.ExitCode != 0 {
			b.Fatalf("%+v %v", res, err)
		}
	}
}

const benchFileSize = 64 << 20

func benchFile(b *testing.B) string {
	name := filepath.Join(b.TempDir(), "payload.bin")
	if err := os.WriteFile(name, randomBytes(benchFileSize), 0o644); err != nil {
		b.Fatal(err)
	}
	return name
}

// BenchmarkUpload is a 64 MiB file over SFTP on loopback; "verified" adds sha256sum on the
// machine.
func BenchmarkUpload(b *testing.B) {
	for _, verify := range []bool{false, true} {
		name := "sftp"
		if verify {
			name = "verified"
		}
		b.Run(name, func(b *testing.B) {
			r := newRig(b, machinetest.Options{})
			local := benchFile(b)
			ctx := ctxT(b)
			r.run(b, "true")
			b.SetBytes(benchFileSize)
			for b.Loop() {
				if _, err := r.pool.Upload(ctx, r.tgt, local, "payload.bin", CopyOptions{SkipVerify: !verify}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkDownload is BenchmarkUpload the other way.
func BenchmarkDownload(b *testing.B) {
	for _, verify := range []bool{false, true} {
		name := "sftp"
		if verify {
			name = "verified"
		}
		b.Run(name, func(b *testing.B) {
			r := newRig(b, machinetest.Options{})
			if err := os.WriteFile(filepath.Join(r.m.Dir(), "payload.bin"), randomBytes(benchFileSize), 0o644); err != nil {
				b.Fatal(err)
			}
			local := filepath.Join(b.TempDir(), "payload.bin")
			ctx := ctxT(b)
			r.run(b, "true")
			b.SetBytes(benchFileSize)
			for b.Loop() {
				if _, err := r.pool.Download(ctx, r.tgt, "payload.bin", local, CopyOptions{SkipVerify: !verify}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
