package edge_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/jitprov/jitprov/internal/store"
)

// The OIDC connection the fuzz target signs in through, and its client.
const (
	fuzzOIDCConn     = "fuzz-oidc"
	fuzzOIDCClientID = "fuzz-client"
)

// fuzzOP is an OpenID provider whose token endpoint answers what the
// fuzzer says: the provider is the attacker (or a broken provider), the
// edge's back channel to it is what is fuzzed. Discovery and the JWKS are
// a real provider's; ID tokens are signed with go-jose by the provider's
// key, over claims the fuzzer chose.
type fuzzOP struct {
	srv    *httptest.Server
	issuer string
	key    *rsa.PrivateKey
	signer jose.Signer

	mu     sync.Mutex
	status int
	body   []byte
}

func newFuzzOP(tb testing.TB) *fuzzOP {
	tb.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		tb.Fatal(err)
	}
	o := &fuzzOP{key: key}
	o.signer, err = jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: jose.JSONWebKey{Key: key, KeyID: "fuzz-k1"}},
		(&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		tb.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, map[string]any{
			"issuer": o.issuer, "authorization_endpoint": o.issuer + "/authorize", "token_endpoint": o.issuer + "/token",
			"jwks_uri": o.issuer + "/keys", "response_types_supported": []string{"code"}, "subject_types_supported": []string{"public"},
			"id_token_signing_alg_values_supported": []string{"RS256"}, "code_challenge_methods_supported": []string{"S256"},
		})
	})
	mux.HandleFunc("GET /keys", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &key.PublicKey, KeyID: "fuzz-k1", Algorithm: "RS256", Use: "sig"}}})
	})
	mux.HandleFunc("POST /token", func(w http.ResponseWriter, _ *http.Request) {
		o.mu.Lock()
		status, body := o.status, o.body
		o.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = w.Write(body)
	})
	o.srv = httptest.NewServer(mux)
	tb.Cleanup(o.srv.Close)
	o.issuer = o.srv.URL
	return o
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

// answer sets the token endpoint's next answer.
func (o *fuzzOP) answer(status int, body []byte) {
	o.mu.Lock()
	o.status, o.body = status, body
	o.mu.Unlock()
}

