package provisioner

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/google/uuid"

	"github.com/jitprov/jitprov/events"
	"github.com/jitprov/jitprov/internal/connection"
	"github.com/jitprov/jitprov/internal/outbox"
	"github.com/jitprov/jitprov/internal/store"
)

// Source is the CloudEvents source of every event the provisioner emits.
const Source = "/jitprov/provisioner"

// maxAttempts bounds how often a decision is retried after losing a race
// (a concurrent login of the same person, a duplicate delivery).
const maxAttempts = 8

// ErrLoginIDReused marks a login whose id was already decided for another
// identity: a forged or broken publisher. It is never retried, and the
// stored decision is not disclosed.
var ErrLoginIDReused = errors.New("provisioner: login id reused")

// Decider makes provisioning decisions, one transaction each.
type Decider struct {
	store store.Store
	log   *slog.Logger
	now   func() time.Time
	// alone are the organisations decided each in its own transaction
	// for a while, not with others (seats short lately).
	alone *aloneOrgs
}

// NewDecider returns a Decider on s.
func NewDecider(s store.Store, log *slog.Logger) *Decider {
	return &Decider{store: s, log: log, now: func() time.Time { return time.Now().UTC() }, alone: &aloneOrgs{}}
}

// Decide provisions the identity of login loginID and returns the outcome.
// It is idempotent: deciding the same login again returns the first
// decision and changes nothing. Refusals and rejections are outcomes, not
// errors; an error means nothing was decided and the login may be retried
// (errors.Is(err, store.ErrUnavailable) when the database is unreachable).
func (d *Decider) Decide(ctx context.Context, loginID string, id events.Identity) (events.ProvisioningResult, error) {
	return d.run(ctx, loginID, id, false)
}

// errPredicted rolls a predicted decision back.
var errPredicted = errors.New("provisioner: predicted, rolled back")

// Predict is Decide without its effects: the same decision, made in a
// transaction that is rolled back, so that it writes nothing (no user, no
// seat, no event, no audit) and tells what a login of id would get now.
func (d *Decider) Predict(ctx context.Context, id events.Identity) (events.ProvisioningResult, error) {
	return d.run(ctx, "dry-run-"+uuid.NewString(), id, true)
}

func (d *Decider) run(ctx context.Context, loginID string, id events.Identity, predict bool) (events.ProvisioningResult, error) {
	var lastErr error
	for attempt := 1; attempt <= maxAttempts; attempt++ {
		var res events.ProvisioningResult
		err := d.store.InTx(ctx, func(ctx context.Context, tx store.Tx) error {
			var err error
			res, err = d.decide(ctx, tx, loginID, id)
			if err == nil && predict {
				return errPredicted
			}
			return err
		})
		if err == nil || (predict && errors.Is(err, errPredicted)) {
			return res, nil
		}
		if !errors.Is(err, store.ErrConflict) {
			return res, err
		}
		// Lost a race: a concurrent transaction created this person or
		// decided this login. The next attempt sees its result.
		lastErr = err
		d.log.DebugContext(ctx, "decision lost a race, retrying", "login_id", loginID, "attempt", attempt, "err", err)
		select {
		case <-ctx.Done():
			return res, ctx.Err()
		case <-time.After(time.Duration(rand.IntN(5*attempt)+1) * time.Millisecond):
		}
	}
	return events.ProvisioningResult{}, fmt.Errorf("provisioner: login %s: still conflicting after %d attempts: %w", loginID, maxAttempts, lastErr)
}

