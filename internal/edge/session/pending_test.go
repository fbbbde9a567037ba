package session_test

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jitprov/jitprov/internal/edge/session"
)

const okta = "acme/okta-main"

// start has browser b start a login: the login-start handler issues p.
func start(t *testing.T, m *session.Manager, b *browser, p session.PendingLogin) {
	t.Helper()
	w := httptest.NewRecorder()
	if err := m.IssuePending(w, b.request(), p); err != nil {
		t.Fatalf("IssuePending(%s): %v", p.RequestID, err)
	}
	b.keep(w)
}

// take has browser b come back to the ACS with requestID.
func take(t *testing.T, m *session.Manager, b *browser, conn, requestID string) (session.PendingLogin, error) {
	t.Helper()
	w := httptest.NewRecorder()
	p, err := m.TakePending(w, b.request(), conn, requestID)
	b.keep(w)
	return p, err
}

func TestPendingRoundTrip(t *testing.T) {
	clk := newClock()
	m := manager(t, keys(t, secret(1)), session.Options{Now: clk.Now})
	b := newBrowser(t, "https://edge.example/")
	want := session.PendingLogin{
		RequestID: "id-4f1c", ConnectionKey: okta, ReturnTo: "/projects?tab=2",
		Nonce: "n-0S6_WzA2Mj", PKCEVerifier: strings.Repeat("v", 64),
		Traceparent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
	}
	start(t, m, b, want)
	if got := m.PendingRequestIDs(b.request(), okta); !slices.Equal(got, []string{"id-4f1c"}) {
		t.Fatalf("PendingRequestIDs = %q", got)
	}
	clk.Advance(time.Minute)
	got, err := take(t, m, b, okta, "id-4f1c")
	if err != nil {
		t.Fatalf("TakePending: %v", err)
	}
	want.ExpiresAt = clk.Now().Add(-time.Minute).Add(session.DefaultPendingTTL)
	if !got.ExpiresAt.Equal(want.ExpiresAt) {
		t.Errorf("ExpiresAt = %s, want %s", got.ExpiresAt, want.ExpiresAt)
	}
	got.ExpiresAt, want.ExpiresAt = time.Time{}, time.Time{}
	if got != want {
		t.Errorf("TakePending = %+v, want %+v", got, want)
	}
}

