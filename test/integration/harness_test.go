// Package integration runs the whole pipeline — JetStream request-reply,
// provisioners, outbox relay — against a real PostgreSQL database and a real
// (embedded) NATS server.
package integration

import (
	"context"
	"errors"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/metric"
	noopmetric "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/trace"
	nooptrace "go.opentelemetry.io/otel/trace/noop"

	"github.com/jitprov/jitprov/events"
	"github.com/jitprov/jitprov/internal/bus"
	"github.com/jitprov/jitprov/internal/provisioner"
	"github.com/jitprov/jitprov/internal/store"
	"github.com/jitprov/jitprov/internal/store/postgres"
	"github.com/jitprov/jitprov/internal/testenv"
)

// env is one test's pipeline: a database, a NATS server, and provisioners.
type env struct {
	t     *testing.T
	store *postgres.Store
	dbURL string
	ns    *server.Server
	nc    *nats.Conn
	js    jetstream.JetStream
	topo  bus.Topology
	// maxAttempts, when set, is the provisioners' Config.MaxAttempts.
	maxAttempts int
	// known, when set, is where the provisioners record decided identities.
	known provisioner.KnownIdentities

	mu    sync.Mutex
	procs []*proc
}

func newEnv(t *testing.T) *env {
	t.Helper()
	s, dbURL := testenv.Store(t)
	ns := testenv.NATS(t)
	nc := testenv.Connect(t, ns)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	topo := bus.DefaultTopology()
	topo.AckWait = 2 * time.Second // quick redelivery in crash tests
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := bus.Ensure(ctx, js, topo); err != nil {
		t.Fatal(err)
	}
	return &env{t: t, store: s, dbURL: dbURL, ns: ns, nc: nc, js: js, topo: topo}
}

// org is a test organisation with one SAML connection "idp".
func org(id string, seats int) store.Organization {
	return store.Organization{
		ID: id, Name: "Org " + id, MaxSeats: seats,
		Roles: []string{"viewer", "member", "manager", "admin"}, DefaultRole: "member", JITRoleCeiling: "manager",
		UpdatePolicy: store.PreferIdP, LinkByEmail: store.LinkNever,
	}
}

func (e *env) apply(orgs ...store.Organization) {
	e.t.Helper()
	var conns []store.Connection
	for _, o := range orgs {
		conns = append(conns, store.Connection{OrganizationID: o.ID, ID: "idp", Protocol: "saml"})
	}
	if err := e.store.ApplyOrganizations(context.Background(), orgs, conns); err != nil {
		e.t.Fatal(err)
	}
}

// proc is one running provisioner, with its own NATS connection.
type proc struct {
	cancel context.CancelFunc
	done   chan error
	nc     *nats.Conn // the provisioner's connection
}

// startProvisioner runs provisioner.Run as a replica would.
func (e *env) startProvisioner(workers int) *proc {
	return e.run(e.store, workers, noopmetric.NewMeterProvider(), nooptrace.NewTracerProvider())
}

// startProvisionerOn runs a provisioner on another store (e.g. through a proxy).
func (e *env) startProvisionerOn(s store.Store, workers int) *proc {
	return e.run(s, workers, noopmetric.NewMeterProvider(), nooptrace.NewTracerProvider())
}

// startProvisionerWith runs a provisioner reporting to mp.
func (e *env) startProvisionerWith(workers int, mp metric.MeterProvider) *proc {
	return e.run(e.store, workers, mp, nooptrace.NewTracerProvider())
}

// startProvisionerTraced runs a provisioner recording spans with tp.
func (e *env) startProvisionerTraced(workers int, tp trace.TracerProvider) *proc {
	return e.run(e.store, workers, noopmetric.NewMeterProvider(), tp)
}