// RecordFailure stores the failed answer to a login given up on, as its
// decision, so that the edge's waiting page can tell its person rather
// than wait out its token; a redelivery is answered the same. It is
// best-effort (the database may be what failed): a login already decided
// is left as it is.
func (d *Decider) RecordFailure(ctx context.Context, loginID string, id events.Identity, res events.ProvisioningResult) error {
	raw, err := json.Marshal(res)
	if err != nil {
		return fmt.Errorf("provisioner: encode the failed answer: %w", err)
	}
	err = d.store.InTx(ctx, func(ctx context.Context, tx store.Tx) error {
		return tx.RecordDecision(ctx, store.Decision{
			LoginID: loginID, OrganizationID: id.OrganizationID, ConnectionID: id.ConnectionID, ExternalID: id.ExternalID,
			Outcome: string(res.Outcome), Reason: string(res.Reason), Result: raw, DecidedAt: res.DecidedAt,
		})
	})
	if errors.Is(err, store.ErrConflict) {
		return nil // decided meanwhile
	}
	return err
}

// decision accumulates what one transaction decided.
type decision struct {
	res    events.ProvisioningResult
	outbox []store.OutboxMessage
}

func (d *Decider) decide(ctx context.Context, tx store.Tx, loginID string, id events.Identity) (events.ProvisioningResult, error) {
	if prev, err := tx.Decision(ctx, loginID); err == nil {
		return storedAnswer(prev, loginID, id)
	} else if !errors.Is(err, store.ErrNotFound) {
		return events.ProvisioningResult{}, err
	}

	dec := &decision{res: events.ProvisioningResult{LoginID: loginID, DecidedAt: d.now()}}
	if err := d.provision(ctx, tx, dec, loginID, id); err != nil {
		return events.ProvisioningResult{}, err
	}
	if err := tx.AppendOutbox(ctx, dec.outbox...); err != nil {
		return events.ProvisioningResult{}, err
	}
	rec, err := dec.record(id)
	if err != nil {
		return events.ProvisioningResult{}, err
	}
	return dec.res, tx.RecordDecision(ctx, rec)
}

// storedAnswer is the answer to login loginID of id from its stored
// decision prev: a redelivery gets the first answer.
func storedAnswer(prev store.Decision, loginID string, id events.Identity) (events.ProvisioningResult, error) {
	if prev.OrganizationID != id.OrganizationID || prev.ConnectionID != id.ConnectionID || prev.ExternalID != id.ExternalID {
		return events.ProvisioningResult{}, fmt.Errorf("%w: login id %s was already decided for another identity", ErrLoginIDReused, loginID)
	}
	var res events.ProvisioningResult
	if err := json.Unmarshal(prev.Result, &res); err != nil {
		return res, fmt.Errorf("provisioner: stored decision for login %s is unreadable: %w", loginID, err)
	}
	return res, nil
}

// record is the decision's audit record, for login id.
func (dec *decision) record(id events.Identity) (store.Decision, error) {
	raw, err := json.Marshal(dec.res)
	if err != nil {
		return store.Decision{}, fmt.Errorf("provisioner: encode decision: %w", err)
	}
	var userID string
	if dec.res.User != nil {
		userID = dec.res.User.ID
	}
	return store.Decision{
		LoginID: dec.res.LoginID, OrganizationID: id.OrganizationID, ConnectionID: id.ConnectionID,
		ExternalID: id.ExternalID, Outcome: string(dec.res.Outcome), Reason: string(dec.res.Reason),
		UserID: userID, Result: raw, DecidedAt: dec.res.DecidedAt,
	}, nil
}

func (dec *decision) refuse(o events.Outcome, r events.Reason, msg string, args ...any) {
	dec.res.Outcome, dec.res.Reason, dec.res.Message = o, r, fmt.Sprintf(msg, args...)
}

