package storetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/jitprov/jitprov/internal/store"
)

var adminTests = []subTest{
	{"UserChanges", testAdminUserChanges},
	{"DecideRoleReview", testDecideRoleReview},
	{"ListUsers", testListUsers},
	{"ListDecisions", testListDecisions},
	{"Audit", testAudit},
	{"CreateToken", testCreateToken},
	{"ListTokens", testListTokens},
	{"RevokeToken", testRevokeToken},
	{"TouchToken", testTouchToken},
}

// An admin's changes touch the one field they name, in the user's own
// organisation, and seats move only when asked.
func testAdminUserChanges(t *testing.T, s store.Store) {
	seed(t, s, 5)
	inTx(t, s, func(ctx context.Context, tx store.Tx) error { _, err := tx.TakeSeat(ctx, orgA); return err })
	u := createUser(t, s, user(orgA, connS, "ann@idp", "ann@acme.example"))
	inTx(t, s, func(ctx context.Context, tx store.Tx) error {
		got, err := tx.UserByID(ctx, orgA, u.ID)
		if err != nil || got.ID != u.ID {
			return fmt.Errorf("UserByID: %+v, %w", got, err)
		}
		suspended, err := tx.SetUserStatus(ctx, orgA, u.ID, store.StatusSuspended)
		if err != nil {
			return err
		}
		want := u
		want.Status = store.StatusSuspended
		checkUser(t, "SetUserStatus", suspended, want)
		if !suspended.LastLoginAt.Equal(u.LastLoginAt) {
			t.Errorf("SetUserStatus moved the last login from %v to %v", u.LastLoginAt, suspended.LastLoginAt)
		}
		promoted, err := tx.SetUserRole(ctx, orgA, u.ID, "editor")
		if err != nil {
			return err
		}
		want.Role = "editor"
		checkUser(t, "SetUserRole", promoted, want)
		o, err := tx.ReleaseSeat(ctx, orgA)
		if err != nil {
			return err
		}
		if o.SeatsUsed != 0 {
			t.Errorf("ReleaseSeat: seats used %d, want 0", o.SeatsUsed)
		}
		if o, err = tx.ReleaseSeat(ctx, orgA); err != nil || o.SeatsUsed != 0 {
			t.Errorf("ReleaseSeat with no seat used: %d, %v; want 0 (never negative)", o.SeatsUsed, err)
		}
		return nil
	})
	for _, c := range []struct {
		name string
		fn   func(ctx context.Context, tx store.Tx) error
	}{
		{"UserByID in another organisation", func(ctx context.Context, tx store.Tx) error { _, err := tx.UserByID(ctx, orgB, u.ID); return err }},
		{"UserByID unknown", func(ctx context.Context, tx store.Tx) error {
			_, err := tx.UserByID(ctx, orgA, uuid.NewString())
			return err
		}},
		{"SetUserStatus in another organisation", func(ctx context.Context, tx store.Tx) error {
			_, err := tx.SetUserStatus(ctx, orgB, u.ID, store.StatusActive)
			return err
		}},
		{"SetUserRole of an unknown user", func(ctx context.Context, tx store.Tx) error {
			_, err := tx.SetUserRole(ctx, orgA, uuid.NewString(), "viewer")
			return err
		}},
		{"ReleaseSeat of an unknown organisation", func(ctx context.Context, tx store.Tx) error { _, err := tx.ReleaseSeat(ctx, "no-such-org"); return err }},
	} {
		wantErr(t, c.name, s.InTx(t.Context(), c.fn), store.ErrNotFound)
	}
}

