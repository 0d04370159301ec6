package remote

import (
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/crypto/ssh"
)

// LoadKey reads the private key that GPU_MCP_SSH_KEY names: either the key itself (PEM or
// OpenSSH format, starting with "-----BEGIN") or the path of a file holding it ("~/" is the
// home directory). passphrase decrypts an encrypted key; it may be empty for one that is not.
// No error text holds the key, the passphrase, or a value that might be a key; a path is
// named only when it looks like one.
func LoadKey(value string, passphrase []byte) (ssh.Signer, error) {
	value = strings.TrimSpace(value)
	if value == "" {
		return nil, errors.New("GPU_MCP_SSH_KEY is empty: give a private key file's path, or the key itself")
	}
	pem := []byte(value)
	from := "the key in GPU_MCP_SSH_KEY"
	if !strings.HasPrefix(value, "-----BEGIN") {
		name := value
		if strings.HasPrefix(name, "~/") {
			home, err := os.UserHomeDir()
			if err != nil {
				return nil, fmt.Errorf("GPU_MCP_SSH_KEY: cannot find the home directory for ~/: %w", err)
			}
			name = filepath.Join(home, name[2:])
		}
		shown := "the file GPU_MCP_SSH_KEY names"
		if looksLikePath(value) {
			shown = "the key file " + value
		}
		b, err := os.ReadFile(name)
		if err != nil {
			var why string
			switch {
			case errors.Is(err, os.ErrNotExist):
				why = "does not exist"
			case errors.Is(err, os.ErrPermission):
				why = "cannot be read (permission denied)"
			default:
				why = "cannot be read"
			}
			return nil, fmt.Errorf("GPU_MCP_SSH_KEY: %s %s; give a private key file's path, or the key itself starting with -----BEGIN", shown, why)
		}
		pem, from = b, shown
	}
	signer, err := ssh.ParsePrivateKey(pem)
	var missing *ssh.PassphraseMissingError
	if errors.As(err, &missing) && len(passphrase) > 0 {
		signer, err = ssh.ParsePrivateKeyWithPassphrase(pem, passphrase)
	}
	switch {
	case err == nil:
		return signer, nil
	case errors.As(err, &missing):
		return nil, fmt.Errorf("GPU_MCP_SSH_KEY: %s is encrypted; give its passphrase too, or use a key without one", from)
	case errors.Is(err, x509.IncorrectPasswordError):
		return nil, fmt.Errorf("GPU_MCP_SSH_KEY: the passphrase does not decrypt %s", from)
	}
	return nil, fmt.Errorf("GPU_MCP_SSH_KEY: %s is not a private key that SSH can use (want PEM or OpenSSH format: RSA, ECDSA or Ed25519)", from)
}

// looksLikePath tells a path, which an error may name, from something that could be a key
// pasted without its header, which it must not.
func looksLikePath(s string) bool {
	if len(s) > 256 || strings.ContainsAny(s, " \t\r\n") {
		return false
	}
	for _, p := range []string{"/", "./", "../", "~/"} {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}
