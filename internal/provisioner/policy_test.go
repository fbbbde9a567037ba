package provisioner

import (
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/jitprov/jitprov/events"
	"github.com/jitprov/jitprov/internal/connection"
	"github.com/jitprov/jitprov/internal/store"
)

func ladder() store.Organization {
	return store.Organization{
		ID: "acme", Roles: []string{"viewer", "member", "manager", "admin"},
		DefaultRole: "member", JITRoleCeiling: "manager",
	}
}

func TestDecideRole(t *testing.T) {
	const idp, admin = store.RoleSourceIdP, store.RoleSourceAdmin
	says := func(roles ...string) roleClaims { return roleClaims{Roles: roles, Says: true} }
	silent := roleClaims{}
	tests := []struct {
		name       string
		policy     store.UpdatePolicy
		claims     roleClaims
		current    string
		source     string
		wantRole   string
		wantSource string
		wantReview string
	}{
		{"new, no claims: default role", store.PreferIdP, says(), "", "", "member", idp, ""},
		{"new, unknown claims ignored", store.PreferIdP, says("superuser", "root"), "", "", "member", idp, ""},
		{"new, claim below default granted", store.PreferIdP, says("viewer"), "", "", "viewer", idp, ""},
		{"new, claim at ceiling granted", store.PreferIdP, says("manager"), "", "", "manager", idp, ""},
		{"new, highest claim within ceiling wins", store.PreferIdP, says("viewer", "manager", "member"), "", "", "manager", idp, ""},
		{"new, admin claim never granted: review", store.PreferIdP, says("admin"), "", "", "member", idp, "admin"},
		{"new, admin and manager: manager and review", store.PreferIdP, says("manager", "admin"), "", "", "manager", idp, "admin"},
		{"new, prefer-app still grants within ceiling", store.PreferApp, says("manager"), "", "", "manager", idp, ""},

		{"IdP role follows claims up", store.PreferIdP, says("manager"), "member", idp, "manager", idp, ""},
		{"IdP role follows claims down", store.PreferIdP, says("viewer"), "manager", idp, "viewer", idp, ""},
		{"IdP role, claim gone: back to the default", store.PreferIdP, says(), "manager", idp, "member", idp, ""},
		{"IdP role, only unknown claims: the default", store.PreferIdP, says("root"), "manager", idp, "member", idp, ""},
		{"IdP role, nothing said: kept", store.PreferIdP, silent, "manager", idp, "manager", idp, ""},
		{"IdP role, only an admin claim: the default, review", store.PreferIdP, says("admin"), "manager", idp, "member", idp, "admin"},
		{"org admin from the IdP (an upgrade) is kept too", store.PreferIdP, says("viewer"), "admin", idp, "admin", idp, ""},

		{"admin's role kept without claims", store.PreferIdP, says(), "manager", admin, "manager", admin, ""},
		{"admin's role kept under lower claims", store.PreferIdP, says("viewer"), "manager", admin, "manager", admin, ""},
		{"admin's role kept under the same claim", store.PreferIdP, says("manager"), "manager", admin, "manager", admin, ""},
		{"admin's role raised by a claim within the ceiling: the IdP's now", store.PreferIdP, says("manager"), "viewer", admin, "manager", idp, ""},
		{"admin's role, claim above the ceiling: kept, review", store.PreferIdP, says("admin"), "viewer", admin, "viewer", admin, "admin"},

		{"org admin is never taken away by JIT", store.PreferIdP, says("viewer"), "admin", admin, "admin", admin, ""},
		{"org admin kept while claimed", store.PreferIdP, says("admin"), "admin", admin, "admin", admin, ""},
		{"IdP role, admin claim: default, review", store.PreferIdP, says("admin"), "member", idp, "member", idp, "admin"},

		{"prefer-app, role is the app's", store.PreferApp, says("viewer"), "manager", idp, "manager", idp, ""},
		{"prefer-app, not raised either", store.PreferApp, says("manager"), "viewer", idp, "viewer", idp, ""},
		{"prefer-app, admin claim still reviewed", store.PreferApp, says("admin"), "member", idp, "member", idp, "admin"},
		{"prefer-app, no review when already admin", store.PreferApp, says("admin"), "admin", admin, "admin", admin, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := decideRole(ladder(), tt.policy, tt.claims, tt.current, tt.source)
			if got.Role != tt.wantRole || got.Source != tt.wantSource || got.Review != tt.wantReview {
				t.Errorf("got role %q from %q, review %q; want role %q from %q, review %q",
					got.Role, got.Source, got.Review, tt.wantRole, tt.wantSource, tt.wantReview)
			}
		})
	}
}

