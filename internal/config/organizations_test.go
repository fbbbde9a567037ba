package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/jitprov/jitprov/internal/notify"
	"github.com/jitprov/jitprov/internal/store"
)

func TestLoadOrganizations(t *testing.T) {
	mapping := `"attributes":{"email":"http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress","groups":"groups"}`
	tests := []struct {
		file       string
		wantOrgs   []store.Organization
		wantConns  []store.Connection
		wantNotify map[string]notify.Settings
	}{{
		file: "testdata/organizations-full.yaml",
		wantOrgs: []store.Organization{{
			ID:              "acme",
			Name:            "Acme Corp",
			MaxSeats:        50,
			Roles:           []string{"viewer", "member", "manager", "admin"},
			DefaultRole:     "member",
			JITRoleCeiling:  "manager",
			UpdatePolicy:    store.PreferApp,
			LinkByEmail:     store.LinkVerifiedDomains,
			VerifiedDomains: []string{"acme.com", "acme.co.uk"},

			SeatWarningPercent: 80,
			LandingURL:         "https://app.acme.com/home",
			InitialAdmins:      []string{"it-lead@acme.com"},
			NewPeople:          store.NewPeopleHold, WhenFull: store.WhenFullHold,
		}, {
			ID:             "globex-7",
			Name:           "Globex: Research",
			MaxSeats:       0,
			Roles:          []string{"viewer", "member", "admin"},
			DefaultRole:    "viewer",
			JITRoleCeiling: "viewer",
			UpdatePolicy:   store.PreferIdP,
			LinkByEmail:    store.LinkNever,

			SeatWarningPercent: 90,
			NewPeople:          store.NewPeopleActive, WhenFull: store.WhenFullRefuse,
		}},
		wantNotify: map[string]notify.Settings{
			"acme": {
				Admins: false, Emails: []string{"it-alerts@acme.com", "Security@acme.com"},
				Webhooks: []notify.Webhook{
					{ID: "ops", URL: "https://hooks.acme.com/jitprov", Format: notify.FormatCloudEvents, SecretEnv: "ACME_WEBHOOK_SECRET"},
					{ID: "webhook-2", URL: "https://hooks.slack.com/services/T000/B000/XXXX", Format: notify.FormatSlack,
						SecretFile: "/run/secrets/acme-slack", Alerts: []string{"seats.exhausted", "seats.threshold-reached"}},
				},
				SeatCooldown: 30 * time.Minute, SeatDelay: 0, RoleReviews: notify.ReviewsDigest, DigestInterval: 4 * time.Hour,
			},
			"globex-7": notify.DefaultSettings(),
		},
		wantConns: []store.Connection{{
			OrganizationID: "acme",
			ID:             "okta",
			Protocol:       "saml",
			DisplayName:    "Acme Okta",
			Settings: []byte(`{"allow_idp_initiated":false,` + mapping + `,"group_roles":[{"group":"acme-managers","role":"manager"}],` +
				`"idp_metadata_url":"https://acme.okta.com/app/exk1/sso/saml/metadata"}`),
		}, {
			OrganizationID: "acme",
			ID:             "google_workspace",
			Protocol:       "oidc",
			DisplayName:    "Google Workspace",
			Replaces:       "okta",
			Settings: []byte(`{"claims":{"groups":"groups"},"client_id":"1234567890.apps.googleusercontent.com",` +
				`"client_secret_file":"/run/secrets/google-client-secret","issuer":"https://accounts.google.com","scopes":["openid","email","profile"]}`),
		}, {
			OrganizationID: "globex-7",
			ID:             "entra",
			Protocol:       "oidc",
			Settings:       []byte(`{"client_id":"entra-client","client_secret_env":"GLOBEX_ENTRA_SECRET","issuer":"https://login.microsoftonline.com/0000-tenant/v2.0"}`),
		}},
	}, {
		file: "testdata/organizations-minimal.yaml",
		wantOrgs: []store.Organization{{
			ID:             "initech",
			Name:           "Initech",
			MaxSeats:       10,
			Roles:          []string{"viewer", "member", "admin"},
			DefaultRole:    "viewer",
			JITRoleCeiling: "viewer",
			UpdatePolicy:   store.PreferIdP,
			LinkByEmail:    store.LinkNever,

			SeatWarningPercent: 90,
			NewPeople:          store.NewPeopleActive, WhenFull: store.WhenFullRefuse,
		}},
		wantNotify: map[string]notify.Settings{"initech": notify.DefaultSettings()},
	}}
	for _, tt := range tests {
		t.Run(filepath.Base(tt.file), func(t *testing.T) {
			f, err := LoadOrgFile(tt.file)
			if err != nil {
				t.Fatalf("LoadOrgFile: %v", err)
			}
			orgs, conns := f.Organizations, f.Connections
			if !reflect.DeepEqual(f.Notifications, tt.wantNotify) {
				t.Errorf("notifications:\n got %+v\nwant %+v", f.Notifications, tt.wantNotify)
			}
			if !reflect.DeepEqual(orgs, tt.wantOrgs) {
				t.Errorf("organisations:\n got %+v\nwant %+v", orgs, tt.wantOrgs)
			}
			if len(conns) != len(tt.wantConns) {
				t.Fatalf("got %d connections, want %d: %+v", len(conns), len(tt.wantConns), conns)
			}
			for i := range conns {
				got, want := conns[i], tt.wantConns[i]
				if got.OrganizationID != want.OrganizationID || got.ID != want.ID || got.Protocol != want.Protocol ||
					got.DisplayName != want.DisplayName || got.Replaces != want.Replaces || string(got.Settings) != string(want.Settings) {
					t.Errorf("connection %d:\n got %+v settings %s\nwant %+v settings %s", i, got, got.Settings, want, want.Settings)
				}
			}
		})
	}
}

