package edge_test

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/google/uuid"
	"github.com/zitadel/oidc/v3/example/server/storage"
	"github.com/zitadel/oidc/v3/pkg/op"

	"github.com/jitprov/jitprov/internal/store"
	"github.com/jitprov/jitprov/internal/testenv"
)

// The zitadel test provider's client and person.
const (
	zitClientID     = "jitprov-edge"
	zitClientSecret = "jitprov-edge-secret"
	zitUsername     = "alice"
	zitPassword     = "verysecure"
	zitSubject      = "zitadel-user-7" // the sub of the ID tokens
	zitEmail        = "alice@acme.example"
	// zitLoginPath is the provider's login UI: the example storage's
	// clients send the browser to /login/username?authRequestID=...
	zitLoginPath = "/login/username"
)

// zitOP is a real OpenID provider in the test process: zitadel/oidc
// v3.45.0's pkg/op over its example in-memory storage, on a plain-http
// httptest server (op.WithAllowInsecure). Its client zitClientID is a web
// client (client_secret_basic, or _post) whose only redirect URI is the
// edge's callback of its connection (acme/zitadel unless told otherwise);
// PKCE S256 is enabled, codes are single use, redirect_uri is compared
// exactly. By default its one user signs in with zitUsername / zitPassword
// and has sub zitSubject and a verified email; the benchmarks give it many
// (see zitOPConfig). (A trimmed copy of
// internal/edge/oidcrp/harness_test.go's provider.)
type zitOP struct {
	issuer string
	store  *storage.Storage
	// conn is the id of the acme connection the provider serves.
	conn string
	// tamper, if set, rewrites the id_token of the token endpoint's
	// successful answers: a man in the middle between the edge and the
	// provider (as setTamper in internal/edge/oidcrp/harness_test.go).
	tamper atomic.Pointer[func(string) string]
}

// zitStorage is the example storage whose clients put the userinfo claims
// (email, email_verified, names) into the ID token, as most providers do.
// With plain, the example storage's clients are left as they are: their ID
// token carries no userinfo claims (no email), only the userinfo endpoint.
type zitStorage struct {
	*storage.Storage
	plain bool
}

func (s zitStorage) GetClientByClientID(ctx context.Context, id string) (op.Client, error) {
	c, err := s.Storage.GetClientByClientID(ctx, id)
	if err != nil || s.plain {
		return c, err
	}
	return zitUserinfoInIDToken{c}, nil
}

type zitUserinfoInIDToken struct{ op.Client }

func (zitUserinfoInIDToken) IDTokenUserinfoClaimsAssertion() bool { return true }

// zitUsers is the provider's user store, indexed both ways.
type zitUsers struct {
	byID, byName map[string]*storage.User
}

func newZitUsers(users []*storage.User) zitUsers {
	u := zitUsers{byID: map[string]*storage.User{}, byName: map[string]*storage.User{}}
	for _, user := range users {
		u.byID[user.ID], u.byName[user.Username] = user, user
	}
	return u
}

func (u zitUsers) GetUserByID(id string) *storage.User         { return u.byID[id] }
func (u zitUsers) GetUserByUsername(name string) *storage.User { return u.byName[name] }
func (zitUsers) ExampleClientID() string                       { return storage.ServiceUserID }

// zitOPConfig is how a test or benchmark wants its provider and connection;
// the zero value is the tests' usual one.
type zitOPConfig struct {
	// conn is the id of the acme connection; "" is "zitadel".
	conn string
	// plain: see zitStorage.
	plain bool
	// userinfo is the connection's userinfo setting.
	userinfo bool
	// users are the provider's users; nil is the one test user, zitUsername.
	users []*storage.User
	// constants, when set, are the connection's constants setting.
	constants map[string]any
}

