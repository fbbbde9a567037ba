package devidp

import (
	"encoding/json"
	"os"
	"slices"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/jitprov/jitprov/internal/connection"
)

// TestExampleOrganizations keeps testdata/organizations-dev.yaml true to
// the IdP: its connection settings are valid for the edge and name the
// attributes and claims the IdP sends.
func TestExampleOrganizations(t *testing.T) {
	b, err := os.ReadFile("testdata/organizations-dev.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Organizations []struct {
			ID          string   `yaml:"id"`
			MaxSeats    int      `yaml:"max_seats"`
			Roles       []string `yaml:"roles"`
			Ceiling     string   `yaml:"jit_role_ceiling"`
			Connections []struct {
				ID       string         `yaml:"id"`
				Protocol string         `yaml:"protocol"`
				Settings map[string]any `yaml:"settings"`
			} `yaml:"connections"`
		} `yaml:"organizations"`
	}
	if err := yaml.Unmarshal(b, &f); err != nil {
		t.Fatal(err)
	}
	seats := map[string]int{}
	for _, o := range f.Organizations {
		seats[o.ID] = o.MaxSeats
		roles := o.Roles
		if roles == nil {
			roles = []string{"viewer", "member", "admin"}
		}
		for _, c := range o.Connections {
			t.Run(o.ID+"/"+c.ID, func(t *testing.T) {
				raw, err := json.Marshal(c.Settings)
				if err != nil {
					t.Fatal(err)
				}
				switch c.Protocol {
				case "saml":
					s, err := connection.DecodeSAML(raw)
					if err != nil {
						t.Fatal(err)
					}
					if p := append(s.Problems(roles), s.ServeProblems()...); len(p) > 0 {
						t.Errorf("problems: %v", p)
					}
					want := connection.Attributes{Email: AttrEmail, GivenName: AttrGivenName, FamilyName: AttrFamilyName,
						DisplayName: AttrDisplayName, Groups: AttrGroups}
					if s.Attributes != want {
						t.Errorf("attributes %+v, want %+v", s.Attributes, want)
					}
					checkAdminRule(t, o.ID, o.Ceiling, roles, s.GroupRoles)
				case "oidc":
					s, err := connection.DecodeOIDC(raw)
					if err != nil {
						t.Fatal(err)
					}
					if p := s.Problems(roles); len(p) > 0 {
						t.Errorf("problems: %v", p)
					}
					if s.Claims.Groups != "groups" {
						t.Errorf("groups claim %q, want groups", s.Claims.Groups)
					}
					checkAdminRule(t, o.ID, o.Ceiling, roles, s.GroupRoles)
				default:
					t.Errorf("protocol %q", c.Protocol)
				}
			})
		}
	}
	if n := len(PeopleIn(OrgDemoSmall)); seats[OrgDemoSmall] != n-1 {
		t.Errorf("%s has %d seats for %d people, want one person too many", OrgDemoSmall, seats[OrgDemoSmall], n)
	}
}

// checkAdminRule: in the demo organisation, AdminGroup claims a role
// above the JIT ceiling.
func checkAdminRule(t *testing.T, org, ceiling string, roles []string, rules []connection.GroupRole) {
	t.Helper()
	if org != OrgDemo {
		return
	}
	i := slices.IndexFunc(rules, func(r connection.GroupRole) bool { return r.Group == AdminGroup })
	if i < 0 || slices.Index(roles, rules[i].Role) <= slices.Index(roles, ceiling) {
		t.Errorf("group rules %+v, ceiling %q: want %s mapped to a role above the ceiling", rules, ceiling, AdminGroup)
	}
}
