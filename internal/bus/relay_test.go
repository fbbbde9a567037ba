package bus_test

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/jitprov/jitprov/events"
	"github.com/jitprov/jitprov/internal/bus"
	"github.com/jitprov/jitprov/internal/store"
	"github.com/jitprov/jitprov/internal/store/postgres"
	"github.com/jitprov/jitprov/internal/testenv"
)

// outboxEvent renders a user.created or seats.exhausted event as an
// outbox row, as a decision would.
func outboxEvent(t *testing.T, typ events.Type, org string, i int) store.OutboxMessage {
	t.Helper()
	var data any
	switch typ {
	case events.TypeSeatsExhausted:
		data = events.SeatsExhausted{OrganizationID: org, MaxSeats: 1, SeatsUsed: 1, ConnectionID: "idp",
			ExternalID: fmt.Sprintf("ext-%d", i), LoginID: fmt.Sprintf("login-%d", i)}
	default:
		now := time.Now().UTC().Truncate(time.Second)
		data = events.UserCreated{LoginID: fmt.Sprintf("login-%d", i), User: events.User{
			ID: "0190a000-0000-7000-8000-" + fmt.Sprintf("%012d", i), OrganizationID: org, Role: "member",
			Status: "active", CreatedBy: "jit", CreatedAt: now, UpdatedAt: now,
		}}
	}
	ev, err := events.New(typ, "/jitprov/test-provisioner", "", data)
	if err != nil {
		t.Fatal(err)
	}
	subject, err := events.Subject(typ, org)
	if err != nil {
		t.Fatal(err)
	}
	msg, err := events.Encode(context.Background(), ev, subject)
	if err != nil {
		t.Fatal(err)
	}
	return store.OutboxMessage{EventID: ev.ID(), Subject: subject, Header: msg.Header, Data: msg.Data}
}

func appendOutbox(t *testing.T, s store.Store, msgs ...store.OutboxMessage) {
	t.Helper()
	err := s.InTx(testContext(t, 10*time.Second), func(ctx context.Context, tx store.Tx) error {
		return tx.AppendOutbox(ctx, msgs...)
	})
	if err != nil {
		t.Fatal(err)
	}
}

