package oidcrp

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/example/server/storage"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

const (
	testClientID     = "edge"
	testClientSecret = "edge-secret"
	// testPlainClientID is a second client, as zitadel's example storage
	// makes it: its ID token carries no userinfo claims (no email) because
	// an access token is issued too; they are at the userinfo endpoint.
	testPlainClientID = "edge-plain"
	// testJWTClientID is a client that authenticates with private_key_jwt
	// (RFC 7523): its public keys are testOP.clientKeys.
	testJWTClientID = "edge-jwt"
	testRedirect    = "http://edge.test/oidc/callback"
	testUsername    = "test-user"
	testPassword    = "verysecure"
	// testLoginPath is the provider's login UI (the example storage's
	// clients send the browser to /login/username?authRequestID=...).
	testLoginPath = "/login/username"
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

// opSigningKey is a testKey as zitadel's op.SigningKey.
type opSigningKey struct{ k *testKey }

func (s opSigningKey) SignatureAlgorithm() jose.SignatureAlgorithm { return s.k.alg }
func (s opSigningKey) Key() any                                    { return s.k.priv }
func (s opSigningKey) ID() string                                  { return s.k.id }

// opPublicKey is a testKey as zitadel's op.Key (published in the JWKS).
type opPublicKey struct{ k *testKey }

func (p opPublicKey) ID() string                         { return p.k.id }
func (p opPublicKey) Algorithm() jose.SignatureAlgorithm { return p.k.alg }
func (p opPublicKey) Use() string                        { return "sig" }
func (p opPublicKey) Key() any                           { return p.k.priv.Public() }

// opStorage is zitadel's example in-memory storage with the test's keys
// (so that the test can rotate them) and a client that gets the userinfo
// claims (email, email_verified, ...) in its ID token.
type opStorage struct {
	*storage.Storage
	o *testOP
}

func (s *opStorage) SigningKey(context.Context) (op.SigningKey, error) {
	return opSigningKey{s.o.currentKey()}, nil
}

func (s *opStorage) SignatureAlgorithms(context.Context) ([]jose.SignatureAlgorithm, error) {
	s.o.mu.Lock()
	defer s.o.mu.Unlock()
	var algs []jose.SignatureAlgorithm
	for _, k := range s.o.published {
		algs = append(algs, k.alg)
	}
	return algs, nil
}

func (s *opStorage) KeySet(context.Context) ([]op.Key, error) {
	s.o.mu.Lock()
	defer s.o.mu.Unlock()
	keys := make([]op.Key, 0, len(s.o.published))
	for _, k := range s.o.published {
		keys = append(keys, opPublicKey{k})
	}
	return keys, nil
}

func (s *opStorage) GetClientByClientID(ctx context.Context, id string) (op.Client, error) {
	c, err := s.Storage.GetClientByClientID(ctx, id)
	if err != nil {
		return nil, err
	}
	switch id {
	case testPlainClientID:
		return c, nil
	case testJWTClientID:
		return privateKeyJWTClient{userinfoInIDToken{c}}, nil
	}
	return userinfoInIDToken{c}, nil
}

// GetKeyByIDAndClientID serves the public keys registered for
// testJWTClientID (the example storage keeps keys for service users only).
func (s *opStorage) GetKeyByIDAndClientID(_ context.Context, keyID, clientID string) (*jose.JSONWebKey, error) {
	s.o.mu.Lock()
	defer s.o.mu.Unlock()
	k, ok := s.o.clientKeys[keyID]
	if clientID != testJWTClientID || !ok {
		return nil, errors.New("key not found")
	}
	return &jose.JSONWebKey{KeyID: keyID, Use: "sig", Key: k.Public()}, nil
}

// privateKeyJWTClient is a client registered for private_key_jwt.
type privateKeyJWTClient struct{ op.Client }

func (privateKeyJWTClient) AuthMethod() oidc.AuthMethod { return oidc.AuthMethodPrivateKeyJWT }

// userinfoInIDToken asserts the scopes' userinfo claims in the ID token
// even though an access token is issued too, as most providers do.
type userinfoInIDToken struct{ op.Client }

func (userinfoInIDToken) IDTokenUserinfoClaimsAssertion() bool { return true }

// testUsers is the provider's user store: "id1", verified email.
type testUsers map[string]*storage.User

func (u testUsers) GetUserByID(id string) *storage.User { return u[id] }
func (u testUsers) ExampleClientID() string             { return storage.ServiceUserID }
func (u testUsers) GetUserByUsername(name string) *storage.User {
	for _, user := range u {
		if user.Username == name {
			return user
		}
	}
	return nil
}

// testOP is a real OpenID provider in the test process: zitadel/oidc
// v3.45.0's pkg/op over its example in-memory storage (example/server/
// storage), on a plain-http httptest server (op.WithAllowInsecure). The
// client "edge" is a web client (client_secret_basic; zitadel also accepts
// client_secret_post, AuthMethodPost), PKCE S256 enabled; the user "id1"
// (test-user / verysecure) has a verified email. Codes are single-use,
// redirect_uri exact and the code_verifier checked by zitadel.
//
// The test controls only the signing keys (rotate) and, through a handler
// wrapper, counts JWKS requests and can rewrite the id_token of the token
// endpoint's answers (setTamper) — a man in the middle on the real
// provider's response. It can likewise rewrite the userinfo endpoint's
// claims (setUserinfoTamper) or make it answer 401 (userinfoDown). A second
// client, testPlainClientID, gets no userinfo claims in its ID token.
type testOP struct {
	t        testing.TB
	srv      *httptest.Server
	issuer   string
	provider *op.Provider
	store    *storage.Storage
	jwksHits atomic.Int64
	// tamper, if set, rewrites the id_token in token endpoint responses.
	tamper atomic.Pointer[func(string) string]
	// userinfoTamper, if set, edits the claims of userinfo responses.
	userinfoTamper atomic.Pointer[func(map[string]any)]
	// userinfoDown, if set, answers userinfo requests 401.
	userinfoDown atomic.Bool

	mu        sync.Mutex
	signing   *testKey
	published []*testKey
	// clientKeys are testJWTClientID's registered public keys, by kid.
	clientKeys map[string]crypto.Signer
}

func newTestOP(t testing.TB) *testOP {
	t.Helper()
	srv := httptest.NewUnstartedServer(nil)
	o := &testOP{t: t, srv: srv, issuer: "http://" + srv.Listener.Addr().String(), clientKeys: map[string]crypto.Signer{}}
	o.rotate(newRSAKey(t, "k1"), true)

	users := testUsers{"id1": {
		ID: "id1", Username: testUsername, Password: testPassword,
		FirstName: "Test", LastName: "User",
		Email: "test-user@example.com", EmailVerified: true,
	}}
	clients := map[string]*storage.Client{
		testClientID:      storage.WebClient(testClientID, testClientSecret, testRedirect),
		testPlainClientID: storage.WebClient(testPlainClientID, testClientSecret, testRedirect),
		testJWTClientID:   storage.WebClient(testJWTClientID, "", testRedirect),
	}
	o.store = storage.NewStorageWithClients(users, clients)
	var cryptoKey [32]byte
	if _, err := rand.Read(cryptoKey[:]); err != nil {
		t.Fatal(err)
	}
	provider, err := op.NewProvider(&op.Config{
		CryptoKey:               cryptoKey,
		CodeMethodS256:          true,
		AuthMethodPost:          true,
		AuthMethodPrivateKeyJWT: true,
	}, &opStorage{Storage: o.store, o: o}, op.StaticIssuer(o.issuer),
		op.WithAllowInsecure(), // http issuer on 127.0.0.1
		op.WithLogger(slog.New(slog.DiscardHandler)),
	)
	if err != nil {
		t.Fatal(err)
	}
	o.provider = provider

	mux := http.NewServeMux()
	// The login UI, as in zitadel's example server (exampleop/login.go):
	// check the credentials against the storage, which marks the auth
	// request done, then back to the provider's /authorize/callback?id=.
	mux.Handle("POST "+testLoginPath, op.NewIssuerInterceptor(provider.IssuerFromRequest).HandlerFunc(
		func(w http.ResponseWriter, r *http.Request) {
			id := r.FormValue("id")
			if err := o.store.CheckUsernamePassword(r.FormValue("username"), r.FormValue("password"), id); err != nil {
				http.Error(w, err.Error(), http.StatusUnauthorized)
				return
			}
			http.Redirect(w, r, op.AuthCallbackURL(provider)(r.Context(), id), http.StatusFound)
		}))
	mux.Handle("/", o.intercept(provider))
	srv.Config.Handler = mux
	srv.Start()
	t.Cleanup(srv.Close)
	return o
}

// intercept counts JWKS requests and applies tamper to the id_token of the
// token endpoint's successful answers.
func (o *testOP) intercept(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == o.provider.KeysEndpoint().Relative() {
			o.jwksHits.Add(1)
		}
		if o.userinfoDown.Load() && r.URL.Path == o.provider.UserinfoEndpoint().Relative() {
			w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
			http.Error(w, `{"error":"invalid_token"}`, http.StatusUnauthorized)
			return
		}
		if u := o.userinfoTamper.Load(); u != nil && r.URL.Path == o.provider.UserinfoEndpoint().Relative() {
			rec := httptest.NewRecorder()
			next.ServeHTTP(rec, r)
			body := rec.Body.Bytes()
			if rec.Code == http.StatusOK {
				var m map[string]any
				if err := json.Unmarshal(body, &m); err != nil {
					o.t.Errorf("userinfo response: %v", err)
				} else {
					(*u)(m)
					body = mustJSON(m)
				}
			}
			copyResponse(w, rec, body)
			return
		}
		f := o.tamper.Load()
		if f == nil || r.URL.Path != o.provider.TokenEndpoint().Relative() {
			next.ServeHTTP(w, r)
			return
		}
		rec := httptest.NewRecorder()
		next.ServeHTTP(rec, r)
		body := rec.Body.Bytes()
		if rec.Code == http.StatusOK {
			var m map[string]any
			if err := json.Unmarshal(body, &m); err != nil {
				o.t.Errorf("token response: %v", err)
			} else if idt, ok := m["id_token"].(string); ok {
				m["id_token"] = (*f)(idt)
				body = mustJSON(m)
			}
		}
		copyResponse(w, rec, body)
	})
}

