package integration

import (
	"context"
	"errors"
	"sync"
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
	waitFor(t, func() bool {
		return e.count(`SELECT count(*) FROM provisioning_decisions`) == 1 && e.pendingLogins() == 0
	})
	if got := e.count(`SELECT count(*) FROM users`); got != 1 {
		t.Errorf("users = %d, want 1", got)
	}
	if got := e.count(`SELECT seats_used FROM organizations`); got != 1 {
		t.Errorf("seats_used = %d, want 1", got)
	}
	if got := e.collect(bus.StreamUsers, "jit.user.created.>", 1, 10*time.Second); len(got) != 1 {
		t.Errorf("user.created published %d times, want 1", len(got))
	}
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
	if got := e.count(`SELECT count(*) FROM users`); got != 1 {
		t.Errorf("users = %d, want 1", got)
	}
	if got := e.count(`SELECT seats_used FROM organizations`); got != 1 {
		t.Errorf("seats_used = %d, want 1", got)
	}
	if got := e.collect(bus.StreamUsers, "jit.user.created.>", 1, 10*time.Second); len(got) != 1 {
		t.Errorf("user.created published %d times, want 1", len(got))
	}
}

// A provisioner commits its decision and dies before acking: the login is
// redelivered to another provisioner, which answers from the stored
// decision. Still one user.
func TestCrashAfterCommitBeforeAck(t *testing.T) {
	e := newEnv(t)
	e.apply(org("acme", 10))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	// Publish the login with a reply inbox we watch.
	inbox := nats.NewInbox()
	replies, err := e.nc.SubscribeSync(inbox)
	if err != nil {
		t.Fatal(err)
	}
	ev, err := events.New(events.TypeLoginFirstSeen, "/jitprov/test", "", identity("acme", "dave"))
	if err != nil {
		t.Fatal(err)
	}
	msg, err := events.Encode(ctx, ev, "jit.login.first-seen.acme")
	if err != nil {
		t.Fatal(err)
	}
	msg.Header.Set(events.HeaderReplyTo, inbox)
	if _, err := e.js.PublishMsg(ctx, msg, jetstream.WithMsgID(ev.ID())); err != nil {
		t.Fatal(err)
	}

	// The doomed provisioner: takes the delivery, commits, never acks.
	cons, err := e.js.Consumer(ctx, bus.StreamLogins, bus.ConsumerProvisioner)
	if err != nil {
		t.Fatal(err)
	}
	batch, err := cons.Fetch(1, jetstream.FetchMaxWait(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	delivered := <-batch.Messages()
	if delivered == nil {
		t.Fatal("no delivery")
	}
	first, err := provisioner.NewDecider(e.store, testenv.Logger(t)).Decide(ctx, ev.ID(), identity("acme", "dave"))
	if err != nil || first.Outcome != events.OutcomeCreated {
		t.Fatalf("first decision: %+v, %v", first, err)
	}
	// ... and it is gone. A healthy provisioner takes over after AckWait.
	e.startProvisioner(2)
	reply, err := replies.NextMsg(20 * time.Second)
	if err != nil {
		t.Fatalf("no answer after redelivery: %v", err)
	}
	rev, err := events.Decode(reply)
	if err != nil {
		t.Fatal(err)
	}
	res, err := events.DataAs[events.ProvisioningResult](rev, events.TypeProvisioningResult)
	if err != nil {
		t.Fatal(err)
	}
	if res.Outcome != events.OutcomeCreated || res.User.ID != first.User.ID {
		t.Errorf("redelivery answered %+v, want the stored decision (created %s)", res, first.User.ID)
	}
	waitFor(t, func() bool { return e.pendingLogins() == 0 })
	if got := e.count(`SELECT count(*) FROM users`); got != 1 {
		t.Errorf("users = %d, want 1", got)
	}
	if got := e.collect(bus.StreamUsers, "jit.user.created.>", 1, 10*time.Second); len(got) != 1 {
		t.Errorf("user.created published %d times, want 1", len(got))
	}
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
	waitFor(t, func() bool { return e.count(`SELECT count(*) FROM outbox WHERE sent_at IS NULL`) == 0 })
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

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 20s")
		}
		time.Sleep(50 * time.Millisecond)
	}
}
