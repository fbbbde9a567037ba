// Package store defines what jitprov keeps: organisations and their
// connections, users, role reviews, the outbox of events to publish and the
// audit log of provisioning decisions. Backends implement Store; one
// conformance suite (storetest) holds every backend to the same behaviour.
package store

import (
	"context"
	"errors"
	"time"
)

// Sentinel errors. Backends wrap them; callers match with errors.Is.
var (
	// ErrNotFound: no such record.
	ErrNotFound = errors.New("store: not found")
	// ErrConflict: a uniqueness constraint refused the write (a duplicate
	// user, email or decision). Inside a decision this usually means a
	// concurrent transaction won the race: retry the whole transaction.
	ErrConflict = errors.New("store: conflict")
	// ErrSeatsExhausted: the organisation has no seat left.
	ErrSeatsExhausted = errors.New("store: seats exhausted")
	// ErrUnavailable: the backend cannot be reached or failed transiently;
	// the operation may succeed later.
	ErrUnavailable = errors.New("store: unavailable")
	// ErrInvalidData: the database refused a value (a NUL character, a
	// byte sequence invalid in its encoding, a number out of range): the
	// same write fails every time.
	ErrInvalidData = errors.New("store: value refused by the database")
	// ErrSerialization (always with ErrConflict): the database broke a
	// deadlock or a serialization conflict by rolling this transaction
	// back; running the whole transaction again is the cure.
	ErrSerialization = errors.New("store: serialization failure")
	// ErrContended (always with ErrUnavailable): a lock was not granted in
	// time — another session holds the row, perhaps a stuck client; the
	// operation may succeed later.
	ErrContended = errors.New("store: contended")
)

// UpdatePolicy decides whose data wins when a returning identity's claims
// differ from the stored user.
type UpdatePolicy string

// Update policies.
const (
	// PreferIdP overwrites mapped attributes with the IdP's values.
	PreferIdP UpdatePolicy = "prefer-idp"
	// PreferApp only fills attributes that are empty in the application.
	PreferApp UpdatePolicy = "prefer-app"
)

// LinkPolicy decides whether a login may be linked to an existing user found
// by email.
type LinkPolicy string

// Link policies.
const (
	// LinkNever never links by email.
	LinkNever LinkPolicy = "never"
	// LinkVerifiedDomains links by email when the IdP vouches for the email
	// and its domain is one of the organisation's verified domains.
	LinkVerifiedDomains LinkPolicy = "verified-domains"
)

// Organization is a tenant: a seat limit, its roles and its JIT policies.
type Organization struct {
	ID        string
	Name      string
	MaxSeats  int
	SeatsUsed int
	// Roles are ordered from least to most privileged; the last one is the
	// organisation admin, which JIT never grants.
	Roles           []string
	DefaultRole     string
	JITRoleCeiling  string
	UpdatePolicy    UpdatePolicy
	LinkByEmail     LinkPolicy
	VerifiedDomains []string
	// SeatWarningPercent is the share of MaxSeats (0 to 100) whose taking
	// warns the admins that seats run out; 0 warns never.
	SeatWarningPercent int
	// LandingURL is where a person lands after signing in without a
	// return_to ("" for the edge's own landing page).
	LandingURL string
	// InitialAdmins are emails (lower-case) whose first sign-in, with an
	// email the IdP vouches for, gets the admin role: how an organisation
	// gets its first admin.
	InitialAdmins []string
	// NewPeople is what becomes of a new person JIT would create:
	// NewPeopleActive (a user, a seat) or NewPeopleHold (a held user, no
	// seat, until an admin approves). "" reads as NewPeopleActive.
	NewPeople string
	// WhenFull is what becomes of a new person when no seat is free:
	// WhenFullRefuse (turned away) or WhenFullHold (held). "" reads as
	// WhenFullRefuse.
	WhenFull string
	// InactiveAfter is how long a person created by JIT, and not managed
	// by SCIM, may go without signing in before the provisioner's sweep
	// suspends them (Tx.SuspendInactive); 0 suspends nobody. Stored to
	// the second.
	InactiveAfter time.Duration
	// FieldOwners gives fields of the users an owner (OwnerIdP, ...):
	// who may change the field once the user exists. Keys are
	// OwnedFields, AttributeField(name) and FieldAttributesDefault; a
	// field without one follows UpdatePolicy. Nil or empty for none.
	FieldOwners map[string]string
}