// copyResponse writes rec's status and headers with body instead of its own.
func copyResponse(w http.ResponseWriter, rec *httptest.ResponseRecorder, body []byte) {
	for k, v := range rec.Header() {
		if k != "Content-Length" {
			w.Header()[k] = v
		}
	}
	w.WriteHeader(rec.Code)
	_, _ = w.Write(body)
}

func (o *testOP) setUserinfoTamper(f func(map[string]any)) {
	if f == nil {
		o.userinfoTamper.Store(nil)
		return
	}
	o.userinfoTamper.Store(&f)
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

// registerClientKey registers k's public key under kid for testJWTClientID.
func (o *testOP) registerClientKey(kid string, k crypto.Signer) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.clientKeys[kid] = k
}

func (o *testOP) currentKey() *testKey {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.signing
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
	return redirectOf(t, resp)
}

func redirectOf(t testing.TB, resp *http.Response) *url.URL {
	t.Helper()
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound && resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("%s %s: %d %s", resp.Request.Method, resp.Request.URL, resp.StatusCode, body)
	}
	loc, err := resp.Request.URL.Parse(resp.Header.Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

// login plays the browser: it follows the authorization URL to zitadel,
// which sends it to the login UI; there it signs in as test-user, is sent
// to /authorize/callback?id=..., and zitadel redirects back to our redirect
// URI with code and state. It returns that query.
func (o *testOP) login(t testing.TB, authURL string) url.Values {
	t.Helper()
	loginURL := location(t, authURL)
	id := loginURL.Query().Get("authRequestID")
	if loginURL.Path != testLoginPath || id == "" {
		t.Fatalf("authorization endpoint redirected to %s, want the login UI", loginURL)
	}
	resp, err := noRedirect.PostForm(o.issuer+testLoginPath,
		url.Values{"id": {id}, "username": {testUsername}, "password": {testPassword}})
	if err != nil {
		t.Fatal(err)
	}
	cb := location(t, redirectOf(t, resp).String()) // /authorize/callback?id=
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
