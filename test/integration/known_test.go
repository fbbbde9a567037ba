package integration

import (
	"context"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jitprov/jitprov/events"
	"github.com/jitprov/jitprov/internal/known"
	"github.com/jitprov/jitprov/internal/testenv"
)

// faultyKnown is the real known-identities bucket whose first Put fails
// the way a replica or NATS does.
type faultyKnown struct {
	*known.Cache
	fault  func() error // runs in place of the first Put
	always bool         // and of every Put
	armed  atomic.Bool
	faults atomic.Int32
}

func (f *faultyKnown) Put(ctx context.Context, rec known.Record) error {
	if f.always || f.armed.CompareAndSwap(true, false) {
		f.faults.Add(1)
		return f.fault()
	}
	return f.Cache.Put(ctx, rec)
}

// A bucket that stays unwritable does not hold logins back for ever (they
// would fill the consumer's max ack pending and stop every new login): a
// decided login is kept for three deliveries, then acked; the decision
// stands.
func TestKnownRecordThatCannotBeWrittenDoesNotHoldTheLogin(t *testing.T) {
	e := newEnv(t)
	e.apply(org("acme", 10))
	cache, err := known.New(context.Background(), e.js, known.Config{})
	if err != nil {
		t.Fatal(err)
	}
	faulty := &faultyKnown{Cache: cache, fault: func() error { return known.ErrUnavailable }, always: true}
	e.known = faulty
	e.startProvisioner(2)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := e.client().Provision(ctx, identity("acme", "fay"))
	if err != nil || res.Outcome != events.OutcomeCreated {
		t.Fatalf("Provision = %+v, %v; want created (the answer precedes the record)", res, err)
	}
	testenv.WaitFor(t, 20*time.Second, "no login pending", func() bool { return e.pendingLogins() == 0 })
	if got := faulty.faults.Load(); got != 3 {
		t.Errorf("%d tries to write the record, want 3 (one per delivery)", got)
	}
	if got := e.count(`SELECT count(*) FROM provisioning_decisions`); got != 1 {
		t.Errorf("%d decisions, want 1", got)
	}
}

// The known-identities record, which the edge's fast path and waiting page
// read, is part of what a decision retries until it is written: a
// provisioner that dies before writing it, or NATS refusing it for a
// moment, leaves the login to be redelivered, and the redelivery writes it.
func TestKnownRecordIsWrittenDespiteAFault(t *testing.T) {
	for _, tc := range []struct {
		name  string
		fault func() error
	}{
		{"the replica dies after answering, before the record", func() error { runtime.Goexit(); return nil }},
		{"NATS refuses the record for a moment", func() error { return known.ErrUnavailable }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			e.apply(org("acme", 10))
			cache, err := known.New(context.Background(), e.js, known.Config{})
			if err != nil {
				t.Fatal(err)
			}
			faulty := &faultyKnown{Cache: cache, fault: tc.fault}
			faulty.armed.Store(true)
			e.known = faulty
			e.startProvisioner(2)

			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			res, err := e.client().Provision(ctx, identity("acme", "erin"))
			if err != nil || res.Outcome != events.OutcomeCreated {
				t.Fatalf("Provision = %+v, %v; want created", res, err)
			}
			testenv.WaitFor(t, 20*time.Second, "no login pending", func() bool { return e.pendingLogins() == 0 })
			if faulty.faults.Load() != 1 {
				t.Fatal("the fault did not happen: the test proves nothing")
			}
			rec, err := cache.Get(ctx, "acme", "idp", "erin")
			if err != nil {
				t.Fatalf("known record after the fault: %v, want it written", err)
			}
			if rec.UserID != res.User.ID || rec.Status != "active" || !known.Fresh(rec, identity("acme", "erin")) {
				t.Errorf("known record %+v, want user %s, active, fresh", rec, res.User.ID)
			}
			e.assertOnePerson()
		})
	}
}