// provision is the policy: lookup, link, update or create.
func (d *Decider) provision(ctx context.Context, tx store.Tx, dec *decision, loginID string, id events.Identity) error {
	org, err := tx.Organization(ctx, id.OrganizationID)
	if errors.Is(err, store.ErrNotFound) {
		dec.refuse(events.OutcomeRefused, events.ReasonUnknownOrganization,
			"organisation %q is not configured", id.OrganizationID)
		return nil
	} else if err != nil {
		return err
	}
	conns, err := tx.Connections(ctx, org.ID)
	if err != nil {
		return err
	}
	i := slices.IndexFunc(conns, func(c store.Connection) bool { return c.ID == id.ConnectionID })
	if i < 0 {
		dec.refuse(events.OutcomeRefused, events.ReasonUnknownConnection,
			"connection %q is not configured for organisation %q", id.ConnectionID, org.ID)
		return nil
	}
	conn := conns[i]

	user, err := tx.UserByIdentity(ctx, org.ID, id.ConnectionID, id.ExternalID)
	switch {
	case err == nil:
		return d.update(ctx, tx, dec, org, conn, user, link{}, loginID, id)
	case !errors.Is(err, store.ErrNotFound):
		return err
	case id.Email == "" && len(conns) > 1:
		// Nothing ties this identity to an account the person may already
		// have through another connection: a new user would be a second
		// account and a second seat for the same person.
		dec.refuse(events.OutcomeRefused, events.ReasonIdentityConflict,
			"the login through connection %q carries no email, and organisation %q has other connections (%s) through which this person may already have an account; "+
				"map the email attribute of connection %q so that its people can be matched, or link the identity by hand",
			id.ConnectionID, org.ID, otherConnections(conns, id.ConnectionID), id.ConnectionID)
		return nil
	case id.Email == "":
		return d.create(ctx, tx, dec, org, loginID, id)
	}
	user, err = tx.UserByEmail(ctx, org.ID, id.Email)
	if errors.Is(err, store.ErrNotFound) {
		return d.create(ctx, tx, dec, org, loginID, id) // a new person
	} else if err != nil {
		return err
	}
	ids, err := tx.Identities(ctx, user.ID)
	if err != nil {
		return err
	}
	if slices.ContainsFunc(ids, func(i store.Identity) bool {
		return i.ConnectionID == id.ConnectionID && i.ExternalID == id.ExternalID
	}) {
		// The same person, created by a concurrent login that committed
		// between the two lookups.
		return d.update(ctx, tx, dec, org, conn, user, link{}, loginID, id)
	}
	l, refusal := linkRule(org, conn, user, ids, id)
	if refusal != "" {
		dec.refuse(events.OutcomeRefused, l.reason, "%s", refusal)
		d.log.WarnContext(ctx, "login not linked to the existing user with its email", "login_id", loginID,
			"org", org.ID, "connection", id.ConnectionID, "user_id", user.ID, "reason", refusal)
		return nil
	}
	return d.update(ctx, tx, dec, org, conn, user, l, loginID, id)
}

