// Package simplesamlphp_test runs sso-edge against a real, independently
// written SAML identity provider: SimpleSAMLphp 1.19 from Debian's packages,
// served by `php -S` on a loopback port with a configuration folder of the
// test's own (a key pair generated at test time, the exampleauth
// example-userpass source, a hosted SAML 2.0 IdP, and the edge's SAML
// connections as remote SPs, written from the edge's own SP metadata).
//
// A scripted browser (a cookie jar and the pages' HTML forms) signs people
// in, SP-initiated (edge → SimpleSAMLphp's login form → POST to the ACS)
// and IdP-initiated, with the response signed, the assertion signed, both,
// and the assertion encrypted, through the real sso-edge, provisioner,
// embedded NATS JetStream and a fresh PostgreSQL database; and one person
// through two connections of an organisation, each to its own
// SimpleSAMLphp, becomes one user with two identities.
//
// The tests fail, never skip, when php or SimpleSAMLphp cannot run: `make
// test` installs them (scripts/test-deps.sh).
package simplesamlphp_test

import (
	"context"
	"encoding/base64"
	"encoding/xml"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/jitprov/jitprov/internal/store"
	"github.com/jitprov/jitprov/internal/testenv"
)

// signing is how SimpleSAMLphp signs and encrypts its responses to one SP
// (one edge connection): its sp-remote options saml20.sign.response,
// saml20.sign.assertion and assertion.encryption.
type signing struct {
	name                                 string
	signResponse, signAssertion, encrypt bool
}

var signings = []signing{
	{name: "signed-response", signResponse: true},
	{name: "signed-assertion", signAssertion: true},
	{name: "signed-both", signResponse: true, signAssertion: true},
	// The assertion signed, then encrypted for the edge's SP key.
	{name: "encrypted-signed-assertion", signAssertion: true, encrypt: true},
	// Only the response around the encrypted assertion signed.
	{name: "encrypted-signed-response", signResponse: true, encrypt: true},
}

// Flows of a login.
const (
	spInitiated  = "sp-initiated"
	idpInitiated = "idp-initiated"
)

// connection is one of the edge's SAML connections and how SimpleSAMLphp
// serves it: one SP entity each, since SimpleSAMLphp signs and encrypts
// per SP.
type connection struct {
	id                     string
	signing                signing
	allowIdPInitiated      bool
	requireSignedAssertion bool
}

// loginCase is a person signing in through a connection.
type loginCase struct {
	name string
	conn string
	flow string
	// refused, when set, is the reason sso-edge must refuse the response
	// for, as it logs it.
	refused string
}

// uid is the person of a case: one per case, so that each case provisions
// its own user.
func (c loginCase) uid() string { return strings.ReplaceAll(c.name, "/", "-") }

// connections and logins: every signing through both flows, SP-initiated
// logins to connections that do not allow IdP-initiated ones; and two
// responses the edge must refuse however well SimpleSAMLphp signs them.
func cases() ([]connection, []loginCase) {
	var conns []connection
	var logins []loginCase
	for _, s := range signings {
		conns = append(conns,
			connection{id: s.name, signing: s, requireSignedAssertion: s.signAssertion},
			connection{id: "idp-init-" + s.name, signing: s, allowIdPInitiated: true, requireSignedAssertion: s.signAssertion})
		logins = append(logins,
			loginCase{name: spInitiated + "/" + s.name, conn: s.name, flow: spInitiated},
			loginCase{name: idpInitiated + "/" + s.name, conn: "idp-init-" + s.name, flow: idpInitiated})
	}
	conns = append(conns, connection{id: "requires-signed-assertion", requireSignedAssertion: true,
		signing: signing{name: "signed-response", signResponse: true}})
	logins = append(logins,
		loginCase{name: "refused/unsolicited-without-allow_idp_initiated", conn: "signed-both", flow: idpInitiated, refused: "unsolicited"},
		loginCase{name: "refused/unsigned-assertion-where-required", conn: "requires-signed-assertion", flow: spInitiated, refused: "unsigned_assertion"})
	return conns, logins
}

const acmeID = "acme"

func acme() store.Organization {
	return store.Organization{
		ID: acmeID, Name: "Acme (SimpleSAMLphp interop)", MaxSeats: 100,
		Roles: []string{"viewer", "member", "manager", "admin"}, DefaultRole: "member", JITRoleCeiling: "manager",
		UpdatePolicy: store.PreferIdP, LinkByEmail: store.LinkNever, VerifiedDomains: []string{"acme.example"},
	}
}

func person(id string) idpUser {
	return idpUser{UID: id, Email: id + "@acme.example", GivenName: "Given " + id, FamilyName: "Family " + id,
		Groups: []string{"member", "staff"}}
}

