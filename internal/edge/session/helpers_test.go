package session_test

import (
	"bytes"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/jitprov/jitprov/internal/edge/session"
)

// clock is a settable time source.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *clock { return &clock{now: time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }

func (c *clock) Advance(d time.Duration) { c.mu.Lock(); c.now = c.now.Add(d); c.mu.Unlock() }

func secret(b byte) []byte { return bytes.Repeat([]byte{b}, session.KeySize) }

func keys(t *testing.T, current []byte, previous ...[]byte) *session.Keys {
	t.Helper()
	k, err := session.NewKeys(current, previous...)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func manager(t *testing.T, k *session.Keys, opts session.Options) *session.Manager {
	t.Helper()
	m, err := session.NewManager(k, opts)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// browser keeps cookies the way a browser does (expiry, removal by
// Max-Age), through the standard cookie jar.
type browser struct {
	jar *cookiejar.Jar
	u   *url.URL
}

func newBrowser(t *testing.T, rawURL string) *browser {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	return &browser{jar: jar, u: u}
}

// request is a request from this browser, carrying its cookies.
func (b *browser) request() *http.Request {
	r := httptest.NewRequest(http.MethodGet, b.u.String(), nil)
	for _, c := range b.jar.Cookies(b.u) {
		r.AddCookie(c)
	}
	return r
}

// keep stores the cookies set on w.
func (b *browser) keep(w *httptest.ResponseRecorder) {
	b.jar.SetCookies(b.u, w.Result().Cookies())
}

// setCookies parses the Set-Cookie lines of w.
func setCookies(t *testing.T, w *httptest.ResponseRecorder) []*http.Cookie {
	t.Helper()
	var out []*http.Cookie
	for _, line := range w.Result().Header.Values("Set-Cookie") {
		c, err := http.ParseSetCookie(line)
		if err != nil {
			t.Fatalf("ParseSetCookie(%q): %v", line, err)
		}
		out = append(out, c)
	}
	return out
}

// requestWith builds a request carrying exactly the given cookies.
func requestWith(cookies ...*http.Cookie) *http.Request {
	r := httptest.NewRequest(http.MethodGet, "https://edge.example/", nil)
	for _, c := range cookies {
		r.AddCookie(&http.Cookie{Name: c.Name, Value: c.Value})
	}
	return r
}