func (d *Decider) create(ctx context.Context, tx store.Tx, dec *decision, org store.Organization, loginID string, id events.Identity) error {
	bootstrap := isInitialAdmin(org, id)
	if org.HoldsNewPeople() && !bootstrap {
		// Every new person waits for an admin's approval; an initial
		// admin named by the organisations file does not, or nobody
		// could ever approve anyone.
		return d.hold(ctx, tx, dec, org, events.ReasonApprovalRequired, org.SeatsUsed, loginID, id)
	}
	seated, err := tx.TakeSeat(ctx, org.ID)
	if errors.Is(err, store.ErrSeatsExhausted) {
		// A concurrent login of this same person may have taken the last
		// seat while this one waited on the organisation's row: look again
		// (a new statement sees what committed since) before turning them
		// away.
		if _, err := tx.UserByIdentity(ctx, org.ID, id.ConnectionID, id.ExternalID); err == nil {
			return fmt.Errorf("provisioner: login %s: %w: the person was created concurrently", loginID, store.ErrConflict)
		} else if !errors.Is(err, store.ErrNotFound) {
			return err
		}
		// Or the same person through another connection: a link needs no
		// seat, so decide again rather than turn them away.
		if id.Email != "" {
			if _, err := tx.UserByEmail(ctx, org.ID, id.Email); err == nil {
				return fmt.Errorf("provisioner: login %s: %w: a user with the email was created concurrently", loginID, store.ErrConflict)
			} else if !errors.Is(err, store.ErrNotFound) {
				return err
			}
		}
		if org.HoldsWhenFull() {
			return d.hold(ctx, tx, dec, org, events.ReasonSeatsExhausted, seated.SeatsUsed, loginID, id)
		}
		dec.refuse(events.OutcomeRejected, events.ReasonSeatsExhausted,
			"organisation %q uses all of its %d seats", org.ID, org.MaxSeats)
		return d.emit(ctx, dec, events.TypeSeatsExhausted, org.ID, org.ID, events.SeatsExhausted{
			OrganizationID: org.ID, MaxSeats: org.MaxSeats, SeatsUsed: seated.SeatsUsed,
			ConnectionID: id.ConnectionID, ExternalID: id.ExternalID, Email: id.Email, LoginID: loginID,
		})
	} else if err != nil {
		return err
	}
	role := decideRole(org, org.UpdatePolicy, newClaims(id), "", "")
	if bootstrap {
		// The organisations file names this person as an initial admin,
		// and their IdP vouches for the email: the one way JIT grants the
		// admin role, and only at the first sign-in. The grant is an
		// admin's (the file's), which no login takes away.
		role = roleDecision{Role: org.AdminRole(), Source: store.RoleSourceAdmin}
	}
	user, err := tx.CreateUser(ctx, newUser(org, id, role, store.StatusActive))
	if err != nil {
		return err // ErrConflict: a concurrent login created this person; retry
	}
	_, err = tx.LinkIdentity(ctx, store.Identity{OrganizationID: org.ID, ConnectionID: id.ConnectionID,
		ExternalID: id.ExternalID, UserID: user.ID, LinkedBy: store.LinkedByCreated})
	if err != nil {
		return err // ErrConflict: a concurrent login created this person; retry
	}
	if bootstrap {
		if err := tx.AppendAudit(ctx, bootstrapAudit(user, loginID)); err != nil {
			return err
		}
		d.log.InfoContext(ctx, "initial admin signed in for the first time: granted the admin role", "org", org.ID,
			"user_id", user.ID, "role", user.Role, "login_id", loginID)
	}
	dec.res.Outcome = events.OutcomeCreated
	dec.res.User = userRef(user)
	if err := d.emit(ctx, dec, events.TypeUserCreated, org.ID, user.ID, events.UserCreated{User: userEvent(user, id), LoginID: loginID}); err != nil {
		return err
	}
	if n := seatWarningAt(seated); n > 0 && seated.SeatsUsed == n {
		// The counter moves one seat at a time, so exactly one login takes
		// the seat that reaches the share: one warning per crossing.
		err := d.emit(ctx, dec, events.TypeSeatsThresholdReached, org.ID, org.ID, events.SeatsThresholdReached{
			OrganizationID: org.ID, MaxSeats: seated.MaxSeats, SeatsUsed: seated.SeatsUsed,
			ThresholdPercent: seated.SeatWarningPercent, UserID: user.ID, LoginID: loginID,
		})
		if err != nil {
			return err
		}
	}
	return d.review(ctx, tx, dec, user, role.Review, loginID)
}

// hold creates a new person as held: a user with status held and their
// identity linked, no seat taken, no user.created (other services hear of
// them when an admin approves), and a signup.held alert for the admins.
// The answer is provisioning.result v2's held. A role claimed above the
// ceiling opens no review: the person holds nothing to review yet.
func (d *Decider) hold(ctx context.Context, tx store.Tx, dec *decision, org store.Organization, reason events.Reason, seatsUsed int, loginID string, id events.Identity) error {
	role := decideRole(org, org.UpdatePolicy, newClaims(id), "", "")
	user, err := tx.CreateUser(ctx, newUser(org, id, role, store.StatusHeld))
	if err != nil {
		return err // ErrConflict: a concurrent login created this person; retry
	}
	if _, err := tx.LinkIdentity(ctx, store.Identity{OrganizationID: org.ID, ConnectionID: id.ConnectionID,
		ExternalID: id.ExternalID, UserID: user.ID, LinkedBy: store.LinkedByCreated}); err != nil {
		return err // ErrConflict: a concurrent login created this person; retry
	}
	return d.held(ctx, dec, org, reason, seatsUsed, user, loginID, id)
}

