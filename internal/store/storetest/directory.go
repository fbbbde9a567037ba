package storetest

import (
	"context"
	"slices"
	"testing"

	"github.com/google/uuid"

	"github.com/jitprov/jitprov/internal/store"
)

// The directory (store/directory.go): users and groups as SCIM sees them.

var directoryTests = []subTest{
	{"DirectoryUsers", testDirectoryUsers},
	{"DirectoryVisibility", testDirectoryVisibility},
	{"DirectoryPage", testDirectoryPage},
	{"Groups", testGroups},
	{"GroupMembers", testGroupMembers},
}

// scimUser is a user a SCIM client creates.
func scimUser(orgID, userName, externalID, email string) store.User {
	return store.User{ID: uuid.NewString(), OrganizationID: orgID, Email: email, EmailVerified: email != "",
		GivenName: "Grace", FamilyName: "Hopper", Role: "viewer", Status: store.StatusActive, CreatedBy: store.CreatedBySCIM,
		Attributes: map[string][]string{"department": {"Navy"}},
		SCIM:       store.SCIMUser{UserName: userName, ExternalID: externalID, Managed: true}}
}

func createDirectoryUser(t *testing.T, s store.Store, u store.User) store.User {
	t.Helper()
	got, err := read(t, s, func(ctx context.Context, tx store.Tx) (store.User, error) { return tx.CreateDirectoryUser(ctx, u) })
	if err != nil {
		t.Fatalf("CreateDirectoryUser(%q): %v", u.SCIM.UserName, err)
	}
	return got
}

func findDirectory(t *testing.T, s store.Store, orgID string, key store.DirectoryKey) []string {
	t.Helper()
	users, err := read(t, s, func(ctx context.Context, tx store.Tx) ([]store.User, error) {
		return tx.DirectoryUsers(ctx, orgID, key)
	})
	if err != nil {
		t.Fatalf("DirectoryUsers(%+v): %v", key, err)
	}
	ids := []string{}
	for _, u := range users {
		ids = append(ids, u.ID)
	}
	return ids
}

