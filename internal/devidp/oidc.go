package devidp

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// ScopeGroups may be requested; the groups claim is sent whether or not
// it is (as by an IdP configured to always send group claims).
const ScopeGroups = "groups"

// Lifetimes of what the OpenID provider issues.
const (
	idTokenLifetime     = 10 * time.Minute
	accessTokenLifetime = 15 * time.Minute
	// codeLifetime bounds the time between the redirect with the code and
	// its exchange.
	codeLifetime = 2 * time.Minute
)

// Client is the OIDC client (a confidential web client, authenticating
// with client_secret_basic or client_secret_post) the provider serves.
type Client struct {
	ID     string
	Secret string
	// RedirectURIs are matched exactly, e.g. the edge's
	// <public URL>/oidc/<org>/<connection>/callback.
	RedirectURIs []string
	// Organization, when set, offers only the people of that demo
	// organisation (Person.Organization) on this client's login page.
	Organization string
}

// oidcOP is the OpenID provider: zitadel/oidc's op over an in-memory
// storage, with the login page as its login UI.
type oidcOP struct {
	provider *op.Provider
	storage  *opStorage
	people   []Person
	loginURL string
	log      *slog.Logger
}

func newOIDCOP(cfg *Config, k *keys, people []Person, log *slog.Logger) (*oidcOP, error) {
	clients := map[string]Client{}
	for i, c := range cfg.OIDCClients {
		switch {
		case c.ID == "":
			return nil, fmt.Errorf("OIDC client %d: empty ID", i)
		case c.Secret == "":
			return nil, fmt.Errorf("OIDC client %q: empty Secret", c.ID)
		case len(c.RedirectURIs) == 0:
			return nil, fmt.Errorf("OIDC client %q: no RedirectURIs", c.ID)
		}
		if _, dup := clients[c.ID]; dup {
			return nil, fmt.Errorf("OIDC client %q: listed twice", c.ID)
		}
		for _, u := range c.RedirectURIs {
			if p, err := url.Parse(u); err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" || p.Fragment != "" {
				return nil, fmt.Errorf("OIDC client %q: redirect URI %q is not an absolute http(s) URL", c.ID, u)
			}
		}
		c.RedirectURIs = slices.Clone(c.RedirectURIs)
		clients[c.ID] = c
	}
	o := &oidcOP{people: people, loginURL: cfg.BaseURL + "/oidc/login", log: log}
	o.storage = &opStorage{
		clients: clients, people: people, loginURL: o.loginURL,
		key: k.oidc, kid: k.oidcKID,
		requests: newExpiring[authRequest](loginTTL, maxLogins, time.Now),
		codes:    newExpiring[string](codeLifetime, maxLogins, time.Now),
		tokens:   newExpiring[accessToken](accessTokenLifetime, 10*maxLogins, time.Now),
	}
	var cryptoKey [32]byte // encrypts the opaque access tokens; new at each start
	if _, err := rand.Read(cryptoKey[:]); err != nil {
		return nil, fmt.Errorf("OIDC token key: %w", err)
	}
	opts := []op.Option{op.WithLogger(log)}
	if u, _ := url.Parse(cfg.BaseURL); u.Scheme == "http" {
		opts = append(opts, op.WithAllowInsecure()) // an http issuer, e.g. on 127.0.0.1
	}
	provider, err := op.NewProvider(&op.Config{
		CryptoKey:       cryptoKey,
		CodeMethodS256:  true,
		AuthMethodPost:  true,
		SupportedScopes: []string{oidc.ScopeOpenID, oidc.ScopeProfile, oidc.ScopeEmail, ScopeGroups},
		SupportedClaims: append(slices.Clone(op.DefaultSupportedClaims), "groups"),
	}, o.storage, op.StaticIssuer(cfg.BaseURL+"/oidc"), opts...)
	if err != nil {
		return nil, fmt.Errorf("OpenID provider: %w", err)
	}
	o.provider = provider
	return o, nil
}

// loginPage shows the people to sign in as for the authorization request
// ?id= (the op sends the browser here).
func (o *oidcOP) loginPage(w http.ResponseWriter, r *http.Request) {
	id := r.URL.Query().Get("id")
	ar, ok := o.storage.requests.get(id)
	if !ok || ar.done {
		writeMessage(w, r, o.log, http.StatusBadRequest, "Sign-in expired",
			"This sign-in has expired or was already used. Start again from the application.")
		return
	}
	c := o.storage.clients[ar.ClientID]
	writePage(w, r, o.log, http.StatusOK, "login", loginPage{
		Title: "Sign in", For: "The OIDC client " + c.ID,
		Action: o.loginURL, IDField: "id", ID: id, People: offered(o.people, c.Organization),
	}, "")
}

