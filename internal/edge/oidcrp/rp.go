package oidcrp

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"golang.org/x/oauth2"
)

// Defaults.
const (
	DefaultClockSkew           = time.Minute
	DefaultHTTPTimeout         = 10 * time.Second
	DefaultJWKSRefreshInterval = 10 * time.Second
	// MaxIDTokenBytes bounds an ID token before it is parsed.
	MaxIDTokenBytes = 64 << 10
)

// DefaultScopes are requested when Config.Scopes is empty.
var DefaultScopes = []string{oidc.ScopeOpenID, "email", "profile"}

// DefaultAllowedAlgs are accepted when Config.AllowedAlgs is empty: the RSA
// and ECDSA families. EdDSA and PS* may be allowed explicitly.
var DefaultAllowedAlgs = []string{
	oidc.RS256, oidc.RS384, oidc.RS512,
	oidc.ES256, oidc.ES384, oidc.ES512,
}

// permittedAlgs is everything Config.AllowedAlgs may name: asymmetric
// algorithms only, never "none" or HS*.
var permittedAlgs = []string{
	oidc.RS256, oidc.RS384, oidc.RS512,
	oidc.ES256, oidc.ES384, oidc.ES512,
	oidc.PS256, oidc.PS384, oidc.PS512,
	oidc.EdDSA,
}

// TokenAuth is how the client authenticates at the token endpoint.
type TokenAuth string

// Supported token endpoint authentication methods.
const (
	ClientSecretBasic TokenAuth = "client_secret_basic" // the default
	ClientSecretPost  TokenAuth = "client_secret_post"
	// PrivateKeyJWT authenticates with an RFC 7523 client assertion signed
	// with Config.PrivateKey; no client secret is sent.
	PrivateKeyJWT TokenAuth = "private_key_jwt"
)

// ClientAssertionType is the client_assertion_type of PrivateKeyJWT.
const ClientAssertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

// clientAssertionLifetime is how long a client assertion is valid.
const clientAssertionLifetime = time.Minute

// Config configures one OIDC connection.
type Config struct {
	// Issuer is the provider's issuer URL; discovery is fetched from
	// Issuer + "/.well-known/openid-configuration" and must name the same
	// issuer, but for a trailing slash: with or without one, the
	// discovery document's spelling is the one ID tokens must carry.
	Issuer       string
	ClientID     string
	ClientSecret string // never logged, never in an error
	// RedirectURL is our callback, registered at the provider.
	RedirectURL string
	// Scopes default to DefaultScopes; "openid" is added if missing.
	Scopes []string
	// AllowedAlgs default to DefaultAllowedAlgs. "none" and HS* are refused
	// by New.
	AllowedAlgs []string
	// TokenAuth defaults to ClientSecretBasic.
	TokenAuth TokenAuth
	// PrivateKey signs the client assertion when TokenAuth is
	// PrivateKeyJWT (required then, refused otherwise): an *rsa.PrivateKey
	// (RS256, at least 2048 bits) or an *ecdsa.PrivateKey on P-256 (ES256).
	// ClientSecret must be empty then.
	PrivateKey crypto.Signer
	// PrivateKeyID is the kid of the assertion's header, as registered at
	// the provider; optional.
	PrivateKeyID string
	// HTTPClient is required and must not be http.DefaultClient. New copies
	// it and adds: a transport that refuses non-https requests (unless
	// AllowInsecure), a redirect policy that refuses redirects to non-https
	// and more than 5 redirects, and HTTPTimeout if it has no Timeout.
	HTTPClient *http.Client
	// AllowInsecure permits http URLs (issuer, endpoints, redirects). Tests
	// and development only.
	AllowInsecure bool
	// ClockSkew defaults to DefaultClockSkew. It is tolerated on exp and iat.
	ClockSkew time.Duration
	// HTTPTimeout bounds discovery, token and JWKS requests (default
	// DefaultHTTPTimeout).
	HTTPTimeout time.Duration
	// JWKSRefreshInterval is the least time between two JWKS fetches
	// (default DefaultJWKSRefreshInterval). A token signed with a key the
	// provider started using less than this after our last fetch is refused
	// until the interval has passed: providers publish new keys before they
	// sign with them, so this only matters if they do not.
	JWKSRefreshInterval time.Duration
	// Userinfo: Finish also calls the provider's userinfo endpoint with
	// the access token, requires its sub to be the ID token's, and merges
	// its claims into Claims.Raw where the ID token has none (the ID token
	// wins on conflicts). New then requires a userinfo_endpoint in the
	// discovery document.
	Userinfo bool
	// Now defaults to time.Now; for tests.
	Now func() time.Time
}

