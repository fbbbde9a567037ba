package sqlite

import (
	"context"
	"errors"
	"fmt"

	"github.com/jitprov/jitprov/internal/store"
)

// LookupLogins implements store.Tx, one statement after another: SQLite
// runs in this process, a statement costs no round trip, and the write
// lock held since BEGIN IMMEDIATE already makes the reads stable.
func (x *tx) LookupLogins(ctx context.Context, orgID string, _ bool, logins []store.LoginKey) (store.GroupLookup, error) {
	var g store.GroupLookup
	o, err := x.Organization(ctx, orgID)
	switch {
	case err == nil:
		g.Organization, g.OrganizationFound = o, true
	case !errors.Is(err, store.ErrNotFound):
		return g, err
	}
	if g.Connections, err = x.Connections(ctx, orgID); err != nil {
		return g, err
	}
	g.Logins = make([]store.LoginLookup, len(logins))
	for i, k := range logins {
		l := &g.Logins[i]
		if d, err := x.Decision(ctx, k.LoginID); err == nil {
			l.Decision = &d
		} else if !errors.Is(err, store.ErrNotFound) {
			return g, err
		}
		if u, err := x.UserByIdentity(ctx, orgID, k.ConnectionID, k.ExternalID); err == nil {
			l.IdentityUserID = u.ID
		} else if !errors.Is(err, store.ErrNotFound) {
			return g, err
		}
		if k.Email == "" {
			continue
		}
		if u, err := x.UserByEmail(ctx, orgID, k.Email); err == nil {
			l.EmailUserID = u.ID
		} else if !errors.Is(err, store.ErrNotFound) {
			return g, err
		}
	}
	return g, nil
}

// WriteGroup implements store.Tx with the single writes, in order.
func (x *tx) WriteGroup(ctx context.Context, w store.GroupWrites) (store.Organization, error) {
	for _, nu := range w.Users {
		if err := x.createWithIdentity(ctx, nu); err != nil {
			return store.Organization{}, err
		}
	}
	for _, r := range w.Reviews {
		if _, err := x.CreateRoleReview(ctx, r); err != nil {
			return store.Organization{}, err
		}
	}
	for _, e := range w.Audit {
		if err := x.AppendAudit(ctx, e); err != nil {
			return store.Organization{}, err
		}
	}
	if err := x.AppendOutbox(ctx, w.Outbox...); err != nil {
		return store.Organization{}, err
	}
	for _, d := range w.Decisions {
		if err := x.RecordDecision(ctx, d); err != nil {
			return store.Organization{}, err
		}
	}
	if w.Seats.Seats == 0 {
		return store.Organization{}, nil
	}
	return x.reserveSeats(ctx, w.OrganizationID, w.Seats)
}

// createWithIdentity creates a user and its identity at the user's
// CreatedAt, when set.
func (x *tx) createWithIdentity(ctx context.Context, nu store.NewUser) error {
	if at := nu.User.CreatedAt; !at.IsZero() {
		now := x.now
		x.now = at
		defer func() { x.now = now }()
	}
	if _, err := x.CreateUser(ctx, nu.User); err != nil {
		return err
	}
	_, err := x.LinkIdentity(ctx, nu.Identity)
	return err
}

func (x *tx) reserveSeats(ctx context.Context, orgID string, r store.SeatReservation) (store.Organization, error) {
	if err := x.check(); err != nil {
		return store.Organization{}, err
	}
	o, err := scanOrg(x.t.QueryRowContext(ctx, `UPDATE organizations
		SET seats_used = seats_used + ?1, updated_at = ?2
		WHERE id = ?3 AND seats_used + ?1 <= max_seats
		  AND (?4 < 0 OR seats_used = ?4)
		  AND (?5 <= 0 OR seats_used >= ?5 OR seats_used + ?1 < ?5)
		RETURNING `+orgColumns, r.Seats, formatTime(x.now), orgID, r.IfUsedArg(), r.NotCrossing))
	if err == nil {
		return o, nil
	}
	if err := x.fail(err); !errors.Is(err, store.ErrNotFound) {
		return o, fmt.Errorf("sqlite: reserve %d seats in %q: %w", r.Seats, orgID, err)
	}
	o, err = x.Organization(ctx, orgID)
	if err != nil {
		return o, err
	}
	return o, fmt.Errorf("sqlite: organisation %q uses %d of %d seats; %d more not reserved: %w", orgID, o.SeatsUsed, o.MaxSeats, r.Seats, store.ErrSeatsExhausted)
}
