package notify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/jitprov/jitprov/internal/testenv"
)

func testBatches(t *testing.T) *Batches {
	t.Helper()
	js, err := jetstream.New(testenv.Connect(t, testenv.NATS(t)))
	if err != nil {
		t.Fatal(err)
	}
	kv, err := js.CreateKeyValue(t.Context(), jetstream.KeyValueConfig{Bucket: BucketBatches})
	if err != nil {
		t.Fatal(err)
	}
	return &Batches{kv: kv, now: time.Now}
}

func addN(t *testing.T, b *Batches, from, n int) {
	t.Helper()
	for i := from; i < from+n; i++ {
		err := b.add(t.Context(), "role-review.requested", "acme", fmt.Sprintf("ev-%d", i), json.RawMessage(`{}`),
			time.Now(), fmt.Sprintf("person-%d", i%3), 0, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
	}
}

// A flush whose publishing fails keeps what it closed for the next flush,
// which publishes the very same message; alerts that arrive in between go
// to the next batch, not lost and not merged into a message already sent.
func TestFlushInterruptedLosesNothing(t *testing.T) {
	b := testBatches(t)
	key := batchKey("role-review.requested", "acme")
	addN(t, b, 0, 3)

	var sent []Job
	failing := func(context.Context, Job) error { return errors.New("test: NATS went away mid-flush") }
	record := func(_ context.Context, j Job) error { sent = append(sent, j); return nil }

	if err := b.flush(t.Context(), key, failing); err == nil {
		t.Fatal("flush with a failing send succeeded")
	}
	addN(t, b, 3, 2) // arrive while the first message is stuck
	if err := b.flush(t.Context(), key, record); err != nil {
		t.Fatal(err)
	}
	if len(sent) != 1 || sent[0].Count != 3 || sent[0].People != 3 {
		t.Fatalf("sent %+v, want the closed batch of 3 alerts about 3 people", sent)
	}
	// The two that came later wait for the interval (an hour): not sent,
	// and still there.
	if err := b.flush(t.Context(), key, record); err != nil || len(sent) != 1 {
		t.Fatalf("flush before the interval: %v, sent %d", err, len(sent))
	}
	st, _, err := b.get(t.Context(), key)
	if err != nil {
		t.Fatal(err)
	}
	if st.Sending != nil || st.Open == nil || st.Open.Count != 2 {
		t.Fatalf("state after the flush: sending %+v open %+v; want nothing sending and 2 waiting", st.Sending, st.Open)
	}
	// Once due, they go out as the next message.
	b.now = func() time.Time { return time.Now().Add(2 * time.Hour) }
	if err := b.flush(t.Context(), key, record); err != nil {
		t.Fatal(err)
	}
	if len(sent) != 2 || sent[1].Count != 2 || sent[1].ID == sent[0].ID {
		t.Fatalf("sent %+v, want a second message of 2 alerts", sent)
	}
}

// The same alert delivered twice (a redelivery) is counted once.
func TestAddIgnoresRedeliveredAlert(t *testing.T) {
	b := testBatches(t)
	addN(t, b, 0, 2)
	addN(t, b, 0, 2)
	st, _, err := b.get(t.Context(), batchKey("role-review.requested", "acme"))
	if err != nil || st.Open.Count != 2 {
		t.Fatalf("count %d (%v), want 2", st.Open.Count, err)
	}
}