// held answers a new person created held, and alerts the admins.
func (d *Decider) held(ctx context.Context, dec *decision, org store.Organization, reason events.Reason, seatsUsed int, user store.User, loginID string, id events.Identity) error {
	dec.res.Outcome, dec.res.Reason = events.OutcomeHeld, reason
	if reason == events.ReasonSeatsExhausted {
		dec.res.Message = fmt.Sprintf("organisation %q uses all of its %d seats; the sign-up of user %s waits for an admin's approval", org.ID, org.MaxSeats, user.ID)
	} else {
		dec.res.Message = fmt.Sprintf("organisation %q holds new people; the sign-up of user %s waits for an admin's approval", org.ID, user.ID)
	}
	dec.res.User = userRef(user)
	d.log.InfoContext(ctx, "new person held for an admin's approval", "login_id", loginID, "org", org.ID,
		"user_id", user.ID, "reason", reason)
	return d.emit(ctx, dec, events.TypeSignupHeld, org.ID, user.ID, events.SignupHeld{
		OrganizationID: org.ID, UserID: user.ID, Email: user.Email, DisplayName: user.DisplayName,
		ConnectionID: id.ConnectionID, ExternalID: id.ExternalID, Reason: reason,
		MaxSeats: org.MaxSeats, SeatsUsed: seatsUsed, LoginID: loginID,
	})
}

// bootstrapAudit is the audit entry of an initial admin's first sign-in.
func bootstrapAudit(user store.User, loginID string) store.AuditEntry {
	return store.AuditEntry{OrganizationID: user.OrganizationID, ActorType: store.ActorSystem,
		ActorID: "initial-admins", ActorName: "organisations file: initial_admins", Action: "user.bootstrap-admin",
		Target: user.ID, Details: map[string]any{"email": user.Email, "role": user.Role, "login_id": loginID}}
}