// An organisation's NewPeople and WhenFull.
const (
	NewPeopleActive = "active"
	NewPeopleHold   = "hold"
	WhenFullRefuse  = "refuse"
	WhenFullHold    = "hold"
)

// HoldsNewPeople reports whether every new person is held for approval.
func (o Organization) HoldsNewPeople() bool { return o.NewPeople == NewPeopleHold }

// HoldsWhenFull reports whether a new person finding no seat is held
// rather than turned away.
func (o Organization) HoldsWhenFull() bool { return o.WhenFull == WhenFullHold }

func (o Organization) newPeople() string {
	if o.NewPeople == "" {
		return NewPeopleActive
	}
	return o.NewPeople
}

func (o Organization) whenFull() string {
	if o.WhenFull == "" {
		return WhenFullRefuse
	}
	return o.WhenFull
}

// HoldSettings are NewPeople and WhenFull with their defaults filled, as
// the stores write them.
func (o Organization) HoldSettings() (newPeople, whenFull string) { return o.newPeople(), o.whenFull() }

// AdminRole is the organisation's most privileged role, the last of Roles.
func (o Organization) AdminRole() string {
	if len(o.Roles) == 0 {
		return ""
	}
	return o.Roles[len(o.Roles)-1]
}

// Connection is an organisation's link to one identity provider. Its IdP
// settings are opaque to the store.
type Connection struct {
	OrganizationID string
	ID             string
	Protocol       string
	Settings       []byte // JSON
	// DisplayName is what people see in the sign-in chooser ("" for the id).
	DisplayName string
	// Replaces names the connection of the same organisation whose people
	// this one takes over (an IdP migration): its logins link by email to
	// the users with an identity through Replaces. "" for none.
	Replaces string
}

// User statuses.
const (
	StatusActive        = "active"
	StatusSuspended     = "suspended"
	StatusDeprovisioned = "deprovisioned"
	// StatusHeld is a new person held for an admin's approval (the
	// organisation's new_people or when_full): their identity is linked,
	// they take no seat and are never signed in until approved (then
	// active, with a seat) or denied (then deprovisioned).
	StatusHeld = "held"
)

// Creators of users.
const (
	CreatedByJIT   = "jit"
	CreatedByAdmin = "admin"
	CreatedByApp   = "app"
)

// Where a user's role came from (User.RoleSource): who may take it away.
const (
	// RoleSourceIdP: the role is what the IdP's claims gave (a roles
	// claim, a group rule, a constant role, or none: the default role). A
	// later login that no longer carries it takes it away, down to what
	// that login's claims give.
	RoleSourceIdP = "idp"
	// RoleSourceAdmin: an admin granted the role (a role change, an
	// approved role review), the organisations file's initial_admins did,
	// or the user was created by an admin or the application. Logins never
	// take it away; the IdP may still raise the user above it.
	RoleSourceAdmin = "admin"
)

// DefaultRoleSource is the source of a new user's role when the creator
// names none: RoleSourceIdP for a user JIT or SCIM (the IdP) created,
// RoleSourceAdmin for one an admin or the application created.
func DefaultRoleSource(createdBy string) string {
	if createdBy == CreatedByJIT || createdBy == CreatedBySCIM {
		return RoleSourceIdP
	}
	return RoleSourceAdmin
}

// User is a person's account in an organisation. It has zero or more
// Identities: a user created by an admin or the application has none until
// its first login links one.
type User struct {
	ID             string
	OrganizationID string
	Email          string
	EmailVerified  bool // the IdP vouched for Email
	GivenName      string
	FamilyName     string
	DisplayName    string
	Groups         []string
	Role           string
	// RoleSource is where Role came from: RoleSourceIdP or
	// RoleSourceAdmin. CreateUser takes "" as DefaultRoleSource(CreatedBy);
	// UpdateUser keeps the stored source when it is "".
	RoleSource  string
	Status      string
	Attributes  map[string][]string
	CreatedBy   string
	CreatedAt   time.Time
	UpdatedAt   time.Time
	LastLoginAt time.Time
	// SuspendedReason says why a suspended user is: "" (an admin, whose
	// suspension only an admin lifts) or SuspendedInactive (the
	// inactivity sweep, lifted by the person's next sign-in when a seat is
	// free). It is "" whenever Status is not suspended.
	SuspendedReason string
	// SCIM is what a SCIM client knows of the user (store/directory.go);
	// SCIM.Managed: the user's lifecycle follows their IdP through SCIM,
	// and the inactivity sweep leaves them alone.
	SCIM SCIMUser
}

