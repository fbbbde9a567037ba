package integration

import (
	"context"
	"testing"
	"time"

	"github.com/jitprov/jitprov/events"
	"github.com/jitprov/jitprov/internal/bus"
	"github.com/jitprov/jitprov/internal/known"
	"github.com/jitprov/jitprov/internal/testenv"
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

// Every decision about a user is recorded in the known-identities bucket,
// which sso-edge reads to sign returning people in without a round trip:
// fresh while the claims and the user are unchanged, stale otherwise.
func TestDecisionsFeedTheKnownIdentities(t *testing.T) {
	e := newEnv(t)
	e.apply(org("acme", 10))
	e.startProvisioner(2)
	c := e.client()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	id := identity("acme", "lena")
	res, err := c.Provision(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	cache, err := known.Open(ctx, e.js, "JITPROV_KNOWN", 0)
	if err != nil {
		t.Fatal(err)
	}
	// The provisioner records the identity just after answering.
	var rec known.Record
	testenv.WaitFor(t, 20*time.Second, "the known-identities record", func() bool {
		rec, err = cache.Get(ctx, "acme", "idp", "lena")
		return err == nil
	})
	if rec.UserID != res.User.ID || !known.Fresh(rec, id) {
		t.Errorf("record %+v is not fresh for the identity just provisioned", rec)
	}
	changed := id
	changed.Groups = []string{"new-team"}
	if known.Fresh(rec, changed) {
		t.Error("changed claims still look fresh")
	}

	// Suspended by an admin: the next login is refused and the record
	// stops being fresh, so the edge takes the synchronous path.
	if _, err := e.store.Pool().Exec(ctx, `UPDATE users SET status = 'suspended'`); err != nil {
		t.Fatal(err)
	}
	if res, err := c.Provision(ctx, id); err != nil || res.Reason != events.ReasonSuspended {
		t.Fatalf("login of a suspended user: %+v, %v", res, err)
	}
	testenv.WaitFor(t, 20*time.Second, "the record marked suspended", func() bool {
		rec, err = cache.Get(ctx, "acme", "idp", "lena")
		return err == nil && rec.Status == "suspended"
	})
	if rec.Status != "suspended" || known.Fresh(rec, id) {
		t.Errorf("after suspension the record is %+v, want suspended and not fresh", rec)
	}
}
