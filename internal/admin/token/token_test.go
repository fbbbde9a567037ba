package token_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"strings"
	"testing"

	"github.com/jitprov/jitprov/internal/admin/token"
)

func TestGenerate(t *testing.T) {
	seen := map[string]bool{}
	for range 100 {
		secret, hash, err := token.Generate()
		if err != nil {
			t.Fatalf("Generate: %v", err)
		}
		if !strings.HasPrefix(secret, "jpt_") || len(secret) != 47 {
			t.Errorf("Generate: secret %q, want jpt_ and 43 characters of base64url", secret)
		}
		raw, err := base64.RawURLEncoding.DecodeString(strings.TrimPrefix(secret, "jpt_"))
		if err != nil || len(raw) != 32 {
			t.Errorf("Generate: secret %q holds %d bytes (%v), want 32", secret, len(raw), err)
		}
		if !token.Valid(secret) {
			t.Errorf("Valid(%q) = false for a generated secret", secret)
		}
		want := sha256.Sum256([]byte(secret))
		if !bytes.Equal(hash, want[:]) || !bytes.Equal(token.Hash(secret), want[:]) {
			t.Errorf("Generate: hash %x, Hash %x; want the SHA-256 of the whole secret, %x", hash, token.Hash(secret), want)
		}
		if seen[secret] {
			t.Fatalf("Generate gave %q twice", secret)
		}
		seen[secret] = true
	}
}

func TestHashCoversThePrefix(t *testing.T) {
	secret, _, err := token.Generate()
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(token.Hash(secret), token.Hash(strings.TrimPrefix(secret, "jpt_"))) {
		t.Error("Hash ignores the prefix")
	}
}

func TestValid(t *testing.T) {
	good, _, err := token.Generate()
	if err != nil {
		t.Fatal(err)
	}
	body := good[len("jpt_"):]
	// 32 zero bytes end in "A"; "B" sets unused low bits: a second
	// spelling of the same bytes.
	zeros := "jpt_" + base64.RawURLEncoding.EncodeToString(make([]byte, 32))
	for _, c := range []struct {
		name, secret string
		want         bool
	}{
		{"generated", good, true},
		{"all zero bytes", zeros, true},
		{"empty", "", false},
		{"prefix only", "jpt_", false},
		{"no prefix", body, false},
		{"another prefix", "jpx_" + body, false},
		{"upper-case prefix", "JPT_" + body, false},
		{"one character short", good[:len(good)-1], false},
		{"one character more", good + "A", false},
		{"padded", good + "=", false},
		{"standard base64 alphabet", "jpt_+" + body[1:], false},
		{"a slash", "jpt_/" + body[1:], false},
		{"a space", "jpt_ " + body[1:], false},
		{"a trailing newline", good[:len(good)-1] + "\n", false},
		{"a non-ASCII character", "jpt_é" + body[2:], false},
		{"unused bits set", zeros[:len(zeros)-1] + "B", false},
		{"a JWT", "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJlc2lnbmF0dXJl", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := token.Valid(c.secret); got != c.want {
				t.Errorf("Valid(%q) = %v, want %v", c.secret, got, c.want)
			}
		})
	}
}
