package scim_test

import (
	"net/http"
	"strings"
	"testing"
)

// Input handling probes.
func TestSecurityInputs(t *testing.T) {
	h := newHarness(t, 10)
	id := h.createUser(t, "ada@acme.example", "ada@acme.example")
	t.Run("string false without path", func(t *testing.T) {
		body := `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"Replace","value":{"active":"False"}}]}`
		r := h.scim(t, http.MethodPatch, "/Users/"+id, body)
		t.Logf("%d %s", r.status, r.body)
		if r.status == http.StatusOK && r.json(t)["active"] != false {
			t.Errorf("PATCH {active: \"False\"} without a path left the user active")
		}
		h.scim(t, http.MethodPatch, "/Users/"+id, patchActive(true))
	})
	t.Run("string false in PUT", func(t *testing.T) {
		body := `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"ada@acme.example","active":"False"}`
		r := h.scim(t, http.MethodPut, "/Users/"+id, body)
		t.Logf("%d %s", r.status, r.body)
		if r.status == http.StatusOK && r.json(t)["active"] != false {
			t.Errorf("PUT active \"False\" left the user active")
		}
		h.scim(t, http.MethodPatch, "/Users/"+id, patchActive(true))
	})
	for _, c := range []struct{ name, method, path, body string }{
		{"bad uuid", http.MethodGet, "/Users/not-a-uuid", ""},
		{"bad uuid group", http.MethodGet, "/Groups/'; drop table users;--", ""},
		{"big POST", http.MethodPost, "/Users", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"` + strings.Repeat("a", 2<<20) + `"}`},
		{"big group POST", http.MethodPost, "/Groups", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group"],"displayName":"` + strings.Repeat("a", 2<<20) + `"}`},
		{"deep JSON", http.MethodPost, "/Users", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"x","name":` + strings.Repeat(`{"a":`, 10000) + `1` + strings.Repeat(`}`, 10000) + `}`},
		{"patch groups readonly", http.MethodPatch, "/Users/" + id, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"add","path":"groups","value":[{"value":"x"}]}]}`},
		{"patch id", http.MethodPatch, "/Users/" + id, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","path":"id","value":"x"}]}`},
		{"patch name string", http.MethodPatch, "/Users/" + id, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"add","path":"name","value":"x"}]}`},
		{"patch emails filter string", http.MethodPatch, "/Users/" + id, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","path":"emails[type eq \"work\"]","value":"x"}]}`},
		{"patch no-path emails obj", http.MethodPatch, "/Users/" + id, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","value":{"emails":{"value":5}}}]}`},
		{"patch no-path name number", http.MethodPatch, "/Users/" + id, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","value":{"name.givenName":5}}]}`},
		{"patch ext whole", http.MethodPatch, "/Users/" + id, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","value":{"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"manager":5,"department":["x"]}}}]}`},
		{"patch userName number", http.MethodPatch, "/Users/" + id, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","value":{"userName":5}}]}`},
		{"patch userName empty via remove", http.MethodPatch, "/Users/" + id, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"remove","path":"userName"}]}`},
		{"patch members sub remove all", http.MethodPost, "/Groups", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group"],"displayName":"G","members":[{"value":5},"x",null]}`},
		{"filter unsupported", http.MethodGet, "/Users?filter=userName%20co%20%22a%22", ""},
		{"filter garbage", http.MethodGet, "/Users?filter=%22%5B%5D%5B", ""},
		{"rewrite trick", http.MethodGet, "/Users?filter=emails%5Btype%20eq%20%22work%22%5D.value%20eq%20%22x%22%20or%20userName%20eq%20%22ada@acme.example%22", ""},
		{"count huge", http.MethodGet, "/Users?count=100000000&startIndex=-5", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := h.scim(t, c.method, c.path, c.body)
			b := string(r.body)
			if len(b) > 400 {
				b = b[:400]
			}
			t.Logf("%d %s", r.status, b)
			if r.status >= 500 || strings.Contains(b, "postgres") || strings.Contains(b, "panic") || strings.Contains(b, "goroutine") {
				t.Errorf("%s: %d %s", c.name, r.status, b)
			}
		})
	}
	if u, _ := h.s.User(t.Context(), "acme", id); u.Email != "ada@acme.example" {
		t.Logf("user now %+v", u)
	}
}
