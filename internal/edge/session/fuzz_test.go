package session

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// FuzzOpenCookies opens what a browser can send back — the session and
// pending-login cookies and an awaiting token with its cookie — both as
// the fuzzer's raw values and as the fuzzer's plaintext sealed under the
// manager's keys for one purpose (what a bug in Issue, or an old format,
// could have sealed). Opening never panics, and:
//   - a value opens only for the purpose it was sealed for;
//   - Read refuses with ErrInvalid or ErrExpired, or returns a session
//     with a user and an organisation, not expired;
//   - pending logins have a request id and a connection key, are not
//     expired, at most MaxPending; taking one writes a cookie browsers
//     keep (HttpOnly, at most 4096 bytes);
//   - OpenAwaiting refuses with ErrInvalid or ErrExpired, or returns a
//     token bound to the browser's cookie, not expired.
func FuzzOpenCookies(f *testing.F) {
	now := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	k, err := NewKeys(bytes.Repeat([]byte{7}, KeySize))
	if err != nil {
		f.Fatal(err)
	}
	m, err := NewManager(k, Options{Now: func() time.Time { return now }})
	if err != nil {
		f.Fatal(err)
	}
	names := map[purpose]string{purposeSession: m.name, purposePending: m.pendingName, purposeAwaiting: awaitingName}

	// Real values of each purpose, and their plaintexts.
	w := httptest.NewRecorder()
	if err := m.Issue(w, Session{UserID: "u-1", OrganizationID: "acme", ConnectionID: "okta", Role: "member", Email: "ada@acme.example"}); err != nil {
		f.Fatal(err)
	}
	sessionValue := w.Result().Cookies()[0].Value
	w = httptest.NewRecorder()
	if err := m.IssuePending(w, httptest.NewRequest(http.MethodGet, "/", nil), PendingLogin{RequestID: "id-1", ConnectionKey: "acme/okta", ReturnTo: "/app", Nonce: "n", PKCEVerifier: "v"}); err != nil {
		f.Fatal(err)
	}
	pendingValue := w.Result().Cookies()[0].Value
	w = httptest.NewRecorder()
	token, err := m.SealAwaiting(w, Awaiting{OrganizationID: "acme", ConnectionID: "okta", ExternalID: "e-1", ClaimsDigest: "d", ReturnTo: "/app"})
	if err != nil {
		f.Fatal(err)
	}
	exp, iat := now.Add(time.Hour).Unix(), now.Unix()
	for _, s := range []struct {
		p         purpose
		plaintext string
	}{
		{purposeSession, `{"uid":"u-1","org":"acme","con":"okta","rol":"member","eml":"ada@acme.example","exp":` + itoa(exp) + `,"iat":` + itoa(iat) + `}`},
		{purposeSession, `{"uid":"u-1","org":"acme","exp":` + itoa(exp) + `,"iat":1}`},
		{purposeSession, `{"uid":"","org":"acme","exp":9223372036854775807,"iat":-9223372036854775808}`},
		{purposePending, `[{"id":"id-1","ck":"acme/okta","rt":"/app","n":"n","pv":"v","exp":` + itoa(exp) + `}]`},
		{purposePending, `[{"id":"a","ck":"k","exp":` + itoa(exp) + `},{"id":"a","ck":"k","exp":` + itoa(exp) + `},{"id":"","ck":"k","exp":1},{"id":"b","ck":"k","rt":"` + strings.Repeat("x", 5000) + `","exp":` + itoa(exp) + `}]`},
		{purposeAwaiting, `{"org":"acme","con":"okta","ext":"e-1","dig":"d","since":"2026-03-01T09:00:00Z","exp":"2026-03-01T09:10:00Z","bnd":"b1"}`},
		{purposeAwaiting, `{"bnd":"","exp":"9999-12-31T23:59:59Z"}`},
		{purposeSession, `null`},
	} {
		f.Add(uint8(purposeIndex(s.p)), []byte(s.plaintext), "")
	}
	f.Add(uint8(0), []byte{}, sessionValue)
	f.Add(uint8(1), []byte{}, pendingValue)
	f.Add(uint8(2), []byte{}, token)
	f.Add(uint8(0), []byte{}, sessionValue[:len(sessionValue)-2]+"AA")
	f.Add(uint8(0), []byte{}, "\x01"+sessionValue)

	f.Fuzz(func(t *testing.T, sel uint8, plaintext []byte, raw string) {
		p := purposes[int(sel)%len(purposes)]
		sealed, err := k.seal(p, names[p], plaintext)
		if err != nil {
			t.Fatal(err)
		}
		var binding struct {
			Binding string `json:"bnd"`
		}
		_ = json.Unmarshal(plaintext, &binding)
		for _, v := range []struct {
			value string
			p     purpose // the purpose it was sealed for; "" for raw values
		}{{sealed, p}, {raw, ""}} {
			checkOpen(t, m, now, v.value, binding.Binding, v.p)
		}
	})
}