func unsent(t *testing.T, s *postgres.Store) int {
	t.Helper()
	var n int
	if err := s.Pool().QueryRow(context.Background(), `SELECT count(*) FROM outbox WHERE sent_at IS NULL`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// readStream returns every message of stream, in stream order.
func readStream(t *testing.T, js jetstream.JetStream, stream string) []*jetstream.RawStreamMsg {
	t.Helper()
	ctx := testContext(t, 10*time.Second)
	s, err := js.Stream(ctx, stream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var out []*jetstream.RawStreamMsg
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if err != nil {
			if errors.Is(err, jetstream.ErrMsgNotFound) {
				continue
			}
			t.Fatal(err)
		}
		out = append(out, m)
	}
	return out
}

type runningRelay struct {
	relay  *bus.Relay
	cancel context.CancelFunc
	done   chan error
}

func startRelay(t *testing.T, s bus.Outbox, js jetstream.JetStream, configure func(*bus.Relay)) *runningRelay {
	t.Helper()
	r := bus.NewRelay(s, js, testenv.Logger(t))
	if configure != nil {
		configure(r)
	}
	ctx, cancel := context.WithCancel(context.Background())
	rr := &runningRelay{relay: r, cancel: cancel, done: make(chan error, 1)}
	go func() { rr.done <- r.Run(ctx) }()
	t.Cleanup(func() { rr.stop(t) })
	return rr
}

// stop cancels the relay and waits for Run to return.
func (rr *runningRelay) stop(t *testing.T) {
	t.Helper()
	rr.cancel()
	select {
	case err, ok := <-rr.done:
		if ok && err != nil {
			t.Errorf("Run = %v, want nil", err)
		}
		if ok {
			close(rr.done)
		}
	case <-time.After(7 * time.Second):
		t.Fatal("Run did not return within 7s of the cancellation")
	}
}

func TestRelayPublishesTheOutboxOnce(t *testing.T) {
	tests := []struct {
		name   string
		users  int
		alerts int
		batch  int
	}{
		{"one event", 1, 0, 0},
		{"users and alerts", 5, 3, 0},
		{"more than a batch", 23, 4, 5},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, _ := testenv.Store(t)
			_, js := newJetStream(t)
			ensure(t, js)

			var want []store.OutboxMessage
			for i := range tc.users {
				want = append(want, outboxEvent(t, events.TypeUserCreated, "acme", i))
			}
			for i := range tc.alerts {
				want = append(want, outboxEvent(t, events.TypeSeatsExhausted, "initech", i))
			}
			// In two transactions, as two decisions would.
			half := len(want) / 2
			appendOutbox(t, s, want[:half]...)
			appendOutbox(t, s, want[half:]...)

			var published atomic.Int64
			rr := startRelay(t, s, js, func(r *bus.Relay) {
				r.Interval = time.Hour // only Wake makes it look
				if tc.batch > 0 {
					r.Batch = tc.batch
				}
				r.OnPublished = func(n int) { published.Add(int64(n)) }
			})
			rr.relay.Wake()
			// OnPublished is called after the round that marked the rows
			// sent has returned: wait for both, not for the rows alone.
			testenv.WaitFor(t, 15*time.Second, "outbox rows marked sent and reported", func() bool {
				return unsent(t, s) == 0 && published.Load() >= int64(len(want))
			})
			if got := published.Load(); got != int64(len(want)) {
				t.Errorf("OnPublished reported %d events, want %d", got, len(want))
			}
			checkRelayed(t, js, want)

			// A relay that published but died before marking the rows sent
			// publishes them again: JetStream must drop the copies.
			if _, err := s.Pool().Exec(context.Background(), `UPDATE outbox SET sent_at = NULL`); err != nil {
				t.Fatal(err)
			}
			rr.relay.Wake()
			testenv.WaitFor(t, 15*time.Second, "re-published rows marked sent", func() bool { return unsent(t, s) == 0 })
			checkRelayed(t, js, want)

			start := time.Now()
			rr.stop(t)
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("Run took %s to return after the cancellation", d)
			}
		})
	}
}

// checkRelayed asserts every message of want is in its stream exactly once,
// with Nats-Msg-Id = event id, in outbox order.
func checkRelayed(t *testing.T, js jetstream.JetStream, want []store.OutboxMessage) {
	t.Helper()
	byStream := map[string][]store.OutboxMessage{}
	for _, m := range want {
		stream := bus.StreamUsers
		if m.Subject[:len("jit.alert.")] == "jit.alert." {
			stream = bus.StreamAlerts
		}
		byStream[stream] = append(byStream[stream], m)
	}
	for _, stream := range []string{bus.StreamUsers, bus.StreamAlerts} {
		got := readStream(t, js, stream)
		w := byStream[stream]
		if len(got) != len(w) {
			t.Errorf("%s holds %d messages, want %d", stream, len(got), len(w))
			continue
		}
		for i, m := range got {
			if id := m.Header.Get(jetstream.MsgIDHeader); id != w[i].EventID {
				t.Errorf("%s message %d: Nats-Msg-Id %q, want %q", stream, i, id, w[i].EventID)
			}
			if m.Subject != w[i].Subject {
				t.Errorf("%s message %d: subject %q, want %q", stream, i, m.Subject, w[i].Subject)
			}
			ev, err := events.Decode(&nats.Msg{Subject: m.Subject, Header: m.Header, Data: m.Data})
			if err != nil {
				t.Errorf("%s message %d does not decode: %v", stream, i, err)
				continue
			}
			if ev.ID() != w[i].EventID {
				t.Errorf("%s message %d: event id %q, want %q", stream, i, ev.ID(), w[i].EventID)
			}
		}
	}
}