func TestPendingRequestIDs(t *testing.T) {
	for _, tc := range []struct {
		name string
		run  func(t *testing.T, clk *clock, m *session.Manager, b, other *browser) []string
		want []string
	}{
		{"browser without cookie has none", func(t *testing.T, _ *clock, m *session.Manager, _, other *browser) []string {
			start(t, m, other, session.PendingLogin{RequestID: "theirs", ConnectionKey: okta})
			return m.PendingRequestIDs(requestWith(), okta)
		}, nil},
		{"another browser's logins are not ours", func(t *testing.T, _ *clock, m *session.Manager, b, other *browser) []string {
			start(t, m, other, session.PendingLogin{RequestID: "theirs", ConnectionKey: okta})
			start(t, m, b, session.PendingLogin{RequestID: "ours", ConnectionKey: okta})
			return m.PendingRequestIDs(b.request(), okta)
		}, []string{"ours"}},
		{"only the asked connection", func(t *testing.T, _ *clock, m *session.Manager, b, _ *browser) []string {
			start(t, m, b, session.PendingLogin{RequestID: "a", ConnectionKey: okta})
			start(t, m, b, session.PendingLogin{RequestID: "b", ConnectionKey: "acme/entra"})
			start(t, m, b, session.PendingLogin{RequestID: "c", ConnectionKey: okta})
			return m.PendingRequestIDs(b.request(), okta)
		}, []string{"c", "a"}},
		{"expired entries dropped", func(t *testing.T, clk *clock, m *session.Manager, b, _ *browser) []string {
			start(t, m, b, session.PendingLogin{RequestID: "old", ConnectionKey: okta})
			clk.Advance(6 * time.Minute)
			start(t, m, b, session.PendingLogin{RequestID: "new", ConnectionKey: okta})
			clk.Advance(5 * time.Minute) // old is 11 minutes old, new 5
			// Read the cookie as sent, not as the jar would have dropped it.
			return m.PendingRequestIDs(b.request(), okta)
		}, []string{"new"}},
		{"own shorter expiry honoured", func(t *testing.T, clk *clock, m *session.Manager, b, _ *browser) []string {
			start(t, m, b, session.PendingLogin{RequestID: "short", ConnectionKey: okta, ExpiresAt: clk.Now().Add(time.Minute)})
			start(t, m, b, session.PendingLogin{RequestID: "long", ConnectionKey: okta})
			clk.Advance(2 * time.Minute)
			return m.PendingRequestIDs(b.request(), okta)
		}, []string{"long"}},
		{"at most five, newest first", func(t *testing.T, _ *clock, m *session.Manager, b, _ *browser) []string {
			for i := 1; i <= 7; i++ {
				start(t, m, b, session.PendingLogin{RequestID: fmt.Sprint("id-", i), ConnectionKey: okta})
			}
			return m.PendingRequestIDs(b.request(), okta)
		}, []string{"id-7", "id-6", "id-5", "id-4", "id-3"}},
		{"the same request issued twice counts once", func(t *testing.T, _ *clock, m *session.Manager, b, _ *browser) []string {
			start(t, m, b, session.PendingLogin{RequestID: "a", ConnectionKey: okta})
			start(t, m, b, session.PendingLogin{RequestID: "b", ConnectionKey: okta})
			start(t, m, b, session.PendingLogin{RequestID: "a", ConnectionKey: okta})
			return m.PendingRequestIDs(b.request(), okta)
		}, []string{"a", "b"}},
		{"a used entry is gone, the others stay", func(t *testing.T, _ *clock, m *session.Manager, b, _ *browser) []string {
			start(t, m, b, session.PendingLogin{RequestID: "a", ConnectionKey: okta})
			start(t, m, b, session.PendingLogin{RequestID: "b", ConnectionKey: okta})
			if _, err := take(t, m, b, okta, "a"); err != nil {
				t.Fatal(err)
			}
			return m.PendingRequestIDs(b.request(), okta)
		}, []string{"b"}},
		{"a session cookie is not a pending list", func(t *testing.T, _ *clock, m *session.Manager, _, _ *browser) []string {
			w := httptest.NewRecorder()
			if err := m.Issue(w, ada); err != nil {
				t.Fatal(err)
			}
			c := setCookies(t, w)[0]
			return m.PendingRequestIDs(requestWith(&http.Cookie{Name: session.DefaultPendingCookieName, Value: c.Value}), okta)
		}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clk := newClock()
			m := manager(t, keys(t, secret(1)), session.Options{Now: clk.Now})
			b, other := newBrowser(t, "https://edge.example/"), newBrowser(t, "https://edge.example/")
			if got := tc.run(t, clk, m, b, other); !slices.Equal(got, tc.want) {
				t.Fatalf("PendingRequestIDs = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestTakePending(t *testing.T) {
	for _, tc := range []struct {
		name string
		run  func(t *testing.T, clk *clock, m *session.Manager, b, other *browser) error
		want error
	}{
		{"first use", func(t *testing.T, _ *clock, m *session.Manager, b, _ *browser) error {
			start(t, m, b, session.PendingLogin{RequestID: "a", ConnectionKey: okta})
			_, err := take(t, m, b, okta, "a")
			return err
		}, nil},
		{"used entry cannot be used again", func(t *testing.T, _ *clock, m *session.Manager, b, _ *browser) error {
			start(t, m, b, session.PendingLogin{RequestID: "a", ConnectionKey: okta})
			if _, err := take(t, m, b, okta, "a"); err != nil {
				t.Fatal(err)
			}
			_, err := take(t, m, b, okta, "a")
			return err
		}, session.ErrNoPending},
		{"another browser's request", func(t *testing.T, _ *clock, m *session.Manager, b, other *browser) error {
			start(t, m, other, session.PendingLogin{RequestID: "a", ConnectionKey: okta})
			_, err := take(t, m, b, okta, "a")
			return err
		}, session.ErrNoPending},
		{"another connection", func(t *testing.T, _ *clock, m *session.Manager, b, _ *browser) error {
			start(t, m, b, session.PendingLogin{RequestID: "a", ConnectionKey: okta})
			_, err := take(t, m, b, "globex/okta-main", "a")
			return err
		}, session.ErrNoPending},
		{"expired", func(t *testing.T, clk *clock, m *session.Manager, b, _ *browser) error {
			start(t, m, b, session.PendingLogin{RequestID: "a", ConnectionKey: okta})
			clk.Advance(session.DefaultPendingTTL)
			_, err := take(t, m, b, okta, "a")
			return err
		}, session.ErrNoPending},
		{"dropped as the sixth oldest", func(t *testing.T, _ *clock, m *session.Manager, b, _ *browser) error {
			for i := 1; i <= 6; i++ {
				start(t, m, b, session.PendingLogin{RequestID: fmt.Sprint("id-", i), ConnectionKey: okta})
			}
			_, err := take(t, m, b, okta, "id-1")
			return err
		}, session.ErrNoPending},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clk := newClock()
			m := manager(t, keys(t, secret(1)), session.Options{Now: clk.Now})
			b, other := newBrowser(t, "https://edge.example/"), newBrowser(t, "https://edge.example/")
			if err := tc.run(t, clk, m, b, other); !errors.Is(err, tc.want) || (tc.want == nil && err != nil) {
				t.Fatalf("TakePending error = %v, want %v", err, tc.want)
			}
		})
	}
}

// TestTakeLastClearsCookie: taking the only pending login removes the
// cookie instead of leaving an empty one behind.
func TestTakeLastClearsCookie(t *testing.T) {
	m := manager(t, keys(t, secret(1)), session.Options{})
	b := newBrowser(t, "https://edge.example/")
	start(t, m, b, session.PendingLogin{RequestID: "a", ConnectionKey: okta})
	w := httptest.NewRecorder()
	if _, err := m.TakePending(w, b.request(), okta, "a"); err != nil {
		t.Fatal(err)
	}
	cs := setCookies(t, w)
	if len(cs) != 1 || cs[0].Name != session.DefaultPendingCookieName || cs[0].MaxAge >= 0 {
		t.Fatalf("Set-Cookie = %+v, want the pending cookie removed", cs)
	}
}

func TestPendingCookieAttributes(t *testing.T) {
	for _, tc := range []struct {
		name         string
		opts         session.Options
		wantName     string
		wantSecure   bool
		wantSameSite http.SameSite
	}{
		// Must survive the IdP's cross-site POST to the ACS.
		{"production", session.Options{}, "__Host-jitprov-login", true, http.SameSiteNoneMode},
		// None without Secure is refused by browsers; same-site IdPs only.
		{"insecure development", session.Options{Insecure: true}, "jitprov-login", false, http.SameSiteLaxMode},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clk := newClock()
			tc.opts.Now = clk.Now
			m := manager(t, keys(t, secret(1)), tc.opts)
			w := httptest.NewRecorder()
			if err := m.IssuePending(w, requestWith(), session.PendingLogin{RequestID: "a", ConnectionKey: okta}); err != nil {
				t.Fatal(err)
			}
			m.ClearPending(w)
			cs := setCookies(t, w)
			if len(cs) != 2 {
				t.Fatalf("%d cookies, want 2", len(cs))
			}
			for i, c := range cs {
				if c.Name != tc.wantName || !c.HttpOnly || c.Secure != tc.wantSecure || c.SameSite != tc.wantSameSite ||
					c.Path != "/" || c.Domain != "" {
					t.Errorf("cookie %d = %+v, want %s HttpOnly Secure=%v SameSite=%v Path=/ no Domain",
						i, c, tc.wantName, tc.wantSecure, tc.wantSameSite)
				}
			}
			if want := int(session.DefaultPendingTTL.Seconds()); cs[0].MaxAge != want {
				t.Errorf("Max-Age = %d, want %d", cs[0].MaxAge, want)
			}
			if cs[1].MaxAge >= 0 {
				t.Errorf("removal Max-Age = %d, want negative", cs[1].MaxAge)
			}
		})
	}
}

