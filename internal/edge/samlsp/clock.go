package samlsp

import (
	"time"

	"github.com/crewjam/saml"
)

// DeliveryAllowance is how long a Response may take from the IdP to our ACS
// (the browser's auto-submitted form), on top of the clock skew: a Response
// or Assertion issued more than ClockSkew + DeliveryAllowance before now is
// refused as expired. It replaces crewjam's MaxIssueDelay, which mixed
// delivery and skew in one fixed 90s.
const DeliveryAllowance = 20 * time.Second

// crewjam/saml v0.5.1 applies fixed bounds of its own, read from package
// variables: MaxIssueDelay (90s, with no skew) on the Response's and the
// Assertion's IssueInstant, and MaxClockSkew (180s) on NotBefore and
// NotOnOrAfter. With those, a connection's clock_skew could only tighten
// them: an IdP 150s behind was refused whatever the connection allowed.
//
// ParseResponse no longer runs crewjam's validation (issue 13): its time
// checks are all this package's, with the connection's own ClockSkew and
// Config.Now. The bounds are still relaxed here, once, before main runs
// and before any goroutine reads them, to the widest bounds a connection
// may configure, for what still runs crewjam's validation in this
// process (its IdP in `jitprov dev`, and the tests that pin what crewjam
// alone does). They are never changed per
// connection or per request: they are package globals shared by every
// connection (and by crewjam's IdP, which the development IdP uses in the
// same process of `jitprov dev`, where its assertions then last
// MaxClockSkew + DeliveryAllowance).
func init() {
	saml.MaxIssueDelay = MaxClockSkew + DeliveryAllowance
	saml.MaxClockSkew = MaxClockSkew
}