// A pending review is decided once; a second decision is a conflict that
// changes nothing. The queue lists pending reviews first, oldest first.
func testDecideRoleReview(t *testing.T, s store.Store) {
	seed(t, s, 10)
	var reviews []store.RoleReview
	for i := range 3 {
		u := createUser(t, s, user(orgA, connS, fmt.Sprintf("r%d@idp", i), fmt.Sprintf("r%d@acme.example", i)))
		r, err := read(t, s, func(ctx context.Context, tx store.Tx) (store.RoleReview, error) {
			return tx.CreateRoleReview(ctx, store.RoleReview{ID: uuid.NewString(), OrganizationID: orgA, UserID: u.ID,
				CurrentRole: "viewer", RequestedRole: "editor", LoginID: fmt.Sprintf("login-%d", i)})
		})
		if err != nil {
			t.Fatalf("CreateRoleReview: %v", err)
		}
		reviews = append(reviews, r)
	}
	decided, err := read(t, s, func(ctx context.Context, tx store.Tx) (store.RoleReview, error) {
		return tx.DecideRoleReview(ctx, orgA, reviews[0].ID, store.ReviewDenied, "user:admin-1", "not in the team")
	})
	if err != nil {
		t.Fatalf("DecideRoleReview: %v", err)
	}
	if decided.Status != store.ReviewDenied || decided.DecidedBy != "user:admin-1" || decided.Reason != "not in the team" || decided.DecidedAt.IsZero() {
		t.Errorf("DecideRoleReview: got %+v", decided)
	}
	_, err = read(t, s, func(ctx context.Context, tx store.Tx) (store.RoleReview, error) {
		return tx.DecideRoleReview(ctx, orgA, reviews[0].ID, store.ReviewApproved, "user:admin-2", "")
	})
	wantErr(t, "deciding a decided review", err, store.ErrConflict)
	got, err := read(t, s, func(ctx context.Context, tx store.Tx) (store.RoleReview, error) {
		return tx.RoleReview(ctx, orgA, reviews[0].ID)
	})
	if err != nil || got.Status != store.ReviewDenied || got.DecidedBy != "user:admin-1" {
		t.Errorf("the review after a second decision: %+v, %v; want denied by admin-1, unchanged", got, err)
	}
	_, err = read(t, s, func(ctx context.Context, tx store.Tx) (store.RoleReview, error) {
		return tx.DecideRoleReview(ctx, orgB, reviews[1].ID, store.ReviewApproved, "user:x", "")
	})
	wantErr(t, "deciding another organisation's review", err, store.ErrNotFound)

	queue, err := read(t, s, func(ctx context.Context, tx store.Tx) ([]store.RoleReview, error) {
		return tx.ListRoleReviews(ctx, store.ReviewFilter{OrganizationID: orgA})
	})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, r := range queue {
		ids = append(ids, r.ID)
	}
	if want := []string{reviews[1].ID, reviews[2].ID, reviews[0].ID}; !slices.Equal(ids, want) {
		t.Errorf("ListRoleReviews: got %v, want the pending ones oldest first, then the decided: %v", ids, want)
	}
	pending, err := read(t, s, func(ctx context.Context, tx store.Tx) ([]store.RoleReview, error) {
		return tx.ListRoleReviews(ctx, store.ReviewFilter{OrganizationID: orgA, Status: store.ReviewPending})
	})
	if err != nil || len(pending) != 2 {
		t.Errorf("ListRoleReviews(pending): %d, %v; want 2", len(pending), err)
	}
}

