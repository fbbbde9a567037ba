package connection

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/jitprov/jitprov/internal/spelling"
)

// Constants are values every login of a connection carries, set by the
// connection rather than sent by the IdP. They are written flat under
// `constants:`, e.g.
//
//	constants:
//	  groups: [contractors]
//	  given_name: Temp
//	  department: Contractors
//
// groups and roles (lists of strings) are added to what the IdP claims.
// given_name, family_name and display_name (strings) and every other name
// — a custom attribute, a string or a list of strings — are the value of
// that field or attribute for every login of the connection: what the IdP
// sends for it is ignored. The email, the external id and what the edge
// sets itself cannot be constants (ConstantsProblems).
type Constants struct {
	Groups      []string
	Roles       []string
	GivenName   string
	FamilyName  string
	DisplayName string
	// Attributes are the custom attributes: name → values.
	Attributes map[string][]string
}

// The standard fields a constant may set, as written under constants.
const (
	constGroups      = "groups"
	constRoles       = "roles"
	constGivenName   = "given_name"
	constFamilyName  = "family_name"
	constDisplayName = "display_name"
)

// standardConstants are the names under constants that are not custom
// attributes.
var standardConstants = []string{constGroups, constRoles, constGivenName, constFamilyName, constDisplayName}

// Bounds on constants: those of the login contract
// (schemas/login.first-seen/v1.json), so that a constant never makes a
// login the edge cannot publish.
const (
	MaxConstantAttributes = 200  // custom attributes; the IdP's fill the rest of the contract's 200
	maxConstantValues     = 1000 // values of one custom attribute
	maxConstantValueBytes = 8192 // each value of a custom attribute
	maxConstantNameLen    = 1024 // characters of a given, family or display name, and of an attribute name
)

// notConstant says why each identity field that is not a profile field
// cannot be set by a constant.
var notConstant = map[string]string{
	"email": "the email cannot be a constant: it is the key that links a login to an existing account and that is unique in the organisation, " +
		"so one address for every person of the connection would put them all in one account or refuse all but the first; " +
		"map it from the IdP instead (SAML attributes.email, OIDC claims.email)",
	"email_verified": "whether the IdP vouches for the email cannot be a constant: it decides whether a login may link to an existing account; " +
		"SAML connections set it with the email_verified setting, OIDC connections read it from the provider (claims.email_verified)",
	"external_id": "the external id cannot be a constant: it is who the person is at the IdP, and one value would make every person of the connection one user; " +
		"SAML connections choose it with external_id, OIDC connections use the ID token's sub",
	"organization_id":  "the organisation id cannot be a constant: sso-edge sets it from the connection",
	"connection_id":    "the connection id cannot be a constant: sso-edge sets it from the connection",
	"protocol":         "the protocol cannot be a constant: sso-edge sets it from the connection",
	"authenticated_at": "the authentication time cannot be a constant: it is when the IdP authenticated the person",
}

// aliases are names read as a standard field (or one that cannot be a
// constant) when written under constants: a custom attribute of that
// name would silently not be what the operator meant.
var aliases = map[string]string{
	"firstname": constGivenName, "lastname": constFamilyName, "surname": constFamilyName, "fullname": constDisplayName,
	"role": constRoles, "group": constGroups, "mail": "email", "emailaddress": "email",
}

// normName folds a name for comparison with the standard ones: case,
// '_', '-', '.' and spaces do not matter.
func normName(s string) string {
	return strings.Map(func(r rune) rune {
		switch r {
		case '_', '-', '.', ' ':
			return -1
		}
		return r
	}, strings.ToLower(s))
}

// lookalike returns the standard field (or field that cannot be a
// constant) that the custom attribute name is likely a misspelling of,
// or "".
func lookalike(name string) string {
	n := normName(name)
	known := append(slices.Clone(standardConstants), slices.Sorted(maps.Keys(notConstant))...)
	for _, k := range known {
		if n == normName(k) {
			return k
		}
	}
	if a, ok := aliases[n]; ok {
		return a
	}
	// A typo of a profile field's name, two edits at most. Other names
	// only as written above, so that attributes such as "rules",
	// "organization" or "external" stay attributes.
	for _, k := range []string{constGivenName, constFamilyName, constDisplayName, "email_verified"} {
		if spelling.Distance(n, normName(k)) <= 2 {
			return k
		}
	}
	return ""
}

