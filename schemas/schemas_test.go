package schemas_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/santhosh-tekuri/jsonschema/v6/kind"

	"github.com/jitprov/jitprov/schemas"
)

const draft202012 = "https://json-schema.org/draft/2020-12/schema"

// schemaPaths lists every embedded schema, e.g. "login.first-seen/v1.json".
func schemaPaths(t *testing.T) []string {
	t.Helper()
	var paths []string
	err := fs.WalkDir(schemas.FS(), ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			paths = append(paths, p)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("walk schemas.FS(): %v", err)
	}
	if len(paths) == 0 {
		t.Fatal("schemas.FS() holds no files")
	}
	sort.Strings(paths)
	return paths
}

func readSchema(t *testing.T, p string) map[string]any {
	t.Helper()
	raw, err := fs.ReadFile(schemas.FS(), p)
	if err != nil {
		t.Fatalf("read %s: %v", p, err)
	}
	var doc map[string]any
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatalf("%s is not a JSON object: %v", p, err)
	}
	return doc
}

// schemaFileName is the layout of package schemas: <short type>/v<N>.json.
var schemaFileName = regexp.MustCompile(`^[a-z][a-z0-9-]*(\.[a-z][a-z0-9-]*)+/v[1-9][0-9]*\.json$`)

func TestSchemaFiles(t *testing.T) {
	for _, p := range schemaPaths(t) {
		t.Run(p, func(t *testing.T) {
			if !schemaFileName.MatchString(p) {
				t.Fatalf("file %q does not follow the <type>/v<N>.json layout", p)
			}
			doc := readSchema(t, p)
			checks := []struct {
				key  string
				want any
			}{
				{"$id", schemas.BaseURL + p},
				{"$schema", draft202012},
				{"type", "object"},
				{"additionalProperties", false},
			}
			for _, c := range checks {
				if got := doc[c.key]; got != c.want {
					t.Errorf("%s = %#v, want %#v", c.key, got, c.want)
				}
			}
			if title, _ := doc["title"].(string); strings.TrimSpace(title) == "" {
				t.Errorf("title = %#v, want a non-empty string", doc["title"])
			}
			checkObjectNodes(t, "#", doc)
		})
	}
}

// checkObjectNodes walks a schema and checks every "type": "object" schema
// that declares properties: it is closed (additionalProperties false) and
// each required name is a declared property, which catches typos in
// "required". Subschemas without a type (if/then) only constrain and are
// not checked.
func checkObjectNodes(t *testing.T, ptr string, node any) {
	t.Helper()
	switch n := node.(type) {
	case map[string]any:
		if props, ok := n["properties"].(map[string]any); ok && n["type"] == "object" {
			if n["additionalProperties"] != false {
				t.Errorf("%s: object with properties has additionalProperties %#v, want false", ptr, n["additionalProperties"])
			}
			if req, ok := n["required"].([]any); ok {
				for _, r := range req {
					name, _ := r.(string)
					if _, ok := props[name]; !ok {
						t.Errorf("%s: required %q is not a declared property", ptr, r)
					}
				}
			}
		}
		for k, v := range n {
			checkObjectNodes(t, ptr+"/"+k, v)
		}
	case []any:
		for i, v := range n {
			checkObjectNodes(t, ptr+"/"+strconv.Itoa(i), v)
		}
	}
}

// TestSchemasCompileStandalone compiles every schema on its own, with the
// draft taken from its "$schema", as a consumer in another service would.
func TestSchemasCompileStandalone(t *testing.T) {
	for _, p := range schemaPaths(t) {
		t.Run(p, func(t *testing.T) {
			raw, err := fs.ReadFile(schemas.FS(), p)
			if err != nil {
				t.Fatal(err)
			}
			doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
			if err != nil {
				t.Fatal(err)
			}
			c := jsonschema.NewCompiler()
			c.AssertFormat()
			if err := c.AddResource(schemas.BaseURL+p, doc); err != nil {
				t.Fatalf("add resource: %v", err)
			}
			if _, err := c.Compile(schemas.BaseURL + p); err != nil {
				t.Fatalf("compile: %v", err)
			}
		})
	}
}

