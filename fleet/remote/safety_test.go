package remote

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/gpu-mcp/gpu-mcp/providers/machinetest"
	"github.com/gpu-mcp/gpu-mcp/state"
	"golang.org/x/crypto/ssh"
)

func TestChangedHostKeyIsRefusedUntilAccepted(t *testing.T) {
	r := newRig(t, machinetest.Options{})
	r.run(t, "true")
	pinned := Fingerprint(r.m.HostKey().Marshal())
	if !strings.Contains(r.logs.String(), "pinned on first use") || !strings.Contains(r.logs.String(), pinned) {
		t.Fatalf("first use not logged: %s", r.logs)
	}
	rotated, err := r.m.RotateHostKey() // the instance was rebuilt, or someone is in between
	if err != nil {
		t.Fatal(err)
	}
	commands := r.m.Stats().Commands
	// A new gpu-mcp process on the same store sees the new key.
	p2 := r.newPool(t, PoolOptions{})
	_, err = p2.Run(ctxT(t), r.tgt, "echo should not run", RunOptions{})
	var changed *HostKeyChangedError
	if !errors.As(err, &changed) || changed.Pinned != pinned || changed.Presented != ssh.FingerprintSHA256(rotated) {
		t.Fatalf("%v", err)
	}
	for _, s := range []string{"changed", pinned, changed.Presented, "accept_new_host_key=true", "test:inst-1"} {
		if !strings.Contains(err.Error(), s) {
			t.Fatalf("the error does not say %q: %v", s, err)
		}
	}
	if r.m.Stats().Commands != commands {
		t.Fatal("a command reached a machine whose host key changed")
	}
	// The old connection is still to the machine whose key was pinned: kept working. Once
	// the user says the instance was rebuilt, the new key is pinned.
	if err := p2.AcceptNewHostKey(ctxT(t), "test:inst-1"); err != nil {
		t.Fatal(err)
	}
	if res, err := p2.Run(ctxT(t), r.tgt, "echo accepted", RunOptions{}); err != nil || res.Stdout != "accepted\n" {
		t.Fatalf("%+v %v", res, err)
	}
	if k, _, _ := r.keys.Pin(context.Background(), "test:inst-1", nil); Fingerprint(k) != changed.Presented {
		t.Fatal("the new key was not pinned")
	}
	// Keys are per instance: another instance id at the same address pins on its own.
	other := r.tgt
	other.InstanceID = "test:inst-2"
	if _, err := p2.Run(ctxT(t), other, "true", RunOptions{}); err != nil {
		t.Fatal(err)
	}
}

