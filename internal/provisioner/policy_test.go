package provisioner

import (
	"slices"
	"testing"

	"github.com/jitprov/jitprov/events"
	"github.com/jitprov/jitprov/internal/store"
)

func ladder() store.Organization {
	return store.Organization{
		ID: "acme", Roles: []string{"viewer", "member", "manager", "admin"},
		DefaultRole: "member", JITRoleCeiling: "manager",
	}
}

func TestDecideRole(t *testing.T) {
	tests := []struct {
		name       string
		policy     store.UpdatePolicy
		claimed    []string
		current    string
		wantRole   string
		wantReview string
	}{
		{"new, no claims: default role", store.PreferIdP, nil, "", "member", ""},
		{"new, unknown claims ignored", store.PreferIdP, []string{"superuser", "root"}, "", "member", ""},
		{"new, claim below default granted", store.PreferIdP, []string{"viewer"}, "", "viewer", ""},
		{"new, claim at ceiling granted", store.PreferIdP, []string{"manager"}, "", "manager", ""},
		{"new, highest claim within ceiling wins", store.PreferIdP, []string{"viewer", "manager", "member"}, "", "manager", ""},
		{"new, admin claim never granted: review", store.PreferIdP, []string{"admin"}, "", "member", "admin"},
		{"new, admin and manager: manager and review", store.PreferIdP, []string{"manager", "admin"}, "", "manager", "admin"},
		{"new, prefer-app still grants within ceiling", store.PreferApp, []string{"manager"}, "", "manager", ""},
		{"existing prefer-idp, role follows claims up", store.PreferIdP, []string{"manager"}, "member", "manager", ""},
		{"existing prefer-idp, role removed at IdP is removed", store.PreferIdP, []string{"viewer"}, "manager", "viewer", ""},
		{"existing prefer-idp, no claims: role kept", store.PreferIdP, nil, "manager", "manager", ""},
		{"existing prefer-idp, only unknown claims: role kept", store.PreferIdP, []string{"root"}, "viewer", "viewer", ""},
		{"existing prefer-idp, only an admin claim: role kept, review", store.PreferIdP, []string{"admin"}, "manager", "manager", "admin"},
		{"org admin is never taken away by JIT", store.PreferIdP, []string{"viewer"}, "admin", "admin", ""},
		{"existing prefer-idp, org admin kept while claimed", store.PreferIdP, []string{"admin"}, "admin", "admin", ""},

		{"existing prefer-idp, admin claim: review", store.PreferIdP, []string{"admin"}, "member", "member", "admin"},
		{"existing prefer-app, role is the app's", store.PreferApp, []string{"viewer"}, "manager", "manager", ""},
		{"existing prefer-app, admin claim still reviewed", store.PreferApp, []string{"admin"}, "member", "member", "admin"},
		{"existing prefer-app, no review when already admin", store.PreferApp, []string{"admin"}, "admin", "admin", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := decideRole(ladder(), tt.policy, tt.claimed, tt.current)
			if got.Role != tt.wantRole || got.Review != tt.wantReview {
				t.Errorf("got role %q review %q, want role %q review %q", got.Role, got.Review, tt.wantRole, tt.wantReview)
			}
		})
	}
}

// An organisation whose JIT ceiling sits below a role an admin may approve.
func TestDecideRoleApprovedAboveCeiling(t *testing.T) {
	org := store.Organization{Roles: []string{"viewer", "member", "manager", "director", "admin"},
		DefaultRole: "viewer", JITRoleCeiling: "member"}
	tests := []struct {
		name                 string
		claimed              []string
		current              string
		wantRole, wantReview string
	}{
		{"approved role kept while claimed", []string{"director"}, "director", "director", ""},
		{"approved role kept while more is claimed", []string{"admin"}, "director", "director", "admin"},
		{"claims within the ceiling replace an approved role", []string{"member"}, "director", "member", ""},
		{"claims between ceiling and approved role: capped, reviewed", []string{"manager"}, "director", "member", "manager"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := decideRole(org, store.PreferIdP, tt.claimed, tt.current)
			if got.Role != tt.wantRole || got.Review != tt.wantReview {
				t.Errorf("got role %q review %q, want role %q review %q", got.Role, got.Review, tt.wantRole, tt.wantReview)
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
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, changed := mergeProfile(tt.policy, stored, tt.id)
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