func (e *env) run(s store.Store, workers int, mp metric.MeterProvider, tp trace.TracerProvider) *proc {
	e.t.Helper()
	nc := testenv.Connect(e.t, e.ns)
	ctx, cancel := context.WithCancel(context.Background())
	p := &proc{cancel: cancel, done: make(chan error, 1), nc: nc}
	go func() {
		p.done <- provisioner.Run(ctx, provisioner.Config{
			Workers: workers, DecisionTimeout: 5 * time.Second, DrainTimeout: 10 * time.Second, Topology: e.topo,
			MaxAttempts: e.maxAttempts,
		}, provisioner.Deps{Store: s, NATS: nc, Logger: testenv.Logger(e.t),
			Tracer: tp, Meter: mp, Known: e.known})
	}()
	e.mu.Lock()
	e.procs = append(e.procs, p)
	e.mu.Unlock()
	e.t.Cleanup(func() { p.stop(e.t) })
	return p
}

func (p *proc) stop(t *testing.T) {
	p.cancel()
	select {
	case err := <-p.done:
		if err != nil {
			t.Errorf("provisioner stopped with: %v", err)
		}
		p.done <- nil // later stop calls return at once
	case <-time.After(20 * time.Second):
		t.Errorf("provisioner did not stop within 20s")
	}
}

func (e *env) client() *bus.Client {
	e.t.Helper()
	c, err := bus.NewClient(testenv.Connect(e.t, e.ns), e.js, "/jitprov/test")
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { _ = c.Close() })
	return c
}

func identity(org, ext string) events.Identity {
	return events.Identity{
		OrganizationID: org, ConnectionID: "idp", Protocol: events.ProtocolSAML, ExternalID: ext,
		Email: ext + "@" + org + ".example", EmailVerified: true, GivenName: "Given " + ext,
		AuthenticatedAt: time.Now().UTC().Truncate(time.Second),
	}
}

// count runs a COUNT query.
func (e *env) count(query string, args ...any) int {
	e.t.Helper()
	var n int
	if err := e.store.Pool().QueryRow(context.Background(), query, args...).Scan(&n); err != nil {
		e.t.Fatalf("%s: %v", query, err)
	}
	return n
}

// collect reads the messages on subject filter of stream: want of them
// (or fewer, if they do not come within), then, once the outbox has
// nothing left to relay, every further one the stream holds.
func (e *env) collect(stream, filter string, want int, within time.Duration) []jetstream.Msg {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	c, err := e.js.OrderedConsumer(ctx, stream, jetstream.OrderedConsumerConfig{FilterSubjects: []string{filter}})
	if err != nil {
		e.t.Fatal(err)
	}
	var out []jetstream.Msg
	for len(out) < want {
		m, err := c.Next(jetstream.FetchMaxWait(time.Until(deadline(ctx))))
		if err != nil {
			if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout) || ctx.Err() != nil {
				break
			}
			e.t.Fatalf("read %s: %v", stream, err)
		}
		out = append(out, m)
	}
	// Anything beyond want would be a duplicate. Once every decided event
	// has left the outbox, the stream holds all there will be: count them
	// rather than wait for more.
	testenv.WaitFor(e.t, within, "the outbox relayed", func() bool { return e.count(`SELECT count(*) FROM outbox WHERE sent_at IS NULL`) == 0 })
	s, err := e.js.Stream(context.Background(), stream)
	if err != nil {
		e.t.Fatal(err)
	}
	info, err := s.Info(context.Background(), jetstream.WithSubjectFilter(filter))
	if err != nil {
		e.t.Fatal(err)
	}
	var stored uint64
	for _, n := range info.State.Subjects {
		stored += n
	}
	for uint64(len(out)) < stored {
		m, err := c.Next(jetstream.FetchMaxWait(within))
		if err != nil {
			e.t.Fatalf("read %s: %d of %d stored messages on %s: %v", stream, len(out), stored, filter, err)
		}
		out = append(out, m)
	}
	return out
}

func deadline(ctx context.Context) time.Time {
	d, _ := ctx.Deadline()
	return d
}

func mustf(t *testing.T, cond bool, format string, args ...any) {
	t.Helper()
	if !cond {
		t.Fatalf(format, args...)
	}
}

// pgHostPort splits the host and port out of a postgres:// URL.
func pgHostPort(t *testing.T, raw string) (string, string) {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return u.Hostname(), u.Port()
}