// TestValidateKnowsEverySchema checks that Validate serves every embedded
// schema, and that none of them accepts an empty object.
func TestValidateKnowsEverySchema(t *testing.T) {
	for _, p := range schemaPaths(t) {
		t.Run(p, func(t *testing.T) {
			err := schemas.Validate(p, []byte(`{}`))
			if err == nil {
				t.Fatal("Validate accepted {}; every schema has required fields")
			}
			if errors.Is(err, schemas.ErrUnknownSchema) {
				t.Fatalf("Validate does not know the embedded schema: %v", err)
			}
		})
	}
}

func TestValidateUnknownSchema(t *testing.T) {
	valid, err := os.ReadFile("testdata/login.first-seen/valid-minimal.json")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{
		"",
		"login.first-seen",
		"login.first-seen/",
		"login.first-seen/v1",
		"login.first-seen/v2.json",
		"login.first-seen/V1.json",
		"LOGIN.FIRST-SEEN/v1.json",
		"/login.first-seen/v1.json",
		"./login.first-seen/v1.json",
		"../schemas/login.first-seen/v1.json",
		"https://jitprov.io/schemas/login.first-seen/v1.json",
		"io.jitprov.login.first-seen.v1",
		"login.first-seen/v1.json ",
	} {
		t.Run(p, func(t *testing.T) {
			err := schemas.Validate(p, valid)
			if !errors.Is(err, schemas.ErrUnknownSchema) {
				t.Fatalf("Validate(%q) = %v, want an error wrapping ErrUnknownSchema", p, err)
			}
		})
	}
}

func TestValidateRejectsNonJSON(t *testing.T) {
	for _, tc := range []struct {
		name string
		data string
	}{
		{"empty", ""},
		{"whitespace", "  \n"},
		{"truncated", `{"organization_id": "acme"`},
		{"text", "organization_id=acme"},
		{"single quotes", `{'organization_id': 'acme'}`},
		{"trailing value", `{} {}`},
		{"trailing garbage", `{}x`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := schemas.Validate("login.first-seen/v1.json", []byte(tc.data))
			if err == nil {
				t.Fatalf("Validate accepted %q", tc.data)
			}
			if errors.Is(err, schemas.ErrUnknownSchema) {
				t.Fatalf("error wraps ErrUnknownSchema for a known schema: %v", err)
			}
		})
	}
}

