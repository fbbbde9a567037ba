package store

// What a batch of first-seen logins of one organisation needs from a
// transaction (Tx.LookupLogins and Tx.WriteGroup): the reads of the whole
// group at once, and its writes at once with the seat reservation last, so
// that a backend able to pipeline statements (Postgres) answers each in one
// round trip, and the organisation's seat row is locked only from the
// reservation to the commit.

// LoginKey names one login of a group for LookupLogins.
type LoginKey struct {
	LoginID      string
	ConnectionID string
	ExternalID   string
	Email        string // "" for none
}

// LoginLookup is what LookupLogins found for one login. Nothing is locked:
// a login whose identity or email names a user is decided by the
// per-login reads (UserByIdentity, UserByEmail), which lock.
type LoginLookup struct {
	// Decision is the login's stored decision; nil when it has none.
	Decision *Decision
	// IdentityUserID is the user the identity is linked to; "" for none.
	IdentityUserID string
	// EmailUserID is a user of the organisation with the email, in any
	// case; "" for none (or no email).
	EmailUserID string
}

// GroupLookup is what LookupLogins read for a group of logins of one
// organisation.
type GroupLookup struct {
	// Organization is valid when OrganizationFound.
	Organization      Organization
	OrganizationFound bool
	// Connections are the organisation's, ordered by id.
	Connections []Connection
	// Logins are in the order of the keys asked for.
	Logins []LoginLookup
}

// SeatReservation takes Seats seats of an organisation at once, all or
// none, within max_seats and the conditions below.
type SeatReservation struct {
	// Seats to take; 0 takes none and touches nothing.
	Seats int
	// IfUsed, when set, takes them only while exactly *IfUsed seats are
	// in use.
	IfUsed *int
	// NotCrossing, when positive, refuses a reservation that would move
	// the seats in use from below NotCrossing to NotCrossing or more (a
	// crossing the caller did not plan for).
	NotCrossing int
}

// NewUser is a user to create with its first identity.
type NewUser struct {
	// User is created as CreateUser does, except that a non-zero
	// User.CreatedAt is its creation, update and last login time (the
	// transaction's time otherwise).
	User     User
	Identity Identity
}

// GroupWrites are the writes of a group of decisions of one organisation,
// done in this order: users with their identities, role reviews, audit
// entries, outbox messages, decisions, and last the seat reservation.
type GroupWrites struct {
	OrganizationID string
	Users          []NewUser
	Reviews        []RoleReview
	Audit          []AuditEntry
	Outbox         []OutboxMessage
	Decisions      []Decision
	Seats          SeatReservation
}

// Empty reports whether w writes nothing.
func (w GroupWrites) Empty() bool {
	return len(w.Users) == 0 && len(w.Reviews) == 0 && len(w.Audit) == 0 && len(w.Outbox) == 0 &&
		len(w.Decisions) == 0 && w.Seats.Seats == 0
}

// IfUsedArg is r.IfUsed as a query argument: -1 for none.
func (r SeatReservation) IfUsedArg() int {
	if r.IfUsed == nil {
		return -1
	}
	return *r.IfUsed
}
