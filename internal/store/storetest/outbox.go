package storetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/jitprov/jitprov/internal/store"
)

var outboxTests = []subTest{
	{"EmptyOutbox", testRelayEmpty},
	{"OrderAndRoundTrip", testRelayOrder},
	{"MinimalMessage", testRelayMinimalMessage},
	{"NilHeaderAndData", testRelayNilHeaderAndData},
	{"PartialPublishMarksOnlySent", testRelayPartial},
	{"PublishErrorMarksNothing", testRelayPublishError},
	{"CanceledWhilePublishingMarksSent", testRelayCanceled},
	{"ConcurrentRelaysNeverShare", testRelayConcurrent},
	{"Prune", testPrune},
	{"Backlog", testBacklog},
}

func testBacklog(t *testing.T, s store.Store) {
	backlog := func(what string) store.OutboxBacklog {
		t.Helper()
		b, err := s.OutboxBacklog(t.Context())
		if err != nil {
			t.Fatalf("OutboxBacklog %s: %v", what, err)
		}
		return b
	}
	if b := backlog("of an empty outbox"); b.Unsent != 0 || !b.Oldest.IsZero() {
		t.Errorf("OutboxBacklog of an empty outbox: got %+v, want 0 and no oldest", b)
	}
	before := time.Now().Add(-time.Minute)
	appendOutbox(t, s, msg("evt-1"), msg("evt-2"))
	first := backlog("after two appends")
	if first.Unsent != 2 || first.Oldest.Before(before) || first.Oldest.After(time.Now().Add(time.Minute)) {
		t.Errorf("OutboxBacklog after two appends: got %+v, want 2 written about now", first)
	}
	appendOutbox(t, s, msg("evt-3"))
	if b := backlog("after a third append"); b.Unsent != 3 || !b.Oldest.Equal(first.Oldest) {
		t.Errorf("OutboxBacklog after a third append: got %+v, want 3 and the oldest still %v", b, first.Oldest)
	}
	if n, err := s.RelayOutbox(t.Context(), 3, func(_ context.Context, msgs []store.OutboxMessage) (int, error) {
		return len(msgs), nil
	}); n != 3 || err != nil {
		t.Fatalf("RelayOutbox: got (%d, %v), want (3, nil)", n, err)
	}
	if b := backlog("once all are sent"); b.Unsent != 0 || !b.Oldest.IsZero() {
		t.Errorf("OutboxBacklog once all are sent: got %+v, want 0 and no oldest", b)
	}
}

func testRelayEmpty(t *testing.T, s store.Store) {
	n, err := s.RelayOutbox(t.Context(), 10, func(_ context.Context, msgs []store.OutboxMessage) (int, error) {
		if len(msgs) > 0 {
			t.Errorf("publish of an empty outbox: got %v", eventIDs(msgs))
		}
		return len(msgs), nil
	})
	if n != 0 || err != nil {
		t.Errorf("RelayOutbox of an empty outbox: got (%d, %v), want (0, nil)", n, err)
	}
}

func testRelayOrder(t *testing.T, s store.Store) {
	var all []store.OutboxMessage
	for i := range 7 {
		all = append(all, msg(fmt.Sprintf("evt-%d", i)))
	}
	// Three transactions; seq follows insert order.
	appendOutbox(t, s, all[0], all[1], all[2])
	appendOutbox(t, s, all[3])
	appendOutbox(t, s, all[4], all[5], all[6])

	first := relay(t, s, 3)
	checkMessages(t, "first batch (limit 3)", first, all[:3])
	second := relay(t, s, 3)
	checkMessages(t, "second batch (limit 3)", second, all[3:6])
	third := relay(t, s, 3)
	checkMessages(t, "third batch (limit 3)", third, all[6:])
	if len(first) == 3 && len(second) == 3 && len(third) == 1 {
		checkMessages(t, "all batches", append(append(first, second...), third...), all)
	}
	if got := relay(t, s, 3); len(got) != 0 {
		t.Errorf("relay after everything was sent: got %v, want nothing", eventIDs(got))
	}

	// Messages appended after a relay come after what it sent.
	late := msg("evt-late")
	appendOutbox(t, s, late)
	got := relay(t, s, 10)
	checkMessages(t, "late message", got, []store.OutboxMessage{late})
	if len(got) == 1 && len(third) == 1 && got[0].Seq <= third[0].Seq {
		t.Errorf("late message: got Seq %d, want more than the earlier %d", got[0].Seq, third[0].Seq)
	}
}

