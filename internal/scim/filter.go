package scim

import (
	"cmp"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strings"

	scimerr "github.com/elimity-com/scim/errors"
	filter "github.com/scim2/filter-parser/v2"

	"github.com/jitprov/jitprov/internal/store"
)

// A filter is answered from the directory's indexed lookups: each
// comparison `attribute eq value` on an attribute a client looks people up
// by is one lookup, and `and`/`or` combine their results. Anything else
// (other operators, not, other attributes) is refused with invalidFilter,
// naming what is supported, rather than answered by scanning everyone.

// item is one resource a lookup found.
type item struct {
	id    string
	order int64 // creation time: results are listed oldest first
	v     any
}

// keyMap maps a filter's attribute path to a lookup key.
type keyMap func(path filter.AttributePath) (string, bool)

func userKeys(p filter.AttributePath) (string, bool) {
	name, sub := strings.ToLower(p.AttributeName), strings.ToLower(p.SubAttributeName())
	switch {
	case p.URI() != "" && !strings.EqualFold(p.URI(), "urn:ietf:params:scim:schemas:core:2.0:User"):
		return "", false
	case name == "username" && sub == "":
		return store.DirectoryByUserName, true
	case name == "externalid" && sub == "":
		return store.DirectoryByExternalID, true
	case name == "id" && sub == "":
		return store.DirectoryByID, true
	case name == "emails" && (sub == "" || sub == "value"):
		return store.DirectoryByEmail, true
	}
	return "", false
}

func groupKeys(p filter.AttributePath) (string, bool) {
	name, sub := strings.ToLower(p.AttributeName), p.SubAttributeName()
	switch {
	case sub != "":
		return "", false
	case name == "displayname":
		return store.GroupByDisplayName, true
	case name == "externalid":
		return store.GroupByExternalID, true
	case name == "id":
		return store.GroupByID, true
	}
	return "", false
}

func unsupported(e any) error {
	return scimerr.ScimError{Status: http.StatusBadRequest, ScimType: scimerr.ScimTypeInvalidFilter,
		Detail: fmt.Sprintf("jitprov answers filters of `eq` comparisons on userName, externalId, id and emails.value (Users) or displayName, externalId and id (Groups), combined with and/or; not %v", e)}
}

// evalFilter answers e with lookup, oldest first.
func evalFilter(e filter.Expression, keys keyMap, lookup func(attr, value string) ([]item, error)) ([]item, error) {
	switch e := e.(type) {
	case *filter.AttributeExpression:
		attr, ok := keys(e.AttributePath)
		value, isString := e.CompareValue.(string)
		if !ok || e.Operator != filter.EQ || !isString {
			return nil, unsupported(e)
		}
		items, err := lookup(attr, value)
		if err != nil {
			return nil, err
		}
		slices.SortFunc(items, byOrder)
		return items, nil
	case *filter.ValuePath:
		// emails[type eq "work" and value eq "…"]: the value compared, of a
		// work email (every email jitprov keeps is one).
		attr, ok := keys(e.AttributePath)
		if !ok || attr != store.DirectoryByEmail {
			return nil, unsupported(e)
		}
		value, work, ok := emailValueFilter(e.ValueFilter)
		if !ok {
			return nil, unsupported(e)
		}
		if !work {
			return []item{}, nil
		}
		return evalFilter(&filter.AttributeExpression{AttributePath: e.AttributePath, Operator: filter.EQ, CompareValue: value}, keys, lookup)
	case *filter.LogicalExpression:
		left, err := evalFilter(e.Left, keys, lookup)
		if err != nil {
			return nil, err
		}
		right, err := evalFilter(e.Right, keys, lookup)
		if err != nil {
			return nil, err
		}
		var out []item
		if e.Operator == filter.AND {
			for _, l := range left {
				if slices.ContainsFunc(right, func(r item) bool { return r.id == l.id }) {
					out = append(out, l)
				}
			}
			return out, nil
		}
		out = append(out, left...)
		for _, r := range right {
			if !slices.ContainsFunc(out, func(o item) bool { return o.id == r.id }) {
				out = append(out, r)
			}
		}
		slices.SortFunc(out, byOrder)
		return out, nil
	}
	return nil, unsupported(e)
}

func byOrder(a, b item) int {
	return cmp.Or(cmp.Compare(a.order, b.order), strings.Compare(a.id, b.id))
}

// emailValueFilter reads `value eq "x"` with, optionally, `type eq "t"`
// beside it (and): the value, and whether t (if any) is work.
func emailValueFilter(e filter.Expression) (value string, work, ok bool) {
	work = true
	var visit func(e filter.Expression) bool
	visit = func(e filter.Expression) bool {
		switch e := e.(type) {
		case *filter.AttributeExpression:
			v, isString := e.CompareValue.(string)
			if e.Operator != filter.EQ || !isString || e.AttributePath.SubAttribute != nil {
				return false
			}
			switch strings.ToLower(e.AttributePath.AttributeName) {
			case "value":
				value = v
				return true
			case "type":
				work = strings.EqualFold(v, "work")
				return true
			}
		case *filter.LogicalExpression:
			return e.Operator == filter.AND && visit(e.Left) && visit(e.Right)
		}
		return false
	}
	ok = visit(e) && value != ""
	return value, work, ok
}

// window is the page of items from startIndex (1-based), count long.
func window(items []item, startIndex, count int) []item {
	from := min(max(startIndex-1, 0), len(items))
	to := min(from+max(count, 0), len(items))
	return items[from:to]
}

// valuePathCompare is `attr[filter].sub op value`, which clients send
// although RFC 7644's filter grammar has no sub-attribute after a value
// filter (`emails[type eq "work"].value eq "ada@example.com"`).
var valuePathCompare = regexp.MustCompile(`^\s*([A-Za-z][\w:.-]*)\[([^\[\]]+)\]\.([A-Za-z]\w*)\s+(eq|ne|co|sw|ew|gt|ge|lt|le)\s+(.+?)\s*$`)

// orInside finds an or in a value filter, which and would bind tighter
// than.
var orInside = regexp.MustCompile(`(?i)\sor\s`)

// rewriteFilter turns such a filter into the RFC's own form,
// `emails[type eq "work" and value eq "ada@example.com"]`, before the
// library parses it (only when the value filter has no or, which and would
// change).
func rewriteFilter(r *http.Request) {
	q := r.URL.Query()
	f := q.Get("filter")
	m := valuePathCompare.FindStringSubmatch(f)
	if m == nil || orInside.MatchString(m[2]) {
		return
	}
	q.Set("filter", fmt.Sprintf("%s[%s and %s %s %s]", m[1], m[2], m[3], m[4], m[5]))
	r.URL.RawQuery = q.Encode()
}
