package edge_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	nooptrace "go.opentelemetry.io/otel/trace/noop"

	"github.com/jitprov/jitprov/internal/edge"
	"github.com/jitprov/jitprov/internal/edge/session"
	"github.com/jitprov/jitprov/internal/known"
	"github.com/jitprov/jitprov/internal/store/postgres"
	"github.com/jitprov/jitprov/internal/testenv"
)

// sso-edge started before its database answers, before NATS runs and
// before any provisioner has created the pipeline's streams and buckets:
// it listens at once, alive and not ready, saying what it waits for, and
// tells people that sign-in is starting; it becomes ready as each
// dependency arrives, without a restart.
func TestRunWaitsForItsDependencies(t *testing.T) {
	var logs testenv.Output
	w := newWorld(t, 10, true, withLogger(logs.Logger()))
	w.stopProvisioner()
	// A fresh NATS, with nothing declared yet, stopped for now; the
	// database behind a proxy, cut for now.
	freshNATS := testenv.NATSCluster(t, 1)
	freshNATS.Stop(0)
	dbURL, err := url.Parse(testenv.NewDatabase(t))
	if err != nil {
		t.Fatal(err)
	}
	proxy := testenv.NewProxy(t, dbURL.Host)
	proxy.Cut()
	viaProxy := strings.Replace(dbURL.String(), dbURL.Host, proxy.Addr(), 1)
	s, err := postgres.Open(context.Background(), viaProxy, postgres.Options{Lazy: true, Logger: w.log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	nc := freshNATS.Connect(t)                     // reconnects until the node runs
	keys, err := session.NewKeys(make([]byte, 32)) // TEST KEY: all zeros
	if err != nil {
		t.Fatal(err)
	}
	sessions, err := session.NewManager(keys, session.Options{Insecure: true})
	if err != nil {
		t.Fatal(err)
	}

	addr, done := runEdge(t, edge.Config{SPKeyPair: spKeyPair(t), CertCheckInterval: -1},
		edge.Deps{Store: s, NATS: nc, Sessions: sessions, Logger: w.log, Tracer: nooptrace.NewTracerProvider()})

	get := func(addr, path string) (int, string) {
		resp, err := http.Get("http://" + addr + path)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	until := func(path string, code int, want string) {
		t.Helper()
		testenv.WaitHTTP(t, "http://"+addr+path, code, want, time.Minute, done)
	}
	until("/readyz", http.StatusServiceUnavailable, "waiting for the database")
	until("/healthz", http.StatusOK, "ok") // alive while starting
	until("/login", http.StatusServiceUnavailable, "Sign-in is starting")

	proxy.Restore()
	if _, err := s.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	until("/readyz", http.StatusServiceUnavailable, "waiting for NATS JetStream (the provisioner's streams and buckets)")
	freshNATS.Start(0)
	// NATS runs, but no provisioner has created the known identities yet:
	// the public readiness says what it waits for, the log says why.
	waitUntil(t, func() bool { return logs.Count("a provisioner creates it when it starts") > 0 })
	if code, body := get(addr, "/readyz"); code != http.StatusServiceUnavailable || strings.Contains(body, "does not exist") {
		t.Errorf("/readyz while the bucket is missing: %d %q, want 503 naming the step only", code, body)
	}

	// A provisioner on the same NATS and database declares them.
	w.nats, w.store = freshNATS, s
	w.startProvisioner()
	until("/readyz", http.StatusOK, "ready")
	until("/login", http.StatusOK, "")
}

// The provisioner owns the known-identities bucket: an edge started with
// another replica setting (here, none: 1) binds to it, warns, and leaves
// it as it is.
func TestEdgeLeavesTheKnownBucketsReplicasAlone(t *testing.T) {
	w := newWorld(t, 10, false)
	cluster := testenv.NATSCluster(t, 3)
	js, err := jetstream.New(cluster.Connect(t))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := known.New(t.Context(), js, known.Config{Replicas: 3}); err != nil {
		t.Fatal(err)
	}
	var logs testenv.Output
	deps := edgeDeps(t, w)
	deps.NATS, deps.Logger = cluster.Connect(t), logs.Logger()
	public, _ := url.Parse("https://sso.example.com")
	if _, _, err := edge.New(t.Context(), edge.Config{PublicURL: *public, SPKeyPair: spKeyPair(t)}, deps); err != nil {
		t.Fatal(err)
	}
	s, err := js.Stream(t.Context(), "KV_"+known.DefaultBucket)
	if err != nil {
		t.Fatal(err)
	}
	if got := s.CachedInfo().Config.Replicas; got != 3 {
		t.Errorf("the known-identities bucket has %d replicas after an edge configured for 1 started, want 3", got)
	}
	if !strings.Contains(logs.String(), "has 3 replicas, and this component is configured for 1") {
		t.Errorf("the edge did not warn of the difference:\n%s", logs.String())
	}
}

// runEdge runs edge.Run with cfg on a free loopback port (its public URL)
// until the test ends. It returns the address, and a channel that delivers
// Run's error should Run return before the test ends.
func runEdge(t *testing.T, cfg edge.Config, deps edge.Deps) (string, <-chan error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	public, _ := url.Parse("http://" + addr)
	cfg.Addr, cfg.PublicURL = addr, *public
	ctx, cancel := context.WithCancel(context.Background())
	done, finished := make(chan error, 1), make(chan struct{})
	var runErr error
	go func() {
		runErr = edge.Run(ctx, cfg, deps)
		done <- runErr
		close(finished)
	}()
	t.Cleanup(func() {
		cancel()
		<-finished
		if runErr != nil {
			t.Errorf("edge.Run: %v", runErr)
		}
	})
	return addr, done
}

// edge.Run serves /metrics, /healthz and /readyz on its internal metrics
// listener, and never /metrics on the public one. The certificate check,
// which runs at start, fills the certificates' expiry gauge.
func TestRunServesMetricsOnItsOwnListener(t *testing.T) {
	w := newWorld(t, 10, true)
	mp, metrics := promMeter(t)
	keys, err := session.NewKeys(make([]byte, 32)) // TEST KEY: all zeros
	if err != nil {
		t.Fatal(err)
	}
	sessions, err := session.NewManager(keys, session.Options{Insecure: true})
	if err != nil {
		t.Fatal(err)
	}
	metricsAddr := freeAddr(t)
	addr, done := runEdge(t, edge.Config{SPKeyPair: spKeyPair(t), MetricsAddr: metricsAddr},
		edge.Deps{Store: w.store, NATS: w.nats.Connect(t), Sessions: sessions, Logger: w.log,
			Tracer: nooptrace.NewTracerProvider(), Meter: mp, Metrics: metrics})
	testenv.WaitHTTP(t, "http://"+metricsAddr+"/readyz", http.StatusOK, "ready", time.Minute, done)
	testenv.WaitHTTP(t, "http://"+metricsAddr+"/healthz", http.StatusOK, "ok", time.Minute, done)
	testenv.WaitHTTP(t, "http://"+addr+"/readyz", http.StatusOK, "ready", time.Minute, done)
	waitUntil(t, func() bool {
		_, ok := testenv.ScrapeMetrics(t, "http://"+metricsAddr+"/metrics").Value("jitprov_edge_certificate_expiry_seconds",
			"kind", "idp", "jitprov_org", "acme", "jitprov_connection", "idp")
		return ok
	})
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET /metrics on the public listener: %d, want 404", resp.StatusCode)
	}
}
