package session_test

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/jitprov/jitprov/internal/edge/session"
)

var ada = session.Session{
	UserID:         "usr_01HZX",
	OrganizationID: "acme",
	ConnectionID:   "okta-main",
	Role:           "member",
	Email:          "ada@acme.example",
}

// issue returns the session cookie m sets for s.
func issue(t *testing.T, m *session.Manager, s session.Session) *http.Cookie {
	t.Helper()
	w := httptest.NewRecorder()
	if err := m.Issue(w, s); err != nil {
		t.Fatalf("Issue: %v", err)
	}
	cs := setCookies(t, w)
	if len(cs) != 1 {
		t.Fatalf("Issue set %d cookies, want 1", len(cs))
	}
	return cs[0]
}

func TestRoundTrip(t *testing.T) {
	clk := newClock()
	m := manager(t, keys(t, secret(1)), session.Options{Now: clk.Now})
	for _, tc := range []struct {
		name          string
		in            session.Session
		wantExpiresAt time.Time
	}{
		{"default expiry", ada, clk.Now().Add(session.DefaultTTL)},
		{"earlier expiry kept", withExpiry(ada, clk.Now().Add(time.Hour)), clk.Now().Add(time.Hour)},
		{"later expiry capped at TTL", withExpiry(ada, clk.Now().Add(72*time.Hour)), clk.Now().Add(session.DefaultTTL)},
		{"minimal", session.Session{UserID: "u", OrganizationID: "o"}, clk.Now().Add(session.DefaultTTL)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := issue(t, m, tc.in)
			got, err := m.Read(requestWith(c))
			if err != nil {
				t.Fatalf("Read: %v", err)
			}
			want := tc.in
			want.IssuedAt, want.ExpiresAt = clk.Now(), tc.wantExpiresAt
			if !got.IssuedAt.Equal(want.IssuedAt) || !got.ExpiresAt.Equal(want.ExpiresAt) {
				t.Errorf("times = %s..%s, want %s..%s", got.IssuedAt, got.ExpiresAt, want.IssuedAt, want.ExpiresAt)
			}
			got.IssuedAt, got.ExpiresAt, want.IssuedAt, want.ExpiresAt = time.Time{}, time.Time{}, time.Time{}, time.Time{}
			if got != want {
				t.Errorf("Read = %+v, want %+v", got, want)
			}
		})
	}
}

func withExpiry(s session.Session, t time.Time) session.Session { s.ExpiresAt = t; return s }

func TestIssueRefuses(t *testing.T) {
	clk := newClock()
	m := manager(t, keys(t, secret(1)), session.Options{Now: clk.Now})
	for _, tc := range []struct {
		name    string
		in      session.Session
		wantErr error // nil: any error
	}{
		{"no user", session.Session{OrganizationID: "o"}, nil},
		{"no organisation", session.Session{UserID: "u"}, nil},
		{"expiry in the past", withExpiry(ada, clk.Now().Add(-time.Second)), nil},
		// Browsers drop cookies over 4096 bytes; that must fail here, not
		// turn into a login loop.
		{"oversized", func() session.Session { s := ada; s.Email = strings.Repeat("a", 3000) + "@acme.example"; return s }(), session.ErrTooLarge},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := httptest.NewRecorder()
			err := m.Issue(w, tc.in)
			if err == nil || (tc.wantErr != nil && !errors.Is(err, tc.wantErr)) {
				t.Fatalf("Issue error = %v, want %v", err, tc.wantErr)
			}
			if got := w.Result().Header.Values("Set-Cookie"); len(got) != 0 {
				t.Errorf("Set-Cookie written despite the error: %q", got)
			}
		})
	}
}

func TestIssueLargestAccepted(t *testing.T) {
	m := manager(t, keys(t, secret(1)), session.Options{})
	s := ada
	s.Email = strings.Repeat("a", 2000) + "@acme.example"
	c := issue(t, m, s)
	if n := len(c.String()); n > 4096 {
		t.Fatalf("accepted a %d-byte cookie", n)
	}
}

