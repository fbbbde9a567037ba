package admin_test

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jitprov/jitprov/events"
	"github.com/jitprov/jitprov/internal/admin"
	"github.com/jitprov/jitprov/internal/store"
	"github.com/jitprov/jitprov/internal/testenv"
)

const (
	persistent = "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent"
	transient  = "urn:oasis:names:tc:SAML:2.0:nameid-format:transient"
)

// DryRunConnections adds to acme a SAML connection "okta" and an OIDC
// connection "entra" that map email, groups and a group rule to admin.
func dryRunConnections(t *testing.T, w *world) {
	t.Helper()
	raw := func(m map[string]any) []byte {
		b, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	rules := []map[string]string{{"group": "eng-admins", "role": "admin"}}
	if err := w.s.ApplyOrganizations(t.Context(), nil, []store.Connection{
		{OrganizationID: "acme", ID: "okta", Protocol: "saml", Settings: raw(map[string]any{
			"idp_metadata_xml": testenv.IDPMetadata(t, "https://idp.example/"), "sp_entity_id": "urn:test:okta",
			"attributes":     map[string]string{"email": "mail", "given_name": "givenName", "groups": "groups"},
			"email_verified": true, "group_roles": rules})},
		{OrganizationID: "acme", ID: "entra", Protocol: "oidc", Settings: raw(map[string]any{
			"issuer": "https://login.example", "client_id": "x", "client_secret_env": "NOPE",
			"claims": map[string]string{"groups": "groups"}, "group_roles": rules})},
	}); err != nil {
		t.Fatal(err)
	}
}

// A dry run from a SAML response or an ID token maps it as the edge
// would, predicts the login, writes nothing, and says it validated
// nothing.
func TestDryRunMapped(t *testing.T) {
	w := newWorld(t, 1)
	dryRunConnections(t, w)
	ctx := t.Context()
	alice := testenv.SAMLResponseXML("alice-1", persistent, map[string][]string{
		"mail": {"alice@acme.example"}, "givenName": {"Alice"}, "groups": {"eng-admins", "eng"}})
	token := testenv.IDToken(t, map[string]any{"iss": "https://login.example", "sub": "bob-1", "aud": "x",
		"iat": time.Now().Unix(), "email": "bob@acme.example", "email_verified": true, "groups": []string{"eng"}})
	type run func() (admin.MappedDryRun, error)
	samlRun := func(p admin.Principal, conn, resp string) run {
		return func() (admin.MappedDryRun, error) { return w.core.DryRunSAML(ctx, p, "acme", conn, resp) }
	}
	oidcRun := func(p admin.Principal, conn, tok, ui string) run {
		return func() (admin.MappedDryRun, error) { return w.core.DryRunOIDC(ctx, p, "acme", conn, tok, []byte(ui)) }
	}
	rows := `SELECT (SELECT count(*) FROM users) + (SELECT count(*) FROM identities) + (SELECT count(*) FROM outbox) + (SELECT count(*) FROM admin_audit) + (SELECT count(*) FROM role_reviews)`
	for _, tc := range []struct {
		name      string
		run       run
		fullOrg   bool
		outcome   events.Outcome
		email     string
		role      string // the role the user gets
		review    string // the role a review is opened for
		errField  string // a FieldError on this field
		errSubstr string
		forbidden bool
	}{
		{name: "SAML base64 creates with a review", run: samlRun(acmeReader, "okta", base64.StdEncoding.EncodeToString([]byte(alice))),
			outcome: events.OutcomeCreated, email: "alice@acme.example", role: "member", review: "admin"},
		{name: "SAML XML", run: samlRun(acmeReader, "okta", alice), outcome: events.OutcomeCreated, email: "alice@acme.example", role: "member", review: "admin"},
		{name: "OIDC creates", run: oidcRun(acmeReader, "entra", token, ""), outcome: events.OutcomeCreated, email: "bob@acme.example", role: "member"},
		{name: "OIDC with userinfo", run: oidcRun(acmeReader, "entra", testenv.IDToken(t, map[string]any{"sub": "carol-1"}),
			`{"sub":"carol-1","email":"carol@acme.example","email_verified":true,"groups":["eng-admins"]}`),
			outcome: events.OutcomeCreated, email: "carol@acme.example", role: "member", review: "admin"},
		{name: "transient NameID refused by the mapping", run: samlRun(acmeReader, "okta", testenv.SAMLResponseXML("x", transient, nil)),
			errField: "saml_response", errSubstr: "refused"},
		{name: "encrypted assertion", run: samlRun(acmeReader, "okta", base64.StdEncoding.EncodeToString([]byte(testenv.EncryptedSAMLResponseXML()))),
			errField: "saml_response", errSubstr: "decrypted assertion"},
		{name: "not a JWT", run: oidcRun(acmeReader, "entra", "nope", ""), errField: "id_token"},
		{name: "userinfo of someone else", run: oidcRun(acmeReader, "entra", token, `{"sub":"eve"}`), errField: "userinfo"},
		{name: "SAML into an OIDC connection", run: samlRun(acmeReader, "entra", alice), errField: "connection_id"},
		{name: "no such connection", run: oidcRun(acmeReader, "gone", token, ""), errField: "connection_id"},
		{name: "no connection", run: oidcRun(acmeReader, "", token, ""), errField: "connection_id"},
		{name: "another organisation's principal", run: samlRun(globexWriter, "okta", alice), forbidden: true},
		{name: "full organisation refuses", run: oidcRun(acmeReader, "entra", token, ""), fullOrg: true, outcome: events.OutcomeRejected, email: "bob@acme.example"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.fullOrg {
				w.login(t, "acme", "first") // takes the only seat
			}
			before := w.count(t, rows)
			got, err := tc.run()
			if after := w.count(t, rows); after != before {
				t.Errorf("the dry run wrote rows: %d, then %d", before, after)
			}
			switch {
			case tc.forbidden:
				if !errors.Is(err, admin.ErrForbidden) {
					t.Errorf("err %v, want ErrForbidden", err)
				}
				return
			case tc.errField != "":
				var fe *admin.FieldError
				if !errors.As(err, &fe) || fe.Field != tc.errField || !strings.Contains(fe.Msg, tc.errSubstr) {
					t.Errorf("err %v, want a FieldError on %s saying %q", err, tc.errField, tc.errSubstr)
				}
				return
			case err != nil:
				t.Fatal(err)
			}
			if got.Caveat != admin.NotValidated || !strings.HasPrefix(got.Caveat, "not validated") {
				t.Errorf("caveat %q", got.Caveat)
			}
			if got.Result.Outcome != tc.outcome || got.Identity.Email != tc.email || !got.Identity.EmailVerified || got.Identity.OrganizationID != "acme" {
				t.Fatalf("got %+v, want %s for %s", got, tc.outcome, tc.email)
			}
			if tc.outcome != events.OutcomeCreated {
				return
			}
			if got.Result.User == nil || got.Result.User.Role != tc.role || got.Result.User.Email != tc.email {
				t.Errorf("user %+v, want %s as %s", got.Result.User, tc.email, tc.role)
			}
			if tc.review != "" && (got.Result.RoleReview == nil || got.Result.RoleReview.RequestedRole != tc.review || !slices.Contains(got.Identity.Roles, tc.review)) {
				t.Errorf("review %+v, roles %v; want a review for %s", got.Result.RoleReview, got.Identity.Roles, tc.review)
			}
		})
	}
}
