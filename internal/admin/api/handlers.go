package api

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"time"

	"github.com/jitprov/jitprov/internal/admin"
	"github.com/jitprov/jitprov/internal/store"
)

// query reads a request's query parameters, refusing unknown ones and
// collecting the first invalid value.
type query struct {
	v   url.Values
	err error
}

func newQuery(r *http.Request, allowed ...string) *query {
	q := &query{v: r.URL.Query()}
	for k := range q.v {
		if !slices.Contains(allowed, k) {
			q.fail(k, "unknown query parameter; this route takes "+joinNames(allowed))
		}
	}
	return q
}

func joinNames(s []string) string {
	out := ""
	for i, v := range s {
		if i > 0 {
			out += ", "
		}
		out += v
	}
	return out
}

func (q *query) fail(field, msg string) {
	if q.err == nil {
		q.err = &admin.FieldError{Field: field, Msg: msg}
	}
}

func (q *query) str(name string) string { return q.v.Get(name) }

func (q *query) limit() int {
	s := q.v.Get("limit")
	if s == "" {
		return 0
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > store.MaxPageSize {
		q.fail("limit", "want a whole number from 1 to "+strconv.Itoa(store.MaxPageSize))
	}
	return n
}

func (q *query) time(name string) time.Time {
	s := q.v.Get(name)
	if s == "" {
		return time.Time{}
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		q.fail(name, "want an RFC 3339 time such as 2026-12-01T00:00:00Z")
	}
	return t
}

func (q *query) oneOf(name string, values ...string) string {
	s := q.v.Get(name)
	if s != "" && !slices.Contains(values, s) {
		q.fail(name, "want one of "+joinNames(values))
	}
	return s
}

func (a *API) listOrganizations(w http.ResponseWriter, r *http.Request, p admin.Principal) {
	if q := newQuery(r); q.err != nil {
		a.fail(w, r, q.err)
		return
	}
	orgs, err := a.core.Organizations(r.Context(), p)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	if len(orgs) == 0 && p.Kind == store.ActorUser {
		// A signed-in person who administers no organisation.
		a.fail(w, r, forbidden("you are not your organisation's admin"))
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"organizations": mapSlice(orgs, orgOf)})
}

func (a *API) getOrganization(w http.ResponseWriter, r *http.Request, p admin.Principal) {
	d, err := a.core.Organization(r.Context(), p, r.PathValue("org"))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, orgDetailOf(d))
}

func (a *API) listUsers(w http.ResponseWriter, r *http.Request, p admin.Principal) {
	q := newQuery(r, "search", "status", "role", "connection", "created_by", "created_since", "cursor", "limit")
	f := store.UserFilter{OrganizationID: r.PathValue("org"), Search: q.str("search"),
		Status: q.oneOf("status", store.StatusActive, store.StatusSuspended, store.StatusDeprovisioned, store.StatusHeld),
		Role:   q.str("role"), ConnectionID: q.str("connection"),
		CreatedBy:    q.oneOf("created_by", store.CreatedByJIT, store.CreatedByAdmin, store.CreatedByApp),
		CreatedSince: q.time("created_since"), Cursor: q.str("cursor"), Limit: q.limit()}
	if q.err != nil {
		a.fail(w, r, q.err)
		return
	}
	page, err := a.core.Users(r.Context(), p, f)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"users": mapSlice(page.Users, userOf), "next": page.Next})
}

func (a *API) getUser(w http.ResponseWriter, r *http.Request, p admin.Principal) {
	d, err := a.core.User(r.Context(), p, r.PathValue("org"), r.PathValue("id"))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"user": userOf(d.User),
		"identities": mapSlice(d.Identities, func(i store.Identity) identityView {
			return identityView{ConnectionID: i.ConnectionID, ExternalID: i.ExternalID, UserID: i.UserID, LinkedBy: i.LinkedBy,
				FirstSeenAt: ts(i.FirstSeenAt), LastSeenAt: ts(i.LastSeenAt)}
		}),
		"decisions": mapSlice(d.Decisions, decisionOf),
		"reviews":   mapSlice(d.Reviews, reviewOf),
		"audit":     mapSlice(d.Audit, auditOf),
		"conflicts": mapSlice(d.Conflicts, conflictOf),
	})
}

type reasonBody struct {
	Reason string `json:"reason"`
}

func (a *API) suspend(w http.ResponseWriter, r *http.Request, p admin.Principal) {
	a.setStatus(w, r, p, a.core.Suspend)
}

func (a *API) reactivate(w http.ResponseWriter, r *http.Request, p admin.Principal) {
	a.setStatus(w, r, p, a.core.Reactivate)
}

func (a *API) deprovision(w http.ResponseWriter, r *http.Request, p admin.Principal) {
	a.setStatus(w, r, p, a.core.Deprovision)
}

// approveSignup lets a held person in: a seat now (no_seat when none is
// free), active, user.created. Approving again is a conflict.
func (a *API) approveSignup(w http.ResponseWriter, r *http.Request, p admin.Principal) {
	a.setStatus(w, r, p, func(ctx context.Context, p admin.Principal, orgID, userID, _ string) (admin.Result, error) {
		return a.core.ApproveSignup(ctx, p, orgID, userID)
	})
}

// denySignup keeps a held person out, for the reason given (required).
func (a *API) denySignup(w http.ResponseWriter, r *http.Request, p admin.Principal) {
	a.setStatus(w, r, p, a.core.DenySignup)
}

// resultBody is a user after a change, and whether the request changed it.
type resultBody struct {
	User    userView `json:"user"`
	Changed bool     `json:"changed"`
}

