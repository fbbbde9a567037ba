package provisioner

import (
	"context"
	"encoding/json"
	"slices"
	"testing"

	"github.com/google/uuid"

	"github.com/jitprov/jitprov/events"
	"github.com/jitprov/jitprov/internal/store"
	"github.com/jitprov/jitprov/internal/testenv"
)

// Connection settings of the role tests: members of "managers" claim
// manager (the edge turns the group into the claim; the provisioner reads
// the rule for a login without groups).
const (
	managersRule     = `"group_roles":[{"group":"managers","role":"manager"}]`
	groupsKeepConn   = `{` + managersRule + `}`
	groupsClearConn  = `{` + managersRule + `,"groups_missing":"clear"}`
	rolesClaimConn   = `{"attributes":{"roles":"role"}}`
	oidcClearConn    = `{"claims":{"groups":"groups"},` + managersRule + `,"groups_missing":"clear"}`
	mapsNoRolesConn  = `{"attributes":{"groups":"memberOf"}}`
	roleChangedEvent = string(events.TypeUserRoleChanged)
	userUpdatedEvent = string(events.TypeUserUpdated)
)

// rolesCase is a returning person's login and what it makes of their role.
type rolesCase struct {
	name     string
	protocol string // of the connection; "" saml
	settings string // the connection's settings
	policy   store.UpdatePolicy
	// The user before the login: role, its source and groups.
	role, source string
	groups       []string
	// The login, as the edge sends it: groups (nil: no groups claim) and
	// roles (the group rules applied).
	loginGroups, loginRoles []string
	// After the login.
	wantRole, wantSource string
	wantGroups           []string
	wantEvents           []string // ce-types about the user, in order
}

var rolesCases = []rolesCase{
	{name: "group removed at the IdP: the role goes back to the default",
		settings: groupsKeepConn, role: "manager", source: store.RoleSourceIdP, groups: []string{"managers", "staff"},
		loginGroups: []string{"staff"},
		wantRole:    "member", wantSource: store.RoleSourceIdP, wantGroups: []string{"staff"},
		wantEvents: []string{userUpdatedEvent, roleChangedEvent}},
	{name: "group removed at the IdP: another group's role stays",
		settings: `{"group_roles":[{"group":"managers","role":"manager"},{"group":"staff","role":"viewer"}]}`,
		role:     "manager", source: store.RoleSourceIdP, groups: []string{"managers", "staff"},
		loginGroups: []string{"staff"}, loginRoles: []string{"viewer"},
		wantRole: "viewer", wantSource: store.RoleSourceIdP, wantGroups: []string{"staff"},
		wantEvents: []string{userUpdatedEvent, roleChangedEvent}},
	{name: "group added at the IdP: the role follows up",
		settings: groupsKeepConn, role: "member", source: store.RoleSourceIdP, groups: []string{"staff"},
		loginGroups: []string{"managers", "staff"}, loginRoles: []string{"manager"},
		wantRole: "manager", wantSource: store.RoleSourceIdP, wantGroups: []string{"managers", "staff"},
		wantEvents: []string{userUpdatedEvent, roleChangedEvent}},
	{name: "roles claim removed: back to the default",
		settings: rolesClaimConn, role: "manager", source: store.RoleSourceIdP,
		wantRole: "member", wantSource: store.RoleSourceIdP,
		wantEvents: []string{userUpdatedEvent, roleChangedEvent}},
	{name: "an admin's grant is kept on a login without the group",
		settings: groupsKeepConn, role: "manager", source: store.RoleSourceAdmin, groups: []string{"managers", "staff"},
		loginGroups: []string{"staff"},
		wantRole:    "manager", wantSource: store.RoleSourceAdmin, wantGroups: []string{"staff"},
		wantEvents: []string{userUpdatedEvent}},
	{name: "an admin's grant is kept under a lower claim",
		settings: rolesClaimConn, role: "manager", source: store.RoleSourceAdmin,
		loginRoles: []string{"viewer"},
		wantRole:   "manager", wantSource: store.RoleSourceAdmin},
	{name: "an admin's grant is raised by a claim within the ceiling: the IdP's now",
		settings: groupsKeepConn, role: "viewer", source: store.RoleSourceAdmin, groups: []string{"staff"},
		loginGroups: []string{"managers", "staff"}, loginRoles: []string{"manager"},
		wantRole: "manager", wantSource: store.RoleSourceIdP, wantGroups: []string{"managers", "staff"},
		wantEvents: []string{userUpdatedEvent, roleChangedEvent}},
	{name: "groups_missing keep: no groups claim keeps the group's role and the groups",
		settings: groupsKeepConn, role: "manager", source: store.RoleSourceIdP, groups: []string{"managers", "staff"},
		wantRole: "manager", wantSource: store.RoleSourceIdP, wantGroups: []string{"managers", "staff"}},
	{name: "groups_missing keep: an empty groups claim keeps them too",
		settings: groupsKeepConn, role: "manager", source: store.RoleSourceIdP, groups: []string{"managers", "staff"},
		loginGroups: []string{},
		wantRole:    "manager", wantSource: store.RoleSourceIdP, wantGroups: []string{"managers", "staff"}},
	{name: "groups_missing keep: groups sent again replace the stored ones",
		settings: groupsKeepConn, role: "manager", source: store.RoleSourceIdP, groups: []string{"managers", "staff"},
		loginGroups: []string{"eng"},
		wantRole:    "member", wantSource: store.RoleSourceIdP, wantGroups: []string{"eng"},
		wantEvents: []string{userUpdatedEvent, roleChangedEvent}},
	{name: "groups_missing clear: no groups claim takes the group's role and the groups",
		settings: groupsClearConn, role: "manager", source: store.RoleSourceIdP, groups: []string{"managers", "staff"},
		wantRole: "member", wantSource: store.RoleSourceIdP, wantGroups: nil,
		wantEvents: []string{userUpdatedEvent, roleChangedEvent}},
	{name: "groups_missing clear, OIDC: an empty groups claim takes them too",
		protocol: "oidc", settings: oidcClearConn, role: "manager", source: store.RoleSourceIdP, groups: []string{"managers"},
		loginGroups: []string{},
		wantRole:    "member", wantSource: store.RoleSourceIdP, wantGroups: nil,
		wantEvents: []string{userUpdatedEvent, roleChangedEvent}},
	{name: "groups_missing clear: an admin's grant is still kept",
		settings: groupsClearConn, role: "manager", source: store.RoleSourceAdmin, groups: []string{"managers"},
		wantRole: "manager", wantSource: store.RoleSourceAdmin, wantGroups: nil,
		wantEvents: []string{userUpdatedEvent}},
	{name: "prefer-app keeps the app's role and groups",
		settings: groupsClearConn, policy: store.PreferApp, role: "manager", source: store.RoleSourceIdP, groups: []string{"managers"},
		loginGroups: []string{"staff"},
		wantRole:    "manager", wantSource: store.RoleSourceIdP, wantGroups: []string{"managers"}},
	{name: "a connection that maps no roles leaves the role be",
		settings: mapsNoRolesConn, role: "manager", source: store.RoleSourceIdP, groups: []string{"staff"},
		loginGroups: []string{"staff"},
		wantRole:    "manager", wantSource: store.RoleSourceIdP, wantGroups: []string{"staff"}},
	{name: "the organisation admin is never taken away",
		settings: groupsClearConn, role: "admin", source: store.RoleSourceIdP, groups: []string{"managers"},
		loginGroups: []string{"staff"},
		wantRole:    "admin", wantSource: store.RoleSourceIdP, wantGroups: []string{"staff"},
		wantEvents: []string{userUpdatedEvent}},
}

