package oidcrp

import (
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

func TestFullLogin(t *testing.T) {
	o := newTestOP(t)
	for _, auth := range []TokenAuth{ClientSecretBasic, ClientSecretPost} {
		rp, _ := newRP(t, o, func(c *Config) { c.TokenAuth = auth })
		start, err := rp.Begin()
		if err != nil {
			t.Fatal(err)
		}
		c, err := rp.Finish(context.Background(), start.Pending, o.login(t, start.URL))
		if err != nil {
			t.Fatalf("%s: %v", auth, err)
		}
		if c.Subject != "id1" || c.Issuer != o.issuer || c.Email != "test-user@example.com" || !c.EmailVerified {
			t.Fatalf("claims %+v", c)
		}
	}
}

// finishWith runs a full login whose ID token is replaced by tamper (nil:
// untouched) and returns Finish's error.
func finishWith(t *testing.T, o *testOP, rp *RP, tamper func(string) string) error {
	t.Helper()
	if tamper != nil {
		o.setTamper(tamper)
		defer o.setTamper(func(s string) string { return s })
	}
	start, err := rp.Begin()
	if err != nil {
		t.Fatal(err)
	}
	_, err = rp.Finish(context.Background(), start.Pending, o.login(t, start.URL))
	return err
}

func wantReason(t *testing.T, err error, want Reason) {
	t.Helper()
	if err == nil {
		t.Fatalf("accepted; want refusal %q", want)
	}
	if !errors.Is(err, ErrInvalid) || ReasonOf(err) != want {
		t.Fatalf("got %v (reason %q), want %q", err, ReasonOf(err), want)
	}
}

// TestTamperedIDTokens: ID tokens returned by the provider's token endpoint,
// changed and re-signed with the provider's own published key (or forged).
func TestTamperedIDTokens(t *testing.T) {
	o := newTestOP(t)
	other := newTestOP(t) // another connection's provider
	rp, _ := newRP(t, o)
	now := time.Now()
	rsaPub := o.currentKey().priv.Public()
	der, err := x509.MarshalPKIXPublicKey(rsaPub)
	if err != nil {
		t.Fatal(err)
	}
	pemPub := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})

	// A genuine ID token from another connection's provider (same client
	// id there), captured from its real token endpoint.
	var theirs string
	otherRP, _ := newRP(t, other)
	if err := finishWith(t, other, otherRP, func(s string) string { theirs = s; return s }); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name   string
		tamper func(string) string
		want   Reason
	}{
		{"alg none", func(idt string) string {
			return rawJWT(map[string]any{"alg": "none", "kid": "k1"}, claimsOf(t, idt), nil)
		}, ReasonAlg},
		{"HS256 keyed with the provider's public key (PEM)", hsWith(t, pemPub), ReasonAlg},
		{"HS256 keyed with the provider's public key (DER)", hsWith(t, der), ReasonAlg},
		{"PS256 (not in the default AllowedAlgs)", func(idt string) string {
			k := o.currentKey()
			return sign(t, &testKey{id: k.id, alg: jose.PS256, priv: k.priv}, claimsOf(t, idt))
		}, ReasonAlg},
		{"wrong issuer", o.resign(t, nil, func(m map[string]any) { m["iss"] = "https://evil.example" }), ReasonIssuer},
		{"wrong audience", o.resign(t, nil, func(m map[string]any) { m["aud"] = "other-client"; delete(m, "azp") }), ReasonAudience},
		{"expired", o.resign(t, nil, func(m map[string]any) { m["exp"] = now.Add(-2 * time.Minute).Unix() }), ReasonExpired},
		{"no exp", o.resign(t, nil, func(m map[string]any) { delete(m, "exp") }), ReasonExpired},
		{"nbf in the future", o.resign(t, nil, func(m map[string]any) { m["nbf"] = now.Add(time.Hour).Unix() }), ReasonNotYetValid},
		{"iat in the future", o.resign(t, nil, func(m map[string]any) { m["iat"] = now.Add(5 * time.Minute).Unix() }), ReasonIATFuture},
		{"no iat", o.resign(t, nil, func(m map[string]any) { delete(m, "iat") }), ReasonNoIAT},
		{"no sub", o.resign(t, nil, func(m map[string]any) { delete(m, "sub") }), ReasonNoSub},
		{"empty sub", o.resign(t, nil, func(m map[string]any) { m["sub"] = "" }), ReasonNoSub},
		{"sub not a string", o.resign(t, nil, func(m map[string]any) { m["sub"] = 42 }), ReasonMalformed},
		{"azp of another client", o.resign(t, nil, func(m map[string]any) { m["azp"] = "other-client" }), ReasonAZP},
		{"several audiences, no azp", o.resign(t, nil, func(m map[string]any) {
			m["aud"] = []string{testClientID, "other-client"}
			delete(m, "azp")
		}), ReasonAZP},
		{"several audiences, azp another client", o.resign(t, nil, func(m map[string]any) {
			m["aud"] = []string{testClientID, "other-client"}
			m["azp"] = "other-client"
		}), ReasonAZP},
		{"nonce of another login", o.resign(t, nil, func(m map[string]any) { m["nonce"] = "other-nonce" }), ReasonNonce},
		{"no nonce", o.resign(t, nil, func(m map[string]any) { delete(m, "nonce") }), ReasonNonce},
		{"at_hash of another access token", o.resign(t, nil, func(m map[string]any) { m["at_hash"] = "AAAAAAAAAAAAAAAAAAAAAA" }), ReasonAtHash},
		{"signature tampered", func(idt string) string {
			m := claimsOf(t, idt)
			m["sub"] = "admin"
			parts := strings.Split(idt, ".")
			return parts[0] + "." + base64.RawURLEncoding.EncodeToString(mustJSON(m)) + "." + parts[2]
		}, ReasonSignature},
		{"unknown kid, not in the refreshed JWKS", o.resign(t, newRSAKey(t, "unknown"), func(map[string]any) {}), ReasonSignature},
		{"known kid, attacker's key", o.resign(t, newRSAKey(t, "k1"), func(map[string]any) {}), ReasonSignature},
		// Refused by the signature check, which go-oidc runs before it
		// looks at iss (both providers use kid "k1").
		{"token minted by another connection's provider", func(string) string { return theirs }, ReasonSignature},
		{"another provider's key, our issuer", func(idt string) string {
			return sign(t, other.currentKey(), claimsOf(t, idt))
		}, ReasonSignature},
		{"JWE-shaped", func(string) string { return "a.b.c.d.e" }, ReasonMalformed},
		{"garbage", func(string) string { return "not-a-jwt" }, ReasonMalformed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			wantReason(t, finishWith(t, o, rp, tc.tamper), tc.want)
		})
	}
	// The untampered flow still works afterwards.
	if err := finishWith(t, o, rp, nil); err != nil {
		t.Fatal(err)
	}
}

