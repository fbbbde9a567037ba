package scim

import (
	"log/slog"
	"net/http"
	"slices"
	"strings"

	scimlib "github.com/elimity-com/scim"
	"github.com/elimity-com/scim/optional"
	filter "github.com/scim2/filter-parser/v2"

	"github.com/jitprov/jitprov/internal/admin"
)

type groupHandler struct {
	core *admin.Core
	log  *slog.Logger
}

func groupResource(g admin.DirectoryGroup, withMembers bool) scimlib.Resource {
	attrs := scimlib.ResourceAttributes{"displayName": g.Group.DisplayName}
	if withMembers {
		members := make([]any, 0, len(g.Members))
		for _, m := range g.Members {
			members = append(members, map[string]any{"value": m.ID, "display": m.Display, "type": "User"})
		}
		attrs["members"] = members
	}
	created, modified := g.Group.CreatedAt, g.Group.UpdatedAt
	res := scimlib.Resource{ID: g.Group.ID, Attributes: attrs,
		Meta: scimlib.Meta{Created: &created, LastModified: &modified, Version: g.Version()}}
	if g.Group.ExternalID != "" {
		res.ExternalID = optional.NewString(g.Group.ExternalID)
	}
	return res
}

// memberIDs reads the ids of a members value (a list of {"value": id}).
func memberIDs(v any) []string {
	list, isList := v.([]any)
	if !isList {
		list = []any{v}
	}
	var out []string
	for _, it := range list {
		switch it := it.(type) {
		case map[string]any:
			if id, _ := get(it, "value").(string); id != "" {
				out = append(out, id)
			}
		case string:
			out = append(out, it)
		}
	}
	return out
}

// excluded reports whether the request's excludedAttributes names attr
// (Entra ID lists groups with excludedAttributes=members).
func excluded(r *http.Request, attr string) bool {
	for _, a := range strings.Split(r.URL.Query().Get("excludedAttributes"), ",") {
		if strings.EqualFold(strings.TrimSpace(a), attr) {
			return true
		}
	}
	return false
}

func (h *groupHandler) Create(r *http.Request, attrs scimlib.ResourceAttributes) (scimlib.Resource, error) {
	p := principal(r)
	name, _ := get(attrs, "displayName").(string)
	ext, _ := get(attrs, "externalId").(string)
	g, err := h.core.CreateDirectoryGroup(r.Context(), p, p.Organization, name, ext, memberIDs(get(attrs, "members")))
	if err != nil {
		return scimlib.Resource{}, scimError(r.Context(), h.log, "create a group", err)
	}
	return groupResource(g, true), nil
}

func (h *groupHandler) Get(r *http.Request, id string) (scimlib.Resource, error) {
	p := principal(r)
	g, err := h.core.DirectoryGroup(r.Context(), p, p.Organization, id)
	if err != nil {
		return scimlib.Resource{}, scimError(r.Context(), h.log, "read a group", err)
	}
	return groupResource(g, !excluded(r, "members")), nil
}

func (h *groupHandler) GetAll(r *http.Request, params scimlib.ListRequestParams) (scimlib.Page, error) {
	p := principal(r)
	withMembers := !excluded(r, "members")
	page := scimlib.Page{Resources: []scimlib.Resource{}}
	if params.FilterValidator == nil {
		groups, total, err := h.core.DirectoryGroups(r.Context(), p, p.Organization, params.StartIndex-1, params.Count, withMembers)
		if err != nil {
			return page, scimError(r.Context(), h.log, "list groups", err)
		}
		page.TotalResults = total
		for _, g := range groups {
			page.Resources = append(page.Resources, groupResource(g, withMembers))
		}
		return page, nil
	}
	found, err := evalFilter(params.FilterValidator.GetFilter(), groupKeys, func(attr, value string) ([]item, error) {
		groups, err := h.core.FindDirectoryGroups(r.Context(), p, p.Organization, attr, value)
		out := make([]item, len(groups))
		for i, g := range groups {
			out[i] = item{id: g.Group.ID, v: g, order: g.Group.CreatedAt.UnixMicro()}
		}
		return out, err
	})
	if err != nil {
		return page, scimError(r.Context(), h.log, "find groups", err)
	}
	page.TotalResults = len(found)
	for _, it := range window(found, params.StartIndex, params.Count) {
		page.Resources = append(page.Resources, groupResource(it.v.(admin.DirectoryGroup), withMembers))
	}
	return page, nil
}

func (h *groupHandler) Replace(r *http.Request, id string, attrs scimlib.ResourceAttributes) (scimlib.Resource, error) {
	p := principal(r)
	name, _ := get(attrs, "displayName").(string)
	ext, _ := get(attrs, "externalId").(string)
	members := memberIDs(get(attrs, "members"))
	if get(attrs, "members") == nil {
		members = []string{}
	}
	g, err := h.core.ChangeDirectoryGroup(r.Context(), p, p.Organization, id,
		admin.GroupChange{DisplayName: &name, ExternalID: &ext, SetMembers: &members}, r.Header.Get("If-Match"))
	if err != nil {
		return scimlib.Resource{}, scimError(r.Context(), h.log, "replace a group", err)
	}
	return groupResource(g, true), nil
}