// runRolesCase seeds tt's user on s, decides its login (with a new
// person's login beside it in one batch when batch is set) and checks the
// user and the events about them.
func runRolesCase(t *testing.T, s store.Store, tt rolesCase, batch bool) {
	t.Helper()
	ctx := context.Background()
	o := baseOrg()
	if tt.policy != "" {
		o.UpdatePolicy = tt.policy
	}
	protocol := tt.protocol
	if protocol == "" {
		protocol = "saml"
	}
	if err := s.ApplyOrganizations(ctx, []store.Organization{o},
		[]store.Connection{{OrganizationID: "acme", ID: "okta", Protocol: protocol, Settings: []byte(tt.settings)}}); err != nil {
		t.Fatal(err)
	}
	u := seedUser(t, s, store.User{OrganizationID: "acme", Email: "e@acme.com", EmailVerified: true, GivenName: "Given",
		Role: tt.role, RoleSource: tt.source, Groups: tt.groups, CreatedBy: store.CreatedByJIT}, "okta/ext-1")
	if u.RoleSource != tt.source {
		t.Fatalf("seeded user's role source %q, want %q", u.RoleSource, tt.source)
	}
	id := login("ext-1", "e@acme.com")
	id.Groups, id.Roles = tt.loginGroups, tt.loginRoles
	if protocol == "oidc" {
		id.Protocol = events.ProtocolOIDC
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
		if answers[1].Result.Outcome != events.OutcomeCreated {
			t.Errorf("the new person beside it: %s, want created", answers[1].Result.Outcome)
		}
		res = answers[0].Result
	} else {
		var err error
		if res, err = d.Decide(ctx, loginID, id); err != nil {
			t.Fatalf("Decide: %v", err)
		}
	}
	if res.Outcome != events.OutcomeExisting || res.User == nil || res.User.Role != tt.wantRole {
		t.Fatalf("answer %s %+v (%s), want existing with role %s", res.Outcome, res.User, res.Message, tt.wantRole)
	}
	got, err := s.User(ctx, "acme", u.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Role != tt.wantRole || got.RoleSource != tt.wantSource || !slices.Equal(got.Groups, tt.wantGroups) && len(got.Groups)+len(tt.wantGroups) > 0 {
		t.Errorf("user: role %q from %q, groups %v; want %q from %q, groups %v", got.Role, got.RoleSource, got.Groups, tt.wantRole, tt.wantSource, tt.wantGroups)
	}

	var types []string
	var changed []events.UserRoleChanged
	for _, m := range relayAll(t, s) {
		if m.Header["ce-subject"][0] != u.ID {
			continue
		}
		types = append(types, m.Header["ce-type"][0])
		if m.Header["ce-type"][0] == roleChangedEvent {
			var ev events.UserRoleChanged
			if err := json.Unmarshal(m.Data, &ev); err != nil {
				t.Fatal(err)
			}
			changed = append(changed, ev)
		}
	}
	if !slices.Equal(types, tt.wantEvents) {
		t.Errorf("events about the user: %v, want %v", types, tt.wantEvents)
	}
	for _, ev := range changed {
		if ev.PreviousRole != tt.role || ev.User.Role != tt.wantRole || ev.LoginID != loginID ||
			ev.Actor != signInActor() || ev.User.ConnectionID != "okta" || ev.User.ExternalID != "ext-1" || ev.ReviewID != "" {
			t.Errorf("user.role-changed: %+v; want %s → %s by login %s, actor %+v", ev, tt.role, tt.wantRole, loginID, signInActor())
		}
	}
}

// relayAll takes every outbox message not sent yet.
func relayAll(t *testing.T, s store.Store) []store.OutboxMessage {
	t.Helper()
	var out []store.OutboxMessage
	for {
		n, err := s.RelayOutbox(context.Background(), 100, func(_ context.Context, msgs []store.OutboxMessage) (int, error) {
			out = append(out, msgs...)
			return len(msgs), nil
		})
		if err != nil {
			t.Fatalf("RelayOutbox: %v", err)
		}
		if n == 0 {
			return out
		}
	}
}

// Roles follow the IdP: a role the IdP's claims gave goes when a login no
// longer carries it, an admin's grant stays, and a login without groups
// keeps or clears them as the connection says.
func TestRolesFollowTheIdP(t *testing.T) {
	for _, tt := range rolesCases {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, _ := testenv.Store(t)
			runRolesCase(t, s, tt, false)
		})
	}
}

