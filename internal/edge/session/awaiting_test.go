package session

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

func TestAwaitingToken(t *testing.T) {
	now := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	keys, err := NewKeys(make([]byte, 32)) // TEST KEY
	if err != nil {
		t.Fatal(err)
	}
	m, err := NewManager(keys, Options{Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	tok, err := m.SealAwaiting(rec, Awaiting{OrganizationID: "acme", ConnectionID: "okta", ExternalID: "e1", ClaimsDigest: "d", ReturnTo: "/app"})
	if err != nil {
		t.Fatal(err)
	}
	cookie := rec.Result().Cookies()[0]
	if !cookie.HttpOnly || !cookie.Secure || cookie.Name != "__Host-jitprov-wait" {
		t.Errorf("binding cookie %+v", cookie)
	}
	same := httptest.NewRequest(http.MethodGet, "/", nil)
	same.AddCookie(cookie)
	out, err := m.OpenAwaiting(same, tok)
	if err != nil || out.ExternalID != "e1" || out.ReturnTo != "/app" || !out.Since.Equal(now) {
		t.Fatalf("got %+v, %v", out, err)
	}
	// Another browser (no cookie, or another wait's cookie) cannot use it.
	if _, err := m.OpenAwaiting(httptest.NewRequest(http.MethodGet, "/", nil), tok); !errors.Is(err, ErrInvalid) {
		t.Errorf("token from another browser: got %v, want ErrInvalid", err)
	}
	other := httptest.NewRequest(http.MethodGet, "/", nil)
	other.AddCookie(&http.Cookie{Name: cookie.Name, Value: "00112233445566778899aabbccddeeff"})
	if _, err := m.OpenAwaiting(other, tok); !errors.Is(err, ErrInvalid) {
		t.Errorf("token with another browser's binding: got %v, want ErrInvalid", err)
	}
	if _, err := m.OpenAwaiting(same, tok[:len(tok)-2]+"AA"); !errors.Is(err, ErrInvalid) {
		t.Errorf("tampered token: got %v, want ErrInvalid", err)
	}
	sess, err := keys.seal(purposeSession, m.CookieName(), []byte(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.OpenAwaiting(same, sess); !errors.Is(err, ErrInvalid) {
		t.Errorf("session value as token: got %v, want ErrInvalid", err)
	}
	now = now.Add(DefaultPendingTTL + time.Second)
	if _, err := m.OpenAwaiting(same, tok); !errors.Is(err, ErrExpired) {
		t.Errorf("old token: got %v, want ErrExpired", err)
	}
}

// A held sign-up's token lives as long as it was sealed for: past the
// pending-login TTL, short of its own.
func TestAwaitingTokenFor(t *testing.T) {
	now := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	keys, err := NewKeys(make([]byte, 32)) // TEST KEY
	if err != nil {
		t.Fatal(err)
	}
	m, err := NewManager(keys, Options{Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	tok, err := m.SealAwaitingFor(rec, Awaiting{OrganizationID: "acme", ConnectionID: "okta", ExternalID: "e1", LoginID: "l1", Held: true}, 8*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	cookie := rec.Result().Cookies()[0]
	if cookie.MaxAge < int((8*time.Hour).Seconds())-1 {
		t.Errorf("binding cookie lives %ds, want 8h", cookie.MaxAge)
	}
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	req.AddCookie(cookie)
	now = now.Add(DefaultPendingTTL + time.Minute)
	if out, err := m.OpenAwaiting(req, tok); err != nil || !out.Held || out.LoginID != "l1" {
		t.Errorf("past the pending TTL: %+v, %v; want the held token", out, err)
	}
	now = now.Add(8 * time.Hour)
	if _, err := m.OpenAwaiting(req, tok); !errors.Is(err, ErrExpired) {
		t.Errorf("past its own TTL: %v, want ErrExpired", err)
	}
}