// base is a valid organisation on lines 1 to 4; lines given to org follow
// from line 5.
const base = `organizations:
  - id: acme
    name: Acme
    max_seats: 5
`

func org(lines ...string) string {
	if len(lines) == 0 {
		return base
	}
	return base + strings.Join(lines, "\n") + "\n"
}

func TestParseOrganizationsErrors(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want []string // each must appear in the error, in this order
	}{
		// The file as a whole.
		{"empty file", "", []string{`orgs.yaml: the file is empty`}},
		{"only comments", "# nothing yet\n", []string{`orgs.yaml: the file is empty`}},
		{"no organizations key", "other: 1\n", []string{`orgs.yaml:1: unknown field "other"`, `orgs.yaml:1: organizations: no organisations`}},
		{"empty organizations", "organizations: []\n", []string{`orgs.yaml:1: organizations: no organisations`}},
		{"organizations not a list", "organizations:\n  id: acme\n", []string{`orgs.yaml:1: organizations: expected a list of organisations, got a mapping`}},
		{"entry not a mapping", org("  - acme"), []string{`orgs.yaml:5: organizations[1]: expected a mapping of organisation fields, got "acme"`}},
		{"syntax error", org("    roles: [viewer, admin", "    default_role: viewer"), []string{`orgs.yaml:5: invalid YAML: did not find expected ',' or ']'`}},
		{"syntax error on line 1", "organizations: a: b\n", []string{`orgs.yaml:1: invalid YAML: mapping values are not allowed`}},
		{"tab indentation", org("\tupdate_policy: prefer-app"), []string{`orgs.yaml:5: invalid YAML: found a tab character that violates indentation (YAML indents with spaces, not tabs)`}},
		{"second document", org("---", "organizations: []"), []string{`orgs.yaml:5: a second YAML document starts here`}},
		{"unknown anchor", org("    name: *nope"), []string{`orgs.yaml:5: invalid YAML: alias *nope refers to no anchor`}},

		// Unknown and repeated keys.
		{"unknown top-level field", "organisations: []\n", []string{`orgs.yaml:1: unknown field "organisations"; did you mean "organizations"? (known fields: organizations)`}},
		{"unknown organisation field", org("    seats: 5"), []string{`orgs.yaml:5: organizations[0]: unknown field "seats" (known fields: id, name, max_seats, roles,`}},
		{"unknown connection field", org("    connections:", "      - id: okta", "        protocol: saml", "        protcol: saml"),
			[]string{`orgs.yaml:8: organizations[0].connections[0]: unknown field "protcol"; did you mean "protocol"? (known fields: id, protocol, display_name, replaces, settings)`}},
		{"repeated key", org("    name: Acme again"), []string{`orgs.yaml:5: organizations[0]: key "name" is given twice (first on line 3)`}},

		// Landing page, display names and replaced connections.
		{"landing url not absolute", org("    landing_url: /home"), []string{`orgs.yaml:5: organizations[0].landing_url: "/home" is not an absolute http(s) URL`}},
		{"initial admin not an address", org("    initial_admins: [Boss <boss@acme.com>, boss@acme.com, BOSS@acme.com]"),
			[]string{`orgs.yaml:5: organizations[0].initial_admins[0]: "Boss <boss@acme.com>" is not an email address`,
				`orgs.yaml:5: organizations[0].initial_admins[2]: "BOSS@acme.com" is listed twice (also initial_admins[1])`}},
		{"landing url plain http", org("    landing_url: http://app.acme.com/"), []string{`orgs.yaml:5: organizations[0].landing_url: "http://app.acme.com/" is plain http`}},
		{"landing url with a user name", org("    landing_url: https://app.acme.com@evil.example/"), []string{`orgs.yaml:5: organizations[0].landing_url: "https://app.acme.com@evil.example/" carries a user name before the host`}},
		{"replaces in a circle", org("    connections:", "      - id: a", "        protocol: oidc", "        replaces: b",
			"      - id: b", "        protocol: oidc", "        replaces: c", "      - id: c", "        protocol: saml", "        replaces: a"),
			[]string{`orgs.yaml:8: organizations[0].connections[0].replaces: the connections replace one another in a circle (a → b → c → a)`,
				`orgs.yaml:11: organizations[0].connections[1].replaces: the connections replace one another in a circle (b → c → a → b)`,
				`orgs.yaml:14: organizations[0].connections[2].replaces: the connections replace one another in a circle (c → a → b → c)`}},
		{"display name empty", org("    connections:", "      - id: okta", "        protocol: saml", `        display_name: " "`),
			[]string{`orgs.yaml:8: organizations[0].connections[0].display_name: empty; give the name people see`}},
		{"replaces unknown", org("    connections:", "      - id: entra", "        protocol: oidc", "        replaces: okta"),
			[]string{`orgs.yaml:8: organizations[0].connections[0].replaces: "okta" is not a connection of organisation "acme"`}},
		{"replaces itself", org("    connections:", "      - id: entra", "        protocol: oidc", "        replaces: entra"),
			[]string{`orgs.yaml:8: organizations[0].connections[0].replaces: a connection cannot replace itself`}},
		{"replace each other", org("    connections:", "      - id: entra", "        protocol: oidc", "        replaces: okta",
			"      - id: okta", "        protocol: saml", "        replaces: entra"),
			[]string{`orgs.yaml:8: organizations[0].connections[0].replaces: "entra" and "okta" replace each other`,
				`orgs.yaml:11: organizations[0].connections[1].replaces: "okta" and "entra" replace each other`}},

		// Notification settings.
		{"seat warning above 100", org("    seat_warning_percent: 120"), []string{`orgs.yaml:5: organizations[0].seat_warning_percent: 120 is not a share of max_seats; give 1 to 100, or 0 for no warning`}},
		{"notification email invalid", org("    notifications:", "      emails: [Ops <ops@acme.com>, nope]"),
			[]string{`orgs.yaml:6: organizations[0].notifications.emails[0]: "Ops <ops@acme.com>" is not an email address`, `orgs.yaml:6: organizations[0].notifications.emails[1]: "nope" is not an email address`}},
		{"webhook without url or secret", org("    notifications:", "      webhooks:", "        - id: ops"),
			[]string{`orgs.yaml:7: organizations[0].notifications.webhooks[0].url: required`, `orgs.yaml:7: organizations[0].notifications.webhooks[0].secret_env: required: where the shared secret`}},
		{"webhook url not http", org("    notifications:", "      webhooks:", "        - url: ftp://hooks.acme.com/x", "          secret_env: S"),
			[]string{`orgs.yaml:7: organizations[0].notifications.webhooks[0].url: "ftp://hooks.acme.com/x" is not an http(s) URL`}},
		{"webhook two secrets", org("    notifications:", "      webhooks:", "        - url: https://h.acme.com/", "          secret_env: S", "          secret_file: /f"),
			[]string{`orgs.yaml:8: organizations[0].notifications.webhooks[0].secret_env: give one of secret, secret_env and secret_file`}},
		{"webhook unknown format and alert", org("    notifications:", "      webhooks:", "        - url: https://h.acme.com/", "          secret_env: S", "          format: teams", "          alerts: [user.created]"),
			[]string{`orgs.yaml:9: organizations[0].notifications.webhooks[0].format: "teams" is not a webhook format; use cloudevents or slack`,
				`orgs.yaml:10: organizations[0].notifications.webhooks[0].alerts[0]: "user.created" is not an alert; use seats.exhausted, seats.threshold-reached, role-review.requested, idp-certificate.expiring, provisioning.failed`}},
		{"duplicate webhook id", org("    notifications:", "      webhooks:", "        - {id: ops, url: https://a.acme.com/, secret_env: A}", "        - {id: ops, url: https://b.acme.com/, secret_env: B}"),
			[]string{`orgs.yaml:8: organizations[0].notifications.webhooks[1].id: "ops" is already the id of webhooks[0]`}},
		{"role review mode and cooldown", org("    notifications:", "      role_reviews: weekly", "      seat_cooldown: 0s"),
			[]string{`orgs.yaml:6: organizations[0].notifications.role_reviews: "weekly" is not a mode`, `orgs.yaml:7: organizations[0].notifications.seat_cooldown: must be positive`}},

		// Organisation fields.
		{"id missing", "organizations:\n  - name: Acme\n    max_seats: 5\n", []string{`orgs.yaml:2: organizations[0].id: required`}},
		{"id invalid", strings.Replace(base, "id: acme", "id: Acme Corp", 1), []string{`orgs.yaml:2: organizations[0].id: "Acme Corp" is not a valid organisation id`}},
		{"id upper case", strings.Replace(base, "id: acme", "id: ACME", 1), []string{`orgs.yaml:2: organizations[0].id: "ACME" is not a valid organisation id: use 1 to 63 characters of a-z, 0-9, '-' and '_', starting with a letter or digit (did you mean "acme"?)`}},
		{"duplicate organisation id", org("  - id: acme", "    name: Acme 2", "    max_seats: 1"),
			[]string{`orgs.yaml:5: organizations[1].id: "acme" is already the id of organizations[0] (line 2); organisation ids must be unique in the file`}},
		{"name missing", "organizations:\n  - id: acme\n    max_seats: 5\n", []string{`orgs.yaml:2: organizations[0].name: required`}},
		{"name blank", strings.Replace(base, "name: Acme", `name: "  "`, 1), []string{`orgs.yaml:3: organizations[0].name: required`}},
		{"max_seats missing", "organizations:\n  - id: acme\n    name: Acme\n", []string{`orgs.yaml:2: organizations[0].max_seats: required`}},
		{"max_seats negative", strings.Replace(base, "max_seats: 5", "max_seats: -1", 1), []string{`orgs.yaml:4: organizations[0].max_seats: -1 is negative`}},
		{"max_seats not a number", strings.Replace(base, "max_seats: 5", "max_seats: fifty", 1), []string{`orgs.yaml:4: organizations[0].max_seats: expected a whole number, got "fifty"`}},
		{"max_seats fraction", strings.Replace(base, "max_seats: 5", "max_seats: 1.5", 1), []string{`orgs.yaml:4: organizations[0].max_seats: expected a whole number, got 1.5`}},
		{"max_seats too large", strings.Replace(base, "max_seats: 5", "max_seats: 3000000000", 1), []string{`orgs.yaml:4: organizations[0].max_seats: 3000000000 is more than the largest seat limit`}},

		// Roles.
		{"one role", org("    roles: [admin]"), []string{`orgs.yaml:5: organizations[0].roles: list at least 2 roles`}},
		{"no roles", org("    roles: []"), []string{`orgs.yaml:5: organizations[0].roles: list at least 2 roles`}},
		{"empty role", org("    roles:", "      - viewer", `      - ""`, "      - admin"), []string{`orgs.yaml:7: organizations[0].roles[1]: a role name must not be empty`}},
		{"role name too long", org("    roles:", "      - viewer", "      - "+strings.Repeat("r", 129), "      - admin"), []string{`orgs.yaml:7: organizations[0].roles[1]: role name of 129 characters is longer than 128`}},
		{"repeated role", org("    roles: [viewer, member, viewer, admin]"), []string{`orgs.yaml:5: organizations[0].roles[2]: role "viewer" is listed twice (also roles[0])`}},
		{"roles not a list", org("    roles: admin"), []string{`orgs.yaml:5: organizations[0].roles: expected a list of strings, got "admin"`}},
		{"default_role unknown", org("    default_role: owner"), []string{`orgs.yaml:5: organizations[0].default_role: "owner" is not one of roles (viewer, member, admin)`}},
		{"default_role admin", org("    default_role: admin"), []string{`orgs.yaml:5: organizations[0].default_role: "admin" is the organisation admin role (the last of roles), which JIT never grants; choose a lower role`}},
		{"jit_role_ceiling unknown", org("    jit_role_ceiling: owner"), []string{`orgs.yaml:5: organizations[0].jit_role_ceiling: "owner" is not one of roles (viewer, member, admin)`}},
		{"jit_role_ceiling admin", org("    roles: [viewer, member, manager, admin]", "    default_role: member", "    jit_role_ceiling: admin"),
			[]string{`orgs.yaml:7: organizations[0].jit_role_ceiling: "admin" is the organisation admin role (the last of roles), which JIT never grants; choose a lower role`}},
		{"jit_role_ceiling below default_role", org("    default_role: member", "    jit_role_ceiling: viewer"),
			[]string{`orgs.yaml:6: organizations[0].jit_role_ceiling: "viewer" ranks below default_role "member"`}},

		// Policies and domains.
		{"update_policy unknown", org("    update_policy: prefer_idp"), []string{`orgs.yaml:5: organizations[0].update_policy: "prefer_idp" is not an update policy; use prefer-idp`}},
		{"link_by_email unknown", org("    link_by_email: always"), []string{`orgs.yaml:5: organizations[0].link_by_email: "always" is not a link policy; use never or verified-domains`}},
		{"new_people unknown", org("    new_people: approve"), []string{`orgs.yaml:5: organizations[0].new_people: "approve" is not a choice for new people; use active`}},
		{"new_people empty", org("    new_people: \"\""), []string{`orgs.yaml:5: organizations[0].new_people: "" is not a choice for new people`}},
		{"when_full unknown", org("    when_full: queue"), []string{`orgs.yaml:5: organizations[0].when_full: "queue" is not a choice for a full organisation; use refuse`}},
		{"when_full held", org("    when_full: Hold"), []string{`orgs.yaml:5: organizations[0].when_full: "Hold" is not a choice`}},
		{"inactive_after without a unit", org("    inactive_after: 90"), []string{`orgs.yaml:5: organizations[0].inactive_after: "90" is not a duration; write how long a person may go without signing in, such as 90d or 2160h, or off`}},
		{"inactive_after in weeks", org("    inactive_after: 12w"), []string{`orgs.yaml:5: organizations[0].inactive_after: "12w" is not a duration`}},
		{"inactive_after negative days", org("    inactive_after: -3d"), []string{`orgs.yaml:5: organizations[0].inactive_after: "-3d" is not a number of days`}},
		{"inactive_after under a day", org("    inactive_after: 12h"), []string{`orgs.yaml:5: organizations[0].inactive_after: "12h" is shorter than a day`}},
		{"inactive_after zero days", org("    inactive_after: 0d"), []string{`orgs.yaml:5: organizations[0].inactive_after: "0d" is shorter than a day`}},
		{"inactive_after centuries", org("    inactive_after: 50000d"), []string{`organizations[0].inactive_after: "50000d" is more than 100 years`}},
		{"verified-domains without domains", org("    link_by_email: verified-domains"),
			[]string{`orgs.yaml:5: organizations[0].link_by_email: verified-domains links a login to an existing user only when the email's domain is in verified_domains, and verified_domains is empty, so it would never link`}},
		{"domain without a dot", org("    verified_domains: [localhost]"), []string{`orgs.yaml:5: organizations[0].verified_domains[0]: "localhost" is not a domain name`}},
		{"domain with a mailbox", org("    verified_domains:", "      - acme.com", "      - jane@acme.org"), []string{`orgs.yaml:7: organizations[0].verified_domains[1]: "jane@acme.org" is not a domain name; write the domain only, without a mailbox`}},
		{"domain as a URL", org("    verified_domains: [https://acme.com]"), []string{`orgs.yaml:5: organizations[0].verified_domains[0]: "https://acme.com" is not a domain name; write the domain only, not a URL`}},
		{"domain with a bad label", org("    verified_domains: [-acme.com]"), []string{`organizations[0].verified_domains[0]: "-acme.com" is not a domain name`}},
		{"duplicate domain", org("    verified_domains: [acme.com, ACME.com]"), []string{`orgs.yaml:5: organizations[0].verified_domains[1]: "acme.com" is listed twice (also verified_domains[0])`}},

		// Field owners.
		{"field owner unknown", org("    field_owners:", "      email: idp", "      groups: okta"),
			[]string{`orgs.yaml:7: organizations[0].field_owners.groups: "okta" is not an owner; use idp (sign-ins and SCIM may change it), scim (only SCIM), app (neither: only admins and the application) or first-login-only`}},
		{"field owner typo", org("    field_owners:", "      role: first-login"),
			[]string{`orgs.yaml:6: organizations[0].field_owners.role: "first-login" is not an owner; did you mean "first-login-only"?`}},
		{"field owner missing", org("    field_owners:", "      email:"),
			[]string{`orgs.yaml:6: organizations[0].field_owners.email: no owner; give idp`}},
		{"field name typo", org("    field_owners:", "      emial: scim"),
			[]string{`orgs.yaml:6: organizations[0].field_owners.emial: unknown field; did you mean "email"? (fields: email, given_name, family_name, display_name, groups, role, a custom attribute's name, or "*" for every other custom attribute; a custom attribute named "emial" is written attributes.emial)`}},
		{"field name roles", org("    field_owners:", "      roles: scim"), []string{`orgs.yaml:6: organizations[0].field_owners.roles: unknown field; did you mean "role"?`}},
		{"field name firstName", org("    field_owners:", "      firstName: app"), []string{`orgs.yaml:6: organizations[0].field_owners.firstName: unknown field; did you mean "given_name"?`}},
		{"email_verified owned", org("    field_owners:", "      email_verified: app"),
			[]string{`orgs.yaml:6: organizations[0].field_owners.email_verified: whether the email is verified follows the email: give email an owner`}},
		{"status owned", org("    field_owners:", "      status: scim"),
			[]string{`orgs.yaml:6: organizations[0].field_owners.status: "status" cannot have an owner: only the profile fields`}},
		{"attribute named twice", org("    field_owners:", "      department: app", "      attributes.department: scim"),
			[]string{`orgs.yaml:7: organizations[0].field_owners.attributes.department: names the same field as "department" (line 6); give each field one owner`}},
		{"empty attribute name", org("    field_owners:", "      \"attributes.\": app"),
			[]string{`orgs.yaml:6: organizations[0].field_owners.attributes.: "attributes." names no custom attribute`}},
		{"field owners a list", org("    field_owners: [email, groups]"),
			[]string{`orgs.yaml:5: organizations[0].field_owners: expected a mapping of names to values, got a list`}},
		{"field owner a list", org("    field_owners:", "      groups: [scim, app]"),
			[]string{`orgs.yaml:6: organizations[0].field_owners.groups: expected a string, got a list`}},

		// Connections.
		{"connection id missing", org("    connections:", "      - protocol: saml"), []string{`orgs.yaml:6: organizations[0].connections[0].id: required`}},
		{"connection id invalid", org("    connections:", "      - id: Okta SSO", "        protocol: saml"), []string{`orgs.yaml:6: organizations[0].connections[0].id: "Okta SSO" is not a valid connection id`}},
		{"duplicate connection id", org("    connections:", "      - id: okta", "        protocol: saml", "      - id: okta", "        protocol: oidc"),
			[]string{`orgs.yaml:8: organizations[0].connections[1].id: "okta" is already the id of organizations[0].connections[0] (line 6); connection ids must be unique within an organisation`}},
		{"protocol missing", org("    connections:", "      - id: okta"), []string{`orgs.yaml:6: organizations[0].connections[0].protocol: required: saml or oidc`}},
		{"protocol unknown", org("    connections:", "      - id: okta", "        protocol: ldap"), []string{`orgs.yaml:7: organizations[0].connections[0].protocol: "ldap" is not a protocol; use saml or oidc`}},
		{"settings not a mapping", org("    connections:", "      - id: okta", "        protocol: saml", "        settings: [a, b]"),
			[]string{`orgs.yaml:8: organizations[0].connections[0].settings: expected a mapping of the connection's IdP settings, got a list`}},
		{"settings value not JSON", org("    connections:", "      - id: okta", "        protocol: saml", "        settings:", "          skew: .inf"),
			[]string{`orgs.yaml:9: organizations[0].connections[0].settings.skew: .inf cannot be stored in JSON`}},
		{"settings alias cycle", org("    connections:", "      - id: okta", "        protocol: saml", "        settings: &s", "          again: *s"),
			[]string{`orgs.yaml:9: organizations[0].connections[0].settings.again: alias *s refers to a value that contains it`}},
		{"settings repeated key", org("    connections:", "      - id: okta", "        protocol: saml", "        settings:", "          a: 1", "          a: 2"),
			[]string{`orgs.yaml:10: organizations[0].connections[0].settings.a: key "a" is given twice (first on line 9)`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			orgs, conns, err := ParseOrganizations("orgs.yaml", []byte(tt.yaml))
			if err == nil {
				t.Fatalf("no error; got %+v %+v", orgs, conns)
			}
			if orgs != nil || conns != nil {
				t.Errorf("got values with the error: %+v %+v", orgs, conns)
			}
			msg := err.Error()
			rest := msg
			for _, w := range tt.want {
				i := strings.Index(rest, w)
				if i < 0 {
					t.Fatalf("error does not contain (in order)\n  %s\ngot:\n%s", w, msg)
				}
				rest = rest[i+len(w):]
			}
		})
	}
}

