package client

import (
	"encoding/json"
	"time"

	"github.com/jitprov/jitprov/events"
)

// The types below are the admin API's answers (internal/admin/api's
// openapi.yaml), field for field. Times the API leaves out are zero and
// left out again when re-encoded (omitzero).

// Organization is an organisation with its seats and policies;
// Connections only in Organization's answer.
type Organization struct {
	ID                 string   `json:"id"`
	Name               string   `json:"name"`
	MaxSeats           int      `json:"max_seats"`
	SeatsUsed          int      `json:"seats_used"`
	Roles              []string `json:"roles"`
	DefaultRole        string   `json:"default_role"`
	JITRoleCeiling     string   `json:"jit_role_ceiling"`
	AdminRole          string   `json:"admin_role"`
	UpdatePolicy       string   `json:"update_policy"`
	LinkByEmail        string   `json:"link_by_email"`
	VerifiedDomains    []string `json:"verified_domains"`
	SeatWarningPercent int      `json:"seat_warning_percent"`
	LandingURL         string   `json:"landing_url,omitempty"`
	// FieldOwners are each owned field's owner (field_owners), custom
	// attributes as attributes.<name>.
	FieldOwners map[string]string `json:"field_owners,omitempty"`
	Connections []Connection      `json:"connections,omitempty"`
}

// Connection is how an organisation's people sign in.
type Connection struct {
	ID          string `json:"id"`
	Protocol    string `json:"protocol"`
	DisplayName string `json:"display_name,omitempty"`
	Replaces    string `json:"replaces,omitempty"`
}

// ConnectionInfo is a connection with its IdP's signing certificates.
type ConnectionInfo struct {
	Connection
	Certificates []Certificate `json:"certificates"`
	// CertificateError says why the IdP's certificates could not be read.
	CertificateError string `json:"certificate_error,omitempty"`
}

// Certificate is an IdP signing certificate and its expiry.
type Certificate struct {
	Subject     string    `json:"subject"`
	Fingerprint string    `json:"fingerprint_sha256"`
	NotAfter    time.Time `json:"not_after"`
	DaysLeft    int       `json:"days_left"`
	Expired     bool      `json:"expired"`
	// Warning: it expires within 30 days, or has.
	Warning bool `json:"warning"`
}

// User is a person in an organisation.
type User struct {
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
	CreatedAt      time.Time           `json:"created_at,omitzero"`
	UpdatedAt      time.Time           `json:"updated_at,omitzero"`
	LastLoginAt    time.Time           `json:"last_login_at,omitzero"`
	// SuspendedReason is "inactive" for a suspension by the inactivity
	// sweep, "" otherwise.
	SuspendedReason string `json:"suspended_reason,omitempty"`
}

// UserPage is a page of users; Next is the cursor of the next page, ""
// at the end.
type UserPage struct {
	Users []User `json:"users"`
	Next  string `json:"next"`
}

// Identity is an IdP account linked to a user.
type Identity struct {
	ConnectionID string    `json:"connection_id"`
	ExternalID   string    `json:"external_id"`
	UserID       string    `json:"user_id"`
	LinkedBy     string    `json:"linked_by"`
	FirstSeenAt  time.Time `json:"first_seen_at,omitzero"`
	LastSeenAt   time.Time `json:"last_seen_at,omitzero"`
}

// UserDetail is a user with their identities, the decisions and reviews
// about them and the admin actions on them.
type UserDetail struct {
	User       User         `json:"user"`
	Identities []Identity   `json:"identities"`
	Decisions  []Decision   `json:"decisions"`
	Reviews    []Review     `json:"reviews"`
	Audit      []AuditEntry `json:"audit"`
	// Conflicts are the changes of the user's fields their owners
	// overruled, latest first.
	Conflicts []FieldConflict `json:"conflicts"`
}

// FieldConflict is a change of a user's field that its owner (the
// organisation's field_owners) overruled: the latest of its user and
// field.
type FieldConflict struct {
	UserID   string    `json:"user_id"`
	Field    string    `json:"field"`
	Source   string    `json:"source"` // login or scim
	Rejected []string  `json:"rejected"`
	Kept     []string  `json:"kept"`
	Owner    string    `json:"owner"`
	LoginID  string    `json:"login_id,omitempty"`
	Actor    string    `json:"actor,omitempty"`
	Count    int       `json:"count"`
	FirstAt  time.Time `json:"first_at,omitzero"`
	At       time.Time `json:"at,omitzero"`
}

// ConflictPage is a page of field conflicts.
type ConflictPage struct {
	Conflicts []FieldConflict `json:"conflicts"`
	Next      string          `json:"next"`
}

