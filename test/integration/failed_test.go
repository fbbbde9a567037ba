package integration

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/jitprov/jitprov/events"
	"github.com/jitprov/jitprov/internal/bus"
	"github.com/jitprov/jitprov/internal/store"
)

// brokenOrg is a store whose decisions for one organisation always fail
// with a non-transient error (a bug, a constraint nobody expected), while
// the rest of the store is the real database.
type brokenOrg struct {
	store.Store
	org string
}

var errBroken = errors.New("test: this organisation's decisions always fail")

func (b brokenOrg) InTx(ctx context.Context, fn func(context.Context, store.Tx) error) error {
	return b.Store.InTx(ctx, func(ctx context.Context, tx store.Tx) error {
		return fn(ctx, brokenTx{Tx: tx, org: b.org})
	})
}

type brokenTx struct {
	store.Tx
	org string
}

func (b brokenTx) Organization(ctx context.Context, id string) (store.Organization, error) {
	if id == b.org {
		return store.Organization{}, errBroken
	}
	return b.Tx.Organization(ctx, id)
}

func (b brokenTx) LookupLogins(ctx context.Context, orgID string, lock bool, logins []store.LoginKey) (store.GroupLookup, error) {
	if orgID == b.org {
		return store.GroupLookup{}, errBroken
	}
	return b.Tx.LookupLogins(ctx, orgID, lock, logins)
}

// A login the provisioner gives up on is answered "failed" and announced
// once as provisioning.failed on stream ALERTS, so that the admins hear of
// it; other organisations are not affected.
func TestGivenUpLoginAlertsProvisioningFailed(t *testing.T) {
	e := newEnv(t)
	e.maxAttempts = 2
	e.apply(org("broken", 10), org("fine", 10))
	e.startProvisionerOn(brokenOrg{Store: e.store, org: "broken"}, 4)
	c := e.client()

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	id := identity("broken", "ada")
	res, err := c.Provision(ctx, id)
	if err != nil {
		t.Fatalf("Provision: %v", err)
	}
	if res.Outcome != events.OutcomeFailed {
		t.Fatalf("outcome %q, want failed", res.Outcome)
	}

	msgs := e.collect(bus.StreamAlerts, "jit.alert.provisioning.failed.>", 1, 10*time.Second)
	if len(msgs) != 1 {
		t.Fatalf("got %d provisioning.failed events, want 1", len(msgs))
	}
	if got := msgs[0].Subject(); got != "jit.alert.provisioning.failed.broken" {
		t.Errorf("subject %q, want jit.alert.provisioning.failed.broken", got)
	}
	ev, err := events.Decode(&nats.Msg{Subject: msgs[0].Subject(), Header: msgs[0].Headers(), Data: msgs[0].Data()})
	if err != nil {
		t.Fatalf("decode: %v", err)
	}
	f, err := events.DataAs[events.ProvisioningFailed](ev, events.TypeProvisioningFailed)
	if err != nil {
		t.Fatal(err)
	}
	if f.LoginID != res.LoginID || f.OrganizationID != "broken" || f.ExternalID != "ada" || f.Email != id.Email || f.Deliveries != 2 || f.Reason == "" {
		t.Errorf("provisioning.failed = %+v, want login %s of broken/ada after 2 deliveries", f, res.LoginID)
	}
	mustf(t, e.count(`SELECT count(*) FROM users WHERE org_id = 'broken'`) == 0, "a user was provisioned in the broken organisation")

	// Another organisation's logins go on.
	res, err = c.Provision(ctx, identity("fine", "bob"))
	if err != nil || res.Outcome != events.OutcomeCreated {
		t.Fatalf("login in another organisation: %+v, %v; want created", res, err)
	}
}

// A login whose data the database refuses — a NUL character, which the
// event contract allows and Postgres text does not — fails the same way
// every time: it is given up on its first delivery, answered "failed" and
// announced, not retried eight times while its person waits.
func TestLoginTheDatabaseRefusesIsGivenUpAtOnce(t *testing.T) {
	e := newEnv(t)
	e.apply(org("acme", 10))
	e.startProvisioner(2)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	id := identity("acme", "nul")
	id.GivenName = "Ada\x00Lovelace"
	res, err := e.client().Provision(ctx, id)
	if err != nil {
		t.Fatalf("Provision: %v", err)
	}
	if res.Outcome != events.OutcomeFailed {
		t.Fatalf("outcome %q, want failed", res.Outcome)
	}
	msgs := e.collect(bus.StreamAlerts, "jit.alert.provisioning.failed.>", 1, 10*time.Second)
	if len(msgs) != 1 {
		t.Fatalf("got %d provisioning.failed events, want 1", len(msgs))
	}
	ev, err := events.Decode(&nats.Msg{Subject: msgs[0].Subject(), Header: msgs[0].Headers(), Data: msgs[0].Data()})
	if err != nil {
		t.Fatal(err)
	}
	f, err := events.DataAs[events.ProvisioningFailed](ev, events.TypeProvisioningFailed)
	if err != nil {
		t.Fatal(err)
	}
	if f.Deliveries != 1 {
		t.Errorf("given up after %d deliveries, want 1: retrying cannot help", f.Deliveries)
	}
	if got := e.count(`SELECT count(*) FROM users`); got != 0 {
		t.Errorf("%d users, want 0", got)
	}
	// The failed answer is the login's decision: the edge's waiting page
	// reads it, and a redelivery gets the same.
	if got := e.count(`SELECT count(*) FROM provisioning_decisions WHERE login_id = $1 AND outcome = 'failed'`, res.LoginID); got != 1 {
		t.Errorf("%d failed decisions stored for the login, want 1", got)
	}
}
