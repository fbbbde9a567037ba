package authn

import (
	"errors"
	"net/http/httptest"
	"net/netip"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"

	"github.com/jitprov/jitprov/internal/admin/token"
)

// The failure limit counts the client a trusted proxy names, never an
// address the client wrote itself.
func TestClientAddr(t *testing.T) {
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	for _, c := range []struct{ peer, xff, want string }{
		{"203.0.113.7:5000", "", "203.0.113.7"},
		{"203.0.113.7:5000", "198.51.100.1", "203.0.113.7"}, // not from a proxy: the header is the client's
		{"10.0.0.2:5000", "198.51.100.1", "198.51.100.1"},
		{"10.0.0.2:5000", "6.6.6.6, 198.51.100.1, 10.0.0.3", "198.51.100.1"},
		{"10.0.0.2:5000", "[2001:db8::7]:443", "2001:db8::7"},
		{"10.0.0.2:5000", "", "10.0.0.2"},
	} {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = c.peer
		if c.xff != "" {
			r.Header.Set("X-Forwarded-For", c.xff)
		}
		if got := clientAddr(r, trusted); got != c.want {
			t.Errorf("peer %s, X-Forwarded-For %q: %s, want %s", c.peer, c.xff, got, c.want)
		}
	}
}

// Anything but a bearer token in the Authorization header is a failure,
// counted; without session keys, no cookie is looked at.
func TestMalformedCredentials(t *testing.T) {
	clock := clockwork.NewFakeClock()
	a := New(Config{Failures: token.NewLimiter(2, time.Minute, clock), Clock: clock})
	r := httptest.NewRequest("GET", "/", nil)
	if _, err := a.Principal(r); !errors.Is(err, ErrUnauthenticated) {
		t.Errorf("no credentials: %v", err)
	}
	r.Header.Set("Authorization", "Basic YWxhZGRpbjpvcGVuc2VzYW1l")
	for range 2 {
		if _, err := a.Principal(r); !errors.Is(err, ErrUnauthenticated) {
			t.Errorf("basic auth: %v", err)
		}
	}
	_, err := a.Principal(r)
	var lim *LimitError
	if !errors.As(err, &lim) || lim.RetryAfter <= 0 {
		t.Errorf("the third failure in a minute: %v, want a LimitError", err)
	}
}
