package config

import (
	"encoding/json"
	"flag"
	"os"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jitprov/jitprov/events"
)

// errorLine is one problem of the organisations file "orgs.yaml" as an
// operator reads it: file, line, then the message.
var errorLine = regexp.MustCompile(`^orgs\.yaml:([0-9]+): \S`)

// FuzzParseOrgFile parses any bytes as the organisations file. Within
// seconds (aliases cannot expand without bound), it either returns
// nothing and an error whose every line names a line of the file (only an
// empty file is reported for the file as a whole), or a file in which
// every organisation and connection holds what the rest of jitprov
// relies on. Parsing twice gives the same result.
func FuzzParseOrgFile(f *testing.F) {
	for _, name := range []string{"testdata/organizations-full.yaml", "testdata/organizations-minimal.yaml"} {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	for _, s := range []string{
		"",
		"# nothing yet\n",
		"organizations: []\n",
		org("    roles: [viewer, admin", "    default_role: viewer"),
		org("\tupdate_policy: prefer-app"),
		org("---", "organizations: []"),
		org("    name: *nope"),
		org("    name: Acme again"),
		org("    connections:", "      - id: okta", "        protocol: saml", "        settings: &s", "          again: *s"),
		org("    connections:", "      - id: okta", "        protocol: saml", "        settings:", "          <<: [*a, *b]"),
		org("    notifications:", "      webhooks:", "        - {id: ops, url: https://a.acme.com/, secret_env: A}", "        - {id: ops, url: https://b.acme.com/, secret_env: B}"),
		"organizations:\n  - &o {id: acme, name: A, max_seats: 1}\n  - *o\n",
		// Billion laughs, in the settings and in the file's structure.
		org("    connections:", "      - id: okta", "        protocol: saml", "        settings:",
			`          a: &a ["x","x","x","x","x","x","x","x","x"]`,
			`          b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]`,
			`          c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]`,
			`          d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]`,
			`          e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]`,
			`          f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]`,
			`          g: [*f,*f,*f,*f,*f,*f,*f,*f,*f]`),
		"a: &a [x,x,x,x,x,x,x,x,x]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\norganizations: [*d,*d,*d,*d,*d,*d,*d,*d,*d]\n",
		strings.Repeat("[", 10000) + strings.Repeat("]", 10000),
		"organizations:\n  - id: acme\n    name: Acme\n    max_seats: !!binary aGVsbG8=\n",
	} {
		f.Add([]byte(s))
	}

	// The time bound holds while fuzzing (seeds included); in a plain test
	// run, under -race on a busy machine, the 1,000,000 values the
	// billion-laughs seed expands to before the limit may take longer,
	// and a hang would still meet the test's timeout.
	fuzzing := flag.Lookup("test.fuzz").Value.String() != ""
	f.Fuzz(func(t *testing.T, data []byte) {
		start := time.Now()
		file, err := ParseOrgFile("orgs.yaml", data)
		if d := time.Since(start); fuzzing && d > 20*time.Second {
			t.Fatalf("parsing %d bytes took %s", len(data), d)
		}
		if err != nil {
			if !reflect.DeepEqual(file, OrgFile{}) {
				t.Fatalf("values with the error: %+v", file)
			}
			lines := lastLine(data)
			for _, msg := range strings.Split(err.Error(), "\n") {
				if msg == `orgs.yaml: the file is empty; list organisations under the key "organizations:"` {
					continue
				}
				m := errorLine.FindStringSubmatch(msg)
				if m == nil {
					t.Fatalf("an error that names no line of the file: %q\nall errors:\n%s", msg, err)
				}
				if n, _ := strconv.Atoi(m[1]); n < 1 || n > lines {
					t.Fatalf("error on line %d of a file of %d lines: %q", n, lines, msg)
				}
			}
			return
		}
		checkOrgFile(t, file)
		again, err := ParseOrgFile("orgs.yaml", data)
		if err != nil || !reflect.DeepEqual(again, file) {
			t.Fatalf("parsed again: %+v, %v\nfirst: %+v", again, err, file)
		}
	})
}

// checkOrgFile checks what a valid organisations file promises.
func checkOrgFile(t *testing.T, file OrgFile) {
	t.Helper()
	if len(file.Organizations) == 0 {
		t.Fatal("a valid file without organisations")
	}
	orgs := map[string]bool{}
	for _, o := range file.Organizations {
		switch {
		case !events.ValidOrganizationID(o.ID) || orgs[o.ID]:
			t.Fatalf("organisation id %q invalid or repeated", o.ID)
		case strings.TrimSpace(o.Name) == "" || o.MaxSeats < 0:
			t.Fatalf("organisation %q: name %q, max_seats %d", o.ID, o.Name, o.MaxSeats)
		case len(o.Roles) < 2 || !contains(o.Roles, o.DefaultRole) || !contains(o.Roles, o.JITRoleCeiling):
			t.Fatalf("organisation %q: roles %q, default %q, ceiling %q", o.ID, o.Roles, o.DefaultRole, o.JITRoleCeiling)
		case o.DefaultRole == o.Roles[len(o.Roles)-1] || o.JITRoleCeiling == o.Roles[len(o.Roles)-1]:
			t.Fatalf("organisation %q: JIT may grant the admin role %q", o.ID, o.Roles[len(o.Roles)-1])
		}
		orgs[o.ID] = true
		if _, ok := file.Notifications[o.ID]; !ok {
			t.Fatalf("organisation %q has no notification settings", o.ID)
		}
	}
	conns := map[string]bool{}
	for _, c := range file.Connections {
		key := c.OrganizationID + "/" + c.ID
		var settings map[string]any
		switch {
		case !orgs[c.OrganizationID]:
			t.Fatalf("connection %q of no organisation of the file", key)
		case !connIDPattern.MatchString(c.ID) || conns[key]:
			t.Fatalf("connection id %q invalid or repeated", key)
		case c.Protocol != "saml" && c.Protocol != "oidc":
			t.Fatalf("connection %q: protocol %q", key, c.Protocol)
		case json.Unmarshal(c.Settings, &settings) != nil || settings == nil:
			t.Fatalf("connection %q: settings %s are not a JSON object", key, c.Settings)
		}
		conns[key] = true
	}
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
