package admin_test

import (
	"errors"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"

	"github.com/jitprov/jitprov/events"
	"github.com/jitprov/jitprov/internal/admin"
	"github.com/jitprov/jitprov/internal/provisioner"
	"github.com/jitprov/jitprov/internal/store"
	"github.com/jitprov/jitprov/internal/store/postgres"
	"github.com/jitprov/jitprov/internal/testenv"
)

// world is two organisations, acme and globex, on a real Postgres.
type world struct {
	s    *postgres.Store
	core *admin.Core
	dec  *provisioner.Decider
}

func org(id string, seats int) store.Organization {
	return store.Organization{ID: id, Name: "Org " + id, MaxSeats: seats, Roles: []string{"viewer", "member", "admin"},
		DefaultRole: "member", JITRoleCeiling: "member", UpdatePolicy: store.PreferIdP, LinkByEmail: store.LinkNever}
}

func newWorld(t *testing.T, seats int) *world {
	t.Helper()
	s, _ := testenv.Store(t)
	if err := s.ApplyOrganizations(t.Context(), []store.Organization{org("acme", seats), org("globex", seats)}, []store.Connection{
		{OrganizationID: "acme", ID: "idp", Protocol: "saml"}, {OrganizationID: "globex", ID: "idp", Protocol: "saml"},
	}); err != nil {
		t.Fatal(err)
	}
	return &world{s: s, core: admin.New(s, testenv.Logger(t)), dec: provisioner.NewDecider(s, testenv.Logger(t))}
}

// login provisions a person of orgID through the pipeline's decision.
func (w *world) login(t *testing.T, orgID, ext string, roles ...string) events.ProvisioningResult {
	t.Helper()
	res, err := w.dec.Decide(t.Context(), uuid.NewString(), events.Identity{OrganizationID: orgID, ConnectionID: "idp",
		Protocol: events.ProtocolSAML, ExternalID: ext, Email: ext + "@" + orgID + ".example", EmailVerified: true,
		Roles: roles, AuthenticatedAt: time.Now().UTC()})
	if err != nil {
		t.Fatalf("login %s: %v", ext, err)
	}
	return res
}

// outbox decodes the outbox rows after seq, as the relay would publish them.
func (w *world) outbox(t *testing.T, after int64) (last int64, evs []events.Event) {
	t.Helper()
	rows, err := w.s.Pool().Query(t.Context(), `SELECT seq, subject, header, data FROM outbox WHERE seq > $1 ORDER BY seq`, after)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	last = after
	for rows.Next() {
		var m nats.Msg
		var h map[string][]string
		if err := rows.Scan(&last, &m.Subject, &h, &m.Data); err != nil {
			t.Fatal(err)
		}
		m.Header = nats.Header(h)
		ev, err := events.Decode(&m) // validates against the schema
		if err != nil {
			t.Fatalf("outbox row %d breaks the contract: %v", last, err)
		}
		evs = append(evs, ev)
	}
	return last, evs
}

