package config

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/jitprov/jitprov/internal/spelling"
	"github.com/jitprov/jitprov/internal/store"
)

// maxFieldOwners bounds an organisation's field_owners: the profile fields
// and as many custom attributes as a login carries.
const maxFieldOwners = 256

// maxAttributeName bounds a custom attribute's name, as the connections'
// constants do.
const maxAttributeName = 1024

// ownerMeanings say what each owner does, for the messages.
const ownerMeanings = "idp (sign-ins and SCIM may change it), scim (only SCIM), app (neither: only admins and the application) " +
	"or first-login-only (set when the person is created, then never changed by sign-ins or SCIM)"

// fieldLookalikes are names an operator may write for a profile field, or
// for a field that has no owner of its own.
var fieldLookalikes = map[string]string{
	"firstname": store.FieldGivenName, "givenname": store.FieldGivenName, "lastname": store.FieldFamilyName,
	"surname": store.FieldFamilyName, "familyname": store.FieldFamilyName, "fullname": store.FieldDisplayName,
	"displayname": store.FieldDisplayName, "name": store.FieldDisplayName, "roles": store.FieldRole,
	"group": store.FieldGroups, "mail": store.FieldEmail, "emailaddress": store.FieldEmail, "emails": store.FieldEmail,
}

// fieldOwners validates an organisation's field_owners at path and returns
// them keyed as the store keeps them: the profile fields by name, custom
// attributes as attributes.<name>, "*" (every other custom attribute) as
// attributes.*. Nil when there are none.
func (d *document) fieldOwners(path string, in map[string]string) map[string]string {
	if len(in) == 0 || d.isBroken(path) {
		return nil
	}
	if len(in) > maxFieldOwners {
		d.errorf(path, "%d fields is more than %d; give owners to the fields that need one, and \"*\" to the other custom attributes", len(in), maxFieldOwners)
		return nil
	}
	out := map[string]string{}
	given := map[string]string{} // stored key → the key written
	// In the file's order, so that a field named twice is reported at its
	// second mention.
	keys := slices.SortedFunc(maps.Keys(in), func(a, b string) int {
		return cmp.Or(cmp.Compare(d.lineOf(joinPath(path, a)), d.lineOf(joinPath(path, b))), cmp.Compare(a, b))
	})
	for _, key := range keys {
		kp := joinPath(path, key)
		field, problem := ownedField(key)
		if problem != "" {
			d.errorf(kp, "%s", problem)
			continue
		}
		owner := in[key]
		switch {
		case !d.present(kp):
			d.errorf(kp, "no owner; give %s, or leave the field out to follow update_policy", ownerMeanings)
			continue
		case !slices.Contains(store.Owners, owner):
			msg := fmt.Sprintf("%q is not an owner; use %s", owner, ownerMeanings)
			if s := suggestOwner(owner); s != "" {
				msg = fmt.Sprintf("%q is not an owner; did you mean %q? Use %s", owner, s, ownerMeanings)
			}
			d.errorf(kp, "%s", msg)
			continue
		}
		if first, dup := given[field]; dup {
			d.errorf(kp, "names the same field as %q (line %d); give each field one owner", first, d.lineOf(joinPath(path, first)))
			continue
		}
		given[field] = key
		out[field] = owner
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// ownedField is the stored key of a field_owners key, or why it names no
// field that may have an owner.
func ownedField(key string) (string, string) {
	switch {
	case key == "*":
		return store.FieldAttributesDefault, ""
	case slices.Contains(store.OwnedFields, key):
		return key, ""
	case strings.TrimSpace(key) == "":
		return "", "a field name must not be empty"
	case key != strings.TrimSpace(key):
		return "", fmt.Sprintf("%q has leading or trailing spaces", key)
	case len(key) > maxAttributeName:
		return "", fmt.Sprintf("a name of %d characters is longer than %d", len(key), maxAttributeName)
	}
	if name, ok := strings.CutPrefix(key, store.FieldAttributePrefix); ok {
		if strings.TrimSpace(name) == "" || name != strings.TrimSpace(name) {
			return "", fmt.Sprintf("%q names no custom attribute; write attributes.<name>, e.g. attributes.department", key)
		}
		return key, ""
	}
	n := normField(key)
	switch n {
	case "emailverified":
		return "", "whether the email is verified follows the email: give email an owner"
	case "externalid", "id", "username", "status", "active", "createdby":
		return "", fmt.Sprintf("%q cannot have an owner: only the profile fields (%s) and custom attributes can; "+
			"a custom attribute of that name is written attributes.%s", key, strings.Join(store.OwnedFields, ", "), key)
	}
	near := fieldLookalikes[n]
	for _, f := range store.OwnedFields {
		if near == "" && (n == normField(f) || spelling.Distance(n, normField(f)) <= 2) {
			near = f
		}
	}
	if near != "" {
		return "", fmt.Sprintf("unknown field; did you mean %q? (fields: %s, a custom attribute's name, or \"*\" for every other custom attribute; "+
			"a custom attribute named %q is written attributes.%s)", near, strings.Join(store.OwnedFields, ", "), key, key)
	}
	return store.AttributeField(key), ""
}

// normField folds a name for comparison with the profile fields' names:
// case, '_', '-', '.' and spaces do not matter.
func normField(s string) string {
	return strings.Map(func(r rune) rune {
		switch r {
		case '_', '-', '.', ' ':
			return -1
		}
		return r
	}, strings.ToLower(s))
}

// suggestOwner returns the owner that value likely means, or "".
func suggestOwner(value string) string {
	v := strings.ToLower(strings.TrimSpace(value))
	if s := suggest(v, store.Owners); s != "" {
		return s
	}
	for _, o := range store.Owners {
		if len(v) >= 3 && (strings.HasPrefix(o, v) || strings.HasPrefix(v, o)) {
			return o
		}
	}
	return ""
}
