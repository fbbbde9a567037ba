package session

import (
	"errors"
	"testing"
	"time"
)

func TestAwaitingToken(t *testing.T) {
	now := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	keys, err := NewKeys(make([]byte, 32))
	if err != nil {
		t.Fatal(err)
	}
	m, err := NewManager(keys, Options{Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	in := Awaiting{OrganizationID: "acme", ConnectionID: "okta", ExternalID: "e1", ClaimsDigest: "d", ReturnTo: "/app"}
	tok, err := m.SealAwaiting(in)
	if err != nil {
		t.Fatal(err)
	}
	out, err := m.OpenAwaiting(tok)
	if err != nil || out.ExternalID != "e1" || out.ReturnTo != "/app" {
		t.Fatalf("got %+v, %v", out, err)
	}
	if _, err := m.OpenAwaiting(tok[:len(tok)-2] + "AA"); !errors.Is(err, ErrInvalid) {
		t.Errorf("tampered token: got %v, want ErrInvalid", err)
	}
	// A session cookie value is not an awaiting token.
	if _, err := m.OpenAwaiting(mustSeal(t, keys, purposeSession, m.CookieName())); !errors.Is(err, ErrInvalid) {
		t.Errorf("session value as token: got %v, want ErrInvalid", err)
	}
	now = now.Add(DefaultPendingTTL + time.Second)
	if _, err := m.OpenAwaiting(tok); !errors.Is(err, ErrExpired) {
		t.Errorf("old token: got %v, want ErrExpired", err)
	}
}

func mustSeal(t *testing.T, k *Keys, p purpose, name string) string {
	t.Helper()
	v, err := k.seal(p, name, []byte(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	return v
}
