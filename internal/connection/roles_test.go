package connection

import (
	"slices"
	"testing"
)

func TestDecodeRoleRules(t *testing.T) {
	for _, tt := range []struct {
		name      string
		settings  string
		mapsRoles bool
		missing   string
	}{
		{"nothing mapped", `{"idp_metadata_url":"https://idp.example/md"}`, false, GroupsKeep},
		{"empty settings", ``, false, GroupsKeep},
		{"SAML roles attribute", `{"attributes":{"roles":"memberOf"}}`, true, GroupsKeep},
		{"OIDC roles claim", `{"claims":{"roles":"realm_access.roles"},"groups_missing":"clear"}`, true, GroupsClear},
		{"group rules", `{"group_roles":[{"group":"eng","role":"editor"}],"groups_missing":"keep"}`, true, GroupsKeep},
		{"constant roles", `{"constants":{"roles":["editor"]}}`, true, GroupsKeep},
		{"constant groups only", `{"constants":{"groups":["staff"]}}`, false, GroupsKeep},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r, err := DecodeRoleRules([]byte(tt.settings))
			if err != nil {
				t.Fatal(err)
			}
			if r.MapsRoles != tt.mapsRoles || r.GroupsMissing != tt.missing {
				t.Errorf("got maps roles %v, groups_missing %q; want %v, %q", r.MapsRoles, r.GroupsMissing, tt.mapsRoles, tt.missing)
			}
		})
	}
	if _, err := DecodeRoleRules([]byte(`{`)); err == nil {
		t.Error("DecodeRoleRules of broken JSON: no error")
	}
}

func TestRoleRulesGroups(t *testing.T) {
	r, err := DecodeRoleRules([]byte(`{"group_roles":[{"group":"eng","role":"editor"},{"group":"ops","role":"editor"},{"group":"leads","role":"manager"}],
		"constants":{"groups":["staff"]}}`))
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		groups    []string
		idpGroups bool
		claims    []string
	}{
		{nil, false, nil},
		{[]string{"staff"}, false, nil},
		{[]string{"staff", "eng"}, true, []string{"editor"}},
		{[]string{"ops", "eng", "leads"}, true, []string{"editor", "manager"}},
	} {
		if got := r.IdPGroups(tt.groups); got != tt.idpGroups {
			t.Errorf("IdPGroups(%v) = %v, want %v", tt.groups, got, tt.idpGroups)
		}
		if got := r.GroupClaims(tt.groups); !slices.Equal(got, tt.claims) {
			t.Errorf("GroupClaims(%v) = %v, want %v", tt.groups, got, tt.claims)
		}
	}
}