// newZitOP starts the provider for cfg's connection (whose callback on the
// edge at edgeURL is its client's redirect URI), with cfg's users.
func newZitOP(tb testing.TB, edgeURL string, cfg zitOPConfig) *zitOP {
	tb.Helper()
	if cfg.conn == "" {
		cfg.conn = "zitadel"
	}
	if cfg.users == nil {
		cfg.users = []*storage.User{{
			ID: zitSubject, Username: zitUsername, Password: zitPassword,
			FirstName: "Alice", LastName: "Zitadel",
			Email: zitEmail, EmailVerified: true,
		}}
	}
	srv := httptest.NewUnstartedServer(nil)
	o := &zitOP{issuer: "http://" + srv.Listener.Addr().String(), conn: cfg.conn}
	o.store = storage.NewStorageWithClients(newZitUsers(cfg.users), map[string]*storage.Client{
		zitClientID: storage.WebClient(zitClientID, zitClientSecret, edgeURL+o.callbackPath()),
	})
	var cryptoKey [32]byte
	if _, err := rand.Read(cryptoKey[:]); err != nil {
		tb.Fatal(err)
	}
	provider, err := op.NewProvider(&op.Config{CryptoKey: cryptoKey, CodeMethodS256: true, AuthMethodPost: true},
		zitStorage{Storage: o.store, plain: cfg.plain}, op.StaticIssuer(o.issuer),
		op.WithAllowInsecure(), // http issuer on 127.0.0.1
		op.WithLogger(slog.New(slog.DiscardHandler)),
	)
	if err != nil {
		tb.Fatal(err)
	}
	mux := http.NewServeMux()
	// The login UI, as in zitadel's example server: check the credentials
	// against the storage, which marks the auth request done, then back to
	// the provider's /authorize/callback?id=.
	mux.Handle("POST "+zitLoginPath, op.NewIssuerInterceptor(provider.IssuerFromRequest).HandlerFunc(
		func(w http.ResponseWriter, r *http.Request) {
			id := r.FormValue("id")
			if err := o.store.CheckUsernamePassword(r.FormValue("username"), r.FormValue("password"), id); err != nil {
				http.Error(w, err.Error(), http.StatusUnauthorized)
				return
			}
			http.Redirect(w, r, op.AuthCallbackURL(provider)(r.Context(), id), http.StatusFound)
		}))
	mux.Handle("/", provider)
	srv.Config.Handler = o.intercept(mux, provider.TokenEndpoint().Relative())
	srv.Start()
	tb.Cleanup(srv.Close)
	return o
}

// intercept applies o.tamper, when set, to the id_token of the token
// endpoint's (at tokenPath) successful answers.
func (o *zitOP) intercept(next http.Handler, tokenPath string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f := o.tamper.Load()
		if f == nil || r.Method != http.MethodPost || r.URL.Path != tokenPath {
			next.ServeHTTP(w, r)
			return
		}
		rec := httptest.NewRecorder()
		next.ServeHTTP(rec, r)
		body := rec.Body.Bytes()
		if rec.Code == http.StatusOK {
			var m map[string]any
			if err := json.Unmarshal(body, &m); err == nil {
				if idt, ok := m["id_token"].(string); ok {
					m["id_token"] = (*f)(idt)
					if b, err := json.Marshal(m); err == nil {
						body = b
					}
				}
			}
		}
		for k, v := range rec.Header() {
			if k != "Content-Length" {
				w.Header()[k] = v
			}
		}
		w.WriteHeader(rec.Code)
		_, _ = w.Write(body)
	})
}

// callbackPath is the redirect URI on the edge of the provider's connection.
func (o *zitOP) callbackPath() string { return "/oidc/acme/" + o.conn + "/callback" }

// setTamper makes the man in the middle rewrite ID tokens with f.
func (o *zitOP) setTamper(f func(string) string) { o.tamper.Store(&f) }

