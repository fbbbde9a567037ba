package provisioner

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"go.opentelemetry.io/otel/trace"

	"github.com/jitprov/jitprov/events"
	"github.com/jitprov/jitprov/internal/store"
)

// Login is one login of a batch: its event id and the identity it carries.
type Login struct {
	ID       string
	Identity events.Identity
	// Span is the login's span, nil for none: what is decided for the
	// login alone (its statements, the trace context of its events) is
	// part of its trace; what the batch shares is part of the batch's.
	Span trace.Span
}

// in is ctx with l's span, if it has one.
func (l Login) in(ctx context.Context) context.Context {
	if l.Span == nil {
		return ctx
	}
	return trace.ContextWithSpan(ctx, l.Span)
}

// Answer is what became of one login of a batch: its result, or the error
// that left it undecided (as Decide returns them).
type Answer struct {
	Result events.ProvisioningResult
	Err    error
}

// errLockFirst sends a group back to be decided with its organisation's
// row locked first: seats are short, or others took them meanwhile.
var errLockFirst = errors.New("provisioner: the group needs its organisation locked first")

// errSeatsShort is errLockFirst when the seats read do not cover the
// group's new people.
var errSeatsShort = fmt.Errorf("%w: seats short", errLockFirst)

// DecideBatch decides logins as Decide would decide each, in one
// transaction where it can, and returns their answers in order. See the
// package documentation for how a batch is decided.
func (d *Decider) DecideBatch(ctx context.Context, logins []Login) []Answer {
	answers := make([]Answer, len(logins))
	var orgs []string
	groups := map[string][]int{}
	for i, l := range logins {
		o := l.Identity.OrganizationID
		if _, ok := groups[o]; !ok {
			orgs = append(orgs, o)
		}
		groups[o] = append(groups[o], i)
	}
	if together := d.alone.others(orgs, d.now()); len(together) > 1 {
		// The first round of each of these organisations together, in
		// one transaction; what repeats an earlier login comes after.
		rounds := map[string][]int{}
		for _, o := range together {
			rounds[o], groups[o] = distinct(logins, groups[o])
		}
		if !d.decideOrgs(ctx, together, logins, rounds, answers) {
			for _, o := range together {
				d.decideRound(ctx, o, logins, rounds[o], answers)
			}
		}
	}
	for _, o := range orgs {
		d.decideGroup(ctx, o, logins, groups[o], answers)
	}
	return answers
}

// decideOrgs decides a round of each of several organisations in one
// transaction, each as decideInTx decides it, the organisations in the
// order of their ids (each one's seat row is locked from its reservation
// to the commit, so every transaction locks them in that order). It
// reports false, having decided nothing, when one of them must be decided
// on its own: its seats short or taken meanwhile, its row held by another
// session past lock_timeout, a conflict with a concurrent decision, a
// login the database refuses, the database away (each organisation's own
// transaction then finds out alike). Only when the batch's time is up
// does it answer every login with that error.
func (d *Decider) decideOrgs(ctx context.Context, orgs []string, logins []Login, rounds map[string][]int, answers []Answer) bool {
	sorted := slices.Sorted(slices.Values(orgs))
	out := map[string][]Answer{}
	var failed string // the organisation that could not be decided with the others
	err := d.inTx(ctx, func(ctx context.Context, tx store.Tx, d *Decider) error {
		for _, o := range sorted {
			group := make([]Login, len(rounds[o]))
			for j, i := range rounds[o] {
				group[j] = logins[i]
			}
			a, err := d.decideInTx(ctx, tx, o, group, false)
			if err != nil {
				failed = o
				return err
			}
			out[o] = a
		}
		return nil
	})
	switch {
	case err == nil:
		for _, o := range orgs {
			for j, i := range rounds[o] {
				answers[i] = out[o][j]
			}
		}
		return true
	case ctx.Err() != nil:
		for _, o := range orgs {
			for _, i := range rounds[o] {
				answers[i] = Answer{Err: err}
			}
		}
		return true
	default:
		if errors.Is(err, errSeatsShort) || errors.Is(err, store.ErrContended) {
			// Its seats are short, or its row is held elsewhere: deciding
			// it with others would send them all round again, or keep
			// them waiting, until it has seats or is free.
			d.alone.add(failed, d.now())
		}
		d.log.DebugContext(ctx, "organisations not decided together: deciding each on its own",
			"orgs", len(orgs), "org", failed, "err", err)
		return false
	}
}

// aloneFor is how long an organisation whose seats were short is decided
// in transactions of its own.
const aloneFor = time.Minute

