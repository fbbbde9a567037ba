package loadtest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// OIDC client of the load-test connections.
const (
	OIDCConnectionID = "oidc"
	OIDCClientID     = "jitprov-loadtest"
	// OIDCSecretEnv is the variable of sso-edge's environment holding the
	// client secret (client_secret_env of the load-test OIDC connections).
	OIDCSecretEnv = "JITPROV_LOADTEST_OIDC_SECRET"
)

// OIDCProvider is the load-test OpenID provider: discovery, JWKS, an
// authorization endpoint that signs in at once the person the browser
// names (login_hint: the external id; no page, no password), and a token
// endpoint (client_secret_basic, PKCE S256) issuing ES256 ID tokens.
//
// What it can, it makes ahead: each person's claims are fixed by their
// external id, and the key is P-256 so that a signature costs tens of
// microseconds. The ID token itself cannot be made ahead: it must carry
// the nonce the edge chose for this browser's login a moment before, so it
// is signed at the token endpoint. Run it as a process of its own
// (jitprov-loadtest-peer oidc-provider) to see its CPU apart from the
// edge's.
type OIDCProvider struct {
	Issuer string // its URL, as the edge's connections name it
	Secret string // the client secret
	key    *ecdsa.PrivateKey
	signer jose.Signer
	mu     sync.Mutex
	codes  map[string]pendingCode
}

type pendingCode struct {
	sub, nonce, challenge, redirect string
	expires                         time.Time
}

// NewOIDCProvider makes a provider with a fresh P-256 key.
func NewOIDCProvider(issuer, secret string) (*OIDCProvider, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	return newOIDCProvider(issuer, secret, key)
}

// LoadOIDCProvider is NewOIDCProvider with a key in PEM (SEC 1 or PKCS#8).
func LoadOIDCProvider(issuer, secret string, keyPEM []byte) (*OIDCProvider, error) {
	b, _ := pem.Decode(keyPEM)
	if b == nil {
		return nil, errors.New("oidc provider: no PEM key")
	}
	key, err := x509.ParseECPrivateKey(b.Bytes)
	if err != nil {
		return nil, err
	}
	return newOIDCProvider(issuer, secret, key)
}

func newOIDCProvider(issuer, secret string, key *ecdsa.PrivateKey) (*OIDCProvider, error) {
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: key, KeyID: "lt-1"}},
		(&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		return nil, err
	}
	return &OIDCProvider{Issuer: strings.TrimRight(issuer, "/"), Secret: secret, key: key, signer: s, codes: map[string]pendingCode{}}, nil
}

// KeyPEM is the provider's key (SEC 1 PEM), to hand to another process.
func (p *OIDCProvider) KeyPEM() []byte {
	der, _ := x509.MarshalECPrivateKey(p.key)
	return pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der})
}

// OIDCClaims are the made-ahead claims of the person with external id sub.
func OIDCClaims(sub string) map[string]any {
	return map[string]any{"sub": sub, "email": sub + "@loadtest.example", "email_verified": true,
		"given_name": "Load", "family_name": "Test"}
}

func (p *OIDCProvider) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/.well-known/openid-configuration":
		writeJSON(w, map[string]any{"issuer": p.Issuer, "authorization_endpoint": p.Issuer + "/authorize",
			"token_endpoint": p.Issuer + "/token", "jwks_uri": p.Issuer + "/jwks",
			"response_types_supported": []string{"code"}, "subject_types_supported": []string{"public"},
			"id_token_signing_alg_values_supported": []string{"ES256"}, "code_challenge_methods_supported": []string{"S256"},
			"token_endpoint_auth_methods_supported": []string{"client_secret_basic"}, "scopes_supported": []string{"openid", "email", "profile"}})
	case "/jwks":
		writeJSON(w, jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &p.key.PublicKey, KeyID: "lt-1", Algorithm: "ES256", Use: "sig"}}})
	case "/authorize":
		p.authorize(w, r)
	case "/token":
		p.token(w, r)
	default:
		http.NotFound(w, r)
	}
}

func (p *OIDCProvider) authorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	redirect, err := url.Parse(q.Get("redirect_uri"))
	if err != nil || q.Get("client_id") != OIDCClientID || q.Get("response_type") != "code" || redirect.Host == "" {
		http.Error(w, "bad authorization request", http.StatusBadRequest)
		return
	}
	sub := q.Get("login_hint")
	if sub == "" || q.Get("code_challenge_method") != "S256" || q.Get("code_challenge") == "" || q.Get("nonce") == "" {
		http.Error(w, "login_hint, nonce and a PKCE S256 challenge are required", http.StatusBadRequest)
		return
	}
	code := randomID()
	p.mu.Lock()
	p.codes[code] = pendingCode{sub: sub, nonce: q.Get("nonce"), challenge: q.Get("code_challenge"), redirect: redirect.String(),
		expires: time.Now().Add(time.Minute)}
	p.mu.Unlock()
	back := redirect.Query()
	back.Set("code", code)
	back.Set("state", q.Get("state"))
	redirect.RawQuery = back.Encode()
	http.Redirect(w, r, redirect.String(), http.StatusFound)
}

func (p *OIDCProvider) token(w http.ResponseWriter, r *http.Request) {
	id, secret, ok := r.BasicAuth()
	if r.Method != http.MethodPost || !ok {
		tokenError(w, http.StatusUnauthorized, "invalid_client")
		return
	}
	id, _ = url.QueryUnescape(id)
	secret, _ = url.QueryUnescape(secret)
	if id != OIDCClientID || subtle.ConstantTimeCompare([]byte(secret), []byte(p.Secret)) != 1 {
		tokenError(w, http.StatusUnauthorized, "invalid_client")
		return
	}
	if err := r.ParseForm(); err != nil || r.PostForm.Get("grant_type") != "authorization_code" {
		tokenError(w, http.StatusBadRequest, "unsupported_grant_type")
		return
	}
	p.mu.Lock()
	c, ok := p.codes[r.PostForm.Get("code")]
	delete(p.codes, r.PostForm.Get("code"))
	p.mu.Unlock()
	sum := sha256.Sum256([]byte(r.PostForm.Get("code_verifier")))
	if !ok || time.Now().After(c.expires) || c.redirect != r.PostForm.Get("redirect_uri") ||
		base64.RawURLEncoding.EncodeToString(sum[:]) != c.challenge {
		tokenError(w, http.StatusBadRequest, "invalid_grant")
		return
	}
	now := time.Now()
	claims := OIDCClaims(c.sub)
	claims["iss"], claims["aud"], claims["nonce"] = p.Issuer, OIDCClientID, c.nonce
	claims["iat"], claims["exp"] = now.Unix(), now.Add(5*time.Minute).Unix()
	payload, _ := json.Marshal(claims)
	jws, err := p.signer.Sign(payload)
	if err != nil {
		tokenError(w, http.StatusInternalServerError, "server_error")
		return
	}
	idt, _ := jws.CompactSerialize()
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, map[string]any{"access_token": randomID(), "token_type": "Bearer", "expires_in": 300, "id_token": idt})
}

// Sweep forgets codes never exchanged; call it now and then.
func (p *OIDCProvider) Sweep() {
	now := time.Now()
	p.mu.Lock()
	defer p.mu.Unlock()
	for k, c := range p.codes {
		if now.After(c.expires) {
			delete(p.codes, k)
		}
	}
}

func tokenError(w http.ResponseWriter, status int, code string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": code})
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}