// signingKey is the provider's RSA signing key and its kid.
func (o *zitOP) signingKey(tb testing.TB) (*rsa.PrivateKey, string) {
	tb.Helper()
	k, err := o.store.SigningKey(context.Background())
	if err != nil {
		tb.Fatal(err)
	}
	priv, ok := k.Key().(*rsa.PrivateKey)
	if !ok {
		tb.Fatalf("the provider's signing key is a %T, want *rsa.PrivateKey", k.Key())
	}
	return priv, k.ID()
}

// addZitadelConnection starts the provider and adds the OIDC connection
// acme/zitadel to the world's store, its secret in a file.
func addZitadelConnection(tb testing.TB, w *world) *zitOP {
	tb.Helper()
	return addZitadelConnectionWith(tb, w, false, false)
}

// addZitadelConnectionWith is addZitadelConnection with the provider's
// client plain (no email in its ID token, see zitStorage) and the
// connection's userinfo setting.
func addZitadelConnectionWith(tb testing.TB, w *world, plain, userinfo bool) *zitOP {
	tb.Helper()
	return addOIDCConnection(tb, w, zitOPConfig{plain: plain, userinfo: userinfo})
}

// addOIDCConnection starts the provider as cfg says and adds its OIDC
// connection acme/cfg.conn to the world's store, its secret in a file.
func addOIDCConnection(tb testing.TB, w *world, cfg zitOPConfig) *zitOP {
	tb.Helper()
	o := newZitOP(tb, w.edgeURL, cfg)
	secretFile := filepath.Join(tb.TempDir(), "zitadel-client-secret")
	if err := os.WriteFile(secretFile, []byte(zitClientSecret), 0o600); err != nil {
		tb.Fatal(err)
	}
	m := map[string]any{
		"issuer":             o.issuer,
		"client_id":          zitClientID,
		"client_secret_file": secretFile,
		"claims":             map[string]string{},
		"userinfo":           cfg.userinfo,
	}
	if cfg.constants != nil {
		m["constants"] = cfg.constants
	}
	settings, err := json.Marshal(m)
	if err != nil {
		tb.Fatal(err)
	}
	// Upserts the connection alone; acme and its SAML connections stay as
	// newWorld made them.
	if err := w.store.ApplyOrganizations(context.Background(), nil, []store.Connection{
		{OrganizationID: "acme", ID: o.conn, Protocol: "oidc", Settings: settings},
	}); err != nil {
		tb.Fatal(err)
	}
	return o
}

// redirectTarget reads a redirect's Location, resolved against the page URL.
func redirectTarget(tb testing.TB, p *testenv.Page, what string) *url.URL {
	tb.Helper()
	if p.Status != http.StatusFound && p.Status != http.StatusSeeOther {
		tb.Fatalf("%s: %s: status %d, want a redirect; body %s", what, p.URL, p.Status, p.Body)
	}
	loc, err := p.URL.Parse(p.Header.Get("Location"))
	if err != nil {
		tb.Fatalf("%s: Location %q: %v", what, p.Header.Get("Location"), err)
	}
	return loc
}

// oidcStartLogin runs a login of zitUsername in b at the edge's connection
// to the provider o up to the provider's answer: it starts at the edge,
// checks the authorization request, signs in at the provider's login UI
// and returns the URL the provider sends the browser back to (the edge's
// callback with code and state), without following it.
func oidcStartLogin(tb testing.TB, b *testenv.Browser, w *world, o *zitOP, returnTo string) string {
	tb.Helper()
	return oidcStartLoginAs(tb, b, w, o, zitUsername, returnTo)
}