// invalidFixtures names, for each invalid fixture, the one violation it is
// meant to exercise, as "<keyword location> at <instance location>" plus the
// offending property names for required and additionalProperties. A fixture
// that fails for another reason than its own is a broken fixture.
var invalidFixtures = map[string]string{
	"seats.threshold-reached/invalid-missing-threshold.json": "/required at /: threshold_percent",
	"seats.threshold-reached/invalid-percent-above-100.json": "/properties/threshold_percent/maximum at /threshold_percent",

	"idp-certificate.expiring/invalid-fingerprint-uppercase.json": "/properties/fingerprint_sha256/pattern at /fingerprint_sha256",
	"idp-certificate.expiring/invalid-threshold-enum.json":        "/properties/threshold_days/enum at /threshold_days",
	"idp-certificate.expiring/invalid-not-after-date-time.json":   "/properties/not_after/format at /not_after",

	"provisioning.failed/invalid-missing-reason.json":  "/required at /: reason",
	"provisioning.failed/invalid-deliveries-zero.json": "/properties/deliveries/minimum at /deliveries",
	"provisioning.failed/invalid-extra-property.json":  "/additionalProperties at /: stack",

	"login.first-seen/invalid-attribute-not-array.json":        "/properties/attributes/additionalProperties/type at /attributes/department",
	"login.first-seen/invalid-authenticated-at-date-time.json": "/properties/authenticated_at/format at /authenticated_at",
	"login.first-seen/invalid-email-format.json":               "/properties/email/format at /email",
	"login.first-seen/invalid-email-verified-type.json":        "/properties/email_verified/type at /email_verified",
	"login.first-seen/invalid-empty-external-id.json":          "/properties/external_id/minLength at /external_id",
	"login.first-seen/invalid-extra-property.json":             "/additionalProperties at /: nickname",
	"login.first-seen/invalid-missing-external-id.json":        "/required at /: external_id",
	"login.first-seen/invalid-not-object.json":                 "/type at /",
	"login.first-seen/invalid-org-id-dot.json":                 "/properties/organization_id/pattern at /organization_id",
	"login.first-seen/invalid-org-id-uppercase.json":           "/properties/organization_id/pattern at /organization_id",
	"login.first-seen/invalid-protocol-enum.json":              "/properties/protocol/enum at /protocol",

	"login.seen/invalid-user-id-not-uuid.json": "/properties/user_id/format at /user_id",
	"login.seen/invalid-missing-user-id.json":  "/required at /: user_id",
	"login.seen/invalid-extra-property.json":   "/additionalProperties at /: claims",

	"provisioning.result/invalid-created-without-user.json":               "/allOf/0/then/required at /: user",
	"provisioning.result/invalid-decided-at-date-time.json":               "/properties/decided_at/format at /decided_at",
	"provisioning.result/invalid-existing-without-user.json":              "/allOf/0/then/required at /: user",
	"provisioning.result/invalid-extra-property.json":                     "/additionalProperties at /: retry_after",
	"provisioning.result/invalid-failed-without-reason.json":              "/allOf/1/then/required at /: reason",
	"provisioning.result/invalid-missing-login-id.json":                   "/required at /: login_id",
	"provisioning.result/invalid-outcome-enum.json":                       "/properties/outcome/enum at /outcome",
	"provisioning.result/invalid-reason-enum.json":                        "/properties/reason/enum at /reason",
	"provisioning.result/invalid-refused-without-reason.json":             "/allOf/1/then/required at /: reason",
	"provisioning.result/invalid-rejected-without-reason.json":            "/allOf/1/then/required at /: reason",
	"provisioning.result/invalid-role-review-missing-requested-role.json": "/properties/role_review/required at /role_review: requested_role",
	"provisioning.result/invalid-user-extra-property.json":                "/properties/user/additionalProperties at /user: organization_id",
	"provisioning.result/invalid-user-id-not-uuid.json":                   "/properties/user/properties/id/format at /user/id",
	"provisioning.result/invalid-user-status-enum.json":                   "/properties/user/properties/status/enum at /user/status",
	"user.created/v2/invalid-missing-login-id-and-actor.json":             "/then/required at /: actor",
	"user.created/v2/invalid-user-created-by-enum.json":                   "/properties/user/properties/created_by/enum at /user/created_by",
	"user.updated/v2/invalid-missing-login-id-and-actor.json":             "/then/required at /: actor",
	"user.updated/v2/invalid-user-created-by-enum.json":                   "/properties/user/properties/created_by/enum at /user/created_by",
	"provisioning.result/v2/invalid-held-without-user.json":               "/allOf/0/then/required at /: user",
	"provisioning.result/v2/invalid-held-without-reason.json":             "/allOf/2/then/required at /: reason",
	"provisioning.result/v2/invalid-held-reason.json":                     "/allOf/2/then/properties/reason/enum at /reason",
	"provisioning.result/v2/invalid-held-user-active.json":                "/allOf/2/then/properties/user/properties/status/const at /user/status",
	"provisioning.result/v2/invalid-outcome-enum.json":                    "/properties/outcome/enum at /outcome",
	"signup.held/invalid-reason-enum.json":                                "/properties/reason/enum at /reason",
	"signup.held/invalid-missing-user-id.json":                            "/required at /: user_id",
	"signup.held/invalid-user-id-not-uuid.json":                           "/properties/user_id/format at /user_id",
	"signup.held/invalid-extra-property.json":                             "/additionalProperties at /: seats_free",
	"inactive-users.suspended/invalid-no-users.json":                      "/properties/users/minItems at /users",
	"inactive-users.suspended/invalid-user-id-not-uuid.json":              "/properties/users/items/properties/user_id/format at /users/0/user_id",
	"inactive-users.suspended/invalid-missing-swept-at.json":              "/required at /: swept_at",
	"inactive-users.suspended/invalid-extra-property.json":                "/additionalProperties at /: seats_freed",

	"role-review.requested/invalid-empty-current-role.json":      "/properties/current_role/minLength at /current_role",
	"role-review.requested/invalid-extra-property.json":          "/additionalProperties at /: approved",
	"role-review.requested/invalid-missing-requested-role.json":  "/required at /: requested_role",
	"role-review.requested/invalid-org-id-pattern.json":          "/properties/organization_id/pattern at /organization_id",
	"role-review.requested/invalid-requested-role-too-long.json": "/properties/requested_role/maxLength at /requested_role",
	"role-review.requested/invalid-review-id-not-uuid.json":      "/properties/review_id/format at /review_id",
	"role-review.requested/invalid-user-id-not-uuid.json":        "/properties/user_id/format at /user_id",

	"seats.exhausted/invalid-empty-connection-id.json":    "/properties/connection_id/minLength at /connection_id",
	"seats.exhausted/invalid-extra-property.json":         "/additionalProperties at /: seats_free",
	"seats.exhausted/invalid-max-seats-negative.json":     "/properties/max_seats/minimum at /max_seats",
	"seats.exhausted/invalid-missing-external-id.json":    "/required at /: external_id",
	"seats.exhausted/invalid-missing-max-seats.json":      "/required at /: max_seats",
	"seats.exhausted/invalid-org-id-pattern.json":         "/properties/organization_id/pattern at /organization_id",
	"seats.exhausted/invalid-seats-used-not-integer.json": "/properties/seats_used/type at /seats_used",
	"seats.exhausted/invalid-seats-used-string.json":      "/properties/seats_used/type at /seats_used",

	"user.created/invalid-empty-login-id.json":            "/properties/login_id/minLength at /login_id",
	"user.created/invalid-extra-property.json":            "/additionalProperties at /: changed",
	"user.created/invalid-missing-login-id.json":          "/required at /: login_id",
	"user.created/invalid-missing-user-created-by.json":   "/properties/user/required at /user: created_by",
	"user.created/invalid-user-created-at-date-time.json": "/properties/user/properties/created_at/format at /user/created_at",
	"user.created/invalid-user-created-by-enum.json":      "/properties/user/properties/created_by/enum at /user/created_by",
	"user.created/invalid-user-extra-property.json":       "/properties/user/additionalProperties at /user: password",
	"user.created/invalid-user-id-not-uuid.json":          "/properties/user/properties/id/format at /user/id",
	"user.created/invalid-user-org-id-pattern.json":       "/properties/user/properties/organization_id/pattern at /user/organization_id",
	"user.created/invalid-user-status-enum.json":          "/properties/user/properties/status/enum at /user/status",

	"user.identity-linked/invalid-linked-by-enum.json":             "/properties/linked_by/enum at /linked_by",
	"user.identity-linked/invalid-missing-identity.json":           "/required at /: identity",
	"user.identity-linked/invalid-identity-external-id-empty.json": "/properties/identity/properties/external_id/minLength at /identity/external_id",
	"user.identity-linked/invalid-extra-property.json":             "/additionalProperties at /: seats_used",
	"user.updated/invalid-changed-duplicate.json":                  "/properties/changed/uniqueItems at /changed",
	"user.updated/invalid-changed-empty.json":                      "/properties/changed/minItems at /changed",
	"user.updated/invalid-changed-enum.json":                       "/properties/changed/items/enum at /changed/0",
	"user.updated/invalid-extra-property.json":                     "/additionalProperties at /: previous_email",
	"user.updated/invalid-missing-changed.json":                    "/required at /: changed",
	"user.updated/invalid-missing-user-role.json":                  "/properties/user/required at /user: role",
	"user.updated/invalid-previous-role-empty.json":                "/properties/previous_role/minLength at /previous_role",
	"user.updated/invalid-user-org-id-pattern.json":                "/properties/user/properties/organization_id/pattern at /user/organization_id",
	"user.updated/invalid-user-updated-at-date-time.json":          "/properties/user/properties/updated_at/format at /user/updated_at",

	"role-review.decided/invalid-actor-name-too-long.json":             "/properties/actor/properties/name/maxLength at /actor/name",
	"role-review.decided/invalid-decided-at-date-time.json":            "/properties/decided_at/format at /decided_at",
	"role-review.decided/invalid-decision-enum.json":                   "/properties/decision/enum at /decision",
	"role-review.decided/invalid-extra-property.json":                  "/additionalProperties at /: current_role",
	"role-review.decided/invalid-missing-actor.json":                   "/required at /: actor",
	"role-review.decided/invalid-missing-decided-at.json":              "/required at /: decided_at",
	"role-review.decided/invalid-org-id-pattern.json":                  "/properties/organization_id/pattern at /organization_id",
	"user.deprovisioned/invalid-actor-extra-property.json":             "/properties/actor/additionalProperties at /actor: email",
	"user.deprovisioned/invalid-extra-property.json":                   "/additionalProperties at /: seats_used",
	"user.deprovisioned/invalid-missing-actor.json":                    "/required at /: actor",
	"user.deprovisioned/invalid-missing-previous-status.json":          "/required at /: previous_status",
	"user.deprovisioned/invalid-previous-status-same.json":             "/properties/previous_status/enum at /previous_status",
	"user.deprovisioned/invalid-user-status-not-new.json":              "/allOf/0/properties/user/properties/status/const at /user/status",
	"user.identity-unlinked/invalid-extra-property.json":               "/additionalProperties at /: linked_by",
	"user.identity-unlinked/invalid-identity-connection-id-empty.json": "/properties/identity/properties/connection_id/minLength at /identity/connection_id",
	"user.identity-unlinked/invalid-missing-actor.json":                "/required at /: actor",
	"user.identity-unlinked/invalid-missing-identity.json":             "/required at /: identity",
	"user.reactivated/invalid-actor-id-empty.json":                     "/properties/actor/properties/id/minLength at /actor/id",
	"user.reactivated/invalid-missing-actor.json":                      "/required at /: actor",
	"user.reactivated/invalid-previous-status-enum.json":               "/properties/previous_status/enum at /previous_status",
	"user.reactivated/invalid-previous-status-same.json":               "/properties/previous_status/enum at /previous_status",
	"user.reactivated/invalid-user-status-not-new.json":                "/allOf/0/properties/user/properties/status/const at /user/status",
	"user.role-changed/invalid-extra-property.json":                    "/additionalProperties at /: changed",
	"user.role-changed/invalid-missing-actor.json":                     "/required at /: actor",
	"user.role-changed/invalid-missing-previous-role.json":             "/required at /: previous_role",
	"user.role-changed/invalid-previous-role-empty.json":               "/properties/previous_role/minLength at /previous_role",
	"user.role-changed/invalid-review-id-format.json":                  "/properties/review_id/format at /review_id",
	"user.suspended/invalid-actor-type-enum.json":                      "/properties/actor/properties/type/enum at /actor/type",
	"user.suspended/invalid-missing-actor.json":                        "/required at /: actor",
	"user.suspended/invalid-previous-status-same.json":                 "/properties/previous_status/enum at /previous_status",
	"user.suspended/invalid-reason-too-long.json":                      "/properties/reason/maxLength at /reason",
	"user.suspended/invalid-user-status-not-new.json":                  "/allOf/0/properties/user/properties/status/const at /user/status",
}

