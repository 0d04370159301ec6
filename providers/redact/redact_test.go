package redact

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"strings"
	"sync"
	"testing"
)

const (
	hxyToken = "5f0c3a1e-9b7d-4e2a-8c6f-1d2e3f4a5b6c"
	cyKey    = "cy-key/with+special=chars&more"
)

func TestStringRemovesKnownSecretsInEveryForm(t *testing.T) {
	r := New(hxyToken, "", "  ", cyKey)
	for _, in := range []string{
		"invalid token " + hxyToken,
		"quoted: " + fmt.Sprintf("%q", cyKey),
		"query echo: /gpu/list?page=1&k=" + strings.NewReplacer("/", "%2F", "+", "%2B", "=", "%3D", "&", "%26").Replace(cyKey),
		"path echo: /x/" + strings.NewReplacer("/", "%2F", "&", "&").Replace(cyKey),
		`{"msg":"echo","raw":"` + strings.ReplaceAll(cyKey, "&", `\u0026`) + `"}`,
		"glued" + hxyToken + "glued",
	} {
		got := r.String(in)
		if strings.Contains(got, hxyToken) || strings.Contains(got, cyKey) || strings.Contains(got, "cy-key") {
			t.Errorf("%q -> %q: a secret is left", in, got)
		}
		if !strings.Contains(got, Mask) {
			t.Errorf("%q -> %q: nothing was masked", in, got)
		}
	}
}

func TestStringRemovesWhatLooksLikeACredential(t *testing.T) {
	var r *Redactor // no known secrets: the shapes alone must be enough
	basic := base64.StdEncoding.EncodeToString([]byte("user:hunter2-hunter2"))
	for in, want := range map[string]string{
		"invalid token: Bearer abcdefgh12345678":                    "invalid token: Bearer " + Mask,
		"Authorization: Bearer abcdefgh12345678 (from 10.0.0.1)":    "Authorization: Bearer " + Mask + " (from 10.0.0.1)",
		"authorization=5f0c3a1e9b7d":                                "authorization=" + Mask,
		"Proxy-Authorization: Basic " + basic:                       "Proxy-Authorization: Basic " + Mask,
		"GET /v1/list?page=2&api_key=s3cr3t&x=1":                    "GET /v1/list?page=2&api_key=" + Mask + "&x=1",
		"GET /v1/list?access_token=abc%2Fdef":                       "GET /v1/list?access_token=" + Mask,
		"?apikey=short":                                             "?apikey=" + Mask,
		`{"token":"tok-123","other":"kept"}`:                        `{"token":"` + Mask + `","other":"kept"}`,
		`{"password": "pw-1", "ssh_password":"pw-2"}`:               `{"password": "` + Mask + `", "ssh_password":"` + Mask + `"}`,
		`{\"client_secret\":\"abc\"}`:                               `{\"client_secret\":\"` + Mask + `\"}`,
		"map[Authorization:[Bearer abcdefgh12345678] Accept:[*/*]]": "map[Authorization:[Bearer " + Mask + "] Accept:[*/*]]",
		"X-Api-Key: k-0123456789":                                   "X-Api-Key: " + Mask,
		"upstream said: bearer abcdefgh12345678.":                   "upstream said: bearer " + Mask,
		"credentials Basic " + basic + " refused":                   "credentials Basic " + Mask + " refused",
		// What must stay: words that only resemble credentials.
		"Basic plan is sold out":              "Basic plan is sold out",
		"token_type=bearer":                   "token_type=bearer",
		"tokens: 5 left":                      "tokens: 5 left",
		"the token has expired":               "the token has expired",
		"request refused: wrong bearer token": "request refused: wrong bearer token",
		"GPU_MCP_AUTH_TOKEN is too short":     "GPU_MCP_AUTH_TOKEN is too short",
	} {
		if got := r.String(in); got != want {
			t.Errorf("%q\n got %q\nwant %q", in, got, want)
		}
	}
}

func TestAddAtRunTimeAndConcurrently(t *testing.T) {
	r := New()
	if got := r.String("pw ssh-pass-0001"); got != "pw ssh-pass-0001" {
		t.Fatalf("an unknown word was removed: %q", got)
	}
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Add(2)
		go func() { defer wg.Done(); r.Add(fmt.Sprintf("ssh-pass-%04d", i)) }()
		go func() { defer wg.Done(); _ = r.String("pw ssh-pass-0001") }()
	}
	wg.Wait()
	for i := range 20 {
		if got := r.String(fmt.Sprintf("pw ssh-pass-%04d!", i)); got != "pw "+Mask+"!" {
			t.Errorf("secret %d: %q", i, got)
		}
	}
	r.Add("short") // too short to be told from a word
	if got := r.String("too short"); got != "too short" {
		t.Errorf("a 5-character secret was removed: %q", got)
	}
}

func TestLongerSecretWins(t *testing.T) {
	r := New("abcd-efgh", "abcd-efgh-ijkl")
	if got := r.String("x abcd-efgh-ijkl y"); got != "x "+Mask+" y" {
		t.Fatalf("got %q", got)
	}
}

func TestWriterCatchesASecretSplitAcrossWrites(t *testing.T) {
	var out bytes.Buffer
	w := New(hxyToken).Writer(&out)
	half := len(hxyToken) / 2
	for _, p := range []string{"first line ok\nsecond: " + hxyToken[:half], hxyToken[half:] + " end\nthird "} {
		if n, err := w.Write([]byte(p)); n != len(p) || err != nil {
			t.Fatalf("Write: %d, %v", n, err)
		}
	}
	if got := out.String(); got != "first line ok\nsecond: "+Mask+" end\n" {
		t.Fatalf("written before Flush: %q", got)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if got := out.String(); !strings.HasSuffix(got, "\nthird ") {
		t.Fatalf("Flush did not write the rest: %q", got)
	}
}

func TestWriterBoundsALineWithoutEnd(t *testing.T) {
	var out bytes.Buffer
	w := New().Writer(&out)
	w.Write(bytes.Repeat([]byte("x"), maxLine+1))
	if out.Len() != maxLine+1 {
		t.Fatalf("a line longer than %d bytes was held back: %d written", maxLine, out.Len())
	}
}

func BenchmarkString(b *testing.B) {
	r := New(hxyToken, cyKey, "datenfab-token-0123456789")
	for name, line := range map[string]string{
		"plain log line": `2026-01-02T03:04:05Z WRN vendor call failed error="chenyu: list offers: HTTP 500: {\"code\":-2,\"msg\":\"系统异常\"}" provider=chenyu took=12ms`,
		"echoed request": `2026-01-02T03:04:05Z WRN vendor call failed error="chenyu: list offers: HTTP 401: invalid token: Bearer abcdefgh12345678 for GET /gpu/list?page=1&api_key=x" provider=chenyu`,
	} {
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				_ = r.String(line)
			}
		})
	}
}
