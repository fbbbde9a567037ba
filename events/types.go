package events

import (
	"fmt"
	"regexp"
	"time"

	"github.com/jitprov/jitprov/schemas"
)

// Type is a CloudEvents "type" attribute. Each type names a versioned
// contract: a published version never changes, a breaking change gets the
// next version.
type Type string

// The event types jitprov publishes.
const (
	// TypeLoginFirstSeen asks the provisioner to provision an identity. It is
	// published by sso-edge on subject jit.login.first-seen.<org>.
	TypeLoginFirstSeen Type = "io.jitprov.login.first-seen.v1"
	// TypeLoginSeen tells that a known person signed in again with
	// unchanged claims (sso-edge's fast path); the provisioner records the
	// time. Published on jit.login.seen.<org>, never answered.
	TypeLoginSeen Type = "io.jitprov.login.seen.v1"
	// TypeProvisioningResult is the provisioner's reply to a login, sent on
	// core NATS to the inbox named in the login's Jitprov-Reply-To header.
	TypeProvisioningResult Type = "io.jitprov.provisioning.result.v1"
	// TypeProvisioningResultV2 is provisioning.result v2: v1 plus the
	// outcome held (and the user status held, the reason
	// approval_required). The provisioner answers v2 only for a held
	// outcome and v1 for every other, so that an edge that knows v1 only
	// keeps working for everything but held; consumers accept both.
	TypeProvisioningResultV2 Type = "io.jitprov.provisioning.result.v2"
	// TypeUserCreated announces a user created by JIT provisioning.
	TypeUserCreated Type = "io.jitprov.user.created.v1"
	// TypeUserUpdated announces a change of a user's attributes or role.
	TypeUserUpdated Type = "io.jitprov.user.updated.v1"
	// TypeUserCreatedV2 and TypeUserUpdatedV2 are user.created and
	// user.updated as a SCIM client's changes make them: v1 plus actor in
	// place of login_id (no sign-in caused them) and created_by scim. The
	// provisioner sends v1, so that a consumer that knows v1 only keeps
	// working for every sign-in.
	TypeUserCreatedV2 Type = "io.jitprov.user.created.v2"
	TypeUserUpdatedV2 Type = "io.jitprov.user.updated.v2"
	// TypeUserIdentityLinked announces an identity linked to an existing
	// user: the same person signs in through another connection too.
	TypeUserIdentityLinked Type = "io.jitprov.user.identity-linked.v1"
	// TypeUserIdentityUnlinked announces an identity an admin unlinked from
	// a user: the person no longer signs in as that user through it.
	TypeUserIdentityUnlinked Type = "io.jitprov.user.identity-unlinked.v1"
	// TypeUserSuspended announces a user an admin suspended: their next
	// sign-in is refused, and they keep their seat.
	TypeUserSuspended Type = "io.jitprov.user.suspended.v1"
	// TypeUserReactivated announces a suspended, deprovisioned or held user
	// an admin made active again.
	TypeUserReactivated Type = "io.jitprov.user.reactivated.v1"
	// TypeUserDeprovisioned announces a user an admin deprovisioned: their
	// seat is freed and their next sign-in is refused.
	TypeUserDeprovisioned Type = "io.jitprov.user.deprovisioned.v1"
	// TypeUserRoleChanged announces a changed role: by an admin's action
	// (a role change, or the approval of a role review), or by a sign-in
	// whose claims give another role (actor system "sign-in", with the
	// login id; the sign-in's user.updated carries the change too).
	TypeUserRoleChanged Type = "io.jitprov.user.role-changed.v1"
	// TypeSeatsExhausted tells that a first login was turned away because its
	// organisation has no seat left.
	TypeSeatsExhausted Type = "io.jitprov.seats.exhausted.v1"
	// TypeRoleReviewRequested tells that an identity claimed a role above its
	// organisation's JIT ceiling and an admin must approve or deny it.
	TypeRoleReviewRequested Type = "io.jitprov.role-review.requested.v1"
	// TypeSeatsThresholdReached warns that an organisation's seats run out:
	// a first login took the seat that reached its warning share of
	// max_seats. Emitted by the provisioner, once per crossing.
	TypeSeatsThresholdReached Type = "io.jitprov.seats.threshold-reached.v1"
	// TypeIdPCertificateExpiring warns that a connection's IdP signing
	// certificate expires soon — 30, 7 and 1 days before — or has expired.
	// Emitted by sso-edge's daily certificate check, once per certificate
	// and step.
	TypeIdPCertificateExpiring Type = "io.jitprov.idp-certificate.expiring.v1"
	// TypeProvisioningFailed tells that the provisioner gave up on a login
	// (the dead-letter path): the person got an error page and nothing was
	// provisioned.
	TypeProvisioningFailed Type = "io.jitprov.provisioning.failed.v1"
	// TypeRoleReviewDecided tells that a role review was approved, denied
	// or expired. It is published on stream ALERTS beside
	// role-review.requested, so that whoever follows reviews sees them
	// close; the notifier does not alert on it.
	TypeRoleReviewDecided Type = "io.jitprov.role-review.decided.v1"
	// TypeSignupHeld tells that a new person's first sign-in was held for
	// an admin's approval (the organisation's new_people: hold, or
	// when_full: hold with no seat free): a user with status held exists,
	// takes no seat and is not signed in until an admin approves or denies.
	TypeSignupHeld Type = "io.jitprov.signup.held.v1"
	// TypeInactiveUsersSuspended tells an organisation's admins that the
	// provisioner's sweep suspended people who did not sign in for the
	// organisation's inactive_after, freeing their seats: one per
	// organisation and sweep, listing them (each also has its
	// user.suspended, reason inactive).
	TypeInactiveUsersSuspended Type = "io.jitprov.inactive-users.suspended.v1"
)

