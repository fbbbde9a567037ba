package client

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// Organizations lists the organisations the token may see.
func (c *Client) Organizations(ctx context.Context) ([]Organization, error) {
	var out struct {
		Organizations []Organization `json:"organizations"`
	}
	err := c.getJSON(ctx, "/api/v1/organizations", nil, &out)
	return out.Organizations, err
}

// Organization shows one organisation, with its connections.
func (c *Client) Organization(ctx context.Context, org string) (Organization, error) {
	var out Organization
	err := c.getJSON(ctx, orgPath(org), nil, &out)
	return out, err
}

// Connections lists an organisation's connections with their IdP
// certificates' expiry.
func (c *Client) Connections(ctx context.Context, org string) ([]ConnectionInfo, error) {
	var out struct {
		Connections []ConnectionInfo `json:"connections"`
	}
	err := c.getJSON(ctx, orgPath(org)+"/connections", nil, &out)
	return out.Connections, err
}

// UserQuery filters and pages a user list; zero values do not filter.
type UserQuery struct {
	Search       string
	Status       string // active, suspended, deprovisioned, held
	Role         string
	Connection   string
	CreatedBy    string // jit, admin, app
	CreatedSince time.Time
	Cursor       string
	Limit        int // 1..500; 0: the server's default (50)
}

func (q UserQuery) values() url.Values {
	v := url.Values{}
	set(v, "search", q.Search)
	set(v, "status", q.Status)
	set(v, "role", q.Role)
	set(v, "connection", q.Connection)
	set(v, "created_by", q.CreatedBy)
	setTime(v, "created_since", q.CreatedSince)
	set(v, "cursor", q.Cursor)
	setInt(v, "limit", q.Limit)
	return v
}

// Users lists a page of an organisation's users, newest first.
func (c *Client) Users(ctx context.Context, org string, q UserQuery) (UserPage, error) {
	var out UserPage
	err := c.getJSON(ctx, orgPath(org)+"/users", q.values(), &out)
	return out, err
}

// User shows one user.
func (c *Client) User(ctx context.Context, org, id string) (UserDetail, error) {
	var out UserDetail
	err := c.getJSON(ctx, orgPath(org)+"/users/"+seg(id), nil, &out)
	return out, err
}

type reasonBody struct {
	Reason string `json:"reason,omitempty"`
}

// Suspend stops a user signing in; they keep their seat.
func (c *Client) Suspend(ctx context.Context, org, id, reason string) (UserResult, error) {
	return c.userAction(ctx, org, id, "suspend", reason)
}

// Reactivate lets a suspended or deprovisioned user sign in again.
func (c *Client) Reactivate(ctx context.Context, org, id, reason string) (UserResult, error) {
	return c.userAction(ctx, org, id, "reactivate", reason)
}

// Deprovision removes a user's access and frees their seat.
func (c *Client) Deprovision(ctx context.Context, org, id, reason string) (UserResult, error) {
	return c.userAction(ctx, org, id, "deprovision", reason)
}

// ApproveSignup lets a held sign-up in: a seat now (no_seat when none is
// free), active.
func (c *Client) ApproveSignup(ctx context.Context, org, id string) (UserResult, error) {
	return c.userAction(ctx, org, id, "approve-signup", "")
}

// DenySignup keeps a held sign-up out, for a reason (required).
func (c *Client) DenySignup(ctx context.Context, org, id, reason string) (UserResult, error) {
	return c.userAction(ctx, org, id, "deny-signup", reason)
}

func (c *Client) userAction(ctx context.Context, org, id, action, reason string) (UserResult, error) {
	var out UserResult
	err := c.sendJSON(ctx, http.MethodPost, orgPath(org)+"/users/"+seg(id)+"/"+action, reasonBody{reason}, &out)
	return out, err
}

// SetRole gives a user another role.
func (c *Client) SetRole(ctx context.Context, org, id, role string) (UserResult, error) {
	var out UserResult
	err := c.sendJSON(ctx, http.MethodPut, orgPath(org)+"/users/"+seg(id)+"/role", map[string]string{"role": role}, &out)
	return out, err
}

// Link links an identity that is nobody's to a user.
func (c *Client) Link(ctx context.Context, org, id, connection, externalID string) (UserResult, error) {
	var out UserResult
	err := c.sendJSON(ctx, http.MethodPost, orgPath(org)+"/users/"+seg(id)+"/identities",
		map[string]string{"connection_id": connection, "external_id": externalID}, &out)
	return out, err
}

// Unlink takes an identity from its user; the user and seat stay.
func (c *Client) Unlink(ctx context.Context, org, connection, externalID string) (UserResult, error) {
	var out UserResult
	err := c.sendJSON(ctx, http.MethodDelete, orgPath(org)+"/identities/"+seg(connection)+"/"+seg(externalID), nil, &out)
	return out, err
}

// ReviewQuery filters role reviews.
type ReviewQuery struct {
	Status string // pending, approved, denied, expired
	UserID string
	Limit  int
}

// Reviews lists role reviews, pending first.
func (c *Client) Reviews(ctx context.Context, org string, q ReviewQuery) ([]Review, error) {
	v := url.Values{}
	set(v, "status", q.Status)
	set(v, "user_id", q.UserID)
	setInt(v, "limit", q.Limit)
	var out struct {
		Reviews []Review `json:"reviews"`
	}
	err := c.getJSON(ctx, orgPath(org)+"/reviews", v, &out)
	return out.Reviews, err
}

