package scim_test

import (
	"fmt"
	"net/http"
	"slices"
	"sync"
	"testing"
)

// F6: ChangeDirectoryGroup locks users in two passes, each in id order:
// first the current members (refreshMembers, when the PATCH renames the
// group), then the members added/removed (changeMembers). A rename+add
// of G1 (member hi, adding lo) locks hi then lo; an add of lo and hi to G2
// locks lo then hi: a deadlock, which Postgres breaks by failing one
// transaction with 40P01, mapped to store.ErrConflict and answered 409
// ("a user of the organisation already has this userName or email"),
// without retry.
func TestSecurityGroupRenameDeadlock(t *testing.T) {
	h := newHarness(t, 50)
	var ids []string
	for i := range 16 {
		ids = append(ids, h.createUser(t, fmt.Sprintf("u%d@acme.example", i), fmt.Sprintf("u%d@acme.example", i)))
	}
	slices.Sort(ids)
	lo, his := ids[0], ids[1:]
	group := func(name string, members ...string) string {
		ms := []any{}
		for _, m := range members {
			ms = append(ms, map[string]any{"value": m})
		}
		r := h.scim(t, http.MethodPost, "/Groups", mustJSON(map[string]any{"schemas": []string{"urn:ietf:params:scim:schemas:core:2.0:Group"},
			"displayName": name, "members": ms}))
		if r.status != http.StatusCreated {
			t.Fatalf("create group: %d %s", r.status, r.body)
		}
		return r.json(t)["id"].(string)
	}
	g1, g2 := group("g1", his...), group("g2")
	members := func(ids []string) []any {
		ms := []any{}
		for _, m := range ids {
			ms = append(ms, map[string]any{"value": m})
		}
		return ms
	}
	patch := func(ops ...any) string {
		return mustJSON(map[string]any{"schemas": []string{"urn:ietf:params:scim:api:messages:2.0:PatchOp"}, "Operations": ops})
	}
	failures := 0
	for i := range 20 {
		var wg sync.WaitGroup
		var r1, r2 response
		wg.Go(func() {
			r1 = h.scim(t, http.MethodPatch, "/Groups/"+g1, patch(
				map[string]any{"op": "replace", "path": "displayName", "value": fmt.Sprintf("g1-%d", i)},
				map[string]any{"op": "add", "path": "members", "value": []any{map[string]any{"value": lo}}}))
		})
		wg.Go(func() {
			r2 = h.scim(t, http.MethodPatch, "/Groups/"+g2, patch(
				map[string]any{"op": "add", "path": "members", "value": members(ids)}))
		})
		wg.Wait()
		for _, r := range []response{r1, r2} {
			if r.status != http.StatusOK {
				failures++
				t.Logf("round %d: %d %s", i, r.status, r.body)
			}
		}
		// reset: lo leaves both groups (sequential)
		for _, g := range []string{g1, g2} {
			if r := h.scim(t, http.MethodPatch, "/Groups/"+g, patch(map[string]any{"op": "remove", "path": fmt.Sprintf("members[value eq %q]", lo)})); r.status != http.StatusOK {
				t.Fatalf("reset: %d %s", r.status, r.body)
			}
		}
		if r := h.scim(t, http.MethodPatch, "/Groups/"+g2, patch(map[string]any{"op": "remove", "path": "members"})); r.status != http.StatusOK {
			t.Fatalf("reset: %d %s", r.status, r.body)
		}
	}
	if failures > 0 {
		t.Errorf("%d of 40 concurrent group PATCHes failed (deadlock answered as a conflict)", failures)
	}
}

// F6b: DELETE of a group (locks the group, cascades its memberships, then
// locks each member) against DELETE of a member (locks the user, then
// deletes their membership rows): opposite orders, a deadlock answered
// 409.
func TestSecurityDeleteGroupVsDeleteUserDeadlock(t *testing.T) {
	h := newHarness(t, 50)
	failures := 0
	for round := range 4 {
		var ids []string
		for i := range 8 {
			ids = append(ids, h.createUser(t, fmt.Sprintf("r%du%d@acme.example", round, i), fmt.Sprintf("r%du%d@acme.example", round, i)))
		}
		ms := []any{}
		for _, id := range ids {
			ms = append(ms, map[string]any{"value": id})
		}
		r := h.scim(t, http.MethodPost, "/Groups", mustJSON(map[string]any{"schemas": []string{"urn:ietf:params:scim:schemas:core:2.0:Group"},
			"displayName": fmt.Sprintf("g%d", round), "members": ms}))
		if r.status != http.StatusCreated {
			t.Fatalf("group: %d %s", r.status, r.body)
		}
		g := r.json(t)["id"].(string)
		var wg sync.WaitGroup
		results := make([]response, len(ids)+1)
		wg.Go(func() { results[0] = h.scim(t, http.MethodDelete, "/Groups/"+g, "") })
		for i, id := range ids {
			wg.Go(func() { results[i+1] = h.scim(t, http.MethodDelete, "/Users/"+id, "") })
		}
		wg.Wait()
		for _, r := range results {
			if r.status != http.StatusNoContent {
				failures++
				t.Logf("round %d: %d %s", round, r.status, r.body)
			}
		}
	}
	if failures > 0 {
		t.Errorf("%d concurrent DELETEs failed", failures)
	}
}