// spec describes where a type is published and which schema its data has.
type spec struct {
	short   string // e.g. "login.first-seen"; names the schema and the subject
	subject string // subject prefix; the organisation id is appended
	version string
}

var specs = map[Type]spec{
	TypeLoginFirstSeen:       {"login.first-seen", "jit.login.first-seen", "v1"},
	TypeLoginSeen:            {"login.seen", "jit.login.seen", "v1"},
	TypeProvisioningResult:   {"provisioning.result", "", "v1"},
	TypeProvisioningResultV2: {"provisioning.result", "", "v2"},
	TypeUserCreated:          {"user.created", "jit.user.created", "v1"},
	TypeUserUpdated:          {"user.updated", "jit.user.updated", "v1"},
	TypeUserCreatedV2:        {"user.created", "jit.user.created", "v2"},
	TypeUserUpdatedV2:        {"user.updated", "jit.user.updated", "v2"},
	TypeUserIdentityLinked:   {"user.identity-linked", "jit.user.identity-linked", "v1"},
	TypeSeatsExhausted:       {"seats.exhausted", "jit.alert.seats.exhausted", "v1"},
	TypeRoleReviewRequested:  {"role-review.requested", "jit.alert.role-review.requested", "v1"},

	TypeSeatsThresholdReached:  {"seats.threshold-reached", "jit.alert.seats.threshold-reached", "v1"},
	TypeIdPCertificateExpiring: {"idp-certificate.expiring", "jit.alert.idp-certificate.expiring", "v1"},
	TypeProvisioningFailed:     {"provisioning.failed", "jit.alert.provisioning.failed", "v1"},
	TypeSignupHeld:             {"signup.held", "jit.alert.signup.held", "v1"},
	TypeInactiveUsersSuspended: {"inactive-users.suspended", "jit.alert.inactive-users.suspended", "v1"},

	// What admins do (and review expiry).
	TypeUserIdentityUnlinked: {"user.identity-unlinked", "jit.user.identity-unlinked", "v1"},
	TypeUserSuspended:        {"user.suspended", "jit.user.suspended", "v1"},
	TypeUserReactivated:      {"user.reactivated", "jit.user.reactivated", "v1"},
	TypeUserDeprovisioned:    {"user.deprovisioned", "jit.user.deprovisioned", "v1"},
	TypeUserRoleChanged:      {"user.role-changed", "jit.user.role-changed", "v1"},
	TypeRoleReviewDecided:    {"role-review.decided", "jit.alert.role-review.decided", "v1"},
}

