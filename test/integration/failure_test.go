package integration

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/jitprov/jitprov/events"
	"github.com/jitprov/jitprov/internal/bus"
	"github.com/jitprov/jitprov/internal/store/postgres"
	"github.com/jitprov/jitprov/internal/testenv"
)

// The database goes away while people sign in: their logins wait in
// JetStream, are retried with backoff, and are all provisioned once the
// database is back. None is lost, none doubled.
func TestDatabaseOutageLosesNoLogin(t *testing.T) {
	e := newEnv(t)
	e.apply(org("acme", 100))

	// The provisioner reaches Postgres through a proxy we can cut.
	host, port := pgHostPort(t, e.dbURL)
	proxy := testenv.NewProxy(t, host+":"+port)
	viaProxy := strings.Replace(e.dbURL, host+":"+port, proxy.Addr(), 1)
	s, err := postgres.Open(context.Background(), viaProxy, postgres.Options{MaxConns: 4})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	p := e.startProvisionerOn(s, 4)
	_ = p
	c := e.client()

	proxy.Cut()
	const n = 20
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			_, errs[i] = c.Provision(ctx, identity("acme", fmt.Sprintf("p%d", i)))
		})
	}
	wg.Wait()
	for i, err := range errs {
		if !errors.Is(err, bus.ErrPending) {
			t.Fatalf("login %d during the outage: got %v, want ErrPending (accepted, answer pending)", i, err)
		}
	}
	if got := e.count(`SELECT count(*) FROM users`); got != 0 {
		t.Fatalf("%d users created while the database was unreachable", got)
	}
	proxy.Restore()
	testenv.WaitFor(t, 60*time.Second, "every login created its user and none is pending", func() bool { return e.count(`SELECT count(*) FROM users`) == n && e.pendingLogins() == 0 })
	if got := e.count(`SELECT seats_used FROM organizations`); got != n {
		t.Errorf("seats_used = %d, want %d", got, n)
	}
	if got := e.collect(bus.StreamUsers, "jit.user.created.>", n, 20*time.Second); len(got) != n {
		t.Errorf("%d user.created, want %d", len(got), n)
	}
}

// A full LOGINS stream refuses new logins with a clear error instead of
// dropping accepted ones.
func TestFullStreamRefusesNewLogins(t *testing.T) {
	e := newEnv(t)
	e.apply(org("acme", 10))
	topo := e.topo
	topo.LoginsMaxBytes = 2048 // a couple of logins
	if err := bus.Ensure(context.Background(), e.js, topo); err != nil {
		t.Fatal(err)
	}
	c := e.client() // no provisioner runs: logins pile up
	var refused error
	accepted := 0
	for i := range 20 {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		_, err := c.Provision(ctx, identity("acme", fmt.Sprintf("q%d", i)))
		cancel()
		if errors.Is(err, bus.ErrNotAccepted) {
			refused = err
			break
		}
		if !errors.Is(err, bus.ErrPending) {
			t.Fatalf("login %d: %v", i, err)
		}
		accepted++
	}
	if refused == nil {
		t.Fatal("the full stream accepted every login")
	}
	if !strings.Contains(refused.Error(), "maximum bytes exceeded") {
		t.Errorf("error does not say the stream is full: %v", refused)
	}
	if got := e.pendingLogins(); got != uint64(accepted) {
		t.Errorf("%d logins in the stream, want the %d accepted (none dropped)", got, accepted)
	}
}

