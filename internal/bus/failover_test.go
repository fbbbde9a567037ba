package bus_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/jitprov/jitprov/events"
	"github.com/jitprov/jitprov/internal/bus"
	"github.com/jitprov/jitprov/internal/testenv"
)

// storedLogins is the number of logins stream LOGINS holds.
func storedLogins(t *testing.T, js jetstream.JetStream) uint64 {
	t.Helper()
	ctx := testContext(t, 10*time.Second)
	s, err := js.Stream(ctx, bus.StreamLogins)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Msgs
}

// storedOnce answers every login as a provisioner would and records the
// stream sequences each login id was stored under.
type storedOnce struct {
	mu   sync.Mutex
	seqs map[string]map[uint64]bool
}

func answerAll(t *testing.T, nc *nats.Conn, js jetstream.JetStream) *storedOnce {
	t.Helper()
	so := &storedOnce{seqs: map[string]map[uint64]bool{}}
	responder(t, nc, js, func(ev events.Event, seq uint64) events.ProvisioningResult {
		so.mu.Lock()
		if so.seqs[ev.ID()] == nil {
			so.seqs[ev.ID()] = map[uint64]bool{}
		}
		so.seqs[ev.ID()][seq] = true
		so.mu.Unlock()
		return result(ev.ID())
	})
	return so
}

// count is the number of logins that reached the provisioner.
func (so *storedOnce) count() int {
	so.mu.Lock()
	defer so.mu.Unlock()
	return len(so.seqs)
}

// expect checks the end of a burst: no login refused or left unconfirmed,
// and each reached the provisioner, stored exactly once.
func (so *storedOnce) expect(t *testing.T, errs []error) {
	t.Helper()
	checkNoneRefused(t, errs)
	waitUntil(t, func() bool { return so.count() == len(errs) })
	so.check(t, len(errs))
}

// check reports logins stored more than once, or never.
func (so *storedOnce) check(t *testing.T, want int) {
	t.Helper()
	so.mu.Lock()
	defer so.mu.Unlock()
	if len(so.seqs) != want {
		t.Errorf("%d logins reached the provisioner, want %d", len(so.seqs), want)
	}
	for id, seqs := range so.seqs {
		if len(seqs) != 1 {
			t.Errorf("login %s was stored %d times (stream sequences %v), want once", id, len(seqs), seqs)
		}
	}
}

// burst publishes n logins of distinct people from workers goroutines,
// each with deadline, and calls midway once half of them were answered
// (whatever their answer). It returns the errors by login.
func burst(t *testing.T, c *bus.Client, n, workers int, deadline time.Duration, midway func()) []error {
	t.Helper()
	errs := make([]error, n)
	var next, done atomic.Int64
	var once sync.Once
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				ctx, cancel := context.WithTimeout(context.Background(), deadline)
				_, errs[i] = c.Provision(ctx, identity("acme", fmt.Sprintf("person-%04d", i)))
				cancel()
				if done.Add(1) == int64(n/2) {
					once.Do(midway)
				}
			}
		})
	}
	wg.Wait()
	return errs
}

// checkNoneRefused fails for each login that was refused or left
// unconfirmed: both are what a failover must not cost. ErrPending (stored,
// answer late) is allowed: the consumer fails over too.
func checkNoneRefused(t *testing.T, errs []error) {
	t.Helper()
	refused := 0
	for i, err := range errs {
		if err == nil || (errors.Is(err, bus.ErrPending) && !errors.Is(err, bus.ErrUnconfirmed)) {
			continue
		}
		if refused++; refused <= 5 {
			t.Errorf("login %d: %v", i, err)
		}
	}
	if refused > 0 {
		t.Errorf("%d of %d logins refused or unconfirmed", refused, len(errs))
	}
}

