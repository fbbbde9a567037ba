package integration

import (
	"context"
	"errors"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/jitprov/jitprov/events"
	"github.com/jitprov/jitprov/internal/bus"
	"github.com/jitprov/jitprov/internal/provisioner"
	"github.com/jitprov/jitprov/internal/store"
	"github.com/jitprov/jitprov/internal/testenv"
)

// The same login event reaches the provisioners five times: one user, one
// seat, one user.created, and every answer is the same.
func TestSameEventFiveTimes(t *testing.T) {
	e := newEnv(t)
	e.apply(org("acme", 10))
	e.startProvisioner(4)
	e.startProvisioner(4)
	c := e.client()
	ev, err := events.New(events.TypeLoginFirstSeen, "/jitprov/test", "", identity("acme", "bob"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	// JetStream's duplicate window drops republished copies, so to reach the
	// provisioner five times the copies go in under distinct message ids,
	// as they would after the window or from a misbehaving publisher.
	for i := range 4 {
		msg, err := events.Encode(ctx, ev, "jit.login.first-seen.acme")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.js.PublishMsg(ctx, msg, jetstream.WithMsgID(ev.ID()+"-copy-"+string(rune('a'+i)))); err != nil {
			t.Fatal(err)
		}
	}
	first, err := c.ProvisionEvent(ctx, ev)
	if err != nil {
		t.Fatal(err)
	}
	if first.Outcome != events.OutcomeCreated && first.Outcome != events.OutcomeExisting {
		t.Fatalf("got %+v, want the user", first)
	}
	// Publishing the same id again is dropped by JetStream's duplicate
	// window: no second decision, and so no second answer.
	short, cancelShort := context.WithTimeout(ctx, time.Second)
	defer cancelShort()
	if _, err := c.ProvisionEvent(short, ev); !errors.Is(err, bus.ErrPending) {
		t.Errorf("republished login: got %v, want ErrPending", err)
	}
	testenv.WaitFor(t, 20*time.Second, "one decision stored and no login pending", func() bool {
		return e.count(`SELECT count(*) FROM provisioning_decisions`) == 1 && e.pendingLogins() == 0
	})
	e.assertOnePerson()
}

// The same person arrives in five different login events at once (five
// browser tabs): one user, one seat, one user.created.
func TestSamePersonFiveLoginsAtOnce(t *testing.T) {
	e := newEnv(t)
	e.apply(org("acme", 10))
	for range 3 {
		e.startProvisioner(4)
	}
	c := e.client()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	results := make([]events.ProvisioningResult, 5)
	errs := make([]error, 5)
	for i := range 5 {
		wg.Go(func() { results[i], errs[i] = c.Provision(ctx, identity("acme", "carol")) })
	}
	wg.Wait()
	created := 0
	for i := range 5 {
		if errs[i] != nil {
			t.Fatalf("login %d: %v", i, errs[i])
		}
		if results[i].Outcome == events.OutcomeCreated {
			created++
		}
		if results[i].User == nil || results[i].User.ID != results[0].User.ID {
			t.Errorf("login %d answered %+v, want user %s", i, results[i], results[0].User.ID)
		}
	}
	if created != 1 {
		t.Errorf("%d logins answered created, want 1", created)
	}
	e.assertOnePerson()
}

// A provisioner commits its decision and dies before acking: the login is
// redelivered, and answered from the stored decision. Still one user.
func TestCrashAfterCommitBeforeAck(t *testing.T) {
	e := newEnv(t)
	e.apply(org("acme", 10))
	// The worker that commits the first decision dies right after the
	// commit, before it can ack or answer (runtime.Goexit ends just that
	// goroutine, as a crash of the replica would end all of them).
	crashing := &crashAfterCommit{Store: e.store}
	crashing.armed.Store(true)
	e.startProvisionerOn(crashing, 2)
	c := e.client()

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := c.Provision(ctx, identity("acme", "dave"))
	if err != nil {
		t.Fatalf("no answer after the crash: %v", err)
	}
	if !crashing.crashed.Load() {
		t.Fatal("the worker did not crash: the test proves nothing")
	}
	if res.Outcome != events.OutcomeCreated {
		t.Errorf("redelivery answered %+v, want the stored decision (created)", res)
	}
	testenv.WaitFor(t, 20*time.Second, "no login pending", func() bool { return e.pendingLogins() == 0 })
	e.assertOnePerson()
}

// crashAfterCommit is a store whose first committed decision kills the
// goroutine that made it.
type crashAfterCommit struct {
	store.Store
	armed, crashed atomic.Bool
}

func (c *crashAfterCommit) InTx(ctx context.Context, fn func(context.Context, store.Tx) error) error {
	err := c.Store.InTx(ctx, fn)
	if err == nil && c.armed.CompareAndSwap(true, false) {
		c.crashed.Store(true)
		runtime.Goexit()
	}
	return err
}

// The relay publishes events and dies before marking them sent: the next
// relay publishes them again, and JetStream keeps one copy per event id.
func TestRelayCrashAfterPublishBeforeMark(t *testing.T) {
	e := newEnv(t)
	e.apply(org("acme", 10))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	d := provisioner.NewDecider(e.store, testenv.Logger(t))
	for _, who := range []string{"erin", "frank", "grace"} {
		if _, err := d.Decide(ctx, who+"-login", identity("acme", who)); err != nil {
			t.Fatal(err)
		}
	}
	crash := errors.New("relay killed")
	n, err := e.store.RelayOutbox(ctx, 100, func(ctx context.Context, msgs []store.OutboxMessage) (int, error) {
		for _, m := range msgs {
			if _, err := e.js.PublishMsg(ctx, &nats.Msg{Subject: m.Subject, Header: m.Header, Data: m.Data},
				jetstream.WithMsgID(m.EventID)); err != nil {
				return 0, err
			}
		}
		return 0, crash // published, but dies before the mark
	})
	if !errors.Is(err, crash) || n != 0 {
		t.Fatalf("crashed relay: n=%d err=%v", n, err)
	}
	if got := e.count(`SELECT count(*) FROM outbox WHERE sent_at IS NULL`); got != 3 {
		t.Fatalf("%d events unsent after the crash, want 3", got)
	}
	// A new relay (a provisioner replica) takes over.
	e.startProvisioner(1)
	testenv.WaitFor(t, 20*time.Second, "the outbox relayed", func() bool { return e.count(`SELECT count(*) FROM outbox WHERE sent_at IS NULL`) == 0 })
	msgs := e.collect(bus.StreamUsers, "jit.user.created.>", 3, 10*time.Second)
	seen := map[string]int{}
	for _, m := range msgs {
		seen[m.Headers().Get("ce-id")]++
	}
	if len(msgs) != 3 || len(seen) != 3 {
		t.Errorf("consumed %d user.created with %d distinct ids, want 3 and 3: %v", len(msgs), len(seen), seen)
	}
}

// pendingLogins is how many logins wait in the LOGINS work queue.
func (e *env) pendingLogins() uint64 {
	s, err := e.js.Stream(context.Background(), bus.StreamLogins)
	if err != nil {
		e.t.Fatal(err)
	}
	info, err := s.Info(context.Background())
	if err != nil {
		e.t.Fatal(err)
	}
	return info.State.Msgs
}

// assertOnePerson checks the end state of every idempotency test: one user,
// one seat, one user.created.
func (e *env) assertOnePerson() {
	e.t.Helper()
	if got := e.count(`SELECT count(*) FROM users`); got != 1 {
		e.t.Errorf("users = %d, want 1", got)
	}
	if got := e.count(`SELECT seats_used FROM organizations`); got != 1 {
		e.t.Errorf("seats_used = %d, want 1", got)
	}
	if got := e.collect(bus.StreamUsers, "jit.user.created.>", 1, 10*time.Second); len(got) != 1 {
		e.t.Errorf("user.created published %d times, want 1", len(got))
	}
}
