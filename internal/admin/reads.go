package admin

import (
	"context"
	"time"

	"github.com/jitprov/jitprov/internal/store"
)

// Organizations lists the organisations p may see.
func (c *Core) Organizations(ctx context.Context, p Principal) ([]store.Organization, error) {
	all, err := c.store.Organizations(ctx)
	if err != nil {
		return nil, mapErr(err)
	}
	var out []store.Organization
	for _, o := range all {
		if c.may(p, o, false) == nil {
			out = append(out, o)
		}
	}
	return out, nil
}

// OrganizationDetail is an organisation with its connections.
type OrganizationDetail struct {
	Organization store.Organization
	Connections  []store.Connection
}

// Organization shows one organisation.
func (c *Core) Organization(ctx context.Context, p Principal, orgID string) (OrganizationDetail, error) {
	var out OrganizationDetail
	err := c.inTx(ctx, p, orgID, false, func(tx store.Tx, org store.Organization) error {
		conns, err := tx.Connections(ctx, org.ID)
		out = OrganizationDetail{Organization: org, Connections: conns}
		return err
	})
	return out, err
}

// Users lists an organisation's users (f.OrganizationID).
func (c *Core) Users(ctx context.Context, p Principal, f store.UserFilter) (store.UserPage, error) {
	var out store.UserPage
	err := c.inTx(ctx, p, f.OrganizationID, false, func(tx store.Tx, org store.Organization) error {
		var err error
		out, err = tx.ListUsers(ctx, f)
		return err
	})
	return out, err
}

// UserDetail is a user with their identities, the decisions about them,
// their role reviews and the admin actions on them.
type UserDetail struct {
	User       store.User
	Identities []store.Identity
	Decisions  []store.Decision
	Reviews    []store.RoleReview
	Audit      []store.AuditEntry
	// Conflicts are the changes of the user's fields their owners
	// overruled (the organisation's field_owners), latest first.
	Conflicts []store.FieldConflict
}

// User shows one user.
func (c *Core) User(ctx context.Context, p Principal, orgID, userID string) (UserDetail, error) {
	var out UserDetail
	err := c.inTx(ctx, p, orgID, false, func(tx store.Tx, org store.Organization) error {
		u, err := tx.UserByID(ctx, org.ID, userID)
		if err != nil {
			return err
		}
		out.User = u
		if out.Identities, err = tx.Identities(ctx, u.ID); err != nil {
			return err
		}
		ds, err := tx.ListDecisions(ctx, store.DecisionFilter{OrganizationID: org.ID, UserID: u.ID, Limit: 20})
		if err != nil {
			return err
		}
		out.Decisions = ds.Decisions
		if out.Reviews, err = tx.ListRoleReviews(ctx, store.ReviewFilter{OrganizationID: org.ID, UserID: u.ID}); err != nil {
			return err
		}
		audit, err := tx.ListAudit(ctx, store.AuditFilter{OrganizationID: org.ID, Target: u.ID, Limit: 20})
		if err != nil {
			return err
		}
		out.Audit = audit.Entries
		conflicts, err := tx.ListFieldConflicts(ctx, store.ConflictFilter{OrganizationID: org.ID, UserID: u.ID, Limit: 20})
		out.Conflicts = conflicts.Conflicts
		return err
	})
	return out, err
}

// FieldConflicts lists the changes of an organisation's users' fields
// that the fields' owners overruled (f.OrganizationID; f.UserID and
// f.Field narrow it), latest first: what a sign-in or SCIM wanted, and
// what the user kept.
func (c *Core) FieldConflicts(ctx context.Context, p Principal, f store.ConflictFilter) (store.ConflictPage, error) {
	var out store.ConflictPage
	err := c.inTx(ctx, p, f.OrganizationID, false, func(tx store.Tx, org store.Organization) error {
		var err error
		out, err = tx.ListFieldConflicts(ctx, f)
		return err
	})
	return out, err
}

// Reviews lists an organisation's role reviews, pending first.
func (c *Core) Reviews(ctx context.Context, p Principal, f store.ReviewFilter) ([]store.RoleReview, error) {
	var out []store.RoleReview
	err := c.inTx(ctx, p, f.OrganizationID, false, func(tx store.Tx, org store.Organization) error {
		var err error
		out, err = tx.ListRoleReviews(ctx, f)
		return err
	})
	return out, err
}

// Decisions lists an organisation's provisioning decisions: why was Bob
// refused?
func (c *Core) Decisions(ctx context.Context, p Principal, f store.DecisionFilter) (store.DecisionPage, error) {
	var out store.DecisionPage
	err := c.inTx(ctx, p, f.OrganizationID, false, func(tx store.Tx, org store.Organization) error {
		var err error
		out, err = tx.ListDecisions(ctx, f)
		return err
	})
	return out, err
}

// Audit lists the admin actions on an organisation.
func (c *Core) Audit(ctx context.Context, p Principal, f store.AuditFilter) (store.AuditPage, error) {
	var out store.AuditPage
	err := c.inTx(ctx, p, f.OrganizationID, false, func(tx store.Tx, org store.Organization) error {
		var err error
		out, err = tx.ListAudit(ctx, f)
		return err
	})
	return out, err
}

// Dashboard is an organisation at a glance: seats, the pending reviews,
// and first logins and refusals per day.
type Dashboard struct {
	Organization   store.Organization
	PendingReviews int
	// Days are the last days' decisions per outcome, oldest first.
	Days []store.DayCount
}

// DashboardDays is how many days the dashboard's chart shows.
const DashboardDays = 30

// Dashboard shows an organisation at a glance.
func (c *Core) Dashboard(ctx context.Context, p Principal, orgID string) (Dashboard, error) {
	var out Dashboard
	err := c.inTx(ctx, p, orgID, false, func(tx store.Tx, org store.Organization) error {
		out.Organization = org
		pending, err := tx.ListRoleReviews(ctx, store.ReviewFilter{OrganizationID: org.ID, Status: store.ReviewPending, Limit: store.MaxPageSize})
		if err != nil {
			return err
		}
		out.PendingReviews = len(pending)
		now := c.now()
		since := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.UTC).AddDate(0, 0, -(DashboardDays - 1))
		out.Days, err = tx.DecisionCounts(ctx, org.ID, since)
		return err
	})
	return out, err
}