// A stream leader failing over must cost the people signing in a retry,
// not their login: no login is refused, and each is stored exactly once.
func TestProvisionRetriesThroughAStreamLeaderFailover(t *testing.T) {
	cluster := testenv.NATSCluster(t, 3)
	nc := cluster.Connect(t)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	topo := bus.DefaultTopology()
	topo.Replicas = 3
	if err := bus.Ensure(testContext(t, 60*time.Second), js, topo); err != nil {
		t.Fatal(err)
	}
	stored := answerAll(t, cluster.Connect(t), js)
	c := newClient(t, nc, js)

	const n = 300
	var killed string
	// A generous deadline: on a loaded machine an election can take
	// longer than the edge's default of 5s (the chaos suite measures
	// that); what this test holds is that the login is retried.
	errs := burst(t, c, n, 16, 30*time.Second, func() {
		leader := cluster.StreamLeader(js, bus.StreamLogins)
		killed = fmt.Sprintf("n%d", leader+1)
		cluster.Stop(leader)
	})
	t.Logf("stopped the LOGINS leader %s midway", killed)
	stored.expect(t, errs)
}

// Two nodes of three away for a while: the stream has no leader (no
// quorum) until one is back. Logins published meanwhile wait for it,
// inside their deadline, rather than being refused.
func TestProvisionRetriesWhileTheStreamHasNoLeader(t *testing.T) {
	cluster := testenv.NATSCluster(t, 3)
	js, err := jetstream.New(cluster.Connect(t))
	if err != nil {
		t.Fatal(err)
	}
	topo := bus.DefaultTopology()
	topo.Replicas = 3
	if err := bus.Ensure(testContext(t, 60*time.Second), js, topo); err != nil {
		t.Fatal(err)
	}
	leader := cluster.StreamLeader(js, bus.StreamLogins)
	other := (leader + 1) % 3
	survivor := 3 - leader - other
	// The client and the provisioner both sit on the node that stays.
	nc := cluster.ConnectTo(t, survivor)
	js, err = jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	stored := answerAll(t, cluster.ConnectTo(t, survivor), js)
	c := newClient(t, nc, js)

	const n = 100
	errs := burst(t, c, n, 8, 30*time.Second, func() {
		cluster.Stop(leader)
		cluster.Stop(other)
		// The length of the fault, not a wait for a result.
		time.AfterFunc(2*time.Second, func() { cluster.Start(other) })
	})
	stored.expect(t, errs)
}

// A NATS server restarting while people sign in: the logins published
// while it is away are stored when it is back, within their deadline.
func TestProvisionRetriesThroughANATSRestart(t *testing.T) {
	single := testenv.NATSCluster(t, 1)
	nc := single.Connect(t)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ensure(t, js)
	stored := answerAll(t, single.Connect(t), js)
	c := newClient(t, nc, js)

	const n = 100
	errs := burst(t, c, n, 8, 30*time.Second, func() {
		away := nc.StatusChanged(nats.RECONNECTING)
		single.Stop(0)
		<-away // back once the client has noticed the outage
		single.Start(0)
	})
	stored.expect(t, errs)
}

// When NATS stays away past the deadline, a login whose publish may have
// reached it is reported unconfirmed — not refused, since it may be
// stored — and PublishLogin stores it, once, when NATS is back.
func TestUnconfirmedLoginIsStoredOnceWhenPublishedAgain(t *testing.T) {
	single := testenv.NATSCluster(t, 1)
	nc := single.Connect(t)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ensure(t, js)
	c := newClient(t, nc, js)

	single.Stop(0)
	ev := loginEvent(t, identity("acme", "alice"))
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	_, err = c.ProvisionEvent(ctx, ev)
	cancel()
	if !errors.Is(err, bus.ErrUnconfirmed) || !errors.Is(err, bus.ErrPending) {
		t.Fatalf("ProvisionEvent with NATS away = %v, want ErrUnconfirmed (also ErrPending)", err)
	}
	single.Start(0)
	for range 2 { // the second is a duplicate
		if err := c.PublishLogin(testContext(t, 15*time.Second), ev); err != nil {
			t.Fatalf("PublishLogin once NATS is back: %v", err)
		}
	}
	if got := storedLogins(t, js); got != 1 {
		t.Errorf("LOGINS holds %d logins, want 1", got)
	}
}

// waitUntil polls cond until it holds, failing the test after a minute.
func waitUntil(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within a minute")
		}
		time.Sleep(20 * time.Millisecond) // polls a condition
	}
}