// An organisation whose JIT ceiling sits below a role an admin may approve:
// the approved role is the admin's grant, which logins never take away.
func TestDecideRoleApprovedAboveCeiling(t *testing.T) {
	org := store.Organization{Roles: []string{"viewer", "member", "manager", "director", "admin"},
		DefaultRole: "viewer", JITRoleCeiling: "member"}
	tests := []struct {
		name                 string
		claimed              []string
		wantRole, wantReview string
	}{
		{"approved role kept while claimed", []string{"director"}, "director", ""},
		{"approved role kept while more is claimed", []string{"admin"}, "director", "admin"},
		{"approved role kept under claims within the ceiling", []string{"member"}, "director", ""},
		{"approved role kept without claims", nil, "director", ""},
		{"claims between ceiling and approved role: kept, no review", []string{"manager"}, "director", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := decideRole(org, store.PreferIdP, roleClaims{Roles: tt.claimed, Says: true}, "director", store.RoleSourceAdmin)
			if got.Role != tt.wantRole || got.Review != tt.wantReview || got.Source != store.RoleSourceAdmin {
				t.Errorf("got role %q from %q review %q, want role %q from admin review %q", got.Role, got.Source, got.Review, tt.wantRole, tt.wantReview)
			}
		})
	}
}

// loginClaims reads a login by its connection's rules: groups the IdP sent
// are the person's; none sent keeps the stored groups and the roles they
// give (keep) or takes them away (clear).
func TestLoginClaims(t *testing.T) {
	rules := func(settings string) connection.RoleRules {
		r, err := connection.DecodeRoleRules([]byte(settings))
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	const groupRules = `"group_roles":[{"group":"managers","role":"manager"}],"constants":{"groups":["staff"]}`
	keep, clear := rules(`{`+groupRules+`}`), rules(`{`+groupRules+`,"groups_missing":"clear"}`)
	stored := []string{"managers", "staff"}
	tests := []struct {
		name       string
		rules      connection.RoleRules
		id         events.Identity
		wantGroups groupsRule
		wantClaims roleClaims
	}{
		{"groups sent, group role claimed", keep, events.Identity{Groups: []string{"managers", "staff"}, Roles: []string{"manager"}},
			groupsFromIdP, roleClaims{Roles: []string{"manager"}, Says: true}},
		{"groups sent, group gone", keep, events.Identity{Groups: []string{"eng", "staff"}},
			groupsFromIdP, roleClaims{Says: true}},
		{"keep: no groups, stored groups' roles stand", keep, events.Identity{},
			groupsKeep, roleClaims{Roles: []string{"manager"}, Says: true}},
		{"keep: constant groups only count as none", keep, events.Identity{Groups: []string{"staff"}, Roles: []string{"viewer"}},
			groupsKeep, roleClaims{Roles: []string{"viewer", "manager"}, Says: true}},
		{"clear: no groups, no group roles", clear, events.Identity{Groups: []string{"staff"}},
			groupsClear, roleClaims{Says: true}},
		{"clear: groups sent as usual", clear, events.Identity{Groups: []string{"managers"}, Roles: []string{"manager"}},
			groupsFromIdP, roleClaims{Roles: []string{"manager"}, Says: true}},
		{"a connection mapping no roles says nothing", rules(`{}`), events.Identity{Groups: []string{"managers"}},
			groupsFromIdP, roleClaims{}},
		{"a login carrying roles says something", rules(`{}`), events.Identity{Groups: []string{"managers"}, Roles: []string{"viewer"}},
			groupsFromIdP, roleClaims{Roles: []string{"viewer"}, Says: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g, c := loginClaims(tt.rules, stored, tt.id)
			if g != tt.wantGroups || c.Says != tt.wantClaims.Says || !slices.Equal(c.Roles, tt.wantClaims.Roles) {
				t.Errorf("got %v, %+v; want %v, %+v", g, c, tt.wantGroups, tt.wantClaims)
			}
		})
	}
}

func TestMergeProfile(t *testing.T) {
	stored := store.User{
		Email: "ann@acme.com", GivenName: "Ann", FamilyName: "", DisplayName: "Ann A",
		Groups: []string{"eng"}, Attributes: map[string][]string{"dept": {"r&d"}},
	}
	tests := []struct {
		name        string
		policy      store.UpdatePolicy
		groups      groupsRule
		id          events.Identity
		want        store.User
		wantChanged []string
	}{
		{
			name:   "prefer-idp overwrites what the IdP sends",
			policy: store.PreferIdP,
			id: events.Identity{Email: "ann.b@acme.com", GivenName: "Anne", FamilyName: "B",
				Groups: []string{"ops", "eng", "ops"}, Attributes: map[string][]string{"dept": {"ops"}}},
			want: store.User{Email: "ann.b@acme.com", GivenName: "Anne", FamilyName: "B", DisplayName: "Ann A",
				Groups: []string{"eng", "ops"}, Attributes: map[string][]string{"dept": {"ops"}}},
			wantChanged: []string{"email", "given_name", "family_name", "groups", "attributes"},
		},
		{
			name:   "prefer-idp keeps what the IdP does not send",
			policy: store.PreferIdP,
			id:     events.Identity{GivenName: "Ann"},
			want:   stored,
		},
		{
			name:   "prefer-idp: same groups in another order is no change",
			policy: store.PreferIdP,
			id:     events.Identity{Groups: []string{"eng", "eng"}},
			want:   stored,
		},
		{
			name:   "prefer-app only fills empty attributes",
			policy: store.PreferApp,
			id: events.Identity{Email: "other@acme.com", GivenName: "Anne", FamilyName: "B",
				Groups: []string{"ops"}, Attributes: map[string][]string{"dept": {"ops"}}},
			want: store.User{Email: "ann@acme.com", GivenName: "Ann", FamilyName: "B", DisplayName: "Ann A",
				Groups: []string{"eng"}, Attributes: map[string][]string{"dept": {"r&d"}}},
			wantChanged: []string{"family_name"},
		},
		{
			name:   "prefer-idp, groups_missing keep: the stored groups stay",
			policy: store.PreferIdP,
			groups: groupsKeep,
			id:     events.Identity{GivenName: "Ann"},
			want:   stored,
		},
		{
			name:        "prefer-idp, groups_missing keep: constant groups join the stored ones",
			policy:      store.PreferIdP,
			groups:      groupsKeep,
			id:          events.Identity{Groups: []string{"staff"}},
			want:        store.User{Email: "ann@acme.com", GivenName: "Ann", DisplayName: "Ann A", Groups: []string{"eng", "staff"}, Attributes: map[string][]string{"dept": {"r&d"}}},
			wantChanged: []string{"groups"},
		},
		{
			name:   "prefer-idp, groups_missing keep: constant groups held already are no change",
			policy: store.PreferIdP,
			groups: groupsKeep,
			id:     events.Identity{Groups: []string{"eng"}},
			want:   stored,
		},
		{
			name:        "prefer-idp, groups_missing clear: the groups go",
			policy:      store.PreferIdP,
			groups:      groupsClear,
			id:          events.Identity{GivenName: "Ann"},
			want:        store.User{Email: "ann@acme.com", GivenName: "Ann", DisplayName: "Ann A", Attributes: map[string][]string{"dept": {"r&d"}}},
			wantChanged: []string{"groups"},
		},
		{
			name:        "prefer-idp, groups_missing clear: the constant groups stay",
			policy:      store.PreferIdP,
			groups:      groupsClear,
			id:          events.Identity{Groups: []string{"staff"}},
			want:        store.User{Email: "ann@acme.com", GivenName: "Ann", DisplayName: "Ann A", Groups: []string{"staff"}, Attributes: map[string][]string{"dept": {"r&d"}}},
			wantChanged: []string{"groups"},
		},
		{
			name:   "prefer-app, groups_missing clear: the app's groups stay",
			policy: store.PreferApp,
			groups: groupsClear,
			id:     events.Identity{},
			want:   stored,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, changed := mergeProfile(tt.policy, stored, tt.id, tt.groups)
			if got.Email != tt.want.Email || got.GivenName != tt.want.GivenName || got.FamilyName != tt.want.FamilyName ||
				got.DisplayName != tt.want.DisplayName || !slices.Equal(got.Groups, tt.want.Groups) ||
				!slices.Equal(got.Attributes["dept"], tt.want.Attributes["dept"]) {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
			if !slices.Equal(changed, tt.wantChanged) {
				t.Errorf("changed = %v, want %v", changed, tt.wantChanged)
			}
		})
	}
}

func TestMayLinkByEmail(t *testing.T) {
	org := store.Organization{LinkByEmail: store.LinkVerifiedDomains, VerifiedDomains: []string{"acme.com"}}
	never := org
	never.LinkByEmail = store.LinkNever
	tests := []struct {
		name string
		org  store.Organization
		id   events.Identity
		want bool
	}{
		{"verified email on verified domain", org, events.Identity{Email: "a@acme.com", EmailVerified: true}, true},
		{"domain compared case-insensitively", org, events.Identity{Email: "a@ACME.com", EmailVerified: true}, true},
		{"policy never", never, events.Identity{Email: "a@acme.com", EmailVerified: true}, false},
		{"email not verified by the IdP", org, events.Identity{Email: "a@acme.com"}, false},
		{"domain not verified", org, events.Identity{Email: "a@evil.com", EmailVerified: true}, false},
		{"subdomain is another domain", org, events.Identity{Email: "a@x.acme.com", EmailVerified: true}, false},
		{"look-alike suffix", org, events.Identity{Email: "a@notacme.com", EmailVerified: true}, false},
		{"no domain", org, events.Identity{Email: "a@", EmailVerified: true}, false},
		{"quoted at sign: last @ decides", org, events.Identity{Email: `"a@acme.com"@evil.com`, EmailVerified: true}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := mayLinkByEmail(tt.org, tt.id); got != tt.want {
				t.Errorf("got %t, want %t", got, tt.want)
			}
		})
	}
}