func (d *Decider) update(ctx context.Context, tx store.Tx, dec *decision, org store.Organization, conn store.Connection,
	user store.User, l link, loginID string, id events.Identity) error {
	switch user.Status {
	case store.StatusHeld:
		// Still waiting: never signed in, nothing changed, no seat.
		dec.res.Outcome, dec.res.Reason = events.OutcomeHeld, events.ReasonApprovalRequired
		dec.res.Message = fmt.Sprintf("user %s is held: the sign-up waits for an admin's approval", user.ID)
		dec.res.User = userRef(user)
		return nil
	case store.StatusSuspended:
		if user.SuspendedReason != store.SuspendedInactive {
			// An admin's suspension: only an admin lifts it.
			dec.refuse(events.OutcomeRefused, events.ReasonSuspended, "user %s is suspended", user.ID)
			dec.res.User = userRef(user)
			return nil
		}
		// Suspended for not signing in (inactive.go): signing in is what
		// lifts it, if a seat is free.
		back, ok, err := d.reactivate(ctx, tx, dec, org, user, loginID, id)
		if err != nil || !ok {
			return err
		}
		user = back
	case store.StatusDeprovisioned:
		dec.refuse(events.OutcomeRefused, events.ReasonDeprovisioned, "user %s is deprovisioned and is not re-created by JIT", user.ID)
		dec.res.User = userRef(user)
		return nil
	}
	if l.by != "" {
		// Linking is a decision like any other: in this transaction, with
		// its event; the seat the user holds is the person's only one.
		if _, err := tx.LinkIdentity(ctx, store.Identity{OrganizationID: org.ID, ConnectionID: id.ConnectionID,
			ExternalID: id.ExternalID, UserID: user.ID, LinkedBy: l.by}); err != nil {
			return err // ErrConflict: a concurrent login linked it; retry
		}
		if err := tx.SeeIdentity(ctx, org.ID, id.ConnectionID, id.ExternalID); err != nil {
			return err // the user's last login
		}
	} else if err := tx.SeeIdentity(ctx, org.ID, id.ConnectionID, id.ExternalID); errors.Is(err, store.ErrNotFound) {
		// An admin unlinked or moved the identity since it was looked up:
		// decide again.
		return fmt.Errorf("provisioner: login %s: %w: the identity moved meanwhile", loginID, store.ErrConflict)
	} else if err != nil {
		return err
	}
	rules, err := connection.DecodeRoleRules(conn.Settings)
	if err != nil {
		return fmt.Errorf("provisioner: login %s: connection %q of organisation %q: %w", loginID, conn.ID, org.ID, err)
	}
	groups, claims := loginClaims(rules, user.Groups, id)
	merged, changed, conflicts := ownedProfile(org, user, id, groups)
	if merged.Email != user.Email {
		// Never take another user's email: keep the current one.
		if other, err := tx.UserByEmail(ctx, org.ID, merged.Email); err == nil && other.ID != user.ID {
			d.log.WarnContext(ctx, "IdP email belongs to another user; keeping the current email",
				"user_id", user.ID, "other_user_id", other.ID, "login_id", loginID)
			merged.Email, merged.EmailVerified = user.Email, user.EmailVerified
			changed = without(without(changed, fieldEmail), fieldEmailVerified)
		} else if err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
	}
	role, roleConflict := ownedRole(org, claims, user)
	if roleConflict != nil {
		conflicts = append(conflicts, *roleConflict)
	}
	if len(conflicts) > 0 {
		// What the fields' owners overruled, for the admins: in this
		// transaction, the latest per field.
		for i := range conflicts {
			conflicts[i].LoginID = loginID
		}
		if err := tx.RecordFieldConflicts(ctx, conflicts...); err != nil {
			return err
		}
		d.log.DebugContext(ctx, "sign-in's changes overruled by the fields' owners", "login_id", loginID, "org", org.ID,
			"user_id", user.ID, "fields", conflictFields(conflicts))
	}
	merged.RoleSource = role.Source
	if role.Role != user.Role {
		merged.Role = role.Role
		changed = append(changed, fieldRole)
	}
	dec.res.Outcome = events.OutcomeExisting
	if len(changed) > 0 {
		updated, err := tx.UpdateUser(ctx, merged)
		if err != nil {
			return err
		}
		ev := events.UserUpdated{User: userEvent(updated, id), Changed: changed, LoginID: loginID}
		if updated.Role != user.Role {
			ev.PreviousRole = user.Role
		}
		if err := d.emit(ctx, dec, events.TypeUserUpdated, org.ID, updated.ID, ev); err != nil {
			return err
		}
		if updated.Role != user.Role {
			// The role change on its own, as admins' role changes come,
			// for whoever follows roles only.
			err := d.emit(ctx, dec, events.TypeUserRoleChanged, org.ID, updated.ID, events.UserRoleChanged{
				User: userEvent(updated, id), PreviousRole: user.Role, Actor: signInActor(), LoginID: loginID,
			})
			if err != nil {
				return err
			}
			d.log.InfoContext(ctx, "role changed by the IdP's claims at sign-in", "login_id", loginID, "org", org.ID,
				"user_id", updated.ID, "from", user.Role, "to", updated.Role)
		}
		user = updated
	}
	if l.by != "" {
		err := d.emit(ctx, dec, events.TypeUserIdentityLinked, org.ID, user.ID, events.IdentityLinked{
			User: userEvent(user, id), Identity: events.LinkedIdentity{ConnectionID: id.ConnectionID, ExternalID: id.ExternalID},
			LinkedBy: l.by, ReplacedConnectionID: l.replaced, LoginID: loginID,
		})
		if err != nil {
			return err
		}
		d.log.InfoContext(ctx, "identity linked to an existing user", "login_id", loginID, "org", org.ID,
			"connection", id.ConnectionID, "user_id", user.ID, "linked_by", l.by)
	}
	dec.res.User = userRef(user)
	return d.review(ctx, tx, dec, user, role.Review, loginID)
}