// oidcStartLoginAs is oidcStartLogin signing in as username (password
// zitPassword).
func oidcStartLoginAs(tb testing.TB, b *testenv.Browser, w *world, o *zitOP, username, returnTo string) string {
	tb.Helper()
	auth := redirectTarget(tb, b.Get(w.edgeURL+"/oidc/acme/"+o.conn+"/login?return_to="+url.QueryEscape(returnTo)), "edge login start")
	if got := auth.Scheme + "://" + auth.Host; got != o.issuer {
		tb.Fatalf("login start redirected to %s, want the provider %s", auth, o.issuer)
	}
	q := auth.Query()
	for k, want := range map[string]string{
		"client_id": zitClientID, "redirect_uri": w.edgeURL + o.callbackPath(),
		"response_type": "code", "code_challenge_method": "S256",
	} {
		if q.Get(k) != want {
			tb.Errorf("authorization request %s = %q, want %q", k, q.Get(k), want)
		}
	}
	for _, k := range []string{"state", "nonce", "code_challenge"} {
		if q.Get(k) == "" {
			tb.Errorf("authorization request without %s: %s", k, auth)
		}
	}
	if !strings.Contains(" "+q.Get("scope")+" ", " openid ") {
		tb.Errorf("authorization request scope %q lacks openid", q.Get("scope"))
	}
	loginUI := redirectTarget(tb, b.Get(auth.String()), "provider authorize")
	id := loginUI.Query().Get("authRequestID")
	if loginUI.Path != zitLoginPath || id == "" {
		tb.Fatalf("the provider sent the browser to %s, want its login UI", loginUI)
	}
	signIn := b.Post(o.issuer+zitLoginPath, url.Values{"id": {id}, "username": {username}, "password": {zitPassword}})
	authCallback := redirectTarget(tb, signIn, "provider login")                // /authorize/callback?id=
	cb := redirectTarget(tb, b.Get(authCallback.String()), "provider callback") // the edge's callback
	if got := cb.Scheme + "://" + cb.Host + cb.Path; got != w.edgeURL+o.callbackPath() {
		tb.Fatalf("the provider redirected to %s, want %s", cb, w.edgeURL+o.callbackPath())
	}
	if cb.Query().Get("code") == "" || cb.Query().Get("state") != q.Get("state") {
		tb.Fatalf("the provider's redirect %s lacks the code or the state %q", cb, q.Get("state"))
	}
	return cb.String()
}

// A first login through a real OpenID provider ends with a session for a
// user stored with the provider's sub as external id.
func TestOIDCFirstLogin(t *testing.T) {
	w := newWorld(t, 10, true)
	o := addZitadelConnection(t, w)
	b := newBrowser(t)
	resp := b.Get(oidcStartLogin(t, b, w, o, "/app"))
	if resp.Status != http.StatusSeeOther || resp.Header.Get("Location") != "/app" {
		t.Fatalf("callback: status %d location %q body %s, want 303 to /app", resp.Status, resp.Header.Get("Location"), resp.Body)
	}
	v, userID := verify(t, b, w.edgeURL)
	if v.Status != http.StatusOK || userID == "" {
		t.Fatalf("verify: %d user %q, want 200 and a user", v.Status, userID)
	}
	if n := countUsers(t, w.store); n != 1 {
		t.Fatalf("%d users, want 1", n)
	}
	var ext, conn, email string
	err := w.store.Pool().QueryRow(context.Background(),
		`SELECT i.external_id, i.connection_id, coalesce(u.email, '') FROM users u JOIN identities i ON i.user_id = u.id WHERE u.id = $1`, userID).Scan(&ext, &conn, &email)
	if err != nil {
		t.Fatalf("the user named by /auth/verify is not in Postgres: %v", err)
	}
	if ext != zitSubject || conn != "zitadel" {
		t.Errorf("stored external id %q connection %q, want %q and zitadel", ext, conn, zitSubject)
	}
	if email != zitEmail {
		t.Errorf("stored email %q, want %q", email, zitEmail)
	}
}

