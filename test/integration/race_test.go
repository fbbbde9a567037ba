package integration

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/jitprov/jitprov/events"
	"github.com/jitprov/jitprov/internal/bus"
)

// A thousand people sign in for the first time at once, through NATS, to
// an organisation with fifty seats, served by three provisioners.
func TestThousandFirstLoginsFiftySeats(t *testing.T) {
	const people, seats = 1000, 50
	e := newEnv(t)
	e.apply(org("acme", seats))
	for range 3 {
		e.startProvisioner(8)
	}
	c := e.client()

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var wg sync.WaitGroup
	results := make([]events.ProvisioningResult, people)
	errs := make([]error, people)
	start := make(chan struct{})
	for i := range people {
		wg.Go(func() {
			<-start
			results[i], errs[i] = c.Provision(ctx, identity("acme", fmt.Sprintf("person-%04d", i)))
		})
	}
	close(start)
	wg.Wait()

	outcomes := map[events.Outcome]int{}
	userIDs := map[string]bool{}
	for i := range people {
		if errs[i] != nil {
			t.Fatalf("login %d: %v", i, errs[i])
		}
		outcomes[results[i].Outcome]++
		if results[i].Outcome == events.OutcomeRejected && results[i].Reason != events.ReasonSeatsExhausted {
			t.Errorf("login %d rejected for %q, want seats_exhausted", i, results[i].Reason)
		}
		if results[i].User != nil {
			userIDs[results[i].User.ID] = true
		}
	}
	if outcomes[events.OutcomeCreated] != seats || outcomes[events.OutcomeRejected] != people-seats || len(outcomes) != 2 {
		t.Fatalf("outcomes = %v, want %d created and %d rejected", outcomes, seats, people-seats)
	}
	if len(userIDs) != seats {
		t.Errorf("%d distinct users in replies, want %d", len(userIDs), seats)
	}
	if got := e.count(`SELECT seats_used FROM organizations WHERE id = 'acme'`); got != seats {
		t.Errorf("seats_used = %d, want %d", got, seats)
	}
	if got := e.count(`SELECT count(*) FROM users WHERE org_id = 'acme'`); got != seats {
		t.Errorf("count(users) = %d, want %d", got, seats)
	}
	if got := e.count(`SELECT count(*) FROM provisioning_decisions`); got != people {
		t.Errorf("audit log has %d decisions, want %d", got, people)
	}
	// Every decision leaves as exactly one event: 50 user.created and 950
	// seats.exhausted, each valid against its schema.
	created := e.collect(bus.StreamUsers, "jit.user.created.>", seats, 30*time.Second)
	exhausted := e.collect(bus.StreamAlerts, "jit.alert.seats.exhausted.>", people-seats, 30*time.Second)
	if len(created) != seats || len(exhausted) != people-seats {
		t.Fatalf("published %d user.created and %d seats.exhausted, want %d and %d", len(created), len(exhausted), seats, people-seats)
	}
	for _, m := range append(created, exhausted...) {
		if _, err := events.Decode(&nats.Msg{Subject: m.Subject(), Header: m.Headers(), Data: m.Data()}); err != nil {
			t.Fatalf("emitted event breaks the contract: %v", err)
		}
	}
}