func itoa(n int64) string { b, _ := json.Marshal(n); return string(b) }

func purposeIndex(p purpose) int {
	for i, q := range purposes {
		if q == p {
			return i
		}
	}
	panic(p)
}

// checkOpen presents value as each cookie and as the awaiting token, with
// binding as the awaiting cookie.
func checkOpen(t *testing.T, m *Manager, now time.Time, value, binding string, sealedFor purpose) {
	t.Helper()
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	for _, c := range []*http.Cookie{{Name: m.name, Value: value}, {Name: m.pendingName, Value: value}, {Name: m.awaitingCookie(), Value: binding}} {
		if c.Valid() == nil {
			r.AddCookie(c)
		}
	}
	raw := sealedFor == ""

	s, err := m.Read(r)
	switch {
	case err == nil:
		if !raw && sealedFor != purposeSession {
			t.Fatalf("a value sealed for %s opens as a session: %+v", sealedFor, s)
		}
		if s.UserID == "" || s.OrganizationID == "" || !now.Before(s.ExpiresAt) || !now.Before(s.IssuedAt.Add(m.ttl)) {
			t.Fatalf("Read returned an incomplete or expired session: %+v", s)
		}
	case !errors.Is(err, ErrInvalid) && !errors.Is(err, ErrExpired) && !errors.Is(err, ErrNoSession):
		t.Fatalf("Read refused with %v, not ErrInvalid or ErrExpired", err)
	}

	list := m.pending(r)
	if len(list) > 0 && !raw && sealedFor != purposePending {
		t.Fatalf("a value sealed for %s opens as pending logins: %+v", sealedFor, list)
	}
	if len(list) > MaxPending {
		t.Fatalf("%d pending logins, at most %d", len(list), MaxPending)
	}
	for _, pl := range list {
		if pl.RequestID == "" || pl.ConnectionKey == "" || !now.Before(pl.ExpiresAt) {
			t.Fatalf("an incomplete or expired pending login: %+v", pl)
		}
	}
	if len(list) > 0 {
		w := httptest.NewRecorder()
		taken, err := m.TakePending(w, r, list[0].ConnectionKey, list[0].RequestID)
		if err != nil && !errors.Is(err, ErrTooLarge) {
			t.Fatalf("TakePending of a listed login: %v", err)
		}
		if err == nil && taken.RequestID != list[0].RequestID {
			t.Fatalf("took %+v, want %+v", taken, list[0])
		}
		for _, line := range w.Header().Values("Set-Cookie") {
			if len(line) > maxCookieBytes || !strings.Contains(line, "HttpOnly") {
				t.Fatalf("TakePending wrote a cookie browsers refuse or scripts read (%d bytes): %.200s", len(line), line)
			}
		}
	}

	a, err := m.OpenAwaiting(r, value)
	switch {
	case err == nil:
		if !raw && sealedFor != purposeAwaiting {
			t.Fatalf("a value sealed for %s opens as an awaiting token: %+v", sealedFor, a)
		}
		if a.Binding == "" || a.Binding != binding || !now.Before(a.ExpiresAt) {
			t.Fatalf("OpenAwaiting returned an unbound or expired token (cookie %q): %+v", binding, a)
		}
	case !errors.Is(err, ErrInvalid) && !errors.Is(err, ErrExpired):
		t.Fatalf("OpenAwaiting refused with %v, not ErrInvalid or ErrExpired", err)
	}
}
