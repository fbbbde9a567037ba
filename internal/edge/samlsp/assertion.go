package samlsp

import (
	"strings"
	"time"

	"github.com/crewjam/saml"
)

// Assertion is what a verified response says about the person. Every field
// comes from the assertion whose signature was verified (directly, or
// through the Response's signature).
type Assertion struct {
	// ID is the assertion's ID. The caller must accept each ID once (a
	// replay cache shared by all edge replicas) until ReplayUntil.
	ID string
	// Issuer is the IdP's entity id.
	Issuer string
	// NameID and NameIDFormat are the subject's NameID. NameIDFormat is the
	// Format attribute as sent ("" means unspecified). Never key a user on
	// a transient NameID — use ExternalID.
	NameID       string
	NameIDFormat string
	// SessionIndex and AuthnInstant come from the AuthnStatement.
	SessionIndex string
	AuthnInstant time.Time
	// NotOnOrAfter is the earliest of the Conditions' and the bearer
	// SubjectConfirmationData's NotOnOrAfter.
	NotOnOrAfter time.Time
	// ReplayUntil is NotOnOrAfter plus the configured clock skew: after it,
	// ParseResponse refuses the assertion by itself, so a replay-cache
	// entry for ID can expire then.
	ReplayUntil time.Time
	// Attributes maps each Attribute's Name to its values, in document
	// order. Names are unique (duplicates are refused). FriendlyName is
	// not a key: it is advisory in SAML and two attributes may share it;
	// FriendlyNames maps Name to FriendlyName, for display only.
	Attributes    map[string][]string
	FriendlyNames map[string]string
	// InResponseTo is the AuthnRequest ID this response answers, or "" for
	// an IdP-initiated login.
	InResponseTo string
}

// ExternalIDRule says where a connection takes a person's stable external
// id from.
type ExternalIDRule struct {
	// Attribute, when set, names the attribute (by Name) whose single
	// value is the external id, e.g. an immutable employee number or
	// objectGUID. The NameID is then never used, so that a missing
	// attribute cannot silently switch a user's key to another value.
	Attribute string
	// AllowUnspecifiedNameID accepts a NameID whose format is unspecified
	// (or absent), for IdPs known to send a stable value in it. Emails and
	// transient NameIDs are never accepted.
	AllowUnspecifiedNameID bool
}

// ExternalID returns the stable identifier to key a user on: the single
// value of rule.Attribute, or else the NameID when its format is
// persistent (or unspecified, when rule allows it). A transient NameID —
// crewjam's default request, a new random value at every login — would
// create a new user at every login, and an email address can be
// reassigned, so both are refused with a *RejectError of reason
// ReasonExternalID.
func ExternalID(a *Assertion, rule ExternalIDRule) (string, error) {
	if rule.Attribute != "" {
		vals, ok := a.Attributes[rule.Attribute]
		switch {
		case !ok:
			return "", reject(ReasonExternalID, "attribute %q is missing", rule.Attribute)
		case len(vals) != 1:
			return "", reject(ReasonExternalID, "attribute %q has %d values, want exactly one", rule.Attribute, len(vals))
		case strings.TrimSpace(vals[0]) == "":
			return "", reject(ReasonExternalID, "attribute %q is empty", rule.Attribute)
		}
		return vals[0], nil
	}
	switch saml.NameIDFormat(a.NameIDFormat) {
	case saml.PersistentNameIDFormat:
		return a.NameID, nil
	case saml.UnspecifiedNameIDFormat, "":
		if rule.AllowUnspecifiedNameID {
			return a.NameID, nil
		}
		return "", reject(ReasonExternalID, "NameID format is unspecified and the connection does not accept it; configure an attribute or ask the IdP for a persistent NameID")
	}
	return "", reject(ReasonExternalID, "NameID format %q is not stable; configure an attribute or ask the IdP for a persistent NameID", a.NameIDFormat)
}