// fixture is one document of testdata/<type>/, validated against
// <type>/v1.json, or of testdata/<type>/v<N>/, validated against
// <type>/v<N>.json.
type fixture struct {
	name   string // "<type>/<file>", the key of invalidFixtures
	schema string
	data   []byte
}

func fixtures(t *testing.T, prefix string) []fixture {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", "*", prefix+"*.json"))
	if err != nil {
		t.Fatal(err)
	}
	// A later version's fixtures are in testdata/<type>/v<N>/.
	later, err := filepath.Glob(filepath.Join("testdata", "*", "v*", prefix+"*.json"))
	if err != nil {
		t.Fatal(err)
	}
	files = append(files, later...)
	if len(files) == 0 {
		t.Fatalf("no testdata/*/%s*.json fixtures", prefix)
	}
	var out []fixture
	for _, f := range files {
		rel, _ := filepath.Rel("testdata", filepath.Dir(f))
		rel = filepath.ToSlash(rel)
		dir, version, ok := strings.Cut(rel, "/")
		if !ok {
			version = "v1"
		}
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, fixture{
			name:   rel + "/" + filepath.Base(f),
			schema: dir + "/" + version + ".json",
			data:   data,
		})
	}
	return out
}

func TestValidateAcceptsValidFixtures(t *testing.T) {
	for _, f := range fixtures(t, "valid-") {
		t.Run(f.name, func(t *testing.T) {
			if err := schemas.Validate(f.schema, f.data); err != nil {
				t.Fatalf("Validate rejected a valid document: %v", err)
			}
		})
	}
}

