package webhooksig_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/jitprov/jitprov/events/webhooksig"
)

func TestVerify(t *testing.T) {
	secret := []byte("test-fixture-secret")
	body := []byte(`{"specversion":"1.0","id":"1"}`)
	at := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	good := webhooksig.Sign(secret, "d-1", body, at)
	other := webhooksig.Sign([]byte("rotated-secret"), "d-1", body, at)
	tests := []struct {
		name   string
		secret []byte
		id     string
		body   []byte
		header string
		now    time.Time
		want   error
	}{
		{"valid", secret, "d-1", body, good, at.Add(time.Minute), nil},
		{"valid during rotation", secret, "d-1", body, other + ",v1=" + strings.Split(good, "v1=")[1], at, nil},
		{"wrong secret", []byte("guess"), "d-1", body, good, at, webhooksig.ErrMismatch},
		{"tampered body", secret, "d-1", []byte(`{"specversion":"1.0","id":"2"}`), good, at, webhooksig.ErrMismatch},
		{"delivery id changed", secret, "d-2", body, good, at, webhooksig.ErrMismatch},
		{"timestamp changed", secret, "d-1", body, strings.Replace(good, "t=", "t=1", 1), at, webhooksig.ErrMismatch},
		{"replayed later", secret, "d-1", body, good, at.Add(10 * time.Minute), webhooksig.ErrStale},
		{"from the future", secret, "d-1", body, good, at.Add(-10 * time.Minute), webhooksig.ErrStale},
		{"no timestamp", secret, "d-1", body, "v1=" + strings.Split(good, "v1=")[1], at, webhooksig.ErrMalformed},
		{"no mac", secret, "d-1", body, "t=1", at, webhooksig.ErrMalformed},
		{"garbage", secret, "d-1", body, "sha256=abc", at, webhooksig.ErrMalformed},
		{"empty", secret, "d-1", body, "", at, webhooksig.ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := webhooksig.Verify(tt.secret, tt.id, tt.body, tt.header, tt.now, 0)
			if !errors.Is(err, tt.want) {
				t.Errorf("Verify = %v, want %v", err, tt.want)
			}
		})
	}
}