// Custom attributes with an owner are merged one by one; those without
// follow the update policy among themselves; a change an owner keeps out
// is a conflict.
func TestOwnedAttributes(t *testing.T) {
	stored := store.User{ID: "u1", OrganizationID: "acme",
		Attributes: map[string][]string{"dept": {"r&d"}, "cost": {"42"}, "site": {"paris"}}}
	tests := []struct {
		name      string
		policy    store.UpdatePolicy
		owners    map[string]string
		login     map[string][]string
		want      map[string][]string
		conflicts []string // fields
	}{
		{name: "an owned attribute the login does not carry is kept; the unowned ones follow prefer-idp",
			owners: map[string]string{"attributes.dept": store.OwnerIdP},
			login:  map[string][]string{"cost": {"7"}},
			want:   map[string][]string{"dept": {"r&d"}, "cost": {"7"}}},
		{name: "an owned attribute the IdP owns follows the login",
			owners: map[string]string{"attributes.dept": store.OwnerIdP},
			login:  map[string][]string{"dept": {"sales"}, "cost": {"42"}, "site": {"paris"}},
			want:   map[string][]string{"dept": {"sales"}, "cost": {"42"}, "site": {"paris"}}},
		{name: "the application's attribute is kept, a conflict",
			owners:    map[string]string{"attributes.dept": store.OwnerApp},
			login:     map[string][]string{"dept": {"sales"}, "cost": {"42"}, "site": {"paris"}},
			want:      stored.Attributes,
			conflicts: []string{"attributes.dept"}},
		{name: "* for every attribute: kept one by one, conflicts for each change",
			owners:    map[string]string{"attributes.*": store.OwnerFirstLogin},
			login:     map[string][]string{"dept": {"sales"}, "cost": {"42"}, "new": {"x"}},
			want:      stored.Attributes,
			conflicts: []string{"attributes.dept", "attributes.new"}},
		{name: "prefer-app: unowned attributes are not overwritten, an IdP-owned one is",
			policy: store.PreferApp, owners: map[string]string{"attributes.site": store.OwnerIdP},
			login: map[string][]string{"dept": {"sales"}, "site": {"lyon"}},
			want:  map[string][]string{"dept": {"r&d"}, "cost": {"42"}, "site": {"lyon"}}},
		{name: "scim's attribute: a sign-in may not change it",
			owners:    map[string]string{"attributes.cost": store.OwnerSCIM, "attributes.*": store.OwnerIdP},
			login:     map[string][]string{"cost": {"9"}, "site": {"lyon"}},
			want:      map[string][]string{"dept": {"r&d"}, "cost": {"42"}, "site": {"lyon"}},
			conflicts: []string{"attributes.cost"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			org := store.Organization{ID: "acme", UpdatePolicy: store.PreferIdP, FieldOwners: tt.owners}
			if tt.policy != "" {
				org.UpdatePolicy = tt.policy
			}
			got, changed, conflicts := ownedProfile(org, stored, events.Identity{Attributes: tt.login}, groupsKeep)
			if !maps.EqualFunc(got.Attributes, tt.want, slices.Equal) {
				t.Errorf("attributes %v, want %v", got.Attributes, tt.want)
			}
			if wantChanged := !maps.EqualFunc(tt.want, stored.Attributes, slices.Equal); slices.Contains(changed, "attributes") != wantChanged {
				t.Errorf("changed %v, want attributes changed: %v", changed, wantChanged)
			}
			var fields []string
			for _, c := range conflicts {
				fields = append(fields, c.Field)
				name := strings.TrimPrefix(c.Field, "attributes.")
				if c.Source != store.SourceLogin || c.UserID != "u1" || c.OrganizationID != "acme" ||
					!slices.Equal(c.Rejected, tt.login[name]) || !slices.Equal(c.Kept, nonNil(stored.Attributes[name])) {
					t.Errorf("conflict %+v", c)
				}
			}
			if !slices.Equal(fields, tt.conflicts) {
				t.Errorf("conflicts on %v, want %v", fields, tt.conflicts)
			}
		})
	}
}
