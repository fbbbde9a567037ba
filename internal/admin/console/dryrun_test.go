package console_test

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/jitprov/jitprov/internal/admin"
	"github.com/jitprov/jitprov/internal/store"
	"github.com/jitprov/jitprov/internal/testenv"
)

// The dry-run tester takes a pasted SAML response or ID token, shows the
// mapped identity, the decision and that nothing was validated, and
// writes nothing.
func TestConnectionsDryRunPasted(t *testing.T) {
	w := newWorld(t, 5)
	raw := func(m map[string]any) []byte {
		b, _ := json.Marshal(m)
		return b
	}
	if err := w.s.ApplyOrganizations(t.Context(), nil, []store.Connection{
		{OrganizationID: "acme", ID: "okta", Protocol: "saml", Settings: raw(map[string]any{
			"idp_metadata_xml": testenv.IDPMetadata(t, "https://idp.example/"), "sp_entity_id": "urn:test:okta",
			"attributes": map[string]string{"email": "mail", "given_name": "givenName"}, "email_verified": true})},
		{OrganizationID: "acme", ID: "entra", Protocol: "oidc", Settings: raw(map[string]any{
			"issuer": "https://login.example", "client_id": "x", "client_secret_env": "NOPE"})},
	}); err != nil {
		t.Fatal(err)
	}
	boss, _ := w.admin(t, "acme", "boss")
	users := func() int {
		page, err := w.core.Users(t.Context(), admin.Operator("t"), store.UserFilter{OrganizationID: "acme"})
		if err != nil {
			t.Fatal(err)
		}
		return len(page.Users)
	}
	dry := func(fields map[string]string) *testenv.Page {
		t.Helper()
		f := boss.Get(w.url("/admin/orgs/acme/connections")).Forms()[0]
		for k, v := range fields {
			f.Fields.Set(k, v)
		}
		return boss.Post(f.Action, f.Fields)
	}
	before := users()
	saml := testenv.SAMLResponseXML("alice-1", "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent",
		map[string][]string{"mail": {"alice@acme.example"}, "givenName": {"Alice"}})
	mustStatus(t, dry(map[string]string{"input": "saml", "connection": "okta", "pasted": saml}), http.StatusOK,
		"Sign-in would: Created (first login)", "a new user, alice@acme.example", "Mapped identity", "Not validated", "not validated: a dry run of the mapping only", "Alice", "vouched for")
	mustStatus(t, dry(map[string]string{"input": "oidc", "connection": "entra", "pasted": testenv.IDToken(t, map[string]any{"sub": "bob-1"}),
		"userinfo": `{"sub":"bob-1","email":"bob@acme.example"}`}), http.StatusOK, "Sign-in would: Created (first login)", "bob@acme.example", "not vouched for")
	mustStatus(t, dry(map[string]string{"input": "saml", "connection": "okta", "pasted": testenv.EncryptedSAMLResponseXML()}), http.StatusBadRequest,
		"The SAML response: ", "paste the decrypted assertion")
	mustStatus(t, dry(map[string]string{"input": "oidc", "connection": "okta", "pasted": "x.y.z"}), http.StatusBadRequest, "The connection: ")
	mustStatus(t, dry(map[string]string{"input": "oidc", "connection": "entra"}), http.StatusBadRequest, "Please paste the ID token")
	if got := users(); got != before {
		t.Errorf("dry runs wrote users: %d, want %d", got, before)
	}
}