func TestReadErrors(t *testing.T) {
	clk := newClock()
	k := keys(t, secret(1))
	m := manager(t, k, session.Options{Now: clk.Now})
	good := issue(t, m, ada)

	other := manager(t, keys(t, secret(2)), session.Options{Now: clk.Now})
	otherKey := issue(t, other, ada)

	renamed := manager(t, k, session.Options{Now: clk.Now, CookieName: "__Host-other", PendingCookieName: "__Host-other-login"})
	otherName := issue(t, renamed, ada)

	// A pending-login (state) cookie of the same keys, sent under the
	// session cookie's name.
	pw := httptest.NewRecorder()
	if err := m.IssuePending(pw, requestWith(), session.PendingLogin{RequestID: "id-1", ConnectionKey: "acme/okta"}); err != nil {
		t.Fatal(err)
	}
	state := setCookies(t, pw)[0]

	named := func(value string) *http.Cookie { return &http.Cookie{Name: m.CookieName(), Value: value} }
	flip := func(v string, i int) string {
		b := []byte(v)
		if b[i] == 'A' {
			b[i] = 'B'
		} else {
			b[i] = 'A'
		}
		return string(b)
	}

	for _, tc := range []struct {
		name    string
		cookies []*http.Cookie
		want    error
	}{
		{"no cookie", nil, session.ErrNoSession},
		{"other cookies only", []*http.Cookie{{Name: "theme", Value: "dark"}}, session.ErrNoSession},
		{"empty value", []*http.Cookie{named("")}, session.ErrInvalid},
		{"garbage", []*http.Cookie{named("hello")}, session.ErrInvalid},
		{"tampered first byte", []*http.Cookie{named(flip(good.Value, 0))}, session.ErrInvalid},
		{"tampered nonce", []*http.Cookie{named(flip(good.Value, 5))}, session.ErrInvalid},
		{"tampered ciphertext", []*http.Cookie{named(flip(good.Value, len(good.Value)/2))}, session.ErrInvalid},
		{"tampered tag", []*http.Cookie{named(flip(good.Value, len(good.Value)-3))}, session.ErrInvalid},
		{"truncated", []*http.Cookie{named(good.Value[:len(good.Value)-1])}, session.ErrInvalid},
		{"wrong key", []*http.Cookie{named(otherKey.Value)}, session.ErrInvalid},
		{"sealed for another cookie name", []*http.Cookie{named(otherName.Value)}, session.ErrInvalid},
		{"state cookie presented as session", []*http.Cookie{named(state.Value)}, session.ErrInvalid},
		{"planted invalid cookie before the good one", []*http.Cookie{named("planted"), good}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := m.Read(requestWith(tc.cookies...))
			if !errors.Is(err, tc.want) || (tc.want == nil && err != nil) {
				t.Fatalf("Read error = %v, want %v", err, tc.want)
			}
			if tc.want != nil && s != (session.Session{}) {
				t.Errorf("Read returned %+v with an error", s)
			}
		})
	}
}

func TestExpiry(t *testing.T) {
	for _, tc := range []struct {
		name    string
		expires time.Duration // of the issued session, 0: TTL
		ttlRead time.Duration // TTL of the manager that reads, 0: default
		advance time.Duration
		want    error
	}{
		{"fresh", 0, 0, 0, nil},
		{"just before expiry", 0, 0, session.DefaultTTL - time.Second, nil},
		{"at expiry", 0, 0, session.DefaultTTL, session.ErrExpired},
		{"long after", 0, 0, 30 * 24 * time.Hour, session.ErrExpired},
		{"own expiry passed", time.Hour, 0, time.Hour + time.Second, session.ErrExpired},
		{"TTL lowered after issue", 0, time.Hour, 2 * time.Hour, session.ErrExpired},
		{"TTL lowered, still inside", 0, time.Hour, 30 * time.Minute, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clk := newClock()
			k := keys(t, secret(1))
			s := ada
			if tc.expires != 0 {
				s.ExpiresAt = clk.Now().Add(tc.expires)
			}
			c := issue(t, manager(t, k, session.Options{Now: clk.Now}), s)
			clk.Advance(tc.advance)
			_, err := manager(t, k, session.Options{Now: clk.Now, TTL: tc.ttlRead}).Read(requestWith(c))
			if !errors.Is(err, tc.want) || (tc.want == nil && err != nil) {
				t.Fatalf("Read error = %v, want %v", err, tc.want)
			}
		})
	}
}

func TestKeyRotation(t *testing.T) {
	a, b, c := secret(0xa), secret(0xb), secret(0xc)
	for _, tc := range []struct {
		name         string
		sealWith     *session.Keys
		openWith     *session.Keys
		wantReadable bool
	}{
		{"old current opened after rotation", keys(t, a), keys(t, b, a), true},
		{"opened among several previous keys", keys(t, a), keys(t, c, b, a), true},
		{"new current opened before others roll", keys(t, b, a), keys(t, b, a), true},
		{"new cookie opened by a replica not yet rotated", keys(t, b, a), keys(t, a, b), true},
		{"old key removed", keys(t, a), keys(t, b), false},
		{"old key removed after two rotations", keys(t, a), keys(t, c, b), false},
		{"sealed with current, not with previous", keys(t, b, a), keys(t, a), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cookie := issue(t, manager(t, tc.sealWith, session.Options{}), ada)
			_, err := manager(t, tc.openWith, session.Options{}).Read(requestWith(cookie))
			switch {
			case tc.wantReadable && err != nil:
				t.Fatalf("Read: %v", err)
			case !tc.wantReadable && !errors.Is(err, session.ErrInvalid):
				t.Fatalf("Read error = %v, want ErrInvalid", err)
			}
		})
	}
}