// UserResult is a user after a change, and whether the request changed
// them (a repeated request does not).
type UserResult struct {
	User    User `json:"user"`
	Changed bool `json:"changed"`
}

// Decision is one provisioning decision: the provisioning log.
type Decision struct {
	LoginID      string          `json:"login_id"`
	ConnectionID string          `json:"connection_id"`
	ExternalID   string          `json:"external_id"`
	Outcome      string          `json:"outcome"`
	Reason       string          `json:"reason,omitempty"`
	UserID       string          `json:"user_id,omitempty"`
	DecidedAt    time.Time       `json:"decided_at,omitzero"`
	Result       json.RawMessage `json:"result,omitempty"`
}

// DecisionPage is a page of decisions.
type DecisionPage struct {
	Decisions []Decision `json:"decisions"`
	Next      string     `json:"next"`
}

// Review is a role review.
type Review struct {
	ID            string    `json:"id"`
	UserID        string    `json:"user_id"`
	CurrentRole   string    `json:"current_role"`
	RequestedRole string    `json:"requested_role"`
	Status        string    `json:"status"`
	LoginID       string    `json:"login_id,omitempty"`
	CreatedAt     time.Time `json:"created_at,omitzero"`
	DecidedAt     time.Time `json:"decided_at,omitzero"`
	DecidedBy     string    `json:"decided_by,omitempty"`
	Reason        string    `json:"reason,omitempty"`
}

// ReviewResult is a decided review and its user.
type ReviewResult struct {
	Review Review `json:"review"`
	User   User   `json:"user"`
}

// AuditEntry is one admin action.
type AuditEntry struct {
	Seq            int64          `json:"seq"`
	OrganizationID string         `json:"organization_id"`
	ActorType      string         `json:"actor_type"`
	ActorID        string         `json:"actor_id"`
	ActorName      string         `json:"actor_name,omitempty"`
	Action         string         `json:"action"`
	Target         string         `json:"target"`
	Details        map[string]any `json:"details"`
	At             time.Time      `json:"at,omitzero"`
}

// AuditPage is a page of the admin audit.
type AuditPage struct {
	Entries []AuditEntry `json:"entries"`
	Next    string       `json:"next"`
}

// DryRunResult is the decision JIT would take for an identity now. From a
// SAML response or an ID token, it also carries the identity they map to,
// what the mapping dropped or ignored, and the caveat that nothing was
// validated.
type DryRunResult struct {
	Result   events.ProvisioningResult `json:"result"`
	Identity *events.Identity          `json:"identity,omitempty"`
	Warnings []string                  `json:"warnings,omitempty"`
	Caveat   string                    `json:"caveat,omitempty"`
}

// Change is what applying an organisations file does to one organisation
// or connection: Action is create, update (Fields says what), unchanged,
// or kept (in the store, not in the file: apply never deletes).
type Change struct {
	Kind         string   `json:"kind"`
	Organization string   `json:"organization"`
	Connection   string   `json:"connection,omitempty"`
	Action       string   `json:"action"`
	Fields       []string `json:"fields,omitempty"`
}

// ApplyResult is the answer of an apply.
type ApplyResult struct {
	DryRun  bool     `json:"dry_run"`
	Changes []Change `json:"changes"`
}

// Token is an API token, never its secret.
type Token struct {
	ID             string    `json:"id"`
	Name           string    `json:"name"`
	OrganizationID string    `json:"organization_id,omitempty"`
	Scope          string    `json:"scope"`
	CreatedBy      string    `json:"created_by"`
	CreatedAt      time.Time `json:"created_at,omitzero"`
	ExpiresAt      time.Time `json:"expires_at,omitzero"`
	RevokedAt      time.Time `json:"revoked_at,omitzero"`
	LastUsedAt     time.Time `json:"last_used_at,omitzero"`
}

// NewToken is a token to create. Organization "" makes a global token;
// ExpiresIn (such as 720h) or ExpiresAt, neither for the server's default.
type NewToken struct {
	Name         string `json:"name"`
	Organization string `json:"organization,omitempty"`
	Scope        string `json:"scope"`
	ExpiresAt    string `json:"expires_at,omitempty"`
	ExpiresIn    string `json:"expires_in,omitempty"`
}

// CreatedToken is a new token and its secret, shown this once.
type CreatedToken struct {
	Token  Token  `json:"token"`
	Secret string `json:"secret"`
}

// TokenResult is a token after a revocation, and whether it changed.
type TokenResult struct {
	Token   Token `json:"token"`
	Changed bool  `json:"changed"`
}
