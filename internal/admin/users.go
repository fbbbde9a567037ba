package admin

import (
	"context"
	"fmt"
	"strings"

	"github.com/jitprov/jitprov/events"
	"github.com/jitprov/jitprov/internal/store"
)

// maxReason bounds an admin's reason, as the events carry it.
const maxReason = 1024

func checkReason(reason string, required bool) (string, error) {
	reason = strings.TrimSpace(reason)
	switch {
	case required && reason == "":
		return "", invalid("reason", "required: say why, for the person's record and the audit")
	case len(reason) > maxReason:
		return "", invalid("reason", "%d characters is more than %d", len(reason), maxReason)
	}
	return reason, nil
}

// Result is a user after an action, and whether the action changed it (a
// repeated request changes nothing and emits nothing).
type Result struct {
	User    store.User
	Changed bool
}

// statusChange is one of suspend, reactivate and deprovision.
type statusChange struct {
	action string      // audit action
	to     string      // the status after
	from   []string    // statuses it applies to
	event  events.Type // announced as
}

var (
	suspend     = statusChange{"user.suspend", store.StatusSuspended, []string{store.StatusActive}, events.TypeUserSuspended}
	reactivate  = statusChange{"user.reactivate", store.StatusActive, []string{store.StatusSuspended, store.StatusDeprovisioned}, events.TypeUserReactivated}
	deprovision = statusChange{"user.deprovision", store.StatusDeprovisioned, []string{store.StatusActive, store.StatusSuspended}, events.TypeUserDeprovisioned}
)

// Suspend stops a user signing in, keeping their seat and data: their next
// login, the fast path included, is refused. Suspending a suspended user
// changes nothing.
func (c *Core) Suspend(ctx context.Context, p Principal, orgID, userID, reason string) (Result, error) {
	return c.setStatus(ctx, p, orgID, userID, reason, suspend)
}

// Reactivate lets a suspended or deprovisioned user sign in again; a
// deprovisioned one, or one suspended for inactivity, takes a seat
// (ErrNoSeat when none is free).
func (c *Core) Reactivate(ctx context.Context, p Principal, orgID, userID, reason string) (Result, error) {
	return c.setStatus(ctx, p, orgID, userID, reason, reactivate)
}

// Deprovision removes a user's access and frees their seat at once; their
// next login is refused, and JIT does not re-create them.
func (c *Core) Deprovision(ctx context.Context, p Principal, orgID, userID, reason string) (Result, error) {
	return c.setStatus(ctx, p, orgID, userID, reason, deprovision)
}

func (c *Core) setStatus(ctx context.Context, p Principal, orgID, userID, reason string, sc statusChange) (Result, error) {
	reason, err := checkReason(reason, false)
	if err != nil {
		return Result{}, err
	}
	var res Result
	err = c.inTx(ctx, p, orgID, true, func(tx store.Tx, org store.Organization) error {
		u, err := tx.UserByID(ctx, org.ID, userID)
		if err != nil {
			return err
		}
		res.User = u
		if u.Status == sc.to {
			return nil // asked again: nothing to do
		}
		if !contains(sc.from, u.Status) {
			return fmt.Errorf("%w: user %s is %s", ErrConflict, u.ID, u.Status)
		}
		// A person suspended for inactivity holds no seat (the sweep
		// freed it), as a deprovisioned one does not.
		seated := u.Status == store.StatusActive || (u.Status == store.StatusSuspended && u.SuspendedReason != store.SuspendedInactive)
		switch {
		case sc.to == store.StatusDeprovisioned && seated:
			if _, err := tx.ReleaseSeat(ctx, org.ID); err != nil {
				return err
			}
		case sc.to == store.StatusActive && !seated:
			if _, err := tx.TakeSeat(ctx, org.ID); err != nil {
				return err // ErrSeatsExhausted: no seat to come back to
			}
		}
		updated, err := tx.SetUserStatus(ctx, org.ID, u.ID, sc.to)
		if err != nil {
			return err
		}
		ch := &change{ctx: ctx, p: p, org: org.ID}
		if err := ch.emit(sc.event, u.ID, events.UserStatusChanged{User: userEvent(updated), PreviousStatus: u.Status,
			Actor: p.actor(), Reason: reason}); err != nil {
			return err
		}
		res = Result{User: updated, Changed: true}
		return ch.commit(tx, sc.action, u.ID, map[string]any{"from": u.Status, "to": sc.to, "reason": reason})
	})
	return res, err
}

