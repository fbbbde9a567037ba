package oidcrp

import (
	"context"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
)

// Issue 4, Measure: ID-token verifications per second per core, this
// package's RP.Verify beside go-oidc's bare IDTokenVerifier.Verify, same
// token, same run:
//
//	go test -run '^$' -bench Verify -cpu 1 -benchtime=2s ./internal/edge/oidcrp/
//
// Both verify one real RS256 ID token obtained from a full login against the
// zitadel test provider (untimed). The example storage's clients issue ID
// tokens valid for one hour (storage.Client.IDTokenLifetime), far longer
// than any benchmark run; benchToken still refuses a token with under ten
// minutes left. The JWKS is fetched by an untimed warm-up verification, so
// the loops measure the cached-key path only (no HTTP).

// benchToken runs a full login against o with rp and returns the raw ID
// token of the token endpoint's answer and the login's nonce.
func benchToken(b *testing.B, o *testOP, rp *RP) (token, nonce string) {
	b.Helper()
	var (
		mu  sync.Mutex
		raw string
	)
	o.setTamper(func(idt string) string { // capture, unchanged
		mu.Lock()
		raw = idt
		mu.Unlock()
		return idt
	})
	defer o.setTamper(func(s string) string { return s })
	start, err := rp.Begin()
	if err != nil {
		b.Fatal(err)
	}
	if _, err := rp.Finish(context.Background(), start.Pending, o.login(b, start.URL)); err != nil {
		b.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if raw == "" {
		b.Fatal("no id_token captured from the token endpoint")
	}
	m := claimsOf(b, raw)
	exp, _ := m["exp"].(float64)
	if left := time.Until(time.Unix(int64(exp), 0)); left < 10*time.Minute {
		b.Fatalf("ID token expires in %s; too short for a benchmark", left)
	}
	return raw, start.Nonce
}

func BenchmarkVerify(b *testing.B) {
	o := newTestOP(b)
	rp, _ := newRP(b, o)
	token, nonce := benchToken(b, o, rp)
	ctx := context.Background()
	if _, err := rp.Verify(ctx, token, nonce); err != nil { // warm the JWKS cache
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := rp.Verify(ctx, token, nonce); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkGoOIDCVerify(b *testing.B) {
	o := newTestOP(b)
	rp, _ := newRP(b, o)
	token, _ := benchToken(b, o, rp)
	// The test provider's issuer is exactly its discovery URL (a static
	// issuer), so no InsecureIssuerURLContext is needed; plain http is fine
	// for go-oidc's client.
	ctx := oidc.ClientContext(context.Background(), &http.Client{Timeout: 10 * time.Second})
	provider, err := oidc.NewProvider(ctx, o.issuer)
	if err != nil {
		b.Fatal(err)
	}
	verifier := provider.Verifier(&oidc.Config{ClientID: testClientID})
	if _, err := verifier.Verify(ctx, token); err != nil { // warm the JWKS cache
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := verifier.Verify(ctx, token); err != nil {
			b.Fatal(err)
		}
	}
}
