package scim

import (
	"fmt"
	"net/http"
	"strings"

	scimlib "github.com/elimity-com/scim"
	scimerr "github.com/elimity-com/scim/errors"
	scimfilter "github.com/elimity-com/scim/filter"
	"github.com/elimity-com/scim/schema"
	filter "github.com/scim2/filter-parser/v2"
)

// A user's PATCH is applied (RFC 7644 §3.5.2) to the user's SCIM document
// as read; the document it makes is then written whole. The library has
// parsed each operation's path and checked its value against the schema;
// what each operation does to the document is here.

// docSchemas are the schemas of a resource's document: the core one, and
// its extensions by URN.
type docSchemas struct {
	core       schema.Schema
	extensions map[string]schema.Schema
}

var userSchemas = docSchemas{core: schema.CoreUserSchema(),
	extensions: map[string]schema.Schema{strings.ToLower(EnterpriseUser): schema.ExtensionEnterpriseUser()}}

func badPatch(format string, args ...any) error {
	return scimerr.ScimError{Status: http.StatusBadRequest, ScimType: scimerr.ScimTypeInvalidValue, Detail: fmt.Sprintf(format, args...)}
}

// applyOps applies ops to doc in order.
func applyOps(doc map[string]any, ops []scimlib.PatchOperation, schemas docSchemas) error {
	for i, op := range ops {
		var err error
		if op.Path == nil {
			err = applyNoPath(doc, op, schemas)
		} else {
			err = applyPath(doc, op.Op, *op.Path, op.Value, schemas)
		}
		if err != nil {
			return fmt.Errorf("operation %d (%s): %w", i+1, op.Op, err)
		}
	}
	return nil
}

// applyNoPath is an add or replace whose value is an object of attributes
// (Okta's `{"op": "replace", "value": {"active": false}}`); its keys may
// be paths themselves (`name.givenName`, an extension's URN-prefixed
// attribute).
func applyNoPath(doc map[string]any, op scimlib.PatchOperation, schemas docSchemas) error {
	value, ok := op.Value.(map[string]any)
	if !ok {
		return badPatch("an operation without a path needs an object of attributes as its value")
	}
	for k, v := range value {
		if strings.EqualFold(k, "schemas") || strings.EqualFold(k, "id") || strings.EqualFold(k, "meta") {
			continue
		}
		if ext, ok := schemas.extensions[strings.ToLower(k)]; ok {
			// The whole extension object: each of its attributes.
			inner, isMap := v.(map[string]any)
			if !isMap {
				return badPatch("%s must be an object", k)
			}
			for ik, iv := range inner {
				uri := ext.ID
				p := filter.Path{AttributePath: filter.AttributePath{URIPrefix: &uri, AttributeName: ik}}
				if err := applyPath(doc, op.Op, p, iv, schemas); err != nil {
					return err
				}
			}
			continue
		}
		p, err := filter.ParsePath([]byte(k))
		if err != nil {
			return badPatch("%q is not an attribute path: %v", k, err)
		}
		if err := applyPath(doc, op.Op, p, v, schemas); err != nil {
			return err
		}
	}
	return nil
}