// TestParseOrganizationsAllErrors checks that every problem is reported at
// once, one per line, in line order, and that a value of the wrong type is
// not reported a second time by the checks of its value.
func TestParseOrganizationsAllErrors(t *testing.T) {
	data := `organizations:
  - id: acme
    name: Acme
    max_seats: lots
    jit_role_ceiling: admin
    connections:
      - id: okta
        protocol: saml
      - id: okta
        protocol: cas
  - id: acme
    max_seats: 1
    colour: red
`
	_, _, err := ParseOrganizations("orgs.yaml", []byte(data))
	if err == nil {
		t.Fatal("no error")
	}
	want := []string{
		`orgs.yaml:4: organizations[0].max_seats: expected a whole number, got "lots"`,
		`orgs.yaml:5: organizations[0].jit_role_ceiling: "admin" is the organisation admin role (the last of roles), which JIT never grants; choose a lower role`,
		`orgs.yaml:7: organizations[0].connections[0].settings.idp_metadata_url: required: the IdP's metadata, as idp_metadata_url, idp_metadata_file or idp_metadata_xml`,
		`orgs.yaml:9: organizations[0].connections[1].id: "okta" is already the id of organizations[0].connections[0] (line 7); connection ids must be unique within an organisation`,
		`orgs.yaml:10: organizations[0].connections[1].protocol: "cas" is not a protocol; use saml or oidc`,
		`orgs.yaml:11: organizations[1].name: required: the organisation's display name, e.g. name: Acme Corp`,
		`orgs.yaml:11: organizations[1].id: "acme" is already the id of organizations[0] (line 2); organisation ids must be unique in the file`,
		`orgs.yaml:13: organizations[1]: unknown field "colour" (known fields: id, name, max_seats, roles, default_role, jit_role_ceiling, update_policy, link_by_email, verified_domains, landing_url, initial_admins, new_people, when_full, inactive_after, field_owners, connections, seat_warning_percent, notifications)`,
	}
	if got := strings.Split(err.Error(), "\n"); !reflect.DeepEqual(got, want) {
		t.Errorf("errors:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestParseOrganizationsSettings(t *testing.T) {
	// Settings are stored as JSON; YAML anchors and merge keys work.
	data := org(
		"    connections:",
		"      - id: okta",
		"        protocol: saml",
		"        settings: &base",
		"          idp_metadata_url: https://idp.example/md",
		"          attributes: {email: mail}",
		"          clock_skew: 30s",
		"      - id: okta2",
		"        protocol: saml",
		"        settings:",
		"          <<: *base",
		"          clock_skew: 1m",
	)
	_, conns, err := ParseOrganizations("orgs.yaml", []byte(data))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		`{"attributes":{"email":"mail"},"clock_skew":"30s","idp_metadata_url":"https://idp.example/md"}`,
		`{"attributes":{"email":"mail"},"clock_skew":"1m","idp_metadata_url":"https://idp.example/md"}`,
	}
	for i, w := range want {
		if got := string(conns[i].Settings); got != w {
			t.Errorf("settings %d:\n got %s\nwant %s", i, got, w)
		}
	}
}

func TestParseOrganizationsInactiveAfter(t *testing.T) {
	for _, tc := range []struct {
		line string
		want time.Duration
	}{
		{"", 0},
		{"    inactive_after: off", 0},
		{"    inactive_after: OFF", 0},
		{"    inactive_after: 90d", 90 * 24 * time.Hour},
		{"    inactive_after: 2160h", 90 * 24 * time.Hour},
		{"    inactive_after: 1d", 24 * time.Hour},
		{"    inactive_after: 36h30m", 36*time.Hour + 30*time.Minute},
	} {
		t.Run(tc.line, func(t *testing.T) {
			var data string
			if tc.line == "" {
				data = org()
			} else {
				data = org(tc.line)
			}
			orgs, _, err := ParseOrganizations("orgs.yaml", []byte(data))
			if err != nil {
				t.Fatal(err)
			}
			if got := orgs[0].InactiveAfter; got != tc.want {
				t.Errorf("InactiveAfter: got %s, want %s", got, tc.want)
			}
		})
	}
}

func TestLoadOrganizationsMissingFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nope.yaml")
	_, _, err := LoadOrganizations(path)
	if err == nil || !strings.Contains(err.Error(), path) || !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("got %v, want a not-found error naming %s", err, path)
	}
}

