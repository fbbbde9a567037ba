// Package admin is where every admin action is decided: one core that the
// admin HTTP API, the jitprov CLI and the web console call. Each change is
// one store transaction that also writes its events to the outbox and an
// audit row naming who did it; each read is scoped to what the caller may
// see.
package admin

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/jitprov/jitprov/events"
	"github.com/jitprov/jitprov/internal/outbox"
	"github.com/jitprov/jitprov/internal/provisioner"
	"github.com/jitprov/jitprov/internal/store"
	"github.com/jitprov/jitprov/internal/telemetry"
)

// Source is the CloudEvents source of the events admins cause.
const Source = "/jitprov/admin"

// Errors. Faces map them to their own words (HTTP status, exit code); match
// with errors.Is.
var (
	// ErrForbidden: the principal may not do this (another organisation,
	// read-only, a role above its own).
	ErrForbidden = errors.New("admin: forbidden")
	// ErrNotFound: no such organisation, user, review or identity (in the
	// principal's organisation).
	ErrNotFound = errors.New("admin: not found")
	// ErrConflict: the thing is no longer in a state that allows this (a
	// review decided already, an identity linked already).
	ErrConflict = errors.New("admin: conflict")
	// ErrInvalid: a request value is wrong; errors.As gives the *FieldError.
	ErrInvalid = errors.New("admin: invalid request")
	// ErrNoSeat: the organisation has no free seat for this.
	ErrNoSeat = errors.New("admin: no seat available")
	// ErrUnavailable: the store cannot be reached; try again.
	ErrUnavailable = errors.New("admin: unavailable")
)

// FieldError is an invalid request value: which field, and why.
type FieldError struct {
	Field string
	Msg   string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Msg }

// Unwrap makes a FieldError match ErrInvalid.
func (e *FieldError) Unwrap() error { return ErrInvalid }

func invalid(field, format string, args ...any) error {
	return &FieldError{Field: field, Msg: fmt.Sprintf(format, args...)}
}

// Principal is who acts: an organisation's admin signed in through its SSO,
// an API token, or jitprov itself.
type Principal struct {
	// Kind is store.ActorUser, store.ActorToken or store.ActorSystem.
	Kind string
	// ID is the user id, the token id, or the system part's name.
	ID string
	// Name is for people reading the audit: an email, a token's name.
	Name string
	// Organization is the one organisation the principal may act on; ""
	// for every organisation (a global token, an operator, the system).
	Organization string
	// Write allows changes; without it the principal only reads.
	Write bool
	// Role is a user principal's role in Organization: an admin may not
	// grant a role above it.
	Role string
	// SCIM marks an organisation's SCIM client (a token of scope scim): it
	// reaches the SCIM endpoints only, which refuse every other principal.
	SCIM bool
}

// Operator is the principal of jitprov's own tools run by an operator with
// access to the database (the CLI against a store, tests): every
// organisation, read and write.
func Operator(name string) Principal {
	return Principal{Kind: store.ActorSystem, ID: "operator", Name: name, Write: true}
}

func (p Principal) actor() events.Actor {
	return events.Actor{Type: p.Kind, ID: p.ID, Name: p.Name}
}

func (p Principal) decidedBy() string { return p.Kind + ":" + p.ID }

// directory is p acting through the directory's own operations (SCIM),
// which a SCIM principal may call: every other operation refuses it.
func (p Principal) directory() Principal {
	p.SCIM = false
	return p
}

// global reports whether p acts on every organisation.
func (p Principal) global() bool { return p.Organization == "" }

// Core decides admin actions on a store.
type Core struct {
	store    store.Store
	decider  *provisioner.Decider // for dry runs
	metadata *metadataCache       // IdP metadata fetched for certificate expiry
	log      *slog.Logger
	now      func() time.Time
}

// New returns a Core on s.
func New(s store.Store, log *slog.Logger) *Core {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Core{
		store: s, decider: provisioner.NewDecider(s, log), log: log, now: func() time.Time { return time.Now().UTC() },
		metadata: &metadataCache{client: &http.Client{Timeout: 10 * time.Second, CheckRedirect: noRedirects}, ttl: 10 * time.Minute,
			entries: map[string]metadataEntry{}},
	}
}

// TraceOutgoing records each IdP metadata fetch of c as a client span of
// tp, carrying traceparent; call it before c serves.
func (c *Core) TraceOutgoing(tp trace.TracerProvider) {
	c.metadata.client.Transport = telemetry.HTTPTransport(c.metadata.client.Transport, tp, "idp-metadata", telemetry.RedactQuery)
}