func TestNonceMismatch(t *testing.T) {
	// A genuine token for another login of the same browser-less attacker:
	// the code is injected into a victim's session, whose nonce differs.
	o := newTestOP(t)
	rp, _ := newRP(t, o)
	attacker, _ := rp.Begin()
	victim, _ := rp.Begin()
	cb := o.login(t, attacker.URL)
	p := Pending{State: attacker.State, Verifier: attacker.Verifier, Nonce: victim.Nonce}
	_, err := rp.Finish(context.Background(), p, cb)
	wantReason(t, err, ReasonNonce)
}

func TestStateMismatch(t *testing.T) {
	o := newTestOP(t)
	rp, _ := newRP(t, o)
	attacker, _ := rp.Begin()
	victim, _ := rp.Begin()
	cb := o.login(t, attacker.URL) // attacker's code, delivered to the victim
	_, err := rp.Finish(context.Background(), victim.Pending, cb)
	wantReason(t, err, ReasonState)
	cb.Del("state")
	_, err = rp.Finish(context.Background(), victim.Pending, cb)
	wantReason(t, err, ReasonState)
}

func TestCodeUsedTwice(t *testing.T) {
	o := newTestOP(t)
	rp, _ := newRP(t, o)
	start, _ := rp.Begin()
	cb := o.login(t, start.URL)
	if _, err := rp.Finish(context.Background(), start.Pending, cb); err != nil {
		t.Fatal(err)
	}
	_, err := rp.Finish(context.Background(), start.Pending, cb)
	wantReason(t, err, ReasonExchange)
}

