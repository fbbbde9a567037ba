package scim

import (
	"errors"
	"log/slog"
	"net/http"
	"strings"

	scimlib "github.com/elimity-com/scim"
	scimerr "github.com/elimity-com/scim/errors"
	"github.com/elimity-com/scim/optional"

	"github.com/jitprov/jitprov/internal/admin"
	"github.com/jitprov/jitprov/internal/store"
)

// EnterpriseUser is the enterprise user extension's schema id.
const EnterpriseUser = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"

type userHandler struct {
	core *admin.Core
	log  *slog.Logger
}

// userResource is u as SCIM shows it.
func userResource(d admin.DirectoryUser) scimlib.Resource {
	u := d.User
	attrs := scimlib.ResourceAttributes{
		"userName": d.UserName(),
		"active":   u.Status == store.StatusActive,
	}
	if u.DisplayName != "" {
		attrs["displayName"] = u.DisplayName
	}
	if u.GivenName != "" || u.FamilyName != "" {
		name := map[string]any{}
		if u.GivenName != "" {
			name["givenName"] = u.GivenName
		}
		if u.FamilyName != "" {
			name["familyName"] = u.FamilyName
		}
		name["formatted"] = strings.TrimSpace(u.GivenName + " " + u.FamilyName)
		attrs["name"] = name
	}
	if u.Email != "" {
		attrs["emails"] = []any{map[string]any{"value": u.Email, "type": "work", "primary": true}}
	}
	if len(d.Groups) > 0 {
		groups := make([]any, 0, len(d.Groups))
		for _, g := range d.Groups {
			groups = append(groups, map[string]any{"value": g.ID, "display": g.DisplayName, "type": "direct"})
		}
		attrs["groups"] = groups
	}
	ext := map[string]any{}
	for _, k := range admin.DirectoryAttributes {
		v := u.Attributes[k]
		if len(v) == 0 || v[0] == "" {
			continue
		}
		if k == "manager" {
			ext[k] = map[string]any{"value": v[0]}
		} else {
			ext[k] = v[0]
		}
	}
	if len(ext) > 0 {
		attrs[EnterpriseUser] = ext
	}
	created, modified := u.CreatedAt, u.UpdatedAt
	res := scimlib.Resource{ID: u.ID, Attributes: attrs,
		Meta: scimlib.Meta{Created: &created, LastModified: &modified, Version: d.Version()}}
	if u.SCIM.ExternalID != "" {
		res.ExternalID = optional.NewString(u.SCIM.ExternalID)
	}
	return res
}

// person reads a SCIM user's attributes (as the library validated them).
// An absent active is true.
func person(a scimlib.ResourceAttributes) admin.Person {
	p := admin.Person{Active: true, Attributes: map[string]string{}}
	p.UserName, _ = get(a, "userName").(string)
	p.ExternalID, _ = get(a, "externalId").(string)
	p.DisplayName, _ = get(a, "displayName").(string)
	if b, ok := get(a, "active").(bool); ok {
		p.Active = b
	}
	if name, ok := get(a, "name").(map[string]any); ok {
		p.GivenName, _ = get(name, "givenName").(string)
		p.FamilyName, _ = get(name, "familyName").(string)
	}
	p.Email = primaryEmail(get(a, "emails"))
	if ext, ok := get(a, EnterpriseUser).(map[string]any); ok {
		for _, k := range admin.DirectoryAttributes {
			switch v := get(ext, k).(type) {
			case string:
				p.Attributes[k] = v
			case map[string]any:
				p.Attributes[k], _ = get(v, "value").(string)
			}
		}
	}
	return p
}

// primaryEmail is the primary email, else the work one, else the first.
func primaryEmail(v any) string {
	list, _ := v.([]any)
	var work, first string
	for _, item := range list {
		m, ok := item.(map[string]any)
		if !ok {
			continue
		}
		value, _ := get(m, "value").(string)
		if value == "" {
			continue
		}
		if primary, _ := get(m, "primary").(bool); primary {
			return value
		}
		if t, _ := get(m, "type").(string); strings.EqualFold(t, "work") && work == "" {
			work = value
		}
		if first == "" {
			first = value
		}
	}
	if work != "" {
		return work
	}
	return first
}