// Approve gives the user the role the review asks for.
func (c *Client) Approve(ctx context.Context, org, id string) (ReviewResult, error) {
	var out ReviewResult
	err := c.sendJSON(ctx, http.MethodPost, orgPath(org)+"/reviews/"+seg(id)+"/approve", nil, &out)
	return out, err
}

// Deny closes a review without changing the role; reason is required.
func (c *Client) Deny(ctx context.Context, org, id, reason string) (ReviewResult, error) {
	var out ReviewResult
	err := c.sendJSON(ctx, http.MethodPost, orgPath(org)+"/reviews/"+seg(id)+"/deny", map[string]string{"reason": reason}, &out)
	return out, err
}

// DecisionQuery filters and pages the provisioning log.
type DecisionQuery struct {
	Outcome    string
	Reason     string
	Connection string
	ExternalID string
	UserID     string
	Since      time.Time
	Cursor     string
	Limit      int
}

// Decisions lists a page of provisioning decisions, newest first.
func (c *Client) Decisions(ctx context.Context, org string, q DecisionQuery) (DecisionPage, error) {
	v := url.Values{}
	set(v, "outcome", q.Outcome)
	set(v, "reason", q.Reason)
	set(v, "connection", q.Connection)
	set(v, "external_id", q.ExternalID)
	set(v, "user_id", q.UserID)
	setTime(v, "since", q.Since)
	set(v, "cursor", q.Cursor)
	setInt(v, "limit", q.Limit)
	var out DecisionPage
	err := c.getJSON(ctx, orgPath(org)+"/decisions", v, &out)
	return out, err
}

// AuditQuery filters and pages the admin audit.
type AuditQuery struct {
	Target string
	Cursor string
	Limit  int
}

// Audit lists a page of the admin actions on an organisation, newest first.
func (c *Client) Audit(ctx context.Context, org string, q AuditQuery) (AuditPage, error) {
	v := url.Values{}
	set(v, "target", q.Target)
	set(v, "cursor", q.Cursor)
	setInt(v, "limit", q.Limit)
	var out AuditPage
	err := c.getJSON(ctx, orgPath(org)+"/audit", v, &out)
	return out, err
}

// ConflictQuery filters the field conflicts of an organisation.
type ConflictQuery struct {
	User   string
	Field  string
	Cursor string
	Limit  int
}

// Conflicts lists a page of the changes of an organisation's users'
// fields that the fields' owners overruled, latest first.
func (c *Client) Conflicts(ctx context.Context, org string, q ConflictQuery) (ConflictPage, error) {
	v := url.Values{}
	set(v, "user", q.User)
	set(v, "field", q.Field)
	set(v, "cursor", q.Cursor)
	setInt(v, "limit", q.Limit)
	var out ConflictPage
	err := c.getJSON(ctx, orgPath(org)+"/conflicts", v, &out)
	return out, err
}

// DryRun asks what JIT would decide for a login of identity (a JSON
// object: an identity, bare or as {"identity": …}, or {"connection_id",
// "saml_response"} or {"connection_id", "id_token", "userinfo"}: the
// dry-run route's body
// object, the login.first-seen event's data) now, writing nothing.
func (c *Client) DryRun(ctx context.Context, org string, identity json.RawMessage) (DryRunResult, error) {
	var out DryRunResult
	err := c.do(ctx, http.MethodPost, orgPath(org)+"/dry-run", nil, "application/json", identity, &out, nil)
	return out, err
}

// Apply creates or updates the organisations and connections of an
// organisations file (YAML), or with dryRun says what it would do.
func (c *Client) Apply(ctx context.Context, file []byte, dryRun bool) (ApplyResult, error) {
	var out ApplyResult
	err := c.do(ctx, http.MethodPost, "/api/v1/apply", url.Values{"dry_run": {strconv.FormatBool(dryRun)}},
		"application/yaml", file, &out, nil)
	return out, err
}

// Tokens lists API tokens; org "" for every one the token may see.
func (c *Client) Tokens(ctx context.Context, org string) ([]Token, error) {
	v := url.Values{}
	set(v, "organization", org)
	var out struct {
		Tokens []Token `json:"tokens"`
	}
	err := c.getJSON(ctx, "/api/v1/tokens", v, &out)
	return out.Tokens, err
}

// CreateToken creates a token; its secret is in this answer only. With an
// idempotency key, a retry never makes a second token.
func (c *Client) CreateToken(ctx context.Context, t NewToken, idempotencyKey string) (CreatedToken, error) {
	body, err := json.Marshal(t)
	if err != nil {
		return CreatedToken{}, err
	}
	var h http.Header
	if idempotencyKey != "" {
		h = http.Header{"Idempotency-Key": {idempotencyKey}}
	}
	var out CreatedToken
	err = c.do(ctx, http.MethodPost, "/api/v1/tokens", nil, "application/json", body, &out, h)
	return out, err
}

// RevokeToken revokes a token at once.
func (c *Client) RevokeToken(ctx context.Context, id string) (TokenResult, error) {
	var out TokenResult
	err := c.sendJSON(ctx, http.MethodDelete, "/api/v1/tokens/"+seg(id), nil, &out)
	return out, err
}

func set(v url.Values, k, s string) {
	if s != "" {
		v.Set(k, s)
	}
}

func setInt(v url.Values, k string, n int) {
	if n != 0 {
		v.Set(k, strconv.Itoa(n))
	}
}

func setTime(v url.Values, k string, t time.Time) {
	if !t.IsZero() {
		v.Set(k, t.UTC().Format(time.RFC3339))
	}
}