// SuspendedInactive is the SuspendedReason of a user the inactivity sweep
// suspended.
const SuspendedInactive = "inactive"

// MaxInactivePerSweep bounds the users one call of Tx.SuspendInactive
// suspends.
const MaxInactivePerSweep = 1000

// How an identity came to its user (Identity.LinkedBy).
const (
	// LinkedByCreated: the user was created by this identity's first login.
	LinkedByCreated = "created"
	// LinkedByEmail: linked by an IdP-verified email in a verified domain,
	// under the organisation's link policy.
	LinkedByEmail = "email"
	// LinkedByReplaces: linked by email through a connection that replaces
	// the one the user signed in through before.
	LinkedByReplaces = "replaces"
	// LinkedByAdmin: linked by an admin.
	LinkedByAdmin = "admin"
	// LinkedBySCIM: linked by a SCIM client creating or adopting the user,
	// ahead of the person's first sign-in through the connection.
	LinkedBySCIM = "scim"
)

// Identity is one IdP identity of a user: the person as one connection
// knows them. It is unique per (organisation, connection, external id);
// a user may have several, through several connections.
type Identity struct {
	OrganizationID string
	ConnectionID   string
	ExternalID     string
	UserID         string
	LinkedBy       string
	FirstSeenAt    time.Time
	LastSeenAt     time.Time
}

// Login is one sign-in of a known identity, recorded after the fact.
type Login struct {
	OrganizationID string
	ConnectionID   string
	ExternalID     string
	UserID         string
	At             time.Time
}

// Role review statuses.
const (
	ReviewPending  = "pending"
	ReviewApproved = "approved"
	ReviewDenied   = "denied"
)

// RoleReview is a claimed role above the JIT ceiling, waiting for an admin.
type RoleReview struct {
	ID             string
	OrganizationID string
	UserID         string
	CurrentRole    string
	RequestedRole  string
	Status         string
	LoginID        string
	CreatedAt      time.Time
	// DecidedAt, DecidedBy (an actor, "type:id") and Reason are set once
	// the review is no longer pending.
	DecidedAt time.Time
	DecidedBy string
	Reason    string
}

// OutboxMessage is an event rendered for NATS, written in the transaction
// that decided it and published later by the outbox relay.
type OutboxMessage struct {
	Seq     int64  // assigned by the store, increasing in insert order
	EventID string // the CloudEvent id, used as Nats-Msg-Id
	Subject string
	Header  map[string][]string
	Data    []byte
}

// OutboxBacklog is what the outbox relay has yet to publish.
type OutboxBacklog struct {
	Unsent int64     // messages not sent yet
	Oldest time.Time // when the oldest unsent message was written; zero when none
}

// Decision is the audit record of one provisioning decision, keyed by the
// login event's id. It also makes decisions idempotent: a redelivered login
// finds its decision and gets the same answer.
type Decision struct {
	LoginID        string
	OrganizationID string
	ConnectionID   string
	ExternalID     string
	Outcome        string
	Reason         string
	UserID         string
	Result         []byte // the provisioning.result data, JSON
	DecidedAt      time.Time
}