type userChange func(ctx context.Context, p admin.Principal, orgID, userID, reason string) (admin.Result, error)

func (a *API) setStatus(w http.ResponseWriter, r *http.Request, p admin.Principal, do userChange) {
	var body reasonBody
	if !decode(w, r, &body, true) {
		return
	}
	res, err := do(r.Context(), p, r.PathValue("org"), r.PathValue("id"), body.Reason)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, resultBody{User: userOf(res.User), Changed: res.Changed})
}

func (a *API) changeRole(w http.ResponseWriter, r *http.Request, p admin.Principal) {
	var body struct {
		Role string `json:"role"`
	}
	if !decode(w, r, &body, false) {
		return
	}
	if body.Role == "" {
		a.fail(w, r, &admin.FieldError{Field: "role", Msg: "required: one of the organisation's roles"})
		return
	}
	res, err := a.core.ChangeRole(r.Context(), p, r.PathValue("org"), r.PathValue("id"), body.Role)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, resultBody{User: userOf(res.User), Changed: res.Changed})
}

func (a *API) link(w http.ResponseWriter, r *http.Request, p admin.Principal) {
	var body struct {
		ConnectionID string `json:"connection_id"`
		ExternalID   string `json:"external_id"`
	}
	if !decode(w, r, &body, false) {
		return
	}
	if body.ConnectionID == "" {
		a.fail(w, r, &admin.FieldError{Field: "connection_id", Msg: "required: the connection the identity signs in through"})
		return
	}
	res, err := a.core.Link(r.Context(), p, r.PathValue("org"), r.PathValue("id"), body.ConnectionID, body.ExternalID)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, resultBody{User: userOf(res.User), Changed: res.Changed})
}

func (a *API) unlink(w http.ResponseWriter, r *http.Request, p admin.Principal) {
	res, err := a.core.Unlink(r.Context(), p, r.PathValue("org"), r.PathValue("connection"), r.PathValue("external_id"))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, resultBody{User: userOf(res.User), Changed: res.Changed})
}

func (a *API) listReviews(w http.ResponseWriter, r *http.Request, p admin.Principal) {
	q := newQuery(r, "status", "user_id", "limit")
	f := store.ReviewFilter{OrganizationID: r.PathValue("org"),
		Status: q.oneOf("status", store.ReviewPending, store.ReviewApproved, store.ReviewDenied, store.ReviewExpired),
		UserID: q.str("user_id"), Limit: q.limit()}
	if q.err != nil {
		a.fail(w, r, q.err)
		return
	}
	list, err := a.core.Reviews(r.Context(), p, f)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"reviews": mapSlice(list, reviewOf)})
}

type reviewResultBody struct {
	Review reviewView `json:"review"`
	User   userView   `json:"user"`
}

func (a *API) approve(w http.ResponseWriter, r *http.Request, p admin.Principal) {
	var body struct{}
	if !decode(w, r, &body, true) {
		return
	}
	res, err := a.core.ApproveReview(r.Context(), p, r.PathValue("org"), r.PathValue("id"))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, reviewResultBody{Review: reviewOf(res.Review), User: userOf(res.User)})
}

func (a *API) deny(w http.ResponseWriter, r *http.Request, p admin.Principal) {
	var body reasonBody
	if !decode(w, r, &body, false) {
		return
	}
	res, err := a.core.DenyReview(r.Context(), p, r.PathValue("org"), r.PathValue("id"), body.Reason)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, reviewResultBody{Review: reviewOf(res.Review), User: userOf(res.User)})
}

func (a *API) listDecisions(w http.ResponseWriter, r *http.Request, p admin.Principal) {
	q := newQuery(r, "outcome", "reason", "connection", "external_id", "user_id", "since", "cursor", "limit")
	f := store.DecisionFilter{OrganizationID: r.PathValue("org"), Outcome: q.str("outcome"), Reason: q.str("reason"),
		ConnectionID: q.str("connection"), ExternalID: q.str("external_id"), UserID: q.str("user_id"),
		Since: q.time("since"), Cursor: q.str("cursor"), Limit: q.limit()}
	if q.err != nil {
		a.fail(w, r, q.err)
		return
	}
	page, err := a.core.Decisions(r.Context(), p, f)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"decisions": mapSlice(page.Decisions, decisionOf), "next": page.Next})
}

func (a *API) listAudit(w http.ResponseWriter, r *http.Request, p admin.Principal) {
	q := newQuery(r, "target", "cursor", "limit")
	f := store.AuditFilter{OrganizationID: r.PathValue("org"), Target: q.str("target"), Cursor: q.str("cursor"), Limit: q.limit()}
	if q.err != nil {
		a.fail(w, r, q.err)
		return
	}
	page, err := a.core.Audit(r.Context(), p, f)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"entries": mapSlice(page.Entries, auditOf), "next": page.Next})
}

// listConflicts lists the changes of users' fields that the fields'
// owners (the organisation's field_owners) overruled, latest first.
func (a *API) listConflicts(w http.ResponseWriter, r *http.Request, p admin.Principal) {
	q := newQuery(r, "user", "field", "cursor", "limit")
	f := store.ConflictFilter{OrganizationID: r.PathValue("org"), UserID: q.str("user"), Field: q.str("field"),
		Cursor: q.str("cursor"), Limit: q.limit()}
	if q.err != nil {
		a.fail(w, r, q.err)
		return
	}
	page, err := a.core.FieldConflicts(r.Context(), p, f)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"conflicts": mapSlice(page.Conflicts, conflictOf), "next": page.Next})
}

func forbidden(msg string) error { return fmt.Errorf("%w: %s", admin.ErrForbidden, msg) }