// RP is one relying-party connection. It is safe for concurrent use.
type RP struct {
	issuer      string
	clientID    string
	allowedAlgs []string
	skew        time.Duration
	timeout     time.Duration
	now         func() time.Time
	client      *http.Client
	oauth       oauth2.Config
	verifier    *oidc.IDTokenVerifier
	jwks        *jwksThrottle
	requireIss  bool // the provider sends iss on the callback (RFC 9207)
	// provider is set when Config.Userinfo: Finish calls its userinfo
	// endpoint.
	provider *oidc.Provider
	// assertion is set for PrivateKeyJWT: it signs client assertions.
	assertion jose.Signer
}

// New validates cfg and fetches the provider's discovery document (within
// HTTPTimeout). The JWKS is fetched on the first verification.
func New(ctx context.Context, cfg Config) (*RP, error) {
	if err := checkURL("issuer", cfg.Issuer, cfg.AllowInsecure); err != nil {
		return nil, err
	}
	if err := checkURL("redirect URL", cfg.RedirectURL, cfg.AllowInsecure); err != nil {
		return nil, err
	}
	if cfg.ClientID == "" {
		return nil, errors.New("oidcrp: ClientID is required")
	}
	if cfg.HTTPClient == nil || cfg.HTTPClient == http.DefaultClient {
		return nil, errors.New("oidcrp: HTTPClient is required and must not be http.DefaultClient")
	}
	algs := cfg.AllowedAlgs
	if len(algs) == 0 {
		algs = DefaultAllowedAlgs
	}
	for _, a := range algs {
		if !slices.Contains(permittedAlgs, a) {
			return nil, fmt.Errorf("oidcrp: signing algorithm %q is not allowed (asymmetric algorithms only)", a)
		}
	}
	scopes := cfg.Scopes
	if len(scopes) == 0 {
		scopes = DefaultScopes
	}
	if !slices.Contains(scopes, oidc.ScopeOpenID) {
		scopes = append([]string{oidc.ScopeOpenID}, scopes...)
	}
	var style oauth2.AuthStyle
	var assertion jose.Signer
	switch cfg.TokenAuth {
	case "", ClientSecretBasic:
		style = oauth2.AuthStyleInHeader
	case ClientSecretPost:
		style = oauth2.AuthStyleInParams
	case PrivateKeyJWT:
		style = oauth2.AuthStyleInParams
		if cfg.ClientSecret != "" {
			return nil, errors.New("oidcrp: private_key_jwt sends no client secret; ClientSecret must be empty")
		}
		s, err := assertionSigner(cfg.PrivateKey, cfg.PrivateKeyID)
		if err != nil {
			return nil, err
		}
		assertion = s
	default:
		return nil, fmt.Errorf("oidcrp: token endpoint auth %q is not supported", cfg.TokenAuth)
	}
	if cfg.TokenAuth != PrivateKeyJWT && cfg.PrivateKey != nil {
		return nil, fmt.Errorf("oidcrp: PrivateKey is only for token endpoint auth %q", PrivateKeyJWT)
	}
	rp := &RP{
		issuer:      cfg.Issuer,
		clientID:    cfg.ClientID,
		allowedAlgs: slices.Clone(algs),
		skew:        cfg.ClockSkew,
		timeout:     cfg.HTTPTimeout,
		now:         cfg.Now,
		assertion:   assertion,
	}
	if rp.skew <= 0 {
		rp.skew = DefaultClockSkew
	}
	if rp.timeout <= 0 {
		rp.timeout = DefaultHTTPTimeout
	}
	if rp.now == nil {
		rp.now = time.Now
	}
	refresh := cfg.JWKSRefreshInterval
	if refresh <= 0 {
		refresh = DefaultJWKSRefreshInterval
	}

	base := cfg.HTTPClient.Transport
	if base == nil {
		base = http.DefaultTransport
	}
	transport := http.RoundTripper(httpsOnly{next: base, allowInsecure: cfg.AllowInsecure})
	clientTimeout := cfg.HTTPClient.Timeout
	if clientTimeout == 0 {
		clientTimeout = rp.timeout
	}
	rp.client = &http.Client{
		Transport:     transport,
		CheckRedirect: redirectPolicy(cfg.AllowInsecure),
		Jar:           nil, // no cookies towards the provider's back channel
		Timeout:       clientTimeout,
	}

	dctx, cancel := context.WithTimeout(ctx, rp.timeout)
	defer cancel()
	// go-oidc reports a discovery document fetched with another status
	// than 200 as text: note the status, to tell an unavailable provider
	// from a wrong issuer.
	var status statusRecorder
	discovery := &http.Client{Transport: &status, CheckRedirect: rp.client.CheckRedirect, Timeout: rp.client.Timeout}
	status.next = transport
	dctx = oidc.ClientContext(dctx, discovery)
	provider, err := oidc.NewProvider(dctx, cfg.Issuer)
	var mismatch *oidc.IssuerMismatchError
	if errors.As(err, &mismatch) && strings.TrimSuffix(mismatch.Discovered, "/") == strings.TrimSuffix(cfg.Issuer, "/") {
		// The same issuer but for a trailing slash, which is written or
		// left out by habit (Google names its issuer without one, Auth0
		// with one), and the discovery URL is the same either way. Its
		// ID tokens carry the provider's spelling: take that one, and
		// compare exactly from here on.
		rp.issuer = mismatch.Discovered
		provider, err = oidc.NewProvider(dctx, rp.issuer)
	}
	if err != nil && status.unavailable() {
		return nil, fmt.Errorf("oidcrp: discovery: %w: %w", ErrUnavailable, err)
	} else if err != nil {
		return nil, fmt.Errorf("oidcrp: discovery: %w", err)
	}
	var disc struct {
		JWKSURI      string   `json:"jwks_uri"`
		IssParameter bool     `json:"authorization_response_iss_parameter_supported"`
		PKCEMethods  []string `json:"code_challenge_methods_supported"`
	}
	if err := provider.Claims(&disc); err != nil {
		return nil, fmt.Errorf("oidcrp: discovery: %w", err)
	}
	ep := provider.Endpoint()
	for name, u := range map[string]string{"authorization_endpoint": ep.AuthURL, "token_endpoint": ep.TokenURL, "jwks_uri": disc.JWKSURI} {
		if err := checkURL("discovery "+name, u, cfg.AllowInsecure); err != nil {
			return nil, err
		}
	}
	if len(disc.PKCEMethods) > 0 && !slices.Contains(disc.PKCEMethods, "S256") {
		return nil, errors.New("oidcrp: discovery: provider does not support PKCE S256")
	}
	if cfg.Userinfo {
		ui := provider.UserInfoEndpoint()
		if ui == "" {
			return nil, errors.New("oidcrp: discovery: provider has no userinfo_endpoint")
		}
		if err := checkURL("discovery userinfo_endpoint", ui, cfg.AllowInsecure); err != nil {
			return nil, err
		}
		rp.provider = provider
	}
	rp.requireIss = disc.IssParameter
	ep.AuthStyle = style
	rp.oauth = oauth2.Config{
		ClientID:     cfg.ClientID,
		ClientSecret: cfg.ClientSecret,
		Endpoint:     ep,
		RedirectURL:  cfg.RedirectURL,
		Scopes:       slices.Clone(scopes),
	}

	rp.jwks = &jwksThrottle{next: transport, minInterval: refresh, now: rp.now}
	jwksClient := &http.Client{Transport: rp.jwks, CheckRedirect: rp.client.CheckRedirect, Timeout: clientTimeout}
	keySet := oidc.NewRemoteKeySet(oidc.ClientContext(context.Background(), jwksClient), disc.JWKSURI)
	rp.verifier = oidc.NewVerifier(rp.issuer, keySet, &oidc.Config{
		ClientID:             cfg.ClientID,
		SupportedSigningAlgs: rp.allowedAlgs,
		// go-oidc compares exp with no leeway; shifting its clock back gives
		// ClockSkew of leeway on exp.
		Now: func() time.Time { return rp.now().Add(-rp.skew) },
	})
	return rp, nil
}