// Store is a backend.
type Store interface {
	// InTx runs fn in one transaction, committed when fn returns nil and
	// rolled back otherwise. fn may run again only if the caller retries.
	InTx(ctx context.Context, fn func(ctx context.Context, tx Tx) error) error
	// ApplyOrganizations creates or updates organisations and their
	// connections in one transaction. Seats already used are kept.
	ApplyOrganizations(ctx context.Context, orgs []Organization, conns []Connection) error
	// RelayOutbox hands up to limit unsent outbox messages, in Seq order, to
	// publish, and marks those publish returns as sent, all while holding the
	// outbox exclusively: concurrent relays never hold the same messages.
	// It returns how many were marked sent; 0 with a nil error means
	// nothing was pending or another relay holds the outbox.
	RelayOutbox(ctx context.Context, limit int, publish func(context.Context, []OutboxMessage) (sent int, err error)) (int, error)
	// ConnectionsByDomain lists the connections of the organisations that
	// verified domain (lower-case), for home-realm discovery.
	ConnectionsByDomain(ctx context.Context, domain string) ([]Connection, error)
	// Organizations lists every organisation, ordered by id: seat gauges.
	Organizations(ctx context.Context) ([]Organization, error)
	// Connections lists every organisation's connections of protocol
	// ("saml", "oidc"; "" for all), ordered by organisation and id: the
	// edge's daily IdP certificate check.
	Connections(ctx context.Context, protocol string) ([]Connection, error)
	// RecordLogins sets each login's user's last login, and its
	// identity's last sighting where the identity is still the user's, to
	// its At, unless a later one is recorded already (of several logins of
	// one user, the latest counts), in one transaction. It returns the
	// indexes, in logins, of those whose user is not in the organisation
	// (recorded nothing); an error records nothing.
	RecordLogins(ctx context.Context, logins []Login) (unknown []int, err error)
	// OrganizationAdmins lists the active users of orgID holding its admin
	// role (Organization.AdminRole), ordered by email; ErrNotFound when the
	// organisation does not exist.
	OrganizationAdmins(ctx context.Context, orgID string) ([]User, error)
	// Decision reads the decision of login loginID (outside a decision's
	// transaction): ErrNotFound until it is committed. The edge's waiting
	// page asks it, so that a person whose account exists is never left
	// waiting on a record that was not written.
	Decision(ctx context.Context, loginID string) (Decision, error)
	// User reads user userID of orgID as it is now (outside a
	// transaction): ErrNotFound when there is none. The edge's waiting
	// page of a held sign-up asks it, to notice an admin's approval or
	// denial without a new sign-in.
	User(ctx context.Context, orgID, userID string) (User, error)
	// PruneOutbox deletes messages sent longer ago than age.
	PruneOutbox(ctx context.Context, age time.Duration) (int64, error)
	// OutboxBacklog counts the unsent outbox messages and reads when the
	// oldest of them was written, in one query on the index of unsent
	// rows: the relay's backlog gauges.
	OutboxBacklog(ctx context.Context) (OutboxBacklog, error)
	// Ping checks that the backend answers.
	Ping(ctx context.Context) error
	Close()
}