// finish marks the authorization request done for the picked person and
// sends the browser back to the op, which redirects to the client with a
// code.
func (o *oidcOP) finish(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		writeMessage(w, r, o.log, http.StatusBadRequest, "Sign-in failed", "The form could not be read.")
		return
	}
	id := r.PostForm.Get("id")
	ar, ok := o.storage.requests.get(id)
	if !ok || ar.done {
		writeMessage(w, r, o.log, http.StatusBadRequest, "Sign-in expired",
			"This sign-in has expired or was already used. Start again from the application.")
		return
	}
	p, ok := find(offered(o.people, o.storage.clients[ar.ClientID].Organization), r.PostForm.Get("person"))
	if !ok {
		writeMessage(w, r, o.log, http.StatusBadRequest, "Unknown person",
			"That person is not offered to this application. Start again from the application.")
		return
	}
	now, first := time.Now(), false
	o.storage.requests.update(id, func(a authRequest) authRequest {
		if !a.done { // two clicks: the first wins
			a.subject, a.authTime, a.done, first = p.ID, now, true, true
		}
		return a
	})
	if !first {
		writeMessage(w, r, o.log, http.StatusBadRequest, "Sign-in expired",
			"This sign-in has expired or was already used. Start again from the application.")
		return
	}
	o.log.InfoContext(r.Context(), "dev IdP: OIDC sign-in", "person", p.ID, "email", p.Email, "client", ar.ClientID)
	http.Redirect(w, r, op.AuthCallbackURL(o.provider)(r.Context(), id), http.StatusSeeOther)
}

// authRequest is an authorization request; stored by value, so that
// every reader has its own copy.
type authRequest struct {
	oidc.AuthRequest
	id       string
	subject  string
	authTime time.Time
	done     bool
	code     string
}

var _ op.AuthRequest = authRequest{}

func (a authRequest) GetID() string          { return a.id }
func (a authRequest) GetACR() string         { return "" }
func (a authRequest) GetAMR() []string       { return nil }
func (a authRequest) GetAudience() []string  { return []string{a.ClientID} }
func (a authRequest) GetAuthTime() time.Time { return a.authTime }
func (a authRequest) GetClientID() string    { return a.ClientID }
func (a authRequest) GetCodeChallenge() *oidc.CodeChallenge {
	return &oidc.CodeChallenge{Challenge: a.CodeChallenge, Method: a.CodeChallengeMethod}
}
func (a authRequest) GetNonce() string                   { return a.Nonce }
func (a authRequest) GetRedirectURI() string             { return a.RedirectURI }
func (a authRequest) GetResponseType() oidc.ResponseType { return a.ResponseType }
func (a authRequest) GetResponseMode() oidc.ResponseMode { return a.ResponseMode }
func (a authRequest) GetScopes() []string                { return a.Scopes }
func (a authRequest) GetState() string                   { return a.State }
func (a authRequest) GetSubject() string                 { return a.subject }
func (a authRequest) Done() bool                         { return a.done }

// accessToken is an issued access token (opaque to the client).
type accessToken struct {
	subject  string
	clientID string
	scopes   []string
	expires  time.Time
}

// opClient is a configured Client as zitadel's op.Client.
type opClient struct {
	c        Client
	loginURL string
}

var _ op.Client = opClient{}

func (c opClient) GetID() string                       { return c.c.ID }
func (c opClient) RedirectURIs() []string              { return c.c.RedirectURIs }
func (c opClient) PostLogoutRedirectURIs() []string    { return nil }
func (c opClient) ApplicationType() op.ApplicationType { return op.ApplicationTypeWeb }
func (c opClient) AuthMethod() oidc.AuthMethod         { return oidc.AuthMethodBasic }
func (c opClient) ResponseTypes() []oidc.ResponseType {
	return []oidc.ResponseType{oidc.ResponseTypeCode}
}
func (c opClient) GrantTypes() []oidc.GrantType         { return []oidc.GrantType{oidc.GrantTypeCode} }
func (c opClient) LoginURL(id string) string            { return c.loginURL + "?id=" + url.QueryEscape(id) }
func (c opClient) AccessTokenType() op.AccessTokenType  { return op.AccessTokenTypeBearer }
func (c opClient) IDTokenLifetime() time.Duration       { return idTokenLifetime }
func (c opClient) DevMode() bool                        { return false }
func (c opClient) IsScopeAllowed(scope string) bool     { return scope == ScopeGroups }
func (c opClient) IDTokenUserinfoClaimsAssertion() bool { return true }
func (c opClient) ClockSkew() time.Duration             { return 0 }
func (c opClient) RestrictAdditionalIdTokenScopes() func([]string) []string {
	return func(s []string) []string { return s }
}
func (c opClient) RestrictAdditionalAccessTokenScopes() func([]string) []string {
	return func(s []string) []string { return s }
}