// aloneOrgs are the organisations to decide each in its own transaction
// until a time. The zero value is empty.
type aloneOrgs struct {
	mu    sync.Mutex
	until map[string]time.Time
}

func (a *aloneOrgs) add(org string, now time.Time) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.until == nil {
		a.until = map[string]time.Time{}
	}
	a.until[org] = now.Add(aloneFor)
}

// others returns orgs but those to decide alone at now, forgetting those
// whose time is over.
func (a *aloneOrgs) others(orgs []string, now time.Time) []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.until) == 0 {
		return orgs
	}
	var out []string
	for _, o := range orgs {
		if t, ok := a.until[o]; ok {
			if now.Before(t) {
				continue
			}
			delete(a.until, o)
		}
		out = append(out, o)
	}
	return out
}

// decideGroup decides the logins at idx, all of organisation orgID, into
// answers. Logins that repeat an earlier one of the group (the same login,
// identity or email) wait for the next round, so that they see what the
// earlier one decided.
func (d *Decider) decideGroup(ctx context.Context, orgID string, logins []Login, idx []int, answers []Answer) {
	for len(idx) > 0 {
		round, later := distinct(logins, idx)
		d.decideRound(ctx, orgID, logins, round, answers)
		idx = later
	}
}

// distinct splits idx into the logins that repeat no earlier one's login
// id, identity or email, and the others.
func distinct(logins []Login, idx []int) (round, later []int) {
	seen := map[string]bool{}
	for _, i := range idx {
		id := logins[i].Identity
		keys := []string{"login\x00" + logins[i].ID, "identity\x00" + id.ConnectionID + "\x00" + id.ExternalID}
		if id.Email != "" {
			keys = append(keys, "email\x00"+strings.ToLower(id.Email))
		}
		if slices.ContainsFunc(keys, func(k string) bool { return seen[k] }) {
			later = append(later, i)
			continue
		}
		for _, k := range keys {
			seen[k] = true
		}
		round = append(round, i)
	}
	return round, later
}

// decideRound decides logins with distinct identities in one transaction:
// optimistically first (the organisation read without a lock, its seat row
// touched last), with the row locked first when seats are short or were
// taken meanwhile, and one by one (Decide) when the group conflicts with a
// concurrent decision.
func (d *Decider) decideRound(ctx context.Context, orgID string, logins []Login, idx []int, answers []Answer) {
	group := make([]Login, len(idx))
	for j, i := range idx {
		group[j] = logins[i]
	}
	var out []Answer
	var err error
	for _, lock := range []bool{false, true} {
		err = d.inTx(ctx, func(ctx context.Context, tx store.Tx, d *Decider) error {
			var err error
			out, err = d.decideInTx(ctx, tx, orgID, group, lock)
			return err
		})
		if !errors.Is(err, errLockFirst) {
			break
		}
		d.log.DebugContext(ctx, "seats short or taken meanwhile: deciding the group with the organisation locked first",
			"org", orgID, "logins", len(group), "locked", lock)
	}
	switch {
	case err == nil:
		for j, i := range idx {
			answers[i] = out[j]
		}
	case len(idx) > 1 && !outage(ctx, err):
		// A concurrent decision created one of these people or decided
		// one of these logins (ErrConflict), or one login cannot be
		// decided (a value the database refuses, an event that cannot be
		// built): decide each on its own, as before batching, so that
		// races are retried one login at a time and a bad login fails
		// alone.
		d.log.DebugContext(ctx, "group not decided together: deciding its logins one by one", "org", orgID, "logins", len(group), "err", err)
		for _, i := range idx {
			res, err := d.Decide(logins[i].in(ctx), logins[i].ID, logins[i].Identity)
			answers[i] = Answer{Result: res, Err: err}
		}
	case errors.Is(err, store.ErrConflict), errors.Is(err, errLockFirst):
		// A lone login lost a race: decided again as before batching.
		res, err := d.Decide(group[0].in(ctx), group[0].ID, group[0].Identity)
		answers[idx[0]] = Answer{Result: res, Err: err}
	default:
		// The database is away, or time ran out: the same for every
		// login of the group.
		for _, i := range idx {
			answers[i] = Answer{Err: err}
		}
	}
}

