package store

import (
	"context"
	"strings"
	"time"
)

// Who owns a field of an organisation's users (Organization.FieldOwners):
// which source may change it once the user exists.
const (
	// OwnerIdP: the IdP, through either channel — a sign-in (which
	// overwrites the field, as prefer-idp does) or SCIM.
	OwnerIdP = "idp"
	// OwnerSCIM: only SCIM; sign-ins do not change the field.
	OwnerSCIM = "scim"
	// OwnerApp: neither sign-ins nor SCIM; only admins and the
	// application change the field.
	OwnerApp = "app"
	// OwnerFirstLogin: set when the user is created (by their first
	// sign-in, SCIM or an admin), then never changed by sign-ins or SCIM.
	OwnerFirstLogin = "first-login-only"
)

// Owners lists the owners a field may have.
var Owners = []string{OwnerIdP, OwnerSCIM, OwnerApp, OwnerFirstLogin}

// The fields an owner may be given (FieldOwners keys). A custom attribute
// is FieldAttributePrefix and its name; FieldAttributesDefault owns every
// custom attribute not named.
const (
	FieldEmail             = "email"
	FieldGivenName         = "given_name"
	FieldFamilyName        = "family_name"
	FieldDisplayName       = "display_name"
	FieldGroups            = "groups"
	FieldRole              = "role"
	FieldAttributePrefix   = "attributes."
	FieldAttributesDefault = "attributes.*"
)

// OwnedFields are the fields, beside custom attributes, that an owner may
// be given.
var OwnedFields = []string{FieldEmail, FieldGivenName, FieldFamilyName, FieldDisplayName, FieldGroups, FieldRole}

// AttributeField is the field name of custom attribute name.
func AttributeField(name string) string { return FieldAttributePrefix + name }

// Sources of a change to a user's field (FieldConflict.Source).
const (
	SourceLogin = "login"
	SourceSCIM  = "scim"
)

// FieldOwner is the owner of field in the organisation: the one the
// organisations file gives it — for a custom attribute, its own or else
// FieldAttributesDefault's — or "" when it has none (the update policy
// then decides, as before owners).
func (o Organization) FieldOwner(field string) string {
	if v, ok := o.FieldOwners[field]; ok {
		return v
	}
	if strings.HasPrefix(field, FieldAttributePrefix) {
		return o.FieldOwners[FieldAttributesDefault]
	}
	return ""
}

// OwnsAttributes reports whether any custom attribute has an owner.
func (o Organization) OwnsAttributes() bool {
	for k := range o.FieldOwners {
		if strings.HasPrefix(k, FieldAttributePrefix) {
			return true
		}
	}
	return false
}

// MayChange reports whether source (SourceLogin or SourceSCIM) may change
// a field of an existing user that owner owns. An owner "" allows it
// (the update policy decides).
func MayChange(owner, source string) bool {
	switch owner {
	case "", OwnerIdP:
		return true
	case OwnerSCIM:
		return source == SourceSCIM
	}
	return false
}

// FieldConflict is a change of a user's field that the field's owner
// overruled: a sign-in or a SCIM write that wanted another value. One is
// kept per (user, field): the latest, with how often it happened.
type FieldConflict struct {
	OrganizationID string
	UserID         string
	Field          string // a FieldOwners key: email, ..., role, attributes.<name>
	Source         string // SourceLogin or SourceSCIM
	// Rejected is the value the source wanted, Kept the value the user
	// keeps; a single value is a list of one, none an empty list.
	Rejected []string
	Kept     []string
	Owner    string // the owner that overruled it
	// LoginID is the sign-in's login id (source login); Actor the SCIM
	// client's actor, "type:id" (source scim).
	LoginID string
	Actor   string
	// Count is how often a change of the field was overruled, FirstAt
	// when first, At when last; set by the store.
	Count   int
	FirstAt time.Time
	At      time.Time
}

// ConflictFilter selects an organisation's field conflicts, latest first.
type ConflictFilter struct {
	OrganizationID string
	UserID         string // "" for every user
	Field          string // "" for every field
	Cursor         string
	Limit          int
}

// ConflictPage is a page of field conflicts.
type ConflictPage struct {
	Conflicts []FieldConflict
	Next      string
}

// ConflictTx records and reads field conflicts in a transaction.
type ConflictTx interface {
	// RecordFieldConflicts records each conflict as the latest of its
	// (organisation, user, field): a new one counts 1, one recorded before
	// is replaced by c and counts one more (its FirstAt stays). At is the
	// transaction's time. ErrNotFound when the user is not the
	// organisation's.
	RecordFieldConflicts(ctx context.Context, cs ...FieldConflict) error
	// ListFieldConflicts lists an organisation's field conflicts, latest
	// first.
	ListFieldConflicts(ctx context.Context, f ConflictFilter) (ConflictPage, error)
}