// sign signs payload as the provider's ID token.
func (o *fuzzOP) sign(tb testing.TB, payload []byte) string {
	jws, err := o.signer.Sign(payload)
	if err != nil {
		tb.Fatal(err)
	}
	s, err := jws.CompactSerialize()
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

// Placeholders of FuzzOIDCCallback's inputs, filled in at each run so that
// an input stays meaningful in any process and at any time: in the claims,
// "@iss" becomes the provider's issuer (a port of this process), "@iat"
// and "@exp" now and now+10m (JSON numbers); in the token response,
// "@id_token" becomes the ID token the provider signs over the claims.
func fillClaims(claims []byte, issuer string, now time.Time) []byte {
	claims = bytes.ReplaceAll(claims, []byte(`"@iss"`), []byte(strconv.Quote(issuer)))
	claims = bytes.ReplaceAll(claims, []byte(`"@iat"`), []byte(strconv.FormatInt(now.Unix(), 10)))
	return bytes.ReplaceAll(claims, []byte(`"@exp"`), []byte(strconv.FormatInt(now.Add(10*time.Minute).Unix(), 10)))
}

// FuzzOIDCCallback sends the provider's redirect back to the edge — the
// callback's query (code, state, error, iss...) and the browser's cookies —
// while the provider's token endpoint answers with the fuzzer's status and
// body, whose ID token (see fillClaims) carries the fuzzer's claims, signed
// by the provider. On top of checkAnswer: a session is set only when the
// query carries no error and the state of a pending login of this browser
// (its cookie), the token endpoint answered 2xx with the ID token the
// provider signed, and those claims name the provider as issuer, this
// client as audience (and azp), the pending login's nonce, a subject, and
// are issued and not expired; the session is on this connection.
func FuzzOIDCCallback(f *testing.F) {
	e := newFuzzEdge(f)
	o := addFuzzOIDCConnection(f, e)
	state, nonce, cookie := startFuzzOIDCLogin(f, e)
	query := url.Values{"code": {"code-1"}, "state": {state}}.Encode()

	claims := func(edit func(map[string]any)) []byte {
		return fuzzClaims(f, nonce, edit)
	}
	tokenBody := []byte(`{"access_token":"at-1","token_type":"Bearer","expires_in":3600,"id_token":"@id_token"}`)
	f.Add(query, cookie, claims(nil), uint16(200), tokenBody)
	f.Add(query+"&iss="+url.QueryEscape(o.issuer), cookie, claims(func(m map[string]any) { m["aud"] = []string{fuzzOIDCClientID}; m["azp"] = fuzzOIDCClientID }), uint16(200), tokenBody)
	// What the provider may say, at the limits of what the login event
	// carries: long names, many groups, a long subject.
	f.Add(query, cookie, claims(func(m map[string]any) {
		m["sub"], m["email"], m["given_name"] = "fuzz-sub-2", "eve@acme.example", strings.Repeat("n", 1024)
	}), uint16(200), tokenBody)
	f.Add(query, cookie, claims(func(m map[string]any) {
		groups := make([]string, 1000)
		for i := range groups {
			groups[i] = fmt.Sprintf("g%d", i)
		}
		m["sub"], m["email"], m["groups"] = "fuzz-sub-3", "fay@acme.example", groups
	}), uint16(200), tokenBody)
	f.Add(query, cookie, claims(func(m map[string]any) { m["sub"], m["email"] = strings.Repeat("s", 1024), "gus@acme.example" }), uint16(200), tokenBody)
	// Refusals: the provider's error, another state, another browser,
	// another nonce, audience, issuer, an expired token, an error answer,
	// no ID token, a token not signed by the provider.
	f.Add("error=access_denied&error_description=%3Cscript%3Ealert(1)%3C%2Fscript%3E&state="+state, cookie, claims(nil), uint16(200), tokenBody)
	f.Add(url.Values{"code": {"code-1"}, "state": {"other"}}.Encode(), cookie, claims(nil), uint16(200), tokenBody)
	f.Add(query, "", claims(nil), uint16(200), tokenBody)
	f.Add(query+"&iss=https%3A%2F%2Fevil.example", cookie, claims(nil), uint16(200), tokenBody)
	f.Add(query, cookie, claims(func(m map[string]any) { m["nonce"] = "other" }), uint16(200), tokenBody)
	f.Add(query, cookie, claims(func(m map[string]any) { m["aud"] = []string{fuzzOIDCClientID, "other"} }), uint16(200), tokenBody)
	f.Add(query, cookie, claims(func(m map[string]any) { m["iss"] = "https://evil.example" }), uint16(200), tokenBody)
	f.Add(query, cookie, claims(func(m map[string]any) { m["exp"] = 1_000_000_000 }), uint16(200), tokenBody)
	f.Add(query, cookie, claims(func(m map[string]any) { delete(m, "sub") }), uint16(200), tokenBody)
	f.Add(query, cookie, claims(nil), uint16(400), []byte(`{"error":"invalid_grant","error_description":"<b>no</b>"}`))
	f.Add(query, cookie, claims(nil), uint16(200), []byte(`{"access_token":"at-1","token_type":"Bearer"}`))
	f.Add(query, cookie, claims(nil), uint16(200), []byte(`{"access_token":"at-1","token_type":"Bearer","id_token":"eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0."}`))
	f.Add(query, cookie, []byte(`[]`), uint16(200), tokenBody)
	f.Add("", "", []byte{}, uint16(0), []byte{})

	f.Fuzz(func(t *testing.T, query, cookies string, claims []byte, status uint16, body []byte) {
		now := time.Now()
		r, rec, claims, body, signed, code := fuzzOIDCCallback(t, e, o, now, query, cookies, claims, status, body)
		sess := e.checkAnswer(t, rec, query, cookies, string(claims), string(body))
		if sess == nil {
			return
		}
		fail := func(why string) {
			t.Helper()
			t.Fatalf("a session (%+v) although %s\nquery %q\nclaims %s\ntoken response %d %s\nlogs:\n%s", *sess, why, query, claims, code, body, e.logs)
		}
		q := r.URL.Query()
		p, err := e.sessions.TakePending(httptest.NewRecorder(), r, "acme/"+fuzzOIDCConn, q.Get("state"))
		switch {
		case q.Get("error") != "":
			fail("the provider returned an error")
		case err != nil:
			fail("the state is no pending login of this browser")
		case q.Get("code") == "":
			fail("the callback has no code")
		case q.Has("iss") && (len(q["iss"]) != 1 || q.Get("iss") != o.issuer):
			fail("the callback's iss is not the provider")
		case code > 299:
			fail("the token endpoint answered an error")
		case signed == "" || tokenField(body, "id_token") != signed:
			fail("the ID token is not the one the provider signed")
		}
		if why := badClaims(claims, o.issuer, p.Nonce, now); why != "" {
			fail(why)
		}
		if sess.OrganizationID != "acme" || sess.ConnectionID != fuzzOIDCConn {
			fail("it is not on acme/" + fuzzOIDCConn)
		}
	})
}

// addFuzzOIDCConnection starts a fuzzOP and adds its connection
// acme/fuzz-oidc (groups and roles claims mapped; eng-leads gives manager).
func addFuzzOIDCConnection(tb testing.TB, e *fuzzEdge) *fuzzOP {
	tb.Helper()
	o := newFuzzOP(tb)
	e.idpOrigins = append(e.idpOrigins, o.issuer)
	secret := filepath.Join(tb.TempDir(), "client-secret")
	if err := os.WriteFile(secret, []byte("fuzz-secret"), 0o600); err != nil {
		tb.Fatal(err)
	}
	settings, err := json.Marshal(map[string]any{
		"issuer": o.issuer, "client_id": fuzzOIDCClientID, "client_secret_file": secret,
		"claims":      map[string]string{"groups": "groups", "roles": "roles"},
		"group_roles": []map[string]string{{"group": "eng-leads", "role": "manager"}},
	})
	if err != nil {
		tb.Fatal(err)
	}
	if err := e.w.store.ApplyOrganizations(context.Background(), nil, []store.Connection{
		{OrganizationID: "acme", ID: fuzzOIDCConn, Protocol: "oidc", Settings: settings},
	}); err != nil {
		tb.Fatal(err)
	}
	return o
}

// startFuzzOIDCLogin starts a login at acme/fuzz-oidc as a browser does:
// the state and nonce sent to the provider, and the pending-login cookie
// (a Cookie header) that binds them to the browser.
func startFuzzOIDCLogin(tb testing.TB, e *fuzzEdge) (state, nonce, cookie string) {
	tb.Helper()
	rec := e.serve(httptest.NewRequest(http.MethodGet, "/oidc/acme/"+fuzzOIDCConn+"/login?return_to=/app", nil), "")
	auth, err := url.Parse(rec.Header().Get("Location"))
	if err != nil || rec.Code != http.StatusFound || len(rec.Result().Cookies()) != 1 {
		tb.Fatalf("OIDC login start: %d to %q, cookies %q", rec.Code, rec.Header().Get("Location"), rec.Header().Values("Set-Cookie"))
	}
	return auth.Query().Get("state"), auth.Query().Get("nonce"), fuzzPendingCookie + "=" + rec.Result().Cookies()[0].Value
}

// fuzzClaims are the claims of an honest ID token for the pending login
// of nonce (with fillClaims's placeholders), as edit changes them.
func fuzzClaims(tb testing.TB, nonce string, edit func(map[string]any)) []byte {
	tb.Helper()
	m := map[string]any{
		"iss": "@iss", "aud": fuzzOIDCClientID, "sub": "fuzz-sub-1", "nonce": nonce, "iat": "@iat", "exp": "@exp",
		"email": "dora@acme.example", "email_verified": true, "given_name": "Dora", "family_name": "Fuzz",
		"groups": []string{"eng-leads"}, "roles": []string{"member"},
	}
	if edit != nil {
		edit(m)
	}
	b, err := json.Marshal(m)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// fuzzOIDCCallback has the provider answer the token request with status and
// body (placeholders filled, see fillClaims), then sends the callback with
// query and cookies to the edge. It returns the request, the answer, the
// claims and body as sent, the ID token signed ("" if none) and the status
// the token endpoint answered.
func fuzzOIDCCallback(tb testing.TB, e *fuzzEdge, o *fuzzOP, now time.Time, query, cookies string, claims []byte, status uint16, body []byte) (
	*http.Request, *httptest.ResponseRecorder, []byte, []byte, string, int) {
	claims = fillClaims(claims, o.issuer, now)
	var signed string
	if bytes.Contains(body, []byte(`"@id_token"`)) {
		signed = o.sign(tb, claims)
		body = bytes.ReplaceAll(body, []byte(`"@id_token"`), []byte(strconv.Quote(signed)))
	}
	code := int(status)
	if code < 200 || code > 599 {
		code = http.StatusOK
	}
	o.answer(code, body)
	r := httptest.NewRequest(http.MethodGet, "/oidc/acme/"+fuzzOIDCConn+"/callback", nil)
	r.URL.RawQuery = query
	return r, e.serve(r, cookies), claims, body, signed, code
}

// tokenField is the string field of a token response as golang.org/x/oauth2
// reads its extras (a JSON object, the last of duplicate keys).
func tokenField(body []byte, name string) string {
	var m map[string]any
	if json.Unmarshal(body, &m) != nil {
		return ""
	}
	s, _ := m[name].(string)
	return s
}

// badClaims says why claims must not sign anyone in, or "".
func badClaims(claims []byte, issuer, nonce string, now time.Time) string {
	dec := json.NewDecoder(bytes.NewReader(claims))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil || m == nil {
		return "the claims are not a JSON object"
	}
	str := func(k string) string { s, _ := m[k].(string); return s }
	num := func(k string) (float64, bool) {
		n, ok := m[k].(json.Number)
		if !ok {
			return 0, false
		}
		v, err := n.Float64()
		return v, err == nil
	}
	var aud []string
	switch a := m["aud"].(type) {
	case string:
		aud = []string{a}
	case []any:
		for _, v := range a {
			s, ok := v.(string)
			if !ok {
				return "aud holds a non-string"
			}
			aud = append(aud, s)
		}
	}
	exp, hasExp := num("exp")
	iat, hasIat := num("iat")
	azp, hasAZP := m["azp"]
	switch {
	case str("iss") != issuer:
		return "iss is not the provider"
	case !slices.Contains(aud, fuzzOIDCClientID):
		return "aud does not name the client"
	case hasAZP && azp != fuzzOIDCClientID:
		return "azp is not the client"
	case !hasAZP && len(aud) > 1:
		return "several audiences and no azp"
	case str("sub") == "":
		return "there is no sub"
	case nonce == "" || str("nonce") != nonce:
		return "the nonce is not the pending login's"
	case !hasExp || exp <= float64(now.Add(-time.Minute).Unix()):
		return "it is expired"
	case !hasIat || iat > float64(now.Add(time.Minute).Unix()):
		return "iat is missing or in the future"
	}
	return ""
}