// Tx is the work a provisioning decision does in one transaction.
type Tx interface {
	Decision(ctx context.Context, loginID string) (Decision, error)
	RecordDecision(ctx context.Context, d Decision) error
	Organization(ctx context.Context, id string) (Organization, error)
	Connection(ctx context.Context, orgID, id string) (Connection, error)
	// Connections lists the organisation's connections, ordered by id.
	Connections(ctx context.Context, orgID string) ([]Connection, error)
	// UserByIdentity (the user an identity is linked to) and UserByEmail
	// lock the user they find until the transaction ends, so concurrent
	// logins of one person update it in turn rather than overwriting each
	// other.
	UserByIdentity(ctx context.Context, orgID, connID, externalID string) (User, error)
	UserByEmail(ctx context.Context, orgID, email string) (User, error)
	// Identities lists the identities of userID, oldest first.
	Identities(ctx context.Context, userID string) ([]Identity, error)
	// LinkIdentity links id to id.UserID; its first and last sighting are
	// now. ErrConflict when the identity is linked already (to anyone),
	// ErrNotFound when the user or the connection does not exist.
	LinkIdentity(ctx context.Context, id Identity) (Identity, error)
	// UnlinkIdentity removes an identity from its user and returns it;
	// ErrNotFound when it is linked to nobody. The user and its seat stay.
	UnlinkIdentity(ctx context.Context, orgID, connID, externalID string) (Identity, error)
	// SeeIdentity records that the identity signed in now: its last
	// sighting, and its user's last login (neither moves back).
	SeeIdentity(ctx context.Context, orgID, connID, externalID string) error
	// TakeSeat atomically takes one seat of the organisation, or fails with
	// ErrSeatsExhausted. It returns the organisation as updated.
	TakeSeat(ctx context.Context, orgID string) (Organization, error)
	// CreateUser inserts u (u.ID set by the caller, SCIM.Managed kept),
	// with no identity; ErrConflict when the email is taken. u.RoleSource
	// "" is DefaultRoleSource(u.CreatedBy).
	CreateUser(ctx context.Context, u User) (User, error)
	// UpdateUser writes u's mutable fields (RoleSource only when not "");
	// ErrConflict when the new email is taken.
	UpdateUser(ctx context.Context, u User) (User, error)
	// PendingRoleReview finds the pending review of userID for role.
	PendingRoleReview(ctx context.Context, userID, role string) (RoleReview, error)
	CreateRoleReview(ctx context.Context, r RoleReview) (RoleReview, error)
	AppendOutbox(ctx context.Context, msgs ...OutboxMessage) error
	// LookupLogins reads, for a group of logins of organisation orgID, the
	// organisation, its connections and each login's stored decision and
	// users by identity and by email (store/batch.go), locking nothing but
	// — when lockOrganization — the organisation's row, first.
	LookupLogins(ctx context.Context, orgID string, lockOrganization bool, logins []LoginKey) (GroupLookup, error)
	// WriteGroup does w's writes in order, the seat reservation last, and
	// returns the organisation as the reservation left it (the zero
	// Organization when it takes no seat). ErrConflict when a user, email,
	// identity, event or decision exists already; ErrSeatsExhausted when
	// the reservation does not hold (the other writes are done: roll the
	// transaction back).
	WriteGroup(ctx context.Context, w GroupWrites) (Organization, error)

	// What SCIM clients do (store/directory.go).
	DirectoryTx
	// Changes of users' fields their owners overruled (store/owners.go).
	ConflictTx

	// What admins do (store/admin.go).

	// UserByID finds and locks a user of orgID.
	UserByID(ctx context.Context, orgID, userID string) (User, error)
	// SetUserStatus and SetUserRole change one field of a user of orgID
	// (and its updated_at), nothing else; seats are the caller's
	// (TakeSeat, ReleaseSeat). SetUserRole is an admin's grant: it also
	// sets the role's source to RoleSourceAdmin. SetUserStatus clears
	// SuspendedReason: a suspension it makes is an admin's.
	SetUserStatus(ctx context.Context, orgID, userID, status string) (User, error)
	SetUserRole(ctx context.Context, orgID, userID, role string) (User, error)
	// ReleaseSeat gives one seat of the organisation back.
	ReleaseSeat(ctx context.Context, orgID string) (Organization, error)
	// SuspendInactive suspends, with SuspendedReason SuspendedInactive, up
	// to limit (at most MaxInactivePerSweep) users of orgID that are
	// active, created by JIT, not SCIM-managed, and whose last sign-in —
	// the latest of their LastLoginAt and their identities' LastSeenAt,
	// or their CreatedAt when they never signed in — is before cutoff;
	// longest unseen first. It locks the organisation (as TakeSeat does)
	// and skips users another transaction holds locked (a sign-in
	// deciding them), so concurrent sweeps suspend each user once;
	// ErrNotFound when the organisation does not exist. It returns the
	// users as suspended; seats are the caller's (ReleaseSeat, one per
	// user).
	SuspendInactive(ctx context.Context, orgID string, cutoff time.Time, limit int) ([]User, error)
	// RoleReview finds and locks a review of orgID.
	RoleReview(ctx context.Context, orgID, id string) (RoleReview, error)
	// DecideRoleReview moves a pending review to status (approved, denied,
	// expired); ErrConflict when it is no longer pending.
	DecideRoleReview(ctx context.Context, orgID, id, status, decidedBy, reason string) (RoleReview, error)
	AppendAudit(ctx context.Context, e AuditEntry) error
	ListUsers(ctx context.Context, f UserFilter) (UserPage, error)
	ListRoleReviews(ctx context.Context, f ReviewFilter) ([]RoleReview, error)
	ListDecisions(ctx context.Context, f DecisionFilter) (DecisionPage, error)
	ListAudit(ctx context.Context, f AuditFilter) (AuditPage, error)
	// DecisionCounts counts an organisation's decisions per day (UTC) and
	// outcome since a time, oldest day first.
	DecisionCounts(ctx context.Context, orgID string, since time.Time) ([]DayCount, error)
	// CreateToken inserts an API token (store/tokens.go); ErrConflict when
	// its id or secret hash is taken, ErrNotFound when its organisation
	// does not exist, ErrInvalidData without an expiry.
	CreateToken(ctx context.Context, t Token) (Token, error)
	// TokenByHash finds the token whose secret hashes to hash, revoked and
	// expired ones included; ErrNotFound when there is none.
	TokenByHash(ctx context.Context, hash []byte) (Token, error)
	// ListTokens lists the tokens scoped to orgID, or every token (the
	// global ones included) when orgID is "", newest first.
	ListTokens(ctx context.Context, orgID string) ([]Token, error)
	// RevokeToken revokes a token now and returns it; revoking a revoked
	// token changes nothing (the first revocation time stays).
	// ErrNotFound when there is no such token.
	RevokeToken(ctx context.Context, id string) (Token, error)
	// TouchToken records a use of the token at at, unless a later one is
	// recorded already; ErrNotFound when there is no such token.
	TouchToken(ctx context.Context, id string, at time.Time) error
}
