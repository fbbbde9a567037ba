package edge_test

// Sign-ins through sso-edge, measured over HTTP against the same
// deployment as the tests in edge_test.go (newWorld): Postgres, embedded
// NATS (JetStream on file storage, fsync on every write), a provisioner
// with 4 workers, crewjam/saml's IdP (keys generated now) and sso-edge, all
// in this process. Run them with a fixed count, which also bounds the
// untimed preparation (each login's IdP response is generated beforehand):
//
//	go test -run '^$' -bench 'Login' -benchtime=300x ./internal/edge/
//
// Only the browsers' POSTs of the IdP's response to the ACS are timed: that
// is the edge's work (SAML validation in samlsp, replay claim, known
// identities or the provisioner's round trip, session cookie), not the
// IdP's. They are sent by benchWorkers concurrent browsers; each figure
// counts successful sign-ins only — any answer but a 303 with the requested
// Location fails the benchmark.
//
//	logins/s  sign-ins per second of timed wall-clock time
//	p50_ms    median latency of one ACS POST, as the browser sees it
//	p99_ms    99th percentile (nearest rank) of the same
//
// ns/op is the inverse of logins/s. Everything shares the machine's cores
// (Postgres, NATS, provisioner, edge, IdP and the load generator), so the
// figures are for comparing runs on one machine, not capacity planning.
//
// Logs are kept in memory and shown only when a benchmark fails: a
// benchmark's b.Log, which testenv.Logger writes through, is always printed.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/crewjam/saml"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/jitprov/jitprov/events"
	"github.com/jitprov/jitprov/internal/bus"
	"github.com/jitprov/jitprov/internal/edge"
	"github.com/jitprov/jitprov/internal/known"
	"github.com/jitprov/jitprov/internal/testenv"
)

const (
	// benchWorkers browsers post to the ACS at once.
	benchWorkers = 32
	// benchBatch bounds how many IdP responses are generated ahead of
	// being posted: the SP refuses a response issued more than the
	// connection's clock_skew (90s) plus 20s ago, and b.N may be large.
	benchBatch = 500
	// benchSeats: the organisation never runs out of seats.
	benchSeats = 1 << 20
	// benchReturnTo is where every login asks to go back to.
	benchReturnTo = "/app/home"
)

// BenchmarkFirstLogin: each iteration is the first login of a new person —
// validation, a login.first-seen event through JetStream, the
// provisioner's transaction in Postgres, its answer, the session.
func BenchmarkFirstLogin(b *testing.B) {
	w := newBenchWorld(b)
	people := benchPeople("first", b.N)

	b.ResetTimer()
	lat, elapsed := w.timedLogins(b, people)
	b.StopTimer()
	reportLogins(b, lat, elapsed)

	// Every sign-in created its account.
	if n := countUsers(b, w.store); n != b.N {
		b.Fatalf("%d users in Postgres after %d first logins, want %d", n, b.N, b.N)
	}
}

// BenchmarkReturningLogin: people who already have accounts sign in again
// with unchanged claims: the known identities answer, and the provisioner
// is not asked (it is stopped during the timed section).
func BenchmarkReturningLogin(b *testing.B) {
	w := newBenchWorld(b)
	people := benchPeople("back", b.N)

	// Untimed: everyone's first login, then wait until the provisioner has
	// recorded them all as known (it does so after answering the edge).
	for batch := range slices.Chunk(people, benchBatch) {
		if _, _, err := postAll(w.prepare(b, batch), benchWorkers); err != nil {
			b.Fatalf("first logins before the benchmark: %v", err)
		}
	}
	w.waitKnown(b, len(people))
	w.stopProvisioner()
	firstSeen := w.pendingFirstSeen(b)

	b.ResetTimer()
	lat, elapsed := w.timedLogins(b, people)
	b.StopTimer()
	reportLogins(b, lat, elapsed)

	// The fast path was taken: no login.first-seen was published while the
	// provisioner was away (with none running, a slow-path login would have
	// waited its 5s and got the "setting up your account" page, not a 303),
	// nobody new was provisioned, and the session names its user.
	if after := w.pendingFirstSeen(b); after != firstSeen {
		b.Fatalf("login.first-seen events waiting went from %d to %d during returning logins: the fast path was not taken", firstSeen, after)
	}
	if n := countUsers(b, w.store); n != b.N {
		b.Fatalf("%d users in Postgres, want %d", n, b.N)
	}
	br := w.newBrowser()
	w.idp.signsIn(people[0])
	if res, _ := login(b, br, w.edgeURL, benchReturnTo); res.Status != http.StatusSeeOther {
		b.Fatalf("returning login after the benchmark, provisioner stopped: %d, want 303", res.Status)
	}
	if v, id := verify(b, br, w.edgeURL); v.Status != http.StatusOK || id == "" {
		b.Fatalf("verify after a returning login: %d user %q, want 200 and a user", v.Status, id)
	}
}