func checkURL(what, raw string, allowInsecure bool) error {
	u, err := url.Parse(raw)
	if err != nil || raw == "" || u.Host == "" || u.Fragment != "" || u.User != nil {
		return fmt.Errorf("oidcrp: %s %q is not an absolute URL", what, raw)
	}
	switch {
	case u.Scheme == "https":
	case u.Scheme == "http" && allowInsecure:
	default:
		return fmt.Errorf("oidcrp: %s %q must be https", what, raw)
	}
	return nil
}

// httpsOnly refuses any request that is not https, unless allowInsecure.
type httpsOnly struct {
	next          http.RoundTripper
	allowInsecure bool
}

func (h httpsOnly) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Scheme != "https" && !(h.allowInsecure && req.URL.Scheme == "http") {
		return nil, fmt.Errorf("oidcrp: refusing %s request to %s", req.URL.Scheme, req.URL.Host)
	}
	return h.next.RoundTrip(req)
}

func redirectPolicy(allowInsecure bool) func(*http.Request, []*http.Request) error {
	return func(req *http.Request, via []*http.Request) error {
		if len(via) >= 5 {
			return errors.New("oidcrp: too many redirects")
		}
		if req.URL.Scheme != "https" && !(allowInsecure && req.URL.Scheme == "http") {
			return fmt.Errorf("oidcrp: refusing redirect to %s URL", req.URL.Scheme)
		}
		return nil
	}
}