// A SCIM user is kept with its SCIM fields, never signed in, and found by
// each lookup key; a JIT user by its email as userName and its identity.
func testDirectoryUsers(t *testing.T, s store.Store) {
	seed(t, s, 10)
	g := createDirectoryUser(t, s, scimUser(orgA, "Grace.Hopper", "00u42", "grace@acme.example"))
	if g.CreatedBy != store.CreatedBySCIM || g.SCIM != (store.SCIMUser{UserName: "Grace.Hopper", ExternalID: "00u42", Managed: true}) ||
		!g.LastLoginAt.IsZero() || g.Attributes["department"][0] != "Navy" {
		t.Errorf("created %+v: SCIM fields, creator or last login not as given", g)
	}
	jit := createUser(t, s, user(orgA, connS, "ada-nameid", "Ada@acme.example"))
	createUser(t, s, user(orgB, connS, "other", "grace@globex.example"))
	for _, c := range []struct {
		key  store.DirectoryKey
		want []string
	}{
		{store.DirectoryKey{Attr: store.DirectoryByUserName, Value: "grace.hopper"}, []string{g.ID}},
		{store.DirectoryKey{Attr: store.DirectoryByUserName, Value: "ada@ACME.example"}, []string{jit.ID}},
		{store.DirectoryKey{Attr: store.DirectoryByUserName, Value: "grace@acme.example"}, []string{}}, // its userName is another
		{store.DirectoryKey{Attr: store.DirectoryByExternalID, Value: "00u42"}, []string{g.ID}},
		{store.DirectoryKey{Attr: store.DirectoryByExternalID, Value: "00U42"}, []string{}}, // case-exact
		{store.DirectoryKey{Attr: store.DirectoryByEmail, Value: "GRACE@acme.example"}, []string{g.ID}},
		{store.DirectoryKey{Attr: store.DirectoryByID, Value: g.ID}, []string{g.ID}},
		{store.DirectoryKey{Attr: store.DirectoryByID, Value: "not-a-uuid"}, []string{}},
		{store.DirectoryKey{Attr: store.DirectoryByIdentity, Value: "ada-nameid", Connection: connS}, []string{jit.ID}},
		{store.DirectoryKey{Attr: store.DirectoryByIdentity, Value: "ada-nameid", Connection: connO}, []string{}},
	} {
		if got := findDirectory(t, s, orgA, c.key); !slices.Equal(got, c.want) {
			t.Errorf("DirectoryUsers(%+v) = %v, want %v", c.key, got, c.want)
		}
	}
	// A second live userName is a conflict, ignoring case.
	_, err := read(t, s, func(ctx context.Context, tx store.Tx) (store.User, error) {
		return tx.CreateDirectoryUser(ctx, scimUser(orgA, "GRACE.HOPPER", "", ""))
	})
	wantErr(t, "a second user of the same userName", err, store.ErrConflict)
	// Written: profile, role and SCIM fields, not the status or last login.
	next := g
	next.GivenName, next.Email, next.SCIM.ExternalID = "Amazing Grace", "hopper@acme.example", "00u43"
	next.Role, next.Status = "editor", store.StatusSuspended
	w, err := read(t, s, func(ctx context.Context, tx store.Tx) (store.User, error) { return tx.WriteDirectoryUser(ctx, next) })
	if err != nil {
		t.Fatalf("WriteDirectoryUser: %v", err)
	}
	if w.GivenName != "Amazing Grace" || w.Email != "hopper@acme.example" || w.SCIM.ExternalID != "00u43" ||
		w.Role != "editor" || w.Status != store.StatusActive || !w.LastLoginAt.IsZero() || w.UpdatedAt.Before(g.UpdatedAt) {
		t.Errorf("written %+v", w)
	}
	// SCIM's deactivation mark is kept as written, and an admin's status
	// change clears it.
	w.SCIM.Deactivated = true
	w, err = read(t, s, func(ctx context.Context, tx store.Tx) (store.User, error) { return tx.WriteDirectoryUser(ctx, w) })
	if err != nil || !w.SCIM.Deactivated {
		t.Fatalf("WriteDirectoryUser(Deactivated) = %+v, %v", w.SCIM, err)
	}
	w, err = read(t, s, func(ctx context.Context, tx store.Tx) (store.User, error) {
		return tx.SetUserStatus(ctx, orgA, w.ID, store.StatusDeprovisioned)
	})
	if err != nil || w.SCIM.Deactivated {
		t.Errorf("after an admin's status change: %+v, %v; want SCIM.Deactivated cleared", w.SCIM, err)
	}
	next.Email, next.Role = "hopper@acme.example", w.Role
	// An email another user holds is a conflict.
	next.Email = "ada@acme.example"
	_, err = read(t, s, func(ctx context.Context, tx store.Tx) (store.User, error) { return tx.WriteDirectoryUser(ctx, next) })
	wantErr(t, "writing another user's email", err, store.ErrConflict)
}

// SCIM does not see a user it deleted, nor a held sign-up, unless asked
// for all; a deleted user's userName is free again.
func testDirectoryVisibility(t *testing.T, s store.Store) {
	seed(t, s, 10)
	g := createDirectoryUser(t, s, scimUser(orgA, "grace", "", "grace@acme.example"))
	held := user(orgA, connS, "held-person", "held@acme.example")
	held.Status = store.StatusHeld
	h := createUser(t, s, held)
	g.SCIM.Deleted = true
	if _, err := read(t, s, func(ctx context.Context, tx store.Tx) (store.User, error) { return tx.WriteDirectoryUser(ctx, g) }); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		key  store.DirectoryKey
		want []string
	}{
		{store.DirectoryKey{Attr: store.DirectoryByUserName, Value: "grace"}, []string{}},
		{store.DirectoryKey{Attr: store.DirectoryByUserName, Value: "grace", All: true}, []string{g.ID}},
		{store.DirectoryKey{Attr: store.DirectoryByEmail, Value: "held@acme.example"}, []string{}},
		{store.DirectoryKey{Attr: store.DirectoryByEmail, Value: "held@acme.example", All: true}, []string{h.ID}},
	} {
		if got := findDirectory(t, s, orgA, c.key); !slices.Equal(got, c.want) {
			t.Errorf("DirectoryUsers(%+v) = %v, want %v", c.key, got, c.want)
		}
	}
	again := createDirectoryUser(t, s, scimUser(orgA, "grace", "", ""))
	if got := findDirectory(t, s, orgA, store.DirectoryKey{Attr: store.DirectoryByUserName, Value: "grace"}); !slices.Equal(got, []string{again.ID}) {
		t.Errorf("after a deleted grace came another: %v, want [%s]", got, again.ID)
	}
}