func TestPKCE(t *testing.T) {
	o := newTestOP(t)
	rp, _ := newRP(t, o)

	t.Run("wrong verifier", func(t *testing.T) {
		start, _ := rp.Begin()
		other, _ := rp.Begin()
		p := start.Pending
		p.Verifier = other.Verifier
		_, err := rp.Finish(context.Background(), p, o.login(t, start.URL))
		wantReason(t, err, ReasonExchange)
	})
	t.Run("missing verifier refused before the exchange", func(t *testing.T) {
		start, _ := rp.Begin()
		p := start.Pending
		p.Verifier = ""
		_, err := rp.Finish(context.Background(), p, o.login(t, start.URL))
		wantReason(t, err, ReasonPending)
	})
	t.Run("missing verifier refused by the provider", func(t *testing.T) {
		start, _ := rp.Begin()
		cb := o.login(t, start.URL)
		_, err := rp.exchange(context.Background(), cb.Get("code"))
		wantReason(t, err, ReasonExchange)
	})
}

func TestCallbackChecks(t *testing.T) {
	o := newTestOP(t)
	rp, _ := newRP(t, o)
	start, _ := rp.Begin()
	cb := o.login(t, start.URL)
	ctx := context.Background()

	_, err := rp.Finish(ctx, start.Pending, url.Values{"error": {"access_denied"}, "state": {start.State}})
	wantReason(t, err, ReasonOPError)
	_, err = rp.Finish(ctx, Pending{}, cb)
	wantReason(t, err, ReasonPending)
	bad := url.Values{"state": {start.State}, "code": cb["code"], "iss": {"https://evil.example"}}
	_, err = rp.Finish(ctx, start.Pending, bad)
	wantReason(t, err, ReasonIssuer)
	_, err = rp.Finish(ctx, start.Pending, url.Values{"state": {start.State}})
	wantReason(t, err, ReasonNoCode)
	// RFC 9207 iss equal to ours is accepted.
	cb.Set("iss", o.issuer)
	if _, err := rp.Finish(ctx, start.Pending, cb); err != nil {
		t.Fatal(err)
	}
}

// TestForgedTokensBoundedJWKSFetches: go-oidc refetches the JWKS on every
// failed signature; 100 forged tokens with unknown kids cost the provider at
// most one JWKS request per refresh interval.
func TestForgedTokensBoundedJWKSFetches(t *testing.T) {
	o := newTestOP(t)
	rp, clock := newRP(t, o)
	if err := finishWith(t, o, rp, nil); err != nil { // warms the key cache
		t.Fatal(err)
	}
	base := o.jwksHits.Load()
	if base != 1 {
		t.Fatalf("JWKS fetched %d times for one login", base)
	}
	tok := func(i int) string {
		return sign(t, newECKey(t, "forged-"+string(rune('a'+i%26))), map[string]any{
			"iss": o.issuer, "sub": "id1", "aud": testClientID, "iat": time.Now().Unix(),
			"exp": time.Now().Add(time.Hour).Unix(), "nonce": "n",
		})
	}
	forged := make([]string, 100)
	for i := range forged {
		forged[i] = tok(i)
	}
	for _, f := range forged {
		_, err := rp.Verify(context.Background(), f, "n")
		wantReason(t, err, ReasonSignature)
	}
	if got := o.jwksHits.Load() - base; got != 0 {
		t.Fatalf("100 forged tokens caused %d JWKS fetches within the interval", got)
	}
	// After the interval, one more forged token may cause one more fetch.
	clock.advance(DefaultJWKSRefreshInterval + time.Second)
	for _, f := range forged {
		_, _ = rp.Verify(context.Background(), f, "n")
	}
	if got := o.jwksHits.Load() - base; got != 1 {
		t.Fatalf("JWKS fetched %d times", got)
	}
	t.Logf("JWKS fetches for 200 forged tokens: %d", o.jwksHits.Load()-base)
}

