package provisioner

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jitprov/jitprov/events"
	"github.com/jitprov/jitprov/internal/outbox"
	"github.com/jitprov/jitprov/internal/store"
)

// Expiry without SCIM. People the IdP forgot — created by JIT, not managed
// by SCIM, and not seen signing in for their organisation's inactive_after
// — are suspended by a sweep the provisioner runs every InactiveSweep:
// status suspended with the reason inactive, their seat freed, user.suspended
// (reason "inactive", actor system "inactive-sweep") through the outbox and
// a row in the admin audit, all in one transaction per organisation. Their
// next sign-in reactivates them (update, in decide.go) if a seat is free,
// and is refused like a first sign-in into a full organisation otherwise.
// A person an admin suspended stays suspended whatever they do.
//
// Replicas all sweep: Tx.SuspendInactive suspends each person once (a
// conditional UPDATE whose candidates are locked SKIP LOCKED), so two
// sweeps at once share the work and never announce a person twice.

// InactivePerSweep bounds the people one sweep suspends, over every
// organisation: a first sweep after inactive_after is turned on for a
// large organisation suspends its people over several runs, rather than
// hold its seat row for one long transaction.
const InactivePerSweep = 500

// ReasonInactive is the reason of the user.suspended events of the sweep.
const ReasonInactive = store.SuspendedInactive

// Actors of the expiry, as events and the admin audit name them.
const (
	actorInactiveSweep = "inactive-sweep"
	actorSignIn        = "sign-in"
)

// SweepInactive suspends, in every organisation with an inactive_after,
// the people not seen signing in since now minus it, at most limit in all
// (InactivePerSweep when limit is 0). It returns how many it suspended.
// An organisation that fails is logged and skipped; the error reports the
// first such failure once the others are swept.
func SweepInactive(ctx context.Context, s store.Store, now time.Time, limit int, log *slog.Logger) (int, error) {
	if limit <= 0 {
		limit = InactivePerSweep
	}
	orgs, err := s.Organizations(ctx)
	if err != nil {
		return 0, fmt.Errorf("provisioner: inactive sweep: list the organisations: %w", err)
	}
	n := 0
	var firstErr error
	for _, o := range orgs {
		if o.InactiveAfter <= 0 || n >= limit {
			continue
		}
		var suspended []store.User
		err := s.InTx(ctx, func(ctx context.Context, tx store.Tx) error {
			var err error
			suspended, err = suspendInactive(ctx, tx, o, now, limit-n)
			return err
		})
		if err != nil {
			if ctx.Err() != nil {
				return n, ctx.Err()
			}
			log.WarnContext(ctx, "could not suspend the inactive people of an organisation; trying again at the next sweep",
				"org", o.ID, "err", err)
			if firstErr == nil {
				firstErr = fmt.Errorf("provisioner: inactive sweep of %q: %w", o.ID, err)
			}
			continue
		}
		if len(suspended) > 0 {
			log.InfoContext(ctx, "suspended people who did not sign in for the organisation's inactive_after; their seats are free",
				"org", o.ID, "count", len(suspended), "inactive_after", o.InactiveAfter.String())
		}
		n += len(suspended)
	}
	return n, firstErr
}

