package provisioner

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/jitprov/jitprov/events"
	"github.com/jitprov/jitprov/internal/store"
	"github.com/jitprov/jitprov/internal/store/postgres"
	"github.com/jitprov/jitprov/internal/store/sqlite"
	"github.com/jitprov/jitprov/internal/testenv"
)

// batchStores are the backends a batch is decided on: Postgres (pipelined)
// and SQLite (one statement after another).
func batchStores(t *testing.T) map[string]func(t *testing.T) store.Store {
	return map[string]func(t *testing.T) store.Store{
		"postgres": func(t *testing.T) store.Store { s, _ := testenv.Store(t); return s },
		"sqlite": func(t *testing.T) store.Store {
			s, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "jitprov.db"))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(s.Close)
			return s
		},
	}
}

func acmeLogin(org, ext, email string) Login {
	id := login(ext, email)
	id.OrganizationID = org
	return Login{ID: uuid.NewString(), Identity: id}
}

// seatsAndActive reads an organisation's seats in use and its active users.
func seatsAndActive(t *testing.T, s store.Store, orgID string) (seats, active int) {
	t.Helper()
	err := s.InTx(context.Background(), func(ctx context.Context, tx store.Tx) error {
		o, err := tx.Organization(ctx, orgID)
		if err != nil {
			return err
		}
		page, err := tx.ListUsers(ctx, store.UserFilter{OrganizationID: orgID, Status: store.StatusActive, Limit: store.MaxPageSize})
		seats, active = o.SeatsUsed, len(page.Users)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return seats, active
}

// One batch of several organisations and outcomes is decided as each
// login alone would be: created, existing, held, refused, a role review,
// and a redelivered login answered from its stored decision.
func TestDecideBatchMixedOrganisations(t *testing.T) {
	for name, open := range batchStores(t) {
		t.Run(name, func(t *testing.T) {
			s := open(t)
			ctx := context.Background()
			acme := baseOrg()
			beta := baseOrg()
			beta.ID, beta.NewPeople = "beta", store.NewPeopleHold
			conns := []store.Connection{{OrganizationID: "acme", ID: "okta", Protocol: "saml"}, {OrganizationID: "beta", ID: "okta", Protocol: "saml"}}
			if err := s.ApplyOrganizations(ctx, []store.Organization{acme, beta}, conns); err != nil {
				t.Fatal(err)
			}
			d := NewDecider(s, testenv.Logger(t))
			known := seedUser(t, s, store.User{OrganizationID: "acme", Email: "old@acme.com", EmailVerified: true}, "okta/old")
			first := acmeLogin("acme", "redelivered", "redelivered@acme.com")
			if _, err := d.Decide(ctx, first.ID, first.Identity); err != nil {
				t.Fatal(err)
			}
			boss := acmeLogin("acme", "boss", "boss@acme.com")
			boss.Identity.Roles = []string{"admin"}
			batch := []Login{
				acmeLogin("acme", "new", "new@acme.com"),
				acmeLogin("beta", "held", "held@acme.com"),
				acmeLogin("acme", "old", "old@acme.com"),
				first,
				acmeLogin("nowhere", "x", "x@acme.com"),
				boss,
				acmeLogin("acme", "second", "second@acme.com"),
			}
			answers := d.DecideBatch(ctx, batch)
			want := []events.Outcome{events.OutcomeCreated, events.OutcomeHeld, events.OutcomeExisting, events.OutcomeCreated,
				events.OutcomeRefused, events.OutcomeCreated, events.OutcomeCreated}
			for i, a := range answers {
				if a.Err != nil {
					t.Fatalf("login %d: %v", i, a.Err)
				}
				if a.Result.Outcome != want[i] || a.Result.LoginID != batch[i].ID {
					t.Errorf("login %d (%s): %s %s %q, want %s", i, batch[i].Identity.ExternalID, a.Result.Outcome, a.Result.Reason, a.Result.Message, want[i])
				}
			}
			if u := answers[2].Result.User; u == nil || u.ID != known.ID {
				t.Errorf("existing user answered %+v, want %s", u, known.ID)
			}
			if r := answers[5].Result.RoleReview; r == nil || r.RequestedRole != "admin" {
				t.Errorf("role claimed above the ceiling: review %+v, want one for admin", r)
			}
			if answers[4].Result.Reason != events.ReasonUnknownOrganization {
				t.Errorf("unknown organisation: reason %s", answers[4].Result.Reason)
			}
			// Redelivered: the same answer, nothing new.
			again := d.DecideBatch(ctx, batch)
			for i := range batch {
				if a, b := answers[i].Result, again[i].Result; a.Outcome != b.Outcome || (a.User != nil && (b.User == nil || a.User.ID != b.User.ID)) {
					t.Errorf("login %d redelivered: %+v, first %+v", i, b, a)
				}
			}
			for _, o := range []string{"acme", "beta"} {
				if seats, active := seatsAndActive(t, s, o); seats != active {
					t.Errorf("%s: %d seats used, %d active users", o, seats, active)
				}
			}
			if seats, _ := seatsAndActive(t, s, "acme"); seats != 5 {
				t.Errorf("acme uses %d seats, want 5 (old, redelivered, new, boss, second)", seats)
			}
			for i, l := range batch {
				dec, err := s.Decision(ctx, l.ID)
				if errors.Is(err, store.ErrNotFound) || (err == nil && dec.Outcome != string(want[i])) {
					t.Errorf("login %d: stored decision %+v, %v", i, dec, err)
				}
			}
		})
	}
}

// A group asking for more seats than are left gets them in order: the
// first new people are created, the later ones are turned away (or held,
// as the organisation says), and the warning goes to the seat that reaches
// the threshold, once.
func TestDecideBatchGrantsPartiallyInOrder(t *testing.T) {
	for _, whenFull := range []string{store.WhenFullRefuse, store.WhenFullHold} {
		for name, open := range batchStores(t) {
			t.Run(whenFull+"/"+name, func(t *testing.T) {
				s := open(t)
				ctx := context.Background()
				o := baseOrg()
				o.MaxSeats, o.SeatWarningPercent, o.WhenFull = 5, 80, whenFull // warns at the 4th seat
				if err := s.ApplyOrganizations(ctx, []store.Organization{o}, []store.Connection{{OrganizationID: "acme", ID: "okta", Protocol: "saml"}}); err != nil {
					t.Fatal(err)
				}
				seedUser(t, s, store.User{OrganizationID: "acme", Email: "a@acme.com"})
				seedUser(t, s, store.User{OrganizationID: "acme", Email: "b@acme.com"})
				d := NewDecider(s, testenv.Logger(t))
				var batch []Login
				for i := range 6 {
					batch = append(batch, acmeLogin("acme", fmt.Sprintf("p%d", i), fmt.Sprintf("p%d@acme.com", i)))
				}
				answers := d.DecideBatch(ctx, batch)
				full := events.OutcomeRejected
				if whenFull == store.WhenFullHold {
					full = events.OutcomeHeld
				}
				for i, a := range answers {
					want := events.OutcomeCreated
					if i >= 3 {
						want = full
					}
					if a.Err != nil || a.Result.Outcome != want {
						t.Errorf("login %d: %s %s (%v), want %s", i, a.Result.Outcome, a.Result.Reason, a.Err, want)
					}
					if i >= 3 && a.Result.Reason != events.ReasonSeatsExhausted {
						t.Errorf("login %d: reason %s, want seats_exhausted", i, a.Result.Reason)
					}
				}
				if seats, active := seatsAndActive(t, s, "acme"); seats != 5 || active != 5 {
					t.Errorf("%d seats used, %d active users; want 5 and 5", seats, active)
				}
				warnings := outboxData[events.SeatsThresholdReached](t, s, events.TypeSeatsThresholdReached)
				if len(warnings) != 1 || warnings[0].SeatsUsed != 4 || warnings[0].LoginID != batch[1].ID {
					t.Errorf("warnings %+v, want one at the 4th seat, for login 1", warnings)
				}
				if whenFull == store.WhenFullRefuse {
					if n := len(outboxData[events.SeatsExhausted](t, s, events.TypeSeatsExhausted)); n != 3 {
						t.Errorf("%d seats.exhausted, want 3", n)
					}
				}
			})
		}
	}
}

// outboxData decodes the data of every outbox message of type typ.
func outboxData[T any](t *testing.T, s store.Store, typ events.Type) []T {
	t.Helper()
	var out []T
	_, err := s.RelayOutbox(context.Background(), 10000, func(_ context.Context, msgs []store.OutboxMessage) (int, error) {
		for _, m := range msgs {
			if m.Header["ce-type"][0] != string(typ) {
				continue
			}
			var v T
			if err := json.Unmarshal(m.Data, &v); err != nil {
				return 0, err
			}
			out = append(out, v)
		}
		return 0, nil // leave them unsent
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// Several provisioners batch the same crowd, with duplicates across their
// batches, against a few seats: no seat is sold twice, each person is one
// user, and the warning is given once.
func TestDecideBatchRaceForFewSeats(t *testing.T) {
	s, _ := testenv.Store(t)
	ctx := context.Background()
	o := baseOrg()
	o.MaxSeats, o.SeatWarningPercent = 7, 50 // warns at the 4th seat
	if err := s.ApplyOrganizations(ctx, []store.Organization{o}, []store.Connection{{OrganizationID: "acme", ID: "okta", Protocol: "saml"}}); err != nil {
		t.Fatal(err)
	}
	const people, replicas, perBatch = 40, 4, 10
	var crowd []Login
	for i := range people {
		crowd = append(crowd, acmeLogin("acme", fmt.Sprintf("p%d", i), fmt.Sprintf("p%d@acme.com", i)))
	}
	outcomes := raceReplicas(t, s, crowd, replicas, perBatch)
	seats, active := seatsAndActive(t, s, "acme")
	if seats != 7 || active != 7 {
		t.Errorf("%d seats used, %d active users; want 7 and 7", seats, active)
	}
	created := 0
	for ext, got := range outcomes {
		n := 0
		for _, o := range got {
			if o == events.OutcomeCreated {
				n++
			}
		}
		if n > 1 {
			t.Errorf("%s created %d times", ext, n)
		}
		created += n
	}
	if created != 7 {
		t.Errorf("%d people created, want 7", created)
	}
	if n := len(outboxData[events.UserCreated](t, s, events.TypeUserCreated)); n != 7 {
		t.Errorf("%d user.created, want 7", n)
	}
	if w := outboxData[events.SeatsThresholdReached](t, s, events.TypeSeatsThresholdReached); len(w) != 1 || w[0].SeatsUsed != 4 {
		t.Errorf("warnings %+v, want one at the 4th seat", w)
	}
}

// countingStore counts the transactions a Decider runs.
type countingStore struct {
	store.Store
	txs atomic.Int64
}

func (c *countingStore) InTx(ctx context.Context, fn func(ctx context.Context, tx store.Tx) error) error {
	c.txs.Add(1)
	return c.Store.InTx(ctx, fn)
}

// orgsWithSeats applies organisations named by id with their seats, each
// with one connection, okta.
func orgsWithSeats(t *testing.T, s store.Store, seats map[string]int) {
	t.Helper()
	var orgs []store.Organization
	var conns []store.Connection
	for id, n := range seats {
		o := baseOrg()
		o.ID, o.MaxSeats, o.SeatWarningPercent = id, n, 50
		orgs = append(orgs, o)
		conns = append(conns, store.Connection{OrganizationID: id, ID: "okta", Protocol: "saml"})
	}
	if err := s.ApplyOrganizations(t.Context(), orgs, conns); err != nil {
		t.Fatal(err)
	}
}

// A batch of several organisations' logins is decided in one transaction;
// an organisation whose seats are short sends that transaction back and
// is decided in transactions of its own from then on, the others still
// together, each login answered as it would be alone.
func TestDecideBatchOrganisationsInOneTransaction(t *testing.T) {
	for name, open := range batchStores(t) {
		t.Run(name, func(t *testing.T) {
			cs := &countingStore{Store: open(t)}
			orgsWithSeats(t, cs, map[string]int{"acme": 100, "beta": 100, "full": 1, "gamma": 100})
			d := NewDecider(cs, testenv.Logger(t))
			ctx := t.Context()
			batch := func(orgs ...string) []Login {
				var b []Login
				for _, o := range orgs {
					b = append(b, acmeLogin(o, uuid.NewString(), uuid.NewString()+"@acme.com"))
				}
				return b
			}
			decide := func(b []Login) (txs int64, outcomes []events.Outcome) {
				t.Helper()
				before := cs.txs.Load()
				for i, a := range d.DecideBatch(ctx, b) {
					if a.Err != nil {
						t.Fatalf("login %d of %s: %v", i, b[i].Identity.OrganizationID, a.Err)
					}
					outcomes = append(outcomes, a.Result.Outcome)
				}
				return cs.txs.Load() - before, outcomes
			}
			created, rejected := events.OutcomeCreated, events.OutcomeRejected

			txs, got := decide(batch("gamma", "acme", "beta", "acme", "full"))
			if want := []events.Outcome{created, created, created, created, created}; txs != 1 || !slices.Equal(got, want) {
				t.Errorf("five logins of four organisations with seats: %d transactions, %v; want 1, %v", txs, got, want)
			}
			// full has no seat left: the shared transaction is sent back,
			// the others are decided together again and full alone.
			txs, got = decide(batch("acme", "full", "beta"))
			if want := []events.Outcome{created, rejected, created}; !slices.Equal(got, want) {
				t.Errorf("with full's seats gone: %v, want %v", got, want)
			}
			if txs < 3 {
				t.Errorf("with full's seats gone: %d transactions, want the shared one, then the others' and full's", txs)
			}
			// From now full is decided alone at once: one transaction for
			// the others, and full's own (locked first: seats short).
			txs, got = decide(batch("beta", "full", "gamma"))
			if want := []events.Outcome{created, rejected, created}; !slices.Equal(got, want) {
				t.Errorf("full decided alone: %v, want %v", got, want)
			}
			if txs > 3 {
				t.Errorf("full decided alone: %d transactions, want the others' one and full's", txs)
			}
			for o, want := range map[string]int{"acme": 3, "beta": 3, "gamma": 2, "full": 1} {
				if seats, active := seatsAndActive(t, cs, o); seats != want || active != want {
					t.Errorf("%s: %d seats used, %d active users; want %d", o, seats, active, want)
				}
			}
		})
	}
}

// An organisation whose row another session holds past lock_timeout
// fails only its own logins: the others of the batch are decided, and it
// is decided alone while it stays held.
func TestDecideBatchContendedOrganisationFailsAlone(t *testing.T) {
	s, dbURL := testenv.Store(t)
	orgsWithSeats(t, s, map[string]int{"acme": 10, "beta": 10})
	short, err := postgres.Open(t.Context(), dbURL, postgres.Options{LockTimeout: 300 * time.Millisecond, Logger: testenv.Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(short.Close)
	cs := &countingStore{Store: short}
	d := NewDecider(cs, testenv.Logger(t))

	// Another session holds acme's row (as the inactivity sweep or a
	// stuck client would) while the batch is decided.
	holding, release, done := make(chan struct{}), make(chan struct{}), make(chan error)
	go func() {
		done <- s.InTx(context.Background(), func(ctx context.Context, tx store.Tx) error {
			if _, err := tx.TakeSeat(ctx, "acme"); err != nil {
				return err
			}
			close(holding)
			<-release
			return errors.New("rolled back on purpose")
		})
	}()
	<-holding
	batch := []Login{acmeLogin("acme", "ann", "ann@acme.com"), acmeLogin("beta", "bob", "bob@acme.com")}
	answers := d.DecideBatch(t.Context(), batch)
	if !errors.Is(answers[0].Err, store.ErrContended) {
		t.Errorf("acme's login, its row held: %+v, %v; want ErrContended", answers[0].Result, answers[0].Err)
	}
	if answers[1].Err != nil || answers[1].Result.Outcome != events.OutcomeCreated {
		t.Errorf("beta's login beside it: %+v, %v; want created", answers[1].Result, answers[1].Err)
	}
	if answers[1].Err != nil && strings.Contains(answers[1].Err.Error(), "acme") {
		t.Errorf("beta's error names acme: %v", answers[1].Err)
	}
	close(release)
	<-done

	// acme is decided alone for a while: in a transaction of its own,
	// where it would share beta's.
	before := cs.txs.Load()
	for i, a := range d.DecideBatch(t.Context(), []Login{acmeLogin("acme", "ann", "ann@acme.com"), acmeLogin("beta", "cy", "cy@acme.com"), acmeLogin("beta", "di", "di@acme.com")}) {
		if a.Err != nil || a.Result.Outcome != events.OutcomeCreated {
			t.Errorf("login %d once acme is free: %+v, %v", i, a.Result, a.Err)
		}
	}
	if n := cs.txs.Load() - before; n != 2 {
		t.Errorf("%d transactions, want 2: acme's and beta's", n)
	}
}

// A shared transaction sent back (one organisation's seats short) and
// decided again logs each decision once: what the rolled-back try logged
// is dropped, not written beside the decision that holds.
func TestDecideBatchLogsOnlyWhatItCommits(t *testing.T) {
	s, _ := testenv.Store(t)
	orgsWithSeats(t, s, map[string]int{"acme": 10, "full": 0})
	var mu sync.Mutex
	var logged strings.Builder
	log := slog.New(slog.NewTextHandler(writerFunc(func(p []byte) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		return logged.Write(p)
	}), &slog.HandlerOptions{Level: slog.LevelInfo}))
	err := s.InTx(t.Context(), func(ctx context.Context, tx store.Tx) error {
		o, err := tx.Organization(ctx, "acme")
		if err != nil {
			return err
		}
		o.InitialAdmins = []string{"boss@acme.com"}
		return s.ApplyOrganizations(ctx, []store.Organization{o}, nil)
	})
	if err != nil {
		t.Fatal(err)
	}
	d := NewDecider(s, log)
	answers := d.DecideBatch(t.Context(), []Login{acmeLogin("acme", "boss", "boss@acme.com"), acmeLogin("full", "x", "x@acme.com")})
	if a := answers[0]; a.Err != nil || a.Result.User == nil || a.Result.User.Role != "admin" {
		t.Fatalf("the initial admin: %+v, %v", a.Result, a.Err)
	}
	mu.Lock()
	defer mu.Unlock()
	if n := strings.Count(logged.String(), "initial admin signed in"); n != 1 || !strings.Contains(logged.String(), answers[0].Result.User.ID) {
		t.Errorf("the initial admin's grant logged %d times, want once, naming user %s:\n%s", n, answers[0].Result.User.ID, logged.String())
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// Replicas racing over batches that mix organisations, with few seats in
// some: no organisation sells a seat twice or to one person twice, and
// every warning is given once.
func TestDecideBatchOrganisationsRace(t *testing.T) {
	s, _ := testenv.Store(t)
	seats := map[string]int{"acme": 7, "beta": 3, "gamma": 40, "delta": 12}
	orgsWithSeats(t, s, seats)
	const perOrg, replicas, perBatch = 20, 4, 9
	var crowd []Login
	for i := range perOrg {
		for _, o := range []string{"acme", "beta", "gamma", "delta"} {
			crowd = append(crowd, acmeLogin(o, fmt.Sprintf("%s-p%d", o, i), fmt.Sprintf("p%d@acme.com", i)))
		}
	}
	created := map[string]int{} // by external id
	for ext, got := range raceReplicas(t, s, crowd, replicas, perBatch) {
		for _, o := range got {
			if o == events.OutcomeCreated {
				created[ext]++
			}
		}
	}
	for ext, n := range created {
		if n > 1 {
			t.Errorf("%s created %d times", ext, n)
		}
	}
	perOrgCreated := map[string]int{}
	for _, u := range outboxData[events.UserCreated](t, s, events.TypeUserCreated) {
		perOrgCreated[u.User.OrganizationID]++
	}
	warnings := map[string]int{}
	for _, w := range outboxData[events.SeatsThresholdReached](t, s, events.TypeSeatsThresholdReached) {
		warnings[w.OrganizationID]++
	}
	for o, max := range seats {
		want := min(max, perOrg)
		if used, active := seatsAndActive(t, s, o); used != want || active != want {
			t.Errorf("%s: %d seats used, %d active users; want %d", o, used, active, want)
		}
		if perOrgCreated[o] != want {
			t.Errorf("%s: %d user.created, want %d", o, perOrgCreated[o], want)
		}
		if warnings[o] != 1 {
			t.Errorf("%s: %d seat warnings, want 1", o, warnings[o])
		}
	}
}

// raceReplicas has replicas Deciders decide the crowd side by side, each
// seeing everyone in its own order and batches of perBatch, as with
// redeliveries and duplicate logins (a new login id each), and returns
// every outcome by external id. A login left undecided fails the test.
func raceReplicas(t *testing.T, s store.Store, crowd []Login, replicas, perBatch int) map[string][]events.Outcome {
	t.Helper()
	var wg sync.WaitGroup
	var mu sync.Mutex
	outcomes := map[string][]events.Outcome{}
	for r := range replicas {
		d := NewDecider(s, testenv.Logger(t))
		wg.Go(func() {
			order := slices.Clone(crowd)
			for i := range order {
				j := (i*7 + r*13) % len(order)
				order[i], order[j] = order[j], order[i]
			}
			for start := 0; start < len(order); start += perBatch {
				batch := slices.Clone(order[start:min(start+perBatch, len(order))])
				for i := range batch {
					batch[i].ID = uuid.NewString()
				}
				for i, a := range d.DecideBatch(t.Context(), batch) {
					if a.Err != nil {
						t.Errorf("replica %d: %s: %v", r, batch[i].Identity.ExternalID, a.Err)
						continue
					}
					mu.Lock()
					outcomes[batch[i].Identity.ExternalID] = append(outcomes[batch[i].Identity.ExternalID], a.Result.Outcome)
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	return outcomes
}

// fakeMsg is a delivery for inHand, which reads only its subject.
type fakeMsg struct {
	jetstream.Msg
	subject string
}

func (m fakeMsg) Subject() string { return m.subject }

// A lone login is taken at once: take returns what is in hand, never
// waiting for a batch to fill (were it to wait, this test would hang, as
// nothing else ever arrives).
func TestInHandTakesALoneLoginAtOnce(t *testing.T) {
	h := newInHand(64, 32)
	h.put(fakeMsg{subject: "jit.login.first-seen.acme"})
	if got, _ := h.take(); len(got) != 1 {
		t.Fatalf("took %d logins, want the lone one", len(got))
	}
}

// What is in hand is taken oldest organisation first, each organisation's
// logins together, up to a batch across organisations; an organisation
// with more waiting than the batch holds goes to the back, and one a
// worker is deciding is not taken until it is released.
func TestInHandGroupsByOrganisation(t *testing.T) {
	h := newInHand(64, 3)
	for _, s := range []string{"a", "b", "a", "a", "a", "c", "b", "d"} {
		h.put(fakeMsg{subject: s})
	}
	var got []string
	for i := range 4 {
		if i == 3 {
			h.release([]string{"a"})
		}
		msgs, subjs := h.take()
		var took []string
		for _, m := range msgs {
			if !slices.Contains(subjs, m.Subject()) {
				t.Fatalf("took a login of %s, not among the subjects named, %v", m.Subject(), subjs)
			}
			took = append(took, m.Subject())
		}
		got = append(got, strings.Join(took, ""))
	}
	if want := []string{"aaa", "bbc", "d", "a"}; !slices.Equal(got, want) {
		t.Errorf("took %v, want %v", got, want)
	}
	h.drain()
	if msgs, _ := h.take(); msgs != nil {
		t.Errorf("drained and empty: took %d", len(msgs))
	}
}

// While a worker decides an organisation, its later logins wait for it,
// however long they have waited, and another organisation's go first;
// released, they are taken together.
func TestInHandOneWorkerPerOrganisation(t *testing.T) {
	h := newInHand(64, 32)
	h.put(fakeMsg{subject: "a"})
	if _, subjs := h.take(); !slices.Equal(subjs, []string{"a"}) {
		t.Fatalf("took %v, want a", subjs)
	}
	h.put(fakeMsg{subject: "a"})
	h.put(fakeMsg{subject: "a"})
	h.put(fakeMsg{subject: "b"})
	if msgs, subjs := h.take(); !slices.Equal(subjs, []string{"b"}) || len(msgs) != 1 {
		t.Fatalf("took %v×%d while a was being decided, want b×1", subjs, len(msgs))
	}
	// Draining with only a's logins left, a worker waits for a's release
	// rather than returning with logins in hand.
	h.drain()
	took := make(chan int)
	go func() {
		msgs, _ := h.take()
		took <- len(msgs)
	}()
	h.release([]string{"a"})
	if n := <-took; n != 2 {
		t.Fatalf("after the release took %d, want a's 2 waiting logins together", n)
	}
	h.release([]string{"a"})
	if msgs, _ := h.take(); msgs != nil {
		t.Errorf("drained and empty: took %d", len(msgs))
	}
}

// Workers racing over many organisations never decide one organisation
// twice at once, and every login is taken exactly once.
func TestInHandWorkersRace(t *testing.T) {
	const workers, orgs, logins = 8, 5, 2000
	h := newInHand(64, 4)
	var deciding [orgs]atomic.Int32
	var taken atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for {
				msgs, subjs := h.take()
				if msgs == nil {
					return
				}
				for _, subj := range subjs {
					if n := deciding[int(subj[0]-'a')].Add(1); n != 1 {
						t.Errorf("%d workers decide %s at once", n, subj)
					}
				}
				taken.Add(int64(len(msgs)))
				runtime.Gosched()
				for _, subj := range subjs {
					deciding[int(subj[0]-'a')].Add(-1)
				}
				h.release(subjs)
			}
		})
	}
	for i := range logins {
		h.put(fakeMsg{subject: string(rune('a' + i%orgs))})
	}
	h.drain()
	wg.Wait()
	if n := taken.Load(); n != logins {
		t.Errorf("took %d logins, want %d", n, logins)
	}
}

// A login the database refuses fails alone: the rest of its group is
// decided.
func TestDecideBatchBadLoginFailsAlone(t *testing.T) {
	s, _ := testenv.Store(t)
	ctx := context.Background()
	if err := s.ApplyOrganizations(ctx, []store.Organization{baseOrg()}, []store.Connection{{OrganizationID: "acme", ID: "okta", Protocol: "saml"}}); err != nil {
		t.Fatal(err)
	}
	d := NewDecider(s, testenv.Logger(t))
	bad := acmeLogin("acme", "bad", "bad@acme.com")
	bad.Identity.GivenName = "nul\x00byte"
	batch := []Login{acmeLogin("acme", "a", "a@acme.com"), bad, acmeLogin("acme", "b", "b@acme.com")}
	answers := d.DecideBatch(ctx, batch)
	if !errors.Is(answers[1].Err, store.ErrInvalidData) {
		t.Errorf("bad login: %+v, want store.ErrInvalidData", answers[1])
	}
	for _, i := range []int{0, 2} {
		if answers[i].Err != nil || answers[i].Result.Outcome != events.OutcomeCreated {
			t.Errorf("login %d: %+v, want created", i, answers[i])
		}
	}
	if seats, active := seatsAndActive(t, s, "acme"); seats != 2 || active != 2 {
		t.Errorf("%d seats used, %d active users; want 2 and 2", seats, active)
	}
}

// Logins decided in one batch each keep their trace: the events decided
// for a login carry its span's trace context, not the batch's.
func TestDecideBatchEventsInEachLoginsTrace(t *testing.T) {
	for name, open := range batchStores(t) {
		t.Run(name, func(t *testing.T) {
			s := open(t)
			ctx := context.Background()
			if err := s.ApplyOrganizations(ctx, []store.Organization{baseOrg()}, []store.Connection{{OrganizationID: "acme", ID: "okta", Protocol: "saml"}}); err != nil {
				t.Fatal(err)
			}
			tp := sdktrace.NewTracerProvider()
			t.Cleanup(func() { _ = tp.Shutdown(ctx) })
			tracer := tp.Tracer("test")
			bctx, batchSpan := tracer.Start(ctx, "batch")
			defer batchSpan.End()
			var batch []Login
			want := map[string]trace.TraceID{} // login id → its trace
			for _, who := range []string{"ada", "grace", "alan"} {
				l := acmeLogin("acme", who, who+"@acme.com")
				_, l.Span = tracer.Start(ctx, "provision login")
				defer l.Span.End()
				want[l.ID] = l.Span.SpanContext().TraceID()
				batch = append(batch, l)
			}
			for i, a := range NewDecider(s, testenv.Logger(t)).DecideBatch(bctx, batch) {
				if a.Err != nil || a.Result.Outcome != events.OutcomeCreated {
					t.Fatalf("login %d: %+v, %v", i, a.Result, a.Err)
				}
			}
			seen := 0
			_, err := s.RelayOutbox(ctx, 100, func(_ context.Context, msgs []store.OutboxMessage) (int, error) {
				for _, m := range msgs {
					var data struct {
						LoginID string `json:"login_id"`
					}
					if err := json.Unmarshal(m.Data, &data); err != nil || data.LoginID == "" {
						continue
					}
					got := trace.SpanContextFromContext(events.ExtractTrace(ctx, nats.Header(m.Header))).TraceID()
					if got != want[data.LoginID] {
						t.Errorf("event %s of login %s in trace %s, want the login's %s", m.Subject, data.LoginID, got, want[data.LoginID])
					}
					seen++
				}
				return 0, nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if seen != len(batch) {
				t.Errorf("%d events name a login, want %d (user.created each)", seen, len(batch))
			}
		})
	}
}