// Pending is what the caller binds to the browser between Begin and Finish
// (a short-lived signed, HttpOnly cookie, or a shared store keyed by a
// cookie). All three values are secrets of that browser.
type Pending struct {
	State, Nonce, Verifier string
}

// Start is a login to begin: send the browser to URL, bind Pending to it.
type Start struct {
	URL string
	Pending
}

// Begin starts an authorization code login with PKCE (S256), a fresh random
// state and nonce.
func (rp *RP) Begin() (Start, error) {
	state, err := randomString()
	if err != nil {
		return Start{}, err
	}
	nonce, err := randomString()
	if err != nil {
		return Start{}, err
	}
	verifier := oauth2.GenerateVerifier()
	u := rp.oauth.AuthCodeURL(state, oauth2.S256ChallengeOption(verifier), oidc.Nonce(nonce))
	return Start{URL: u, Pending: Pending{State: state, Nonce: nonce, Verifier: verifier}}, nil
}

func randomString() (string, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("oidcrp: random: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b[:]), nil
}

// Claims are the verified ID token's claims.
type Claims struct {
	Issuer  string
	Subject string
	// Email and EmailVerified come from the ID token's "email" (a string)
	// and "email_verified" (a JSON boolean; the string "true" is not
	// accepted here — map it explicitly with Lookup if a provider sends it).
	Email         string
	EmailVerified bool
	// Raw holds every claim, numbers as json.Number. Use Lookup on it.
	Raw map[string]any
}

// Finish completes the login on the redirect back from the provider:
// callback is the query of the request to RedirectURL, pending what Begin
// bound to this browser. It checks the provider's error parameter, the
// state (constant time), the RFC 9207 iss parameter, exchanges the code with
// the PKCE verifier and verifies the ID token (see Verify), and at_hash when
// present. With Config.Userinfo it then fetches the userinfo endpoint's
// claims (see Config.Userinfo).
func (rp *RP) Finish(ctx context.Context, pending Pending, callback url.Values) (*Claims, error) {
	if e := callback.Get("error"); e != "" {
		return nil, reject(ReasonOPError, "provider returned error %q", truncate(e, 64))
	}
	if pending.State == "" || pending.Nonce == "" || pending.Verifier == "" {
		return nil, reject(ReasonPending, "no pending login for this browser")
	}
	if !equal(callback.Get("state"), pending.State) {
		return nil, reject(ReasonState, "state does not match this browser's pending login")
	}
	if iss, ok := callback["iss"]; ok || rp.requireIss {
		if len(iss) != 1 || iss[0] != rp.issuer {
			return nil, reject(ReasonIssuer, "callback iss parameter %q is not %q", truncate(strings.Join(iss, ","), 128), rp.issuer)
		}
	}
	code := callback.Get("code")
	if code == "" {
		return nil, reject(ReasonNoCode, "callback has no code")
	}
	tok, err := rp.exchange(ctx, code, oauth2.VerifierOption(pending.Verifier))
	if err != nil {
		return nil, err
	}
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		return nil, reject(ReasonNoIDToken, "token response has no id_token")
	}
	claims, idt, err := rp.verify(ctx, raw, pending.Nonce)
	if err != nil {
		return nil, err
	}
	if idt.AccessTokenHash != "" {
		if err := idt.VerifyAccessToken(tok.AccessToken); err != nil {
			return nil, &RejectError{Reason: ReasonAtHash, Detail: "at_hash does not match the access token", Cause: err}
		}
	}
	if rp.provider != nil {
		if err := rp.mergeUserinfo(ctx, tok, claims); err != nil {
			return nil, err
		}
	}
	return claims, nil
}

