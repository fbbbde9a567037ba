package provisioner_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/jitprov/jitprov/events"
	"github.com/jitprov/jitprov/internal/bus"
	"github.com/jitprov/jitprov/internal/provisioner"
	"github.com/jitprov/jitprov/internal/store"
	"github.com/jitprov/jitprov/internal/testenv"
)

// Returning logins published faster than they are recorded are recorded
// in batches, each person at their latest login whatever the order, a
// login.seen naming nobody is dropped without holding up the others, and
// nothing is left unacknowledged.
func TestRecordSeenBatches(t *testing.T) {
	ctx := context.Background()
	s, _ := testenv.Store(t)
	org := store.Organization{ID: "acme", Name: "Acme", MaxSeats: 10,
		Roles: []string{"viewer", "member", "manager", "admin"}, DefaultRole: "member", JITRoleCeiling: "manager",
		UpdatePolicy: store.PreferIdP, LinkByEmail: store.LinkNever}
	if err := s.ApplyOrganizations(ctx, []store.Organization{org}, []store.Connection{{OrganizationID: "acme", ID: "okta", Protocol: "saml"}}); err != nil {
		t.Fatal(err)
	}
	dec := provisioner.NewDecider(s, testenv.Logger(t))
	const people, rounds = 5, 60
	var users []events.UserRef
	for i := range people {
		res, err := dec.Decide(ctx, uuid.NewString(), events.Identity{OrganizationID: "acme", ConnectionID: "okta",
			ExternalID: fmt.Sprintf("p%d", i), Email: fmt.Sprintf("p%d@acme.example", i), Protocol: events.ProtocolSAML,
			AuthenticatedAt: time.Now()})
		if err != nil || res.User == nil {
			t.Fatalf("create p%d: %+v, %v", i, res, err)
		}
		users = append(users, *res.User)
	}
	nc := testenv.Connect(t, testenv.NATS(t))
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	if err := bus.Ensure(ctx, js, bus.DefaultTopology()); err != nil {
		t.Fatal(err)
	}
	edge, err := bus.NewClient(nc, js, "/jitprov/test-edge")
	if err != nil {
		t.Fatal(err)
	}
	// Everything is published before the consumer starts: it finds
	// hundreds in hand, and must record them in batches.
	base := time.Now().Add(time.Hour).UTC().Truncate(time.Millisecond)
	latest := make([]time.Time, people)
	for r := range rounds {
		for i, u := range users {
			// Each person's latest login is published in the middle of
			// their logins, not last.
			at := base.Add(time.Duration((r+rounds/2)%rounds) * time.Second)
			if at.After(latest[i]) {
				latest[i] = at
			}
			if err := edge.Seen(ctx, events.LoginSeen{OrganizationID: "acme", ConnectionID: "okta", ExternalID: fmt.Sprintf("p%d", i),
				UserID: u.ID, AuthenticatedAt: at}); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := edge.Seen(ctx, events.LoginSeen{OrganizationID: "acme", ConnectionID: "okta", ExternalID: "ghost",
		UserID: uuid.NewString(), AuthenticatedAt: base}); err != nil {
		t.Fatal(err)
	}
	// Handles of their own for the test's questions: a handle's Info is
	// not safe beside its other uses.
	var cons, gateInfo, info jetstream.Consumer
	for _, c := range []*jetstream.Consumer{&cons, &gateInfo, &info} {
		if *c, err = js.Consumer(ctx, bus.StreamLogins, bus.ConsumerSeen); err != nil {
			t.Fatal(err)
		}
	}
	out := &testenv.Output{}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	rec := &countingRecorder{LoginRecorder: s, gate: func() {
		// The first batch is recorded only once a hundred more logins
		// are in hand (delivered, not yet acked): the next must take
		// them together.
		testenv.WaitFor(t, 30*time.Second, "100 logins in hand", func() bool {
			i, err := gateInfo.Info(ctx)
			return err == nil && i.NumAckPending >= 100
		})
	}}
	go func() {
		done <- provisioner.RecordSeen(runCtx, cons, rec, noop.NewTracerProvider().Tracer(""), out.Logger())
	}()

	// Wait for the consumer to have acked everything (on the event, not
	// the clock: the consumer's own account of what it holds).
	testenv.WaitFor(t, 30*time.Second, "every login.seen acked", func() bool {
		i, err := info.Info(ctx)
		return err == nil && i.NumPending == 0 && i.NumAckPending == 0 && i.AckFloor.Stream == i.Delivered.Stream
	})
	stop()
	if err := <-done; err != nil {
		t.Fatalf("RecordSeen: %v", err)
	}
	for i, u := range users {
		got, err := s.User(ctx, "acme", u.ID)
		if err != nil || !got.LastLoginAt.Equal(latest[i]) {
			t.Errorf("p%d: last login %s (%v), want their latest, %s", i, got.LastLoginAt, err, latest[i])
		}
	}
	logs := out.String()
	if n := strings.Count(logs, "login.seen names no such user"); n != 1 {
		t.Errorf("%d warnings of a login.seen naming nobody, want 1:\n%s", n, logs)
	}
	if n := strings.Count(logs, "could not record"); n != 0 {
		t.Errorf("recording failed:\n%s", logs)
	}
	// Batches, not one transaction per login.
	if total := people*rounds + 1; rec.calls.Load() >= int64(total) || rec.largest.Load() < 100 {
		t.Errorf("%d logins recorded in %d transactions, the largest of %d logins; want batches of what was in hand (100 at least)",
			total, rec.calls.Load(), rec.largest.Load())
	}
}

// countingRecorder counts the transactions RecordSeen asks for, and runs
// gate before the first.
type countingRecorder struct {
	provisioner.LoginRecorder
	gate           func()
	once           sync.Once
	calls, largest atomic.Int64
}

func (r *countingRecorder) RecordLogins(ctx context.Context, logins []store.Login) ([]int, error) {
	r.once.Do(r.gate)
	r.calls.Add(1)
	for {
		l := r.largest.Load()
		if int64(len(logins)) <= l || r.largest.CompareAndSwap(l, int64(len(logins))) {
			break
		}
	}
	return r.LoginRecorder.RecordLogins(ctx, logins)
}
