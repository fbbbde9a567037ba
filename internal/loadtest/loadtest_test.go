package loadtest_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"log/slog"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	noopmetric "go.opentelemetry.io/otel/metric/noop"
	nooptrace "go.opentelemetry.io/otel/trace/noop"

	"github.com/jitprov/jitprov/internal/bus"
	"github.com/jitprov/jitprov/internal/edge"
	"github.com/jitprov/jitprov/internal/edge/session"
	"github.com/jitprov/jitprov/internal/known"
	"github.com/jitprov/jitprov/internal/loadtest"
	"github.com/jitprov/jitprov/internal/provisioner"
	"github.com/jitprov/jitprov/internal/testenv"
)

// deployment is the pipeline in this process: Postgres (a fresh database),
// embedded NATS (JetStream, fsync on every write), a provisioner and
// sso-edge served over real HTTP with its sign-in rate limits off.
type deployment struct {
	edgeURL, dbURL string
}

func deploy(t *testing.T) deployment {
	t.Helper()
	s, dbURL := testenv.Store(t)
	ns := testenv.NATS(t)
	log := slog.New(slog.DiscardHandler)
	if testing.Verbose() {
		log = testenv.Logger(t)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	provNATS := testenv.Connect(t, ns) // closed after the provisioner stopped (cleanups run last first)
	go func() {
		done <- provisioner.Run(ctx, provisioner.Config{Workers: 4, Topology: bus.DefaultTopology()},
			provisioner.Deps{Store: s, NATS: provNATS, Logger: log,
				Tracer: nooptrace.NewTracerProvider(), Meter: noopmetric.NewMeterProvider()})
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("provisioner: %v", err)
		}
	})
	js, err := jetstream.New(testenv.Connect(t, ns))
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		_, err := js.Consumer(ctx, bus.StreamLogins, bus.ConsumerProvisioner)
		if err == nil {
			_, err = js.KeyValue(ctx, known.DefaultBucket)
		}
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the provisioner did not set up JetStream: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}

	var h http.Handler
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { h.ServeHTTP(w, r) }))
	t.Cleanup(srv.Close)
	public, _ := url.Parse(srv.URL)
	keys, err := session.NewKeys(make([]byte, 32)) // TEST KEY: all zeros
	if err != nil {
		t.Fatal(err)
	}
	sessions, err := session.NewManager(keys, session.Options{Insecure: true})
	if err != nil {
		t.Fatal(err)
	}
	e, ready, err := edge.New(ctx, edge.Config{PublicURL: *public, SPKeyPair: spKeyPair(t),
		RatePerClient: -1, RatePerConnection: -1},
		edge.Deps{Store: s, NATS: testenv.Connect(t, ns), Sessions: sessions, Logger: log, Tracer: nooptrace.NewTracerProvider()})
	if err != nil {
		t.Fatal(err)
	}
	h = e.Handler(ready)
	return deployment{edgeURL: srv.URL, dbURL: dbURL}
}

func spKeyPair(t *testing.T) *tls.Certificate {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "sp"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: cert}
}