// Reasons of the userinfo step (Config.Userinfo).
const (
	// ReasonUserinfo: the userinfo endpoint failed or answered with no
	// JSON object.
	ReasonUserinfo Reason = "userinfo"
	// ReasonUserinfoSub: the userinfo sub is missing or is not the ID
	// token's sub.
	ReasonUserinfoSub Reason = "userinfo_sub"
)

// mergeUserinfo fetches the userinfo endpoint's claims with tok's access
// token (through the https-only client), requires its sub to be the ID
// token's and adds to c.Raw the claims the ID token lacks.
func (rp *RP) mergeUserinfo(ctx context.Context, tok *oauth2.Token, c *Claims) error {
	if tok.AccessToken == "" {
		return reject(ReasonUserinfo, "token response has no access_token")
	}
	ctx, cancel := context.WithTimeout(ctx, rp.timeout)
	defer cancel()
	// Only the access token: never the refresh token, so go-oidc cannot
	// trigger a refresh.
	ts := oauth2.StaticTokenSource(&oauth2.Token{AccessToken: tok.AccessToken, TokenType: tok.TokenType})
	ui, err := rp.provider.UserInfo(oidc.ClientContext(ctx, rp.client), ts)
	if err != nil {
		// Not wrapped: go-oidc's message may carry the provider's raw answer.
		return reject(ReasonUserinfo, "userinfo endpoint: %s", truncate(err.Error(), 300))
	}
	var rawClaims json.RawMessage
	if err := ui.Claims(&rawClaims); err != nil {
		return reject(ReasonUserinfo, "userinfo response is not JSON")
	}
	dec := json.NewDecoder(bytes.NewReader(rawClaims))
	dec.UseNumber()
	var extra map[string]any
	if err := dec.Decode(&extra); err != nil || extra == nil {
		return reject(ReasonUserinfo, "userinfo response is not a JSON object")
	}
	sub, _ := extra["sub"].(string)
	if sub == "" || !equal(sub, c.Subject) {
		return reject(ReasonUserinfoSub, "userinfo sub %q is not the ID token's", truncate(fmt.Sprint(extra["sub"]), 128))
	}
	_, hadEmail := c.Raw["email"]
	for k, v := range extra {
		if _, ok := c.Raw[k]; !ok {
			c.Raw[k] = v
		}
	}
	if !hadEmail {
		c.Email, _ = c.Raw["email"].(string)
		c.EmailVerified, _ = c.Raw["email_verified"].(bool)
	}
	return nil
}

// assertionSigner checks a private_key_jwt key and makes its signer.
// CheckPrivateKey says why New refuses key as Config.PrivateKey of
// PrivateKeyJWT, or nil when it accepts it: an RSA key of at least 2048
// bits or an ECDSA key on P-256.
func CheckPrivateKey(key crypto.Signer) error {
	_, err := assertionAlg(key)
	return err
}

// assertionAlg is the algorithm that signs client assertions with key.
func assertionAlg(key crypto.Signer) (jose.SignatureAlgorithm, error) {
	switch k := key.(type) {
	case nil:
		return "", fmt.Errorf("oidcrp: token endpoint auth %q requires PrivateKey", PrivateKeyJWT)
	case *rsa.PrivateKey:
		if k.N.BitLen() < 2048 {
			return "", fmt.Errorf("oidcrp: private_key_jwt RSA key has %d bits, at least 2048 are required", k.N.BitLen())
		}
		return jose.RS256, nil
	case *ecdsa.PrivateKey:
		if k.Curve != elliptic.P256() {
			return "", errors.New("oidcrp: private_key_jwt ECDSA key must be on P-256 (ES256)")
		}
		return jose.ES256, nil
	default:
		return "", fmt.Errorf("oidcrp: private_key_jwt key type %T is not supported (RSA or ECDSA P-256)", key)
	}
}

