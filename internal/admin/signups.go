package admin

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/jitprov/jitprov/events"
	"github.com/jitprov/jitprov/internal/outbox"
	"github.com/jitprov/jitprov/internal/store"
)

// Held sign-ups: a new person whom the organisation holds for an admin's
// approval (new_people: hold, or when_full: hold with no seat free) is a
// user with status held, their identity linked, no seat. Admins list them
// with Users(store.UserFilter{Status: store.StatusHeld}) and approve or
// deny each.

// ApproveSignup lets a held person in: they take a seat at this moment
// (ErrNoSeat, saying what to do, when none is free), become active, and
// user.created announces them — other services hear of them from now on,
// with the login that was held. The person's waiting page notices and
// signs them in. A user who is not held (approved or denied already) is a
// conflict, never a second change.
func (c *Core) ApproveSignup(ctx context.Context, p Principal, orgID, userID string) (Result, error) {
	var res Result
	err := c.inTx(ctx, p, orgID, true, func(tx store.Tx, org store.Organization) error {
		u, err := tx.UserByID(ctx, org.ID, userID)
		if err != nil {
			return err
		}
		res.User = u
		if u.Status != store.StatusHeld {
			return fmt.Errorf("%w: user %s is %s, not a held sign-up (approved or denied already?)", ErrConflict, u.ID, u.Status)
		}
		seated, err := tx.TakeSeat(ctx, org.ID)
		if errors.Is(err, store.ErrSeatsExhausted) {
			return fmt.Errorf("%w: organisation %q uses %d of its %d seats; free a seat (deprovision someone who left) or raise max_seats, then approve %s",
				ErrNoSeat, org.ID, seated.SeatsUsed, org.MaxSeats, cmp.Or(u.Email, u.ID))
		} else if err != nil {
			return err
		}
		updated, err := tx.SetUserStatus(ctx, org.ID, u.ID, store.StatusActive)
		if err != nil {
			return err
		}
		loginID, conn, ext, err := heldLogin(ctx, tx, org.ID, u.ID)
		if err != nil {
			return err
		}
		ch := &change{ctx: ctx, p: p, org: org.ID}
		if err := ch.emit(events.TypeUserCreated, u.ID, events.UserCreated{User: outbox.User(updated, conn, ext), LoginID: loginID}); err != nil {
			return err
		}
		res = Result{User: updated, Changed: true}
		return ch.commit(tx, "signup.approve", u.ID, map[string]any{"from": u.Status, "to": updated.Status,
			"login_id": loginID, "seats_used": seated.SeatsUsed})
	})
	return res, err
}

// DenySignup keeps a held person out, for the reason given (required):
// they become deprovisioned — never a seat — and user.deprovisioned
// (previous status held) records why. Their waiting page says so, and JIT
// does not re-create them. A user who is not held is a conflict.
func (c *Core) DenySignup(ctx context.Context, p Principal, orgID, userID, reason string) (Result, error) {
	reason, err := checkReason(reason, true)
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
		if u.Status != store.StatusHeld {
			return fmt.Errorf("%w: user %s is %s, not a held sign-up (approved or denied already?)", ErrConflict, u.ID, u.Status)
		}
		updated, err := tx.SetUserStatus(ctx, org.ID, u.ID, store.StatusDeprovisioned)
		if err != nil {
			return err
		}
		ch := &change{ctx: ctx, p: p, org: org.ID}
		if err := ch.emit(events.TypeUserDeprovisioned, u.ID, events.UserStatusChanged{User: userEvent(updated),
			PreviousStatus: events.PreviousStatusHeld, Actor: p.actor(), Reason: reason}); err != nil {
			return err
		}
		res = Result{User: updated, Changed: true}
		return ch.commit(tx, "signup.deny", u.ID, map[string]any{"from": u.Status, "to": updated.Status, "reason": reason})
	})
	return res, err
}

// heldLogin is the login that held user userID (the oldest held decision
// about them) and its identity: user.created names them, as a sign-in's
// does.
func heldLogin(ctx context.Context, tx store.Tx, orgID, userID string) (loginID, conn, ext string, err error) {
	page, err := tx.ListDecisions(ctx, store.DecisionFilter{OrganizationID: orgID, UserID: userID,
		Outcome: string(events.OutcomeHeld), Limit: store.MaxPageSize})
	if err != nil {
		return "", "", "", err
	}
	if len(page.Decisions) > 0 {
		oldest := slices.MinFunc(page.Decisions, func(a, b store.Decision) int { return a.DecidedAt.Compare(b.DecidedAt) })
		return oldest.LoginID, oldest.ConnectionID, oldest.ExternalID, nil
	}
	// Held some other way (an admin set the status): no login to name.
	ids, err := tx.Identities(ctx, userID)
	if err != nil || len(ids) == 0 {
		return "admin-approval", "", "", err
	}
	return "admin-approval", ids[0].ConnectionID, ids[0].ExternalID, nil
}