func TestValidateRejectsInvalidFixtures(t *testing.T) {
	seen := map[string]bool{}
	for _, f := range fixtures(t, "invalid-") {
		seen[f.name] = true
		t.Run(f.name, func(t *testing.T) {
			want, ok := invalidFixtures[f.name]
			if !ok {
				t.Fatalf("fixture has no entry in invalidFixtures naming the violation it exercises")
			}
			err := schemas.Validate(f.schema, f.data)
			if err == nil {
				t.Fatal("Validate accepted an invalid document")
			}
			if errors.Is(err, schemas.ErrUnknownSchema) {
				t.Fatalf("schema %s is unknown: %v", f.schema, err)
			}
			var ve *jsonschema.ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("error %v does not wrap a *jsonschema.ValidationError", err)
			}
			got := violations(ve)
			if len(got) != 1 || got[0] != want {
				t.Fatalf("violations = %q, want exactly [%q]\nerror: %v", got, want, err)
			}
		})
	}
	for name := range invalidFixtures {
		if !seen[name] {
			t.Errorf("invalidFixtures names %s, but there is no such fixture", name)
		}
	}
}

// violations flattens a validation error to its leaves, each as
// "<keyword location> at <instance location>[: property names]".
func violations(e *jsonschema.ValidationError) []string {
	if len(e.Causes) > 0 {
		var out []string
		for _, c := range e.Causes {
			out = append(out, violations(c)...)
		}
		return out
	}
	_, frag, _ := strings.Cut(e.SchemaURL, "#")
	s := frag + "/" + strings.Join(e.ErrorKind.KeywordPath(), "/") + " at /" + strings.Join(e.InstanceLocation, "/")
	switch k := e.ErrorKind.(type) {
	case *kind.Required:
		s += ": " + strings.Join(k.Missing, ",")
	case *kind.AdditionalProperties:
		s += ": " + strings.Join(k.Properties, ",")
	}
	return []string{s}
}