func testRelayMinimalMessage(t *testing.T, s store.Store) {
	m := store.OutboxMessage{EventID: "evt-minimal", Subject: "jit.alerts.seats.exhausted." + orgA,
		Header: map[string][]string{}, Data: []byte{}}
	appendOutbox(t, s, m)
	checkMessages(t, "message with an empty header and no data", relay(t, s, 10), []store.OutboxMessage{m})
}

// A nil header and nil data are the same as empty ones.
func testRelayNilHeaderAndData(t *testing.T, s store.Store) {
	n := store.OutboxMessage{EventID: "evt-nil", Subject: "jit.alerts.seats.exhausted." + orgA}
	if err := s.InTx(t.Context(), func(ctx context.Context, tx store.Tx) error { return tx.AppendOutbox(ctx, n) }); err != nil {
		t.Fatalf("AppendOutbox with a nil header and nil data: %v", err)
	}
	checkMessages(t, "message with a nil header and nil data", relay(t, s, 10), []store.OutboxMessage{n})
}

func testRelayPartial(t *testing.T, s store.Store) {
	a, b, c := msg("evt-a"), msg("evt-b"), msg("evt-c")
	appendOutbox(t, s, a, b, c)
	errPub := errors.New("third message not acknowledged")
	var handed []store.OutboxMessage
	n, err := s.RelayOutbox(t.Context(), 10, func(_ context.Context, msgs []store.OutboxMessage) (int, error) {
		handed = msgs
		return 2, errPub
	})
	checkMessages(t, "handed to publish", handed, []store.OutboxMessage{a, b, c})
	if n != 2 || !errors.Is(err, errPub) {
		t.Errorf("RelayOutbox with publish returning (2, err): got (%d, %v), want (2, the publish error)", n, err)
	}
	checkMessages(t, "relay after a partial publish", relay(t, s, 10), []store.OutboxMessage{c})
}

func testRelayPublishError(t *testing.T, s store.Store) {
	a, b, c := msg("evt-a"), msg("evt-b"), msg("evt-c")
	appendOutbox(t, s, a, b, c)
	errPub := errors.New("nats unavailable")
	n, err := s.RelayOutbox(t.Context(), 10, func(_ context.Context, msgs []store.OutboxMessage) (int, error) {
		return 0, errPub
	})
	if n != 0 || !errors.Is(err, errPub) {
		t.Errorf("RelayOutbox with publish returning (0, err): got (%d, %v), want (0, the publish error)", n, err)
	}
	checkMessages(t, "relay after a failed publish", relay(t, s, 10), []store.OutboxMessage{a, b, c})
}

// A relay whose context is canceled while publish runs (the service shuts
// down) must still mark what publish reports as acknowledged: those events
// are in the stream, and sending them again relies on the stream's
// duplicate window alone.
func testRelayCanceled(t *testing.T, s store.Store) {
	a, b, c := msg("evt-a"), msg("evt-b"), msg("evt-c")
	appendOutbox(t, s, a, b, c)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	n, err := s.RelayOutbox(ctx, 10, func(ctx context.Context, msgs []store.OutboxMessage) (int, error) {
		cancel()
		return 2, ctx.Err()
	})
	if n != 2 || !errors.Is(err, context.Canceled) {
		t.Errorf("RelayOutbox canceled after 2 of 3 were published: got (%d, %v), want (2, context.Canceled)", n, err)
	}
	checkMessages(t, "relay after a canceled one", relay(t, s, 10), []store.OutboxMessage{c})
}