func TestLoadOrganizationsNamesThePath(t *testing.T) {
	path := filepath.Join(t.TempDir(), "orgs.yaml")
	if err := os.WriteFile(path, []byte(org("    max_seats: 6")), 0o600); err != nil {
		t.Fatal(err)
	}
	_, _, err := LoadOrganizations(path)
	if want := path + `:5: organizations[0]: key "max_seats" is given twice`; err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("got %v, want it to contain %s", err, want)
	}
}

// A SAML connection's settings are typed: each mistake names its line and
// setting.
func TestParseOrganizationsSAMLSettings(t *testing.T) {
	conn := func(settings ...string) string {
		return org(append([]string{"    connections:", "      - id: okta", "        protocol: saml", "        settings:"}, settings...)...)
	}
	tests := []struct {
		name string
		data string
		want string
	}{
		{"unknown setting", conn("          idp_metadata_url: https://idp.example/md", "          allow_idp_initated: true"),
			`orgs.yaml:10: organizations[0].connections[0].settings.allow_idp_initated: unknown setting`},
		{"no metadata", conn("          allow_sha1: false"),
			`organizations[0].connections[0].settings.idp_metadata_url: required`},
		{"two metadata sources", conn("          idp_metadata_url: https://idp.example/md", "          idp_metadata_file: /md.xml"),
			`settings.idp_metadata_url: give the IdP's metadata once`},
		{"plain http metadata", conn("          idp_metadata_url: http://idp.example/md"),
			`orgs.yaml:9: organizations[0].connections[0].settings.idp_metadata_url: "http://idp.example/md" must be an https:// URL`},
		{"key without certificate", conn("          idp_metadata_url: https://idp.example/md", "          sp_key_file: /k.pem"),
			`settings.sp_key_file: give sp_key_file and sp_cert_file together`},
		{"clock skew too large", conn("          idp_metadata_url: https://idp.example/md", "          clock_skew: 1h"),
			`orgs.yaml:10: organizations[0].connections[0].settings.clock_skew: 1h0m0s is out of range`},
		{"clock skew not a duration", conn("          idp_metadata_url: https://idp.example/md", "          clock_skew: soon"),
			`orgs.yaml:10: organizations[0].connections[0].settings.clock_skew: "soon" is not a duration`},
		{"group role unknown", conn("          idp_metadata_url: https://idp.example/md", "          group_roles:", "            - {group: g, role: owner}"),
			`orgs.yaml:11: organizations[0].connections[0].settings.group_roles[0].role: "owner" is not one of the organisation's roles`},
		{"inline metadata that is not metadata", conn("          idp_metadata_xml: https://idp.example/md"),
			`orgs.yaml:9: organizations[0].connections[0].settings.idp_metadata_xml: not SAML metadata (an EntityDescriptor): EOF`},
		{"inline metadata of no IdP", conn("          idp_metadata_xml: |", `            <EntityDescriptor xmlns="urn:oasis:names:tc:SAML:2.0:metadata" entityID="https://sp.example/"/>`),
			`orgs.yaml:9: organizations[0].connections[0].settings.idp_metadata_xml: IdP metadata "https://sp.example/": no IDPSSODescriptor`},
		{"wrong type", conn("          idp_metadata_url: https://idp.example/md", "          allow_idp_initiated: sometimes"),
			`orgs.yaml:10: organizations[0].connections[0].settings.allow_idp_initiated: expected true or false, got "sometimes"`},
		{"groups_missing unknown", conn("          idp_metadata_url: https://idp.example/md", "          groups_missing: drop"),
			`organizations[0].connections[0].settings.groups_missing: "drop" is not one of keep`},
		{"groups_missing not a string", conn("          idp_metadata_url: https://idp.example/md", "          groups_missing: [keep]"),
			`orgs.yaml:10: organizations[0].connections[0].settings.groups_missing: expected`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := ParseOrganizations("orgs.yaml", []byte(tt.data))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %v\nwant an error containing %s", err, tt.want)
			}
		})
	}
}