// The provider's redirect, carried to another browser (which started no
// login), signs nobody in.
func TestOIDCStateFromAnotherBrowser(t *testing.T) {
	w := newWorld(t, 10, true)
	o := addZitadelConnection(t, w)
	callback := oidcStartLogin(t, newBrowser(t), w, o, "/app")
	other := newBrowser(t)
	if resp := other.Get(callback); resp.Status != http.StatusForbidden || !strings.Contains(resp.Body, "Sign-in failed") {
		t.Errorf("callback in another browser: status %d location %q, want 403 sign-in failed; body %s",
			resp.Status, resp.Header.Get("Location"), resp.Body)
	}
	if v, id := verify(t, other, w.edgeURL); v.Status != http.StatusUnauthorized {
		t.Errorf("verify in the other browser: %d user %q, want 401", v.Status, id)
	}
	if n := countUsers(t, w.store); n != 0 {
		t.Errorf("%d users, want none", n)
	}
}

// The provider's redirect is good for one sign-in: replayed by the same
// browser after it succeeded, it is refused and provisions nothing more.
func TestOIDCCodeReplay(t *testing.T) {
	w := newWorld(t, 10, true)
	o := addZitadelConnection(t, w)
	b := newBrowser(t)
	callback := oidcStartLogin(t, b, w, o, "/app")
	if resp := b.Get(callback); resp.Status != http.StatusSeeOther {
		t.Fatalf("first callback: %d %s, want 303", resp.Status, resp.Body)
	}
	if again := b.Get(callback); again.Status != http.StatusForbidden || !strings.Contains(again.Body, "Sign-in failed") {
		t.Errorf("replayed callback: status %d location %q, want 403 sign-in failed; body %s",
			again.Status, again.Header.Get("Location"), again.Body)
	}
	if n := countUsers(t, w.store); n != 1 {
		t.Errorf("%d users, want 1", n)
	}
}

// With the connection's userinfo setting, the email the provider gives only
// at its userinfo endpoint is stored; without it, none is.
func TestOIDCUserinfo(t *testing.T) {
	for _, userinfo := range []bool{false, true} {
		t.Run("userinfo="+strconv.FormatBool(userinfo), func(t *testing.T) {
			w := newWorld(t, 10, true)
			o := addZitadelConnectionWith(t, w, true, userinfo)
			b := newBrowser(t)
			resp := b.Get(oidcStartLogin(t, b, w, o, "/app"))
			if !userinfo {
				// The ID token carries no email, and acme has SAML
				// connections too: the person may have an account there,
				// so no second one is made for them.
				if resp.Status != http.StatusForbidden || !strings.Contains(resp.Body, "Account not linked") {
					t.Fatalf("callback without an email: status %d body %s, want 403 account not linked", resp.Status, resp.Body)
				}
				if n := countUsers(t, w.store); n != 0 {
					t.Errorf("users after a login without an email: %d, want 0 (no second seat)", n)
				}
				return
			}
			if resp.Status != http.StatusSeeOther {
				t.Fatalf("callback: status %d body %s, want 303", resp.Status, resp.Body)
			}
			v, userID := verify(t, b, w.edgeURL)
			if v.Status != http.StatusOK || userID == "" {
				t.Fatalf("verify: %d user %q, want 200 and a user", v.Status, userID)
			}
			var email string
			if err := w.store.Pool().QueryRow(context.Background(),
				`SELECT coalesce(email, '') FROM users WHERE id = $1`, userID).Scan(&email); err != nil {
				t.Fatal(err)
			}
			if email != zitEmail {
				t.Errorf("stored email %q, want %q (from userinfo)", email, zitEmail)
			}
		})
	}
}

// zitClaims decodes an ID token's payload without verification.
func zitClaims(tb testing.TB, raw string) map[string]any {
	tb.Helper()
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		tb.Fatalf("ID token %q is not a compact JWS", raw)
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		tb.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		tb.Fatal(err)
	}
	return m
}

// zitSign mints a compact JWS over claims, alg RS256, with key and kid.
func zitSign(tb testing.TB, key *rsa.PrivateKey, kid string, claims map[string]any) string {
	tb.Helper()
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: jose.JSONWebKey{Key: key, KeyID: kid}},
		(&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		tb.Fatal(err)
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		tb.Fatal(err)
	}
	jws, err := signer.Sign(payload)
	if err != nil {
		tb.Fatal(err)
	}
	s, err := jws.CompactSerialize()
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

