package oidcrp

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

const (
	testClientID     = "edge"
	testClientSecret = "edge-secret"
	testRedirect     = "http://edge.test/oidc/callback"
	testPassword     = "verysecure"
)

// testKey is a signing key of the test provider.
type testKey struct {
	id   string
	alg  jose.SignatureAlgorithm
	priv crypto.Signer
}

func newRSAKey(t testing.TB, id string) *testKey {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return &testKey{id: id, alg: jose.RS256, priv: k}
}

func newECKey(t testing.TB, id string) *testKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return &testKey{id: id, alg: jose.ES256, priv: k}
}

// authCode is an issued authorization code.
type authCode struct {
	clientID, redirectURI, nonce, challenge, sub string
	used                                         bool
}

// testOP is an OpenID provider in the test process: discovery, JWKS,
// authorization endpoint (the user is already signed in as "id1") and token
// endpoint (client_secret_basic or _post, single-use codes, exact
// redirect_uri, PKCE S256 required), on a plain-http httptest server.
//
// It is hand-made because zitadel/oidc's pkg/op cannot be compiled here:
// go.sum lacks its dependencies (github.com/muhlemmer/gu, go-chi/chi,
// zitadel/schema, ...) and this package may not change go.sum.
type testOP struct {
	t        testing.TB
	srv      *httptest.Server
	issuer   string
	jwksHits atomic.Int64
	// tamper, if set, rewrites the id_token in token endpoint responses.
	tamper atomic.Pointer[func(string) string]

	mu        sync.Mutex
	signing   *testKey
	published []*testKey
	codes     map[string]*authCode
	sub       string
	extra     map[string]any // extra ID token claims
}

func newTestOP(t testing.TB) *testOP {
	t.Helper()
	srv := httptest.NewUnstartedServer(nil)
	o := &testOP{t: t, srv: srv, issuer: "http://" + srv.Listener.Addr().String(),
		codes: map[string]*authCode{}, sub: "id1",
		extra: map[string]any{"email": "test-user@example.com", "email_verified": true}}
	o.rotate(newRSAKey(t, "k1"), true)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", o.discovery)
	mux.HandleFunc("GET /keys", o.keys)
	mux.HandleFunc("GET /authorize", o.authorize)
	mux.HandleFunc("POST /oauth/token", o.token)
	srv.Config.Handler = mux
	srv.Start()
	t.Cleanup(srv.Close)
	return o
}

// rotate publishes k and signs with it from now on; old keys stay published
// unless dropOld.
func (o *testOP) rotate(k *testKey, dropOld bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if dropOld {
		o.published = nil
	}
	o.published = append(o.published, k)
	o.signing = k
}

func (o *testOP) currentKey() *testKey {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.signing
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func (o *testOP) discovery(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, 200, map[string]any{
		"issuer":                                o.issuer,
		"authorization_endpoint":                o.issuer + "/authorize",
		"token_endpoint":                        o.issuer + "/oauth/token",
		"jwks_uri":                              o.issuer + "/keys",
		"response_types_supported":              []string{"code"},
		"subject_types_supported":               []string{"public"},
		"id_token_signing_alg_values_supported": []string{"RS256", "ES256"},
		"code_challenge_methods_supported":      []string{"S256"},
		"token_endpoint_auth_methods_supported": []string{"client_secret_basic", "client_secret_post"},
	})
}

func (o *testOP) keys(w http.ResponseWriter, _ *http.Request) {
	o.jwksHits.Add(1)
	o.mu.Lock()
	var set jose.JSONWebKeySet
	for _, k := range o.published {
		set.Keys = append(set.Keys, jose.JSONWebKey{Key: k.priv.Public(), KeyID: k.id, Algorithm: string(k.alg), Use: "sig"})
	}
	o.mu.Unlock()
	writeJSON(w, 200, set)
}

func oauthError(w http.ResponseWriter, code int, e, desc string) {
	writeJSON(w, code, map[string]string{"error": e, "error_description": desc})
}

func (o *testOP) authorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if q.Get("client_id") != testClientID || q.Get("redirect_uri") != testRedirect {
		http.Error(w, "unknown client or redirect_uri", http.StatusBadRequest)
		return
	}
	if q.Get("response_type") != "code" || q.Get("code_challenge_method") != "S256" || q.Get("code_challenge") == "" ||
		!strings.Contains(" "+q.Get("scope")+" ", " openid ") {
		http.Error(w, "bad request", http.StatusBadRequest)
		return
	}
	code := rand.Text()
	o.mu.Lock()
	o.codes[code] = &authCode{clientID: testClientID, redirectURI: testRedirect, nonce: q.Get("nonce"),
		challenge: q.Get("code_challenge"), sub: o.sub}
	o.mu.Unlock()
	v := url.Values{"code": {code}, "state": {q.Get("state")}}
	http.Redirect(w, r, testRedirect+"?"+v.Encode(), http.StatusFound)
}

