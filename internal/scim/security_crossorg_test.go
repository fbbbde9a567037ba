package scim_test

import (
	"net/http"
	"strings"
	"testing"
)

// Sound (checked): acme's SCIM token reaches nothing of globex.
func TestSecurityCrossOrg(t *testing.T) {
	h := newHarness(t, 10)
	gtok := h.newToken(t, "globex", "scim")
	r := h.do(t, gtok, http.MethodPost, "/scim/v2/Users", userBody("eve@globex.example", "eve@globex.example", true))
	if r.status != http.StatusCreated {
		t.Fatalf("globex create: %d %s", r.status, r.body)
	}
	eve := r.json(t)["id"].(string)
	r = h.do(t, gtok, http.MethodPost, "/scim/v2/Groups", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group"],"displayName":"Managers","members":[{"value":"`+eve+`"}]}`)
	if r.status != http.StatusCreated {
		t.Fatalf("globex group: %d %s", r.status, r.body)
	}
	gg := r.json(t)["id"].(string)
	ada := h.createUser(t, "ada@acme.example", "ada@acme.example")
	patch := func(ops ...any) string {
		return mustJSON(map[string]any{"schemas": []string{"urn:ietf:params:scim:api:messages:2.0:PatchOp"}, "Operations": ops})
	}
	for _, c := range []struct{ method, path, body string }{
		{http.MethodGet, "/Users/" + eve, ""},
		{http.MethodPut, "/Users/" + eve, userBody("x@acme.example", "x@acme.example", true)},
		{http.MethodPatch, "/Users/" + eve, patchActive(false)},
		{http.MethodDelete, "/Users/" + eve, ""},
		{http.MethodGet, "/Groups/" + gg, ""},
		{http.MethodPatch, "/Groups/" + gg, patch(map[string]any{"op": "add", "path": "members", "value": []any{map[string]any{"value": ada}}})},
		{http.MethodPut, "/Groups/" + gg, `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group"],"displayName":"X"}`},
		{http.MethodDelete, "/Groups/" + gg, ""},
	} {
		if r := h.scim(t, c.method, c.path, c.body); r.status != http.StatusNotFound {
			t.Errorf("%s %s with acme's token: %d %s", c.method, c.path, r.status, r.body)
		}
	}
	for _, f := range []string{`id eq "` + eve + `"`, `userName eq "eve@globex.example"`, `emails.value eq "eve@globex.example"`} {
		r := h.scim(t, http.MethodGet, "/Users?filter="+strings.ReplaceAll(strings.ReplaceAll(f, " ", "%20"), `"`, "%22"), "")
		if r.status != http.StatusOK || r.json(t)["totalResults"].(float64) != 0 {
			t.Errorf("filter %s: %d %s", f, r.status, r.body)
		}
	}
	// an acme group may not take globex's user, nor a POST adopt them
	r = h.scim(t, http.MethodPost, "/Groups", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group"],"displayName":"G","members":[{"value":"`+eve+`"}]}`)
	if r.status != http.StatusBadRequest {
		t.Errorf("acme group with globex member: %d %s", r.status, r.body)
	}
	r = h.scim(t, http.MethodPost, "/Users", userBody("eve@globex.example", "eve@globex.example", true))
	if r.status != http.StatusCreated || r.json(t)["id"] == eve {
		t.Errorf("acme POST of globex's person: %d %s", r.status, r.body)
	}
	// globex's user is untouched
	u, err := h.s.User(t.Context(), "globex", eve)
	if err != nil || u.Status != "active" || len(u.Groups) != 1 {
		t.Errorf("globex user changed: %+v %v", u, err)
	}
	// tokens: write/read tokens at SCIM 403; SCIM token at API 403
	for _, scope := range []string{"read", "write"} {
		if r := h.do(t, h.newToken(t, "acme", scope), http.MethodGet, "/scim/v2/Users", ""); r.status != http.StatusForbidden {
			t.Errorf("%s token at SCIM: %d", scope, r.status)
		}
	}
	for _, p := range []string{"/api/v1/organizations/acme/users", "/api/v1/organizations", "/api/v1/tokens"} {
		if r := h.do(t, h.token, http.MethodGet, p, ""); r.status != http.StatusForbidden {
			t.Errorf("SCIM token at %s: %d %s", p, r.status, r.body)
		}
	}
	if r := h.do(t, "jpt_nope", http.MethodGet, "/scim/v2/Users", ""); r.status != http.StatusUnauthorized || r.header.Get("WWW-Authenticate") == "" {
		t.Errorf("bad token: %d %v", r.status, r.header)
	}
}