func assertionSigner(key crypto.Signer, kid string) (jose.Signer, error) {
	alg, err := assertionAlg(key)
	if err != nil {
		return nil, err
	}
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: jose.JSONWebKey{Key: key, KeyID: kid}},
		(&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		return nil, fmt.Errorf("oidcrp: private_key_jwt signer: %w", err)
	}
	return s, nil
}

// clientAssertion signs a fresh RFC 7523 client assertion: iss and sub
// our client id, aud the token endpoint URL and the issuer (providers
// differ in which they require, e.g. zitadel the issuer), a random jti,
// iat now and exp a minute later.
func (rp *RP) clientAssertion() (string, error) {
	jti, err := randomString()
	if err != nil {
		return "", err
	}
	now := rp.now()
	aud := jwt.Audience{rp.oauth.Endpoint.TokenURL}
	if rp.issuer != rp.oauth.Endpoint.TokenURL {
		aud = append(aud, rp.issuer)
	}
	raw, err := jwt.Signed(rp.assertion).Claims(jwt.Claims{
		Issuer: rp.clientID, Subject: rp.clientID, Audience: aud, ID: jti,
		IssuedAt: jwt.NewNumericDate(now), Expiry: jwt.NewNumericDate(now.Add(clientAssertionLifetime)),
	}).Serialize()
	if err != nil {
		return "", reject(ReasonExchange, "sign the client assertion: %s", truncate(err.Error(), 200))
	}
	return raw, nil
}

func (rp *RP) exchange(ctx context.Context, code string, opts ...oauth2.AuthCodeOption) (*oauth2.Token, error) {
	if rp.assertion != nil {
		a, err := rp.clientAssertion()
		if err != nil {
			return nil, err
		}
		opts = append(opts, oauth2.SetAuthURLParam("client_assertion_type", ClientAssertionType),
			oauth2.SetAuthURLParam("client_assertion", a))
	}
	ctx, cancel := context.WithTimeout(ctx, rp.timeout)
	defer cancel()
	tok, err := rp.oauth.Exchange(oidc.ClientContext(ctx, rp.client), code, opts...)
	if err != nil {
		var re *oauth2.RetrieveError
		if errors.As(err, &re) {
			status := 0
			if re.Response != nil {
				status = re.Response.StatusCode
			}
			// Never wrap re: its Body is the provider's raw answer.
			return nil, reject(ReasonExchange, "token endpoint: HTTP %d %q %q", status, truncate(re.ErrorCode, 64), truncate(re.ErrorDescription, 200))
		}
		return nil, reject(ReasonExchange, "token endpoint: %s", truncate(err.Error(), 300))
	}
	return tok, nil
}

// Verify verifies a raw ID token against this connection: everything
// go-oidc checks (signature with the provider's JWKS, alg in AllowedAlgs,
// iss, aud, exp, nbf), and what it leaves to the caller: the nonce (which
// must be the non-empty one bound to the browser), azp, iat present and not
// in the future, sub present. Finish calls it; it is exported for
// benchmarks and for callers that obtain ID tokens otherwise.
func (rp *RP) Verify(ctx context.Context, rawIDToken, nonce string) (*Claims, error) {
	c, _, err := rp.verify(ctx, rawIDToken, nonce)
	return c, err
}

