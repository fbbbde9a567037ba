package admin_test

import (
	"slices"
	"testing"

	"github.com/jitprov/jitprov/internal/admin"
	"github.com/jitprov/jitprov/internal/store"
	"github.com/jitprov/jitprov/internal/testenv"
)

// The person of the SCIM ownership tests as SCIM created them, and what
// SCIM's later writes want for each field.
var (
	scimBefore = map[string][]string{
		store.FieldEmail: {"e@acme.example"}, store.FieldGivenName: {"Given"}, store.FieldDisplayName: {"Old Name"},
		store.AttributeField("department"): {"R&D"}, store.FieldGroups: {}, store.FieldRole: {"member"},
	}
	scimAfter = map[string][]string{
		store.FieldEmail: {"e.new@acme.example"}, store.FieldGivenName: {"Newgiven"}, store.FieldDisplayName: {"New Name"},
		store.AttributeField("department"): {"Sales"}, store.FieldGroups: {"Managers"}, store.FieldRole: {"manager"},
	}
	scimFields = []string{store.FieldEmail, store.FieldGivenName, store.FieldDisplayName, store.AttributeField("department"),
		store.FieldGroups, store.FieldRole}
)

func scimValue(u store.User, field string) []string {
	switch field {
	case store.FieldEmail:
		return []string{u.Email}
	case store.FieldGivenName:
		return []string{u.GivenName}
	case store.FieldDisplayName:
		return []string{u.DisplayName}
	case store.FieldGroups:
		if u.Groups == nil {
			return []string{}
		}
		return u.Groups
	case store.FieldRole:
		return []string{u.Role}
	}
	return u.Attributes[field[len(store.FieldAttributePrefix):]]
}

// Each owner of each field decides what SCIM's writes change — a PUT of
// the person, a group membership giving a role — and what an owner
// overrules is recorded as the SCIM client's conflict.
func TestFieldOwnersUnderSCIM(t *testing.T) {
	type tcase struct {
		name      string
		owners    map[string]string
		changed   []string
		conflicts []string
	}
	var cases []tcase
	for _, owner := range store.Owners {
		for _, field := range scimFields {
			c := tcase{name: owner + " owns " + field, owners: map[string]string{field: owner}}
			for _, f := range scimFields {
				if f != field || store.MayChange(owner, store.SourceSCIM) {
					c.changed = append(c.changed, f)
				}
			}
			if !store.MayChange(owner, store.SourceSCIM) {
				c.conflicts = []string{field}
			}
			cases = append(cases, c)
		}
	}
	cases = append(cases, tcase{name: "no owners: SCIM changes everything", changed: scimFields},
		tcase{name: "* owns the enterprise attributes", owners: map[string]string{store.FieldAttributesDefault: store.OwnerFirstLogin},
			changed:   []string{store.FieldEmail, store.FieldGivenName, store.FieldDisplayName, store.FieldGroups, store.FieldRole},
			conflicts: []string{store.AttributeField("department")}})
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx := t.Context()
			s, _ := testenv.Store(t)
			o := store.Organization{ID: "acme", Name: "Acme", MaxSeats: 10, Roles: []string{"viewer", "member", "manager", "admin"},
				DefaultRole: "member", JITRoleCeiling: "manager", UpdatePolicy: store.PreferIdP, LinkByEmail: store.LinkNever,
				FieldOwners: tt.owners}
			if err := s.ApplyOrganizations(ctx, []store.Organization{o}, []store.Connection{{OrganizationID: "acme", ID: "okta",
				Protocol: "saml", Settings: []byte(`{"scim_identity": "userName", "group_roles": [{"group": "Managers", "role": "manager"}]}`)}}); err != nil {
				t.Fatal(err)
			}
			core := admin.New(s, testenv.Logger(t))
			p := admin.Principal{Kind: store.ActorToken, ID: "tok-1", Name: "okta-scim", Organization: "acme", Write: true, SCIM: true}
			person := admin.Person{UserName: "e@acme.example", Email: "e@acme.example", GivenName: "Given", DisplayName: "Old Name",
				Active: true, Attributes: map[string]string{"department": "R&D"}}
			du, created, err := core.CreateDirectoryUser(ctx, p, "acme", person)
			if err != nil || !created {
				t.Fatalf("create: %v, %v", created, err)
			}
			for _, f := range scimFields {
				if v := scimValue(du.User, f); !slices.Equal(v, scimBefore[f]) {
					t.Fatalf("as created, %s: %v, want %v (creation sets every field)", f, v, scimBefore[f])
				}
			}
			person.Email, person.GivenName, person.DisplayName = "e.new@acme.example", "Newgiven", "New Name"
			person.Attributes = map[string]string{"department": "Sales"}
			if _, err := core.ReplaceDirectoryUser(ctx, p, "acme", du.User.ID, person, ""); err != nil {
				t.Fatalf("replace: %v", err)
			}
			if _, err := core.CreateDirectoryGroup(ctx, p, "acme", "Managers", "", []string{du.User.ID}); err != nil {
				t.Fatalf("group: %v", err)
			}
			got, err := s.User(ctx, "acme", du.User.ID)
			if err != nil {
				t.Fatal(err)
			}
			for _, f := range scimFields {
				want := scimBefore[f]
				if slices.Contains(tt.changed, f) {
					want = scimAfter[f]
				}
				if v := scimValue(got, f); !slices.Equal(v, want) {
					t.Errorf("%s: %v, want %v", f, v, want)
				}
			}
			page, err := core.FieldConflicts(ctx, admin.Operator("test"), store.ConflictFilter{OrganizationID: "acme", UserID: got.ID})
			if err != nil {
				t.Fatal(err)
			}
			var fields []string
			for _, c := range page.Conflicts {
				fields = append(fields, c.Field)
				if c.Source != store.SourceSCIM || c.Actor != "token:tok-1" || c.LoginID != "" || c.Owner != o.FieldOwner(c.Field) ||
					!slices.Equal(c.Rejected, scimAfter[c.Field]) || !slices.Equal(c.Kept, scimBefore[c.Field]) || c.Count != 1 {
					t.Errorf("conflict on %s: %+v", c.Field, c)
				}
			}
			if !slices.Equal(fields, tt.conflicts) && len(fields)+len(tt.conflicts) > 0 {
				t.Errorf("conflicts on %v, want %v", fields, tt.conflicts)
			}
		})
	}
}