func TestCookieAttributes(t *testing.T) {
	clk := newClock()
	for _, tc := range []struct {
		name         string
		opts         session.Options
		wantName     string
		wantSecure   bool
		wantSameSite http.SameSite
	}{
		{"production default", session.Options{}, "__Host-jitprov", true, http.SameSiteLaxMode},
		{"strict", session.Options{SameSite: http.SameSiteStrictMode}, "__Host-jitprov", true, http.SameSiteStrictMode},
		{"custom name", session.Options{CookieName: "__Host-app"}, "__Host-app", true, http.SameSiteLaxMode},
		{"insecure development", session.Options{Insecure: true}, "jitprov", false, http.SameSiteLaxMode},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.opts.Now = clk.Now
			m := manager(t, keys(t, secret(1)), tc.opts)
			w := httptest.NewRecorder()
			if err := m.Issue(w, ada); err != nil {
				t.Fatal(err)
			}
			m.Clear(w)
			cs := setCookies(t, w)
			if len(cs) != 2 {
				t.Fatalf("%d cookies, want the session and its removal", len(cs))
			}
			for i, c := range cs {
				if c.Name != tc.wantName {
					t.Errorf("cookie %d name = %q, want %q", i, c.Name, tc.wantName)
				}
				if !c.HttpOnly {
					t.Errorf("cookie %d not HttpOnly", i)
				}
				if c.Secure != tc.wantSecure {
					t.Errorf("cookie %d Secure = %v, want %v", i, c.Secure, tc.wantSecure)
				}
				if c.SameSite != tc.wantSameSite {
					t.Errorf("cookie %d SameSite = %v, want %v", i, c.SameSite, tc.wantSameSite)
				}
				// __Host- rules: Secure, Path=/, no Domain. Path=/ and no
				// Domain hold for every name.
				if c.Path != "/" || c.Domain != "" {
					t.Errorf("cookie %d Path=%q Domain=%q, want / and none", i, c.Path, c.Domain)
				}
				if strings.HasPrefix(c.Name, "__Host-") && !c.Secure {
					t.Errorf("cookie %d: __Host- name without Secure", i)
				}
			}
			if want := int(session.DefaultTTL.Seconds()); cs[0].MaxAge != want {
				t.Errorf("session Max-Age = %d, want %d", cs[0].MaxAge, want)
			}
			if cs[1].MaxAge >= 0 || cs[1].Value != "" {
				t.Errorf("removal Max-Age = %d value %q, want negative and empty", cs[1].MaxAge, cs[1].Value)
			}
		})
	}
}

func TestClearSignsOut(t *testing.T) {
	m := manager(t, keys(t, secret(1)), session.Options{})
	b := newBrowser(t, "https://edge.example/")
	w := httptest.NewRecorder()
	if err := m.Issue(w, ada); err != nil {
		t.Fatal(err)
	}
	b.keep(w)
	if _, err := m.Read(b.request()); err != nil {
		t.Fatalf("Read after Issue: %v", err)
	}
	w = httptest.NewRecorder()
	m.Clear(w)
	b.keep(w)
	if _, err := m.Read(b.request()); !errors.Is(err, session.ErrNoSession) {
		t.Fatalf("Read after Clear error = %v, want ErrNoSession", err)
	}
}

func TestNewManagerRejects(t *testing.T) {
	k := keys(t, secret(1))
	for _, tc := range []struct {
		name string
		keys *session.Keys
		opts session.Options
	}{
		{"no keys", nil, session.Options{}},
		{"SameSite None session", k, session.Options{SameSite: http.SameSiteNoneMode}},
		{"__Host- name when insecure", k, session.Options{Insecure: true, CookieName: "__Host-x"}},
		{"__Secure- pending name when insecure", k, session.Options{Insecure: true, PendingCookieName: "__Secure-x"}},
		{"invalid cookie name", k, session.Options{CookieName: "a b"}},
		{"same names", k, session.Options{CookieName: "x", PendingCookieName: "x"}},
		{"tiny TTL", k, session.Options{TTL: time.Second}},
		{"negative pending TTL", k, session.Options{PendingTTL: -time.Minute}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := session.NewManager(tc.keys, tc.opts); err == nil {
				t.Fatal("NewManager accepted it")
			}
		})
	}
}

// A cookie domain lets forward-auth work for applications on other hosts.
func TestSessionCookieDomain(t *testing.T) {
	keys, err := session.NewKeys(make([]byte, 32)) // TEST KEY
	if err != nil {
		t.Fatal(err)
	}
	m, err := session.NewManager(keys, session.Options{Domain: ".Example.com"})
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	if err := m.Issue(rec, session.Session{UserID: "u", OrganizationID: "o"}); err != nil {
		t.Fatal(err)
	}
	c := rec.Result().Cookies()[0]
	if c.Name != "__Secure-jitprov" || c.Domain != "example.com" || !c.Secure {
		t.Errorf("got cookie %s domain %q secure %t, want __Secure-jitprov for example.com, Secure", c.Name, c.Domain, c.Secure)
	}
	rec = httptest.NewRecorder()
	m.Clear(rec)
	if cl := rec.Result().Cookies()[0]; cl.Domain != "example.com" {
		t.Errorf("logout clears domain %q, want example.com (or the browser keeps the cookie)", cl.Domain)
	}
	if _, err := session.NewManager(keys, session.Options{Domain: "example.com", CookieName: "__Host-x"}); err == nil {
		t.Error("accepted a __Host- cookie with a Domain, which browsers drop")
	}
}
