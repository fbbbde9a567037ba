package api

import (
	"encoding/json"
	"time"

	"github.com/jitprov/jitprov/internal/admin"
	"github.com/jitprov/jitprov/internal/store"
)

// The JSON the API answers with: snake_case, times in RFC 3339 UTC, a
// zero time left out. Nothing secret is ever in them: no connection
// settings (they may hold client secrets), no token hashes.

func ts(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}

type orgView struct {
	ID                 string            `json:"id"`
	Name               string            `json:"name"`
	MaxSeats           int               `json:"max_seats"`
	SeatsUsed          int               `json:"seats_used"`
	Roles              []string          `json:"roles"`
	DefaultRole        string            `json:"default_role"`
	JITRoleCeiling     string            `json:"jit_role_ceiling"`
	AdminRole          string            `json:"admin_role"`
	UpdatePolicy       string            `json:"update_policy"`
	LinkByEmail        string            `json:"link_by_email"`
	VerifiedDomains    []string          `json:"verified_domains"`
	SeatWarningPercent int               `json:"seat_warning_percent"`
	LandingURL         string            `json:"landing_url,omitempty"`
	FieldOwners        map[string]string `json:"field_owners"`
	Connections        []connectionView  `json:"connections,omitempty"`
}

func orgOf(o store.Organization) orgView {
	return orgView{ID: o.ID, Name: o.Name, MaxSeats: o.MaxSeats, SeatsUsed: o.SeatsUsed, Roles: nonNil(o.Roles),
		DefaultRole: o.DefaultRole, JITRoleCeiling: o.JITRoleCeiling, AdminRole: o.AdminRole(), UpdatePolicy: string(o.UpdatePolicy),
		LinkByEmail: string(o.LinkByEmail), VerifiedDomains: nonNil(o.VerifiedDomains), SeatWarningPercent: o.SeatWarningPercent,
		LandingURL: o.LandingURL, FieldOwners: nonNilOwners(o.FieldOwners)}
}

func nonNilOwners(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}

type connectionView struct {
	ID          string `json:"id"`
	Protocol    string `json:"protocol"`
	DisplayName string `json:"display_name,omitempty"`
	Replaces    string `json:"replaces,omitempty"`
}

func orgDetailOf(d admin.OrganizationDetail) orgView {
	v := orgOf(d.Organization)
	v.Connections = []connectionView{}
	for _, c := range d.Connections {
		v.Connections = append(v.Connections, connectionView{ID: c.ID, Protocol: c.Protocol, DisplayName: c.DisplayName, Replaces: c.Replaces})
	}
	return v
}

type userView struct {
	ID             string              `json:"id"`
	OrganizationID string              `json:"organization_id"`
	Email          string              `json:"email"`
	EmailVerified  bool                `json:"email_verified"`
	GivenName      string              `json:"given_name,omitempty"`
	FamilyName     string              `json:"family_name,omitempty"`
	DisplayName    string              `json:"display_name,omitempty"`
	Groups         []string            `json:"groups"`
	Role           string              `json:"role"`
	Status         string              `json:"status"`
	Attributes     map[string][]string `json:"attributes,omitempty"`
	CreatedBy      string              `json:"created_by"`
	CreatedAt      string              `json:"created_at"`
	UpdatedAt      string              `json:"updated_at,omitempty"`
	LastLoginAt    string              `json:"last_login_at,omitempty"`
	// SuspendedReason: "inactive" when the inactivity sweep suspended
	// the user (their next sign-in lifts it), else absent.
	SuspendedReason string `json:"suspended_reason,omitempty"`
}

func userOf(u store.User) userView {
	return userView{ID: u.ID, OrganizationID: u.OrganizationID, Email: u.Email, EmailVerified: u.EmailVerified,
		GivenName: u.GivenName, FamilyName: u.FamilyName, DisplayName: u.DisplayName, Groups: nonNil(u.Groups),
		Role: u.Role, Status: u.Status, Attributes: u.Attributes, CreatedBy: u.CreatedBy, CreatedAt: ts(u.CreatedAt),
		UpdatedAt: ts(u.UpdatedAt), LastLoginAt: ts(u.LastLoginAt), SuspendedReason: u.SuspendedReason}
}

type identityView struct {
	ConnectionID string `json:"connection_id"`
	ExternalID   string `json:"external_id"`
	UserID       string `json:"user_id"`
	LinkedBy     string `json:"linked_by"`
	FirstSeenAt  string `json:"first_seen_at,omitempty"`
	LastSeenAt   string `json:"last_seen_at,omitempty"`
}

