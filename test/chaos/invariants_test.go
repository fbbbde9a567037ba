//go:build chaos

package chaos

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/jitprov/jitprov/events"
	"github.com/jitprov/jitprov/internal/bus"
)

// decision is a row of provisioning_decisions.
type decision struct {
	loginID, org, ext, outcome, reason, userID string
	decidedAt                                  time.Time
}

// state is what the system holds after a scenario: the database, and the
// streams read in full.
type state struct {
	decisions   []decision
	byPerson    map[string][]decision // by org/external id
	users       map[string]userRow    // by id
	orgs        []orgRow
	unsent      int
	loginsMsgs  uint64 // LOGINS messages left
	loginsSeq   uint64 // logins LOGINS ever stored (its last sequence)
	usersEvents []eventMsg
	alerts      []eventMsg
}

type userRow struct {
	id, org, conn, ext, email, status string
}

type orgRow struct {
	id               string
	seatsUsed, max   int
	active, rejected int
}

type eventMsg struct {
	id, typ, subject string
}

func personKey(org, ext string) string { return org + "/" + ext }

// settle waits, within bounds, for what must drain after recovery: LOGINS
// empty (every stored login decided or given up) and the outbox sent. It
// returns how long each took, or the error of the bound that passed.
func settle(ctx context.Context, d *deployment, within time.Duration) (loginsErr, outboxErr error) {
	deadline := time.Now().Add(within)
	loginsErr = pollUntil(ctx, deadline, func() (bool, string) {
		n, _, err := loginsState(ctx, d.js)
		if err != nil {
			return false, err.Error()
		}
		return n == 0, fmt.Sprintf("%d logins still in LOGINS", n)
	})
	outboxErr = pollUntil(ctx, deadline, func() (bool, string) {
		var n int
		if err := d.db.QueryRow(ctx, `SELECT count(*) FROM outbox WHERE sent_at IS NULL`).Scan(&n); err != nil {
			return false, err.Error()
		}
		return n == 0, fmt.Sprintf("%d outbox rows unsent", n)
	})
	return loginsErr, outboxErr
}