// zitRawJWT builds header.payload.signature with an arbitrary header and
// signature: what no honest signer makes.
func zitRawJWT(tb testing.TB, header, claims map[string]any, sign func(signingInput string) []byte) string {
	tb.Helper()
	h, err := json.Marshal(header)
	if err != nil {
		tb.Fatal(err)
	}
	p, err := json.Marshal(claims)
	if err != nil {
		tb.Fatal(err)
	}
	input := base64.RawURLEncoding.EncodeToString(h) + "." + base64.RawURLEncoding.EncodeToString(p)
	return input + "." + base64.RawURLEncoding.EncodeToString(sign(input))
}

// Each forged ID token — put by a man in the middle into the provider's
// real token response to a real login — is refused at the callback with the
// sign-in failed page, and nobody is provisioned.
func TestOIDCAttacksProvisionNothing(t *testing.T) {
	attackerKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	// resign: the real token's claims, changed by edit, signed again with
	// the provider's own key: only the claims are wrong.
	resign := func(t *testing.T, o *zitOP, edit func(map[string]any)) func(string) string {
		key, kid := o.signingKey(t)
		return func(idt string) string {
			m := zitClaims(t, idt)
			edit(m)
			return zitSign(t, key, kid, m)
		}
	}
	for _, tt := range []struct {
		name   string
		tamper func(t *testing.T, o *zitOP) func(string) string
	}{
		{"alg none", func(t *testing.T, o *zitOP) func(string) string {
			_, kid := o.signingKey(t)
			return func(idt string) string {
				return zitRawJWT(t, map[string]any{"alg": "none", "typ": "JWT", "kid": kid}, zitClaims(t, idt),
					func(string) []byte { return nil })
			}
		}},
		{"HS256 keyed with the provider's public key", func(t *testing.T, o *zitOP) func(string) string {
			key, kid := o.signingKey(t)
			der, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
			if err != nil {
				t.Fatal(err)
			}
			secret := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
			return func(idt string) string {
				return zitRawJWT(t, map[string]any{"alg": "HS256", "typ": "JWT", "kid": kid}, zitClaims(t, idt),
					func(input string) []byte {
						mac := hmac.New(sha256.New, secret)
						mac.Write([]byte(input))
						return mac.Sum(nil)
					})
			}
		}},
		{"wrong audience", func(t *testing.T, o *zitOP) func(string) string {
			return resign(t, o, func(m map[string]any) { m["aud"] = []string{"another-client"}; m["azp"] = "another-client" })
		}},
		{"wrong issuer", func(t *testing.T, o *zitOP) func(string) string {
			return resign(t, o, func(m map[string]any) { m["iss"] = "https://evil.example" })
		}},
		{"expired", func(t *testing.T, o *zitOP) func(string) string {
			return resign(t, o, func(m map[string]any) {
				now := time.Now()
				m["iat"] = now.Add(-2 * time.Hour).Unix()
				m["auth_time"] = now.Add(-2 * time.Hour).Unix()
				m["exp"] = now.Add(-time.Hour).Unix()
			})
		}},
		{"nonce changed", func(t *testing.T, o *zitOP) func(string) string {
			return resign(t, o, func(m map[string]any) { m["nonce"] = "attacker-chosen-nonce" })
		}},
		{"signed by another key", func(t *testing.T, o *zitOP) func(string) string {
			_, kid := o.signingKey(t) // the provider's kid, the attacker's key
			return func(idt string) string { return zitSign(t, attackerKey, kid, zitClaims(t, idt)) }
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld(t, 10, true)
			o := addZitadelConnection(t, w)
			forge := tt.tamper(t, o)
			var forged atomic.Int32
			o.setTamper(func(idt string) string { forged.Add(1); return forge(idt) })
			b := newBrowser(t)
			resp := b.Get(oidcStartLogin(t, b, w, o, "/app"))
			if n := forged.Load(); n != 1 {
				t.Errorf("%d ID tokens forged, want 1: the attack did not happen", n)
			}
			if resp.Status != http.StatusForbidden || !strings.Contains(resp.Body, "Sign-in failed") {
				t.Errorf("callback: status %d location %q, want 403 sign-in failed; body %s",
					resp.Status, resp.Header.Get("Location"), resp.Body)
			}
			if v, id := verify(t, b, w.edgeURL); v.Status != http.StatusUnauthorized {
				t.Errorf("verify: %d user %q, want 401", v.Status, id)
			}
			if n := countUsers(t, w.store); n != 0 {
				t.Errorf("%d users, want none", n)
			}
		})
	}

	// The control: the man in the middle re-signing the real claims
	// unchanged with the provider's key is accepted, so each refusal above
	// is the forgery's alone.
	t.Run("control: re-signed unchanged", func(t *testing.T) {
		w := newWorld(t, 10, true)
		o := addZitadelConnection(t, w)
		o.setTamper(resign(t, o, func(map[string]any) {}))
		b := newBrowser(t)
		resp := b.Get(oidcStartLogin(t, b, w, o, "/app"))
		if resp.Status != http.StatusSeeOther || resp.Header.Get("Location") != "/app" {
			t.Fatalf("callback: status %d location %q body %s, want 303 to /app", resp.Status, resp.Header.Get("Location"), resp.Body)
		}
		if n := countUsers(t, w.store); n != 1 {
			t.Errorf("%d users, want 1", n)
		}
	})

	// Policy: the provider's verified email belongs to an existing user with
	// no external identity, and acme's link_by_email is never: the login is
	// refused, and that user is neither linked nor joined by a new one.
	t.Run("email of an unlinked user, link_by_email never", func(t *testing.T) {
		w := newWorld(t, 10, true)
		o := addZitadelConnection(t, w)
		ctx := context.Background()
		existing := uuid.NewString()
		err := w.store.InTx(ctx, func(ctx context.Context, tx store.Tx) error {
			org, err := tx.Organization(ctx, "acme")
			if err != nil {
				return err
			}
			if org.LinkByEmail != store.LinkNever {
				return fmt.Errorf("acme's link_by_email is %q, want never", org.LinkByEmail)
			}
			if _, err := tx.TakeSeat(ctx, "acme"); err != nil {
				return err
			}
			_, err = tx.CreateUser(ctx, store.User{
				ID: existing, OrganizationID: "acme", Email: zitEmail, EmailVerified: true,
				Role: "member", Status: store.StatusActive, CreatedBy: store.CreatedByAdmin,
			})
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		b := newBrowser(t)
		resp := b.Get(oidcStartLogin(t, b, w, o, "/app"))
		if resp.Status != http.StatusForbidden || !strings.Contains(resp.Body, "Account not linked") {
			t.Errorf("callback: status %d location %q, want 403 account not linked; body %s",
				resp.Status, resp.Header.Get("Location"), resp.Body)
		}
		if v, id := verify(t, b, w.edgeURL); v.Status != http.StatusUnauthorized {
			t.Errorf("verify: %d user %q, want 401", v.Status, id)
		}
		if n := countUsers(t, w.store); n != 1 {
			t.Errorf("%d users, want only the existing one", n)
		}
		var conn, ext string
		if err := w.store.Pool().QueryRow(ctx,
			`SELECT coalesce(string_agg(connection_id, ','), ''), coalesce(string_agg(external_id, ','), '') FROM identities WHERE user_id = $1`, existing).Scan(&conn, &ext); err != nil {
			t.Fatal(err)
		}
		if conn != "" || ext != "" {
			t.Errorf("the existing user was linked to connection %q external id %q, want no identity", conn, ext)
		}
	})
}
