package edge_test

// OIDC sign-ins through sso-edge, measured like the SAML ones in
// bench_test.go (same world, same 32 concurrent browsers, same metrics:
// logins/s, p50_ms, p99_ms), against a real OpenID provider in the process:
// zitadel/oidc's pkg/op over its example in-memory storage, here with one
// user per person of the benchmark (the storage takes any
// storage.UserStore, so b.N distinct people are possible). Run with a
// fixed count:
//
//	go test -run '^$' -bench 'OIDC' -benchtime=100x ./internal/edge/
//
// Untimed, for each login: a fresh browser starts it at the edge, follows
// the redirect to the provider, signs in at its login UI and stops at the
// provider's redirect back to the edge (the callback URL with code and
// state). Timed: only the browsers' GETs of those callback URLs, which is
// the edge's work: pending-login check, code exchange at the provider's
// token endpoint (PKCE, client_secret_basic), ID-token verification, then
// the provisioner's round trip (first login) or the known identities (fast
// path), and the session cookie. Any answer but a 303 to benchReturnTo
// fails the benchmark. The provider's token endpoint shares the machine
// with everything else, so its share of the latency is included.
//
// The provider, the connection and the login walk are oidc_test.go's
// (zitOP, addOIDCConnection, oidcStartLoginAs), given the benchmark's
// people and its own connection, acme/benchOIDCConnection.

import (
	"fmt"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/zitadel/oidc/v3/example/server/storage"

	"github.com/jitprov/jitprov/internal/testenv"
)

// benchOIDCConnection is the acme connection the benchmarks sign in
// through.
const benchOIDCConnection = "zitbench"

// BenchmarkOIDCFirstLogin: each iteration is the first login of a new
// person (a distinct provider user, so a distinct sub) through OIDC: code
// exchange, ID-token verification, a login.first-seen event through
// JetStream, the provisioner's transaction in Postgres, its answer, the
// session.
func BenchmarkOIDCFirstLogin(b *testing.B) {
	w := newBenchWorld(b)
	users := benchOIDCPeople("first", b.N)
	o := addOIDCConnection(b, w.world, zitOPConfig{conn: benchOIDCConnection, users: users})

	b.ResetTimer()
	lat, elapsed := w.timedOIDCLogins(b, o, users)
	b.StopTimer()
	reportLogins(b, lat, elapsed)

	if n := countUsers(b, w.store); n != b.N {
		b.Fatalf("%d users in Postgres after %d first OIDC logins, want %d", n, b.N, b.N)
	}
}

// BenchmarkOIDCReturningLogin: people who already have accounts sign in
// again through OIDC with unchanged claims: the known identities answer,
// and the provisioner is not asked (it is stopped during the timed
// section).
func BenchmarkOIDCReturningLogin(b *testing.B) {
	w := newBenchWorld(b)
	users := benchOIDCPeople("back", b.N)
	o := addOIDCConnection(b, w.world, zitOPConfig{conn: benchOIDCConnection, users: users})

	// Untimed: everyone's first login, then wait until the provisioner has
	// recorded them all as known.
	for batch := range slices.Chunk(users, benchBatch) {
		if _, _, err := getAll(w.prepareOIDC(b, o, batch), benchWorkers); err != nil {
			b.Fatalf("first OIDC logins before the benchmark: %v", err)
		}
	}
	w.waitKnown(b, len(users))
	w.stopProvisioner()
	firstSeen := w.pendingFirstSeen(b)

	b.ResetTimer()
	lat, elapsed := w.timedOIDCLogins(b, o, users)
	b.StopTimer()
	reportLogins(b, lat, elapsed)

	// The fast path was taken (see BenchmarkReturningLogin).
	if after := w.pendingFirstSeen(b); after != firstSeen {
		b.Fatalf("login.first-seen events waiting went from %d to %d during returning OIDC logins: the fast path was not taken", firstSeen, after)
	}
	if n := countUsers(b, w.store); n != b.N {
		b.Fatalf("%d users in Postgres, want %d", n, b.N)
	}
	br := w.newBrowser()
	if res := br.Get(oidcStartLoginAs(b, br, w.world, o, users[0].Username, benchReturnTo)); res.Status != http.StatusSeeOther {
		b.Fatalf("returning OIDC login after the benchmark, provisioner stopped: %d, want 303", res.Status)
	}
	if v, id := verify(b, br, w.edgeURL); v.Status != http.StatusOK || id == "" {
		b.Fatalf("verify after a returning OIDC login: %d user %q, want 200 and a user", v.Status, id)
	}
}

// timedOIDCLogins signs users in, batch by batch: the callback URLs of a
// batch are obtained with the timer stopped, then fetched with it running.
func (w *benchWorld) timedOIDCLogins(b *testing.B, o *zitOP, users []*storage.User) ([]time.Duration, time.Duration) {
	var lat []time.Duration
	var elapsed time.Duration
	for batch := range slices.Chunk(users, benchBatch) {
		b.StopTimer()
		gets := w.prepareOIDC(b, o, batch)
		b.StartTimer()
		l, e, err := getAll(gets, benchWorkers)
		if err != nil {
			b.StopTimer()
			b.Fatal(err)
		}
		lat, elapsed = append(lat, l...), elapsed+e
	}
	return lat, elapsed
}

// oidcCallback is a browser about to follow the provider's redirect back
// to the edge.
type oidcCallback struct {
	browser *testenv.Browser
	url     string
}

// prepareOIDC runs each user's login, in a new browser, up to the
// provider's redirect to the edge.
func (w *benchWorld) prepareOIDC(tb testing.TB, o *zitOP, users []*storage.User) []oidcCallback {
	tb.Helper()
	out := make([]oidcCallback, len(users))
	for i, u := range users {
		br := w.newBrowser()
		out[i] = oidcCallback{browser: br, url: oidcStartLoginAs(tb, br, w.world, o, u.Username, benchReturnTo)}
	}
	return out
}

// getAll fetches every callback from `workers` goroutines (see runAll).
func getAll(gets []oidcCallback, workers int) ([]time.Duration, time.Duration, error) {
	return runAll(len(gets), workers, "OIDC callback", func(i int) (*http.Response, error) {
		return gets[i].browser.Client().Get(gets[i].url)
	})
}

// benchOIDCPeople are n provider users with distinct subs and verified
// emails, all with password zitPassword.
func benchOIDCPeople(prefix string, n int) []*storage.User {
	out := make([]*storage.User, n)
	for i := range out {
		out[i] = &storage.User{
			ID:       fmt.Sprintf("zit-%s-%07d", prefix, i),
			Username: fmt.Sprintf("%s-%07d", prefix, i),
			Password: zitPassword, FirstName: "Bench", LastName: fmt.Sprintf("%s %d", prefix, i),
			Email: fmt.Sprintf("%s-%07d@acme.example", prefix, i), EmailVerified: true,
		}
	}
	return out
}