// inTx runs fn in a transaction with a Decider whose log is held until
// the commit: a transaction rolled back (and decided again, or one login
// at a time) does not log what it undid.
func (d *Decider) inTx(ctx context.Context, fn func(ctx context.Context, tx store.Tx, d *Decider) error) error {
	held := newHeldLog(d.log.Handler())
	inner := *d
	inner.log = slog.New(held)
	err := d.store.InTx(ctx, func(ctx context.Context, tx store.Tx) error {
		held.drop() // an earlier try's
		return fn(ctx, tx, &inner)
	})
	if err == nil {
		held.flush()
	}
	return err
}

// outage reports whether err leaves every login of a group undecided
// alike: the database unreachable, or the decision's time up.
func outage(ctx context.Context, err error) bool {
	return errors.Is(err, store.ErrUnavailable) || errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, context.Canceled) || ctx.Err() != nil
}

// decideInTx decides a group in tx: one round trip of reads, the decisions
// planned in memory (a login whose identity or email names a user is
// decided by the per-login policy, statement by statement), one round trip
// of writes with the seat reservation last.
func (d *Decider) decideInTx(ctx context.Context, tx store.Tx, orgID string, group []Login, lock bool) ([]Answer, error) {
	keys := make([]store.LoginKey, len(group))
	for j, l := range group {
		keys[j] = store.LoginKey{LoginID: l.ID, ConnectionID: l.Identity.ConnectionID, ExternalID: l.Identity.ExternalID, Email: l.Identity.Email}
	}
	g, err := tx.LookupLogins(ctx, orgID, lock, keys)
	if err != nil {
		return nil, err
	}
	org := g.Organization
	p := seatPlan{used: org.SeatsUsed, free: org.MaxSeats - org.SeatsUsed, warnAt: seatWarningAt(org)}
	w := store.GroupWrites{OrganizationID: orgID}
	out := make([]Answer, len(group))
	now := d.now().Truncate(time.Microsecond)
	for j, l := range group {
		lk := g.Logins[j]
		if lk.Decision != nil {
			res, err := storedAnswer(*lk.Decision, l.ID, l.Identity)
			out[j] = Answer{Result: res, Err: err}
			continue
		}
		dec := &decision{res: events.ProvisioningResult{LoginID: l.ID, DecidedAt: now}}
		lctx := l.in(ctx)
		if newPerson(g, lk, l.Identity) {
			if err := d.plan(lctx, dec, &w, &p, org, l.ID, l.Identity, lock, now); err != nil {
				return nil, err
			}
		} else if err := d.provision(lctx, tx, dec, l.ID, l.Identity); err != nil {
			return nil, err
		}
		rec, err := dec.record(l.Identity)
		if err != nil {
			return nil, err
		}
		w.Outbox = append(w.Outbox, dec.outbox...)
		w.Decisions = append(w.Decisions, rec)
		out[j] = Answer{Result: dec.res}
	}
	w.Seats = p.reservation(lock)
	if _, err := tx.WriteGroup(ctx, w); errors.Is(err, store.ErrSeatsExhausted) {
		// Others took seats since the read. (With the row locked since
		// the read, only a seat taken by a per-login decision of this
		// transaction moves it: the round is then decided one by one.)
		return nil, fmt.Errorf("%w: %w", errLockFirst, err)
	} else if err != nil {
		return nil, err
	}
	return out, nil
}

// newPerson reports whether a login is a first login of someone the
// organisation has not met: no user by its identity, none by its email,
// and nothing else for the per-login policy to weigh (a known
// organisation and connection; an email, or a single connection).
func newPerson(g store.GroupLookup, lk store.LoginLookup, id events.Identity) bool {
	if !g.OrganizationFound || lk.IdentityUserID != "" || lk.EmailUserID != "" {
		return false
	}
	if !slices.ContainsFunc(g.Connections, func(c store.Connection) bool { return c.ID == id.ConnectionID }) {
		return false
	}
	return id.Email != "" || len(g.Connections) <= 1
}

// seatPlan hands out the seats a group's new people take, in order.
type seatPlan struct {
	used, free int // as read
	warnAt     int // seatWarningAt; 0 none
	granted    int
	crosses    bool // a granted seat reaches warnAt
}

// take grants the next seat and returns the seat count it makes, or 0
// when none is left.
func (p *seatPlan) take() int {
	if p.granted >= p.free {
		return 0
	}
	p.granted++
	n := p.used + p.granted
	if n == p.warnAt {
		p.crosses = true
	}
	return n
}

