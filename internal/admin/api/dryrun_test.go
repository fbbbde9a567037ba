package api_test

import (
	"encoding/base64"
	"encoding/json"
	"strconv"
	"strings"
	"testing"

	"github.com/jitprov/jitprov/events"
	"github.com/jitprov/jitprov/internal/admin"
	"github.com/jitprov/jitprov/internal/store"
	"github.com/jitprov/jitprov/internal/testenv"
)

// The dry-run route takes an identity (bare or wrapped), a SAML response
// or an ID token, and writes nothing.
func TestDryRunInputs(t *testing.T) {
	h := newHarness(t, 10, limits{failures: 1000, uses: -1})
	acme, _ := h.token(t, "acme", store.ScopeRead)
	raw := func(m map[string]any) []byte {
		b, _ := json.Marshal(m)
		return b
	}
	if err := h.s.ApplyOrganizations(t.Context(), nil, []store.Connection{
		{OrganizationID: "acme", ID: "okta", Protocol: "saml", Settings: raw(map[string]any{
			"idp_metadata_xml": testenv.IDPMetadata(t, "https://idp.example/"), "sp_entity_id": "urn:test:okta",
			"attributes": map[string]string{"email": "mail"}, "email_verified": true})},
		{OrganizationID: "acme", ID: "entra", Protocol: "oidc", Settings: raw(map[string]any{
			"issuer": "https://login.example", "client_id": "x", "client_secret_env": "NOPE"})},
	}); err != nil {
		t.Fatal(err)
	}
	resp := base64.StdEncoding.EncodeToString([]byte(testenv.SAMLResponseXML("alice-1", "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent",
		map[string][]string{"mail": {"alice@acme.example"}})))
	token := testenv.IDToken(t, map[string]any{"sub": "bob-1", "email": "bob@acme.example", "email_verified": true})
	enc := base64.StdEncoding.EncodeToString([]byte(testenv.EncryptedSAMLResponseXML()))
	rows := `SELECT (SELECT count(*) FROM users) + (SELECT count(*) FROM outbox) + (SELECT count(*) FROM admin_audit)`
	for _, tc := range []struct {
		name, body string
		status     int
		email      string // of the mapped identity and the created user
		field      string // of a 422
	}{
		{name: "bare identity", body: `{"connection_id":"idp","protocol":"saml","external_id":"zed","email":"zed@acme.example"}`, status: 200},
		{name: "wrapped identity", body: `{"identity":{"connection_id":"idp","protocol":"saml","external_id":"zed","email":"zed@acme.example"}}`, status: 200},
		{name: "SAML response", body: `{"connection_id":"okta","saml_response":` + strconv.Quote(resp) + `}`, status: 200, email: "alice@acme.example"},
		{name: "ID token and userinfo", body: `{"connection_id":"entra","id_token":"` + token + `","userinfo":{"sub":"bob-1","given_name":"Bob"}}`, status: 200, email: "bob@acme.example"},
		{name: "encrypted assertion", body: `{"connection_id":"okta","saml_response":"` + enc + `"}`, status: 422, field: "saml_response"},
		{name: "both inputs", body: `{"connection_id":"okta","saml_response":"x","id_token":"y"}`, status: 422, field: "id_token"},
		{name: "unknown field", body: `{"connection_id":"okta","saml_response":"x","nope":1}`, status: 422, field: "nope"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := h.count(t, rows)
			got := h.do(t, cred{bearer: acme}, "POST", "/api/v1/organizations/acme/dry-run", tc.body)
			if h.count(t, rows) != before {
				t.Error("the dry run wrote")
			}
			if got.status != tc.status {
				t.Fatalf("%d %s, want %d", got.status, got.body, tc.status)
			}
			var body struct {
				Result   events.ProvisioningResult
				Identity *events.Identity
				Caveat   string
				Error    struct{ Field string }
			}
			if err := json.Unmarshal(got.body, &body); err != nil {
				t.Fatal(err)
			}
			if tc.status != 200 {
				if body.Error.Field != tc.field {
					t.Errorf("%s, want the field %s", got.body, tc.field)
				}
				return
			}
			if body.Result.Outcome != events.OutcomeCreated {
				t.Errorf("%s, want created", got.body)
			}
			if tc.email == "" {
				if body.Identity != nil || body.Caveat != "" {
					t.Errorf("an identity dry run answers more than its result: %s", got.body)
				}
				return
			}
			if body.Identity == nil || body.Identity.Email != tc.email || body.Result.User == nil || body.Result.User.Email != tc.email ||
				body.Caveat != admin.NotValidated || !strings.Contains(string(got.body), `"caveat":"not validated`) {
				t.Errorf("%s, want %s mapped and created, with the caveat", got.body, tc.email)
			}
		})
	}
}