// The batched path decides a returning person's role as Decide does, on
// both stores.
func TestDecideBatchRolesFollowTheIdP(t *testing.T) {
	for name, open := range batchStores(t) {
		t.Run(name, func(t *testing.T) {
			for _, tt := range rolesCases {
				t.Run(tt.name, func(t *testing.T) {
					runRolesCase(t, open(t), tt, true)
				})
			}
		})
	}
}

// New people decided in a batch get the role's source as Decide gives it:
// the IdP's, and the admin's for an initial admin (the organisations file
// granted it).
func TestDecideBatchNewPeopleRoleSource(t *testing.T) {
	for name, open := range batchStores(t) {
		t.Run(name, func(t *testing.T) {
			s := open(t)
			ctx := context.Background()
			o := baseOrg()
			o.InitialAdmins = []string{"boss@acme.com"}
			if err := s.ApplyOrganizations(ctx, []store.Organization{o},
				[]store.Connection{{OrganizationID: "acme", ID: "okta", Protocol: "saml"}}); err != nil {
				t.Fatal(err)
			}
			d := NewDecider(s, testenv.Logger(t))
			manager := acmeLogin("acme", "mgr", "mgr@acme.com")
			manager.Identity.Roles = []string{"manager"}
			batch := []Login{acmeLogin("acme", "boss", "boss@acme.com"), manager}
			want := []struct{ role, source string }{{"admin", store.RoleSourceAdmin}, {"manager", store.RoleSourceIdP}}
			for i, a := range d.DecideBatch(ctx, batch) {
				if a.Err != nil || a.Result.Outcome != events.OutcomeCreated {
					t.Fatalf("login %d: %+v, %v", i, a.Result, a.Err)
				}
				u, err := s.User(ctx, "acme", a.Result.User.ID)
				if err != nil {
					t.Fatal(err)
				}
				if u.Role != want[i].role || u.RoleSource != want[i].source {
					t.Errorf("login %d: role %q from %q, want %q from %q", i, u.Role, u.RoleSource, want[i].role, want[i].source)
				}
			}
		})
	}
}
