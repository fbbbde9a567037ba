package connection

import (
	"encoding/json"
	"fmt"
	"slices"
)

// RoleRules is what a connection's settings (SAML or OIDC: the same
// names) say about a returning person's groups and roles: what the
// provisioner needs to let roles follow the IdP.
type RoleRules struct {
	// MapsRoles: the connection carries roles at all — a roles attribute
	// or claim, group rules or constant roles. A connection that maps
	// none says nothing about roles, and its logins leave them be.
	MapsRoles bool
	// GroupRoles and ConstantGroups are the connection's group rules and
	// constant groups.
	GroupRoles     []GroupRole
	ConstantGroups []string
	// GroupsMissing is GroupsKeep or GroupsClear (never "").
	GroupsMissing string
}

// DecodeRoleRules reads the role rules of a connection's stored settings.
// It reads only what it needs and ignores the rest (the settings were
// checked when they were applied).
func DecodeRoleRules(settings []byte) (RoleRules, error) {
	var s struct {
		Attributes    struct{ Roles string } `json:"attributes"`
		Claims        struct{ Roles string } `json:"claims"`
		GroupRoles    []GroupRole            `json:"group_roles"`
		Constants     Constants              `json:"constants"`
		GroupsMissing string                 `json:"groups_missing"`
	}
	if len(settings) > 0 {
		if err := json.Unmarshal(settings, &s); err != nil {
			return RoleRules{}, fmt.Errorf("connection settings: %w", err)
		}
	}
	r := RoleRules{
		MapsRoles:      s.Attributes.Roles != "" || s.Claims.Roles != "" || len(s.GroupRoles) > 0 || len(s.Constants.Roles) > 0,
		GroupRoles:     s.GroupRoles,
		ConstantGroups: s.Constants.Groups,
		GroupsMissing:  s.GroupsMissing,
	}
	if r.GroupsMissing != GroupsClear {
		r.GroupsMissing = GroupsKeep
	}
	return r, nil
}

// IdPGroups reports whether groups, a login's groups, hold any the IdP
// sent: any but the connection's constant groups.
func (r RoleRules) IdPGroups(groups []string) bool {
	return slices.ContainsFunc(groups, func(g string) bool { return !slices.Contains(r.ConstantGroups, g) })
}

// GroupClaims are the roles the connection's group rules give to members
// of groups.
func (r RoleRules) GroupClaims(groups []string) []string {
	var out []string
	for _, gr := range r.GroupRoles {
		if slices.Contains(groups, gr.Group) && !slices.Contains(out, gr.Role) {
			out = append(out, gr.Role)
		}
	}
	return out
}