// benchWorld is edge_test.go's world, quiet, with a connection pool its
// browsers share and a JetStream client to look at the pipeline.
type benchWorld struct {
	*world
	js        jetstream.JetStream
	transport *http.Transport
}

func newBenchWorld(tb testing.TB) *benchWorld {
	tb.Helper()
	// Every browser of the load comes from 127.0.0.1: no per-client limit.
	w := &benchWorld{world: newWorld(tb, benchSeats, true, withLogger(benchLogger(tb)),
		withEdgeConfig(func(c *edge.Config) { c.RatePerClient, c.RatePerConnection = -1, -1 }))}
	w.transport = &http.Transport{MaxIdleConns: 4 * benchWorkers, MaxIdleConnsPerHost: 2 * benchWorkers, IdleConnTimeout: time.Minute}
	tb.Cleanup(w.transport.CloseIdleConnections)
	var err error
	if w.js, err = jetstream.New(testenv.Connect(tb, w.ns)); err != nil {
		tb.Fatal(err)
	}
	return w
}

// newBrowser is a person's browser (newBrowser) whose connections are
// pooled with the other browsers of the benchmark: the load generator
// should not measure TCP handshakes.
func (w *benchWorld) newBrowser() *testenv.Browser {
	br := testenv.NewBrowser(w.tb, testenv.MaxRedirects(0), testenv.Timeout(time.Minute))
	br.Client().Transport = w.transport
	return br
}

// timedLogins signs people in, batch by batch: the IdP responses of a
// batch are generated with the timer stopped, then posted with it running.
// It returns every POST's latency and the timed wall-clock time.
func (w *benchWorld) timedLogins(b *testing.B, people []saml.Session) ([]time.Duration, time.Duration) {
	var lat []time.Duration
	var elapsed time.Duration
	for batch := range slices.Chunk(people, benchBatch) {
		b.StopTimer()
		posts := w.prepare(b, batch)
		b.StartTimer()
		l, e, err := postAll(posts, benchWorkers)
		if err != nil {
			b.StopTimer()
			b.Fatal(err)
		}
		lat, elapsed = append(lat, l...), elapsed+e
	}
	return lat, elapsed
}

func reportLogins(b *testing.B, lat []time.Duration, elapsed time.Duration) {
	slices.Sort(lat)
	b.ReportMetric(float64(len(lat))/elapsed.Seconds(), "logins/s")
	b.ReportMetric(ms(percentile(lat, 0.50)), "p50_ms")
	b.ReportMetric(ms(percentile(lat, 0.99)), "p99_ms")
}

// percentile is the nearest-rank percentile of sorted latencies.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(p*float64(len(sorted)))) - 1
	return sorted[max(i, 0)]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func benchPeople(prefix string, n int) []saml.Session {
	out := make([]saml.Session, n)
	for i := range out {
		out[i] = person(fmt.Sprintf("00u-%s-%07d", prefix, i), fmt.Sprintf("%s-%07d@acme.example", prefix, i), "staff")
	}
	return out
}

// acsPost is a browser about to post the IdP's response form to the ACS.
type acsPost struct {
	browser *testenv.Browser
	action  string
	form    url.Values
}

