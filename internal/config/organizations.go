// Package config reads jitprov's configuration files: the organisations
// file applied by `provisioner apply -f FILE`, and the provisioner
// service's own settings (an optional YAML file overridden by JITPROV_*
// environment variables).
//
// Every problem is reported for an operator: the file, the line and the
// field path, and what to do about it. A file with several problems reports
// them all at once, one per line, in line order.
package config

import (
	"encoding/json"
	"fmt"
	"math"
	"net/mail"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"gopkg.in/yaml.v3"

	"github.com/jitprov/jitprov/events"
	"github.com/jitprov/jitprov/internal/connection"
	"github.com/jitprov/jitprov/internal/notify"
	"github.com/jitprov/jitprov/internal/store"
)

// orgFile is the organisations file as written.
type orgFile struct {
	Organizations []orgEntry `yaml:"organizations"`
}

type orgEntry struct {
	ID              string            `yaml:"id"`
	Name            string            `yaml:"name"`
	MaxSeats        *int              `yaml:"max_seats"`
	Roles           []string          `yaml:"roles"`
	DefaultRole     string            `yaml:"default_role"`
	JITRoleCeiling  string            `yaml:"jit_role_ceiling"`
	UpdatePolicy    string            `yaml:"update_policy"`
	LinkByEmail     string            `yaml:"link_by_email"`
	VerifiedDomains []string          `yaml:"verified_domains"`
	LandingURL      string            `yaml:"landing_url"`
	InitialAdmins   []string          `yaml:"initial_admins"`
	NewPeople       string            `yaml:"new_people"`
	WhenFull        string            `yaml:"when_full"`
	InactiveAfter   string            `yaml:"inactive_after"`
	FieldOwners     map[string]string `yaml:"field_owners"`
	Connections     []connEntry       `yaml:"connections"`

	SeatWarningPercent *int         `yaml:"seat_warning_percent"`
	Notifications      *notifyEntry `yaml:"notifications"`
}

type notifyEntry struct {
	Admins         *bool          `yaml:"admins"`
	Emails         []string       `yaml:"emails"`
	Webhooks       []webhookEntry `yaml:"webhooks"`
	SeatCooldown   *Duration      `yaml:"seat_cooldown"`
	SeatDelay      *Duration      `yaml:"seat_delay"`
	RoleReviews    string         `yaml:"role_reviews"`
	DigestInterval *Duration      `yaml:"digest_interval"`
}

type webhookEntry struct {
	ID         string   `yaml:"id"`
	URL        string   `yaml:"url"`
	Format     string   `yaml:"format"`
	Secret     string   `yaml:"secret"`
	SecretEnv  string   `yaml:"secret_env"`
	SecretFile string   `yaml:"secret_file"`
	Alerts     []string `yaml:"alerts"`
}

// OrgFile is what an organisations file declares.
type OrgFile struct {
	Organizations []store.Organization
	Connections   []store.Connection
	// Notifications holds every organisation's notification settings,
	// defaults filled, by organisation id.
	Notifications map[string]notify.Settings
}

type connEntry struct {
	ID          string    `yaml:"id"`
	Protocol    string    `yaml:"protocol"`
	DisplayName string    `yaml:"display_name"`
	Replaces    string    `yaml:"replaces"`
	Settings    yaml.Node `yaml:"settings"`
}

// maxDisplayName bounds a connection's display name, shown on a button.
const maxDisplayName = 80

// defaultRoles are an organisation's roles when its entry names none.
var defaultRoles = []string{"viewer", "member", "admin"}

var connIDPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,127}$`)

// LoadOrganizations reads and validates the organisations file at path.
func LoadOrganizations(path string) ([]store.Organization, []store.Connection, error) {
	f, err := LoadOrgFile(path)
	return f.Organizations, f.Connections, err
}

// LoadOrgFile reads and validates the organisations file at path.
func LoadOrgFile(path string) (OrgFile, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return OrgFile{}, fmt.Errorf("read the organisations file: %w", err)
	}
	return ParseOrgFile(path, data)
}

// CheckOrgFile is LoadOrgFile for `provisioner check`: it also reports
// what sso-edge refuses to serve although apply accepts it
// (connection.SAML.ServeProblems: a SAML connection without
// sp_entity_id) and, with readFiles, reads the files the connections name
// — IdP metadata files, SP key pairs, OIDC private keys and client secret
// files — and checks them as sso-edge will when it loads the connections
// (connection.SAML.FileProblems), so that every reason the edge would
// refuse a connection that can be known without the network is reported
// here, with the rest. Paths are read as the edge reads them: relative
// ones from the working directory.
func CheckOrgFile(path string, readFiles bool) (OrgFile, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return OrgFile{}, fmt.Errorf("read the organisations file: %w", err)
	}
	return parseOrgFile(path, data, true, readFiles)
}

// ParseOrganizations parses and validates an organisations file; name
// names it in errors. It returns the organisations with every default
// filled and their connections, in file order, or an error listing every
// problem of the file, one per line.
func ParseOrganizations(name string, data []byte) ([]store.Organization, []store.Connection, error) {
	f, err := ParseOrgFile(name, data)
	return f.Organizations, f.Connections, err
}

// ParseOrgFile is ParseOrganizations with the notification settings.
// It reads no file the connections name: `provisioner apply` runs where
// those of sso-edge may not be (CheckOrgFile reads them).
func ParseOrgFile(name string, data []byte) (OrgFile, error) {
	return parseOrgFile(name, data, false, false)
}

func parseOrgFile(name string, data []byte, serve, readFiles bool) (OrgFile, error) {
	d, err := parseDocument(name, data)
	if err != nil {
		return OrgFile{}, err
	}
	d.serve, d.readFiles = serve, readFiles
	if d.root == nil {
		return OrgFile{}, &fieldError{file: name, msg: "the file is empty; list organisations under the key \"organizations:\""}
	}
	var f orgFile
	d.decode(data, &f)
	if len(f.Organizations) == 0 && !d.isBroken("organizations") {
		d.errorf("organizations", "no organisations: list at least one under the key \"organizations:\"")
	}
	var (
		orgs   []store.Organization
		conns  []store.Connection
		ids    = map[string]int{}
		notify = map[string]notify.Settings{}
	)
	domains := map[string]string{} // verified domain → path of the organisation that claims it
	for i, o := range f.Organizations {
		p := fmt.Sprintf("organizations[%d]", i)
		d.requireInt(p + ".max_seats")
		org, oc := d.organization(p, o)
		for j, dom := range org.VerifiedDomains {
			if first, dup := domains[dom]; dup && first != p {
				d.errorf(fmt.Sprintf("%s.verified_domains[%d]", p, j), "%q is already verified for %s (line %d); a domain belongs to one organisation, or its people could be sent to another's IdP",
					dom, first, d.lineOf(first))
			} else {
				domains[dom] = p
			}
		}
		if org.ID != "" {
			if j, dup := ids[org.ID]; dup {
				first := fmt.Sprintf("organizations[%d]", j)
				d.errorf(p+".id", "%q is already the id of %s (line %d); organisation ids must be unique in the file", org.ID, first, d.lineOf(first))
			} else {
				ids[org.ID] = i
			}
		}
		orgs = append(orgs, org)
		conns = append(conns, oc...)
		notify[org.ID] = d.notifications(p+".notifications", o.Notifications)
	}
	if err := joinSorted(d.errs); err != nil {
		return OrgFile{}, err
	}
	return OrgFile{Organizations: orgs, Connections: conns, Notifications: notify}, nil
}

// organization validates one entry at path p and fills its defaults.
func (d *document) organization(p string, o orgEntry) (store.Organization, []store.Connection) {
	org := store.Organization{ID: o.ID, Name: o.Name}

	switch {
	case o.ID == "":
		d.errorf(p+".id", "required: the organisation's id, e.g. id: acme")
	case !events.ValidOrganizationID(o.ID):
		hint := ""
		if lower := strings.ToLower(o.ID); events.ValidOrganizationID(lower) {
			hint = fmt.Sprintf(" (did you mean %q?)", lower)
		}
		d.errorf(p+".id", "%q is not a valid organisation id: use 1 to 63 characters of a-z, 0-9, '-' and '_', starting with a letter or digit%s", o.ID, hint)
	}
	if strings.TrimSpace(o.Name) == "" {
		d.errorf(p+".name", "required: the organisation's display name, e.g. name: Acme Corp")
	}
	switch {
	case o.MaxSeats == nil:
		d.errorf(p+".max_seats", "required: how many users the organisation may have (0 lets nobody in)")
	case *o.MaxSeats < 0:
		d.errorf(p+".max_seats", "%d is negative; give the number of seats, 0 or more", *o.MaxSeats)
	case *o.MaxSeats > math.MaxInt32:
		d.errorf(p+".max_seats", "%d is more than the largest seat limit, %d", *o.MaxSeats, math.MaxInt32)
	default:
		org.MaxSeats = *o.MaxSeats
	}

	d.roles(p, o, &org)

	if o.LandingURL != "" {
		u, err := url.Parse(o.LandingURL)
		switch {
		case err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "":
			d.errorf(p+".landing_url", "%q is not an absolute http(s) URL; give where people land after signing in, e.g. https://app.example.com/", o.LandingURL)
		case u.User != nil:
			d.errorf(p+".landing_url", "%q carries a user name before the host, which reads as another site; write the URL without it", o.LandingURL)
		case u.Scheme == "http" && !isLoopback(u.Hostname()):
			d.errorf(p+".landing_url", "%q is plain http: people would land on a page anyone on the network can change; use https (http is for localhost only)", o.LandingURL)
		default:
			org.LandingURL = o.LandingURL
		}
	}

	seenAdmin := map[string]int{}
	for i, e := range o.InitialAdmins {
		ep := fmt.Sprintf("%s.initial_admins[%d]", p, i)
		a, err := mail.ParseAddress(e)
		if err != nil || a.Name != "" || a.Address != e || !strings.Contains(a.Address, "@") {
			d.errorf(ep, "%q is not an email address; write the bare address the admin signs in with, e.g. it-lead@example.com", e)
			continue
		}
		key := strings.ToLower(a.Address)
		if j, dup := seenAdmin[key]; dup {
			d.errorf(ep, "%q is listed twice (also initial_admins[%d]); list each address once", e, j)
			continue
		}
		seenAdmin[key] = i
		org.InitialAdmins = append(org.InitialAdmins, key)
	}

	org.SeatWarningPercent = 90
	if v := o.SeatWarningPercent; v != nil {
		if *v < 0 || *v > 100 {
			d.errorf(p+".seat_warning_percent", "%d is not a share of max_seats; give 1 to 100, or 0 for no warning", *v)
		} else {
			org.SeatWarningPercent = *v
		}
	}

	org.NewPeople = store.NewPeopleActive
	if d.present(p + ".new_people") {
		switch o.NewPeople {
		case store.NewPeopleActive, store.NewPeopleHold:
			org.NewPeople = o.NewPeople
		default:
			d.errorf(p+".new_people", "%q is not a choice for new people; use active (a new person gets an account and a seat at their first sign-in) or hold (they wait for an admin's approval)", o.NewPeople)
		}
	}
	org.WhenFull = store.WhenFullRefuse
	if d.present(p + ".when_full") {
		switch o.WhenFull {
		case store.WhenFullRefuse, store.WhenFullHold:
			org.WhenFull = o.WhenFull
		default:
			d.errorf(p+".when_full", "%q is not a choice for a full organisation; use refuse (a new person finding no seat is turned away) or hold (they wait for an admin's approval, who frees a seat first)", o.WhenFull)
		}
	}

	if d.present(p + ".inactive_after") {
		v, err := ParseInactiveAfter(o.InactiveAfter)
		if err != nil {
			d.errorf(p+".inactive_after", "%v", err)
		}
		org.InactiveAfter = v
	}

	org.FieldOwners = d.fieldOwners(p+".field_owners", o.FieldOwners)

	org.UpdatePolicy = store.PreferIdP
	if d.present(p + ".update_policy") {
		switch v := store.UpdatePolicy(o.UpdatePolicy); v {
		case store.PreferIdP, store.PreferApp:
			org.UpdatePolicy = v
		default:
			d.errorf(p+".update_policy", "%q is not an update policy; use prefer-idp (the IdP's data wins) or prefer-app (the application's data wins)", o.UpdatePolicy)
		}
	}

	org.LinkByEmail = store.LinkNever
	linkGiven := d.present(p + ".link_by_email")
	if linkGiven {
		switch v := store.LinkPolicy(o.LinkByEmail); v {
		case store.LinkNever, store.LinkVerifiedDomains:
			org.LinkByEmail = v
		default:
			d.errorf(p+".link_by_email", "%q is not a link policy; use never or verified-domains", o.LinkByEmail)
		}
	}

	seen := map[string]int{}
	for i, raw := range o.VerifiedDomains {
		dp := fmt.Sprintf("%s.verified_domains[%d]", p, i)
		dom := strings.ToLower(raw)
		if !validDomain(dom) {
			hint := "use a DNS domain name: labels of a-z, 0-9 and '-' separated by dots, e.g. example.com"
			switch {
			case strings.Contains(dom, "://"):
				hint = "write the domain only, not a URL, e.g. example.com"
			case strings.Contains(dom, "@"):
				hint = "write the domain only, without a mailbox, e.g. example.com"
			}
			d.errorf(dp, "%q is not a domain name; %s", raw, hint)
			continue
		}
		if j, dup := seen[dom]; dup {
			d.errorf(dp, "%q is listed twice (also verified_domains[%d]); list each domain once", dom, j)
			continue
		}
		seen[dom] = i
		org.VerifiedDomains = append(org.VerifiedDomains, dom)
	}
	if org.LinkByEmail == store.LinkVerifiedDomains && len(o.VerifiedDomains) == 0 {
		d.errorf(p+".link_by_email", "verified-domains links a login to an existing user only when the email's domain is in verified_domains, and verified_domains is empty, so it would never link; list the organisation's domains under verified_domains, or use never")
	}

	var conns []store.Connection
	ids := map[string]int{}
	for i, c := range o.Connections {
		cp := fmt.Sprintf("%s.connections[%d]", p, i)
		switch {
		case c.ID == "":
			d.errorf(cp+".id", "required: the connection's id, e.g. id: okta")
		case !connIDPattern.MatchString(c.ID):
			d.errorf(cp+".id", "%q is not a valid connection id: use 1 to 128 characters of a-z, 0-9, '-' and '_', starting with a letter or digit", c.ID)
		default:
			if j, dup := ids[c.ID]; dup {
				first := fmt.Sprintf("%s.connections[%d]", p, j)
				d.errorf(cp+".id", "%q is already the id of %s (line %d); connection ids must be unique within an organisation", c.ID, first, d.lineOf(first))
			} else {
				ids[c.ID] = i
			}
		}
		switch c.Protocol {
		case string(events.ProtocolSAML), string(events.ProtocolOIDC):
		case "":
			d.errorf(cp+".protocol", "required: saml or oidc")
		default:
			d.errorf(cp+".protocol", "%q is not a protocol; use saml or oidc", c.Protocol)
		}
		settings := d.settings(cp+".settings", &c.Settings)
		if settings != nil {
			switch c.Protocol {
			case string(events.ProtocolSAML):
				d.samlSettings(cp+".settings", settings, org.Roles)
			case string(events.ProtocolOIDC):
				d.oidcSettings(cp+".settings", settings, org.Roles)
			}
		}
		name := strings.TrimSpace(c.DisplayName)
		switch {
		case d.present(cp+".display_name") && name == "":
			d.errorf(cp+".display_name", "empty; give the name people see on the sign-in button, e.g. display_name: Okta, or leave the key out to show the id")
		case name != c.DisplayName:
			d.errorf(cp+".display_name", "%q has leading or trailing spaces", c.DisplayName)
		case utf8.RuneCountInString(name) > maxDisplayName:
			d.errorf(cp+".display_name", "%d characters is more than %d; it is shown on a button", utf8.RuneCountInString(name), maxDisplayName)
		}
		conns = append(conns, store.Connection{
			OrganizationID: o.ID,
			ID:             c.ID,
			Protocol:       c.Protocol,
			Settings:       settings,
			DisplayName:    name,
			Replaces:       c.Replaces,
		})
	}
	// replaces names another connection of the same organisation.
	for i, c := range o.Connections {
		if c.Replaces == "" {
			continue
		}
		rp := fmt.Sprintf("%s.connections[%d].replaces", p, i)
		j, known := ids[c.Replaces]
		switch {
		case c.Replaces == c.ID:
			d.errorf(rp, "a connection cannot replace itself; name the connection whose people move to this one")
		case !known:
			var others []string
			for _, oc := range o.Connections {
				if oc.ID != c.ID && oc.ID != "" {
					others = append(others, oc.ID)
				}
			}
			d.errorf(rp, "%q is not a connection of organisation %q (its connections: %s); keep the replaced connection in the file while its people move", c.Replaces, o.ID, strings.Join(others, ", "))
		case o.Connections[j].Replaces == c.ID:
			d.errorf(rp, "%q and %q replace each other; only the new connection says replaces: <old>", c.ID, c.Replaces)
		default:
			if cycle := replacesCycle(o.Connections, i); cycle != nil {
				d.errorf(rp, "the connections replace one another in a circle (%s); only each new connection says replaces: <old>", strings.Join(cycle, " → "))
			}
		}
	}
	return org, conns
}

// replacesCycle follows replaces from connection i and returns the circle
// of ids back to it, or nil when the chain ends.
func replacesCycle(conns []connEntry, i int) []string {
	byID := map[string]connEntry{}
	for _, c := range conns {
		byID[c.ID] = c
	}
	path := []string{conns[i].ID}
	for next := conns[i].Replaces; next != "" && len(path) <= len(conns); next = byID[next].Replaces {
		path = append(path, next)
		if next == conns[i].ID {
			return path
		}
	}
	return nil
}

// samlSettings validates a SAML connection's settings at path.
func (d *document) samlSettings(path string, settings []byte, roles []string) {
	s, problems := connection.CheckSAML(settings, roles)
	if d.serve {
		problems = append(problems, s.ServeProblems()...)
	}
	if d.readFiles {
		problems = append(problems, s.FileProblems()...)
	}
	d.problems(path, problems)
}

// oidcSettings validates an OIDC connection's settings at path.
func (d *document) oidcSettings(path string, settings []byte, roles []string) {
	s, problems := connection.CheckOIDC(settings, roles)
	if d.readFiles {
		problems = append(problems, s.FileProblems()...)
	}
	d.problems(path, problems)
}

// problems records the problems of the settings at path.
func (d *document) problems(path string, ps []connection.Problem) {
	for _, p := range ps {
		msg := p.Msg
		if len(p.Known) > 0 { // an unknown setting, said as an unknown field is
			key := p.Field[strings.LastIndexByte(p.Field, '.')+1:]
			msg = "unknown setting"
			if s := suggest(key, p.Known); s != "" {
				msg += fmt.Sprintf("; did you mean %q?", s)
			}
			msg += " (known settings: " + strings.Join(p.Known, ", ") + ")"
		}
		d.errorf(joinPath(path, p.Field), "%s", msg)
	}
}

// roles validates the role ladder, the default role and the JIT ceiling.
func (d *document) roles(p string, o orgEntry, org *store.Organization) {
	roles := slices.Clone(defaultRoles)
	if d.present(p + ".roles") {
		roles = slices.Clone(o.Roles)
		ok := true
		if len(roles) < 2 {
			d.errorf(p+".roles", "list at least 2 roles, least privileged first and the organisation admin last; got %d", len(roles))
			ok = false
		}
		seen := map[string]int{}
		for i, r := range roles {
			rp := fmt.Sprintf("%s.roles[%d]", p, i)
			switch j, dup := seen[r]; {
			case strings.TrimSpace(r) == "":
				d.errorf(rp, "a role name must not be empty")
				ok = false
			case r != strings.TrimSpace(r):
				d.errorf(rp, "role %q has leading or trailing spaces", r)
				ok = false
			case len(r) > maxRoleLen:
				d.errorf(rp, "role name of %d characters is longer than %d, the most events carry", len(r), maxRoleLen)
				ok = false
			case dup:
				d.errorf(rp, "role %q is listed twice (also roles[%d]); list each role once", r, j)
				ok = false
			default:
				seen[r] = i
			}
		}
		if !ok {
			// The default role and ceiling are checked against valid roles only.
			return
		}
	}
	org.Roles = roles
	admin := roles[len(roles)-1]
	rank := func(r string) int { return slices.Index(roles, r) }
	list := strings.Join(roles, ", ")

	org.DefaultRole = roles[0]
	defaultOK := true
	if d.present(p + ".default_role") {
		org.DefaultRole = o.DefaultRole
		switch {
		case rank(o.DefaultRole) < 0:
			d.errorf(p+".default_role", "%q is not one of roles (%s)", o.DefaultRole, list)
			defaultOK = false
		case o.DefaultRole == admin:
			d.errorf(p+".default_role", "%q is the organisation admin role (the last of roles), which JIT never grants; choose a lower role", o.DefaultRole)
			defaultOK = false
		}
	}

	org.JITRoleCeiling = org.DefaultRole
	if d.present(p + ".jit_role_ceiling") {
		org.JITRoleCeiling = o.JITRoleCeiling
		switch c := o.JITRoleCeiling; {
		case rank(c) < 0:
			d.errorf(p+".jit_role_ceiling", "%q is not one of roles (%s)", c, list)
		case c == admin:
			d.errorf(p+".jit_role_ceiling", "%q is the organisation admin role (the last of roles), which JIT never grants; choose a lower role", c)
		case defaultOK && rank(c) < rank(org.DefaultRole):
			d.errorf(p+".jit_role_ceiling", "%q ranks below default_role %q, which every new user gets; the ceiling must be the default role or above", c, org.DefaultRole)
		}
	}
}

// maxRoleLen is the longest role name the event schemas accept.
const maxRoleLen = 128

// validDomain reports whether s is a plausible lower-case DNS name with at
// least two labels.
func validDomain(s string) bool {
	if len(s) > 253 || !strings.Contains(s, ".") {
		return false
	}
	for label := range strings.SplitSeq(s, ".") {
		if len(label) == 0 || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, c := range label {
			if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '-' {
				return false
			}
		}
	}
	return true
}

// settings renders a connection's free-form settings as a JSON object;
// "{}" when there are none.
func (d *document) settings(path string, n *yaml.Node) []byte {
	if isNull(n) {
		return []byte("{}")
	}
	if resolveAlias(n).Kind != yaml.MappingNode {
		d.errorf(path, "expected a mapping of the connection's IdP settings, got %s", describeNode(resolveAlias(n)))
		return nil
	}
	v, ok := d.jsonValue(path, n, 0)
	if !ok {
		return nil
	}
	out, err := json.Marshal(v)
	if err != nil {
		d.errorf(path, "cannot be stored as JSON: %v", err)
		return nil
	}
	return out
}

// containsNode reports whether n is inside tree (not following aliases).
func containsNode(tree, n *yaml.Node) bool {
	if tree == n {
		return true
	}
	for _, c := range tree.Content {
		if containsNode(c, n) {
			return true
		}
	}
	return false
}

func resolveAlias(n *yaml.Node) *yaml.Node {
	for i := 0; n.Kind == yaml.AliasNode && n.Alias != nil && i < 100; i++ {
		n = n.Alias
	}
	return n
}

// maxExpanded bounds the settings values of one file, aliases expanded.
const maxExpanded = 1_000_000

// jsonValue converts the YAML value n at path into a value encoding/json
// can marshal, reporting what JSON cannot hold.
func (d *document) jsonValue(path string, n *yaml.Node, depth int) (any, bool) {
	d.expanded++
	switch {
	case d.expanded == maxExpanded+1:
		d.errorf(path, "aliases expand to more than %d values; write the settings out", maxExpanded)
		return nil, false
	case d.expanded > maxExpanded:
		return nil, false
	case depth > 64:
		d.errorf(path, "nested more than 64 levels deep")
		return nil, false
	}
	if n.Kind == yaml.AliasNode {
		target := resolveAlias(n)
		if containsNode(target, n) {
			d.errs = append(d.errs, &fieldError{file: d.file, line: n.Line, path: path,
				msg: fmt.Sprintf("alias *%s refers to a value that contains it; JSON cannot hold a cycle", n.Value)})
			return nil, false
		}
		n = target
	}
	switch n.Kind {
	case yaml.MappingNode:
		m := map[string]any{}
		ok := true
		// Merge keys (<<: *base) first, so that explicit keys win.
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if k.ShortTag() != "!!merge" {
				continue
			}
			bases := []*yaml.Node{v}
			if r := resolveAlias(v); r.Kind == yaml.SequenceNode {
				bases = r.Content
			}
			for _, b := range bases {
				bv, bok := d.jsonValue(path, b, depth+1)
				bm, isMap := bv.(map[string]any)
				if !bok || !isMap {
					if bok {
						d.errorf(joinPath(path, "<<"), "a merge key (<<) must refer to a mapping")
					}
					ok = false
					continue
				}
				for key, val := range bm {
					if _, set := m[key]; !set {
						m[key] = val
					}
				}
			}
		}
		explicit := map[string]int{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := resolveAlias(n.Content[i]), n.Content[i+1]
			if n.Content[i].ShortTag() == "!!merge" {
				continue
			}
			if k.Kind != yaml.ScalarNode {
				d.errs = append(d.errs, &fieldError{file: d.file, line: k.Line, path: path,
					msg: "a settings key must be a plain name, not " + describeNode(k)})
				ok = false
				continue
			}
			kp := joinPath(path, k.Value)
			if first, dup := explicit[k.Value]; dup {
				d.errs = append(d.errs, &fieldError{file: d.file, line: k.Line, path: kp,
					msg: fmt.Sprintf("key %q is given twice (first on line %d); keep one", k.Value, first)})
				ok = false
				continue
			}
			explicit[k.Value] = k.Line
			val, vok := d.jsonValue(kp, v, depth+1)
			ok = ok && vok
			m[k.Value] = val
		}
		return m, ok
	case yaml.SequenceNode:
		list := make([]any, 0, len(n.Content))
		ok := true
		for i, item := range n.Content {
			v, vok := d.jsonValue(fmt.Sprintf("%s[%d]", path, i), item, depth+1)
			ok = ok && vok
			list = append(list, v)
		}
		return list, ok
	case yaml.ScalarNode:
		switch n.ShortTag() {
		case "!!null":
			return nil, true
		case "!!bool", "!!int", "!!float":
		default: // strings, and timestamps, binary and custom tags as written
			return n.Value, true
		}
		var v any
		if err := n.Decode(&v); err != nil {
			d.errorf(path, "cannot read %s: %v", describeNode(n), strings.TrimPrefix(err.Error(), "yaml: "))
			return nil, false
		}
		if f, isFloat := v.(float64); isFloat && (math.IsInf(f, 0) || math.IsNaN(f)) {
			d.errorf(path, "%s cannot be stored in JSON; quote it if a string is meant", n.Value)
			return nil, false
		}
		return v, true
	}
	d.errorf(path, "unsupported YAML value")
	return nil, false
}

// Bounds of an organisation's inactive_after.
const (
	minInactiveAfter = 24 * time.Hour
	maxInactiveAfter = 100 * 365 * 24 * time.Hour
)

// ParseInactiveAfter reads an organisation's inactive_after: "off" (or
// nothing) for never, days such as "90d", or a Go duration such as
// "2160h"; at least a day. It returns 0 for never.
func ParseInactiveAfter(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if s == "" || strings.EqualFold(s, "off") {
		return 0, nil
	}
	var v time.Duration
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil || n < 0 {
			return 0, fmt.Errorf("%q is not a number of days; write how long a person may go without signing in, such as 90d or 2160h, or off", s)
		}
		v = time.Duration(min(n, int(maxInactiveAfter/(24*time.Hour))+1)) * 24 * time.Hour
	} else {
		var err error
		if v, err = time.ParseDuration(s); err != nil {
			return 0, fmt.Errorf("%q is not a duration; write how long a person may go without signing in, such as 90d or 2160h, or off", s)
		}
	}
	switch {
	case v < minInactiveAfter:
		return 0, fmt.Errorf("%q is shorter than a day: people would be suspended between two working days; give at least 1d (24h), such as 90d, or off", s)
	case v > maxInactiveAfter:
		return 0, fmt.Errorf("%q is more than 100 years; give a shorter time, or off", s)
	}
	return v, nil
}