// get reads a key without regard to case, as SCIM attribute names are.
func get(m map[string]any, key string) any {
	if v, ok := m[key]; ok {
		return v
	}
	for k, v := range m {
		if strings.EqualFold(k, key) {
			return v
		}
	}
	return nil
}

func (h *userHandler) Create(r *http.Request, attrs scimlib.ResourceAttributes) (scimlib.Resource, error) {
	d, _, err := h.core.CreateDirectoryUser(r.Context(), principal(r), principal(r).Organization, person(attrs))
	if err != nil {
		return scimlib.Resource{}, scimError(r.Context(), h.log, "create a user", err)
	}
	return userResource(d), nil
}

func (h *userHandler) Get(r *http.Request, id string) (scimlib.Resource, error) {
	d, err := h.core.DirectoryUser(r.Context(), principal(r), principal(r).Organization, id)
	if err != nil {
		return scimlib.Resource{}, scimError(r.Context(), h.log, "read a user", err)
	}
	return userResource(d), nil
}

func (h *userHandler) GetAll(r *http.Request, params scimlib.ListRequestParams) (scimlib.Page, error) {
	p := principal(r)
	page := scimlib.Page{Resources: []scimlib.Resource{}}
	if params.FilterValidator == nil {
		users, total, err := h.core.DirectoryUsers(r.Context(), p, p.Organization, params.StartIndex-1, params.Count)
		if err != nil {
			return page, scimError(r.Context(), h.log, "list users", err)
		}
		page.TotalResults = total
		for _, d := range users {
			page.Resources = append(page.Resources, userResource(d))
		}
		return page, nil
	}
	found, err := evalFilter(params.FilterValidator.GetFilter(), userKeys, func(attr, value string) ([]item, error) {
		users, err := h.core.FindDirectoryUsers(r.Context(), p, p.Organization, attr, value)
		out := make([]item, len(users))
		for i, d := range users {
			out[i] = item{id: d.User.ID, v: d, order: d.User.CreatedAt.UnixMicro()}
		}
		return out, err
	})
	if err != nil {
		return page, scimError(r.Context(), h.log, "find users", err)
	}
	page.TotalResults = len(found)
	for _, it := range window(found, params.StartIndex, params.Count) {
		page.Resources = append(page.Resources, userResource(it.v.(admin.DirectoryUser)))
	}
	return page, nil
}

func (h *userHandler) Replace(r *http.Request, id string, attrs scimlib.ResourceAttributes) (scimlib.Resource, error) {
	p := principal(r)
	d, err := h.core.ReplaceDirectoryUser(r.Context(), p, p.Organization, id, person(attrs), r.Header.Get("If-Match"))
	if err != nil {
		return scimlib.Resource{}, scimError(r.Context(), h.log, "replace a user", err)
	}
	return userResource(d), nil
}

func (h *userHandler) Delete(r *http.Request, id string) error {
	p := principal(r)
	if err := h.core.DeleteDirectoryUser(r.Context(), p, p.Organization, id); err != nil {
		return scimError(r.Context(), h.log, "delete a user", err)
	}
	return nil
}

// Patch applies the operations to the user as read and writes the whole
// Person they make, in one transaction holding the user's row: concurrent
// PATCHes of one user apply in turn, none lost.
func (h *userHandler) Patch(r *http.Request, id string, ops []scimlib.PatchOperation) (scimlib.Resource, error) {
	p := principal(r)
	out, err := h.core.PatchDirectoryUser(r.Context(), p, p.Organization, id, r.Header.Get("If-Match"), func(d admin.DirectoryUser) (admin.Person, error) {
		doc := userResource(d).Attributes
		if ext := d.User.SCIM.ExternalID; ext != "" {
			doc["externalId"] = ext
		}
		if err := applyOps(doc, ops, userSchemas); err != nil {
			return admin.Person{}, err
		}
		return person(doc), nil
	})
	var se scimerr.ScimError
	if errors.As(err, &se) {
		return scimlib.Resource{}, se
	}
	if err != nil {
		return scimlib.Resource{}, scimError(r.Context(), h.log, "patch a user", err)
	}
	return userResource(out), nil
}

// errNoTarget is a PATCH remove or a value filter that matches nothing
// where RFC 7644 wants an error.
var errNoTarget = scimerr.ScimError{Status: http.StatusBadRequest, ScimType: scimerr.ScimTypeNoTarget,
	Detail: "the path names no value of the resource"}