// Messages that break the contract are terminated at once, counted, and
// never reach the database; a forged reuse of a decided login id gets no
// answer and does not disclose the decision.
func TestInvalidLoginsAreTerminatedAndCounted(t *testing.T) {
	e := newEnv(t)
	e.apply(org("acme", 10))
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	p := e.startProvisionerWith(4, mp)
	c := e.client()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	good, err := c.Provision(ctx, identity("acme", "heidi"))
	if err != nil || good.Outcome != events.OutcomeCreated {
		t.Fatalf("valid login: %+v %v", good, err)
	}
	inbox := nats.NewInbox()
	replies, err := e.nc.SubscribeSync(inbox)
	if err != nil {
		t.Fatal(err)
	}
	publish := func(m *nats.Msg) {
		t.Helper()
		m.Header.Set(events.HeaderReplyTo, inbox)
		if _, err := e.js.PublishMsg(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	// Not a CloudEvent at all.
	publish(&nats.Msg{Subject: "jit.login.first-seen.acme", Header: nats.Header{}, Data: []byte("hello")})
	// Valid CloudEvent, data breaking the schema.
	bad := mustEncode(t, identity("acme", "x"), func(m *nats.Msg) { m.Data = []byte(`{"organization_id":"acme"}`) })
	publish(bad)
	// A login for acme published on another organisation's subject.
	other := mustEncode(t, identity("acme", "y"), func(m *nats.Msg) { m.Subject = "jit.login.first-seen.globex" })
	publish(other)
	// Heidi's decided login id, reused for mallory.
	reuse := mustEncode(t, identity("acme", "mallory"), func(m *nats.Msg) { m.Header.Set("ce-id", good.LoginID) })
	publish(reuse)

	testenv.WaitFor(t, 20*time.Second, "no login pending", func() bool { return e.pendingLogins() == 0 })
	// Stopped, the provisioner has finished every login it took; after a
	// round trip on its connection the server has handled all it sent,
	// answers included, and after one on ours any answer is in replies.
	p.stop(t)
	for _, nc := range []*nats.Conn{p.nc, e.nc} {
		if err := nc.Flush(); err != nil {
			t.Fatal(err)
		}
	}
	if m, err := replies.NextMsg(time.Millisecond); err == nil {
		t.Errorf("an invalid login was answered: %s", m.Data)
	}
	if got := e.count(`SELECT count(*) FROM users`); got != 1 {
		t.Errorf("users = %d, want only heidi", got)
	}
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(ctx, &rm); err != nil {
		t.Fatal(err)
	}
	if got := counter(rm, "jitprov.provisioner.invalid_events"); got != 4 {
		t.Errorf("invalid_events = %d, want 4", got)
	}
}

func mustEncode(t *testing.T, id events.Identity, edit func(*nats.Msg)) *nats.Msg {
	t.Helper()
	ev, err := events.New(events.TypeLoginFirstSeen, "/jitprov/test", "", id)
	if err != nil {
		t.Fatal(err)
	}
	m, err := events.Encode(context.Background(), ev, "jit.login.first-seen."+id.OrganizationID)
	if err != nil {
		t.Fatal(err)
	}
	edit(m)
	return m
}

func counter(rm metricdata.ResourceMetrics, name string) int64 {
	var total int64
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if sum, ok := m.Data.(metricdata.Sum[int64]); ok && m.Name == name {
				for _, dp := range sum.DataPoints {
					total += dp.Value
				}
			}
		}
	}
	return total
}

// Stopping a provisioner (SIGTERM) while logins are in flight finishes
// them: every accepted login is decided exactly once.
func TestShutdownDrainsInFlightLogins(t *testing.T) {
	e := newEnv(t)
	e.apply(org("acme", 1000))
	p := e.startProvisioner(8)
	c := e.client()
	const n = 200
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			_, _ = c.Provision(ctx, identity("acme", fmt.Sprintf("d%d", i)))
		})
	}
	// Stop the replica mid-stream, with logins in flight.
	testenv.WaitFor(t, 20*time.Second, "20 decisions stored", func() bool { return e.count(`SELECT count(*) FROM provisioning_decisions`) >= 20 })
	p.stop(t)
	wg.Wait()
	decided := e.count(`SELECT count(*) FROM provisioning_decisions`)
	// What the stopped replica did not take is still in the stream; a new
	// replica finishes it.
	e.startProvisioner(8)
	testenv.WaitFor(t, 60*time.Second, "every login created its user and none is pending", func() bool { return e.count(`SELECT count(*) FROM users`) == n && e.pendingLogins() == 0 })
	if got := e.count(`SELECT count(*) FROM provisioning_decisions`); got != n {
		t.Errorf("%d decisions, want %d", got, n)
	}
	t.Logf("%d of %d logins decided before the first replica stopped", decided, n)
	if got := e.collect(bus.StreamUsers, "jit.user.created.>", n, 20*time.Second); len(got) != n {
		t.Errorf("%d user.created, want %d", len(got), n)
	}
}

// An operator deletes the provisioners' consumer: a replica must not stay
// up looking healthy while consuming nothing. It exits with an error, and
// its next start re-creates the consumer.
func TestDeletedConsumerStopsTheProvisioner(t *testing.T) {
	e := newEnv(t)
	e.apply(org("acme", 10))
	p := e.startProvisioner(2)
	c := e.client()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := c.Provision(ctx, identity("acme", "judy")); err != nil {
		t.Fatal(err)
	}
	if err := e.js.DeleteConsumer(ctx, bus.StreamLogins, bus.ConsumerProvisioner); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-p.done:
		if err == nil || !strings.Contains(err.Error(), "stopped while running") {
			t.Fatalf("provisioner returned %v, want an error saying its consumer stopped", err)
		}
		p.done <- nil
	case <-time.After(20 * time.Second):
		t.Fatal("the provisioner kept running without its consumer")
	}
	// A restart re-creates the consumer and serves again.
	e.startProvisioner(2)
	res, err := c.Provision(ctx, identity("acme", "kim"))
	if err != nil || res.Outcome != events.OutcomeCreated {
		t.Fatalf("after restart: %+v, %v", res, err)
	}
}
