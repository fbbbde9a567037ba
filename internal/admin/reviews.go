package admin

import (
	"context"
	"fmt"

	"github.com/jitprov/jitprov/events"
	"github.com/jitprov/jitprov/internal/store"
)

// ReviewResult is a review after a decision, and its user.
type ReviewResult struct {
	Review store.RoleReview
	User   store.User
}

// ApproveReview gives the user the role they asked for and closes the
// review. Approving the organisation's admin role takes an org admin or an
// operator. A review decided already is a conflict, never a second change.
func (c *Core) ApproveReview(ctx context.Context, p Principal, orgID, reviewID string) (ReviewResult, error) {
	var res ReviewResult
	err := c.inTx(ctx, p, orgID, true, func(tx store.Tx, org store.Organization) error {
		r, err := tx.RoleReview(ctx, org.ID, reviewID)
		if err != nil {
			return err
		}
		if r.Status != store.ReviewPending {
			return fmt.Errorf("%w: review %s is %s already", ErrConflict, r.ID, r.Status)
		}
		if err := c.mayGrant(p, org, r.RequestedRole); err != nil {
			return err
		}
		u, err := tx.UserByID(ctx, org.ID, r.UserID)
		if err != nil {
			return err
		}
		if r, err = tx.DecideRoleReview(ctx, org.ID, r.ID, store.ReviewApproved, p.decidedBy(), ""); err != nil {
			return err
		}
		ch := &change{ctx: ctx, p: p, org: org.ID}
		updated := u
		if u.Role != r.RequestedRole {
			if updated, err = tx.SetUserRole(ctx, org.ID, u.ID, r.RequestedRole); err != nil {
				return err
			}
			if err := ch.emit(events.TypeUserRoleChanged, u.ID, events.UserRoleChanged{User: userEvent(updated),
				PreviousRole: u.Role, Actor: p.actor(), ReviewID: r.ID}); err != nil {
				return err
			}
		}
		if err := ch.emit(events.TypeRoleReviewDecided, r.ID, decided(r, p)); err != nil {
			return err
		}
		res = ReviewResult{Review: r, User: updated}
		return ch.commit(tx, "review.approve", r.ID, map[string]any{"user_id": u.ID, "role": r.RequestedRole, "previous_role": u.Role})
	})
	return res, err
}

// DenyReview closes a review without changing the role; the reason is
// required.
func (c *Core) DenyReview(ctx context.Context, p Principal, orgID, reviewID, reason string) (ReviewResult, error) {
	reason, err := checkReason(reason, true)
	if err != nil {
		return ReviewResult{}, err
	}
	var res ReviewResult
	err = c.inTx(ctx, p, orgID, true, func(tx store.Tx, org store.Organization) error {
		r, err := tx.RoleReview(ctx, org.ID, reviewID)
		if err != nil {
			return err
		}
		if r.Status != store.ReviewPending {
			return fmt.Errorf("%w: review %s is %s already", ErrConflict, r.ID, r.Status)
		}
		u, err := tx.UserByID(ctx, org.ID, r.UserID)
		if err != nil {
			return err
		}
		if r, err = tx.DecideRoleReview(ctx, org.ID, r.ID, store.ReviewDenied, p.decidedBy(), reason); err != nil {
			return err
		}
		ch := &change{ctx: ctx, p: p, org: org.ID}
		if err := ch.emit(events.TypeRoleReviewDecided, r.ID, decided(r, p)); err != nil {
			return err
		}
		res = ReviewResult{Review: r, User: u}
		return ch.commit(tx, "review.deny", r.ID, map[string]any{"user_id": u.ID, "role": r.RequestedRole, "reason": reason})
	})
	return res, err
}

func decided(r store.RoleReview, p Principal) events.RoleReviewDecided {
	return events.RoleReviewDecided{ReviewID: r.ID, OrganizationID: r.OrganizationID, UserID: r.UserID,
		RequestedRole: r.RequestedRole, Decision: r.Status, Reason: r.Reason, Actor: p.actor(), DecidedAt: r.DecidedAt.UTC()}
}
