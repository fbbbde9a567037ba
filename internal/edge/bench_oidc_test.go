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
// This file keeps its own provider, connection and login walk rather than
// reusing oidc_test.go's helpers, which have one user only.

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zitadel/oidc/v3/example/server/storage"
	"github.com/zitadel/oidc/v3/pkg/op"

	"github.com/jitprov/jitprov/internal/store"
)

const (
	benchOPClientID     = "jitprov-edge-bench"
	benchOPClientSecret = "jitprov-edge-bench-secret"
	benchOPPassword     = "verysecure"
	benchOPLoginPath    = "/login/username"
	// benchOIDCConnection is the acme connection the benchmarks sign in
	// through; its redirect URI is benchOIDCCallbackPath.
	benchOIDCConnection   = "zitbench"
	benchOIDCCallbackPath = "/oidc/acme/" + benchOIDCConnection + "/callback"
)

// BenchmarkOIDCFirstLogin: each iteration is the first login of a new
// person (a distinct provider user, so a distinct sub) through OIDC: code
// exchange, ID-token verification, a login.first-seen event through
// JetStream, the provisioner's transaction in Postgres, its answer, the
// session.
func BenchmarkOIDCFirstLogin(b *testing.B) {
	w := newBenchWorld(b)
	users := benchOIDCPeople("first", b.N)
	o := addBenchOIDCConnection(b, w.world, users)

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
	o := addBenchOIDCConnection(b, w.world, users)

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
	res, err := br.c.Get(benchOIDCStart(b, br, w.world, o, users[0].Username))
	if err != nil {
		b.Fatal(err)
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusSeeOther {
		b.Fatalf("returning OIDC login after the benchmark, provisioner stopped: %d, want 303", res.StatusCode)
	}
	if v, id := br.verify(w.edgeURL); v.StatusCode != http.StatusOK || id == "" {
		b.Fatalf("verify after a returning OIDC login: %d user %q, want 200 and a user", v.StatusCode, id)
	}
}

// timedOIDCLogins signs users in, batch by batch: the callback URLs of a
// batch are obtained with the timer stopped, then fetched with it running.
func (w *benchWorld) timedOIDCLogins(b *testing.B, o *benchOP, users []*storage.User) ([]time.Duration, time.Duration) {
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
	browser *browser
	url     string
}

// prepareOIDC runs each user's login, in a new browser, up to the
// provider's redirect to the edge.
func (w *benchWorld) prepareOIDC(tb testing.TB, o *benchOP, users []*storage.User) []oidcCallback {
	tb.Helper()
	out := make([]oidcCallback, len(users))
	for i, u := range users {
		br := w.newBrowser()
		out[i] = oidcCallback{browser: br, url: benchOIDCStart(tb, br, w.world, o, u.Username)}
	}
	return out
}

// getAll fetches every callback from `workers` goroutines, as postAll
// posts: latencies in the order of gets, the wall-clock time of the whole,
// and an error if any answer is not a 303 to benchReturnTo.
func getAll(gets []oidcCallback, workers int) ([]time.Duration, time.Duration, error) {
	lat := make([]time.Duration, len(gets))
	var (
		next     atomic.Int64
		mu       sync.Mutex
		failures []error
		failed   int
		wg       sync.WaitGroup
	)
	fail := func(err error) {
		mu.Lock()
		defer mu.Unlock()
		if failed++; len(failures) < 5 {
			failures = append(failures, err)
		}
	}
	start := time.Now()
	for range min(workers, len(gets)) {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= len(gets) {
					return
				}
				g := gets[i]
				t0 := time.Now()
				resp, err := g.browser.c.Get(g.url)
				if err != nil {
					fail(err)
					continue
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				lat[i] = time.Since(t0)
				if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusSeeOther || loc != benchReturnTo {
					fail(fmt.Errorf("OIDC callback answered %d (Location %q), want 303 to %s: %.300s", resp.StatusCode, loc, benchReturnTo, body))
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	if failed > 0 {
		return nil, 0, fmt.Errorf("%d of %d OIDC sign-ins failed; the first: %w", failed, len(gets), errors.Join(failures...))
	}
	return lat, elapsed, nil
}

// benchOIDCPeople are n provider users with distinct subs and verified
// emails, all with password benchOPPassword.
func benchOIDCPeople(prefix string, n int) []*storage.User {
	out := make([]*storage.User, n)
	for i := range out {
		out[i] = &storage.User{
			ID:       fmt.Sprintf("zit-%s-%07d", prefix, i),
			Username: fmt.Sprintf("%s-%07d", prefix, i),
			Password: benchOPPassword, FirstName: "Bench", LastName: fmt.Sprintf("%s %d", prefix, i),
			Email: fmt.Sprintf("%s-%07d@acme.example", prefix, i), EmailVerified: true,
		}
	}
	return out
}

// benchOPUsers is the provider's user store, indexed both ways.
type benchOPUsers struct {
	byID, byName map[string]*storage.User
}

func (u benchOPUsers) GetUserByID(id string) *storage.User         { return u.byID[id] }
func (u benchOPUsers) GetUserByUsername(name string) *storage.User { return u.byName[name] }
func (benchOPUsers) ExampleClientID() string                       { return storage.ServiceUserID }

// benchOPStorage makes the example clients put the userinfo claims in the
// ID token, as most providers do.
type benchOPStorage struct{ *storage.Storage }

func (s benchOPStorage) GetClientByClientID(ctx context.Context, id string) (op.Client, error) {
	c, err := s.Storage.GetClientByClientID(ctx, id)
	if err != nil {
		return nil, err
	}
	return benchOPClient{c}, nil
}

type benchOPClient struct{ op.Client }

func (benchOPClient) IDTokenUserinfoClaimsAssertion() bool { return true }

// benchOP is the provider: zitadel/oidc's op on plain http, one web client
// (PKCE S256, client_secret_basic or _post) whose only redirect URI is the
// edge's callback of acme/benchOIDCConnection.
type benchOP struct {
	issuer string
	store  *storage.Storage
}

func newBenchOP(tb testing.TB, redirectURI string, users []*storage.User) *benchOP {
	tb.Helper()
	us := benchOPUsers{byID: map[string]*storage.User{}, byName: map[string]*storage.User{}}
	for _, u := range users {
		us.byID[u.ID], us.byName[u.Username] = u, u
	}
	srv := httptest.NewUnstartedServer(nil)
	o := &benchOP{issuer: "http://" + srv.Listener.Addr().String()}
	o.store = storage.NewStorageWithClients(us, map[string]*storage.Client{
		benchOPClientID: storage.WebClient(benchOPClientID, benchOPClientSecret, redirectURI),
	})
	var cryptoKey [32]byte
	if _, err := rand.Read(cryptoKey[:]); err != nil {
		tb.Fatal(err)
	}
	provider, err := op.NewProvider(&op.Config{CryptoKey: cryptoKey, CodeMethodS256: true, AuthMethodPost: true},
		benchOPStorage{o.store}, op.StaticIssuer(o.issuer),
		op.WithAllowInsecure(),
		op.WithLogger(slog.New(slog.DiscardHandler)),
	)
	if err != nil {
		tb.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("POST "+benchOPLoginPath, op.NewIssuerInterceptor(provider.IssuerFromRequest).HandlerFunc(
		func(w http.ResponseWriter, r *http.Request) {
			id := r.FormValue("id")
			if err := o.store.CheckUsernamePassword(r.FormValue("username"), r.FormValue("password"), id); err != nil {
				http.Error(w, err.Error(), http.StatusUnauthorized)
				return
			}
			http.Redirect(w, r, op.AuthCallbackURL(provider)(r.Context(), id), http.StatusFound)
		}))
	mux.Handle("/", provider)
	srv.Config.Handler = mux
	srv.Start()
	tb.Cleanup(srv.Close)
	return o
}

// addBenchOIDCConnection starts the provider with these users and adds the
// OIDC connection acme/benchOIDCConnection, its secret in a file.
func addBenchOIDCConnection(tb testing.TB, w *world, users []*storage.User) *benchOP {
	tb.Helper()
	o := newBenchOP(tb, w.edgeURL+benchOIDCCallbackPath, users)
	secretFile := filepath.Join(tb.TempDir(), "bench-oidc-client-secret")
	if err := os.WriteFile(secretFile, []byte(benchOPClientSecret), 0o600); err != nil {
		tb.Fatal(err)
	}
	settings, err := json.Marshal(map[string]any{
		"issuer":             o.issuer,
		"client_id":          benchOPClientID,
		"client_secret_file": secretFile,
		"claims":             map[string]string{},
	})
	if err != nil {
		tb.Fatal(err)
	}
	if err := w.store.ApplyOrganizations(context.Background(), nil, []store.Connection{
		{OrganizationID: "acme", ID: benchOIDCConnection, Protocol: "oidc", Settings: settings},
	}); err != nil {
		tb.Fatal(err)
	}
	return o
}

// benchOIDCStart walks a login from the edge to the provider and through
// its login UI as username, and returns the URL the provider redirects the
// browser to (the edge's callback with code and state), not followed.
func benchOIDCStart(tb testing.TB, br *browser, w *world, o *benchOP, username string) string {
	tb.Helper()
	follow := func(what string, resp *http.Response, err error) *url.URL {
		tb.Helper()
		if err != nil {
			tb.Fatalf("%s: %v", what, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusFound && resp.StatusCode != http.StatusSeeOther {
			tb.Fatalf("%s: %s %s: status %d, want a redirect; body %.300s", what, resp.Request.Method, resp.Request.URL, resp.StatusCode, body)
		}
		loc, err := resp.Request.URL.Parse(resp.Header.Get("Location"))
		if err != nil {
			tb.Fatalf("%s: Location %q: %v", what, resp.Header.Get("Location"), err)
		}
		return loc
	}
	resp, err := br.c.Get(w.edgeURL + "/oidc/acme/" + benchOIDCConnection + "/login?return_to=" + url.QueryEscape(benchReturnTo))
	auth := follow("edge login start", resp, err)
	if got := auth.Scheme + "://" + auth.Host; got != o.issuer {
		tb.Fatalf("login start redirected to %s, want the provider %s", auth, o.issuer)
	}
	resp, err = br.c.Get(auth.String())
	loginUI := follow("provider authorize", resp, err)
	id := loginUI.Query().Get("authRequestID")
	if loginUI.Path != benchOPLoginPath || id == "" {
		tb.Fatalf("the provider sent the browser to %s, want its login UI", loginUI)
	}
	resp, err = br.c.PostForm(o.issuer+benchOPLoginPath, url.Values{"id": {id}, "username": {username}, "password": {benchOPPassword}})
	authCallback := follow("provider login", resp, err)
	resp, err = br.c.Get(authCallback.String())
	cb := follow("provider callback", resp, err)
	if got := cb.Scheme + "://" + cb.Host + cb.Path; got != w.edgeURL+benchOIDCCallbackPath {
		tb.Fatalf("the provider redirected to %s, want %s", cb, w.edgeURL+benchOIDCCallbackPath)
	}
	if cb.Query().Get("code") == "" || cb.Query().Get("state") != auth.Query().Get("state") {
		tb.Fatalf("the provider's redirect %s lacks the code or the state", cb)
	}
	return cb.String()
}