// TestEverySchemaHasFixtures requires, for each schema, a minimal and a full
// valid document and at least one invalid one, and no fixture directory for
// a schema that does not exist.
func TestEverySchemaHasFixtures(t *testing.T) {
	// The fixtures of <type>/v1.json are in testdata/<type>/, those of a
	// later version <type>/v<N>.json in testdata/<type>/v<N>/.
	want := map[string]bool{}
	for _, p := range schemaPaths(t) {
		dir, version := path.Dir(p), strings.TrimSuffix(path.Base(p), ".json")
		if version != "v1" {
			dir += "/" + version
		}
		want[dir] = true
	}
	dirs, err := os.ReadDir("testdata")
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range dirs {
		if !want[d.Name()] {
			t.Errorf("testdata/%s matches no schema", d.Name())
		}
		sub, _ := os.ReadDir(filepath.Join("testdata", d.Name()))
		for _, v := range sub {
			if v.IsDir() && !want[d.Name()+"/"+v.Name()] {
				t.Errorf("testdata/%s/%s matches no schema", d.Name(), v.Name())
			}
		}
	}
	for dir := range want {
		t.Run(dir, func(t *testing.T) {
			entries, err := os.ReadDir(filepath.Join("testdata", dir))
			if err != nil {
				t.Fatalf("no fixtures: %v", err)
			}
			count := map[string]int{}
			for _, e := range entries {
				n := e.Name()
				switch {
				case e.IsDir():
				case strings.HasPrefix(n, "valid-minimal") && strings.HasSuffix(n, ".json"):
					count["valid-minimal"]++
				case strings.HasPrefix(n, "valid-full") && strings.HasSuffix(n, ".json"):
					count["valid-full"]++
				case strings.HasPrefix(n, "valid-") && strings.HasSuffix(n, ".json"):
				case strings.HasPrefix(n, "invalid-") && strings.HasSuffix(n, ".json"):
					count["invalid"]++
				default:
					t.Errorf("testdata/%s/%s is neither valid-*.json nor invalid-*.json", dir, n)
				}
			}
			for _, k := range []string{"valid-minimal", "valid-full", "invalid"} {
				if count[k] == 0 {
					t.Errorf("no %s fixture", k)
				}
			}
		})
	}
}

