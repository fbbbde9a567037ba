package provisioner_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/jitprov/jitprov/events"
	"github.com/jitprov/jitprov/internal/admin"
	"github.com/jitprov/jitprov/internal/bus"
	"github.com/jitprov/jitprov/internal/known"
	"github.com/jitprov/jitprov/internal/provisioner"
	"github.com/jitprov/jitprov/internal/store"
	"github.com/jitprov/jitprov/internal/store/postgres"
	"github.com/jitprov/jitprov/internal/testenv"
)

// knownWorld is what keeping the known identities right runs on: Postgres,
// NATS with the provisioner's topology, the known-identities bucket, the
// outbox relay, the admin core, and consumer provisioner-known running.
type knownWorld struct {
	s     *postgres.Store
	js    jetstream.JetStream
	cache *known.Cache
	core  *admin.Core
	dec   *provisioner.Decider
	out   *testenv.Output
}

// newKnownWorld starts the world; k, when set, is where the consumer
// writes instead of the bucket.
func newKnownWorld(t *testing.T, k provisioner.KnownIdentities) *knownWorld {
	t.Helper()
	ctx := context.Background()
	s, _ := testenv.Store(t)
	org := store.Organization{ID: "acme", Name: "Acme", MaxSeats: 10,
		Roles: []string{"viewer", "member", "manager", "admin"}, DefaultRole: "member", JITRoleCeiling: "manager",
		UpdatePolicy: store.PreferIdP, LinkByEmail: store.LinkNever}
	if err := s.ApplyOrganizations(ctx, []store.Organization{org}, []store.Connection{
		{OrganizationID: "acme", ID: "okta", Protocol: "saml"}, {OrganizationID: "acme", ID: "google", Protocol: "oidc"},
	}); err != nil {
		t.Fatal(err)
	}
	js, err := jetstream.New(testenv.Connect(t, testenv.NATS(t)))
	if err != nil {
		t.Fatal(err)
	}
	if err := bus.Ensure(ctx, js, bus.DefaultTopology()); err != nil {
		t.Fatal(err)
	}
	cache, err := known.New(ctx, js, known.Config{})
	if err != nil {
		t.Fatal(err)
	}
	if k == nil {
		k = cache
	}
	w := &knownWorld{s: s, js: js, cache: cache, core: admin.New(s, testenv.Logger(t)), dec: provisioner.NewDecider(s, testenv.Logger(t)),
		out: &testenv.Output{}}
	log := w.out.Logger()

	runCtx, stop := context.WithCancel(ctx)
	relay := bus.NewRelay(s, js, log)
	relay.Interval = 50 * time.Millisecond
	cons, err := js.Consumer(ctx, bus.StreamUsers, bus.ConsumerKnown)
	if err != nil {
		t.Fatal(err)
	}
	relayDone, keepDone := make(chan error, 1), make(chan error, 1)
	go func() { relayDone <- relay.Run(runCtx) }()
	go func() { keepDone <- provisioner.KeepKnown(runCtx, cons, s, k, time.Second, nil, log) }()
	t.Cleanup(func() {
		stop()
		if err := errors.Join(<-relayDone, <-keepDone); err != nil {
			t.Errorf("relay or consumer: %v", err)
		}
		if t.Failed() {
			t.Logf("logs:\n%s", w.out.String())
		}
	})
	return w
}

// signIn decides a login of id as the provisioner does and records its
// known identity as it does after the decision; it returns the record.
func (w *knownWorld) signIn(t *testing.T, id events.Identity) (events.ProvisioningResult, known.Record) {
	t.Helper()
	ctx := context.Background()
	res, err := w.dec.Decide(ctx, uuid.NewString(), id)
	if err != nil {
		t.Fatal(err)
	}
	if res.User == nil {
		t.Fatalf("login of %s: %s %s (%s), want a user", id.ExternalID, res.Outcome, res.Reason, res.Message)
	}
	if err := provisioner.Remember(ctx, w.cache, id, res); err != nil {
		t.Fatal(err)
	}
	return res, w.get(t, id)
}

// replay writes the record of an earlier decision again, as a redelivered
// login, or a decision whose record was slow, does.
func (w *knownWorld) replay(t *testing.T, id events.Identity, res events.ProvisioningResult) {
	t.Helper()
	if err := provisioner.Remember(context.Background(), w.cache, id, res); err != nil {
		t.Fatal(err)
	}
}