// reservation is the plan's seat reservation. The warning is planned for
// the login whose seat reaches warnAt: a plan that crosses it holds only
// while the seats in use are as read; one that does not, only while the
// reservation does not cross it either. With the row locked since the read
// both hold.
func (p *seatPlan) reservation(lock bool) store.SeatReservation {
	r := store.SeatReservation{Seats: p.granted}
	if p.crosses || lock {
		used := p.used
		r.IfUsed = &used
	} else {
		r.NotCrossing = p.warnAt
	}
	return r
}

// plan decides a new person's first login in memory, into w: the
// decision of create (or hold) without its statements.
func (d *Decider) plan(ctx context.Context, dec *decision, w *store.GroupWrites, p *seatPlan, org store.Organization,
	loginID string, id events.Identity, lock bool, now time.Time) error {
	bootstrap := isInitialAdmin(org, id)
	role := decideRole(org, org.UpdatePolicy, newClaims(id), "", "")
	add := func(status string, role roleDecision) store.User {
		u := newUser(org, id, role, status)
		u.CreatedAt, u.UpdatedAt, u.LastLoginAt = now, now, now
		u.Groups, u.Attributes = nonNil(u.Groups), nonNilMap(u.Attributes)
		w.Users = append(w.Users, store.NewUser{User: u, Identity: store.Identity{OrganizationID: org.ID,
			ConnectionID: id.ConnectionID, ExternalID: id.ExternalID, UserID: u.ID, LinkedBy: store.LinkedByCreated}})
		return u
	}
	if org.HoldsNewPeople() && !bootstrap {
		return d.held(ctx, dec, org, events.ReasonApprovalRequired, p.used, add(store.StatusHeld, role), loginID, id)
	}
	seat := p.take()
	if seat == 0 {
		if !lock {
			// Turning someone away needs the exact count, and the row
			// locked before the lookups, so that nobody created
			// meanwhile is turned away.
			return errSeatsShort
		}
		if org.HoldsWhenFull() {
			return d.held(ctx, dec, org, events.ReasonSeatsExhausted, p.used+p.granted, add(store.StatusHeld, role), loginID, id)
		}
		dec.refuse(events.OutcomeRejected, events.ReasonSeatsExhausted,
			"organisation %q uses all of its %d seats", org.ID, org.MaxSeats)
		return d.emit(ctx, dec, events.TypeSeatsExhausted, org.ID, org.ID, events.SeatsExhausted{
			OrganizationID: org.ID, MaxSeats: org.MaxSeats, SeatsUsed: p.used + p.granted,
			ConnectionID: id.ConnectionID, ExternalID: id.ExternalID, Email: id.Email, LoginID: loginID,
		})
	}
	if bootstrap {
		role = roleDecision{Role: org.AdminRole(), Source: store.RoleSourceAdmin}
	}
	user := add(store.StatusActive, role)
	if bootstrap {
		w.Audit = append(w.Audit, bootstrapAudit(user, loginID))
		d.log.InfoContext(ctx, "initial admin signed in for the first time: granted the admin role", "org", org.ID,
			"user_id", user.ID, "role", user.Role, "login_id", loginID)
	}
	dec.res.Outcome = events.OutcomeCreated
	dec.res.User = userRef(user)
	if err := d.emit(ctx, dec, events.TypeUserCreated, org.ID, user.ID, events.UserCreated{User: userEvent(user, id), LoginID: loginID}); err != nil {
		return err
	}
	if seat == p.warnAt {
		err := d.emit(ctx, dec, events.TypeSeatsThresholdReached, org.ID, org.ID, events.SeatsThresholdReached{
			OrganizationID: org.ID, MaxSeats: org.MaxSeats, SeatsUsed: seat,
			ThresholdPercent: org.SeatWarningPercent, UserID: user.ID, LoginID: loginID,
		})
		if err != nil {
			return err
		}
	}
	if role.Review == "" {
		return nil
	}
	r := store.RoleReview{ID: uuid.NewString(), OrganizationID: org.ID, UserID: user.ID,
		CurrentRole: user.Role, RequestedRole: role.Review, LoginID: loginID}
	w.Reviews = append(w.Reviews, r)
	dec.res.RoleReview = &events.RoleReviewRef{ID: r.ID, RequestedRole: r.RequestedRole}
	return d.emit(ctx, dec, events.TypeRoleReviewRequested, org.ID, r.ID, events.RoleReviewRequested{
		ReviewID: r.ID, OrganizationID: org.ID, UserID: user.ID, Email: user.Email,
		CurrentRole: user.Role, RequestedRole: role.Review, LoginID: loginID,
	})
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func nonNilMap(m map[string][]string) map[string][]string {
	if m == nil {
		return map[string][]string{}
	}
	return m
}
