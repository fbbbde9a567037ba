package storetest

import (
	"context"
	"testing"

	"github.com/google/uuid"

	"github.com/jitprov/jitprov/internal/store"
)

// Where a user's role came from is kept: a new user's source defaults by
// its creator, UpdateUser writes a source it is given and keeps the stored
// one otherwise, and SetUserRole (an admin's grant) makes it admin.
func testRoleSource(t *testing.T, s store.Store) {
	seed(t, s, 10)
	for _, c := range []struct {
		name, createdBy, source, want string
	}{
		{"jit, no source", store.CreatedByJIT, "", store.RoleSourceIdP},
		{"admin, no source", store.CreatedByAdmin, "", store.RoleSourceAdmin},
		{"app, no source", store.CreatedByApp, "", store.RoleSourceAdmin},
		{"jit, admin source", store.CreatedByJIT, store.RoleSourceAdmin, store.RoleSourceAdmin},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := user(orgA, connS, uuid.NewString(), "")
			p.CreatedBy, p.RoleSource = c.createdBy, c.source
			got := createUser(t, s, p)
			if got.RoleSource != c.want {
				t.Errorf("CreateUser: role source %q, want %q", got.RoleSource, c.want)
			}
			read := readUser(t, s, p.ID)
			if read.RoleSource != c.want {
				t.Errorf("UserByID: role source %q, want %q", read.RoleSource, c.want)
			}
		})
	}

	u := createUser(t, s, user(orgA, connS, "rs", "rs@acme.example"))
	update := func(source string) store.User {
		t.Helper()
		changed := u
		changed.RoleSource = source
		got, err := read(t, s, func(ctx context.Context, tx store.Tx) (store.User, error) { return tx.UpdateUser(ctx, changed) })
		if err != nil {
			t.Fatalf("UpdateUser(source %q): %v", source, err)
		}
		return got
	}
	if got := update(store.RoleSourceAdmin); got.RoleSource != store.RoleSourceAdmin {
		t.Errorf("UpdateUser(admin): role source %q", got.RoleSource)
	}
	if got := update(""); got.RoleSource != store.RoleSourceAdmin {
		t.Errorf("UpdateUser(no source) after admin: role source %q, want it kept", got.RoleSource)
	}
	if got := update(store.RoleSourceIdP); got.RoleSource != store.RoleSourceIdP {
		t.Errorf("UpdateUser(idp): role source %q", got.RoleSource)
	}
	got, err := read(t, s, func(ctx context.Context, tx store.Tx) (store.User, error) {
		return tx.SetUserRole(ctx, orgA, u.ID, "editor")
	})
	if err != nil || got.RoleSource != store.RoleSourceAdmin || got.Role != "editor" {
		t.Errorf("SetUserRole: %+v, %v; want editor from admin", got, err)
	}
	if read := readUser(t, s, u.ID); read.RoleSource != store.RoleSourceAdmin {
		t.Errorf("after SetUserRole: role source %q, want admin", read.RoleSource)
	}

	// A role source other than idp and admin is refused.
	changed := u
	changed.RoleSource = "scim"
	_, err = read(t, s, func(ctx context.Context, tx store.Tx) (store.User, error) { return tx.UpdateUser(ctx, changed) })
	if err == nil {
		t.Errorf("UpdateUser(source scim): got no error")
	}
}

// WriteGroup creates users with their role source, as CreateUser does.
func testWriteGroupRoleSource(t *testing.T, s store.Store) {
	seed(t, s, 10)
	jit := user(orgA, connS, "jit", "jit@acme.example")
	boot := user(orgA, connS, "boot", "boot@acme.example")
	boot.Role, boot.RoleSource = "admin", store.RoleSourceAdmin
	w := store.GroupWrites{OrganizationID: orgA, Seats: store.SeatReservation{Seats: 2}}
	for _, p := range []person{jit, boot} {
		w.Users = append(w.Users, store.NewUser{User: p.User, Identity: store.Identity{OrganizationID: orgA,
			ConnectionID: connS, ExternalID: p.ext, UserID: p.ID, LinkedBy: store.LinkedByCreated}})
	}
	if _, err := read(t, s, func(ctx context.Context, tx store.Tx) (store.Organization, error) { return tx.WriteGroup(ctx, w) }); err != nil {
		t.Fatalf("WriteGroup: %v", err)
	}
	for _, c := range []struct {
		id, want string
	}{{jit.ID, store.RoleSourceIdP}, {boot.ID, store.RoleSourceAdmin}} {
		if got := readUser(t, s, c.id); got.RoleSource != c.want {
			t.Errorf("user %s: role source %q, want %q", c.id, got.RoleSource, c.want)
		}
	}
}

func readUser(t *testing.T, s store.Store, id string) store.User {
	t.Helper()
	u, err := read(t, s, func(ctx context.Context, tx store.Tx) (store.User, error) { return tx.UserByID(ctx, orgA, id) })
	if err != nil {
		t.Fatalf("UserByID(%s): %v", id, err)
	}
	return u
}