// review opens a role review for a claimed role above the ceiling, unless
// one is already pending for that user and role.
func (d *Decider) review(ctx context.Context, tx store.Tx, dec *decision, user store.User, role, loginID string) error {
	if role == "" {
		return nil
	}
	if r, err := tx.PendingRoleReview(ctx, user.ID, role); err == nil {
		dec.res.RoleReview = &events.RoleReviewRef{ID: r.ID, RequestedRole: r.RequestedRole}
		return nil
	} else if !errors.Is(err, store.ErrNotFound) {
		return err
	}
	r, err := tx.CreateRoleReview(ctx, store.RoleReview{
		ID: uuid.NewString(), OrganizationID: user.OrganizationID, UserID: user.ID,
		CurrentRole: user.Role, RequestedRole: role, LoginID: loginID,
	})
	if err != nil {
		return err
	}
	dec.res.RoleReview = &events.RoleReviewRef{ID: r.ID, RequestedRole: r.RequestedRole}
	return d.emit(ctx, dec, events.TypeRoleReviewRequested, user.OrganizationID, r.ID, events.RoleReviewRequested{
		ReviewID: r.ID, OrganizationID: user.OrganizationID, UserID: user.ID, Email: user.Email,
		CurrentRole: user.Role, RequestedRole: role, LoginID: loginID,
	})
}

// emit renders an event for the outbox; the relay publishes it after commit.
func (d *Decider) emit(ctx context.Context, dec *decision, t events.Type, org, subject string, data any) error {
	m, err := outbox.Message(ctx, t, Source, org, subject, data)
	if err != nil {
		return err
	}
	dec.outbox = append(dec.outbox, m)
	return nil
}

// seatWarningAt is the seat count whose taking warns that seats run out:
// SeatWarningPercent of MaxSeats, rounded up; 0 when there is no warning.
func seatWarningAt(o store.Organization) int {
	if o.SeatWarningPercent <= 0 || o.MaxSeats <= 0 {
		return 0
	}
	return max(1, (o.MaxSeats*o.SeatWarningPercent+99)/100)
}

// newUser is the user JIT creates for the identity of a first login.
func newUser(org store.Organization, id events.Identity, role roleDecision, status string) store.User {
	return store.User{
		ID: uuid.NewString(), OrganizationID: org.ID,
		Email: id.Email, EmailVerified: id.Email != "" && id.EmailVerified, GivenName: id.GivenName, FamilyName: id.FamilyName, DisplayName: id.DisplayName,
		Groups: normalize(id.Groups), Role: role.Role, RoleSource: role.Source, Status: status, Attributes: id.Attributes,
		CreatedBy: store.CreatedByJIT,
	}
}

// signInActor is the actor of a role change a sign-in made: the role
// policy applied to the IdP's claims.
func signInActor() events.Actor {
	return events.Actor{Type: events.ActorSystem, ID: "sign-in", Name: "role policy: the IdP's claims at sign-in"}
}

func userRef(u store.User) *events.UserRef {
	return &events.UserRef{ID: u.ID, Role: u.Role, Status: u.Status, Email: u.Email}
}

// userEvent is u as user.* events announce it, with the identity of the
// login that made the event.
func userEvent(u store.User, id events.Identity) events.User {
	return outbox.User(u, id.ConnectionID, id.ExternalID)
}

func without(list []string, s string) []string {
	out := list[:0]
	for _, v := range list {
		if v != s {
			out = append(out, v)
		}
	}
	return out
}

// conflictFields names the fields of conflicts, for the log.
func conflictFields(cs []store.FieldConflict) []string {
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = c.Field
	}
	return out
}
