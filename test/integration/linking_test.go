package integration

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/jitprov/jitprov/events"
	"github.com/jitprov/jitprov/internal/bus"
	"github.com/jitprov/jitprov/internal/store"
)

// An IdP migration through the whole pipeline: acme's people signed in
// through Okta (SAML); Entra ID (OIDC) replaces it. A person's first
// Entra ID login is answered with their Okta user, takes no seat, and
// user.identity-linked reaches stream USERS, valid against its schema.
func TestIdPMigrationLinksThroughThePipeline(t *testing.T) {
	e := newEnv(t)
	o := org("acme", 10) // link_by_email never: replaces alone links
	o.VerifiedDomains = []string{"acme.example"}
	if err := e.store.ApplyOrganizations(context.Background(), []store.Organization{o}, []store.Connection{
		{OrganizationID: "acme", ID: "idp", Protocol: "saml"},
		{OrganizationID: "acme", ID: "entra", Protocol: "oidc", Replaces: "idp"},
	}); err != nil {
		t.Fatal(err)
	}
	e.startProvisioner(2)
	c := e.client()
	ctx := context.Background()

	old, err := c.Provision(ctx, identity("acme", "ada"))
	if err != nil || old.Outcome != events.OutcomeCreated {
		t.Fatalf("first login through Okta: %+v, %v; want created", old, err)
	}
	moved := identity("acme", "ada")
	moved.ConnectionID, moved.Protocol, moved.ExternalID = "entra", events.ProtocolOIDC, "9f2c1d4e-entra-sub"
	res, err := c.Provision(ctx, moved)
	if err != nil || res.Outcome != events.OutcomeExisting || res.User == nil || res.User.ID != old.User.ID {
		t.Fatalf("first login through Entra ID: %+v, %v; want existing, user %s", res, err, old.User.ID)
	}
	if got := e.count(`SELECT seats_used FROM organizations WHERE id = 'acme'`); got != 1 {
		t.Errorf("seats used: %d, want 1", got)
	}
	if got := e.count(`SELECT count(*) FROM identities WHERE user_id = $1`, old.User.ID); got != 2 {
		t.Errorf("identities of the user: %d, want 2 (Okta's stays)", got)
	}
	msgs := e.collect(bus.StreamUsers, "jit.user.identity-linked.acme", 1, 20*time.Second)
	if len(msgs) != 1 {
		t.Fatalf("%d user.identity-linked, want 1", len(msgs))
	}
	ev, err := events.Decode(&nats.Msg{Subject: msgs[0].Subject(), Header: msgs[0].Headers(), Data: msgs[0].Data()})
	if err != nil {
		t.Fatal(err)
	}
	linked, err := events.DataAs[events.IdentityLinked](ev, events.TypeUserIdentityLinked)
	if err != nil {
		t.Fatal(err)
	}
	if linked.User.ID != old.User.ID || linked.LinkedBy != events.LinkedByReplaces || linked.ReplacedConnectionID != "idp" ||
		linked.Identity != (events.LinkedIdentity{ConnectionID: "entra", ExternalID: "9f2c1d4e-entra-sub"}) || linked.LoginID == "" {
		t.Errorf("user.identity-linked: %+v", linked)
	}
	// A returning Entra ID login finds the user by its identity.
	again, err := c.Provision(ctx, moved)
	if err != nil || again.Outcome != events.OutcomeExisting || again.User.ID != old.User.ID {
		t.Errorf("second login through Entra ID: %+v, %v", again, err)
	}
}