// prepare starts one login per person, each in a new browser (which keeps
// its pending-login cookie), and collects the IdP's response forms.
func (w *benchWorld) prepare(tb testing.TB, people []saml.Session) []acsPost {
	tb.Helper()
	posts := make([]acsPost, len(people))
	for i, p := range people {
		br := w.newBrowser()
		w.idp.signsIn(p)
		action, form := startLogin(tb, br, w.edgeURL, benchReturnTo)
		posts[i] = acsPost{browser: br, action: action, form: form}
	}
	return posts
}

// postAll posts every form from `workers` goroutines (see runAll). (With
// the browser's client, not its Post, which would call Fatal from a
// goroutine of its own.)
func postAll(posts []acsPost, workers int) ([]time.Duration, time.Duration, error) {
	return runAll(len(posts), workers, "ACS", func(i int) (*http.Response, error) {
		return posts[i].browser.Client().PostForm(posts[i].action, posts[i].form)
	})
}

// runAll makes n requests from `workers` goroutines and returns each one's
// latency (in request order) and the wall-clock time of the whole. An
// answer other than 303 to benchReturnTo is an error: the figures count
// successful sign-ins only.
func runAll(n, workers int, what string, do func(i int) (*http.Response, error)) ([]time.Duration, time.Duration, error) {
	lat := make([]time.Duration, n)
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
	for range min(workers, n) {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				t0 := time.Now()
				resp, err := do(i)
				if err != nil {
					fail(err)
					continue
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				lat[i] = time.Since(t0)
				if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusSeeOther || loc != benchReturnTo {
					fail(fmt.Errorf("%s answered %d (Location %q), want 303 to %s: %.300s", what, resp.StatusCode, loc, benchReturnTo, body))
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	if failed > 0 {
		return nil, 0, fmt.Errorf("%d of %d sign-ins failed; the first: %w", failed, n, errors.Join(failures...))
	}
	return lat, elapsed, nil
}

// waitKnown waits (up to 60s: b.N may be large) until the known-identities
// bucket holds n records.
func (w *benchWorld) waitKnown(tb testing.TB, n int) {
	tb.Helper()
	kv, err := w.js.KeyValue(context.Background(), known.DefaultBucket)
	if err != nil {
		tb.Fatal(err)
	}
	waitWithin(tb, 60*time.Second, func() bool {
		st, err := kv.Status(context.Background())
		return err == nil && st.Values() >= uint64(n)
	})
}

// pendingFirstSeen counts the login.first-seen events of acme waiting in
// the LOGINS stream (a work queue: with no provisioner, nothing removes
// them). login.seen events share the stream and are not counted.
func (w *benchWorld) pendingFirstSeen(tb testing.TB) uint64 {
	tb.Helper()
	subject, err := events.Subject(events.TypeLoginFirstSeen, "acme")
	if err != nil {
		tb.Fatal(err)
	}
	ctx := context.Background()
	st, err := w.js.Stream(ctx, bus.StreamLogins)
	if err != nil {
		tb.Fatal(err)
	}
	info, err := st.Info(ctx, jetstream.WithSubjectFilter(subject))
	if err != nil {
		tb.Fatal(err)
	}
	return info.State.Subjects[subject]
}

// benchLogger formats records at Info, as a deployment would, but keeps
// only the last benchLogKeep lines in memory and shows them if the
// benchmark failed.
func benchLogger(tb testing.TB) *slog.Logger {
	r := &ringLog{}
	tb.Cleanup(func() {
		if tb.Failed() {
			r.mu.Lock()
			defer r.mu.Unlock()
			tb.Logf("last %d log lines:\n%s", len(r.lines), strings.Join(r.lines, ""))
		}
	})
	return slog.New(slog.NewTextHandler(r, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

const benchLogKeep = 100

type ringLog struct {
	mu    sync.Mutex
	lines []string
}

func (r *ringLog) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.lines) >= 2*benchLogKeep {
		r.lines = append(r.lines[:0], r.lines[len(r.lines)-benchLogKeep+1:]...)
	}
	r.lines = append(r.lines, string(p))
	return len(p), nil
}