// The users table: search, filters and cursor paging that visits every
// user once, newest first, within the organisation.
func testListUsers(t *testing.T, s store.Store) {
	seed(t, s, 100)
	var all []store.User
	for i := range 7 {
		p := user(orgA, connS, fmt.Sprintf("u%d@idp", i), fmt.Sprintf("person%d@acme.example", i))
		p.GivenName, p.FamilyName = fmt.Sprintf("Given%d", i), "Family"
		switch i {
		case 1:
			p.Email, p.GivenName = "Grace.Hopper@acme.example", "Grace"
		case 2:
			p.conn = connO
		case 3:
			p.Status = store.StatusSuspended
		case 4:
			p.Role, p.CreatedBy = "editor", store.CreatedByAdmin
		case 5:
			p.GivenName = "100%_sure"
		}
		all = append(all, createUser(t, s, p))
	}
	createUser(t, s, user(orgB, connS, "other@idp", "grace@globex.example"))
	list := func(f store.UserFilter) []string {
		t.Helper()
		f.OrganizationID = orgA
		page, err := read(t, s, func(ctx context.Context, tx store.Tx) (store.UserPage, error) { return tx.ListUsers(ctx, f) })
		if err != nil {
			t.Fatalf("ListUsers(%+v): %v", f, err)
		}
		var out []string
		for _, u := range page.Users {
			out = append(out, u.Email)
		}
		slices.Sort(out)
		return out
	}
	for _, c := range []struct {
		name string
		f    store.UserFilter
		want []string
	}{
		{"search email, any case", store.UserFilter{Search: "GRACE"}, []string{"Grace.Hopper@acme.example"}},
		{"search name", store.UserFilter{Search: "given6"}, []string{"person6@acme.example"}},
		{"search with LIKE wildcards taken literally", store.UserFilter{Search: "0%_s"}, []string{"person5@acme.example"}},
		{"status", store.UserFilter{Status: store.StatusSuspended}, []string{"person3@acme.example"}},
		{"role", store.UserFilter{Role: "editor"}, []string{"person4@acme.example"}},
		{"created by", store.UserFilter{CreatedBy: store.CreatedByAdmin}, []string{"person4@acme.example"}},
		{"connection", store.UserFilter{ConnectionID: connO}, []string{"person2@acme.example"}},
		{"created since the future", store.UserFilter{CreatedSince: time.Now().Add(time.Hour)}, nil},
	} {
		if got := list(c.f); !slices.Equal(got, c.want) {
			t.Errorf("ListUsers %s: got %v, want %v", c.name, got, c.want)
		}
	}
	// Pages of 3 visit all 7, newest first, each once.
	var seen []string
	cursor := ""
	for pages := 0; ; pages++ {
		if pages > 3 {
			t.Fatalf("paging did not end after %d pages", pages)
		}
		page, err := read(t, s, func(ctx context.Context, tx store.Tx) (store.UserPage, error) {
			return tx.ListUsers(ctx, store.UserFilter{OrganizationID: orgA, Limit: 3, Cursor: cursor})
		})
		if err != nil {
			t.Fatal(err)
		}
		for _, u := range page.Users {
			seen = append(seen, u.ID)
		}
		if page.Next == "" {
			break
		}
		cursor = page.Next
	}
	var want []string
	for i := len(all) - 1; i >= 0; i-- {
		want = append(want, all[i].ID)
	}
	if len(seen) != len(all) || !sameSet(seen, want) {
		t.Errorf("paging: got %d users %v, want %d", len(seen), seen, len(all))
	}
	_, err := read(t, s, func(ctx context.Context, tx store.Tx) (store.UserPage, error) {
		return tx.ListUsers(ctx, store.UserFilter{OrganizationID: orgA, Cursor: "not-a-cursor"})
	})
	wantErr(t, "ListUsers with a bad cursor", err, store.ErrInvalidCursor)
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

// The provisioning log answers "why was Bob refused?".
func testListDecisions(t *testing.T, s store.Store) {
	seed(t, s, 10)
	base := time.Now().UTC().Truncate(time.Millisecond)
	for i := range 5 {
		outcome, reason := "created", ""
		if i%2 == 1 {
			outcome, reason = "refused", "email_in_use"
		}
		d := store.Decision{LoginID: fmt.Sprintf("login-%d", i), OrganizationID: orgA, ConnectionID: connS,
			ExternalID: fmt.Sprintf("p%d@idp", i), Outcome: outcome, Reason: reason, Result: []byte(`{}`),
			DecidedAt: base.Add(time.Duration(i) * time.Second)}
		inTx(t, s, func(ctx context.Context, tx store.Tx) error { return tx.RecordDecision(ctx, d) })
	}
	inTx(t, s, func(ctx context.Context, tx store.Tx) error {
		return tx.RecordDecision(ctx, store.Decision{LoginID: "other", OrganizationID: orgB, ConnectionID: connS,
			ExternalID: "x", Outcome: "refused", Result: []byte(`{}`)})
	})
	list := func(f store.DecisionFilter) store.DecisionPage {
		t.Helper()
		f.OrganizationID = orgA
		p, err := read(t, s, func(ctx context.Context, tx store.Tx) (store.DecisionPage, error) { return tx.ListDecisions(ctx, f) })
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	ids := func(p store.DecisionPage) []string {
		var out []string
		for _, d := range p.Decisions {
			out = append(out, d.LoginID)
		}
		return out
	}
	if got := ids(list(store.DecisionFilter{Outcome: "refused"})); !slices.Equal(got, []string{"login-3", "login-1"}) {
		t.Errorf("refused, newest first: %v", got)
	}
	if got := ids(list(store.DecisionFilter{ExternalID: "p2@idp"})); !slices.Equal(got, []string{"login-2"}) {
		t.Errorf("by external id: %v", got)
	}
	first := list(store.DecisionFilter{Limit: 2})
	second := list(store.DecisionFilter{Limit: 2, Cursor: first.Next})
	third := list(store.DecisionFilter{Limit: 2, Cursor: second.Next})
	if got := append(append(ids(first), ids(second)...), ids(third)...); !slices.Equal(got, []string{"login-4", "login-3", "login-2", "login-1", "login-0"}) || third.Next != "" {
		t.Errorf("pages of 2: %v (last next %q)", got, third.Next)
	}
}

// Admin actions are kept newest first, per organisation.
func testAudit(t *testing.T, s store.Store) {
	seed(t, s, 10)
	for i := range 4 {
		org := orgA
		if i == 2 {
			org = orgB
		}
		e := store.AuditEntry{OrganizationID: org, ActorType: store.ActorUser, ActorID: "admin-1", ActorName: "boss@acme.example",
			Action: "user.suspend", Target: fmt.Sprintf("user-%d", i), Details: map[string]any{"reason": "left", "n": float64(i)}}
		inTx(t, s, func(ctx context.Context, tx store.Tx) error { return tx.AppendAudit(ctx, e) })
	}
	page, err := read(t, s, func(ctx context.Context, tx store.Tx) (store.AuditPage, error) {
		return tx.ListAudit(ctx, store.AuditFilter{OrganizationID: orgA, Limit: 2})
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Entries) != 2 || page.Entries[0].Target != "user-3" || page.Entries[1].Target != "user-1" || page.Next == "" {
		t.Fatalf("first page: %+v", page)
	}
	e := page.Entries[0]
	if e.ActorType != store.ActorUser || e.ActorID != "admin-1" || e.ActorName != "boss@acme.example" || e.Action != "user.suspend" ||
		e.Details["reason"] != "left" || e.At.IsZero() || e.Seq <= page.Entries[1].Seq {
		t.Errorf("entry: %+v", e)
	}
	rest, err := read(t, s, func(ctx context.Context, tx store.Tx) (store.AuditPage, error) {
		return tx.ListAudit(ctx, store.AuditFilter{OrganizationID: orgA, Limit: 2, Cursor: page.Next})
	})
	if err != nil || len(rest.Entries) != 1 || rest.Entries[0].Target != "user-0" || rest.Next != "" {
		t.Errorf("second page: %+v, %v", rest, err)
	}
	everyone, err := read(t, s, func(ctx context.Context, tx store.Tx) (store.AuditPage, error) {
		return tx.ListAudit(ctx, store.AuditFilter{})
	})
	if err != nil || len(everyone.Entries) != 4 {
		t.Errorf("every organisation: %d entries, %v; want 4", len(everyone.Entries), err)
	}
	_, err = read(t, s, func(ctx context.Context, tx store.Tx) (store.AuditPage, error) {
		return tx.ListAudit(ctx, store.AuditFilter{Cursor: "x"})
	})
	if !errors.Is(err, store.ErrInvalidCursor) {
		t.Errorf("bad cursor: %v", err)
	}
}
