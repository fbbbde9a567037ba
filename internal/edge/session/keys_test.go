package session

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func secret(b byte) []byte { return bytes.Repeat([]byte{b}, KeySize) }

func TestNewKeysLengths(t *testing.T) {
	for _, tc := range []struct {
		name     string
		current  []byte
		previous [][]byte
		wantErr  string
	}{
		{"current only", secret(1), nil, ""},
		{"with previous", secret(1), [][]byte{secret(2), secret(3)}, ""},
		{"nil current", nil, nil, "current key is 0 bytes"},
		{"short current", make([]byte, 16), nil, "current key is 16 bytes"},
		{"long current", make([]byte, 33), nil, "current key is 33 bytes"},
		{"short previous", secret(1), [][]byte{secret(2), make([]byte, 31)}, "previous key 2 is 31 bytes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k, err := NewKeys(tc.current, tc.previous...)
			if tc.wantErr == "" {
				if err != nil || k == nil {
					t.Fatalf("NewKeys: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("NewKeys error = %v, want one containing %q", err, tc.wantErr)
			}
		})
	}
}

// TestPurposeSeparation: under the same secret and even the same cookie
// name, a value sealed for one purpose does not open as another.
func TestPurposeSeparation(t *testing.T) {
	k, err := NewKeys(secret(7))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name             string
		sealP, openP     purpose
		sealName, opName string
		wantOpen         bool
	}{
		{"same purpose and name", purposeSession, purposeSession, "c", "c", true},
		{"pending as session", purposePending, purposeSession, "c", "c", false},
		{"session as pending", purposeSession, purposePending, "c", "c", false},
		{"other cookie name", purposeSession, purposeSession, "c", "d", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v, err := k.seal(tc.sealP, tc.sealName, []byte(`{"uid":"u"}`))
			if err != nil {
				t.Fatal(err)
			}
			_, err = k.open(tc.openP, tc.opName, v)
			if got := err == nil; got != tc.wantOpen {
				t.Fatalf("opened = %v, want %v (err %v)", got, tc.wantOpen, err)
			}
		})
	}
}

func TestSealIsRandomised(t *testing.T) {
	k, err := NewKeys(secret(7))
	if err != nil {
		t.Fatal(err)
	}
	a, _ := k.seal(purposeSession, "c", []byte("same"))
	b, _ := k.seal(purposeSession, "c", []byte("same"))
	if a == b {
		t.Fatal("two seals of the same plaintext are equal: nonce not random")
	}
}

func TestOpenRejectsGarbage(t *testing.T) {
	k, err := NewKeys(secret(7))
	if err != nil {
		t.Fatal(err)
	}
	good, _ := k.seal(purposeSession, "c", []byte("x"))
	raw, _ := base64.RawURLEncoding.DecodeString(good)
	wrongVersion := append([]byte{9}, raw[1:]...)
	for _, tc := range []struct{ name, value string }{
		{"empty", ""},
		{"not base64", "!!!"},
		{"padded base64", good + "=="},
		{"too short", base64.RawURLEncoding.EncodeToString(raw[:20])},
		{"wrong version", base64.RawURLEncoding.EncodeToString(wrongVersion)},
		{"truncated tag", good[:len(good)-2]},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := k.open(purposeSession, "c", tc.value); err == nil {
				t.Fatal("opened")
			}
		})
	}
}

func TestDecodeKey(t *testing.T) {
	want := secret(0xab)
	for _, tc := range []struct {
		name, in string
		ok       bool
	}{
		{"hex", hex.EncodeToString(want), true},
		{"hex with newline", hex.EncodeToString(want) + "\n", true},
		{"base64 std", base64.StdEncoding.EncodeToString(want), true},
		{"base64 raw url", base64.RawURLEncoding.EncodeToString(want), true},
		{"short base64", base64.StdEncoding.EncodeToString(want[:16]), false},
		{"garbage", "not a key", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := DecodeKey(tc.in)
			if tc.ok != (err == nil) {
				t.Fatalf("DecodeKey err = %v, want ok=%v", err, tc.ok)
			}
			if tc.ok && !bytes.Equal(got, want) {
				t.Fatalf("DecodeKey = %x, want %x", got, want)
			}
		})
	}
}

// TestPendingCookieHoldsAtMostFive looks inside the sealed cookie: the
// sixth login drops the oldest from the cookie itself, not only from what
// is read back.
func TestPendingCookieHoldsAtMostFive(t *testing.T) {
	k, err := NewKeys(secret(7))
	if err != nil {
		t.Fatal(err)
	}
	m, err := NewManager(k, Options{})
	if err != nil {
		t.Fatal(err)
	}
	var value string
	for i := range 8 {
		r := httptest.NewRequest(http.MethodGet, "https://edge.example/", nil)
		if value != "" {
			r.AddCookie(&http.Cookie{Name: m.pendingName, Value: value})
		}
		w := httptest.NewRecorder()
		if err := m.IssuePending(w, r, PendingLogin{RequestID: fmt.Sprint("id-", i), ConnectionKey: "acme/okta"}); err != nil {
			t.Fatal(err)
		}
		value = w.Result().Cookies()[0].Value
	}
	payload, err := k.open(purposePending, m.pendingName, value)
	if err != nil {
		t.Fatal(err)
	}
	var entries []pendingWire
	if err := json.Unmarshal(payload, &entries); err != nil {
		t.Fatal(err)
	}
	if len(entries) != MaxPending || entries[0].RequestID != "id-7" || entries[MaxPending-1].RequestID != "id-3" {
		t.Fatalf("cookie holds %+v, want id-7 … id-3", entries)
	}
}