func (o *testOP) token(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		oauthError(w, 400, "invalid_request", "form")
		return
	}
	id, secret, ok := r.BasicAuth()
	if ok {
		id, _ = url.QueryUnescape(id)
		secret, _ = url.QueryUnescape(secret)
	} else {
		id, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	}
	if id != testClientID || secret != testClientSecret {
		oauthError(w, 401, "invalid_client", "bad client credentials")
		return
	}
	if r.PostForm.Get("grant_type") != "authorization_code" {
		oauthError(w, 400, "unsupported_grant_type", "")
		return
	}
	o.mu.Lock()
	ac := o.codes[r.PostForm.Get("code")]
	if ac == nil || ac.used {
		o.mu.Unlock()
		oauthError(w, 400, "invalid_grant", "code invalid or already used")
		return
	}
	ac.used = true // single use, even if the rest of the request fails
	key := o.signing
	extra := o.extra
	o.mu.Unlock()
	if r.PostForm.Get("redirect_uri") != ac.redirectURI {
		oauthError(w, 400, "invalid_grant", "redirect_uri")
		return
	}
	verifier := r.PostForm.Get("code_verifier")
	sum := sha256.Sum256([]byte(verifier))
	if verifier == "" || base64.RawURLEncoding.EncodeToString(sum[:]) != ac.challenge {
		oauthError(w, 400, "invalid_grant", "PKCE verification failed")
		return
	}
	access := rand.Text()
	ah := sha256.Sum256([]byte(access))
	now := time.Now()
	claims := map[string]any{
		"iss": o.issuer, "sub": ac.sub, "aud": ac.clientID, "azp": ac.clientID,
		"iat": now.Unix(), "exp": now.Add(time.Hour).Unix(), "auth_time": now.Unix(),
		"nonce": ac.nonce, "at_hash": base64.RawURLEncoding.EncodeToString(ah[:16]),
	}
	for k, v := range extra {
		claims[k] = v
	}
	idt := sign(o.t, key, claims)
	if f := o.tamper.Load(); f != nil {
		idt = (*f)(idt)
	}
	writeJSON(w, 200, map[string]any{"access_token": access, "token_type": "Bearer", "expires_in": 3600, "id_token": idt})
}

func (o *testOP) setTamper(f func(string) string) {
	o.tamper.Store(&f)
}

// noRedirect is the "browser" of the tests: it stops at every redirect.
var noRedirect = &http.Client{
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	Timeout:       10 * time.Second,
}

func location(t testing.TB, u string) *url.URL {
	t.Helper()
	resp, err := noRedirect.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound && resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("GET %s: %d %s", u, resp.StatusCode, body)
	}
	loc, err := resp.Request.URL.Parse(resp.Header.Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

// login plays the browser: it follows the authorization URL to the
// provider, which redirects back to our redirect URI with code and state.
// It returns that query.
func (o *testOP) login(t testing.TB, authURL string) url.Values {
	t.Helper()
	cb := location(t, authURL)
	if got := cb.Scheme + "://" + cb.Host + cb.Path; got != testRedirect {
		t.Fatalf("redirected to %s, want %s", got, testRedirect)
	}
	return cb.Query()
}

// fakeClock is real time plus an offset the test can advance.
type fakeClock struct{ offset atomic.Int64 }

func (c *fakeClock) now() time.Time          { return time.Now().Add(time.Duration(c.offset.Load())) }
func (c *fakeClock) advance(d time.Duration) { c.offset.Add(int64(d)) }

func newRP(t testing.TB, o *testOP, mod ...func(*Config)) (*RP, *fakeClock) {
	t.Helper()
	clock := &fakeClock{}
	cfg := Config{
		Issuer:        o.issuer,
		ClientID:      testClientID,
		ClientSecret:  testClientSecret,
		RedirectURL:   testRedirect,
		HTTPClient:    &http.Client{},
		AllowInsecure: true,
		Now:           clock.now,
	}
	for _, m := range mod {
		m(&cfg)
	}
	rp, err := New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return rp, clock
}

// claimsOf decodes an ID token's payload without verification.
func claimsOf(t testing.TB, raw string) map[string]any {
	t.Helper()
	parts := strings.Split(raw, ".")
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// sign mints a JWS over claims with key k (kid k.id).
func sign(t testing.TB, k *testKey, claims map[string]any) string {
	t.Helper()
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: k.alg, Key: jose.JSONWebKey{Key: k.priv, KeyID: k.id}},
		(&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		t.Fatal(err)
	}
	payload, _ := json.Marshal(claims)
	jws, err := signer.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	s, err := jws.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// resign makes a tamper function: the real ID token's claims, changed by
// edit, signed again with key (nil: the provider's current key).
func (o *testOP) resign(t testing.TB, key *testKey, edit func(map[string]any)) func(string) string {
	return func(idt string) string {
		m := claimsOf(t, idt)
		edit(m)
		k := key
		if k == nil {
			k = o.currentKey()
		}
		return sign(t, k, m)
	}
}

// unsignedJWT builds header.payload. with an arbitrary header.
func rawJWT(header, claims map[string]any, sig []byte) string {
	h, _ := json.Marshal(header)
	p, _ := json.Marshal(claims)
	return base64.RawURLEncoding.EncodeToString(h) + "." + base64.RawURLEncoding.EncodeToString(p) + "." +
		base64.RawURLEncoding.EncodeToString(sig)
}
