package scim_test

import (
	"fmt"
	"net/http"
	"sync"
	"testing"
)

// Sound (checked): concurrent SCIM creates, reactivations and JIT first
// sign-ins never seat more people than max_seats, and seats_used equals
// the active people.
func TestSecuritySeatsUnderConcurrency(t *testing.T) {
	h := newHarness(t, 5)
	var inactive []string
	for i := range 4 {
		r := h.scim(t, http.MethodPost, "/Users", userBody(fmt.Sprintf("i%d@acme.example", i), fmt.Sprintf("i%d@acme.example", i), false))
		if r.status != http.StatusCreated {
			t.Fatal(r.status)
		}
		inactive = append(inactive, r.json(t)["id"].(string))
	}
	var wg sync.WaitGroup
	for i := range 6 {
		wg.Go(func() {
			h.scim(t, http.MethodPost, "/Users", userBody(fmt.Sprintf("s%d@acme.example", i), fmt.Sprintf("s%d@acme.example", i), true))
		})
		wg.Go(func() { h.login(t, fmt.Sprintf("j%d@acme.example", i), fmt.Sprintf("j%d@acme.example", i)) })
	}
	for _, id := range inactive {
		wg.Go(func() { h.scim(t, http.MethodPatch, "/Users/"+id, patchActive(true)) })
	}
	wg.Wait()
	var used, active int
	_ = h.s.Pool().QueryRow(t.Context(), `SELECT seats_used, (SELECT count(*) FROM users WHERE org_id='acme' AND status='active') FROM organizations WHERE id='acme'`).Scan(&used, &active)
	if active > 5 || used != active {
		t.Errorf("seats_used %d, active %d, max 5", used, active)
	}
}