// signingKey and publicKey are the provider's RSA key for zitadel.
type signingKey struct {
	kid string
	key *rsa.PrivateKey
}

func (k signingKey) SignatureAlgorithm() jose.SignatureAlgorithm { return jose.RS256 }
func (k signingKey) Key() any                                    { return k.key }
func (k signingKey) ID() string                                  { return k.kid }

type publicKey struct{ signingKey }

func (k publicKey) Algorithm() jose.SignatureAlgorithm { return jose.RS256 }
func (k publicKey) Use() string                        { return "sig" }
func (k publicKey) Key() any                           { return k.key.Public() }

// opStorage is the provider's storage: the configured clients and people,
// and in memory the authorization requests, codes and access tokens. It
// offers the authorization code grant only (no refresh tokens, client
// credentials, JWT profile or token exchange).
type opStorage struct {
	clients  map[string]Client // read-only after New
	people   []Person
	loginURL string
	key      *rsa.PrivateKey
	kid      string

	requests *expiring[authRequest]
	codes    *expiring[string] // code → request id
	tokens   *expiring[accessToken]
}

var (
	_ op.Storage                   = (*opStorage)(nil)
	_ op.CanSetUserinfoFromRequest = (*opStorage)(nil)
)

var (
	errNotFound     = errors.New("not found or expired")
	errNotSupported = errors.New("not supported by the development IdP")
)

// CreateAuthRequest stores a validated authorization request. PKCE with
// S256 is required.
func (s *opStorage) CreateAuthRequest(_ context.Context, req *oidc.AuthRequest, _ string) (op.AuthRequest, error) {
	if req.CodeChallenge == "" || req.CodeChallengeMethod != oidc.CodeChallengeMethodS256 {
		return nil, oidc.ErrInvalidRequest().WithDescription("PKCE is required: send code_challenge with code_challenge_method=S256")
	}
	id, err := randomID()
	if err != nil {
		return nil, err
	}
	ar := authRequest{AuthRequest: *req, id: id}
	ar.Scopes = slices.Clone(req.Scopes)
	if err := s.requests.put(id, ar); err != nil {
		return nil, err
	}
	return ar, nil
}

func (s *opStorage) AuthRequestByID(_ context.Context, id string) (op.AuthRequest, error) {
	ar, ok := s.requests.get(id)
	if !ok {
		return nil, fmt.Errorf("authorization request: %w", errNotFound)
	}
	return ar, nil
}

func (s *opStorage) AuthRequestByCode(_ context.Context, code string) (op.AuthRequest, error) {
	id, ok := s.codes.get(code)
	if !ok {
		return nil, fmt.Errorf("code: %w", errNotFound)
	}
	ar, ok := s.requests.get(id)
	if !ok || !ar.done || ar.code != code {
		return nil, fmt.Errorf("code: %w", errNotFound)
	}
	return ar, nil
}

func (s *opStorage) SaveAuthCode(_ context.Context, id, code string) error {
	if !s.requests.update(id, func(a authRequest) authRequest { a.code = code; return a }) {
		return fmt.Errorf("authorization request: %w", errNotFound)
	}
	return s.codes.put(code, id)
}

// DeleteAuthRequest ends the request when its code is exchanged: the code
// is good once.
func (s *opStorage) DeleteAuthRequest(_ context.Context, id string) error {
	if ar, ok := s.requests.take(id); ok && ar.code != "" {
		s.codes.delete(ar.code)
	}
	return nil
}

func (s *opStorage) CreateAccessToken(_ context.Context, req op.TokenRequest) (string, time.Time, error) {
	id, err := randomID()
	if err != nil {
		return "", time.Time{}, err
	}
	t := accessToken{subject: req.GetSubject(), scopes: slices.Clone(req.GetScopes()), expires: time.Now().Add(accessTokenLifetime)}
	if c, ok := req.(interface{ GetClientID() string }); ok {
		t.clientID = c.GetClientID()
	}
	if err := s.tokens.put(id, t); err != nil {
		return "", time.Time{}, err
	}
	return id, t.expires, nil
}

func (s *opStorage) CreateAccessAndRefreshTokens(context.Context, op.TokenRequest, string) (string, string, time.Time, error) {
	return "", "", time.Time{}, fmt.Errorf("refresh tokens: %w", errNotSupported)
}

func (s *opStorage) TokenRequestByRefreshToken(context.Context, string) (op.RefreshTokenRequest, error) {
	return nil, op.ErrInvalidRefreshToken
}