// noRedirects refuses redirects when fetching IdP metadata, as the edge
// does: the URL configured is the one trusted.
func noRedirects(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

// WithClock makes the core read the time from now (tests).
func (c *Core) WithClock(now func() time.Time) *Core {
	c.now = now
	return c
}

// may checks that p may read (write false) or change org.
func (c *Core) may(p Principal, org store.Organization, write bool) error {
	if p.SCIM {
		return fmt.Errorf("%w: token %s is a SCIM token: it reaches the SCIM endpoints (/scim/v2/) only", ErrForbidden, p.ID)
	}
	if !p.global() && p.Organization != org.ID {
		return fmt.Errorf("%w: %s %s acts on organisation %q only", ErrForbidden, p.Kind, p.ID, p.Organization)
	}
	if write && !p.Write {
		return fmt.Errorf("%w: %s %s may read, not change", ErrForbidden, p.Kind, p.ID)
	}
	if p.Kind == store.ActorUser && p.Role != org.AdminRole() {
		return fmt.Errorf("%w: user %s holds %q, not the organisation's admin role %q", ErrForbidden, p.ID, p.Role, org.AdminRole())
	}
	return nil
}

// mayGrant checks that p may give role in org: never above what a user
// principal holds, and the admin role only by an org admin or a global
// principal.
func (c *Core) mayGrant(p Principal, org store.Organization, role string) error {
	rank := slices.Index(org.Roles, role)
	if rank < 0 {
		return invalid("role", "%q is not one of organisation %q's roles (%v)", role, org.ID, org.Roles)
	}
	if p.Kind == store.ActorUser && rank > slices.Index(org.Roles, p.Role) {
		return fmt.Errorf("%w: %q is above the role %q you hold", ErrForbidden, role, p.Role)
	}
	if role == org.AdminRole() && p.Kind == store.ActorToken && !p.global() {
		return fmt.Errorf("%w: the admin role %q is granted only by an organisation admin or an operator", ErrForbidden, role)
	}
	return nil
}

// change is one admin transaction's work: its events and audit row.
type change struct {
	ctx    context.Context
	p      Principal
	org    string
	outbox []store.OutboxMessage
	extra  map[string][]string // more for the audit row's details (detail)
}

// detail adds value under key to the audit row's details.
func (ch *change) detail(key, value string) {
	if ch.extra == nil {
		ch.extra = map[string][]string{}
	}
	ch.extra[key] = append(ch.extra[key], value)
}

// details is base with what detail added.
func (ch *change) details(base map[string]any) map[string]any {
	for k, v := range ch.extra {
		base[k] = v
	}
	return base
}

func (ch *change) emit(t events.Type, subject string, data any) error {
	m, err := outbox.Message(ch.ctx, t, Source, ch.org, subject, data)
	if err != nil {
		return err
	}
	ch.outbox = append(ch.outbox, m)
	return nil
}

// commit writes the events and the audit row of action on target.
func (ch *change) commit(tx store.Tx, action, target string, details map[string]any) error {
	if err := tx.AppendOutbox(ch.ctx, ch.outbox...); err != nil {
		return err
	}
	return tx.AppendAudit(ch.ctx, store.AuditEntry{OrganizationID: ch.org, ActorType: ch.p.Kind, ActorID: ch.p.ID,
		ActorName: ch.p.Name, Action: action, Target: target, Details: details})
}

// inTx runs fn in a transaction on organisation orgID, which p may read
// (write false) or change, mapping the store's errors to the core's.
func (c *Core) inTx(ctx context.Context, p Principal, orgID string, write bool, fn func(tx store.Tx, org store.Organization) error) error {
	var err error
	// A transaction the database rolled back to break a deadlock runs
	// again, whole: fn builds everything it returns afresh.
	for attempt := 1; attempt <= maxSerializationRetries; attempt++ {
		if err = c.inTxOnce(ctx, p, orgID, write, fn); !errors.Is(err, store.ErrSerialization) {
			break
		}
	}
	return err
}

// maxSerializationRetries bounds inTx's runs of one transaction.
const maxSerializationRetries = 4

func (c *Core) inTxOnce(ctx context.Context, p Principal, orgID string, write bool, fn func(tx store.Tx, org store.Organization) error) error {
	err := c.store.InTx(ctx, func(ctx context.Context, tx store.Tx) error {
		org, err := tx.Organization(ctx, orgID)
		if errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("%w: organisation %q", ErrNotFound, orgID)
		} else if err != nil {
			return err
		}
		if err := c.may(p, org, write); err != nil {
			return err
		}
		return fn(tx, org)
	})
	return mapErr(err)
}

// mapErr turns store errors into the core's.
func mapErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, ErrForbidden), errors.Is(err, ErrNotFound), errors.Is(err, ErrConflict),
		errors.Is(err, ErrInvalid), errors.Is(err, ErrNoSeat), errors.Is(err, ErrUnavailable):
		return err
	case errors.Is(err, store.ErrNotFound):
		return fmt.Errorf("%w: %w", ErrNotFound, err)
	case errors.Is(err, store.ErrConflict):
		return fmt.Errorf("%w: %w", ErrConflict, err)
	case errors.Is(err, store.ErrSeatsExhausted):
		return fmt.Errorf("%w: %w", ErrNoSeat, err)
	case errors.Is(err, store.ErrInvalidData):
		return &FieldError{Field: "value", Msg: "a value holds what the database refuses (a NUL character, bytes that are not UTF-8, a number out of range)"}
	case errors.Is(err, store.ErrInvalidCursor):
		return &FieldError{Field: "cursor", Msg: err.Error()}
	case errors.Is(err, store.ErrUnavailable):
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return err
}

// userEvent is u as user.* events announce an admin's change.
func userEvent(u store.User) events.User { return outbox.User(u, "", "") }