func (w *knownWorld) get(t *testing.T, id events.Identity) known.Record {
	t.Helper()
	rec, err := w.cache.Get(context.Background(), id.OrganizationID, id.ConnectionID, id.ExternalID)
	if err != nil {
		t.Fatalf("record of %s/%s: %v", id.ConnectionID, id.ExternalID, err)
	}
	return rec
}

// await waits (at most 20s) until the record of id satisfies cond: the
// consumer has rewritten it. It returns the record.
func (w *knownWorld) await(t *testing.T, id events.Identity, what string, cond func(known.Record) bool) known.Record {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		rec, err := w.cache.Get(context.Background(), id.OrganizationID, id.ConnectionID, id.ExternalID)
		if err == nil && cond(rec) {
			return rec
		}
		if time.Now().After(deadline) {
			t.Fatalf("the record of %s/%s is not %s within 20s: %+v (%v)", id.ConnectionID, id.ExternalID, what, rec, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func ident(conn, ext string) events.Identity {
	return events.Identity{OrganizationID: "acme", ConnectionID: conn, Protocol: events.ProtocolSAML,
		ExternalID: ext, Email: ext + "@acme.com", EmailVerified: true, GivenName: "Given", AuthenticatedAt: time.Now().UTC()}
}

var operator = admin.Operator("test")

// An admin's change reaches the known identities: after a suspension,
// a deprovisioning, a reactivation or a role change, no record of the
// user's identities is fresh, and each carries the user's current status
// and role; an unlinked identity's record no longer names a user who may
// sign in. A decision made before the change, whose record is written
// again afterwards (a redelivered login), never brings a fresh record
// back.
func TestKnownFollowsAdminChanges(t *testing.T) {
	w := newKnownWorld(t, nil)
	ctx := context.Background()
	okta := ident("okta", "ada")
	first, rec := w.signIn(t, okta)
	if !known.Fresh(rec, okta) {
		t.Fatalf("after the first login the record is not fresh: %+v", rec)
	}
	userID := first.User.ID
	// A second identity of hers, linked by an admin, and signed in once.
	google := ident("google", "ada-google")
	if _, err := w.core.Link(ctx, operator, "acme", userID, "google", google.ExternalID); err != nil {
		t.Fatal(err)
	}
	googleFirst, grec := w.signIn(t, google)
	if !known.Fresh(grec, google) || grec.UserID != userID {
		t.Fatalf("the linked identity's record: %+v", grec)
	}

	notFresh := func(status, role string) func(known.Record) bool {
		return func(r known.Record) bool { return r.Status == status && r.Role == role }
	}
	check := func(id events.Identity, rec known.Record) {
		t.Helper()
		if known.Fresh(rec, id) || rec.ClaimsDigest != "" || rec.UserID != userID {
			t.Errorf("record of %s: %+v, want one of user %s and never fresh", id.ConnectionID, rec, userID)
		}
	}

	// Suspended: both identities, and a decision made before stays old.
	if _, err := w.core.Suspend(ctx, operator, "acme", userID, "left the company"); err != nil {
		t.Fatal(err)
	}
	for _, id := range []events.Identity{okta, google} {
		check(id, w.await(t, id, "suspended", notFresh(store.StatusSuspended, "member")))
	}
	w.replay(t, okta, first)
	w.replay(t, google, googleFirst)
	for _, id := range []events.Identity{okta, google} {
		if rec := w.get(t, id); rec.Status != store.StatusSuspended || known.Fresh(rec, id) {
			t.Errorf("a decision made before the suspension, recorded again after it, replaced its record: %+v", rec)
		}
	}
	// The next login is refused, synchronously.
	if res, err := w.dec.Decide(ctx, uuid.NewString(), okta); err != nil || res.Reason != events.ReasonSuspended {
		t.Errorf("login while suspended: %+v %v", res, err)
	}

	// Reactivated: active again, but not fresh until the next decision.
	if _, err := w.core.Reactivate(ctx, operator, "acme", userID, ""); err != nil {
		t.Fatal(err)
	}
	check(okta, w.await(t, okta, "active again", notFresh(store.StatusActive, "member")))
	if _, rec := w.signIn(t, okta); !known.Fresh(rec, okta) || rec.Status != store.StatusActive {
		t.Errorf("after reactivation, the next decision's record: %+v, want fresh", rec)
	}

	// Role changed: the role the record carries follows; not fresh.
	if _, err := w.core.ChangeRole(ctx, operator, "acme", userID, "viewer"); err != nil {
		t.Fatal(err)
	}
	check(okta, w.await(t, okta, "of role viewer", notFresh(store.StatusActive, "viewer")))
	check(google, w.await(t, google, "of role viewer", notFresh(store.StatusActive, "viewer")))

	// Deprovisioned.
	if _, err := w.core.Deprovision(ctx, operator, "acme", userID, ""); err != nil {
		t.Fatal(err)
	}
	check(okta, w.await(t, okta, "deprovisioned", notFresh(store.StatusDeprovisioned, "viewer")))
	if _, err := w.core.Reactivate(ctx, operator, "acme", userID, ""); err != nil {
		t.Fatal(err)
	}
	w.await(t, okta, "active again", notFresh(store.StatusActive, "viewer"))
	_, grec = w.signIn(t, google)
	if !known.Fresh(grec, google) {
		t.Fatalf("google identity after reactivation: %+v", grec)
	}

	// Unlinked: the record stays, as a never-fresh guard, and a decision
	// made before the unlink cannot bring the link back.
	if _, err := w.core.Unlink(ctx, operator, "acme", "google", google.ExternalID); err != nil {
		t.Fatal(err)
	}
	rec = w.await(t, google, "unlinked", func(r known.Record) bool { return r.Status == known.StatusUnlinked })
	if known.Fresh(rec, google) || rec.ClaimsDigest != "" {
		t.Errorf("unlinked identity's record: %+v", rec)
	}
	w.replay(t, google, googleFirst)
	if rec := w.get(t, google); rec.Status != known.StatusUnlinked {
		t.Errorf("a decision made before the unlink, recorded again after it, linked the identity again: %+v", rec)
	}
	// Her other identity is left alone: nothing about her changed.
	if rec := w.get(t, okta); rec.Status != store.StatusActive || rec.Role != "viewer" {
		t.Errorf("the user's remaining identity: %+v", rec)
	}
	// The unlinked identity's next login is decided afresh: it is nobody's
	// now, and its email (her email, since it signed in last) is hers, so
	// it is refused rather than signed in as her.
	if res, err := w.dec.Decide(ctx, uuid.NewString(), google); err != nil || res.User != nil || res.Reason != events.ReasonEmailInUse {
		t.Errorf("the unlinked identity's next login: %+v %v, want refused: email in use", res, err)
	}
}

// A decision made on a replica whose clock runs ahead (its DecidedAt, and
// its record's UpdatedAt, lie in this consumer's future) is still older
// than the record written after an admin's change: the suspension wins,
// and the decision's record written again later does not undo it.
func TestKnownOutranksADecisionFromAClockAhead(t *testing.T) {
	w := newKnownWorld(t, nil)
	ahead := provisioner.NewDecider(w.s, testenv.Logger(t))
	ahead.SetClock(func() time.Time { return time.Now().UTC().Add(time.Minute) })
	w.dec = ahead
	id := ident("okta", "grace")
	res, rec := w.signIn(t, id)
	if !known.Fresh(rec, id) || !rec.UpdatedAt.After(time.Now().Add(50*time.Second)) {
		t.Fatalf("the decision from a clock ahead: %+v", rec)
	}
	if _, err := w.core.Suspend(context.Background(), operator, "acme", res.User.ID, ""); err != nil {
		t.Fatal(err)
	}
	rec = w.await(t, id, "suspended", func(r known.Record) bool { return r.Status == store.StatusSuspended })
	if !rec.UpdatedAt.After(res.DecidedAt) {
		t.Errorf("record after the suspension: updated at %s, not after the decision's %s", rec.UpdatedAt, res.DecidedAt)
	}
	w.replay(t, id, res)
	if rec := w.get(t, id); rec.Status != store.StatusSuspended || known.Fresh(rec, id) {
		t.Errorf("the decision from a clock ahead, recorded again, replaced the suspension's record: %+v", rec)
	}
}

// flakyKnown fails its first Puts, as an unreachable bucket does.
type flakyKnown struct {
	provisioner.KnownIdentities
	failures atomic.Int32
}

func (f *flakyKnown) Put(ctx context.Context, rec known.Record) error {
	if f.failures.Add(-1) >= 0 {
		return known.ErrUnavailable
	}
	return f.KnownIdentities.Put(ctx, rec)
}

// A bucket that fails is retried (the event is handed back, not lost);
// an event that breaks the contract is terminated, and the ones after it
// are still applied.
func TestKnownRetriesAndTerminates(t *testing.T) {
	flaky := &flakyKnown{}
	w := newKnownWorld(t, flaky)
	flaky.KnownIdentities = w.cache
	id := ident("okta", "linus")
	res, _ := w.signIn(t, id)

	// A user event on another organisation's subject, and one that is not
	// an event at all.
	ev, err := events.New(events.TypeUserSuspended, admin.Source, res.User.ID, events.UserStatusChanged{
		User: events.User{ID: res.User.ID, OrganizationID: "globex", Email: "x@globex.example", Role: "member", Status: "suspended",
			CreatedBy: "jit", CreatedAt: time.Now().UTC(), UpdatedAt: time.Now().UTC()},
		PreviousStatus: "active", Actor: events.Actor{Type: "system", ID: "test"}})
	if err != nil {
		t.Fatal(err)
	}
	msg, err := events.Encode(context.Background(), ev, "jit.user.suspended.acme")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.js.PublishMsg(context.Background(), msg); err != nil {
		t.Fatal(err)
	}
	if _, err := w.js.PublishMsg(context.Background(), &nats.Msg{Subject: "jit.user.role-changed.acme", Data: []byte("{")}); err != nil {
		t.Fatal(err)
	}

	flaky.failures.Store(2)
	if _, err := w.core.Suspend(context.Background(), operator, "acme", res.User.ID, ""); err != nil {
		t.Fatal(err)
	}
	w.await(t, id, "suspended", func(r known.Record) bool { return r.Status == store.StatusSuspended })
	// Everything is acked or terminated: nothing waits on the consumer.
	cons, err := w.js.Consumer(context.Background(), bus.StreamUsers, bus.ConsumerKnown)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		info, err := cons.Info(context.Background())
		if err == nil && info.NumAckPending == 0 && info.NumPending == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("consumer still holds events: %+v %v", info, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if n := w.out.Count("breaks the event contract; terminated"); n != 2 {
		t.Errorf("%d events terminated as breaking the contract, want 2", n)
	}
	if n := w.out.Count("will retry"); n != 2 {
		t.Errorf("%d retries logged, want 2 (one per failed Put)", n)
	}
}

// The inactivity sweep closes the fast path as an admin's suspension
// does: the record of the person it suspended is never fresh, so their
// next sign-in reaches the provisioner, which reactivates them and writes
// a fresh record again.
func TestKnownFollowsTheInactiveSweep(t *testing.T) {
	w := newKnownWorld(t, nil)
	ctx := context.Background()
	org := store.Organization{ID: "acme", Name: "Acme", MaxSeats: 10,
		Roles: []string{"viewer", "member", "manager", "admin"}, DefaultRole: "member", JITRoleCeiling: "manager",
		UpdatePolicy: store.PreferIdP, LinkByEmail: store.LinkNever, InactiveAfter: 30 * 24 * time.Hour}
	if err := w.s.ApplyOrganizations(ctx, []store.Organization{org}, nil); err != nil {
		t.Fatal(err)
	}
	okta := ident("okta", "ada")
	first, rec := w.signIn(t, okta)
	if !known.Fresh(rec, okta) {
		t.Fatalf("after the first login the record is not fresh: %+v", rec)
	}
	if n, err := provisioner.SweepInactive(ctx, w.s, time.Now().Add(31*24*time.Hour), 0, testenv.Logger(t)); n != 1 || err != nil {
		t.Fatalf("SweepInactive: %d, %v; want 1", n, err)
	}
	rec = w.await(t, okta, "suspended", func(r known.Record) bool { return r.Status == store.StatusSuspended })
	if known.Fresh(rec, okta) || rec.UserID != first.User.ID {
		t.Errorf("record after the sweep: %+v, want user %s, never fresh", rec, first.User.ID)
	}
	// A decision made before the sweep, recorded again, does not open it.
	w.replay(t, okta, first)
	if rec := w.get(t, okta); known.Fresh(rec, okta) {
		t.Errorf("a decision made before the sweep, recorded again after it, made the record fresh: %+v", rec)
	}
	res, rec := w.signIn(t, okta)
	if res.Outcome != events.OutcomeExisting || res.User.Status != store.StatusActive || !known.Fresh(rec, okta) {
		t.Errorf("sign-in after the sweep: %+v, record %+v; want reactivated with a fresh record", res, rec)
	}
}