func TestParseOrganizationsDomainOfTwoOrganisations(t *testing.T) {
	data := `organizations:
  - id: acme
    name: Acme
    max_seats: 1
    verified_domains: [acme.example]
  - id: globex
    name: Globex
    max_seats: 1
    verified_domains: [globex.example, Acme.example]
`
	_, _, err := ParseOrganizations("orgs.yaml", []byte(data))
	want := `orgs.yaml:9: organizations[1].verified_domains[1]: "acme.example" is already verified for organizations[0] (line 2)`
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("got %v, want %s", err, want)
	}
}

// An OIDC connection's settings are typed too; the client secret itself is
// refused.
func TestParseOrganizationsOIDCSettings(t *testing.T) {
	data := org(
		"    connections:",
		"      - id: google",
		"        protocol: oidc",
		"        settings:",
		"          issuer: https://accounts.google.com",
		"          client_id: x",
		"          client_secret: s3cret",
	)
	_, _, err := ParseOrganizations("orgs.yaml", []byte(data))
	want := "orgs.yaml:11: organizations[0].connections[0].settings.client_secret: unknown setting"
	if err == nil || !strings.Contains(err.Error(), want) || strings.Contains(err.Error(), "s3cret") {
		t.Errorf("got %v, want %q without the secret", err, want)
	}
}

