package storetest

import (
	"context"
	"maps"
	"slices"
	"testing"

	"github.com/google/uuid"

	"github.com/jitprov/jitprov/internal/store"
)

// Per-field ownership: an organisation's field owners, and the conflicts
// their owners overruled (store/owners.go).
var conflictTests = []subTest{
	{"FieldOwnersStored", testFieldOwnersStored},
	{"RecordFieldConflicts", testRecordFieldConflicts},
	{"FieldConflictsPages", testFieldConflictsPages},
	{"FieldConflictsRollBack", testFieldConflictsRollBack},
}

// An organisation's field owners are stored as given, read back by every
// read of the organisation, and replaced (or removed) by applying again.
func testFieldOwnersStored(t *testing.T, s store.Store) {
	o := org(orgA, 5)
	o.FieldOwners = map[string]string{store.FieldEmail: store.OwnerIdP, store.FieldGroups: store.OwnerSCIM,
		store.FieldRole: store.OwnerSCIM, store.AttributeField("department"): store.OwnerFirstLogin,
		store.FieldAttributesDefault: store.OwnerApp}
	if err := s.ApplyOrganizations(t.Context(), []store.Organization{o, org(orgB, 5)}, nil); err != nil {
		t.Fatalf("ApplyOrganizations: %v", err)
	}
	if got := getOrg(t, s, orgA).FieldOwners; !maps.Equal(got, o.FieldOwners) {
		t.Errorf("Organization: field owners %v, want %v", got, o.FieldOwners)
	}
	if got := getOrg(t, s, orgB).FieldOwners; len(got) != 0 {
		t.Errorf("Organization without owners: %v, want none", got)
	}
	orgs, err := s.Organizations(t.Context())
	if err != nil {
		t.Fatalf("Organizations: %v", err)
	}
	if i := slices.IndexFunc(orgs, func(x store.Organization) bool { return x.ID == orgA }); i < 0 || !maps.Equal(orgs[i].FieldOwners, o.FieldOwners) {
		t.Errorf("Organizations: %+v", orgs)
	}
	// The organisation a seat reservation returns carries them too.
	seated, err := read(t, s, func(ctx context.Context, tx store.Tx) (store.Organization, error) { return tx.TakeSeat(ctx, orgA) })
	if err != nil || !maps.Equal(seated.FieldOwners, o.FieldOwners) {
		t.Errorf("TakeSeat: %v, %v", seated.FieldOwners, err)
	}
	o.FieldOwners = map[string]string{store.FieldDisplayName: store.OwnerApp}
	if err := s.ApplyOrganizations(t.Context(), []store.Organization{o}, nil); err != nil {
		t.Fatalf("ApplyOrganizations: %v", err)
	}
	if got := getOrg(t, s, orgA).FieldOwners; !maps.Equal(got, o.FieldOwners) {
		t.Errorf("after re-applying: %v, want %v", got, o.FieldOwners)
	}
	o.FieldOwners = nil
	if err := s.ApplyOrganizations(t.Context(), []store.Organization{o}, nil); err != nil {
		t.Fatalf("ApplyOrganizations: %v", err)
	}
	if got := getOrg(t, s, orgA).FieldOwners; len(got) != 0 {
		t.Errorf("after removing them: %v, want none", got)
	}
}

func listConflicts(t *testing.T, s store.Store, f store.ConflictFilter) store.ConflictPage {
	t.Helper()
	page, err := read(t, s, func(ctx context.Context, tx store.Tx) (store.ConflictPage, error) {
		return tx.ListFieldConflicts(ctx, f)
	})
	if err != nil {
		t.Fatalf("ListFieldConflicts(%+v): %v", f, err)
	}
	return page
}

func recordConflicts(t *testing.T, s store.Store, cs ...store.FieldConflict) {
	t.Helper()
	inTx(t, s, func(ctx context.Context, tx store.Tx) error { return tx.RecordFieldConflicts(ctx, cs...) })
}