// TestValidFixturesCoverEveryProperty requires every property a schema
// declares, at any depth, to appear in at least one valid fixture, so that a
// property added to a schema gets exercised.
func TestValidFixturesCoverEveryProperty(t *testing.T) {
	used := map[string]map[string]bool{} // schema -> property pointers used
	for _, f := range fixtures(t, "valid-") {
		var doc any
		if err := json.Unmarshal(f.data, &doc); err != nil {
			t.Fatalf("%s: %v", f.name, err)
		}
		if used[f.schema] == nil {
			used[f.schema] = map[string]bool{}
		}
		collectKeys("", doc, used[f.schema])
	}
	for _, p := range schemaPaths(t) {
		t.Run(p, func(t *testing.T) {
			var declared []string
			collectProperties("", readSchema(t, p), &declared)
			for _, d := range declared {
				if !used[p][d] {
					t.Errorf("property %s is in no valid fixture", d)
				}
			}
		})
	}
}

func collectKeys(prefix string, doc any, into map[string]bool) {
	if m, ok := doc.(map[string]any); ok {
		for k, v := range m {
			into[prefix+"/"+k] = true
			collectKeys(prefix+"/"+k, v, into)
		}
	}
}

func collectProperties(prefix string, schema map[string]any, into *[]string) {
	props, _ := schema["properties"].(map[string]any)
	for k, v := range props {
		*into = append(*into, prefix+"/"+k)
		if sub, ok := v.(map[string]any); ok {
			collectProperties(prefix+"/"+k, sub, into)
		}
	}
}

// TestValidateConcurrently runs Validate from many goroutines: services
// validate events in parallel handlers (run with -race).
func TestValidateConcurrently(t *testing.T) {
	valid := fixtures(t, "valid-")
	invalid := fixtures(t, "invalid-")
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, f := range valid {
				if err := schemas.Validate(f.schema, f.data); err != nil {
					t.Errorf("%s: %v", f.name, err)
				}
			}
			for _, f := range invalid {
				if err := schemas.Validate(f.schema, f.data); err == nil {
					t.Errorf("%s: accepted", f.name)
				}
			}
		}()
	}
	wg.Wait()
}

// TestProvisioningResultV2ExtendsV1 holds v2 to what it promises: every
// valid v1 answer is a valid v2 answer (v2 only adds held), and a held
// answer is not a valid v1 answer, which is why it is sent as v2.
func TestProvisioningResultV2ExtendsV1(t *testing.T) {
	for _, f := range fixtures(t, "valid-") {
		switch f.schema {
		case "provisioning.result/v1.json":
			if err := schemas.Validate("provisioning.result/v2.json", f.data); err != nil {
				t.Errorf("%s: valid v1, refused by v2: %v", f.name, err)
			}
		case "provisioning.result/v2.json":
			held := strings.Contains(string(f.data), `"held"`)
			err := schemas.Validate("provisioning.result/v1.json", f.data)
			if held && err == nil {
				t.Errorf("%s: a held answer is valid v1, which cannot say held", f.name)
			}
			if !held && err != nil {
				t.Errorf("%s: an answer without held is refused by v1: %v", f.name, err)
			}
		}
	}
}
