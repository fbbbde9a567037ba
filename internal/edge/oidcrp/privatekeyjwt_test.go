package oidcrp

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// recordForms records the form of every token endpoint request the RP
// sends (through its HTTP client).
type recordForms struct {
	mu    sync.Mutex
	forms []url.Values
	auth  []string
}

func (r *recordForms) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Method == http.MethodPost && req.Body != nil {
		b, err := io.ReadAll(req.Body)
		if err != nil {
			return nil, err
		}
		req.Body.Close()
		form, _ := url.ParseQuery(string(b))
		r.mu.Lock()
		r.forms = append(r.forms, form)
		r.auth = append(r.auth, req.Header.Get("Authorization"))
		r.mu.Unlock()
		req.Body = io.NopCloser(strings.NewReader(string(b)))
	}
	return http.DefaultTransport.RoundTrip(req)
}

func jwtRP(t *testing.T, o *testOP, key crypto.Signer, kid string, rec *recordForms) *RP {
	t.Helper()
	rp, _ := newRP(t, o, func(c *Config) {
		c.ClientID = testJWTClientID
		c.ClientSecret = ""
		c.TokenAuth = PrivateKeyJWT
		c.PrivateKey = key
		c.PrivateKeyID = kid
		if rec != nil {
			c.HTTPClient = &http.Client{Transport: rec}
		}
	})
	return rp
}

func TestPrivateKeyJWTLogin(t *testing.T) {
	o := newTestOP(t)
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	o.registerClientKey("rsa-1", rsaKey)
	o.registerClientKey("ec-1", ecKey)
	for _, tc := range []struct {
		kid string
		key crypto.Signer
		alg jose.SignatureAlgorithm
	}{{"rsa-1", rsaKey, jose.RS256}, {"ec-1", ecKey, jose.ES256}} {
		rec := &recordForms{}
		rp := jwtRP(t, o, tc.key, tc.kid, rec)
		start, err := rp.Begin()
		if err != nil {
			t.Fatal(err)
		}
		c, err := rp.Finish(context.Background(), start.Pending, o.login(t, start.URL))
		if err != nil {
			t.Fatalf("%s: %v", tc.alg, err)
		}
		if c.Subject != "id1" || c.Email != "test-user@example.com" {
			t.Fatalf("%s: claims %+v", tc.alg, c)
		}

		// What was sent: the assertion, no secret, no basic auth.
		tokenURL := rp.oauth.Endpoint.TokenURL
		var form url.Values
		rec.mu.Lock()
		for i, f := range rec.forms {
			if f.Get("grant_type") == "authorization_code" {
				form = f
				if rec.auth[i] != "" {
					t.Errorf("%s: Authorization header sent", tc.alg)
				}
			}
		}
		rec.mu.Unlock()
		if form == nil {
			t.Fatalf("%s: no token request recorded", tc.alg)
		}
		if form.Has("client_secret") || form.Get("client_id") != testJWTClientID ||
			form.Get("client_assertion_type") != ClientAssertionType {
			t.Fatalf("%s: token request form %v", tc.alg, form)
		}
		jws, err := jose.ParseSigned(form.Get("client_assertion"), []jose.SignatureAlgorithm{tc.alg})
		if err != nil {
			t.Fatalf("%s: assertion: %v", tc.alg, err)
		}
		if kid := jws.Signatures[0].Header.KeyID; kid != tc.kid {
			t.Errorf("%s: kid %q", tc.alg, kid)
		}
		payload, err := jws.Verify(tc.key.Public())
		if err != nil {
			t.Fatalf("%s: assertion signature: %v", tc.alg, err)
		}
		var cl struct {
			Iss, Sub, Jti string
			Aud           []string
			Iat, Exp      int64
		}
		if err := json.Unmarshal(payload, &cl); err != nil {
			t.Fatal(err)
		}
		now := time.Now().Unix()
		if cl.Iss != testJWTClientID || cl.Sub != testJWTClientID || cl.Jti == "" ||
			len(cl.Aud) == 0 || cl.Aud[0] != tokenURL ||
			cl.Iat < now-30 || cl.Iat > now+1 || cl.Exp != cl.Iat+60 {
			t.Fatalf("%s: assertion claims %+v (token endpoint %s)", tc.alg, cl, tokenURL)
		}
	}
}

func TestPrivateKeyJWTUnregisteredKeyRefused(t *testing.T) {
	o := newTestOP(t)
	registered, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	o.registerClientKey("k1", registered)
	other, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	for name, rp := range map[string]*RP{
		"same kid, other key": jwtRP(t, o, other, "k1", nil),
		"unknown kid":         jwtRP(t, o, other, "k2", nil),
	} {
		start, err := rp.Begin()
		if err != nil {
			t.Fatal(err)
		}
		_, err = rp.Finish(context.Background(), start.Pending, o.login(t, start.URL))
		if err == nil {
			t.Fatalf("%s: accepted", name)
		}
		t.Logf("%s: %v", name, err)
		if ReasonOf(err) != ReasonExchange || !strings.Contains(err.Error(), "invalid signature") {
			t.Fatalf("%s: got %v (reason %q), want %q", name, err, ReasonOf(err), ReasonExchange)
		}
	}
}

func TestPrivateKeyJWTNewRefuses(t *testing.T) {
	o := newTestOP(t)
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	good, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	for name, mod := range map[string]func(*Config){
		"no key":          func(c *Config) { c.TokenAuth = PrivateKeyJWT },
		"small RSA key":   func(c *Config) { c.TokenAuth, c.PrivateKey = PrivateKeyJWT, small },
		"P-384 key":       func(c *Config) { c.TokenAuth, c.PrivateKey = PrivateKeyJWT, p384 },
		"with secret":     func(c *Config) { c.TokenAuth, c.PrivateKey, c.ClientSecret = PrivateKeyJWT, good, "s" },
		"key without jwt": func(c *Config) { c.PrivateKey = good },
		"key with post":   func(c *Config) { c.TokenAuth, c.PrivateKey = ClientSecretPost, good },
	} {
		cfg := Config{Issuer: o.issuer, ClientID: testJWTClientID, RedirectURL: testRedirect,
			HTTPClient: &http.Client{}, AllowInsecure: true}
		mod(&cfg)
		if _, err := New(context.Background(), cfg); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