// One conflict is kept per (user, field): the latest, counted; the first
// time stays. A user of another organisation is not found.
func testRecordFieldConflicts(t *testing.T, s store.Store) {
	seed(t, s, 10)
	u := createUser(t, s, user(orgA, connS, "fc", "fc@acme.example"))
	first := store.FieldConflict{OrganizationID: orgA, UserID: u.ID, Field: store.FieldGroups, Source: store.SourceLogin,
		Rejected: []string{"sales"}, Kept: []string{"engineering", "ops"}, Owner: store.OwnerSCIM, LoginID: "login-1"}
	recordConflicts(t, s, first)
	page := listConflicts(t, s, store.ConflictFilter{OrganizationID: orgA})
	if len(page.Conflicts) != 1 || page.Next != "" {
		t.Fatalf("after one: %+v", page)
	}
	got := page.Conflicts[0]
	if got.UserID != u.ID || got.Field != first.Field || got.Source != first.Source || !slices.Equal(got.Rejected, first.Rejected) ||
		!slices.Equal(got.Kept, first.Kept) || got.Owner != first.Owner || got.LoginID != "login-1" || got.Actor != "" ||
		got.Count != 1 || got.At.IsZero() || !got.FirstAt.Equal(got.At) {
		t.Errorf("recorded: %+v", got)
	}

	// The same field again, from SCIM: replaced, counted, first time kept.
	second := store.FieldConflict{OrganizationID: orgA, UserID: u.ID, Field: store.FieldGroups, Source: store.SourceSCIM,
		Rejected: nil, Kept: []string{"engineering"}, Owner: store.OwnerApp, Actor: "token:t1"}
	recordConflicts(t, s, second)
	page = listConflicts(t, s, store.ConflictFilter{OrganizationID: orgA, UserID: u.ID})
	if len(page.Conflicts) != 1 {
		t.Fatalf("after the second of one field: %+v", page)
	}
	got2 := page.Conflicts[0]
	if got2.Source != store.SourceSCIM || len(got2.Rejected) != 0 || got2.Rejected == nil || !slices.Equal(got2.Kept, second.Kept) ||
		got2.Owner != store.OwnerApp || got2.LoginID != "" || got2.Actor != "token:t1" || got2.Count != 2 ||
		!got2.FirstAt.Equal(got.FirstAt) || got2.At.Before(got.At) {
		t.Errorf("upserted: %+v (first %+v)", got2, got)
	}

	// Another field of the user, and one of another user: rows of their own.
	v := createUser(t, s, user(orgA, connS, "fc2", "fc2@acme.example"))
	recordConflicts(t, s,
		store.FieldConflict{OrganizationID: orgA, UserID: u.ID, Field: store.AttributeField("department"), Source: store.SourceLogin,
			Rejected: []string{"Sales"}, Kept: []string{"R&D"}, Owner: store.OwnerFirstLogin, LoginID: "login-2"},
		store.FieldConflict{OrganizationID: orgA, UserID: v.ID, Field: store.FieldRole, Source: store.SourceSCIM,
			Rejected: []string{"editor"}, Kept: []string{"viewer"}, Owner: store.OwnerApp, Actor: "token:t1"})
	if n := len(listConflicts(t, s, store.ConflictFilter{OrganizationID: orgA}).Conflicts); n != 3 {
		t.Errorf("organisation: %d conflicts, want 3", n)
	}
	if n := len(listConflicts(t, s, store.ConflictFilter{OrganizationID: orgA, UserID: u.ID}).Conflicts); n != 2 {
		t.Errorf("user %s: %d conflicts, want 2", u.ID, n)
	}
	if cs := listConflicts(t, s, store.ConflictFilter{OrganizationID: orgA, Field: store.FieldRole}).Conflicts; len(cs) != 1 || cs[0].UserID != v.ID {
		t.Errorf("field role: %+v", cs)
	}
	if n := len(listConflicts(t, s, store.ConflictFilter{OrganizationID: orgB}).Conflicts); n != 0 {
		t.Errorf("another organisation: %d conflicts, want 0", n)
	}

	// A user of another organisation, or nobody's id: not found, nothing written.
	for _, id := range []string{uuid.NewString(), u.ID} {
		err := s.InTx(t.Context(), func(ctx context.Context, tx store.Tx) error {
			return tx.RecordFieldConflicts(ctx, store.FieldConflict{OrganizationID: orgB, UserID: id, Field: store.FieldEmail,
				Source: store.SourceLogin, Rejected: []string{"x@globex.example"}, Owner: store.OwnerApp})
		})
		wantErr(t, "RecordFieldConflicts of a user not in the organisation", err, store.ErrNotFound)
	}
	if n := len(listConflicts(t, s, store.ConflictFilter{OrganizationID: orgB}).Conflicts); n != 0 {
		t.Errorf("another organisation after refused writes: %d conflicts", n)
	}
}

// Pages of conflicts follow one another, latest first, and a cursor no
// list gave is refused.
func testFieldConflictsPages(t *testing.T, s store.Store) {
	seed(t, s, 10)
	var want []string
	for i := range 5 {
		u := createUser(t, s, user(orgA, connS, uuid.NewString(), ""))
		for _, f := range []string{store.FieldEmail, store.FieldGivenName} {
			recordConflicts(t, s, store.FieldConflict{OrganizationID: orgA, UserID: u.ID, Field: f, Source: store.SourceLogin,
				Rejected: []string{f + "-" + string(rune('a'+i))}, Kept: []string{}, Owner: store.OwnerApp})
			want = append(want, u.ID+"|"+f)
		}
	}
	var got []string
	cursor := ""
	for pages := 0; ; pages++ {
		if pages > 10 {
			t.Fatal("pages never end")
		}
		page := listConflicts(t, s, store.ConflictFilter{OrganizationID: orgA, Cursor: cursor, Limit: 3})
		for i, c := range page.Conflicts {
			if i > 0 && c.At.After(page.Conflicts[i-1].At) {
				t.Errorf("page not latest first: %+v", page.Conflicts)
			}
			got = append(got, c.UserID+"|"+c.Field)
		}
		if page.Next == "" {
			break
		}
		cursor = page.Next
	}
	slices.Sort(want)
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("pages hold %v, want each of %v once", got, want)
	}
	_, err := read(t, s, func(ctx context.Context, tx store.Tx) (store.ConflictPage, error) {
		return tx.ListFieldConflicts(ctx, store.ConflictFilter{OrganizationID: orgA, Cursor: "not-a-cursor"})
	})
	wantErr(t, "ListFieldConflicts with a bad cursor", err, store.ErrInvalidCursor)
}

// A conflict is written in the transaction of the change it overruled:
// rolled back with it.
func testFieldConflictsRollBack(t *testing.T, s store.Store) {
	seed(t, s, 10)
	u := createUser(t, s, user(orgA, connS, "rb", "rb@acme.example"))
	err := s.InTx(t.Context(), func(ctx context.Context, tx store.Tx) error {
		if err := tx.RecordFieldConflicts(ctx, store.FieldConflict{OrganizationID: orgA, UserID: u.ID, Field: store.FieldEmail,
			Source: store.SourceLogin, Rejected: []string{"new@acme.example"}, Kept: []string{u.Email}, Owner: store.OwnerApp}); err != nil {
			return err
		}
		return errRollback
	})
	wantErr(t, "InTx", err, errRollback)
	if n := len(listConflicts(t, s, store.ConflictFilter{OrganizationID: orgA}).Conflicts); n != 0 {
		t.Errorf("%d conflicts after a rollback, want 0", n)
	}
}
