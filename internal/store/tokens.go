package store

import "time"

// Token scopes: what an API token may do.
const (
	ScopeRead  = "read"  // read only
	ScopeWrite = "write" // read and change
)

// Token is an API token of an operator or of automation (table
// api_tokens). Only a hash of its secret is kept; the secret itself is
// shown once, when the token is created (internal/admin/token).
type Token struct {
	ID   string // a UUID, set by the caller
	Name string
	// OrganizationID is the one organisation the token acts on; "" for a
	// global token, which acts on every organisation.
	OrganizationID string
	Scope          string // ScopeRead or ScopeWrite
	SecretHash     []byte
	CreatedBy      string // an actor, "type:id"
	// CreatedAt is set by the store when zero. ExpiresAt is required:
	// every token expires.
	CreatedAt time.Time
	ExpiresAt time.Time
	// RevokedAt and LastUsedAt are zero until the token is revoked, or
	// used.
	RevokedAt  time.Time
	LastUsedAt time.Time
}