func TestPendingSize(t *testing.T) {
	clk := newClock()
	m := manager(t, keys(t, secret(1)), session.Options{Now: clk.Now})

	t.Run("oldest dropped to fit", func(t *testing.T) {
		b := newBrowser(t, "https://edge.example/")
		for i := 1; i <= 5; i++ {
			start(t, m, b, session.PendingLogin{
				RequestID: fmt.Sprint("id-", i), ConnectionKey: okta,
				ReturnTo: "/" + strings.Repeat("r", 1000),
			})
		}
		got := m.PendingRequestIDs(b.request(), okta)
		if len(got) == 0 || len(got) >= 5 || got[0] != "id-5" {
			t.Fatalf("PendingRequestIDs = %q, want the newest few", got)
		}
		for _, c := range b.jar.Cookies(b.u) {
			if n := len(c.Name) + len(c.Value); n > 4096 {
				t.Fatalf("cookie of %d bytes", n)
			}
		}
	})
	t.Run("single entry too large", func(t *testing.T) {
		w := httptest.NewRecorder()
		err := m.IssuePending(w, requestWith(), session.PendingLogin{
			RequestID: "a", ConnectionKey: okta, ReturnTo: "/" + strings.Repeat("r", 4000),
		})
		if !errors.Is(err, session.ErrTooLarge) {
			t.Fatalf("IssuePending error = %v, want ErrTooLarge", err)
		}
		if got := w.Result().Header.Values("Set-Cookie"); len(got) != 0 {
			t.Errorf("Set-Cookie written: %q", got)
		}
	})
}

func TestIssuePendingRefuses(t *testing.T) {
	clk := newClock()
	m := manager(t, keys(t, secret(1)), session.Options{Now: clk.Now})
	for _, tc := range []struct {
		name string
		p    session.PendingLogin
	}{
		{"no request id", session.PendingLogin{ConnectionKey: okta}},
		{"no connection", session.PendingLogin{RequestID: "a"}},
		{"already expired", session.PendingLogin{RequestID: "a", ConnectionKey: okta, ExpiresAt: clk.Now().Add(-time.Second)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := m.IssuePending(httptest.NewRecorder(), requestWith(), tc.p); err == nil {
				t.Fatal("IssuePending accepted it")
			}
		})
	}
}
