package admin

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jitprov/jitprov/events"
	"github.com/jitprov/jitprov/internal/store"
)

// DryRun tells what JIT would decide for a login of id now — create with
// role X, link to user Y, refuse for want of a seat, open a review for
// role Z — without writing anything: the decision is made in a
// transaction that is rolled back.
func (c *Core) DryRun(ctx context.Context, p Principal, orgID string, id events.Identity) (events.ProvisioningResult, error) {
	if id.OrganizationID == "" {
		id.OrganizationID = orgID
	}
	if id.OrganizationID != orgID {
		return events.ProvisioningResult{}, invalid("organization_id", "%q is not the organisation of the request, %q", id.OrganizationID, orgID)
	}
	if id.AuthenticatedAt.IsZero() {
		id.AuthenticatedAt = c.now()
	}
	if _, err := events.New(events.TypeLoginFirstSeen, Source, "dry-run", id); err != nil {
		return events.ProvisioningResult{}, invalid("identity", "%v", err)
	}
	// Only who may read the organisation may ask.
	if err := c.inTx(ctx, p, orgID, false, func(store.Tx, store.Organization) error { return nil }); err != nil {
		return events.ProvisioningResult{}, err
	}
	res, err := c.decider.Predict(ctx, id)
	return res, mapErr(err)
}

// ExpireReviews closes the pending role reviews older than age, in every
// organisation, as the system: the user keeps their role, and
// role-review.decided says expired. It returns how many it closed.
func (c *Core) ExpireReviews(ctx context.Context, age time.Duration) (int, error) {
	if age <= 0 {
		return 0, invalid("age", "must be positive, not %s", age)
	}
	orgs, err := c.store.Organizations(ctx)
	if err != nil {
		return 0, mapErr(err)
	}
	p := Principal{Kind: store.ActorSystem, ID: "review-expiry", Name: fmt.Sprintf("reviews expire after %s", age), Write: true}
	cutoff := c.now().Add(-age)
	n := 0
	for _, o := range orgs {
		err := c.inTx(ctx, p, o.ID, true, func(tx store.Tx, org store.Organization) error {
			pending, err := tx.ListRoleReviews(ctx, store.ReviewFilter{OrganizationID: org.ID, Status: store.ReviewPending, Limit: store.MaxPageSize})
			if err != nil {
				return err
			}
			ch := &change{ctx: ctx, p: p, org: org.ID}
			var expired []string
			for _, r := range pending {
				if !r.CreatedAt.Before(cutoff) {
					continue
				}
				r, err := tx.DecideRoleReview(ctx, org.ID, r.ID, store.ReviewExpired, p.decidedBy(), "unanswered for "+age.String())
				if errors.Is(err, store.ErrConflict) {
					continue // answered (or expired by another replica) meanwhile
				} else if err != nil {
					return err
				}
				if err := ch.emit(events.TypeRoleReviewDecided, r.ID, decided(r, p)); err != nil {
					return err
				}
				expired = append(expired, r.ID)
			}
			if len(expired) == 0 {
				return nil
			}
			n += len(expired)
			return ch.commit(tx, "review.expire", "", map[string]any{"reviews": expired, "age": age.String()})
		})
		if err != nil {
			return n, fmt.Errorf("expire the reviews of %q: %w", o.ID, err)
		}
	}
	return n, nil
}
