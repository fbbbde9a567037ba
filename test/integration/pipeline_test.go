package integration

import (
	"context"
	"testing"
	"time"

	"github.com/jitprov/jitprov/events"
	"github.com/jitprov/jitprov/internal/bus"
)

func TestFirstLoginCreatesUserAndAnnouncesIt(t *testing.T) {
	e := newEnv(t)
	e.apply(org("acme", 10))
	e.startProvisioner(4)
	c := e.client()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	id := identity("acme", "alice")
	id.Roles = []string{"member"}
	res, err := c.Provision(ctx, id)
	if err != nil {
		t.Fatalf("Provision: %v", err)
	}
	if res.Outcome != events.OutcomeCreated || res.User == nil || res.User.Role != "member" {
		t.Fatalf("got %+v, want created member", res)
	}
	// A second login of the same person is "existing".
	res2, err := c.Provision(ctx, id)
	if err != nil {
		t.Fatalf("Provision again: %v", err)
	}
	if res2.Outcome != events.OutcomeExisting || res2.User.ID != res.User.ID {
		t.Fatalf("second login: got %+v, want existing %s", res2, res.User.ID)
	}
	msgs := e.collect(bus.StreamUsers, "jit.user.created.acme", 1, 10*time.Second)
	if len(msgs) != 1 {
		t.Fatalf("got %d user.created events, want 1", len(msgs))
	}
	if got := msgs[0].Headers().Get("Nats-Msg-Id"); got != msgs[0].Headers().Get("ce-id") {
		t.Errorf("Nats-Msg-Id %q differs from ce-id %q", got, msgs[0].Headers().Get("ce-id"))
	}
}