// The command end to end: setup applies three organisations, then an
// open-loop run of first and returning logins at a small rate and a
// closed-loop run of first logins; every login signs in, and the
// invariants hold.
func TestLoadTestAgainstARealEdge(t *testing.T) {
	d := deploy(t)
	dir := t.TempDir()
	ctx := context.Background()
	getenv := func(string) string { return "" }
	var out, errOut bytes.Buffer
	if err := loadtest.Main(ctx, []string{"setup", "-edge-url", d.edgeURL, "-orgs", "3", "-dir", dir, "-database-url", d.dbURL},
		getenv, &out, &errOut); err != nil {
		t.Fatalf("setup: %v\n%s", err, errOut.String())
	}

	out.Reset()
	err := loadtest.Main(ctx, []string{"run", "-dir", dir, "-mode", "open", "-rate", "20", "-duration", "2s",
		"-scenarios", "first,returning", "-database-url", d.dbURL, "-o", "json"}, getenv, &out, &errOut)
	if err != nil {
		t.Fatalf("open-loop run: %v\n%s\n%s", err, out.String(), errOut.String())
	}
	var rep loadtest.Report
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatalf("-o json: %v\n%s", err, out.String())
	}
	if len(rep.Scenarios) != 2 {
		t.Fatalf("%d scenarios, want first and returning", len(rep.Scenarios))
	}
	for _, s := range rep.Scenarios {
		if s.Logins != 40 || s.Outcomes[loadtest.OutcomeSignedIn] != 40 {
			t.Errorf("%s: %d logins, outcomes %v; want 40, all signed in", s.Name, s.Logins, s.Outcomes)
		}
		if s.Rate <= 0 || s.P50 <= 0 || s.P99 < s.P50 || s.P999 < s.P99 || s.TargetRate != 20 {
			t.Errorf("%s: rate %.1f, p50 %.1f p99 %.1f p99.9 %.1f target %g", s.Name, s.Rate, s.P50, s.P99, s.P999, s.TargetRate)
		}
	}
	if inv := rep.Invariants; inv == nil || !inv.UsersOK || !inv.SeatsOK || inv.RunUsers != 40 || len(inv.Seats) != 3 {
		t.Errorf("invariants: %+v, want 40 users of the run and seats_used = active users in 3 organisations", inv)
	}

	// A closed loop, one organisation, text output.
	out.Reset()
	err = loadtest.Main(ctx, []string{"run", "-dir", dir, "-concurrency", "4", "-logins", "30", "-duration", "5s",
		"-orgs", "1", "-database-url", d.dbURL, "-quiet"}, getenv, &out, &errOut)
	if err != nil {
		t.Fatalf("closed-loop run: %v\n%s\n%s", err, out.String(), errOut.String())
	}
	text := out.String()
	t.Log("\n" + text)
	for _, want := range []string{"first", "closed 4", "signed_in 30", "users = created answers: 30 = 30 ok", "seats_used = active users in 3 organisations: ok",
		"all 30 signed responses used before the end"} {
		if !strings.Contains(text, want) {
			t.Errorf("closed-loop report lacks %q:\n%s", want, text)
		}
	}
}

// Failures are counted, not hidden: signed by a key the connections do
// not trust, every response is refused (403), nobody signs in, and the
// invariants hold with nobody created.
func TestLoadTestCountsRefusals(t *testing.T) {
	d := deploy(t)
	dir := t.TempDir()
	ctx := context.Background()
	if _, err := loadtest.Setup(ctx, loadtest.SetupConfig{Dir: dir, EdgeURL: d.edgeURL, Orgs: 1, DatabaseURL: d.dbURL}); err != nil {
		t.Fatal(err)
	}
	other, err := loadtest.NewIdP(time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if err := other.Save(dir); err != nil {
		t.Fatal(err)
	}
	rep, err := loadtest.Run(ctx, loadtest.Options{Dir: dir, Mode: loadtest.ModeClosed, Concurrency: 2, Logins: 4,
		Duration: 3 * time.Second, DatabaseURL: d.dbURL, Follow: true})
	if err != nil {
		t.Fatal(err)
	}
	s := rep.Scenarios[0]
	if s.Logins != 4 || s.Outcomes[loadtest.OutcomeRefused] != 4 || s.Rate != 0 {
		t.Errorf("untrusted key: %d logins, outcomes %v, rate %.1f; want 4 refused, none signed in", s.Logins, s.Outcomes, s.Rate)
	}
	if inv := rep.Invariants; inv == nil || inv.RunUsers != 0 || inv.CreatedAnswers != 0 || !inv.UsersOK || !inv.SeatsOK {
		t.Errorf("invariants: %+v", inv)
	}
}
