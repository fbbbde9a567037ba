package integration

import (
	"context"
	"testing"
	"time"

	"github.com/jitprov/jitprov/events"
	"github.com/jitprov/jitprov/internal/bus"
)

// A lone login is decided as soon as it is in hand: the provisioner,
// batching up to 32 logins of an organisation, takes what it has rather
// than wait for more. Nothing else is ever published, so an answer (and
// the user.created it relays) can only come from a decision that did not
// wait for company.
func TestLoneLoginIsDecidedAtOnce(t *testing.T) {
	e := newEnv(t)
	e.apply(org("acme", 10))
	e.startProvisioner(4)
	c := e.client()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := c.Provision(ctx, identity("acme", "alone"))
	if err != nil {
		t.Fatalf("Provision: %v", err)
	}
	if res.Outcome != events.OutcomeCreated {
		t.Fatalf("outcome %s (%s), want created", res.Outcome, res.Message)
	}
	if got := e.collect(bus.StreamUsers, "jit.user.created.>", 1, 30*time.Second); len(got) != 1 {
		t.Errorf("%d user.created, want 1", len(got))
	}
}