// groups_missing is keep (the default) or clear, for SAML and OIDC
// connections alike.
func TestParseOrganizationsGroupsMissing(t *testing.T) {
	settings := map[string][]string{
		"saml": {"          idp_metadata_url: https://idp.example/md"},
		"oidc": {"          issuer: https://accounts.google.com", "          client_id: x", "          client_secret_env: SECRET"},
	}
	for _, protocol := range []string{"saml", "oidc"} {
		for _, tt := range []struct {
			value   string // "" leaves the setting out
			wantErr string
		}{
			{"", ""},
			{"keep", ""},
			{"clear", ""},
			{"Clear", `settings.groups_missing: "Clear" is not one of keep`},
			{"wipe", `settings.groups_missing: "wipe" is not one of keep`},
		} {
			t.Run(protocol+"/"+tt.value, func(t *testing.T) {
				lines := append([]string{"    connections:", "      - id: idp", "        protocol: " + protocol, "        settings:"}, settings[protocol]...)
				if tt.value != "" {
					lines = append(lines, "          groups_missing: "+tt.value)
				}
				_, conns, err := ParseOrganizations("orgs.yaml", []byte(org(lines...)))
				switch {
				case tt.wantErr == "" && err != nil:
					t.Fatalf("got %v, want no error", err)
				case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
					t.Fatalf("got %v, want it to contain %s", err, tt.wantErr)
				case tt.wantErr != "":
					return
				}
				if len(conns) != 1 {
					t.Fatalf("got %d connections, want 1", len(conns))
				}
				if !strings.Contains(string(conns[0].Settings), `"groups_missing":"`+tt.value+`"`) != (tt.value == "") {
					t.Errorf("stored settings %s: want groups_missing %q kept", conns[0].Settings, tt.value)
				}
			})
		}
	}
}