func TestRelayPublishesWithoutBeingWoken(t *testing.T) {
	s, _ := testenv.Store(t)
	_, js := newJetStream(t)
	ensure(t, js)
	startRelay(t, s, js, func(r *bus.Relay) { r.Interval = 100 * time.Millisecond })
	want := []store.OutboxMessage{outboxEvent(t, events.TypeUserCreated, "acme", 1)}
	appendOutbox(t, s, want...)
	testenv.WaitFor(t, 10*time.Second, "the ticker relays the outbox", func() bool { return unsent(t, s) == 0 })
	checkRelayed(t, js, want)
}

// observedOutbox reports the result of each relay round on rounds.
type observedOutbox struct {
	bus.Outbox
	rounds chan relayRound
}

type relayRound struct {
	n   int
	err error
}

func observe(o bus.Outbox) observedOutbox {
	return observedOutbox{Outbox: o, rounds: make(chan relayRound, 64)}
}

func (o observedOutbox) RelayOutbox(ctx context.Context, limit int, publish func(context.Context, []store.OutboxMessage) (int, error)) (int, error) {
	n, err := o.Outbox.RelayOutbox(ctx, limit, publish)
	select {
	case o.rounds <- relayRound{n, err}:
	default: // nobody is looking
	}
	return n, err
}

// next waits for the next relay round.
func (o observedOutbox) next(t *testing.T) relayRound {
	t.Helper()
	select {
	case r := <-o.rounds:
		return r
	case <-time.After(30 * time.Second):
		t.Fatal("no relay round within 30s")
		return relayRound{}
	}
}

func TestRelayKeepsEventsNoStreamAccepts(t *testing.T) {
	s, _ := testenv.Store(t)
	_, js := newJetStream(t)
	// No Ensure: no stream takes jit.user.>, so no PubAck ever comes.
	msg := outboxEvent(t, events.TypeUserCreated, "acme", 1)
	appendOutbox(t, s, msg)
	o := observe(s)
	rr := startRelay(t, o, js, func(r *bus.Relay) { r.Interval = time.Hour })
	rr.relay.Wake()
	if r := o.next(t); r.err == nil || r.n != 0 {
		t.Fatalf("relay round with no stream: %d published, err %v; want none and an error", r.n, r.err)
	}
	if n := unsent(t, s); n != 1 {
		t.Fatalf("%d unsent rows after a failed publish, want the event kept", n)
	}

	// Once the streams exist, the next round sends it.
	ensure(t, js)
	rr.relay.Wake()
	testenv.WaitFor(t, 15*time.Second, "the kept event relayed", func() bool { return unsent(t, s) == 0 })
	checkRelayed(t, js, []store.OutboxMessage{msg})
}

func TestRelayRunReturnsPromptlyWhenCancelled(t *testing.T) {
	s, _ := testenv.Store(t)
	_, js := newJetStream(t)
	ensure(t, js)
	o := observe(s)
	rr := startRelay(t, o, js, nil)
	rr.relay.Wake()
	o.next(t) // Run is in its loop
	start := time.Now()
	rr.stop(t)
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("Run took %s to return", d)
	}
}

func TestRelayDrainsOnShutdown(t *testing.T) {
	s, _ := testenv.Store(t)
	_, js := newJetStream(t)
	ensure(t, js)
	o := observe(s)
	rr := startRelay(t, o, js, func(r *bus.Relay) { r.Interval = time.Hour })
	rr.relay.Wake()
	o.next(t) // Run is in its loop, and has sent nothing
	// Decided just before shutdown, never woken for: the final drain sends it.
	want := []store.OutboxMessage{outboxEvent(t, events.TypeUserCreated, "acme", 1), outboxEvent(t, events.TypeSeatsExhausted, "acme", 2)}
	appendOutbox(t, s, want...)
	rr.stop(t)
	if n := unsent(t, s); n != 0 {
		t.Errorf("%d rows unsent after the final drain", n)
	}
	checkRelayed(t, js, want)
}