// Types lists every event type of the contract.
func Types() []Type {
	return []Type{TypeLoginFirstSeen, TypeLoginSeen, TypeProvisioningResult, TypeProvisioningResultV2, TypeUserCreated,
		TypeUserUpdated, TypeUserCreatedV2, TypeUserUpdatedV2, TypeUserIdentityLinked, TypeUserIdentityUnlinked, TypeUserSuspended, TypeUserReactivated,
		TypeUserDeprovisioned, TypeUserRoleChanged, TypeSeatsExhausted, TypeRoleReviewRequested, TypeRoleReviewDecided,
		TypeSeatsThresholdReached, TypeIdPCertificateExpiring, TypeProvisioningFailed, TypeSignupHeld, TypeInactiveUsersSuspended}
}

// AlertTypes lists the alerts: the types the notifier tells admins about,
// and the names an organisation's webhooks may choose among. Every alert
// is published on stream ALERTS, but not everything on ALERTS is an alert:
// role-review.decided is published there beside role-review.requested
// for whoever follows reviews, and the notifier acknowledges it without a
// message.
func AlertTypes() []Type {
	return []Type{TypeSeatsExhausted, TypeSeatsThresholdReached, TypeRoleReviewRequested,
		TypeIdPCertificateExpiring, TypeProvisioningFailed, TypeSignupHeld, TypeInactiveUsersSuspended}
}

// Short is the type's short name, e.g. "seats.exhausted": the name of its
// schema folder and, in the organisations file, of the alert.
func (t Type) Short() string { return specs[t].short }

// TypeFromShort finds the type whose short name is short: its newest
// version when it has several (provisioning.result).
func TypeFromShort(short string) (Type, bool) {
	var found Type
	for _, t := range Types() { // oldest version first
		if specs[t].short == short {
			found = t
		}
	}
	return found, found != ""
}

// ProvisioningResultTypes are the versions of provisioning.result a
// consumer of the provisioner's answers accepts.
func ProvisioningResultTypes() []Type {
	return []Type{TypeProvisioningResult, TypeProvisioningResultV2}
}

// ResultType is the version of provisioning.result that answers res: v2
// for a held outcome, which v1 cannot say, and v1 for every other, so
// that a consumer that knows v1 only keeps working for them.
func ResultType(res ProvisioningResult) Type {
	if res.Outcome == OutcomeHeld || (res.User != nil && res.User.Status == UserStatusHeld) || res.Reason == ReasonApprovalRequired {
		return TypeProvisioningResultV2
	}
	return TypeProvisioningResult
}

// SchemaPath is the path of the type's data schema inside package schemas,
// e.g. "login.first-seen/v1.json".
func (t Type) SchemaPath() string {
	s, ok := specs[t]
	if !ok {
		return ""
	}
	return s.short + "/" + s.version + ".json"
}

// SchemaURL is the type's "dataschema" attribute: the $id of its schema.
func (t Type) SchemaURL() string { return SchemaBaseURL + t.SchemaPath() }

// SchemaBaseURL prefixes every schema's $id.
const SchemaBaseURL = schemas.BaseURL

// Known reports whether t is a type of this contract.
func (t Type) Known() bool { _, ok := specs[t]; return ok }

// Subject prefixes and stream filters.
const (
	SubjectUsers  = "jit.user.>"  // stream USERS
	SubjectAlerts = "jit.alert.>" // stream ALERTS
	// SubjectLoginFirstSeenAll filters every organisation's first-seen
	// logins; SubjectLoginSeenAll their returning logins. Both are stream
	// LOGINS, one subject per organisation each.
	SubjectLoginFirstSeenAll = "jit.login.first-seen.*"
	SubjectLoginSeenAll      = "jit.login.seen.*"
)

// LoginSubjects are the subjects of stream LOGINS.
func LoginSubjects() []string { return []string{SubjectLoginFirstSeenAll, SubjectLoginSeenAll} }

// HeaderReplyTo names the core NATS subject on which the provisioner answers
// a login with a provisioning.result event.
const HeaderReplyTo = "Jitprov-Reply-To"

var orgIDPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,62}$`)

// ValidOrganizationID reports whether id can name an organisation: 1 to 63
// characters of a-z, 0-9, '-' and '_', starting with a letter or digit, so
// that it is always a single NATS subject token.
func ValidOrganizationID(id string) bool { return orgIDPattern.MatchString(id) }

// Subject is the NATS subject on which an event of type t about organisation
// org is published. The provisioning result has no subject of its own (it
// goes to a reply inbox) and yields an error, as does an invalid org id.
func Subject(t Type, org string) (string, error) {
	s, ok := specs[t]
	if !ok || s.subject == "" {
		return "", fmt.Errorf("events: type %q has no publish subject", t)
	}
	if !ValidOrganizationID(org) {
		return "", fmt.Errorf("events: organisation id %q is not a valid subject token (want %s)", org, orgIDPattern)
	}
	return s.subject + "." + org, nil
}

// SubjectFilter is the subject filter matching the events of type t of
// every organisation, e.g. "jit.user.suspended.*": a consumer's filter.
func SubjectFilter(t Type) (string, error) {
	s, ok := specs[t]
	if !ok || s.subject == "" {
		return "", fmt.Errorf("events: type %q has no publish subject", t)
	}
	return s.subject + ".*", nil
}

// Protocol is the SSO protocol a login came through.
type Protocol string

// Protocols.
const (
	ProtocolSAML Protocol = "saml"
	ProtocolOIDC Protocol = "oidc"
)

// Identity is the data of login.first-seen: a person as their identity
// provider describes them, mapped by the connection's attribute mapping.
type Identity struct {
	OrganizationID string   `json:"organization_id"`
	ConnectionID   string   `json:"connection_id"`
	Protocol       Protocol `json:"protocol"`
	// ExternalID is the stable id of the person at the IdP: a persistent
	// SAML NameID or configured attribute, or the OIDC "sub".
	ExternalID    string   `json:"external_id"`
	Email         string   `json:"email,omitempty"`
	EmailVerified bool     `json:"email_verified"`
	GivenName     string   `json:"given_name,omitempty"`
	FamilyName    string   `json:"family_name,omitempty"`
	DisplayName   string   `json:"display_name,omitempty"`
	Groups        []string `json:"groups,omitempty"`
	// Roles are the roles the IdP claims for the person. JIT grants at most
	// the organisation's ceiling; a higher claim becomes a role review.
	Roles           []string            `json:"roles,omitempty"`
	Attributes      map[string][]string `json:"attributes,omitempty"`
	AuthenticatedAt time.Time           `json:"authenticated_at"`
}

// LoginSeen is the data of login.seen.
type LoginSeen struct {
	OrganizationID  string    `json:"organization_id"`
	ConnectionID    string    `json:"connection_id"`
	ExternalID      string    `json:"external_id"`
	UserID          string    `json:"user_id"`
	AuthenticatedAt time.Time `json:"authenticated_at"`
}

// Outcome is the provisioner's decision about a login.
type Outcome string

// Outcomes.
const (
	OutcomeCreated  Outcome = "created"  // a new user was created
	OutcomeExisting Outcome = "existing" // the user existed (and may have been updated)
	OutcomeRejected Outcome = "rejected" // turned away for now (seats exhausted)
	OutcomeRefused  Outcome = "refused"  // not allowed (suspended, conflict, unknown org)
	OutcomeFailed   Outcome = "failed"   // the pipeline gave up (see Reason)
	// OutcomeHeld (provisioning.result v2 only): a new person's user was
	// created with status held, waiting for an admin's approval; they are
	// not signed in and take no seat. Reason says why:
	// ReasonApprovalRequired or ReasonSeatsExhausted.
	OutcomeHeld Outcome = "held"
)

// UserStatusHeld is the status of a held person's user (UserRef.Status in
// provisioning.result v2 only).
const UserStatusHeld = "held"

// Reason explains a rejected, refused or failed outcome.
type Reason string

// Reasons.
const (
	ReasonSeatsExhausted      Reason = "seats_exhausted"
	ReasonSuspended           Reason = "suspended"
	ReasonDeprovisioned       Reason = "deprovisioned"
	ReasonEmailInUse          Reason = "email_in_use"
	ReasonIdentityConflict    Reason = "identity_conflict"
	ReasonUnknownOrganization Reason = "unknown_organization"
	ReasonUnknownConnection   Reason = "unknown_connection"
	ReasonInternalError       Reason = "internal_error"
	// ReasonApprovalRequired (v2 only): the organisation holds every new
	// person for an admin's approval (new_people: hold).
	ReasonApprovalRequired Reason = "approval_required"
)

// UserRef is the part of a user a login reply carries.
type UserRef struct {
	ID     string `json:"id"`
	Role   string `json:"role"`
	Status string `json:"status"`
	Email  string `json:"email,omitempty"`
}

// RoleReviewRef names a pending role review.
type RoleReviewRef struct {
	ID            string `json:"id"`
	RequestedRole string `json:"requested_role"`
}

// ProvisioningResult is the data of provisioning.result, the reply to a
// login.first-seen event.
type ProvisioningResult struct {
	// LoginID is the id of the login.first-seen event this answers.
	LoginID string  `json:"login_id"`
	Outcome Outcome `json:"outcome"`
	Reason  Reason  `json:"reason,omitempty"`
	// Message explains the outcome to an operator; it is safe to log.
	Message    string         `json:"message,omitempty"`
	User       *UserRef       `json:"user,omitempty"`
	RoleReview *RoleReviewRef `json:"role_review,omitempty"`
	DecidedAt  time.Time      `json:"decided_at"`
}

// User is a user as announced in user.* events.
type User struct {
	ID             string              `json:"id"`
	OrganizationID string              `json:"organization_id"`
	ConnectionID   string              `json:"connection_id,omitempty"`
	ExternalID     string              `json:"external_id,omitempty"`
	Email          string              `json:"email,omitempty"`
	EmailVerified  bool                `json:"email_verified"`
	GivenName      string              `json:"given_name,omitempty"`
	FamilyName     string              `json:"family_name,omitempty"`
	DisplayName    string              `json:"display_name,omitempty"`
	Groups         []string            `json:"groups,omitempty"`
	Role           string              `json:"role"`
	Status         string              `json:"status"`
	Attributes     map[string][]string `json:"attributes,omitempty"`
	CreatedBy      string              `json:"created_by"`
	CreatedAt      time.Time           `json:"created_at"`
	UpdatedAt      time.Time           `json:"updated_at"`
}

// UserCreated is the data of user.created.
type UserCreated struct {
	User User `json:"user"`
	// LoginID is the login.first-seen that created the user. v2 only: ""
	// when no sign-in did (a SCIM client), and Actor says who.
	LoginID string `json:"login_id,omitempty"`
	Actor   *Actor `json:"actor,omitempty"`
}

// UserUpdated is the data of user.updated.
type UserUpdated struct {
	User User `json:"user"`
	// Changed names the fields that changed, e.g. "email", "role".
	Changed []string `json:"changed"`
	// PreviousRole is set when the role changed.
	PreviousRole string `json:"previous_role,omitempty"`
	// LoginID is the login that brought the change. v2 only: "" when no
	// sign-in did (a SCIM client), and Actor says who.
	LoginID string `json:"login_id,omitempty"`
	Actor   *Actor `json:"actor,omitempty"`
}

// Ways an identity is linked to an existing user (IdentityLinked.LinkedBy).
const (
	LinkedByEmail    = "email"
	LinkedByReplaces = "replaces"
	LinkedByAdmin    = "admin"
	// LinkedBySCIM: a SCIM client created or adopted the user, linking
	// the identity ahead of the person's first sign-in.
	LinkedBySCIM = "scim"
)

// LinkedIdentity names an identity: a person as one connection knows them.
type LinkedIdentity struct {
	ConnectionID string `json:"connection_id"`
	ExternalID   string `json:"external_id"`
}

// IdentityLinked is the data of user.identity-linked.
type IdentityLinked struct {
	User     User           `json:"user"`
	Identity LinkedIdentity `json:"identity"`
	// LinkedBy is LinkedByEmail, LinkedByReplaces or LinkedByAdmin.
	LinkedBy string `json:"linked_by"`
	// ReplacedConnectionID is, with LinkedByReplaces, the connection the
	// identity's connection replaces.
	ReplacedConnectionID string `json:"replaced_connection_id,omitempty"`
	// LoginID is the login that linked it; empty when an admin did.
	LoginID string `json:"login_id,omitempty"`
}

// Kinds of actor (Actor.Type).
const (
	ActorUser   = "user"   // a person signed in to the admin console: Actor.ID is their user id
	ActorToken  = "token"  // an API token: Actor.ID is the token's id
	ActorSystem = "system" // jitprov itself, e.g. a role review expiring
)

// Actor is who did what an admin event announces.
type Actor struct {
	// Type is ActorUser, ActorToken or ActorSystem.
	Type string `json:"type"`
	// ID is the acting user's id, the token's id, or for ActorSystem the
	// part of jitprov that acted (e.g. "review-expiry"); 1 to 256
	// characters.
	ID string `json:"id"`
	// Name is for people reading the event: an admin's email, a token's
	// name; at most 320 characters.
	Name string `json:"name,omitempty"`
}

// Statuses a user can come from in UserStatusChanged.PreviousStatus: a
// user's statuses (active, suspended, deprovisioned) and held, a person
// waiting for an admin's approval of their sign-up.
const (
	PreviousStatusActive        = "active"
	PreviousStatusSuspended     = "suspended"
	PreviousStatusDeprovisioned = "deprovisioned"
	PreviousStatusHeld          = "held"
)

// UserStatusChanged is the data of user.suspended, user.reactivated and
// user.deprovisioned: an admin changed a user's status. User.Status is the
// status after the change (suspended, active, deprovisioned).
type UserStatusChanged struct {
	User User `json:"user"`
	// PreviousStatus is one of the PreviousStatus* constants and differs
	// from User.Status.
	PreviousStatus string `json:"previous_status"`
	Actor          Actor  `json:"actor"`
	// Reason is the admin's, at most 1024 characters.
	Reason string `json:"reason,omitempty"`
}

// UserRoleChanged is the data of user.role-changed: an admin changed a
// user's role, directly or by approving a role review, or a sign-in did
// (a bootstrap admin's, or the IdP's claims: Actor is then of type
// ActorSystem, with ID "sign-in", and LoginID is set).
type UserRoleChanged struct {
	User         User   `json:"user"`
	PreviousRole string `json:"previous_role"`
	Actor        Actor  `json:"actor"`
	// ReviewID is the role review whose approval made the change, if one
	// did.
	ReviewID string `json:"review_id,omitempty"`
	// LoginID is the login that made the change, if a sign-in did rather
	// than an admin's request (a bootstrap admin's first sign-in, or the
	// role policy applied to the IdP's claims).
	LoginID string `json:"login_id,omitempty"`
}

// IdentityUnlinked is the data of user.identity-unlinked.
type IdentityUnlinked struct {
	// User is the user after the change; its ConnectionID and ExternalID
	// are empty or name an identity it still has.
	User     User           `json:"user"`
	Identity LinkedIdentity `json:"identity"`
	Actor    Actor          `json:"actor"`
}

// Decisions on a role review (RoleReviewDecided.Decision).
const (
	ReviewApproved = "approved"
	ReviewDenied   = "denied"
	ReviewExpired  = "expired"
)

// RoleReviewDecided is the data of role-review.decided.
type RoleReviewDecided struct {
	ReviewID       string `json:"review_id"`
	OrganizationID string `json:"organization_id"`
	UserID         string `json:"user_id"`
	RequestedRole  string `json:"requested_role"`
	// Decision is ReviewApproved, ReviewDenied or ReviewExpired.
	Decision string `json:"decision"`
	// Reason is the admin's (a denial's, typically), at most 1024
	// characters.
	Reason    string    `json:"reason,omitempty"`
	Actor     Actor     `json:"actor"`
	DecidedAt time.Time `json:"decided_at"`
}

// SeatsExhausted is the data of seats.exhausted: one event per person turned
// away, so that a notifier can count them.
type SeatsExhausted struct {
	OrganizationID string `json:"organization_id"`
	MaxSeats       int    `json:"max_seats"`
	SeatsUsed      int    `json:"seats_used"`
	ConnectionID   string `json:"connection_id"`
	ExternalID     string `json:"external_id"`
	Email          string `json:"email,omitempty"`
	LoginID        string `json:"login_id"`
}

// RoleReviewRequested is the data of role-review.requested.
type RoleReviewRequested struct {
	ReviewID       string `json:"review_id"`
	OrganizationID string `json:"organization_id"`
	UserID         string `json:"user_id"`
	Email          string `json:"email,omitempty"`
	CurrentRole    string `json:"current_role"`
	RequestedRole  string `json:"requested_role"`
	LoginID        string `json:"login_id"`
}

// SeatsThresholdReached is the data of seats.threshold-reached.
type SeatsThresholdReached struct {
	OrganizationID string `json:"organization_id"`
	MaxSeats       int    `json:"max_seats"`
	SeatsUsed      int    `json:"seats_used"`
	// ThresholdPercent is the organisation's seat_warning_percent.
	ThresholdPercent int    `json:"threshold_percent"`
	UserID           string `json:"user_id"`
	LoginID          string `json:"login_id"`
}

// IdPCertificateExpiring is the data of idp-certificate.expiring.
type IdPCertificateExpiring struct {
	OrganizationID string `json:"organization_id"`
	ConnectionID   string `json:"connection_id"`
	// Subject is the certificate's subject, e.g. "CN=accounts.example.com".
	Subject string `json:"subject"`
	// FingerprintSHA256 is the hex SHA-256 of the DER certificate.
	FingerprintSHA256 string    `json:"fingerprint_sha256"`
	NotAfter          time.Time `json:"not_after"`
	// DaysLeft is the whole days left at the check (0 once expired);
	// ThresholdDays the step that fired: 30, 7 or 1.
	DaysLeft      int  `json:"days_left"`
	ThresholdDays int  `json:"threshold_days"`
	Expired       bool `json:"expired"`
}

// ProvisioningFailed is the data of provisioning.failed.
type ProvisioningFailed struct {
	LoginID        string `json:"login_id"`
	OrganizationID string `json:"organization_id"`
	ConnectionID   string `json:"connection_id"`
	ExternalID     string `json:"external_id"`
	Email          string `json:"email,omitempty"`
	// Reason says why the provisioner gave up, for an operator.
	Reason     string    `json:"reason"`
	Deliveries int       `json:"deliveries"`
	FailedAt   time.Time `json:"failed_at"`
}

// InactiveUsersSuspended is the data of inactive-users.suspended.
type InactiveUsersSuspended struct {
	OrganizationID string `json:"organization_id"`
	// InactiveAfterSeconds is the organisation's inactive_after.
	InactiveAfterSeconds int64 `json:"inactive_after_seconds"`
	// Count is how many people this sweep suspended, len(Users).
	Count int                   `json:"count"`
	Users []InactiveUserSummary `json:"users"`
	// MaxSeats and SeatsUsed are the organisation's after the sweep.
	MaxSeats  int       `json:"max_seats"`
	SeatsUsed int       `json:"seats_used"`
	SweptAt   time.Time `json:"swept_at"`
}

// InactiveUserSummary is one person an inactivity sweep suspended.
type InactiveUserSummary struct {
	UserID      string `json:"user_id"`
	Email       string `json:"email,omitempty"`
	DisplayName string `json:"display_name,omitempty"`
	// LastSeenAt is their last sign-in (or their creation) the sweep
	// went by.
	LastSeenAt time.Time `json:"last_seen_at"`
}

// SignupHeld is the data of signup.held.
type SignupHeld struct {
	OrganizationID string `json:"organization_id"`
	// UserID is the held user: status held, no seat.
	UserID       string `json:"user_id"`
	Email        string `json:"email,omitempty"`
	DisplayName  string `json:"display_name,omitempty"`
	ConnectionID string `json:"connection_id"`
	ExternalID   string `json:"external_id"`
	// Reason is ReasonApprovalRequired (new_people: hold) or
	// ReasonSeatsExhausted (when_full: hold, no seat free).
	Reason    Reason `json:"reason"`
	MaxSeats  int    `json:"max_seats"`
	SeatsUsed int    `json:"seats_used"`
	LoginID   string `json:"login_id"`
}