// Pages run oldest first with a total.
func testDirectoryPage(t *testing.T, s store.Store) {
	seed(t, s, 10)
	var ids []string
	for _, n := range []string{"a", "b", "c", "d", "e"} {
		ids = append(ids, createDirectoryUser(t, s, scimUser(orgA, n, "", "")).ID)
	}
	createDirectoryUser(t, s, scimUser(orgB, "elsewhere", "", ""))
	type page struct {
		users []store.User
		total int
	}
	for _, c := range []struct {
		offset, limit int
		want          []string
	}{{0, 2, ids[:2]}, {2, 2, ids[2:4]}, {4, 2, ids[4:]}, {5, 2, nil}, {0, 0, nil}} {
		p, err := read(t, s, func(ctx context.Context, tx store.Tx) (page, error) {
			u, n, err := tx.DirectoryPage(ctx, orgA, c.offset, c.limit)
			return page{u, n}, err
		})
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, u := range p.users {
			got = append(got, u.ID)
		}
		if p.total != 5 || !slices.Equal(got, c.want) {
			t.Errorf("DirectoryPage(%d, %d) = %v of %d, want %v of 5", c.offset, c.limit, got, p.total, c.want)
		}
	}
}

func createGroup(t *testing.T, s store.Store, orgID, name string) store.Group {
	t.Helper()
	g, err := read(t, s, func(ctx context.Context, tx store.Tx) (store.Group, error) {
		return tx.CreateGroup(ctx, store.Group{ID: uuid.NewString(), OrganizationID: orgID, DisplayName: name, ExternalID: "ext-" + name})
	})
	if err != nil {
		t.Fatalf("CreateGroup(%q): %v", name, err)
	}
	return g
}

// Groups: unique names per organisation ignoring case, found by name,
// external id and id, paged by name, renamed, deleted.
func testGroups(t *testing.T, s store.Store) {
	seed(t, s, 10)
	eng := createGroup(t, s, orgA, "Engineering")
	ops := createGroup(t, s, orgA, "ops")
	createGroup(t, s, orgB, "Engineering") // another organisation's: no conflict
	_, err := read(t, s, func(ctx context.Context, tx store.Tx) (store.Group, error) {
		return tx.CreateGroup(ctx, store.Group{ID: uuid.NewString(), OrganizationID: orgA, DisplayName: "ENGINEERING"})
	})
	wantErr(t, "a second group of the same name", err, store.ErrConflict)
	find := func(key store.GroupKey) []string {
		gs, err := read(t, s, func(ctx context.Context, tx store.Tx) ([]store.Group, error) { return tx.Groups(ctx, orgA, key) })
		if err != nil {
			t.Fatal(err)
		}
		ids := []string{}
		for _, g := range gs {
			ids = append(ids, g.ID)
		}
		return ids
	}
	for _, c := range []struct {
		key  store.GroupKey
		want []string
	}{
		{store.GroupKey{Attr: store.GroupByDisplayName, Value: "engineering"}, []string{eng.ID}},
		{store.GroupKey{Attr: store.GroupByExternalID, Value: "ext-ops"}, []string{ops.ID}},
		{store.GroupKey{Attr: store.GroupByID, Value: ops.ID}, []string{ops.ID}},
		{store.GroupKey{Attr: store.GroupByID, Value: "nope"}, []string{}},
	} {
		if got := find(c.key); !slices.Equal(got, c.want) {
			t.Errorf("Groups(%+v) = %v, want %v", c.key, got, c.want)
		}
	}
	type page struct {
		groups []store.Group
		total  int
	}
	p, err := read(t, s, func(ctx context.Context, tx store.Tx) (page, error) {
		g, n, err := tx.GroupPage(ctx, orgA, 1, 10)
		return page{g, n}, err
	})
	if err != nil || p.total != 2 || len(p.groups) != 1 || p.groups[0].ID != ops.ID {
		t.Errorf("GroupPage(1, 10) = %+v, %v; want [ops] of 2", p, err)
	}
	eng.DisplayName, eng.ExternalID = "R&D", ""
	renamed, err := read(t, s, func(ctx context.Context, tx store.Tx) (store.Group, error) { return tx.UpdateGroup(ctx, eng) })
	if err != nil || renamed.DisplayName != "R&D" || renamed.ExternalID != "" {
		t.Errorf("UpdateGroup = %+v, %v", renamed, err)
	}
	inTx(t, s, func(ctx context.Context, tx store.Tx) error { return tx.DeleteGroup(ctx, orgA, ops.ID) })
	err = s.InTx(t.Context(), func(ctx context.Context, tx store.Tx) error { return tx.DeleteGroup(ctx, orgA, ops.ID) })
	wantErr(t, "deleting a deleted group", err, store.ErrNotFound)
	_, err = read(t, s, func(ctx context.Context, tx store.Tx) (store.Group, error) { return tx.LockGroup(ctx, orgB, eng.ID) })
	wantErr(t, "another organisation's group", err, store.ErrNotFound)
}