// Four mistakes in one connection are four errors of one run, in line
// order; apply, which reads no file the connections name, reports the
// three it can know.
func TestCheckOrgFileReportsEveryMistakeOfAConnection(t *testing.T) {
	const file = "testdata/organizations-four-mistakes.yaml"
	p := file + ":%d: organizations[0].connections[0].settings."
	want := []string{
		fmt.Sprintf(p, 14) + `idp_metadata_file: cannot read the IdP's metadata from "testdata/acme-okta-metadata.xml": no such file or directory; sso-edge reads it there when it loads the connection`,
		fmt.Sprintf(p, 15) + `allow_idp_initated: unknown setting; did you mean "allow_idp_initiated"? (known settings: idp_metadata_url, idp_metadata_file, idp_metadata_xml, sp_entity_id, sp_key_file, sp_cert_file, allow_idp_initiated, require_signed_assertion, allow_sha1, clock_skew, external_id, attributes, email_verified, group_roles, constants, groups_missing, scim_identity)`,
		fmt.Sprintf(p, 16) + `require_signed_assertion: expected true or false, got "yes"`,
		fmt.Sprintf(p, 17) + `clock_skew: 10m0s is out of range: 0 to 5m0s (default 1m30s)`,
	}
	_, err := CheckOrgFile(file, true)
	if err == nil {
		t.Fatal("CheckOrgFile: no error")
	}
	if got := strings.Split(err.Error(), "\n"); !reflect.DeepEqual(got, want) {
		t.Errorf("CheckOrgFile:\n%s\nwant:\n%s", err, strings.Join(want, "\n"))
	}
	_, err = LoadOrgFile(file)
	if err == nil {
		t.Fatal("LoadOrgFile: no error")
	}
	if got := strings.Split(err.Error(), "\n"); !reflect.DeepEqual(got, want[1:]) {
		t.Errorf("LoadOrgFile:\n%s\nwant:\n%s", err, strings.Join(want[1:], "\n"))
	}
}

