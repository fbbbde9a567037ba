package console

import (
	"errors"
	"strings"
	"time"

	"github.com/jitprov/jitprov/events"
	"github.com/jitprov/jitprov/internal/store"
)

func errorsAs(err error, target any) bool { return err != nil && errors.As(err, target) }

// when is a time as admins read it; "—" for none.
func when(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	return t.UTC().Format("2 Jan 2006 15:04 UTC")
}

func dateOf(t time.Time) string { return t.UTC().Format("2 Jan") }

func displayName(u store.User) string {
	if u.DisplayName != "" {
		return u.DisplayName
	}
	return strings.TrimSpace(u.GivenName + " " + u.FamilyName)
}

func reasonText(r string) string {
	switch events.Reason(r) {
	case "":
		return ""
	case events.ReasonSeatsExhausted:
		return "No seat was free"
	case events.ReasonSuspended:
		return "The user is suspended"
	case events.ReasonDeprovisioned:
		return "The user is deprovisioned"
	case events.ReasonEmailInUse:
		return "The email belongs to another user, and could not be linked"
	case events.ReasonIdentityConflict:
		return "The identity conflicts with another user's"
	case events.ReasonUnknownOrganization:
		return "Unknown organisation"
	case events.ReasonUnknownConnection:
		return "Unknown connection"
	case events.ReasonInternalError:
		return "An internal error"
	}
	return r
}

func outcomeText(o string) string {
	switch events.Outcome(o) {
	case events.OutcomeCreated:
		return "Created (first login)"
	case events.OutcomeExisting:
		return "Signed in"
	case events.OutcomeRejected:
		return "Turned away"
	case events.OutcomeRefused:
		return "Refused"
	case events.OutcomeFailed:
		return "Failed"
	}
	return o
}

func statusText(s string) string {
	switch s {
	case store.StatusActive:
		return "Active"
	case store.StatusSuspended:
		return "Suspended"
	case store.StatusDeprovisioned:
		return "Deprovisioned"
	case store.ReviewPending:
		return "Pending"
	case store.ReviewApproved:
		return "Approved"
	case store.ReviewDenied:
		return "Denied"
	case store.ReviewExpired:
		return "Expired"
	}
	return s
}

func actionText(a string) string {
	switch a {
	case "user.suspend":
		return "Suspended a user"
	case "user.reactivate":
		return "Reactivated a user"
	case "user.deprovision":
		return "Deprovisioned a user"
	case "user.change-role":
		return "Changed a user's role"
	case "review.approve":
		return "Approved a role review"
	case "review.deny":
		return "Denied a role review"
	case "identity.unlink":
		return "Unlinked an identity"
	case "identity.link":
		return "Linked an identity"
	}
	return a
}