func (h *groupHandler) Delete(r *http.Request, id string) error {
	p := principal(r)
	if err := h.core.DeleteDirectoryGroup(r.Context(), p, p.Organization, id); err != nil {
		return scimError(r.Context(), h.log, "delete a group", err)
	}
	return nil
}

// members accumulates a PATCH's member operations, in order.
type members struct {
	set         *[]string
	add, remove []string
}

func (m *members) adds(ids []string) {
	for _, id := range ids {
		if m.set != nil {
			if !slices.Contains(*m.set, id) {
				*m.set = append(*m.set, id)
			}
			continue
		}
		m.remove = slices.DeleteFunc(m.remove, func(x string) bool { return x == id })
		if !slices.Contains(m.add, id) {
			m.add = append(m.add, id)
		}
	}
}

func (m *members) removes(ids []string) {
	for _, id := range ids {
		if m.set != nil {
			*m.set = slices.DeleteFunc(*m.set, func(x string) bool { return x == id })
			continue
		}
		m.add = slices.DeleteFunc(m.add, func(x string) bool { return x == id })
		if !slices.Contains(m.remove, id) {
			m.remove = append(m.remove, id)
		}
	}
}

func (m *members) replace(ids []string) {
	set := slices.Clone(ids)
	m.set, m.add, m.remove = &set, nil, nil
}

// Patch turns the operations into one change of the group: its name, its
// external id, and members added, removed or replaced, as Okta and Entra
// ID send them (`members` with a list of values; `members[value eq "…"]`
// to remove one).
func (h *groupHandler) Patch(r *http.Request, id string, ops []scimlib.PatchOperation) (scimlib.Resource, error) {
	p := principal(r)
	var gc admin.GroupChange
	var m members
	for i, op := range ops {
		if op.Path == nil {
			value, ok := op.Value.(map[string]any)
			if !ok {
				return scimlib.Resource{}, badPatch("operation %d: an operation without a path needs an object of attributes", i+1)
			}
			for k, v := range value {
				if err := groupAttr(&gc, &m, op.Op, k, nil, v); err != nil {
					return scimlib.Resource{}, err
				}
			}
			continue
		}
		if err := groupAttr(&gc, &m, op.Op, op.Path.AttributePath.AttributeName, op.Path.ValueExpression, op.Value); err != nil {
			return scimlib.Resource{}, err
		}
	}
	gc.SetMembers, gc.Add, gc.Remove = m.set, m.add, m.remove
	g, err := h.core.ChangeDirectoryGroup(r.Context(), p, p.Organization, id, gc, r.Header.Get("If-Match"))
	if err != nil {
		return scimlib.Resource{}, scimError(r.Context(), h.log, "patch a group", err)
	}
	return groupResource(g, !excluded(r, "members")), nil
}

func groupAttr(gc *admin.GroupChange, m *members, op, attr string, valueFilter filter.Expression, value any) error {
	switch strings.ToLower(attr) {
	case "displayname":
		name, ok := value.(string)
		if !ok || op == scimlib.PatchOperationRemove {
			return badPatch("displayName takes a string and cannot be removed")
		}
		gc.DisplayName = &name
	case "externalid":
		ext, _ := value.(string)
		if op == scimlib.PatchOperationRemove {
			ext = ""
		}
		gc.ExternalID = &ext
	case "members":
		if valueFilter != nil {
			ids, ok := memberFilterIDs(valueFilter)
			if !ok {
				return badPatch("members[…] takes value eq \"<user id>\" (or several, joined by or)")
			}
			if op != scimlib.PatchOperationRemove {
				return badPatch("members[…] is for remove; add members with path members and a list of values")
			}
			m.removes(ids)
			return nil
		}
		switch op {
		case scimlib.PatchOperationAdd:
			m.adds(memberIDs(value))
		case scimlib.PatchOperationReplace:
			m.replace(memberIDs(value))
		case scimlib.PatchOperationRemove:
			if value == nil {
				m.replace(nil)
			} else {
				m.removes(memberIDs(value))
			}
		}
	case "id", "schemas", "meta":
	default:
		return badPatch("%q is not an attribute of a group jitprov changes (displayName, externalId, members)", attr)
	}
	return nil
}

// memberFilterIDs reads `value eq "a" or value eq "b"`.
func memberFilterIDs(e filter.Expression) ([]string, bool) {
	switch e := e.(type) {
	case *filter.AttributeExpression:
		v, ok := e.CompareValue.(string)
		if !ok || e.Operator != filter.EQ || !strings.EqualFold(e.AttributePath.AttributeName, "value") {
			return nil, false
		}
		return []string{v}, true
	case *filter.LogicalExpression:
		if e.Operator != filter.OR {
			return nil, false
		}
		l, ok1 := memberFilterIDs(e.Left)
		r, ok2 := memberFilterIDs(e.Right)
		return append(l, r...), ok1 && ok2
	}
	return nil, false
}