func (rp *RP) verify(ctx context.Context, raw, nonce string) (*Claims, *oidc.IDToken, error) {
	if len(raw) > MaxIDTokenBytes {
		return nil, nil, reject(ReasonMalformed, "ID token larger than %d bytes", MaxIDTokenBytes)
	}
	if err := rp.checkHeader(raw); err != nil {
		return nil, nil, err
	}
	idt, err := rp.verifier.Verify(ctx, raw)
	if err != nil {
		return nil, nil, mapVerifyError(err)
	}
	var rawClaims json.RawMessage
	if err := idt.Claims(&rawClaims); err != nil {
		return nil, nil, &RejectError{Reason: ReasonMalformed, Detail: "payload", Cause: err}
	}
	dec := json.NewDecoder(bytes.NewReader(rawClaims))
	dec.UseNumber() // large integers survive in Claims.Raw
	var payload map[string]any
	if err := dec.Decode(&payload); err != nil || payload == nil {
		return nil, nil, reject(ReasonMalformed, "payload is not a JSON object")
	}

	now := rp.now()
	if sub, _ := payload["sub"].(string); sub == "" {
		return nil, nil, reject(ReasonNoSub, "sub is missing or empty")
	}
	if _, ok := payload["iat"]; !ok || idt.IssuedAt.IsZero() {
		return nil, nil, reject(ReasonNoIAT, "iat is missing")
	}
	if idt.IssuedAt.After(now.Add(rp.skew)) {
		return nil, nil, reject(ReasonIATFuture, "iat %s is in the future (now %s)", idt.IssuedAt.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339))
	}
	azp, hasAZP := payload["azp"]
	switch {
	case hasAZP:
		if s, _ := azp.(string); s != rp.clientID {
			return nil, nil, reject(ReasonAZP, "azp %v is not our client id", truncate(fmt.Sprint(azp), 128))
		}
	case len(idt.Audience) > 1:
		return nil, nil, reject(ReasonAZP, "several audiences and no azp")
	}
	if nonce == "" || !equal(idt.Nonce, nonce) {
		return nil, nil, reject(ReasonNonce, "nonce does not match this browser's pending login")
	}
	c := &Claims{Issuer: idt.Issuer, Subject: idt.Subject, Raw: payload}
	c.Email, _ = payload["email"].(string)
	c.EmailVerified, _ = payload["email_verified"].(bool)
	return c, idt, nil
}

// checkHeader refuses, before any key lookup, a token that is not a compact
// JWS or whose alg is not allowed (none, HS*, ...).
func (rp *RP) checkHeader(raw string) error {
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		return reject(ReasonMalformed, "not a compact JWS (%d parts)", len(parts))
	}
	hb, err := base64.RawURLEncoding.DecodeString(parts[0])
	if err != nil {
		return reject(ReasonMalformed, "header is not base64url")
	}
	var h struct {
		Alg string `json:"alg"`
	}
	if err := json.Unmarshal(hb, &h); err != nil {
		return reject(ReasonMalformed, "header is not JSON")
	}
	if !slices.Contains(rp.allowedAlgs, h.Alg) {
		return reject(ReasonAlg, "alg %q is not allowed", truncate(h.Alg, 32))
	}
	return nil
}

// goOIDCMessages maps go-oidc v3.21.0's error messages to reasons; the tests
// pin every mapping that real inputs reach.
var goOIDCMessages = []struct {
	prefix string
	reason Reason
}{
	{"oidc: id token issued by a different provider", ReasonIssuer},
	{"oidc: expected audience", ReasonAudience},
	{"failed to verify signature", ReasonSignature},
	{"oidc: malformed jwt", ReasonMalformed},
	{"oidc: id token not signed", ReasonMalformed},
	{"oidc: multiple signatures", ReasonMalformed},
	{"oidc: failed to unmarshal claims", ReasonMalformed},
	{"oidc: current time", ReasonNotYetValid},
}

func mapVerifyError(err error) error {
	var exp *oidc.TokenExpiredError
	if errors.As(err, &exp) {
		return &RejectError{Reason: ReasonExpired, Detail: "expired at " + exp.Expiry.UTC().Format(time.RFC3339), Cause: err}
	}
	msg := err.Error()
	for _, m := range goOIDCMessages {
		if strings.HasPrefix(msg, m.prefix) {
			return &RejectError{Reason: m.reason, Detail: truncate(msg, 300), Cause: err}
		}
	}
	return &RejectError{Reason: ReasonRejected, Detail: truncate(msg, 300), Cause: err}
}

func equal(a, b string) bool {
	return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// statusRecorder passes requests to next and remembers the status of the
// last response.
type statusRecorder struct {
	next http.RoundTripper
	mu   sync.Mutex
	last int
}

func (s *statusRecorder) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := s.next.RoundTrip(req)
	if err == nil {
		s.mu.Lock()
		s.last = resp.StatusCode
		s.mu.Unlock()
	}
	return resp, err
}

// unavailable: the last response was a server error, 429 or 408.
func (s *statusRecorder) unavailable() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.last >= 500 || s.last == http.StatusTooManyRequests || s.last == http.StatusRequestTimeout
}