func (s *opStorage) TerminateSession(context.Context, string, string) error { return nil }

func (s *opStorage) RevokeToken(_ context.Context, tokenOrID, _, clientID string) *oidc.Error {
	if t, ok := s.tokens.get(tokenOrID); ok && t.clientID == clientID {
		s.tokens.delete(tokenOrID)
	}
	return nil
}

func (s *opStorage) GetRefreshTokenInfo(context.Context, string, string) (string, string, error) {
	return "", "", op.ErrInvalidRefreshToken
}

func (s *opStorage) SigningKey(context.Context) (op.SigningKey, error) {
	return signingKey{kid: s.kid, key: s.key}, nil
}

func (s *opStorage) SignatureAlgorithms(context.Context) ([]jose.SignatureAlgorithm, error) {
	return []jose.SignatureAlgorithm{jose.RS256}, nil
}

func (s *opStorage) KeySet(context.Context) ([]op.Key, error) {
	return []op.Key{publicKey{signingKey{kid: s.kid, key: s.key}}}, nil
}

func (s *opStorage) GetClientByClientID(_ context.Context, id string) (op.Client, error) {
	c, ok := s.clients[id]
	if !ok {
		return nil, fmt.Errorf("client %q: %w", id, errNotFound)
	}
	return opClient{c: c, loginURL: s.loginURL}, nil
}

func (s *opStorage) AuthorizeClientIDSecret(_ context.Context, id, secret string) error {
	c, ok := s.clients[id]
	if !ok || subtle.ConstantTimeCompare([]byte(c.Secret), []byte(secret)) != 1 {
		return errors.New("wrong client id or secret")
	}
	return nil
}

// SetUserinfoFromScopes is deprecated in zitadel/oidc: the ID token's
// claims come from SetUserinfoFromRequest.
func (s *opStorage) SetUserinfoFromScopes(context.Context, *oidc.UserInfo, string, string, []string) error {
	return nil
}

func (s *opStorage) SetUserinfoFromRequest(_ context.Context, ui *oidc.UserInfo, req op.IDTokenRequest, scopes []string) error {
	return s.userinfo(ui, req.GetSubject(), scopes)
}

func (s *opStorage) SetUserinfoFromToken(_ context.Context, ui *oidc.UserInfo, tokenID, subject, _ string) error {
	t, ok := s.tokens.get(tokenID)
	if !ok || t.subject != subject {
		return fmt.Errorf("access token: %w", errNotFound)
	}
	return s.userinfo(ui, t.subject, t.scopes)
}

func (s *opStorage) SetIntrospectionFromToken(_ context.Context, ir *oidc.IntrospectionResponse, tokenID, subject, clientID string) error {
	t, ok := s.tokens.get(tokenID)
	if !ok || t.subject != subject || t.clientID != clientID {
		return fmt.Errorf("access token: %w", errNotFound)
	}
	ui := new(oidc.UserInfo)
	if err := s.userinfo(ui, t.subject, t.scopes); err != nil {
		return err
	}
	ir.SetUserInfo(ui)
	ir.Scope, ir.ClientID, ir.Expiration = t.scopes, t.clientID, oidc.FromTime(t.expires)
	return nil
}

// userinfo fills ui with the claims of person sub for scopes: email and
// email_verified (always true) for "email"; name, given_name, family_name
// and preferred_username for "profile"; groups always.
func (s *opStorage) userinfo(ui *oidc.UserInfo, sub string, scopes []string) error {
	p, ok := find(s.people, sub)
	if !ok {
		return fmt.Errorf("person %q: %w", sub, errNotFound)
	}
	ui.Subject = p.ID
	if slices.Contains(scopes, oidc.ScopeEmail) {
		ui.Email, ui.EmailVerified = p.Email, true
	}
	if slices.Contains(scopes, oidc.ScopeProfile) {
		ui.Name, ui.GivenName, ui.FamilyName, ui.PreferredUsername = p.Name, p.GivenName, p.FamilyName, p.Email
	}
	ui.AppendClaims("groups", append([]string{}, p.Groups...)) // [] rather than null
	return nil
}

func (s *opStorage) GetPrivateClaimsFromScopes(context.Context, string, string, []string) (map[string]any, error) {
	return nil, nil
}

func (s *opStorage) GetKeyByIDAndClientID(context.Context, string, string) (*jose.JSONWebKey, error) {
	return nil, fmt.Errorf("client keys (private_key_jwt): %w", errNotSupported)
}

func (s *opStorage) ValidateJWTProfileScopes(context.Context, string, []string) ([]string, error) {
	return nil, fmt.Errorf("JWT profile grant: %w", errNotSupported)
}

func (s *opStorage) Health(context.Context) error { return nil }