// ChangeRole gives a user another of the organisation's roles: never above
// what a user principal holds, the admin role only by an org admin or an
// operator. The same role changes nothing.
func (c *Core) ChangeRole(ctx context.Context, p Principal, orgID, userID, role string) (Result, error) {
	var res Result
	err := c.inTx(ctx, p, orgID, true, func(tx store.Tx, org store.Organization) error {
		if err := c.mayGrant(p, org, role); err != nil {
			return err
		}
		u, err := tx.UserByID(ctx, org.ID, userID)
		if err != nil {
			return err
		}
		res.User = u
		if u.Role == role {
			return nil
		}
		// Taking a role away is granting the lower one: an admin may not
		// lower someone above themselves either.
		if err := c.mayGrant(p, org, u.Role); err != nil {
			return fmt.Errorf("%w: user %s holds %q, above you", ErrForbidden, u.ID, u.Role)
		}
		updated, err := tx.SetUserRole(ctx, org.ID, u.ID, role)
		if err != nil {
			return err
		}
		ch := &change{ctx: ctx, p: p, org: org.ID}
		if err := ch.emit(events.TypeUserRoleChanged, u.ID, events.UserRoleChanged{User: userEvent(updated),
			PreviousRole: u.Role, Actor: p.actor()}); err != nil {
			return err
		}
		res = Result{User: updated, Changed: true}
		return ch.commit(tx, "user.change-role", u.ID, map[string]any{"from": u.Role, "to": role})
	})
	return res, err
}

// Unlink removes an identity from its user (the user and its seat stay):
// for an identity linked to the wrong person, or before linking it to
// another user with Link.
func (c *Core) Unlink(ctx context.Context, p Principal, orgID, connID, externalID string) (Result, error) {
	var res Result
	err := c.inTx(ctx, p, orgID, true, func(tx store.Tx, org store.Organization) error {
		id, err := tx.UnlinkIdentity(ctx, org.ID, connID, externalID)
		if err != nil {
			return err
		}
		u, err := tx.UserByID(ctx, org.ID, id.UserID)
		if err != nil {
			return err
		}
		ch := &change{ctx: ctx, p: p, org: org.ID}
		if err := ch.emit(events.TypeUserIdentityUnlinked, u.ID, events.IdentityUnlinked{User: userEvent(u),
			Identity: events.LinkedIdentity{ConnectionID: connID, ExternalID: externalID}, Actor: p.actor()}); err != nil {
			return err
		}
		res = Result{User: u, Changed: true}
		return ch.commit(tx, "identity.unlink", u.ID, map[string]any{"connection_id": connID, "external_id": externalID})
	})
	return res, err
}

// Link links an identity to a user, for the cases the linking rules
// refuse (an admin's account, an unverified email). The identity must be
// nobody's (Unlink it first); linking it again to its user changes
// nothing.
func (c *Core) Link(ctx context.Context, p Principal, orgID, userID, connID, externalID string) (Result, error) {
	if strings.TrimSpace(externalID) == "" {
		return Result{}, invalid("external_id", "required: the person's id at the IdP")
	}
	var res Result
	err := c.inTx(ctx, p, orgID, true, func(tx store.Tx, org store.Organization) error {
		u, err := tx.UserByID(ctx, org.ID, userID)
		if err != nil {
			return err
		}
		res.User = u
		if owner, err := tx.UserByIdentity(ctx, org.ID, connID, externalID); err == nil {
			if owner.ID == u.ID {
				return nil
			}
			return fmt.Errorf("%w: the identity is linked to user %s; unlink it first", ErrConflict, owner.ID)
		}
		if _, err := tx.Connection(ctx, org.ID, connID); err != nil {
			return fmt.Errorf("connection %q: %w", connID, err)
		}
		if _, err := tx.LinkIdentity(ctx, store.Identity{OrganizationID: org.ID, ConnectionID: connID, ExternalID: externalID,
			UserID: u.ID, LinkedBy: store.LinkedByAdmin}); err != nil {
			return err
		}
		ch := &change{ctx: ctx, p: p, org: org.ID}
		if err := ch.emit(events.TypeUserIdentityLinked, u.ID, events.IdentityLinked{User: userEvent(u),
			Identity: events.LinkedIdentity{ConnectionID: connID, ExternalID: externalID}, LinkedBy: events.LinkedByAdmin}); err != nil {
			return err
		}
		res = Result{User: u, Changed: true}
		return ch.commit(tx, "identity.link", u.ID, map[string]any{"connection_id": connID, "external_id": externalID})
	})
	return res, err
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