// The edge's SAML service provider signs people in through SimpleSAMLphp,
// SP- and IdP-initiated, for every way SimpleSAMLphp signs and encrypts:
// each first login provisions exactly one user, with the IdP's attributes
// and the role its groups claim; a second login, in another browser, finds
// the same user. An IdP-initiated login to a connection that does not
// allow it, and an unsigned assertion where a signed one is required, are
// refused and provision nobody.
func TestSimpleSAMLphp(t *testing.T) {
	conns, logins := cases()
	var users []idpUser
	for _, c := range logins {
		u := person(c.uid())
		u.Password = randomHex(t, 12)
		users = append(users, u)
	}
	idp := startSimpleSAMLphp(t, users)

	var stored []store.Connection
	byID := map[string]connection{}
	for _, c := range conns {
		stored = append(stored, c.store(t, acmeID, idp))
		byID[c.id] = c
	}
	w := newWorld(t, []store.Organization{acme()}, stored)
	entityIDs := w.serve(t, idp, acmeID, conns...) // connection → SP entity id

	for i, c := range logins {
		t.Run(c.name, func(t *testing.T) {
			conn, u := byID[c.conn], users[i]
			signIn := func() (*testenv.Browser, *testenv.Page) {
				t.Helper()
				if c.flow == idpInitiated {
					return w.idpInitiatedLogin(t, idp, entityIDs[conn.id], conn, u)
				}
				return w.spInitiatedLogin(t, idp, acmeID, conn, u)
			}
			before := w.countUsers(t, acmeID)
			if c.refused != "" {
				refusals := w.logs.Count("reason=" + c.refused)
				b, acs := signIn()
				if acs.Status != http.StatusForbidden {
					t.Errorf("the edge's ACS answered %d, want 403:\n%s", acs.Status, acs.Body)
				}
				if v := b.Get(w.edgeURL + "/auth/verify"); v.Status != http.StatusUnauthorized {
					t.Errorf("/auth/verify after the refused login: %d, want 401", v.Status)
				}
				if got := w.countUsers(t, acmeID); got != before {
					t.Errorf("the refused login made %d users, want none", got-before)
				}
				if w.logs.Count("reason="+c.refused) != refusals+1 {
					t.Errorf("the edge did not log the refusal with reason=%s", c.refused)
				}
				return
			}

			first := w.signedIn(t, returnTo(c.flow), "manager")(signIn())
			if got := w.countUsers(t, acmeID); got != before+1 {
				t.Fatalf("the first login made %d users, want exactly 1", got-before)
			}
			w.checkUser(t, acmeID, first, conn.id, u, "manager")

			second := w.signedIn(t, returnTo(c.flow), "manager")(signIn())
			if second != first {
				t.Errorf("the second login signed in user %s, want the first login's %s", second, first)
			}
			if got := w.countUsers(t, acmeID); got != before+1 {
				t.Errorf("the second login made %d more users, want none", got-before-1)
			}
		})
	}
}

// returnTo is where a login of the flow asks to land: the edge's return_to
// for SP-initiated logins, the RelayState for IdP-initiated ones.
func returnTo(flow string) string { return "/app/" + flow }

// spInitiatedLogin starts a login at the edge's connection c of org in a
// new browser: the edge sends the browser to SimpleSAMLphp (idp), u types
// their name and password into its login form, and its auto-posting form
// brings the response to the edge's ACS. It returns the browser and the
// edge's answer.
func (w *world) spInitiatedLogin(t testing.TB, idp *simpleSAMLphp, org string, c connection, u idpUser) (*testenv.Browser, *testenv.Page) {
	t.Helper()
	b := w.browser(t)
	loginForm := b.Get(w.edgeURL + "/saml/" + org + "/" + c.id + "/login?return_to=" + url.QueryEscape(returnTo(spInitiated)))
	return b, w.postResponse(t, idp.login(t, b, loginForm, u), c.signing)
}

// idpInitiatedLogin signs u in at SimpleSAMLphp (idp), unsolicited, for
// the SP entityID (the edge's connection c), in a new browser. It returns
// the browser and the edge's answer.
func (w *world) idpInitiatedLogin(t testing.TB, idp *simpleSAMLphp, entityID string, c connection, u idpUser) (*testenv.Browser, *testenv.Page) {
	t.Helper()
	b := w.browser(t)
	loginForm := b.Get(idp.IdPInitiatedURL(entityID, returnTo(idpInitiated)))
	return b, w.postResponse(t, idp.login(t, b, loginForm, u), c.signing)
}