// Members: adding and removing report the users whose membership changed
// (none the second time); another organisation's user never joins; a
// deleted group takes its memberships with it.
func testGroupMembers(t *testing.T, s store.Store) {
	seed(t, s, 10)
	g := createGroup(t, s, orgA, "eng")
	a := createDirectoryUser(t, s, scimUser(orgA, "a", "", "")).ID
	b := createDirectoryUser(t, s, scimUser(orgA, "b", "", "")).ID
	other := createDirectoryUser(t, s, scimUser(orgB, "c", "", "")).ID
	change := func(add bool, ids ...string) []string {
		got, err := read(t, s, func(ctx context.Context, tx store.Tx) ([]string, error) {
			if add {
				return tx.AddGroupMembers(ctx, g.ID, ids)
			}
			return tx.RemoveGroupMembers(ctx, g.ID, ids)
		})
		if err != nil {
			t.Fatal(err)
		}
		slices.Sort(got)
		return got
	}
	want := []string{a, b}
	slices.Sort(want)
	if got := change(true, a, b, other, "not-a-uuid"); !slices.Equal(got, want) {
		t.Errorf("added %v, want %v (never another organisation's user)", got, want)
	}
	if got := change(true, a); len(got) != 0 {
		t.Errorf("adding a member again changed %v", got)
	}
	members, _ := read(t, s, func(ctx context.Context, tx store.Tx) ([]string, error) { return tx.GroupMembers(ctx, g.ID) })
	if !slices.Equal(members, want) {
		t.Errorf("members %v, want %v", members, want)
	}
	users, _ := read(t, s, func(ctx context.Context, tx store.Tx) ([]store.User, error) { return tx.GroupMemberUsers(ctx, g.ID) })
	if len(users) != 2 || users[0].ID != want[0] || users[1].ID != want[1] || users[0].SCIM.UserName == "" {
		t.Errorf("GroupMemberUsers = %+v, want the users %v", users, want)
	}
	if got := change(false, a, a); !slices.Equal(got, []string{a}) {
		t.Errorf("removed %v, want [%s]", got, a)
	}
	groups, _ := read(t, s, func(ctx context.Context, tx store.Tx) ([]store.Group, error) { return tx.UserGroups(ctx, b) })
	if len(groups) != 1 || groups[0].ID != g.ID {
		t.Errorf("UserGroups(b) = %+v", groups)
	}
	inTx(t, s, func(ctx context.Context, tx store.Tx) error { return tx.DeleteGroup(ctx, orgA, g.ID) })
	groups, _ = read(t, s, func(ctx context.Context, tx store.Tx) ([]store.Group, error) { return tx.UserGroups(ctx, b) })
	if len(groups) != 0 {
		t.Errorf("a deleted group's membership stayed: %+v", groups)
	}
}