type decisionView struct {
	LoginID      string          `json:"login_id"`
	ConnectionID string          `json:"connection_id"`
	ExternalID   string          `json:"external_id"`
	Outcome      string          `json:"outcome"`
	Reason       string          `json:"reason,omitempty"`
	UserID       string          `json:"user_id,omitempty"`
	DecidedAt    string          `json:"decided_at"`
	Result       json.RawMessage `json:"result,omitempty"`
}

func decisionOf(d store.Decision) decisionView {
	v := decisionView{LoginID: d.LoginID, ConnectionID: d.ConnectionID, ExternalID: d.ExternalID, Outcome: d.Outcome,
		Reason: d.Reason, UserID: d.UserID, DecidedAt: ts(d.DecidedAt)}
	if json.Valid(d.Result) {
		v.Result = d.Result
	}
	return v
}

type reviewView struct {
	ID            string `json:"id"`
	UserID        string `json:"user_id"`
	CurrentRole   string `json:"current_role"`
	RequestedRole string `json:"requested_role"`
	Status        string `json:"status"`
	LoginID       string `json:"login_id,omitempty"`
	CreatedAt     string `json:"created_at"`
	DecidedAt     string `json:"decided_at,omitempty"`
	DecidedBy     string `json:"decided_by,omitempty"`
	Reason        string `json:"reason,omitempty"`
}

func reviewOf(r store.RoleReview) reviewView {
	return reviewView{ID: r.ID, UserID: r.UserID, CurrentRole: r.CurrentRole, RequestedRole: r.RequestedRole, Status: r.Status,
		LoginID: r.LoginID, CreatedAt: ts(r.CreatedAt), DecidedAt: ts(r.DecidedAt), DecidedBy: r.DecidedBy, Reason: r.Reason}
}

type auditView struct {
	Seq            int64          `json:"seq"`
	OrganizationID string         `json:"organization_id"`
	ActorType      string         `json:"actor_type"`
	ActorID        string         `json:"actor_id"`
	ActorName      string         `json:"actor_name,omitempty"`
	Action         string         `json:"action"`
	Target         string         `json:"target"`
	Details        map[string]any `json:"details"`
	At             string         `json:"at"`
}

func auditOf(e store.AuditEntry) auditView {
	d := e.Details
	if d == nil {
		d = map[string]any{}
	}
	return auditView{Seq: e.Seq, OrganizationID: e.OrganizationID, ActorType: e.ActorType, ActorID: e.ActorID, ActorName: e.ActorName,
		Action: e.Action, Target: e.Target, Details: d, At: ts(e.At)}
}

type tokenView struct {
	ID             string `json:"id"`
	Name           string `json:"name"`
	OrganizationID string `json:"organization_id,omitempty"`
	Scope          string `json:"scope"`
	CreatedBy      string `json:"created_by"`
	CreatedAt      string `json:"created_at"`
	ExpiresAt      string `json:"expires_at"`
	RevokedAt      string `json:"revoked_at,omitempty"`
	LastUsedAt     string `json:"last_used_at,omitempty"`
}

func tokenOf(t store.Token) tokenView {
	return tokenView{ID: t.ID, Name: t.Name, OrganizationID: t.OrganizationID, Scope: t.Scope, CreatedBy: t.CreatedBy,
		CreatedAt: ts(t.CreatedAt), ExpiresAt: ts(t.ExpiresAt), RevokedAt: ts(t.RevokedAt), LastUsedAt: ts(t.LastUsedAt)}
}

func mapSlice[T, V any](in []T, f func(T) V) []V {
	out := make([]V, 0, len(in))
	for _, v := range in {
		out = append(out, f(v))
	}
	return out
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

type conflictView struct {
	UserID   string   `json:"user_id"`
	Field    string   `json:"field"`
	Source   string   `json:"source"`
	Rejected []string `json:"rejected"`
	Kept     []string `json:"kept"`
	Owner    string   `json:"owner"`
	LoginID  string   `json:"login_id,omitempty"`
	Actor    string   `json:"actor,omitempty"`
	Count    int      `json:"count"`
	FirstAt  string   `json:"first_at"`
	At       string   `json:"at"`
}

func conflictOf(c store.FieldConflict) conflictView {
	return conflictView{UserID: c.UserID, Field: c.Field, Source: c.Source, Rejected: nonNil(c.Rejected), Kept: nonNil(c.Kept),
		Owner: c.Owner, LoginID: c.LoginID, Actor: c.Actor, Count: c.Count, FirstAt: ts(c.FirstAt), At: ts(c.At)}
}