// applyPath applies one operation at path p.
func applyPath(doc map[string]any, op string, p filter.Path, value any, schemas docSchemas) error {
	container, sch := doc, schemas.core
	if uri := p.AttributePath.URI(); uri != "" && !strings.EqualFold(uri, schemas.core.ID) {
		ext, ok := schemas.extensions[strings.ToLower(uri)]
		if !ok {
			return badPatch("%q is not a schema of this resource", uri)
		}
		sch = ext
		inner, _ := get(doc, ext.ID).(map[string]any)
		if inner == nil {
			inner = map[string]any{}
		}
		doc[ext.ID] = inner
		container = inner
	}
	attr, ok := sch.Attributes.ContainsAttribute(p.AttributePath.AttributeName)
	if !ok {
		if strings.EqualFold(p.AttributePath.AttributeName, "externalId") {
			return setSimple(container, op, "externalId", value)
		}
		return badPatch("%q is not an attribute of %s", p.AttributePath.AttributeName, sch.ID)
	}
	name := attr.Name()
	if attr.Mutability() == "readOnly" {
		return badPatch("%s is read-only", name)
	}
	sub := p.AttributePath.SubAttributeName()
	if p.ValueExpression == nil {
		if sub != "" {
			m, _ := get(container, name).(map[string]any)
			if m == nil {
				m = map[string]any{}
			}
			if err := setSimple(m, op, sub, value); err != nil {
				return err
			}
			container[name] = m
			return nil
		}
		return setAttribute(container, op, attr, value)
	}
	// A value filter selects items of a multi-valued attribute.
	if !attr.MultiValued() {
		return badPatch("%s is not multi-valued: it takes no value filter", name)
	}
	match := scimfilter.NewFilterValidator(p.ValueExpression, schema.Schema{Attributes: scimfilter.MultiValuedFilterAttributes(attr)})
	list, _ := get(container, name).([]any)
	sub = p.SubAttributeName()
	var kept []any
	hit := false
	for _, it := range list {
		m, isMap := it.(map[string]any)
		if !isMap || match.PassesFilter(m) != nil {
			kept = append(kept, it)
			continue
		}
		hit = true
		switch {
		case op == scimlib.PatchOperationRemove && sub == "":
			continue // the item goes
		case sub != "":
			if err := setSimple(m, op, sub, value); err != nil {
				return err
			}
		default:
			v, isMap := value.(map[string]any)
			if !isMap {
				return badPatch("%s[…] takes an object as its value", name)
			}
			for k, x := range v {
				m[k] = x
			}
		}
		kept = append(kept, m)
	}
	if !hit && op != scimlib.PatchOperationRemove {
		// Entra ID replaces emails[type eq "work"].value of a user with no
		// work email yet: the item the filter describes is added.
		item, ok := itemOf(p.ValueExpression)
		if !ok {
			return errNoTarget
		}
		if sub != "" {
			item[sub] = value
		} else if v, isMap := value.(map[string]any); isMap {
			for k, x := range v {
				item[k] = x
			}
		}
		kept = append(kept, item)
	}
	container[name] = kept
	return nil
}

// itemOf is the item a filter of `a eq "x"` comparisons joined by and
// describes.
func itemOf(e filter.Expression) (map[string]any, bool) {
	switch e := e.(type) {
	case *filter.AttributeExpression:
		if e.Operator != filter.EQ || e.AttributePath.SubAttribute != nil {
			return nil, false
		}
		return map[string]any{e.AttributePath.AttributeName: e.CompareValue}, true
	case *filter.LogicalExpression:
		if e.Operator != filter.AND {
			return nil, false
		}
		l, ok1 := itemOf(e.Left)
		r, ok2 := itemOf(e.Right)
		if !ok1 || !ok2 {
			return nil, false
		}
		for k, v := range r {
			l[k] = v
		}
		return l, true
	}
	return nil, false
}

// setSimple sets or removes m[key] (found without regard to case).
func setSimple(m map[string]any, op, key string, value any) error {
	for k := range m {
		if strings.EqualFold(k, key) {
			delete(m, k)
		}
	}
	if op != scimlib.PatchOperationRemove {
		m[key] = value
	}
	return nil
}

// setAttribute adds, replaces or removes a whole attribute: a complex
// one's sub-attributes are merged (RFC 7644 §3.5.2.1, §3.5.2.3), a
// multi-valued one's items added to or replaced.
func setAttribute(container map[string]any, op string, attr schema.CoreAttribute, value any) error {
	name := attr.Name()
	if op == scimlib.PatchOperationRemove {
		if list, isList := value.([]any); isList && attr.MultiValued() {
			// remove with a value: those items.
			current, _ := get(container, name).([]any)
			var kept []any
			for _, it := range current {
				if !containsItem(list, it) {
					kept = append(kept, it)
				}
			}
			container[name] = kept
			return nil
		}
		return setSimple(container, op, name, nil)
	}
	switch {
	case attr.MultiValued():
		items, isList := value.([]any)
		if !isList {
			items = []any{value}
		}
		if op == scimlib.PatchOperationAdd {
			current, _ := get(container, name).([]any)
			for _, it := range items {
				if !containsItem(current, it) {
					current = append(current, it)
				}
			}
			items = current
		}
		return setSimple(container, op, name, items)
	case attr.AttributeType() == "complex":
		v, isMap := value.(map[string]any)
		if !isMap {
			return badPatch("%s takes an object", name)
		}
		m, _ := get(container, name).(map[string]any)
		if m == nil {
			m = map[string]any{}
		}
		for k, x := range v {
			_ = setSimple(m, op, k, x)
		}
		return setSimple(container, op, name, m)
	}
	return setSimple(container, op, name, value)
}

// containsItem reports whether list holds an item with it's value.
func containsItem(list []any, it any) bool {
	key := itemValue(it)
	for _, x := range list {
		if itemValue(x) == key {
			return true
		}
	}
	return false
}

func itemValue(it any) string {
	if m, ok := it.(map[string]any); ok {
		v, _ := get(m, "value").(string)
		return strings.ToLower(v)
	}
	return strings.ToLower(fmt.Sprint(it))
}