// Two relays at once: while the first is inside publish, the second finds
// the outbox held and returns (0, nil) without handing anything out.
func testRelayConcurrent(t *testing.T, s store.Store) {
	all := []store.OutboxMessage{msg("evt-a"), msg("evt-b"), msg("evt-c")}
	appendOutbox(t, s, all...)

	entered := make(chan struct{})
	release := make(chan struct{})
	var enterOnce sync.Once
	type result struct {
		n    int
		err  error
		msgs []store.OutboxMessage
	}
	first := make(chan result, 1)
	go func() {
		var handed []store.OutboxMessage
		n, err := s.RelayOutbox(t.Context(), 10, func(_ context.Context, msgs []store.OutboxMessage) (int, error) {
			handed = append(handed, msgs...)
			enterOnce.Do(func() { close(entered) })
			<-release
			return len(msgs), nil
		})
		first <- result{n, err, handed}
	}()
	select {
	case <-entered:
	case r := <-first:
		t.Fatalf("the first relay returned (%d, %v) without calling publish", r.n, r.err)
	}

	second := make(chan result, 1)
	go func() {
		var handed []store.OutboxMessage
		n, err := s.RelayOutbox(t.Context(), 10, func(_ context.Context, msgs []store.OutboxMessage) (int, error) {
			handed = append(handed, msgs...)
			return 0, nil // mark nothing: the first relay owns these
		})
		second <- result{n, err, handed}
	}()
	// The second relay must not wait for the first: if it does, the first
	// is released after a generous deadline and the test fails.
	var r2 result
	select {
	case r2 = <-second:
	case <-time.After(30 * time.Second):
		t.Errorf("the second relay waited for the first to finish; want it to return (0, nil) at once")
		close(release)
		r2 = <-second
		<-first
		return
	}
	if r2.n != 0 || r2.err != nil || len(r2.msgs) != 0 {
		t.Errorf("second relay while the first publishes: got (%d, %v) and was handed %v; want (0, nil) and nothing",
			r2.n, r2.err, eventIDs(r2.msgs))
	}
	close(release)
	r1 := <-first
	if r1.n != len(all) || r1.err != nil {
		t.Errorf("first relay: got (%d, %v), want (%d, nil)", r1.n, r1.err, len(all))
	}
	checkMessages(t, "first relay", r1.msgs, all)
	if got := relay(t, s, 10); len(got) != 0 {
		t.Errorf("relay after both: got %v, want nothing (all were sent once)", eventIDs(got))
	}
}

func testPrune(t *testing.T, s store.Store) {
	a, b, c := msg("evt-a"), msg("evt-b"), msg("evt-c")
	appendOutbox(t, s, a, b, c)
	n, err := s.RelayOutbox(t.Context(), 2, func(_ context.Context, msgs []store.OutboxMessage) (int, error) {
		return len(msgs), nil
	})
	if n != 2 || err != nil {
		t.Fatalf("RelayOutbox: got (%d, %v), want (2, nil)", n, err)
	}

	// Just sent: younger than an hour.
	if got, err := s.PruneOutbox(t.Context(), time.Hour); got != 0 || err != nil {
		t.Errorf("PruneOutbox(1h) right after sending: got (%d, %v), want (0, nil)", got, err)
	}
	checkMessages(t, "relay after PruneOutbox(1h)", relay(t, s, 1), []store.OutboxMessage{c})
	appendOutbox(t, s, msg("evt-unsent"))

	// Age 0: every sent message, and never an unsent one.
	if got, err := s.PruneOutbox(t.Context(), 0); got != 3 || err != nil {
		t.Errorf("PruneOutbox(0): got (%d, %v), want (3, nil): the sent messages only", got, err)
	}
	checkMessages(t, "relay after PruneOutbox(0)", relay(t, s, 10), []store.OutboxMessage{msg("evt-unsent")})
	if got, err := s.PruneOutbox(t.Context(), 0); got != 1 || err != nil {
		t.Errorf("second PruneOutbox(0): got (%d, %v), want (1, nil)", got, err)
	}
	if got, err := s.PruneOutbox(t.Context(), 0); got != 0 || err != nil {
		t.Errorf("PruneOutbox(0) of an empty outbox: got (%d, %v), want (0, nil)", got, err)
	}
}