func (w *world) count(t *testing.T, q string, args ...any) int {
	t.Helper()
	var n int
	if err := w.s.Pool().QueryRow(t.Context(), q, args...).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func types(evs []events.Event) []string {
	var out []string
	for _, e := range evs {
		out = append(out, e.Type())
	}
	return out
}

var (
	acmeAdmin    = admin.Principal{Kind: store.ActorUser, ID: "u-admin", Name: "boss@acme.example", Organization: "acme", Write: true, Role: "admin"}
	acmeMember   = admin.Principal{Kind: store.ActorUser, ID: "u-member", Organization: "acme", Write: true, Role: "member"}
	acmeReader   = admin.Principal{Kind: store.ActorToken, ID: "t-read", Organization: "acme"}
	acmeWriter   = admin.Principal{Kind: store.ActorToken, ID: "t-write", Organization: "acme", Write: true}
	globexWriter = admin.Principal{Kind: store.ActorToken, ID: "t-globex", Organization: "globex", Write: true}
	globalWriter = admin.Principal{Kind: store.ActorToken, ID: "t-global", Write: true}
	globalReader = admin.Principal{Kind: store.ActorToken, ID: "t-global-read"}
)

// Who may do what, one row per principal and action.
func TestAuthorizationMatrix(t *testing.T) {
	w := newWorld(t, 10)
	ann := w.login(t, "acme", "ann").User.ID
	grace := w.login(t, "acme", "grace", "admin") // opens a review for admin
	ctx := t.Context()
	actions := map[string]func(p admin.Principal) error{
		"list acme's users": func(p admin.Principal) error {
			_, err := w.core.Users(ctx, p, store.UserFilter{OrganizationID: "acme"})
			return err
		},
		"suspend and reactivate an acme user": func(p admin.Principal) error {
			if _, err := w.core.Suspend(ctx, p, "acme", ann, "audit"); err != nil {
				return err
			}
			_, err := w.core.Reactivate(ctx, p, "acme", ann, "")
			return err
		},
		"grant acme's admin role": func(p admin.Principal) error {
			if _, err := w.core.ChangeRole(ctx, p, "acme", ann, "admin"); err != nil {
				return err
			}
			_, err := w.core.ChangeRole(ctx, p, "acme", ann, "member")
			return err
		},
	}
	allowed := map[string]map[string]bool{
		"acme admin":    {"list acme's users": true, "suspend and reactivate an acme user": true, "grant acme's admin role": true},
		"acme member":   {},
		"acme reader":   {"list acme's users": true},
		"acme writer":   {"list acme's users": true, "suspend and reactivate an acme user": true},
		"globex writer": {},
		"global writer": {"list acme's users": true, "suspend and reactivate an acme user": true, "grant acme's admin role": true},
		"global reader": {"list acme's users": true},
	}
	principals := map[string]admin.Principal{"acme admin": acmeAdmin, "acme member": acmeMember, "acme reader": acmeReader,
		"acme writer": acmeWriter, "globex writer": globexWriter, "global writer": globalWriter, "global reader": globalReader}
	for name, p := range principals {
		for action, do := range actions {
			t.Run(name+"/"+action, func(t *testing.T) {
				err := do(p)
				switch {
				case allowed[name][action] && err != nil:
					t.Errorf("got %v, want it allowed", err)
				case !allowed[name][action] && !errors.Is(err, admin.ErrForbidden):
					t.Errorf("got %v, want ErrForbidden", err)
				}
			})
		}
	}
	// Approving a review for the admin role: an org admin or an operator.
	review := grace.RoleReview.ID
	if _, err := w.core.ApproveReview(ctx, acmeWriter, "acme", review); !errors.Is(err, admin.ErrForbidden) {
		t.Errorf("an organisation token approving the admin role: %v, want ErrForbidden", err)
	}
	if _, err := w.core.ApproveReview(ctx, globexWriter, "acme", review); !errors.Is(err, admin.ErrForbidden) {
		t.Errorf("another organisation's token approving: %v, want ErrForbidden", err)
	}
	if _, err := w.core.ApproveReview(ctx, acmeAdmin, "acme", review); err != nil {
		t.Errorf("acme's admin approving: %v", err)
	}
}

// Every change emits its events once, audits its actor, and a retried
// request changes nothing twice.
func TestWritesEmitOnceAuditAndRetryChangeNothing(t *testing.T) {
	w := newWorld(t, 10)
	ctx := t.Context()
	ann := w.login(t, "acme", "ann").User.ID
	seq, _ := w.outbox(t, 0)
	for _, c := range []struct {
		name   string
		do     func() (admin.Result, error)
		events []string
		action string
		status string
		role   string
	}{
		{"suspend", func() (admin.Result, error) { return w.core.Suspend(ctx, acmeAdmin, "acme", ann, "on leave") },
			[]string{string(events.TypeUserSuspended)}, "user.suspend", store.StatusSuspended, "member"},
		{"reactivate", func() (admin.Result, error) { return w.core.Reactivate(ctx, acmeAdmin, "acme", ann, "") },
			[]string{string(events.TypeUserReactivated)}, "user.reactivate", store.StatusActive, "member"},
		{"change role", func() (admin.Result, error) { return w.core.ChangeRole(ctx, acmeAdmin, "acme", ann, "viewer") },
			[]string{string(events.TypeUserRoleChanged)}, "user.change-role", store.StatusActive, "viewer"},
		{"deprovision", func() (admin.Result, error) { return w.core.Deprovision(ctx, acmeAdmin, "acme", ann, "left") },
			[]string{string(events.TypeUserDeprovisioned)}, "user.deprovision", store.StatusDeprovisioned, "viewer"},
	} {
		t.Run(c.name, func(t *testing.T) {
			audits := w.count(t, `SELECT count(*) FROM admin_audit`)
			res, err := c.do()
			if err != nil || !res.Changed || res.User.Status != c.status || res.User.Role != c.role {
				t.Fatalf("got %+v, %v; want changed to %s/%s", res, err, c.status, c.role)
			}
			var evs []events.Event
			seq, evs = w.outbox(t, seq)
			if got := types(evs); !slices.Equal(got, c.events) {
				t.Errorf("events %v, want %v", got, c.events)
			}
			if n := w.count(t, `SELECT count(*) FROM admin_audit WHERE action = $1 AND actor_type = 'user' AND actor_id = 'u-admin'
				AND actor_name = 'boss@acme.example' AND target = $2`, c.action, ann); n != 1 || w.count(t, `SELECT count(*) FROM admin_audit`) != audits+1 {
				t.Errorf("audit rows for %s by u-admin: %d, want 1", c.action, n)
			}
			// The same request again: nothing changes, nothing is emitted.
			again, err := c.do()
			if err != nil || again.Changed || again.User.Status != c.status {
				t.Errorf("retry: %+v, %v; want unchanged and no error", again, err)
			}
			if _, evs := w.outbox(t, seq); len(evs) != 0 {
				t.Errorf("retry emitted %v", types(evs))
			}
			if w.count(t, `SELECT count(*) FROM admin_audit`) != audits+1 {
				t.Errorf("retry wrote an audit row")
			}
		})
	}
	ev := func() events.UserStatusChanged {
		_, evs := w.outbox(t, 0)
		for _, e := range evs {
			if e.Type() == string(events.TypeUserSuspended) {
				d, err := events.DataAs[events.UserStatusChanged](e, events.TypeUserSuspended)
				if err != nil {
					t.Fatal(err)
				}
				return d
			}
		}
		t.Fatal("no user.suspended")
		return events.UserStatusChanged{}
	}()
	if ev.PreviousStatus != "active" || ev.Reason != "on leave" || ev.Actor != (events.Actor{Type: "user", ID: "u-admin", Name: "boss@acme.example"}) {
		t.Errorf("user.suspended data: %+v", ev)
	}
}

// Deprovisioning frees a seat at once: a full organisation takes the next
// person only after it.
func TestDeprovisionFreesASeat(t *testing.T) {
	w := newWorld(t, 2)
	ctx := t.Context()
	first := w.login(t, "acme", "p1").User.ID
	w.login(t, "acme", "p2")
	if res := w.login(t, "acme", "p3"); res.Outcome != events.OutcomeRejected || res.Reason != events.ReasonSeatsExhausted {
		t.Fatalf("third person in a full organisation: %s/%s, want rejected: no seat", res.Outcome, res.Reason)
	}
	if _, err := w.core.Deprovision(ctx, acmeAdmin, "acme", first, "left the company"); err != nil {
		t.Fatal(err)
	}
	if res := w.login(t, "acme", "p4"); res.Outcome != events.OutcomeCreated {
		t.Errorf("next person after a deprovisioning: %s/%s, want created", res.Outcome, res.Reason)
	}
	if res := w.login(t, "acme", "p1"); res.Outcome != events.OutcomeRefused || res.Reason != events.ReasonDeprovisioned {
		t.Errorf("the deprovisioned person again: %s/%s, want refused: deprovisioned", res.Outcome, res.Reason)
	}
	// The organisation is full again: the deprovisioned person cannot come
	// back until a seat is free.
	if _, err := w.core.Reactivate(ctx, acmeAdmin, "acme", first, ""); !errors.Is(err, admin.ErrNoSeat) {
		t.Errorf("reactivating into a full organisation: %v, want ErrNoSeat", err)
	}
	if n := w.count(t, `SELECT seats_used FROM organizations WHERE id = 'acme'`); n != 2 {
		t.Errorf("seats used %d, want 2", n)
	}
}

// A person the inactivity sweep suspended holds no seat: an admin's
// reactivation takes one (refused when none is free), and deprovisioning
// them frees none; seats stay equal to the active users.
func TestInactiveSuspendedSeats(t *testing.T) {
	w := newWorld(t, 2)
	ctx := t.Context()
	o := org("acme", 2)
	o.InactiveAfter = 30 * 24 * time.Hour
	if err := w.s.ApplyOrganizations(ctx, []store.Organization{o}, nil); err != nil {
		t.Fatal(err)
	}
	p1, p2 := w.login(t, "acme", "p1").User.ID, w.login(t, "acme", "p2").User.ID
	if n, err := provisioner.SweepInactive(ctx, w.s, time.Now().Add(31*24*time.Hour), 0, testenv.Logger(t)); n != 2 || err != nil {
		t.Fatalf("SweepInactive: %d, %v; want 2", n, err)
	}
	seatsAreActive := func(what string, want int) {
		t.Helper()
		seats := w.count(t, `SELECT seats_used FROM organizations WHERE id = 'acme'`)
		active := w.count(t, `SELECT count(*) FROM users WHERE org_id = 'acme' AND status = 'active'`)
		if seats != want || active != want {
			t.Errorf("%s: %d seats used, %d active users; want %d of each", what, seats, active, want)
		}
	}
	seatsAreActive("after the sweep", 0)
	if res, err := w.core.Reactivate(ctx, acmeAdmin, "acme", p1, "back from leave"); err != nil || res.User.Status != store.StatusActive || res.User.SuspendedReason != "" {
		t.Fatalf("Reactivate: %+v, %v", res.User, err)
	}
	seatsAreActive("after an admin reactivated one", 1)
	if _, err := w.core.Deprovision(ctx, acmeAdmin, "acme", p2, "left"); err != nil {
		t.Fatal(err)
	}
	seatsAreActive("after an admin deprovisioned the other", 1)
	w.login(t, "acme", "p3")
	if _, err := w.core.Reactivate(ctx, acmeAdmin, "acme", p2, ""); !errors.Is(err, admin.ErrNoSeat) {
		t.Errorf("reactivating into a full organisation: %v, want ErrNoSeat", err)
	}
	seatsAreActive("at the end", 2)
}

// Approving a review gives the role and emits role-changed then decided;
// denying keeps the role; a second decision is a conflict.
func TestReviews(t *testing.T) {
	w := newWorld(t, 10)
	ctx := t.Context()
	approveMe := w.login(t, "acme", "grace", "admin")
	denyMe := w.login(t, "acme", "mallory", "admin")
	seq, _ := w.outbox(t, 0)

	res, err := w.core.ApproveReview(ctx, acmeAdmin, "acme", approveMe.RoleReview.ID)
	if err != nil || res.User.Role != "admin" || res.Review.Status != store.ReviewApproved || res.Review.DecidedBy != "user:u-admin" {
		t.Fatalf("approve: %+v, %v", res, err)
	}
	seq, evs := w.outbox(t, seq)
	if got := types(evs); !slices.Equal(got, []string{string(events.TypeUserRoleChanged), string(events.TypeRoleReviewDecided)}) {
		t.Errorf("approve emitted %v", got)
	}
	if _, err := w.core.ApproveReview(ctx, acmeAdmin, "acme", approveMe.RoleReview.ID); !errors.Is(err, admin.ErrConflict) {
		t.Errorf("approving twice: %v, want ErrConflict", err)
	}
	if _, err := w.core.DenyReview(ctx, acmeAdmin, "acme", denyMe.RoleReview.ID, " "); !errors.Is(err, admin.ErrInvalid) {
		t.Errorf("denying without a reason: %v, want ErrInvalid", err)
	} else {
		var fe *admin.FieldError
		if !errors.As(err, &fe) || fe.Field != "reason" {
			t.Errorf("denying without a reason: %v, want a field error on reason", err)
		}
	}
	res, err = w.core.DenyReview(ctx, acmeAdmin, "acme", denyMe.RoleReview.ID, "not on the team")
	if err != nil || res.User.Role != "member" || res.Review.Status != store.ReviewDenied || res.Review.Reason != "not on the team" {
		t.Fatalf("deny: %+v, %v", res, err)
	}
	_, evs = w.outbox(t, seq)
	if got := types(evs); !slices.Equal(got, []string{string(events.TypeRoleReviewDecided)}) {
		t.Errorf("deny emitted %v", got)
	}
	d, err := events.DataAs[events.RoleReviewDecided](evs[0], events.TypeRoleReviewDecided)
	if err != nil || d.Decision != "denied" || d.Reason != "not on the team" || d.UserID != denyMe.User.ID {
		t.Errorf("role-review.decided: %+v, %v", d, err)
	}
	queue, err := w.core.Reviews(ctx, acmeReader, store.ReviewFilter{OrganizationID: "acme", Status: store.ReviewPending})
	if err != nil || len(queue) != 0 {
		t.Errorf("pending reviews after both decisions: %v, %v", queue, err)
	}
}

// The user page: identities, the decisions about them, their reviews and
// the admin actions on them; and "why was Bob refused?".
func TestUserDetailAndDecisions(t *testing.T) {
	w := newWorld(t, 1)
	ctx := t.Context()
	ann := w.login(t, "acme", "ann", "admin")
	w.login(t, "acme", "bob") // no seat left
	if _, err := w.core.Suspend(ctx, acmeAdmin, "acme", ann.User.ID, ""); err != nil {
		t.Fatal(err)
	}
	d, err := w.core.User(ctx, acmeReader, "acme", ann.User.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Identities) != 1 || d.Identities[0].ExternalID != "ann" || len(d.Decisions) != 1 || len(d.Reviews) != 1 ||
		len(d.Audit) != 1 || d.Audit[0].Action != "user.suspend" {
		t.Errorf("user detail: %+v", d)
	}
	page, err := w.core.Decisions(ctx, acmeReader, store.DecisionFilter{OrganizationID: "acme", ExternalID: "bob"})
	if err != nil || len(page.Decisions) != 1 || page.Decisions[0].Reason != string(events.ReasonSeatsExhausted) {
		t.Errorf("why was Bob refused: %+v, %v", page, err)
	}
	if _, err := w.core.User(ctx, globexWriter, "acme", ann.User.ID); !errors.Is(err, admin.ErrForbidden) {
		t.Errorf("another organisation reading the user: %v", err)
	}
	if _, err := w.core.User(ctx, acmeReader, "acme", uuid.NewString()); !errors.Is(err, admin.ErrNotFound) {
		t.Errorf("an unknown user: %v", err)
	}
	if _, err := w.core.Users(ctx, acmeReader, store.UserFilter{OrganizationID: "acme", Cursor: "nope"}); !errors.Is(err, admin.ErrInvalid) {
		t.Errorf("a bad cursor: %v", err)
	}
	orgs, err := w.core.Organizations(ctx, acmeReader)
	if err != nil || len(orgs) != 1 || orgs[0].ID != "acme" {
		t.Errorf("organisations an acme token sees: %v, %v", orgs, err)
	}
}

// A dry run writes nothing and predicts the login; only readers of the
// organisation may ask.
func TestDryRun(t *testing.T) {
	w := newWorld(t, 1)
	ctx := t.Context()
	id := events.Identity{ConnectionID: "idp", Protocol: events.ProtocolSAML, ExternalID: "newbie",
		Email: "newbie@acme.example", EmailVerified: true, Roles: []string{"admin"}}
	before := w.count(t, `SELECT (SELECT count(*) FROM users) + (SELECT count(*) FROM outbox) + (SELECT count(*) FROM admin_audit)`)
	res, err := w.core.DryRun(ctx, acmeReader, "acme", id)
	if err != nil || res.Outcome != events.OutcomeCreated || res.RoleReview == nil || res.RoleReview.RequestedRole != "admin" || res.User.Role != "member" {
		t.Fatalf("dry run: %+v, %v; want created as member with a review for admin", res, err)
	}
	if after := w.count(t, `SELECT (SELECT count(*) FROM users) + (SELECT count(*) FROM outbox) + (SELECT count(*) FROM admin_audit)`); after != before {
		t.Errorf("the dry run wrote rows: %d, then %d", before, after)
	}
	w.login(t, "acme", "first") // takes the only seat
	if res, err := w.core.DryRun(ctx, acmeReader, "acme", id); err != nil || res.Outcome != events.OutcomeRejected {
		t.Errorf("dry run into a full organisation: %+v, %v; want rejected", res, err)
	}
	if _, err := w.core.DryRun(ctx, globexWriter, "acme", id); !errors.Is(err, admin.ErrForbidden) {
		t.Errorf("another organisation's dry run: %v", err)
	}
	bad := id
	bad.ExternalID = ""
	if _, err := w.core.DryRun(ctx, acmeReader, "acme", bad); !errors.Is(err, admin.ErrInvalid) {
		t.Errorf("a dry run of an identity without an external id: %v, want ErrInvalid", err)
	}
}

// Reviews left unanswered expire as the system; the role stays.
func TestExpireReviews(t *testing.T) {
	w := newWorld(t, 10)
	ctx := t.Context()
	old := w.login(t, "acme", "old", "admin")
	if _, err := w.s.Pool().Exec(ctx, `UPDATE role_reviews SET created_at = now() - interval '31 days' WHERE id = $1`, old.RoleReview.ID); err != nil {
		t.Fatal(err)
	}
	fresh := w.login(t, "acme", "fresh", "admin")
	seq, _ := w.outbox(t, 0)
	n, err := w.core.ExpireReviews(ctx, 30*24*time.Hour)
	if err != nil || n != 1 {
		t.Fatalf("ExpireReviews: %d, %v; want 1", n, err)
	}
	_, evs := w.outbox(t, seq)
	if got := types(evs); !slices.Equal(got, []string{string(events.TypeRoleReviewDecided)}) {
		t.Fatalf("events %v", got)
	}
	if d, _ := events.DataAs[events.RoleReviewDecided](evs[0], events.TypeRoleReviewDecided); d.Decision != "expired" || d.Actor.Type != "system" || d.ReviewID != old.RoleReview.ID {
		t.Errorf("role-review.decided: %+v", d)
	}
	pending, err := w.core.Reviews(ctx, globalReader, store.ReviewFilter{OrganizationID: "acme", Status: store.ReviewPending})
	if err != nil || len(pending) != 1 || pending[0].ID != fresh.RoleReview.ID {
		t.Errorf("pending after expiry: %+v, %v; want only the fresh one", pending, err)
	}
	if n, err := w.core.ExpireReviews(ctx, 30*24*time.Hour); err != nil || n != 0 {
		t.Errorf("expiring again: %d, %v; want 0", n, err)
	}
}

// What a dry run of a changed file says is what applying it does, and
// nothing in the store but not in the file is deleted.
func TestApplyDryRunIsWhatApplyDoes(t *testing.T) {
	w := newWorld(t, 10)
	ctx := t.Context()
	acme := org("acme", 20) // more seats
	acme.VerifiedDomains = []string{"acme.example"}
	acme.InactiveAfter = 90 * 24 * time.Hour
	acme.FieldOwners = map[string]string{store.FieldGroups: store.OwnerSCIM, store.AttributeField("department"): store.OwnerApp}
	initech := org("initech", 5) // new
	conns := []store.Connection{
		{OrganizationID: "acme", ID: "idp", Protocol: "saml"},                                             // unchanged
		{OrganizationID: "acme", ID: "entra", Protocol: "oidc", Replaces: "idp", DisplayName: "Entra ID"}, // new
		{OrganizationID: "initech", ID: "okta", Protocol: "saml"},
	}
	orgs := []store.Organization{acme, initech} // globex is not in the file
	if _, err := w.core.Apply(ctx, acmeAdmin, orgs, conns, true); !errors.Is(err, admin.ErrForbidden) {
		t.Errorf("an organisation admin applying a file: %v, want ErrForbidden", err)
	}
	planned, err := w.core.Apply(ctx, globalReader, orgs, conns, true)
	if err != nil {
		t.Fatal(err)
	}
	want := []admin.Change{
		{Kind: "organization", Organization: "acme", Action: "update", Fields: []string{"max_seats", "verified_domains", "inactive_after",
			"field_owners.attributes.department", "field_owners.groups"}},
		{Kind: "connection", Organization: "acme", Connection: "idp", Action: "unchanged"},
		{Kind: "connection", Organization: "acme", Connection: "entra", Action: "create"},
		{Kind: "organization", Organization: "initech", Action: "create"},
		{Kind: "connection", Organization: "initech", Connection: "okta", Action: "create"},
		{Kind: "organization", Organization: "globex", Action: "kept"},
		{Kind: "connection", Organization: "globex", Connection: "idp", Action: "kept"},
	}
	if !reflect.DeepEqual(planned, want) {
		t.Errorf("dry run:\n got %+v\nwant %+v", planned, want)
	}
	if n := w.count(t, `SELECT count(*) FROM organizations`); n != 2 {
		t.Errorf("the dry run created organisations: %d", n)
	}
	if _, err := w.core.Apply(ctx, globalReader, orgs, conns, false); !errors.Is(err, admin.ErrForbidden) {
		t.Errorf("a read-only token applying: %v, want ErrForbidden", err)
	}
	done, err := w.core.Apply(ctx, globalWriter, orgs, conns, false)
	if err != nil || !reflect.DeepEqual(done, planned) {
		t.Errorf("apply: %+v, %v; want what the dry run said", done, err)
	}
	again, err := w.core.Apply(ctx, globalWriter, orgs, conns, true)
	if err != nil {
		t.Fatal(err)
	}
	for _, ch := range again {
		if ch.Action != admin.ActionUnchanged && ch.Action != admin.ActionKept {
			t.Errorf("after applying, the same file still changes %+v", ch)
		}
	}
	if n := w.count(t, `SELECT count(*) FROM organizations`); n != 3 {
		t.Errorf("organisations after apply: %d, want 3 (globex kept)", n)
	}
}

// What an admin grants is the admin's: a role change and an approved
// review make the role's source admin, so that no later login takes the
// role away; a denied review leaves the IdP's role the IdP's.
func TestAdminGrantsAreTheAdmins(t *testing.T) {
	w := newWorld(t, 10)
	ctx := t.Context()
	ann := w.login(t, "acme", "ann").User.ID
	grace := w.login(t, "acme", "grace", "admin")
	mallory := w.login(t, "acme", "mallory", "admin")
	for _, c := range []struct {
		name string
		do   func() (store.User, error)
		want string
	}{
		{"JIT's role is the IdP's", func() (store.User, error) { return w.s.User(ctx, "acme", ann) }, store.RoleSourceIdP},
		{"a role change", func() (store.User, error) {
			res, err := w.core.ChangeRole(ctx, acmeAdmin, "acme", ann, "viewer")
			return res.User, err
		}, store.RoleSourceAdmin},
		{"an approved review", func() (store.User, error) {
			res, err := w.core.ApproveReview(ctx, acmeAdmin, "acme", grace.RoleReview.ID)
			return res.User, err
		}, store.RoleSourceAdmin},
		{"a denied review", func() (store.User, error) {
			res, err := w.core.DenyReview(ctx, acmeAdmin, "acme", mallory.RoleReview.ID, "no")
			return res.User, err
		}, store.RoleSourceIdP},
	} {
		t.Run(c.name, func(t *testing.T) {
			u, err := c.do()
			if err != nil {
				t.Fatal(err)
			}
			if u.RoleSource != c.want {
				t.Errorf("role source %q, want %q", u.RoleSource, c.want)
			}
			if stored, err := w.s.User(ctx, "acme", u.ID); err != nil || stored.RoleSource != c.want {
				t.Errorf("stored: %+v, %v; want role source %q", stored, err, c.want)
			}
		})
	}
}