// TestKeyRotation: the provider rotates its signing key (publishing the new
// one and dropping the old) while logins continue.
func TestKeyRotation(t *testing.T) {
	o := newTestOP(t)
	rp, clock := newRP(t, o)
	if err := finishWith(t, o, rp, nil); err != nil {
		t.Fatal(err)
	}
	clock.advance(DefaultJWKSRefreshInterval + time.Second)
	o.rotate(newECKey(t, "k2"), true)
	if err := finishAfterRefresh(t, o, rp); err != nil {
		t.Fatalf("login after rotation: %v", err)
	}
	for i := range 2 {
		if err := finishWith(t, o, rp, nil); err != nil {
			t.Fatalf("login %d after rotation: %v", i+2, err)
		}
	}
	if got := o.jwksHits.Load(); got != 2 {
		t.Fatalf("JWKS fetched %d times, want 2", got)
	}
	// Rotation again without waiting: refused until the interval passes, then fine.
	o.rotate(newRSAKey(t, "k3"), false)
	wantReason(t, finishWith(t, o, rp, nil), ReasonSignature)
	clock.advance(DefaultJWKSRefreshInterval + time.Second)
	if err := finishAfterRefresh(t, o, rp); err != nil {
		t.Fatal(err)
	}
}

// finishAfterRefresh is finishWith for the first login that needs a JWKS
// fetch right after another one ended. go-oidc's RemoteKeySet wakes the
// waiters of a fetch before it clears its in-flight marker
// (keysFromRemote), so a token verified in between is answered from the
// fetch that just ended — the old keys — rather than starting its own;
// CI saw it once. A second login starts its own fetch, which is what the
// callers assert happens (and their fetch counts stay exact: the refused
// try fetched nothing).
func finishAfterRefresh(t *testing.T, o *testOP, rp *RP) error {
	t.Helper()
	err := finishWith(t, o, rp, nil)
	for try := 0; try < 3 && err != nil && ReasonOf(err) == ReasonSignature; try++ {
		err = finishWith(t, o, rp, nil)
	}
	return err
}

func TestNewRefuses(t *testing.T) {
	o := newTestOP(t)
	for name, mod := range map[string]func(*Config){
		"no client":          func(c *Config) { c.HTTPClient = nil },
		"default client":     func(c *Config) { c.HTTPClient = http.DefaultClient },
		"http issuer":        func(c *Config) { c.AllowInsecure = false },
		"HS256 allowed":      func(c *Config) { c.AllowedAlgs = []string{"HS256"} },
		"none allowed":       func(c *Config) { c.AllowedAlgs = []string{"RS256", "none"} },
		"no client id":       func(c *Config) { c.ClientID = "" },
		"wrong issuer":       func(c *Config) { c.Issuer = o.issuer + "/x" },
		"unknown token auth": func(c *Config) { c.TokenAuth = "tls_client_auth" },
		"jwt without key":    func(c *Config) { c.TokenAuth = PrivateKeyJWT },
	} {
		cfg := Config{Issuer: o.issuer, ClientID: testClientID, RedirectURL: testRedirect,
			HTTPClient: &http.Client{}, AllowInsecure: true}
		mod(&cfg)
		if _, err := New(context.Background(), cfg); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestRedirectToHTTPRefused(t *testing.T) {
	// An https issuer whose discovery redirects to http: the client refuses.
	p := redirectPolicy(false)
	req, _ := http.NewRequest("GET", "http://evil.example/keys", nil)
	if p(req, nil) == nil {
		t.Fatal("redirect to http accepted")
	}
	req, _ = http.NewRequest("GET", "https://idp.example/keys", nil)
	if p(req, nil) != nil {
		t.Fatal("redirect to https refused")
	}
	req, _ = http.NewRequest("GET", "http://idp.example/keys", nil)
	if _, err := (httpsOnly{next: http.DefaultTransport}).RoundTrip(req); err == nil {
		t.Fatal("http request allowed")
	}
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

// hsWith makes a tamper function signing the real claims with HS256 keyed
// by secret (the provider's public key), kid of the provider's key.
func hsWith(t *testing.T, secret []byte) func(string) string {
	return func(idt string) string {
		s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.HS256, Key: jose.JSONWebKey{Key: secret, KeyID: "k1"}}, nil)
		if err != nil {
			t.Fatal(err)
		}
		jws, err := s.Sign(mustJSON(claimsOf(t, idt)))
		if err != nil {
			t.Fatal(err)
		}
		out, err := jws.CompactSerialize()
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
}