// browser is a person's browser: it follows redirects, except to the edge,
// whose answers the test checks hop by hop.
func (w *world) browser(t testing.TB) *testenv.Browser {
	t.Helper()
	u, err := url.Parse(w.edgeURL)
	if err != nil {
		t.Fatal(err)
	}
	return testenv.NewBrowser(t, testenv.StopAt(u.Host))
}

// signedIn checks the edge's answer to a response posted to its ACS in
// browser b: the person is signed in, with role, and sent to returnTo. It
// returns the user /auth/verify names.
func (w *world) signedIn(t *testing.T, returnTo, role string) func(b *testenv.Browser, acs *testenv.Page) string {
	return func(b *testenv.Browser, acs *testenv.Page) string {
		t.Helper()
		if acs.Status != http.StatusSeeOther || acs.Header.Get("Location") != returnTo {
			t.Fatalf("the edge's ACS answered %d (Location %q), want 303 to %s:\n%s",
				acs.Status, acs.Header.Get("Location"), returnTo, acs.Body)
		}
		v := b.Get(w.edgeURL + "/auth/verify")
		userID := v.Header.Get("X-Jitprov-User-Id")
		if v.Status != http.StatusOK || userID == "" {
			t.Fatalf("/auth/verify after the login: %d, user %q; want 200 and a user", v.Status, userID)
		}
		if got := v.Header.Get("X-Jitprov-Role"); got != role {
			t.Errorf("/auth/verify: role %q, want %s", got, role)
		}
		return userID
	}
}

// postResponse checks that SimpleSAMLphp's page auto-posts a SAML response
// to the edge, signed and encrypted as want says — so that each case tests
// what it is named after, whatever SimpleSAMLphp's defaults — and posts it
// as the page's script would. It returns the edge's answer.
func (w *world) postResponse(t testing.TB, responsePage *testenv.Page, want signing) *testenv.Page {
	t.Helper()
	forms := responsePage.Forms()
	if len(forms) != 1 || forms[0].Fields.Get("SAMLResponse") == "" {
		t.Fatalf("SimpleSAMLphp did not answer with a form posting a SAMLResponse: %d at %s:\n%s",
			responsePage.Status, responsePage.URL, responsePage.Body)
	}
	if !strings.HasPrefix(forms[0].Action, w.edgeURL+"/saml/") {
		t.Fatalf("SimpleSAMLphp posts the response to %s, not to the edge's ACS", forms[0].Action)
	}
	raw, err := base64.StdEncoding.DecodeString(forms[0].Fields.Get("SAMLResponse"))
	if err != nil {
		t.Fatalf("SAMLResponse: %v", err)
	}
	var r responseShape
	if err := xml.Unmarshal(raw, &r); err != nil {
		t.Fatalf("SAMLResponse: %v:\n%s", err, raw)
	}
	got := signing{signResponse: r.Signature != nil, encrypt: r.EncryptedAssertion != nil,
		signAssertion: r.Assertion != nil && r.Assertion.Signature != nil}
	if want.encrypt { // the assertion's signature is inside the encryption
		got.signAssertion = want.signAssertion
		if r.Assertion != nil {
			t.Errorf("the response carries a plaintext assertion beside the encrypted one")
		}
	}
	if got.signResponse != want.signResponse || got.signAssertion != want.signAssertion || got.encrypt != want.encrypt {
		t.Fatalf("SimpleSAMLphp's response: response signed %t, assertion signed %t, encrypted %t; the case wants %t, %t, %t:\n%s",
			got.signResponse, got.signAssertion, got.encrypt, want.signResponse, want.signAssertion, want.encrypt, raw)
	}
	return responsePage.Submit()
}

// responseShape is what of a SAML Response tells how it is signed and
// encrypted: its own signature, and its assertion's, or an encrypted one.
type responseShape struct {
	Signature *struct{} `xml:"http://www.w3.org/2000/09/xmldsig# Signature"`
	Assertion *struct {
		Signature *struct{} `xml:"http://www.w3.org/2000/09/xmldsig# Signature"`
	} `xml:"urn:oasis:names:tc:SAML:2.0:assertion Assertion"`
	EncryptedAssertion *struct{} `xml:"urn:oasis:names:tc:SAML:2.0:assertion EncryptedAssertion"`
}

// login fills in SimpleSAMLphp's login form on page p as u and returns the
// page SimpleSAMLphp answers with: after a successful login, the form that
// posts the SAML response to the SP.
func (s *simpleSAMLphp) login(t testing.TB, b *testenv.Browser, p *testenv.Page, u idpUser) *testenv.Page {
	t.Helper()
	if !strings.HasPrefix(p.URL.String(), s.BaseURL) {
		t.Fatalf("the browser is at %s (%d), not at SimpleSAMLphp's %s:\n%s", p.URL, p.Status, s.BaseURL, p.Body)
	}
	for _, f := range p.Forms() {
		if _, ok := f.Fields["username"]; !ok {
			continue
		}
		f.Fields.Set("username", u.UID)
		f.Fields.Set("password", u.Password)
		return b.Post(f.Action, f.Fields)
	}
	t.Fatalf("no login form at %s (%d):\n%s", p.URL, p.Status, p.Body)
	return nil
}