// decodeSetting decodes the constants object raw at path, listing every
// value of the wrong type.
func (c *Constants) decodeSetting(raw json.RawMessage, path string) []Problem {
	*c = Constants{}
	if isJSONNull(raw) {
		return nil
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(raw, &obj); err != nil {
		return []Problem{{Field: path, Msg: "expected a mapping of constant values, e.g. constants: {department: Contractors, groups: [contractors]}, got " + describeJSON(raw)}}
	}
	var out []Problem
	for _, k := range slices.Sorted(maps.Keys(obj)) {
		f, v := joinField(path, k), obj[k]
		// The standard names match as the other settings' keys do:
		// exactly, else ignoring case (as constants.groups and
		// constants.roles always have).
		std := k
		if i := slices.IndexFunc(standardConstants, func(s string) bool { return strings.EqualFold(s, k) }); i >= 0 {
			std = standardConstants[i]
			if _, both := obj[std]; both && std != k {
				out = append(out, Problem{Field: f, Msg: fmt.Sprintf("%q is %s written differently, and %s is given too; keep one", k, std, std)})
				continue
			}
		}
		if isJSONNull(v) {
			out = append(out, Problem{Field: f, Msg: "empty: give the value every login of the connection carries, or remove the key"})
			continue
		}
		switch std {
		case constGroups, constRoles:
			var list []string
			if err := json.Unmarshal(v, &list); err != nil {
				out = append(out, typeProblem(f, reflect.TypeFor[[]string](), v))
				continue
			}
			if std == constGroups {
				c.Groups = list
			} else {
				c.Roles = list
			}
		case constGivenName, constFamilyName, constDisplayName:
			var s string
			if err := json.Unmarshal(v, &s); err != nil {
				p := typeProblem(f, reflect.TypeFor[string](), v)
				if bytes.HasPrefix(bytes.TrimSpace(v), []byte("[")) {
					p.Msg += "; a name is one value"
				} else {
					p.Msg += quoteHint(v)
				}
				out = append(out, p)
				continue
			}
			if s == "" {
				out = append(out, Problem{Field: f, Msg: "empty: a constant sets the value of every login; remove the key to keep what the IdP sends"})
				continue
			}
			switch std {
			case constGivenName:
				c.GivenName = s
			case constFamilyName:
				c.FamilyName = s
			default:
				c.DisplayName = s
			}
		default:
			vals, ps := attributeValues(f, k, v)
			out = append(out, ps...)
			if ps == nil {
				if c.Attributes == nil {
					c.Attributes = map[string][]string{}
				}
				c.Attributes[k] = vals
			}
		}
	}
	return out
}

// attributeValues decodes the value v of custom attribute name at f: a
// string or a non-empty list of non-empty strings.
func attributeValues(f, name string, v json.RawMessage) ([]string, []Problem) {
	var one string
	if err := json.Unmarshal(v, &one); err == nil {
		if one == "" {
			return nil, []Problem{{Field: f, Msg: "empty: give the value every login of the connection carries, or remove the key"}}
		}
		return []string{one}, nil
	}
	var items []json.RawMessage
	if err := json.Unmarshal(v, &items); err != nil {
		msg := "expected a string or a list of strings, got " + describeJSON(v)
		if name == "attributes" && bytes.HasPrefix(bytes.TrimSpace(v), []byte("{")) {
			msg += "; custom attributes are written directly under constants, e.g. constants: {department: Contractors}"
		} else {
			msg += quoteHint(v)
		}
		return nil, []Problem{{Field: f, Msg: msg}}
	}
	if len(items) == 0 {
		return nil, []Problem{{Field: f, Msg: "an empty list: give at least one value, or remove the key"}}
	}
	var (
		out []string
		ps  []Problem
	)
	for i, item := range items {
		fi := fmt.Sprintf("%s[%d]", f, i)
		var s string
		switch err := json.Unmarshal(item, &s); {
		case isJSONNull(item) || (err == nil && s == ""):
			ps = append(ps, Problem{Field: fi, Msg: "an empty value; remove it from the list"})
		case err != nil:
			ps = append(ps, Problem{Field: fi, Msg: "expected a string, got " + describeJSON(item) + quoteHint(item)})
		default:
			out = append(out, s)
		}
	}
	return out, ps
}

// constantsProblems lists what is wrong with constants c (SAML and OIDC
// alike): roles that are not the organisation's, names a constant cannot
// set or that read as a misspelt standard field, and values beyond what
// a login carries. Field paths start with "constants".
func constantsProblems(c Constants, roles []string) []Problem {
	var out []Problem
	add := func(field, format string, args ...any) {
		out = append(out, Problem{Field: field, Msg: fmt.Sprintf(format, args...)})
	}
	for i, r := range c.Roles {
		if !slices.Contains(roles, r) {
			add(fmt.Sprintf("constants.roles[%d]", i), "%q is not one of the organisation's roles (%s)", r, strings.Join(roles, ", "))
		}
	}
	for _, f := range []struct{ name, v string }{
		{constGivenName, c.GivenName}, {constFamilyName, c.FamilyName}, {constDisplayName, c.DisplayName},
	} {
		if n := utf8.RuneCountInString(f.v); n > maxConstantNameLen {
			add("constants."+f.name, "%d characters is more than the %d a login carries", n, maxConstantNameLen)
		} else if strings.ContainsRune(f.v, 0) {
			add("constants."+f.name, "holds a NUL character, which the store cannot hold")
		}
	}
	if n := len(c.Attributes); n > MaxConstantAttributes {
		add("constants", "%d custom attributes is more than the %d a login carries", n, MaxConstantAttributes)
	}
	for _, name := range slices.Sorted(maps.Keys(c.Attributes)) {
		f := joinField("constants", name)
		if why, ok := notConstant[name]; ok {
			add(f, "%s", why)
			continue
		}
		switch {
		case name == "":
			add(f, "an empty name: write the custom attribute's name, e.g. department: Contractors")
			continue
		case strings.TrimSpace(name) != name:
			add(f, "%q has leading or trailing spaces", name)
			continue
		case utf8.RuneCountInString(name) > maxConstantNameLen || strings.ContainsRune(name, 0):
			add(f, "a name of more than %d characters, or holding a NUL character, cannot be carried", maxConstantNameLen)
			continue
		}
		if like := lookalike(name); like != "" {
			if why, ok := notConstant[like]; ok {
				add(f, "%q reads as %s, and %s", name, like, why)
			} else {
				add(f, "%q is not a standard field; did you mean %s? (standard fields: %s; any other name is a custom attribute, "+
					"and one this close to a standard field's name is refused as a likely typo)", name, like, strings.Join(standardConstants, ", "))
			}
			continue
		}
		vals := c.Attributes[name]
		if len(vals) > maxConstantValues {
			add(f, "%d values is more than the %d a login carries", len(vals), maxConstantValues)
		}
		for i, v := range vals {
			if len(v) > maxConstantValueBytes || strings.ContainsRune(v, 0) {
				add(fmt.Sprintf("%s[%d]", f, i), "a value of more than %d bytes, or holding a NUL character, cannot be carried", maxConstantValueBytes)
			}
		}
	}
	return out
}

// MarshalJSON writes c as it is written in a connection's settings: one
// flat object.
func (c Constants) MarshalJSON() ([]byte, error) {
	m := map[string]any{}
	for k, v := range c.Attributes {
		m[k] = v
	}
	for k, v := range map[string][]string{constGroups: c.Groups, constRoles: c.Roles} {
		if len(v) > 0 {
			m[k] = v
		}
	}
	for k, v := range map[string]string{constGivenName: c.GivenName, constFamilyName: c.FamilyName, constDisplayName: c.DisplayName} {
		if v != "" {
			m[k] = v
		}
	}
	return json.Marshal(m)
}

// UnmarshalJSON reads c as MarshalJSON writes it; the error lists every
// value of the wrong type (a ProblemList).
func (c *Constants) UnmarshalJSON(data []byte) error {
	return asError(c.decodeSetting(data, "constants"))
}

func isJSONNull(raw json.RawMessage) bool {
	return string(bytes.TrimSpace(raw)) == "null"
}

// describeJSON names the JSON value raw for an operator.
func describeJSON(raw json.RawMessage) string {
	got := strings.TrimSpace(string(raw))
	switch {
	case strings.HasPrefix(got, "{"):
		return "a mapping"
	case strings.HasPrefix(got, "["):
		return "a list"
	case len(got) > 60:
		return got[:57] + "..."
	}
	return got
}

// quoteHint suggests quoting a number or a boolean meant as text.
func quoteHint(raw json.RawMessage) string {
	got := strings.TrimSpace(string(raw))
	if got == "true" || got == "false" || (got != "" && (got[0] == '-' || (got[0] >= '0' && got[0] <= '9'))) {
		return fmt.Sprintf(" (quote it, %q, if that text is meant)", got)
	}
	return ""
}
