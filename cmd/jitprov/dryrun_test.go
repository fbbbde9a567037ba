package main

import (
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jitprov/jitprov/internal/store"
	"github.com/jitprov/jitprov/internal/testenv"
)

// dry-run --saml-response and --id-token map what an IdP sent by a
// connection, say that nothing was validated, and write nothing.
func TestCLIDryRunAssertions(t *testing.T) {
	h := newAdminEnv(t)
	raw := func(m map[string]any) []byte {
		b, _ := json.Marshal(m)
		return b
	}
	if err := h.s.ApplyOrganizations(t.Context(), nil, []store.Connection{
		{OrganizationID: "acme", ID: "okta", Protocol: "saml", Settings: raw(map[string]any{
			"idp_metadata_xml": testenv.IDPMetadata(t, "https://idp.example/"), "sp_entity_id": "urn:test:okta",
			"attributes": map[string]string{"email": "mail", "groups": "groups"}, "email_verified": true,
			"group_roles": []map[string]string{{"group": "eng-admins", "role": "admin"}}})},
		{OrganizationID: "acme", ID: "entra", Protocol: "oidc", Settings: raw(map[string]any{
			"issuer": "https://login.example", "client_id": "x", "client_secret_env": "NOPE"})},
	}); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	resp := write("response.b64", base64.StdEncoding.EncodeToString([]byte(testenv.SAMLResponseXML("alice-1",
		"urn:oasis:names:tc:SAML:2.0:nameid-format:persistent", map[string][]string{"mail": {"alice@acme.example"}, "groups": {"eng-admins"}}))))
	tok := write("id_token", testenv.IDToken(t, map[string]any{"sub": "bob-1"})+"\n")
	ui := write("userinfo.json", `{"sub":"bob-1","email":"bob@acme.example","email_verified":true}`)
	enc := write("encrypted.xml", testenv.EncryptedSAMLResponseXML())
	before := snapshot(t, h.s)
	users := func() int {
		var n int
		if err := h.s.Pool().QueryRow(t.Context(), `SELECT (SELECT count(*) FROM users) + (SELECT count(*) FROM outbox)`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	rows := users()

	r := h.jitprov(t, "dry-run", "acme", "--connection", "okta", "--saml-response", resp).must(t)
	for _, want := range []string{"Outcome:", "created", "alice@acme.example (verified: true)", "Role review:", "admin", "not validated", "nothing was written"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("--saml-response: no %q in\n%s", want, r.stdout)
		}
	}
	r = h.jitprov(t, "dry-run", "acme", "--connection", "entra", "--id-token", tok, "--userinfo", ui, "-o", "json").must(t)
	var got struct {
		Result   struct{ Outcome string }
		Identity struct{ Email string }
		Caveat   string
	}
	if err := json.Unmarshal([]byte(r.stdout), &got); err != nil || got.Result.Outcome != "created" || got.Identity.Email != "bob@acme.example" || !strings.HasPrefix(got.Caveat, "not validated") {
		t.Errorf("--id-token -o json: %v\n%s", err, r.stdout)
	}
	if r := h.jitprov(t, "dry-run", "acme", "--connection", "okta", "--saml-response", enc); r.code != exitUsage || !strings.Contains(r.stderr, "decrypted assertion") {
		t.Errorf("an encrypted assertion: exit %d\n%s", r.code, r.stderr)
	}
	if r := h.jitprov(t, "dry-run", "acme", "--saml-response", resp); r.code != exitUsage || !strings.Contains(r.stderr, "--connection") {
		t.Errorf("no --connection: exit %d\n%s", r.code, r.stderr)
	}
	if r := h.jitprov(t, "dry-run", "acme", "--connection", "okta", "--saml-response", resp, "--id-token", tok); r.code != exitUsage {
		t.Errorf("two inputs: exit %d\n%s", r.code, r.stderr)
	}
	if users() != rows || snapshot(t, h.s) != before {
		t.Error("the dry runs wrote")
	}
}