// Pins kept in the durable store hold across pools, as across gpu-mcp processes.
func TestStoreHostKeysPinAcrossPools(t *testing.T) {
	st, err := state.Open(ctxT(t), state.MemoryURL, state.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	r := newRig(t, machinetest.Options{})
	keys := StoreHostKeys(st)
	p1 := NewPool(keys, PoolOptions{})
	defer p1.Close()
	if _, err := p1.Run(ctxT(t), r.tgt, "true", RunOptions{}); err != nil {
		t.Fatal(err)
	}
	if pinned, first, err := st.PinHostKey(ctxT(t), r.tgt.InstanceID, []byte("other")); err != nil || first || Fingerprint(pinned) != Fingerprint(r.m.HostKey().Marshal()) {
		t.Fatalf("the store holds %s (first %v, %v)", Fingerprint(pinned), first, err)
	}
	if _, err := r.m.RotateHostKey(); err != nil {
		t.Fatal(err)
	}
	p2 := NewPool(keys, PoolOptions{})
	defer p2.Close()
	var changed *HostKeyChangedError
	if _, err := p2.Run(ctxT(t), r.tgt, "true", RunOptions{}); !errors.As(err, &changed) {
		t.Fatalf("a new pool on the store: %v", err)
	}
	if err := p2.AcceptNewHostKey(ctxT(t), r.tgt.InstanceID); err != nil {
		t.Fatal(err)
	}
	if _, err := p2.Run(ctxT(t), r.tgt, "true", RunOptions{}); err != nil {
		t.Fatalf("after accepting: %v", err)
	}
}

func TestKeyLogin(t *testing.T) {
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	signer, _ := ssh.NewSignerFromKey(priv)
	r := newRig(t, machinetest.Options{AuthorizedKeys: []ssh.PublicKey{signer.PublicKey()}})
	r.tgt.Password, r.tgt.Signer = "", signer
	if res := r.run(t, "echo key"); res.Stdout != "key\n" {
		t.Fatalf("%+v", res)
	}
}

func TestLoadKey(t *testing.T) {
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	block, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		t.Fatal(err)
	}
	plain := string(pem.EncodeToMemory(block))
	const passphrase = "Pass-phrase-91b2"
	block, err = ssh.MarshalPrivateKeyWithPassphrase(priv, "", []byte(passphrase))
	if err != nil {
		t.Fatal(err)
	}
	encrypted := string(pem.EncodeToMemory(block))
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "id_ed25519")
	if err := os.WriteFile(keyFile, []byte(encrypted), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, ok := range []struct {
		value string
		pass  string
	}{{plain, ""}, {plain, "ignored"}, {"\n" + plain + "\n", ""}, {encrypted, passphrase}, {keyFile, passphrase}} {
		s, err := LoadKey(ok.value, []byte(ok.pass))
		if err != nil || string(s.PublicKey().Marshal()) != string(ssh.PublicKey(mustPub(t, priv)).Marshal()) {
			t.Fatalf("%.20q: %v", ok.value, err)
		}
	}
	body := strings.Split(plain, "\n")[1]
	for _, bad := range []struct {
		value, pass, want string
	}{
		{encrypted, "", "is encrypted; give its passphrase"},
		{keyFile, "", "the key file " + keyFile + " is encrypted"},
		{encrypted, "wrong-" + passphrase, "the passphrase does not decrypt"},
		{filepath.Join(dir, "missing"), "", "the key file " + filepath.Join(dir, "missing") + " does not exist"},
		{body, "", "the file GPU_MCP_SSH_KEY names does not exist"}, // a key pasted without its header is not echoed
		{"-----BEGIN OPENSSH PRIVATE KEY-----\n" + body[:20] + "\n-----END OPENSSH PRIVATE KEY-----", "", "is not a private key"},
		{"", "", "is empty"},
	} {
		_, err := LoadKey(bad.value, []byte(bad.pass))
		if err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Fatalf("%.30q: %v, want %q", bad.value, err, bad.want)
		}
		for _, secret := range []string{body, body[:20], passphrase} {
			if strings.Contains(err.Error(), secret) {
				t.Fatalf("error holds a secret: %v", err)
			}
		}
	}
}

func mustPub(t *testing.T, priv ed25519.PrivateKey) ssh.PublicKey {
	pk, err := ssh.NewPublicKey(priv.Public())
	if err != nil {
		t.Fatal(err)
	}
	return pk
}

func TestTargetHidesCredentials(t *testing.T) {
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	signer, _ := ssh.NewSignerFromKey(priv)
	tgt := Target{InstanceID: "i", Host: "h", Port: 22, User: "root", Password: testPassword, Signer: signer}
	js, _ := json.Marshal(tgt)
	for _, s := range []string{fmt.Sprint(tgt), fmt.Sprintf("%v %+v %#v %s", tgt, tgt, tgt, tgt), string(js)} {
		if strings.Contains(s, testPassword) || strings.Contains(s, "PRIVATE") {
			t.Fatalf("credentials shown: %s", s)
		}
	}
	if fmt.Sprint(tgt) != "instance i (root@h:22)" {
		t.Fatalf("%s", tgt)
	}
}

