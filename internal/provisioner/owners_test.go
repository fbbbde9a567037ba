package provisioner

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/google/uuid"

	"github.com/jitprov/jitprov/events"
	"github.com/jitprov/jitprov/internal/store"
	"github.com/jitprov/jitprov/internal/testenv"
)

// The returning person of the ownership tests, as stored, and the values
// their login brings for each owned field.
var ownedBefore = map[string][]string{
	store.FieldEmail:                   {"e@acme.com"},
	store.FieldGivenName:               {"Given"},
	store.FieldDisplayName:             {"Old Name"},
	store.FieldGroups:                  {"staff"},
	store.FieldRole:                    {"member"},
	store.AttributeField("department"): {"R&D"},
}

var ownedLogin = map[string][]string{
	store.FieldEmail:                   {"e.new@acme.com"},
	store.FieldGivenName:               {"Newgiven"},
	store.FieldDisplayName:             {"New Name"},
	store.FieldGroups:                  {"managers", "staff"},
	store.FieldRole:                    {"manager"}, // the managers group's rule
	store.AttributeField("department"): {"Sales"},
}

// ownedValue reads field of u as the tests compare it.
func ownedValue(u store.User, field string) []string {
	switch field {
	case store.FieldEmail:
		return []string{u.Email}
	case store.FieldGivenName:
		return []string{u.GivenName}
	case store.FieldDisplayName:
		return []string{u.DisplayName}
	case store.FieldGroups:
		return u.Groups
	case store.FieldRole:
		return []string{u.Role}
	}
	return u.Attributes[field[len(store.FieldAttributePrefix):]]
}

// ownerCase is a returning person's login under field owners.
type ownerCase struct {
	name   string
	policy store.UpdatePolicy
	owners map[string]string
	// sameLogin: the login brings the stored values (nothing to change).
	sameLogin bool
	// What the login leaves: the fields changed to the login's values
	// (the others keep the stored ones), and the fields whose change is
	// a conflict.
	changed   []string
	conflicts []string
}

var allOwned = []string{store.FieldEmail, store.FieldGivenName, store.FieldDisplayName, store.FieldGroups, store.FieldRole,
	store.AttributeField("department")}

// ownerCases: each owner of each field, beside fields without one (which
// follow prefer-idp and change).
func ownerCases() []ownerCase {
	var out []ownerCase
	for _, owner := range store.Owners {
		for _, field := range allOwned {
			c := ownerCase{name: owner + " owns " + field, owners: map[string]string{field: owner}}
			for _, f := range allOwned {
				if f != field || store.MayChange(owner, store.SourceLogin) {
					c.changed = append(c.changed, f)
				}
			}
			if !store.MayChange(owner, store.SourceLogin) {
				c.conflicts = []string{field}
			}
			out = append(out, c)
		}
	}
	return append(out,
		ownerCase{name: "no owners: prefer-idp changes everything", changed: allOwned},
		ownerCase{name: "no owners, prefer-app: nothing changes, no conflict", policy: store.PreferApp},
		ownerCase{name: "prefer-app, the IdP owns display_name and role: those change", policy: store.PreferApp,
			owners:  map[string]string{store.FieldDisplayName: store.OwnerIdP, store.FieldRole: store.OwnerIdP},
			changed: []string{store.FieldDisplayName, store.FieldRole}},
		ownerCase{name: "* owns every custom attribute", owners: map[string]string{store.FieldAttributesDefault: store.OwnerApp},
			changed:   []string{store.FieldEmail, store.FieldGivenName, store.FieldDisplayName, store.FieldGroups, store.FieldRole},
			conflicts: []string{store.AttributeField("department")}},
		ownerCase{name: "an attribute's own owner beats *", owners: map[string]string{store.FieldAttributesDefault: store.OwnerApp,
			store.AttributeField("department"): store.OwnerIdP}, changed: allOwned},
		ownerCase{name: "every field the app's, login the same: no conflict", sameLogin: true, owners: map[string]string{
			store.FieldEmail: store.OwnerApp, store.FieldGivenName: store.OwnerApp, store.FieldDisplayName: store.OwnerApp,
			store.FieldGroups: store.OwnerApp, store.FieldRole: store.OwnerApp, store.FieldAttributesDefault: store.OwnerApp}},
		ownerCase{name: "every field first-login-only: every change a conflict", owners: map[string]string{
			store.FieldEmail: store.OwnerFirstLogin, store.FieldGivenName: store.OwnerFirstLogin, store.FieldDisplayName: store.OwnerFirstLogin,
			store.FieldGroups: store.OwnerFirstLogin, store.FieldRole: store.OwnerFirstLogin, store.FieldAttributesDefault: store.OwnerFirstLogin},
			conflicts: allOwned},
	)
}