// suspendInactive is the sweep of one organisation, in tx.
func suspendInactive(ctx context.Context, tx store.Tx, o store.Organization, now time.Time, limit int) ([]store.User, error) {
	users, err := tx.SuspendInactive(ctx, o.ID, now.Add(-o.InactiveAfter), limit)
	if err != nil || len(users) == 0 {
		return nil, err
	}
	actor := events.Actor{Type: store.ActorSystem, ID: actorInactiveSweep,
		Name: "no sign-in for " + days(o.InactiveAfter) + " (inactive_after)"}
	msgs := make([]store.OutboxMessage, 0, len(users)+1)
	digest := events.InactiveUsersSuspended{OrganizationID: o.ID, InactiveAfterSeconds: int64(o.InactiveAfter / time.Second),
		Count: len(users), SweptAt: now.UTC()}
	for _, u := range users {
		seats, err := tx.ReleaseSeat(ctx, o.ID)
		if err != nil {
			return nil, err
		}
		digest.MaxSeats, digest.SeatsUsed = seats.MaxSeats, seats.SeatsUsed
		digest.Users = append(digest.Users, events.InactiveUserSummary{UserID: u.ID, Email: u.Email, DisplayName: u.DisplayName,
			LastSeenAt: lastSeen(u)})
		m, err := outbox.Message(ctx, events.TypeUserSuspended, Source, o.ID, u.ID, events.UserStatusChanged{
			User: outbox.User(u, "", ""), PreviousStatus: events.PreviousStatusActive, Actor: actor, Reason: ReasonInactive})
		if err != nil {
			return nil, err
		}
		msgs = append(msgs, m)
		err = tx.AppendAudit(ctx, store.AuditEntry{OrganizationID: o.ID, ActorType: store.ActorSystem, ActorID: actorInactiveSweep,
			ActorName: actor.Name, Action: "user.suspend", Target: u.ID, Details: map[string]any{
				"from": store.StatusActive, "to": store.StatusSuspended, "reason": ReasonInactive,
				"inactive_after": o.InactiveAfter.String(), "last_seen_at": lastSeen(u).Format(time.RFC3339)}})
		if err != nil {
			return nil, err
		}
	}
	// The admins hear of the sweep once: the notifier's message.
	m, err := outbox.Message(ctx, events.TypeInactiveUsersSuspended, Source, o.ID, o.ID, digest)
	if err != nil {
		return nil, err
	}
	return users, tx.AppendOutbox(ctx, append(msgs, m)...)
}

// lastSeen is the last sign-in recorded on u, or its creation.
func lastSeen(u store.User) time.Time {
	if u.LastLoginAt.After(u.CreatedAt) {
		return u.LastLoginAt.UTC()
	}
	return u.CreatedAt.UTC()
}

// days is d in days when it is whole days ("90 days"), and as a duration
// otherwise.
func days(d time.Duration) string {
	const day = 24 * time.Hour
	switch {
	case d == day:
		return "1 day"
	case d%day == 0:
		return fmt.Sprintf("%d days", d/day)
	}
	return d.String()
}

// reactivate lets a person suspended for inactivity back in at their
// sign-in: a seat taken, status active, user.reactivated. It reports false
// (and answers the login) when no seat is free: refused like a new person
// in a full organisation.
func (d *Decider) reactivate(ctx context.Context, tx store.Tx, dec *decision, org store.Organization, user store.User, loginID string, id events.Identity) (store.User, bool, error) {
	seated, err := tx.TakeSeat(ctx, org.ID)
	if errors.Is(err, store.ErrSeatsExhausted) {
		dec.refuse(events.OutcomeRejected, events.ReasonSeatsExhausted,
			"organisation %q uses all of its %d seats: user %s, suspended for not signing in, comes back when a seat is free", org.ID, org.MaxSeats, user.ID)
		dec.res.User = userRef(user)
		return user, false, d.emit(ctx, dec, events.TypeSeatsExhausted, org.ID, org.ID, events.SeatsExhausted{
			OrganizationID: org.ID, MaxSeats: org.MaxSeats, SeatsUsed: seated.SeatsUsed,
			ConnectionID: id.ConnectionID, ExternalID: id.ExternalID, Email: id.Email, LoginID: loginID,
		})
	} else if err != nil {
		return user, false, err
	}
	back, err := tx.SetUserStatus(ctx, org.ID, user.ID, store.StatusActive)
	if err != nil {
		return user, false, err
	}
	actor := events.Actor{Type: store.ActorSystem, ID: actorSignIn, Name: "signed in after a suspension for inactivity"}
	if err := d.emit(ctx, dec, events.TypeUserReactivated, org.ID, back.ID, events.UserStatusChanged{
		User: userEvent(back, id), PreviousStatus: events.PreviousStatusSuspended, Actor: actor, Reason: ReasonInactive}); err != nil {
		return user, false, err
	}
	err = tx.AppendAudit(ctx, store.AuditEntry{OrganizationID: org.ID, ActorType: store.ActorSystem, ActorID: actorSignIn,
		ActorName: actor.Name, Action: "user.reactivate", Target: back.ID, Details: map[string]any{
			"from": store.StatusSuspended, "to": store.StatusActive, "reason": ReasonInactive, "login_id": loginID,
			"connection_id": id.ConnectionID}})
	if err != nil {
		return user, false, err
	}
	d.log.InfoContext(ctx, "person suspended for inactivity signed in again: reactivated", "login_id", loginID, "org", org.ID, "user_id", back.ID)
	return back, true, nil
}