// store is c as stored for org, for the IdP idp: the settings an
// organisations file would hold. The SP entity id is pinned, as production
// connections should have it.
func (c connection) store(t testing.TB, org string, idp *simpleSAMLphp) store.Connection {
	t.Helper()
	return store.Connection{OrganizationID: org, ID: c.id, Protocol: "saml", Settings: samlSettings{
		SPEntityID:             "https://sp.interop.jitprov.test/" + org + "/" + c.id,
		IDPMetadataURL:         idp.MetadataURL(),
		AllowIDPInitiated:      c.allowIdPInitiated,
		RequireSignedAssertion: c.requireSignedAssertion,
		EmailVerified:          true,
		Attributes: map[string]string{"email": "mail", "given_name": "givenName", "family_name": "sn",
			"groups": "eduPersonAffiliation"},
		GroupRoles: []map[string]string{{"group": "staff", "role": "manager"}},
	}.json(t)}
}

// serve makes SimpleSAMLphp (idp) serve the edge's connections conns of
// org: it learns each from the edge's SP metadata, as an IdP admin imports
// it. It returns each connection's SP entity id.
func (w *world) serve(t testing.TB, idp *simpleSAMLphp, org string, conns ...connection) map[string]string {
	t.Helper()
	var sps []spRemote
	entityIDs := map[string]string{}
	for _, c := range conns {
		sp := spRemoteFromMetadata(t, w.edgeURL+"/saml/"+org+"/"+c.id+"/metadata", c.signing.encrypt)
		sp.SignResponse, sp.SignAssertion, sp.EncryptAssertion = c.signing.signResponse, c.signing.signAssertion, c.signing.encrypt
		sps = append(sps, sp)
		entityIDs[c.id] = sp.EntityID
	}
	idp.SetServiceProviders(t, sps)
	return entityIDs
}

func (w *world) countUsers(t testing.TB, org string) int {
	t.Helper()
	var n int
	if err := w.store.Pool().QueryRow(context.Background(), `SELECT count(*) FROM users WHERE org_id = $1`, org).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// checkUser checks the user a login through conn provisioned for u: in the
// organisation, found by the IdP identity (conn, the persistent NameID
// SimpleSAMLphp made of the uid), with the IdP's attributes, and a seat
// taken per user.
func (w *world) checkUser(t testing.TB, org, userID, conn string, u idpUser, wantRole string) {
	t.Helper()
	ctx := context.Background()
	if got := w.userOf(t, org, conn, u.UID); got != userID {
		t.Errorf("the identity (%s, %s) is user %s, but the session names %s", conn, u.UID, got, userID)
	}
	var email, given, family, role, status string
	var groups []string
	if err := w.store.Pool().QueryRow(ctx, `SELECT email, given_name, family_name, groups, role, status FROM users WHERE id = $1`, userID).
		Scan(&email, &given, &family, &groups, &role, &status); err != nil {
		t.Fatalf("user %s: %v", userID, err)
	}
	got := fmt.Sprint(email, "|", given, "|", family, "|", groups, "|", role, "|", status)
	want := fmt.Sprint(u.Email, "|", u.GivenName, "|", u.FamilyName, "|", u.Groups, "|", wantRole, "|", store.StatusActive)
	if got != want {
		t.Errorf("user %s is (email|given|family|groups|role|status) %s, want %s", userID, got, want)
	}
	var seats, users int
	if err := w.store.Pool().QueryRow(ctx, `SELECT seats_used, (SELECT count(*) FROM users WHERE org_id = $1) FROM organizations WHERE id = $1`, org).
		Scan(&seats, &users); err != nil {
		t.Fatal(err)
	}
	if seats != users {
		t.Errorf("%d seats used for %d users", seats, users)
	}
}

// userOf is the user the IdP identity (org, conn, externalID) belongs to.
func (w *world) userOf(t testing.TB, org, conn, externalID string) string {
	t.Helper()
	var u store.User
	if err := w.store.InTx(context.Background(), func(ctx context.Context, tx store.Tx) error {
		var err error
		u, err = tx.UserByIdentity(ctx, org, conn, externalID)
		return err
	}); err != nil {
		t.Fatalf("no user for the identity (%s, %s, %s): %v", org, conn, externalID, err)
	}
	return u.ID
}