// Every error path that can be provoked, and every log line: none holds the password.
func TestNoSecretInErrorsOrLogs(t *testing.T) {
	r := newRig(t, machinetest.Options{DiskQuota: 1 << 20})
	ctx := ctxT(t)
	var errs []error
	collect := func(_ any, err error) {
		if err == nil {
			t.Fatal("an error path did not fail")
		}
		errs = append(errs, err)
	}
	wrong := r.tgt
	wrong.Password = "Wrong-" + testPassword
	_, err := r.pool.Run(ctx, wrong, "true", RunOptions{})
	if !errors.Is(err, ErrAuth) {
		t.Fatalf("wrong password: %v", err)
	}
	collect(nil, err)
	collect(r.pool.Run(ctx, r.tgt, "echo '"+testPassword+"'\x00", RunOptions{}))
	big := filepath.Join(t.TempDir(), "big")
	_ = os.WriteFile(big, make([]byte, 2<<20), 0o644)
	collect(r.pool.Upload(ctx, r.tgt, big, "big", CopyOptions{}))
	collect(r.pool.Upload(ctx, r.tgt, "/no/such", "x", CopyOptions{}))
	collect(r.pool.Download(ctx, r.tgt, "no/such", t.TempDir()+"/x", CopyOptions{}))
	collect(r.pool.JobStatus(ctx, r.tgt, "nope"))
	collect(r.pool.StartJob(ctx, r.tgt, JobSpec{ID: "j", Command: "true", Dir: "missing"}))
	collect(r.pool.GPUStatus(ctx, r.tgt))
	// A command, holding the password, whose machine loses power while it runs.
	lost := make(chan error, 1)
	go func() {
		_, err := r.pool.Run(ctx, r.tgt, "echo '"+testPassword+"' >/dev/null; echo $$ > lost.pid; sleep 300", RunOptions{})
		lost <- err
	}()
	readPID(t, filepath.Join(r.m.Dir(), "lost.pid"))
	r.m.Halt()
	collect(nil, <-lost)
	_, _ = r.m.RotateHostKey()
	r.pool.Disconnect(r.tgt.InstanceID)
	collect(r.pool.Run(ctx, r.tgt, "true", RunOptions{}))
	_ = r.m.Close()
	collect(r.pool.Run(ctx, r.tgt, "true", RunOptions{}))
	collect(LoadKey("/no/key", []byte(testPassword)))
	for _, err := range errs {
		if strings.Contains(err.Error(), testPassword) {
			t.Fatalf("an error holds the password: %v", err)
		}
		if !utf8.ValidString(err.Error()) {
			t.Fatalf("an error is not valid UTF-8: %q", err)
		}
	}
	if logs := r.logs.String(); logs == "" || strings.Contains(logs, testPassword) {
		t.Fatalf("logs: %q", logs)
	}
}

func TestSanitize(t *testing.T) {
	for in, want := range map[string]string{
		"plain text\n\tindented":                   "plain text\n\tindented",
		"\x1b[1;31mred\x1b[0m":                     "red",
		"\x1b]0;window title\x07after":             "after",
		"\x1b]8;;http://x\x1b\\link\x1b]8;;\x1b\\": "link",
		"a\x1bcb":                               "ab",
		"crlf\r\nlone\rend":                     "crlf\nlone\nend",
		"bell\x07nul\x00del\x7f":                "bellnuldel",
		"c1 \u009b31mcsi \u0085nel":             "c1 csi nel",
		"bidi \u202eevil\u202c \u2066iso\u2069": "bidi evil iso",
		"zero\u200bwidth\ufeff":                 "zerowidth",
		"bad \xff\xfe utf8":                     "bad \ufffd\ufffd utf8",
		"unicode ✓ 漢字 🚀":                        "unicode ✓ 漢字 🚀",
		"cut escape \x1b[":                      "cut escape ",
	} {
		if got := Sanitize([]byte(in)); got != want {
			t.Errorf("Sanitize(%q) = %q, want %q", in, got, want)
		}
	}
	if got := sanitizeLine([]byte("a\nb\rc\td")); got != "abc\td" {
		t.Errorf("sanitizeLine: %q", got)
	}
}

func FuzzSanitize(f *testing.F) {
	f.Add([]byte("\x1b[31mx\r\n\xff"))
	f.Fuzz(func(t *testing.T, b []byte) {
		s := Sanitize(b)
		if !utf8.ValidString(s) {
			t.Fatalf("invalid UTF-8 from %q", b)
		}
		for _, r := range s {
			if r < 0x20 && r != '\n' && r != '\t' || r == 0x7f || r == 0x1b || hiddenRune(r) {
				t.Fatalf("control %U kept from %q", r, b)
			}
		}
		if _, err := json.Marshal(s); err != nil {
			t.Fatal(err)
		}
	})
}
