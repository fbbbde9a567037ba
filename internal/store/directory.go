package store

import (
	"context"
	"time"
)

// CreatedBySCIM marks a user a SCIM client created (User.CreatedBy).
const CreatedBySCIM = "scim"

// ScopeSCIM is the scope of an organisation's SCIM token: it reaches the
// SCIM endpoints of its organisation, nothing else.
const ScopeSCIM = "scim"

// What SCIM knows of a user (User.SCIM).
type SCIMUser struct {
	// UserName and ExternalID are the SCIM client's userName and
	// externalId ("" until a SCIM client set them).
	UserName   string
	ExternalID string
	// Managed is set once a SCIM client created or wrote the user: from
	// then on the organisation's directory keeps them (JIT expiry leaves
	// them alone).
	Managed bool
	// Deleted is set once a SCIM DELETE deprovisioned the user: SCIM no
	// longer sees them.
	Deleted bool
	// Deactivated is set while the user is deprovisioned because SCIM said
	// so (active: false, DELETE): SCIM may bring back only those. An
	// admin's status change (SetUserStatus) clears it.
	Deactivated bool
}

// Directory lookup keys (DirectoryKey.Attr): the SCIM attributes a filter
// may compare with eq.
const (
	DirectoryByID         = "id"
	DirectoryByUserName   = "userName"   // SCIM userName, else the email; case-insensitive
	DirectoryByExternalID = "externalId" // SCIM externalId, case-exact
	DirectoryByEmail      = "email"      // case-insensitive
	DirectoryByIdentity   = "identity"   // an identity's external id through DirectoryKey.Connection
)

// DirectoryKey finds the users SCIM sees with Attr equal to Value.
type DirectoryKey struct {
	Attr       string
	Value      string
	Connection string // for DirectoryByIdentity
	// All finds every user, those SCIM does not see included (deleted by
	// SCIM, held sign-ups).
	All bool
}

// Group is a SCIM group of an organisation.
type Group struct {
	ID             string // a UUID, set by the caller
	OrganizationID string
	DisplayName    string
	ExternalID     string
	CreatedAt      time.Time
	UpdatedAt      time.Time
}

// Directory lookup keys of groups (GroupKey.Attr).
const (
	GroupByID          = "id"
	GroupByDisplayName = "displayName" // case-insensitive
	GroupByExternalID  = "externalId"
)

// GroupKey finds the groups with Attr equal to Value.
type GroupKey struct {
	Attr  string
	Value string
}

// DirectoryTx is what SCIM does in a transaction: users and groups as a
// provisioning client sees them. Users SCIM sees are every user of the
// organisation but those a SCIM DELETE removed (SCIM.Deleted) and held
// sign-ups.
type DirectoryTx interface {
	// DirectoryUsers finds the users SCIM sees with key, oldest first.
	DirectoryUsers(ctx context.Context, orgID string, key DirectoryKey) ([]User, error)
	// DirectoryPage is a page of the users SCIM sees, oldest first, from
	// offset (0-based), and how many there are in all.
	DirectoryPage(ctx context.Context, orgID string, offset, limit int) ([]User, int, error)
	// CreateDirectoryUser inserts u (u.ID set by the caller) with its SCIM
	// fields and no identity, never signed in; ErrConflict when its email
	// or SCIM userName is taken.
	CreateDirectoryUser(ctx context.Context, u User) (User, error)
	// WriteDirectoryUser writes u's profile (email, names, groups,
	// attributes, email_verified), role and role source (the stored one
	// when "") and SCIM fields, not its status or last login; ErrConflict
	// when the email or userName is taken.
	WriteDirectoryUser(ctx context.Context, u User) (User, error)

	CreateGroup(ctx context.Context, g Group) (Group, error)
	// Groups finds the groups of orgID with key, by display name.
	Groups(ctx context.Context, orgID string, key GroupKey) ([]Group, error)
	// GroupPage is a page of the organisation's groups by display name,
	// and how many there are in all.
	GroupPage(ctx context.Context, orgID string, offset, limit int) ([]Group, int, error)
	// LockGroup finds and locks a group of orgID.
	LockGroup(ctx context.Context, orgID, id string) (Group, error)
	// UpdateGroup writes a group's display name and external id.
	UpdateGroup(ctx context.Context, g Group) (Group, error)
	// DeleteGroup removes a group and its memberships.
	DeleteGroup(ctx context.Context, orgID, id string) error
	// GroupMembers lists the user ids of a group's members.
	GroupMembers(ctx context.Context, groupID string) ([]string, error)
	// GroupMemberUsers lists the members SCIM sees, by id, in one query.
	GroupMemberUsers(ctx context.Context, groupID string) ([]User, error)
	// AddGroupMembers and RemoveGroupMembers change a group's members and
	// return the user ids whose membership changed.
	AddGroupMembers(ctx context.Context, groupID string, userIDs []string) ([]string, error)
	RemoveGroupMembers(ctx context.Context, groupID string, userIDs []string) ([]string, error)
	// UserGroups lists the groups userID is a member of, by display name.
	UserGroups(ctx context.Context, userID string) ([]Group, error)
}
