package integration

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jitprov/jitprov/events"
	"github.com/jitprov/jitprov/internal/store"
	"github.com/jitprov/jitprov/internal/store/postgres"
	"github.com/jitprov/jitprov/internal/testenv"
)

// freezingStore is a provisioner's store whose first decision that takes a
// seat of org stops right after it (TakeSeat, or a batch's WriteGroup) — holding the organisation's seat row —
// until thaw is closed: a replica frozen (SIGSTOP) or partitioned in the
// middle of a decision.
type freezingStore struct {
	store.Store
	org     string
	armed   atomic.Bool
	holding chan struct{} // closed once the row is held
	thaw    chan struct{}
}

func (f *freezingStore) InTx(ctx context.Context, fn func(context.Context, store.Tx) error) error {
	return f.Store.InTx(ctx, func(ctx context.Context, tx store.Tx) error {
		return fn(ctx, freezingTx{Tx: tx, f: f})
	})
}

type freezingTx struct {
	store.Tx
	f *freezingStore
}

func (t freezingTx) TakeSeat(ctx context.Context, orgID string) (store.Organization, error) {
	o, err := t.Tx.TakeSeat(ctx, orgID)
	if err == nil && orgID == t.f.org && t.f.armed.CompareAndSwap(true, false) {
		close(t.f.holding)
		<-t.f.thaw
	}
	return o, err
}

// WriteGroup freezes after a batch's seat reservation, the other place a
// decision takes seats.
func (t freezingTx) WriteGroup(ctx context.Context, w store.GroupWrites) (store.Organization, error) {
	o, err := t.Tx.WriteGroup(ctx, w)
	if err == nil && w.Seats.Seats > 0 && w.OrganizationID == t.f.org && t.f.armed.CompareAndSwap(true, false) {
		close(t.f.holding)
		<-t.f.thaw
	}
	return o, err
}

// One replica frozen in the middle of a decision, holding a busy
// organisation's seat row, must cost the others a bounded wait: logins of
// the other organisations go on being decided meanwhile, the frozen
// replica's session is ended by the server, and every login of the busy
// organisation is decided once, with seats equal to users.
func TestFrozenProvisionerStallsNoOtherOrganisation(t *testing.T) {
	e := newEnv(t)
	e.apply(org("hot", 1000), org("cold", 1000))
	timeouts := postgres.Options{MaxConns: 12, LockTimeout: 300 * time.Millisecond,
		StatementTimeout: 3 * time.Second, IdleInTxTimeout: 2 * time.Second}
	open := func() *postgres.Store {
		timeouts.Logger = testenv.Logger(t)
		s, err := postgres.Open(context.Background(), e.dbURL, timeouts)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(s.Close)
		return s
	}

	frozen := &freezingStore{Store: open(), org: "hot", holding: make(chan struct{}), thaw: make(chan struct{})}
	frozen.armed.Store(true)
	thaw := sync.OnceFunc(func() { close(frozen.thaw) })
	t.Cleanup(thaw)
	e.startProvisionerOn(frozen, 1)
	c := e.client()
	first := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		_, err := c.Provision(ctx, identity("hot", "frozen-first"))
		first <- err
	}()
	<-frozen.holding

	// Two healthy replicas, then a burst for both organisations.
	healthy := open()
	e.startProvisionerOn(healthy, 4)
	e.startProvisionerOn(healthy, 4)
	const n = 40
	type answer struct {
		org string
		res events.ProvisioningResult
		err error
	}
	answers := make(chan answer, 2*n)
	var wg sync.WaitGroup
	for i := range n {
		for _, o := range []string{"hot", "cold"} {
			wg.Go(func() {
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				defer cancel()
				res, err := c.Provision(ctx, identity(o, fmt.Sprintf("%s-%02d", o, i)))
				answers <- answer{o, res, err}
			})
		}
	}
	// Every cold login is decided while hot's row is still held.
	cold := 0
	for cold < n {
		a := <-answers
		if a.err != nil || a.res.Outcome != events.OutcomeCreated {
			t.Fatalf("%s login while a replica is frozen: %+v, %v; want created", a.org, a.res, a.err)
		}
		if a.org == "cold" {
			cold++
		}
	}
	select {
	case <-frozen.thaw:
		t.Fatal("the frozen replica thawed early: the test proves nothing")
	default:
	}
	wg.Wait()
	close(answers)
	for a := range answers {
		if a.err != nil || a.res.Outcome != events.OutcomeCreated {
			t.Errorf("%s login: %+v, %v; want created", a.org, a.res, a.err)
		}
	}

	// The frozen replica comes back to a session the server ended; its
	// login was decided once, by whichever replica got it next.
	thaw()
	if err := <-first; err != nil && !errors.Is(err, context.DeadlineExceeded) {
		t.Logf("the frozen replica's own login: %v", err)
	}
	testenv.WaitFor(t, 20*time.Second, "no login pending", func() bool { return e.pendingLogins() == 0 })
	for _, o := range []string{"hot", "cold"} {
		users := e.count(`SELECT count(*) FROM users WHERE org_id = $1`, o)
		seats := e.count(`SELECT seats_used FROM organizations WHERE id = $1`, o)
		want := n
		if o == "hot" {
			want = n + 1
		}
		if users != want || seats != users {
			t.Errorf("%s: %d users, %d seats used; want %d and %d", o, users, seats, want, want)
		}
	}
	if got := e.count(`SELECT count(*) FROM provisioning_decisions`); got != 2*n+1 {
		t.Errorf("%d decisions, want %d (each login decided once)", got, 2*n+1)
	}
}