// pollUntil polls cond every 200 ms until it holds or deadline passes; the
// error carries cond's last word.
func pollUntil(ctx context.Context, deadline time.Time, cond func() (bool, string)) error {
	for {
		ok, why := cond()
		if ok {
			return nil
		}
		if time.Now().After(deadline) {
			return errors.New(why)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: %w", why, ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func loginsState(ctx context.Context, js jetstream.JetStream) (msgs, lastSeq uint64, err error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, bus.StreamLogins)
	if err != nil {
		return 0, 0, err
	}
	info, err := s.Info(ctx)
	if err != nil {
		return 0, 0, err
	}
	return info.State.Msgs, info.State.LastSeq, nil
}

// readState reads the database and the streams.
func readState(ctx context.Context, d *deployment) (*state, error) {
	st := &state{byPerson: map[string][]decision{}, users: map[string]userRow{}}
	rows, err := d.db.Query(ctx, `SELECT login_id, org_id, external_id, outcome, reason, coalesce(user_id::text, ''), decided_at FROM provisioning_decisions`)
	if err != nil {
		return nil, err
	}
	for rows.Next() {
		var dc decision
		if err := rows.Scan(&dc.loginID, &dc.org, &dc.ext, &dc.outcome, &dc.reason, &dc.userID, &dc.decidedAt); err != nil {
			return nil, err
		}
		st.decisions = append(st.decisions, dc)
		k := personKey(dc.org, dc.ext)
		st.byPerson[k] = append(st.byPerson[k], dc)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	// A user's first identity (the chaos runs give each person one).
	rows, err = d.db.Query(ctx, `SELECT DISTINCT ON (u.id) u.id::text, u.org_id, coalesce(i.connection_id, ''), coalesce(i.external_id, ''),
		coalesce(lower(u.email), ''), u.status
		FROM users u LEFT JOIN identities i ON i.user_id = u.id ORDER BY u.id, i.first_seen_at`)
	if err != nil {
		return nil, err
	}
	for rows.Next() {
		var u userRow
		if err := rows.Scan(&u.id, &u.org, &u.conn, &u.ext, &u.email, &u.status); err != nil {
			return nil, err
		}
		st.users[u.id] = u
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	rows, err = d.db.Query(ctx, `SELECT o.id, o.seats_used, o.max_seats,
		(SELECT count(*) FROM users u WHERE u.org_id = o.id AND u.status = 'active'),
		(SELECT count(*) FROM provisioning_decisions p WHERE p.org_id = o.id AND p.outcome = 'rejected' AND p.reason = 'seats_exhausted')
		FROM organizations o ORDER BY o.id`)
	if err != nil {
		return nil, err
	}
	for rows.Next() {
		var o orgRow
		if err := rows.Scan(&o.id, &o.seatsUsed, &o.max, &o.active, &o.rejected); err != nil {
			return nil, err
		}
		st.orgs = append(st.orgs, o)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if err := d.db.QueryRow(ctx, `SELECT count(*) FROM outbox WHERE sent_at IS NULL`).Scan(&st.unsent); err != nil {
		return nil, err
	}
	if st.loginsMsgs, st.loginsSeq, err = loginsState(ctx, d.js); err != nil {
		return nil, fmt.Errorf("LOGINS: %w", err)
	}
	if st.usersEvents, err = readStream(ctx, d.js, bus.StreamUsers); err != nil {
		return nil, err
	}
	if st.alerts, err = readStream(ctx, d.js, bus.StreamAlerts); err != nil {
		return nil, err
	}
	return st, nil
}

// readStream reads every message of a stream with an ordered consumer,
// resuming after the last message read when a fetch fails (a consumer
// just created on a cluster can answer "no responders" at first).
func readStream(ctx context.Context, js jetstream.JetStream, name string) ([]eventMsg, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	s, err := js.Stream(ctx, name)
	if err != nil {
		return nil, fmt.Errorf("stream %s: %w", name, err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		return nil, fmt.Errorf("stream %s: %w", name, err)
	}
	want, lastSeq := info.State.Msgs, info.State.LastSeq
	var out []eventMsg
	var next uint64 = 1
	var lastErr error
	for uint64(len(out)) < want && next <= lastSeq {
		if ctx.Err() != nil {
			return out, fmt.Errorf("read %s: %d of %d messages: %w (last error: %v)", name, len(out), want, ctx.Err(), lastErr)
		}
		c, err := s.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverByStartSequencePolicy, OptStartSeq: next})
		if err != nil {
			lastErr = err
			pause(200 * time.Millisecond)
			continue
		}
		for uint64(len(out)) < want && next <= lastSeq {
			batch, err := c.Fetch(500, jetstream.FetchMaxWait(5*time.Second))
			if err != nil {
				lastErr = err
				break
			}
			n := 0
			for m := range batch.Messages() {
				h := m.Headers()
				out = append(out, eventMsg{id: first(h, "ce-id"), typ: first(h, "ce-type"), subject: first(h, "ce-subject")})
				if md, err := m.Metadata(); err == nil {
					next = md.Sequence.Stream + 1
				}
				n++
			}
			if err := batch.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) && !errors.Is(err, context.DeadlineExceeded) {
				lastErr = err
				break
			}
			if n == 0 {
				lastErr = fmt.Errorf("nothing after sequence %d", next-1)
				break
			}
		}
		if uint64(len(out)) < want {
			pause(200 * time.Millisecond)
		}
	}
	return out, nil
}

func first(h nats.Header, k string) string {
	if v := h[k]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// verdict is what the checks found about one scenario's run.
type verdict struct {
	pending, stranded   []*login // sent to the waiting page and never answered: without / with a decision
	strandedWithAccount int      // of the stranded, those whose account exists
	refusedButDecided   []*login
	failures            []string // "name: detail"
	failedAlertsCount   int
	seatsExhaustedSeen  int
}

func (v *verdict) fail(name, format string, args ...any) {
	v.failures = append(v.failures, name+": "+fmt.Sprintf(format, args...))
}

// names of the failed invariants, for the table.
func (v *verdict) names() []string {
	seen := map[string]bool{}
	var out []string
	for _, f := range v.failures {
		n, _, _ := strings.Cut(f, ":")
		if !seen[n] {
			seen[n] = true
			out = append(out, n)
		}
	}
	return out
}

// check holds the run against the invariants of issue 10.
func check(st *state, logins []*login, loginsErr, outboxErr error) *verdict {
	v := &verdict{}
	for _, a := range st.alerts {
		switch events.Type(a.typ) {
		case events.TypeProvisioningFailed:
			v.failedAlertsCount++
		case events.TypeSeatsExhausted:
			v.seatsExhaustedSeen++
		}
	}

	// Every person the browser saw decided has a decision that matches;
	// every waiting person is pending (no decision) or stranded (decided).
	var noDecision, wrongDecision, noUser []string
	for _, l := range logins {
		ds := st.byPerson[personKey(l.org, l.ext)]
		switch l.outcome {
		case outSignedIn, outSignedInWait:
			if len(ds) == 0 {
				noDecision = append(noDecision, l.ext)
				continue
			}
			d := ds[0]
			if d.outcome != string(events.OutcomeCreated) && d.outcome != string(events.OutcomeExisting) {
				wrongDecision = append(wrongDecision, l.ext+"="+d.outcome)
			}
			if _, ok := st.users[d.userID]; !ok || l.userID != d.userID {
				noUser = append(noUser, fmt.Sprintf("%s(session %q, decision %q)", l.ext, l.userID, d.userID))
			}
		case outSeats:
			if len(ds) == 0 {
				noDecision = append(noDecision, l.ext)
			} else if ds[0].outcome != string(events.OutcomeRejected) {
				wrongDecision = append(wrongDecision, l.ext+"="+ds[0].outcome)
			}
		case outWaiting, outWaitFailed:
			if len(ds) == 0 {
				v.pending = append(v.pending, l)
			} else {
				v.stranded = append(v.stranded, l)
				if ds[0].outcome == string(events.OutcomeCreated) || ds[0].outcome == string(events.OutcomeExisting) {
					v.strandedWithAccount++
				}
			}
		case outRefused:
			if len(ds) > 0 {
				v.refusedButDecided = append(v.refusedButDecided, l)
			}
		}
	}
	if len(noDecision)+len(wrongDecision)+len(noUser) > 0 {
		v.fail("decided", "%d answered without a decision %s, %d with another decision %s, %d without their user %s",
			len(noDecision), sample(noDecision), len(wrongDecision), sample(wrongDecision), len(noUser), sample(noUser))
	}
	if len(v.pending) > 0 {
		v.fail("nothing-pending", "%d people sent to the waiting page whose login was never decided %s", len(v.pending), sampleLogins(v.pending))
	}
	if len(v.stranded) > 0 {
		v.fail("nobody-stranded", "%d people whose login was decided never got the answer (%d of them have an account, the others were turned away) %s",
			len(v.stranded), v.strandedWithAccount, sampleLogins(v.stranded))
	}
	if len(v.refusedButDecided) > 0 {
		v.fail("refusal-honest", "%d people were shown the outage page although their login was stored and decided %s",
			len(v.refusedButDecided), sampleLogins(v.refusedButDecided))
	}

	// Every login decided once.
	var twice []string
	for k, ds := range st.byPerson {
		if len(ds) > 1 {
			twice = append(twice, fmt.Sprintf("%s×%d", k, len(ds)))
		}
	}
	if len(twice) > 0 {
		v.fail("decided-once", "%d people (one sign-in each) have several decisions %s", len(twice), sample(twice))
	}
	if decided := uint64(len(st.decisions) + v.failedAlertsCount); decided != st.loginsSeq {
		v.fail("stored=decided", "LOGINS stored %d logins; %d decisions and %d given up", st.loginsSeq, len(st.decisions), v.failedAlertsCount)
	}
	if loginsErr != nil {
		v.fail("logins-drained", "%v", loginsErr)
	}
	if outboxErr != nil {
		v.fail("outbox-drained", "%v", outboxErr)
	}

	// No duplicate users.
	byIdentity, byEmail := map[string]int{}, map[string]int{}
	for _, u := range st.users {
		byIdentity[u.org+"/"+u.conn+"/"+u.ext]++
		if u.email != "" {
			byEmail[u.org+"/"+u.email]++
		}
	}
	var dups []string
	for k, n := range byIdentity {
		if n > 1 {
			dups = append(dups, fmt.Sprintf("%s×%d", k, n))
		}
	}
	for k, n := range byEmail {
		if n > 1 {
			dups = append(dups, fmt.Sprintf("%s×%d", k, n))
		}
	}
	if len(dups) > 0 {
		v.fail("no-duplicate-users", "%s", sample(dups))
	}

	// seats_used = active users ≤ max_seats.
	for _, o := range st.orgs {
		if o.seatsUsed != o.active || o.seatsUsed > o.max {
			v.fail("seats", "%s: seats_used %d, active users %d, max %d", o.id, o.seatsUsed, o.active, o.max)
		}
	}

	// One user.created per user, none for a user that does not exist; no
	// event id twice.
	created := map[string]int{}
	ids := map[string]int{}
	for _, e := range st.usersEvents {
		ids[e.id]++
		if events.Type(e.typ) == events.TypeUserCreated {
			created[e.subject]++
		}
	}
	var bad []string
	for id := range st.users {
		if created[id] != 1 {
			bad = append(bad, fmt.Sprintf("%s×%d", id, created[id]))
		}
	}
	for id, n := range created {
		if _, ok := st.users[id]; !ok {
			bad = append(bad, fmt.Sprintf("%s×%d(no such user)", id, n))
		}
	}
	createdDecisions := 0
	for _, d := range st.decisions {
		if d.outcome == string(events.OutcomeCreated) {
			createdDecisions++
		}
	}
	if len(bad) > 0 || createdDecisions != len(st.users) {
		v.fail("one-user.created", "%d users, %d created decisions, %d user.created events; off: %s",
			len(st.users), createdDecisions, countType(st.usersEvents, events.TypeUserCreated), sample(bad))
	}

	// Alerts counted once: one seats.exhausted per rejected decision, no
	// event id twice in ALERTS or USERS, one threshold warning per crossing.
	rejected := 0
	for _, o := range st.orgs {
		rejected += o.rejected
	}
	for _, e := range st.alerts {
		ids[e.id]++
	}
	var dupIDs []string
	for id, n := range ids {
		if n > 1 {
			dupIDs = append(dupIDs, fmt.Sprintf("%s×%d", id, n))
		}
	}
	thresholds := map[string]int{}
	for _, e := range st.alerts {
		if events.Type(e.typ) == events.TypeSeatsThresholdReached {
			thresholds[e.subject]++
		}
	}
	var thr []string
	for _, o := range st.orgs {
		want := 0
		if o.max > 0 && o.seatsUsed >= (o.max*90+99)/100 {
			want = 1
		}
		if thresholds[o.id] != want {
			thr = append(thr, fmt.Sprintf("%s: %d, want %d", o.id, thresholds[o.id], want))
		}
	}
	if v.seatsExhaustedSeen != rejected || len(dupIDs) > 0 || len(thr) > 0 {
		v.fail("alerts-once", "%d seats.exhausted for %d rejected decisions; event ids twice %s; threshold warnings %s",
			v.seatsExhaustedSeen, rejected, sample(dupIDs), sample(thr))
	}
	return v
}

func countType(es []eventMsg, t events.Type) int {
	n := 0
	for _, e := range es {
		if events.Type(e.typ) == t {
			n++
		}
	}
	return n
}

// sample shows a few items of a list, sorted.
func sample(xs []string) string {
	if len(xs) == 0 {
		return "[]"
	}
	s := append([]string(nil), xs...)
	sort.Strings(s)
	if len(s) > 5 {
		return fmt.Sprintf("[%s …+%d]", strings.Join(s[:5], " "), len(s)-5)
	}
	return "[" + strings.Join(s, " ") + "]"
}

func sampleLogins(ls []*login) string {
	var xs []string
	for _, l := range ls {
		x := personKey(l.org, l.ext) + " " + string(l.outcome)
		if l.detail != "" {
			x += " (" + l.detail + ")"
		}
		xs = append(xs, x)
	}
	return sample(xs)
}
