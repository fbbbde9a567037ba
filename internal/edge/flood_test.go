package edge_test

import (
	"encoding/base64"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/jitprov/jitprov/internal/edge"
	"github.com/jitprov/jitprov/internal/testenv"
)

// fromClient makes every request of b come, through the trusted proxy
// (the test itself, at 127.0.0.1), from addr.
func fromClient(b *testenv.Browser, addr string) {
	base := b.Client().Transport
	if base == nil {
		base = http.DefaultTransport
	}
	b.Client().Transport = roundTripFunc(func(r *http.Request) (*http.Response, error) {
		r = r.Clone(r.Context())
		r.Header.Set("X-Forwarded-For", addr)
		return base.RoundTrip(r)
	})
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// A flood of forged SAML responses from one client is refused by its rate
// limit before it costs signature checks; the log says so in a few lines
// with counts, not a line each; and meanwhile health checks answer and a
// person signing in from elsewhere is signed in.
func TestForgedResponseFloodIsLimited(t *testing.T) {
	var logs testenv.Output
	const perClient = 30
	w := newWorld(t, 10, true, withLogger(logs.Logger()),
		withEdgeConfig(func(c *edge.Config) {
			c.RatePerClient = perClient
			c.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}
		}))

	// The attacker replays a real response form with its signature broken.
	w.idp.signsIn(person("00u-mallory", "mallory@acme.example"))
	attacker := newBrowser(t)
	fromClient(attacker, "203.0.113.66")
	action, form := startLogin(t, attacker, w.edgeURL, "/")
	raw, err := base64.StdEncoding.DecodeString(form.Get("SAMLResponse"))
	if err != nil {
		t.Fatal(err)
	}
	forged := strings.Replace(string(raw), "mallory@acme.example", "admin@acme.example", 1)
	form.Set("SAMLResponse", base64.StdEncoding.EncodeToString([]byte(forged)))

	const flood = 400
	var tooMany, refused, other atomic.Int64
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			b := newBrowser(t)
			fromClient(b, "203.0.113.66")
			for range flood / 8 {
				switch p := b.Post(action, form); p.Status {
				case http.StatusTooManyRequests:
					tooMany.Add(1)
				case http.StatusForbidden:
					refused.Add(1)
				default:
					other.Add(1)
				}
			}
		})
	}
	// Meanwhile: health answers, and another person signs in.
	healthy := newBrowser(t)
	for range 5 {
		if p := healthy.Get(w.edgeURL + "/healthz"); p.Status != http.StatusOK {
			t.Errorf("/healthz during the flood: %d", p.Status)
		}
	}
	w.idp.signsIn(person("00u-bob", "bob@acme.example"))
	bob := newBrowser(t)
	fromClient(bob, "198.51.100.20")
	if resp, _ := login(t, bob, w.edgeURL, "/home"); resp.Status != http.StatusSeeOther {
		t.Errorf("a good login from another client during the flood: %d %s", resp.Status, resp.Body)
	}
	wg.Wait()

	t.Logf("flood of %d: %d refused by the rate limit, %d refused as forged, %d other", flood, tooMany.Load(), refused.Load(), other.Load())
	if other.Load() != 0 {
		t.Errorf("%d forged responses got neither 429 nor 403", other.Load())
	}
	// The attacker's own login start counts too; the sliding window may
	// admit a few more at a window boundary.
	if n := refused.Load(); n > perClient+5 {
		t.Errorf("%d forged responses reached validation, want at most about %d (the client's limit)", n, perClient)
	}
	for _, line := range []string{"SAML response rejected", "over the per-client rate limit"} {
		if n := logs.Count(line); n == 0 || n > 5 {
			t.Errorf("%d log lines %q for a flood of %d, want a few (sampled, with counts)", n, line, flood)
		}
	}
	// Another client is not held back by the attacker's limit.
	if p := healthy.Get(w.edgeURL + "/saml/acme/idp/login?return_to=" + url.QueryEscape("/")); p.Status != http.StatusFound {
		t.Errorf("login start from another client after the flood: %d", p.Status)
	}
}