// runOwnerCase seeds the person, decides their login (in a batch beside a
// new person when batch is set) and checks each field and the conflicts
// recorded.
func runOwnerCase(t *testing.T, s store.Store, tt ownerCase, batch bool) {
	t.Helper()
	ctx := context.Background()
	o := baseOrg()
	o.FieldOwners = tt.owners
	if tt.policy != "" {
		o.UpdatePolicy = tt.policy
	}
	if err := s.ApplyOrganizations(ctx, []store.Organization{o},
		[]store.Connection{{OrganizationID: "acme", ID: "okta", Protocol: "saml", Settings: []byte(groupsKeepConn)}}); err != nil {
		t.Fatal(err)
	}
	u := seedUser(t, s, store.User{OrganizationID: "acme", Email: "e@acme.com", EmailVerified: true, GivenName: "Given",
		DisplayName: "Old Name", Role: "member", RoleSource: store.RoleSourceIdP, Groups: []string{"staff"},
		Attributes: map[string][]string{"department": {"R&D"}}, CreatedBy: store.CreatedByJIT}, "okta/ext-1")
	values := ownedLogin
	if tt.sameLogin {
		values = ownedBefore
	}
	id := login("ext-1", values[store.FieldEmail][0])
	id.GivenName, id.DisplayName = values[store.FieldGivenName][0], values[store.FieldDisplayName][0]
	id.Groups, id.Attributes = values[store.FieldGroups], map[string][]string{"department": values[store.AttributeField("department")]}
	if !tt.sameLogin {
		id.Roles = []string{"manager"}
	}
	d := NewDecider(s, testenv.Logger(t))
	loginID := uuid.NewString()
	var res events.ProvisioningResult
	if batch {
		answers := d.DecideBatch(ctx, []Login{{ID: loginID, Identity: id}, acmeLogin("acme", "new", "new@acme.com")})
		for i, a := range answers {
			if a.Err != nil {
				t.Fatalf("DecideBatch: login %d: %v", i, a.Err)
			}
		}
		res = answers[0].Result
	} else {
		var err error
		if res, err = d.Decide(ctx, loginID, id); err != nil {
			t.Fatalf("Decide: %v", err)
		}
	}
	if res.Outcome != events.OutcomeExisting {
		t.Fatalf("answer %s (%s), want existing", res.Outcome, res.Message)
	}
	got, err := s.User(ctx, "acme", u.ID)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range allOwned {
		want := ownedBefore[f]
		if slices.Contains(tt.changed, f) {
			want = ownedLogin[f]
		}
		if v := ownedValue(got, f); !slices.Equal(v, want) {
			t.Errorf("%s: %v, want %v", f, v, want)
		}
	}
	if res.User.Role != got.Role {
		t.Errorf("answer's role %q, stored %q", res.User.Role, got.Role)
	}
	page, err := readConflicts(s, u.ID)
	if err != nil {
		t.Fatal(err)
	}
	var fields []string
	for _, c := range page {
		fields = append(fields, c.Field)
		want := store.FieldConflict{OrganizationID: "acme", UserID: u.ID, Field: c.Field, Source: store.SourceLogin,
			Rejected: ownedLogin[c.Field], Kept: ownedBefore[c.Field], Owner: o.FieldOwner(c.Field), LoginID: loginID, Count: 1}
		if c.OrganizationID != want.OrganizationID || c.UserID != want.UserID || c.Source != want.Source || c.Owner != want.Owner ||
			c.LoginID != want.LoginID || c.Actor != "" || c.Count != 1 || !slices.Equal(c.Rejected, want.Rejected) || !slices.Equal(c.Kept, want.Kept) {
			t.Errorf("conflict on %s:\n got %+v\nwant %+v", c.Field, c, want)
		}
	}
	slices.Sort(fields)
	wantFields := slices.Sorted(slices.Values(tt.conflicts))
	if !slices.Equal(fields, wantFields) {
		t.Errorf("conflicts on %v, want %v", fields, wantFields)
	}
}

func readConflicts(s store.Store, userID string) ([]store.FieldConflict, error) {
	var out []store.FieldConflict
	err := s.InTx(context.Background(), func(ctx context.Context, tx store.Tx) error {
		page, err := tx.ListFieldConflicts(ctx, store.ConflictFilter{OrganizationID: "acme", UserID: userID})
		out = page.Conflicts
		return err
	})
	return out, err
}

// Each owner of each field decides what a returning person's sign-in
// changes; what an owner overrules is recorded, what it allows is not.
func TestFieldOwnersAtSignIn(t *testing.T) {
	for _, tt := range ownerCases() {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, _ := testenv.Store(t)
			runOwnerCase(t, s, tt, false)
		})
	}
}

// The batched path gives the same outcomes, on both stores.
func TestDecideBatchFieldOwners(t *testing.T) {
	for name, open := range batchStores(t) {
		t.Run(name, func(t *testing.T) {
			for _, tt := range ownerCases() {
				t.Run(tt.name, func(t *testing.T) {
					t.Parallel()
					runOwnerCase(t, open(t), tt, true)
				})
			}
		})
	}
}

// A login storm keeps one conflict per field, counting; a later login the
// owner allows records nothing more.
func TestFieldConflictsUpsertedPerField(t *testing.T) {
	s, _ := testenv.Store(t)
	ctx := context.Background()
	o := baseOrg()
	o.FieldOwners = map[string]string{store.FieldDisplayName: store.OwnerSCIM}
	if err := s.ApplyOrganizations(ctx, []store.Organization{o}, []store.Connection{{OrganizationID: "acme", ID: "okta", Protocol: "saml"}}); err != nil {
		t.Fatal(err)
	}
	u := seedUser(t, s, store.User{OrganizationID: "acme", Email: "e@acme.com", DisplayName: "Kept", CreatedBy: store.CreatedByJIT}, "okta/ext-1")
	d := NewDecider(s, testenv.Logger(t))
	var last string
	for i := range 5 {
		id := login("ext-1", "e@acme.com")
		id.DisplayName = fmt.Sprintf("Wanted %d", i)
		last = uuid.NewString()
		if _, err := d.Decide(ctx, last, id); err != nil {
			t.Fatal(err)
		}
	}
	cs, err := readConflicts(s, u.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(cs) != 1 || cs[0].Count != 5 || cs[0].LoginID != last || !slices.Equal(cs[0].Rejected, []string{"Wanted 4"}) ||
		!slices.Equal(cs[0].Kept, []string{"Kept"}) {
		t.Fatalf("conflicts after 5 logins: %+v", cs)
	}
	if got, _ := s.User(ctx, "acme", u.ID); got.DisplayName != "Kept" {
		t.Errorf("display name %q, want it kept", got.DisplayName)
	}
}
