package simplesamlphp_test

import (
	"context"
	"slices"
	"testing"

	"github.com/jitprov/jitprov/internal/store"
)

// The same person through a second connection of the same organisation —
// a second, independent SimpleSAMLphp IdP that knows her by another uid
// (another persistent NameID) but the same verified email on the
// organisation's verified domain — becomes the same user, with two
// identities (created, then linked by email), and takes no second seat.
func TestSimpleSAMLphpSecondConnectionLinks(t *testing.T) {
	const org = "globex"
	grace := idpUser{UID: "grace", Password: randomHex(t, 12), Email: "grace@globex.example",
		GivenName: "Grace", FamilyName: "Hopper", Groups: []string{"member"}}
	graceAtB := grace
	graceAtB.UID, graceAtB.Password = "g.hopper", randomHex(t, 12)
	idpA := startSimpleSAMLphp(t, []idpUser{grace})
	idpB := startSimpleSAMLphp(t, []idpUser{graceAtB})

	both := signing{name: "signed-both", signResponse: true, signAssertion: true}
	connA := connection{id: "simplesamlphp-a", signing: both, requireSignedAssertion: true}
	connB := connection{id: "simplesamlphp-b", signing: both, requireSignedAssertion: true}
	w := newWorld(t, []store.Organization{{
		ID: org, Name: "Globex (SimpleSAMLphp interop)", MaxSeats: 10,
		Roles: []string{"viewer", "member", "manager", "admin"}, DefaultRole: "member", JITRoleCeiling: "manager",
		UpdatePolicy: store.PreferIdP, LinkByEmail: store.LinkVerifiedDomains, VerifiedDomains: []string{"globex.example"},
	}}, []store.Connection{connA.store(t, org, idpA), connB.store(t, org, idpB)})
	w.serve(t, idpA, org, connA)
	w.serve(t, idpB, org, connB)

	const returnTo = "/app/" + spInitiated
	user := w.signedIn(t, returnTo, "member")(w.spInitiatedLogin(t, idpA, org, connA, grace))
	if n := w.countUsers(t, org); n != 1 {
		t.Fatalf("the first login through %s made %d users, want 1", connA.id, n)
	}
	w.checkUser(t, org, user, connA.id, grace, "member")

	linked := w.signedIn(t, returnTo, "member")(w.spInitiatedLogin(t, idpB, org, connB, graceAtB))
	if linked != user {
		t.Fatalf("the login through %s signed in user %s, want %s, whom %s provisioned", connB.id, linked, user, connA.id)
	}
	if n := w.countUsers(t, org); n != 1 {
		t.Errorf("the login through the second connection made %d users in all, want 1", n)
	}
	w.checkUser(t, org, user, connB.id, graceAtB, "member") // seats included
	if got := w.userOf(t, org, connA.id, grace.UID); got != user {
		t.Errorf("after the link, the identity (%s, %s) is user %s, want %s", connA.id, grace.UID, got, user)
	}
	var ids []store.Identity
	if err := w.store.InTx(t.Context(), func(ctx context.Context, tx store.Tx) error {
		var err error
		ids, err = tx.Identities(ctx, user)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, id := range ids {
		got = append(got, id.ConnectionID+"/"+id.ExternalID+" "+id.LinkedBy)
	}
	want := []string{connA.id + "/" + grace.UID + " " + store.LinkedByCreated, connB.id + "/" + graceAtB.UID + " " + store.LinkedByEmail}
	if !slices.Equal(got, want) {
		t.Errorf("the user's identities are %q, want %q", got, want)
	}

	// Either way in, again: the same user.
	for _, c := range []struct {
		idp  *simpleSAMLphp
		conn connection
		u    idpUser
	}{{idpA, connA, grace}, {idpB, connB, graceAtB}} {
		if again := w.signedIn(t, returnTo, "member")(w.spInitiatedLogin(t, c.idp, org, c.conn, c.u)); again != user {
			t.Errorf("a later login through %s signed in user %s, want %s", c.conn.id, again, user)
		}
	}
	if n := w.countUsers(t, org); n != 1 {
		t.Errorf("%d users after the later logins, want 1", n)
	}
}