// A connection's constants are checked at apply and check, each mistake
// on its line: a value of the wrong type, an empty name, the email (an
// identity and linking key), a misspelt standard field.
func TestParseOrganizationsConstants(t *testing.T) {
	conn := func(protocol string, constants ...string) string {
		settings := []string{"          idp_metadata_url: https://idp.example/md"}
		if protocol == "oidc" {
			settings = []string{"          issuer: https://accounts.example.com", "          client_id: edge", "          client_secret_env: ACME_SECRET"}
		}
		lines := append([]string{"    connections:", "      - id: c", "        protocol: " + protocol, "        settings:"}, settings...)
		return org(append(append(lines, "          constants:"), constants...)...)
	}
	p := "organizations[0].connections[0].settings.constants"
	for _, protocol := range []string{"saml", "oidc"} {
		// The constants start on the line after "constants:".
		first := 11
		if protocol == "oidc" {
			first = 13
		}
		at := func(offset int, field, msg string) string {
			return fmt.Sprintf("orgs.yaml:%d: %s%s: %s", first+offset, p, field, msg)
		}
		t.Run(protocol, func(t *testing.T) {
			t.Run("valid", func(t *testing.T) {
				data := conn(protocol,
					"            department: Contractors",
					"            sites: [Remote, Berlin]",
					"            given_name: Temp",
					"            family_name: Worker",
					"            display_name: Temp Worker",
					"            groups: [contractors]",
					"            roles: [member]",
					`            "http://schemas.example/claims/site": Remote`,
				)
				_, conns, err := ParseOrganizations("orgs.yaml", []byte(data))
				if err != nil {
					t.Fatal(err)
				}
				want := `"constants":{"department":"Contractors","display_name":"Temp Worker","family_name":"Worker","given_name":"Temp",` +
					`"groups":["contractors"],"http://schemas.example/claims/site":"Remote","roles":["member"],"sites":["Remote","Berlin"]}`
				if !strings.Contains(string(conns[0].Settings), want) {
					t.Errorf("stored settings %s, want them to contain %s", conns[0].Settings, want)
				}
			})
			for _, tt := range []struct {
				name  string
				lines []string
				want  []string // every problem, in line order
			}{
				{"email", []string{"            email: all@acme.example"},
					[]string{at(0, ".email", "the email cannot be a constant: it is the key that links a login to an existing account and that is unique in the organisation")}},
				{"value types", []string{
					"            department: 42",
					"            contractor: true",
					"            sites: [Remote, 7]",
					"            given_name: [Ann, Bob]",
					"            team:",
				}, []string{
					at(0, ".department", `expected a string or a list of strings, got 42 (quote it, "42", if that text is meant)`),
					at(1, ".contractor", `expected a string or a list of strings, got true (quote it, "true", if that text is meant)`),
					at(2, ".sites[1]", `expected a string, got 7 (quote it, "7", if that text is meant)`),
					at(3, ".given_name", "expected a string, got a list; a name is one value"),
					at(4, ".team", "empty: give the value every login of the connection carries, or remove the key"),
				}},
				{"names", []string{
					`            "": x`,
					"            given_nme: Temp",
					"            surname: Worker",
					"            external_id: x",
				}, []string{
					at(0, ".", "an empty name: write the custom attribute's name, e.g. department: Contractors"),
					at(1, ".given_nme", `"given_nme" is not a standard field; did you mean given_name? (standard fields: groups, roles, given_name, family_name, display_name; any other name is a custom attribute, and one this close to a standard field's name is refused as a likely typo)`),
					at(2, ".surname", `"surname" is not a standard field; did you mean family_name?`),
					at(3, ".external_id", "the external id cannot be a constant"),
				}},
				{"nested attributes", []string{"            attributes:", "              department: Contractors"},
					[]string{at(0, ".attributes", "expected a string or a list of strings, got a mapping; custom attributes are written directly under constants, e.g. constants: {department: Contractors}")}},
				{"unknown role", []string{"            roles: [owner]"},
					[]string{at(0, ".roles[0]", `"owner" is not one of the organisation's roles (viewer, member, admin)`)}},
			} {
				t.Run(tt.name, func(t *testing.T) {
					_, _, err := ParseOrganizations("orgs.yaml", []byte(conn(protocol, tt.lines...)))
					if err == nil {
						t.Fatal("no error")
					}
					got := strings.Split(err.Error(), "\n")
					if len(got) != len(tt.want) {
						t.Fatalf("got %d problems, want %d:\n%s", len(got), len(tt.want), err)
					}
					for i, w := range tt.want {
						if !strings.HasPrefix(got[i], w) {
							t.Errorf("problem %d:\n got %s\nwant %s…", i, got[i], w)
						}
					}
				})
			}
		})
	}
	// The settings are not a mapping of constants.
	_, _, err := ParseOrganizations("orgs.yaml", []byte(org("    connections:", "      - id: c", "        protocol: saml", "        settings:",
		"          idp_metadata_url: https://idp.example/md", "          constants: [Contractors]")))
	if want := "orgs.yaml:10: " + p + ": expected a mapping of constant values"; err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("got %v, want %s", err, want)
	}
}

func TestParseOrganizationsFieldOwners(t *testing.T) {
	for _, tc := range []struct {
		name  string
		lines []string
		want  map[string]string
	}{
		{"none", nil, nil},
		{"empty", []string{"    field_owners: {}"}, nil},
		{"every kind", []string{
			"    field_owners:",
			"      email: idp",
			"      given_name: app",
			"      family_name: app",
			"      display_name: scim",
			"      groups: scim",
			"      role: scim",
			"      department: first-login-only",
			"      attributes.roles: app",
			`      "*": idp`,
		}, map[string]string{
			"email": "idp", "given_name": "app", "family_name": "app", "display_name": "scim", "groups": "scim", "role": "scim",
			"attributes.department": "first-login-only", "attributes.roles": "app", "attributes.*": "idp",
		}},
		{"a custom attribute written as such", []string{"    field_owners: {attributes.costCenter: scim}"},
			map[string]string{"attributes.costCenter": "scim"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			orgs, _, err := ParseOrganizations("orgs.yaml", []byte(org(tc.lines...)))
			if err != nil {
				t.Fatal(err)
			}
			if got := orgs[0].FieldOwners; !reflect.DeepEqual(got, tc.want) {
				t.Errorf("FieldOwners: got %v, want %v", got, tc.want)
			}
		})
	}
}
