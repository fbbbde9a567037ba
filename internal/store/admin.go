package store

import (
	"encoding/base64"
	"fmt"
	"strings"
	"time"
)

// What admins read and change (internal/admin). Every change is made in a
// Tx with its events and an AuditEntry; the lists are read in one too.

// Role review statuses beyond pending, approved and denied.
const ReviewExpired = "expired"

// Actor types of an AuditEntry.
const (
	ActorUser   = "user"   // an admin signed in through the organisation's SSO
	ActorToken  = "token"  // an API token
	ActorSystem = "system" // jitprov itself, e.g. a review expiring
)

// AuditEntry is one admin action: who did what to what.
type AuditEntry struct {
	Seq            int64 // assigned by the store, increasing
	OrganizationID string
	ActorType      string
	ActorID        string
	ActorName      string
	Action         string // e.g. "user.suspend"
	Target         string // e.g. the user id
	Details        map[string]any
	At             time.Time
}

// Page limits.
const (
	DefaultPageSize = 50
	MaxPageSize     = 500
)

// PageSize is limit bounded to 1..MaxPageSize, DefaultPageSize when 0.
func PageSize(limit int) int {
	switch {
	case limit <= 0:
		return DefaultPageSize
	case limit > MaxPageSize:
		return MaxPageSize
	}
	return limit
}

// UserFilter selects an organisation's users, newest first.
type UserFilter struct {
	OrganizationID string
	// Search matches a case-insensitive substring of the email or a name.
	Search       string
	Status       string
	Role         string
	ConnectionID string // users with an identity through it
	CreatedBy    string
	CreatedSince time.Time
	Cursor       string // Next of the previous page
	Limit        int
}

// UserPage is a page of users and the cursor of the next ("" at the end).
type UserPage struct {
	Users []User
	Next  string
}

// ReviewFilter selects an organisation's role reviews: pending first, then
// the rest newest first.
type ReviewFilter struct {
	OrganizationID string
	Status         string // "" for all
	UserID         string
	Limit          int
}

// DecisionFilter selects an organisation's provisioning decisions, newest
// first.
type DecisionFilter struct {
	OrganizationID string
	Outcome        string
	Reason         string
	ConnectionID   string
	ExternalID     string
	UserID         string
	Since          time.Time
	Cursor         string
	Limit          int
}

// DecisionPage is a page of decisions.
type DecisionPage struct {
	Decisions []Decision
	Next      string
}

// AuditFilter selects admin actions, newest first.
type AuditFilter struct {
	OrganizationID string // "" for every organisation
	Target         string
	Cursor         string
	Limit          int
}

// AuditPage is a page of admin actions.
type AuditPage struct {
	Entries []AuditEntry
	Next    string
}

// TimeCursor encodes a (time, id) position in a list ordered by both,
// descending.
func TimeCursor(at time.Time, id string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(at.UTC().Format(time.RFC3339Nano) + "|" + id))
}

// ParseTimeCursor decodes TimeCursor; ok false for "" (the first page).
func ParseTimeCursor(c string) (at time.Time, id string, ok bool, err error) {
	if c == "" {
		return time.Time{}, "", false, nil
	}
	raw, err := base64.RawURLEncoding.DecodeString(c)
	if err == nil {
		ts, rest, found := strings.Cut(string(raw), "|")
		if found {
			at, err = time.Parse(time.RFC3339Nano, ts)
			if err == nil {
				return at, rest, true, nil
			}
		}
	}
	return time.Time{}, "", false, fmt.Errorf("%w: the cursor %q is not one this list gave", ErrInvalidCursor, c)
}

// ErrInvalidCursor: a page cursor that no list gave.
var ErrInvalidCursor = fmt.Errorf("store: invalid cursor")

// LikePattern is s as a LIKE pattern matching any text containing it, with
// \ escaping LIKE's wildcards (ESCAPE '\').
func LikePattern(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)
	return "%" + r.Replace(strings.ToLower(s)) + "%"
}

// DayCount is how many decisions of one outcome an organisation made on
// one day (UTC): the dashboard's chart of first logins and refusals.
type DayCount struct {
	Day     time.Time // midnight UTC
	Outcome string
	Count   int
}
