package notify_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cloudevents/sdk-go/v2/types"
	"github.com/google/uuid"

	"github.com/jitprov/jitprov/events"
	"github.com/jitprov/jitprov/events/webhooksig"
	"github.com/jitprov/jitprov/internal/notify"
	"github.com/jitprov/jitprov/internal/testenv"
)

func settings(mod func(*notify.Settings)) notify.Settings {
	s := notify.DefaultSettings()
	if mod != nil {
		mod(&s)
	}
	return s
}

// Admins (from the store) and the organisation's extra addresses get the
// alert by mail through a real SMTP server: one mail each, with the
// subject, a plain-text and an HTML body, and the link where they act.
func TestMailGoesToAdminsAndAddresses(t *testing.T) {
	h := newHarness(t)
	h.org("acme", settings(func(s *notify.Settings) { s.Emails = []string{"ops@acme.example"} }))
	h.org("globex", settings(nil))
	h.admin("acme", "amy@acme.example", "admin")
	h.admin("acme", "zed@acme.example", "admin")
	h.admin("acme", "member@acme.example", "member") // not an admin
	h.admin("globex", "boss@globex.example", "admin")
	h.start()

	h.publish(events.TypeSeatsThresholdReached, "acme", events.SeatsThresholdReached{OrganizationID: "acme", MaxSeats: 50, SeatsUsed: 45,
		ThresholdPercent: 90, UserID: "5f0c6a2e-8a43-4e5b-9d1e-2b7f3c4d5e6f", LoginID: "login-1"})
	testenv.WaitFor(t, 10*time.Second, "three mails", func() bool { return len(h.mail.Mails()) >= 3 })
	h.settled(t, 30*time.Second) // a mail to anybody else would have arrived by now

	var to []string
	for _, m := range h.mail.Mails() {
		if m.From != "noreply@jitprov.test" {
			t.Errorf("envelope sender %q, want noreply@jitprov.test", m.From)
		}
		to = append(to, m.To...)
		p := testenv.ParseMail(t, m.Raw)
		if want := "Org ACME uses 45 of 50 seats"; p.Subject != want {
			t.Errorf("subject %q, want %q", p.Subject, want)
		}
		if !strings.Contains(p.Text, "90% of its seats: 45 of 50") || !strings.Contains(p.Text, "Manage seats: https://app.test/orgs/acme/seats") {
			t.Errorf("text body lacks the figures or the link:\n%s", p.Text)
		}
		if !strings.Contains(p.HTML, `<a href="https://app.test/orgs/acme/seats"`) {
			t.Errorf("HTML body lacks the link:\n%s", p.HTML)
		}
		if got := p.Header.Get("Auto-Submitted"); got != "auto-generated" {
			t.Errorf("Auto-Submitted = %q", got)
		}
	}
	slices.Sort(to)
	if want := []string{"amy@acme.example", "ops@acme.example", "zed@acme.example"}; !slices.Equal(to, want) {
		t.Errorf("mailed %q, want %q (acme's admins and address, once each, nobody else)", to, want)
	}
}

// A webhook that fails twice gets the alert on the third try, after a
// backoff; every try is signed, and exactly one succeeds. A healthy
// webhook of the same organisation gets it once, at once.
func TestWebhookRetriedWithBackoffUntilDelivered(t *testing.T) {
	h := newHarness(t)
	flaky, healthy := newHook(t, "test-secret-flaky", 2), newHook(t, "test-secret-healthy", 0)
	h.org("acme", settings(func(s *notify.Settings) {
		s.Admins = false
		s.Webhooks = []notify.Webhook{flaky.settings("flaky", notify.FormatCloudEvents), healthy.settings("healthy", notify.FormatCloudEvents)}
	}))
	h.start()
	ev := h.publish(events.TypeProvisioningFailed, "acme", events.ProvisioningFailed{LoginID: "login-1", OrganizationID: "acme",
		ConnectionID: "okta", ExternalID: "00u1", Email: "ada@acme.example", Reason: "failed 8 times", Deliveries: 8, FailedAt: time.Now().UTC()})

	testenv.WaitFor(t, 15*time.Second, "the flaky webhook's delivery", func() bool { return len(flaky.delivered()) == 1 })
	h.settled(t, 30*time.Second) // any further try would have been made by now
	reqs := flaky.requests()
	if len(reqs) != 3 {
		t.Fatalf("flaky webhook got %d requests, want 3 (2 failures, 1 success)", len(reqs))
	}
	for i, r := range reqs {
		if r.SigErr != nil {
			t.Errorf("try %d: signature does not verify: %v", i+1, r.SigErr)
		}
		if r.Header.Get(webhooksig.HeaderDelivery) != reqs[0].Header.Get(webhooksig.HeaderDelivery) {
			t.Errorf("try %d has another delivery id than the first", i+1)
		}
		// The backoff after try n is at least half of BackoffMin·2^(n-1)
		// (it has jitter): 150ms, then 300ms. A slow machine only makes
		// the gaps longer, so these lower bounds hold under any load, and
		// the second shows that the backoff grew.
		if i > 0 {
			if gap, least := r.At.Sub(reqs[i-1].At), h.cfg.BackoffMin<<(i-1)/2; gap < least {
				t.Errorf("try %d came %s after the previous one, want a backoff of at least %s", i+1, gap, least)
			}
		}
	}
	if n := len(healthy.requests()); n != 1 {
		t.Errorf("healthy webhook got %d requests, want 1", n)
	}
	// The body is the alert itself, a structured-mode CloudEvent.
	body := reqs[2]
	if ct := body.Header.Get("Content-Type"); ct != "application/cloudevents+json" {
		t.Errorf("content type %q", ct)
	}
	var got events.Event
	if err := json.Unmarshal(body.Body, &got); err != nil {
		t.Fatalf("body is not a CloudEvent: %v\n%s", err, body.Body)
	}
	if got.ID() != ev.ID() || got.Type() != string(events.TypeProvisioningFailed) {
		t.Errorf("delivered event %s of type %s, want %s of type %s", got.ID(), got.Type(), ev.ID(), events.TypeProvisioningFailed)
	}
}

// A webhook that never succeeds gets MaxAttempts tries, then the job is
// parked in the dead-letter stream, where an operator lists it and, once
// the receiver is fixed, replays it: delivered once.
func TestFailingWebhookIsParkedThenReplayed(t *testing.T) {
	h := newHarness(t)
	broken := newHook(t, "test-secret", 1000)
	h.org("acme", settings(func(s *notify.Settings) {
		s.Admins = false
		s.Webhooks = []notify.Webhook{broken.settings("ops", notify.FormatCloudEvents)}
	}))
	h.start()
	h.publish(events.TypeRoleReviewRequested, "acme", roleReview("acme", "ada@acme.example"))

	ctx := context.Background()
	var parked []notify.Parked
	testenv.WaitFor(t, 20*time.Second, "the job parked", func() bool {
		var err error
		parked, err = notify.ListParked(ctx, h.js, "acme")
		return err == nil && len(parked) == 1
	})
	if n := len(broken.requests()); n != h.cfg.MaxAttempts {
		t.Errorf("webhook got %d tries, want MaxAttempts = %d", n, h.cfg.MaxAttempts)
	}
	p := parked[0]
	if p.Attempts != h.cfg.MaxAttempts || !strings.Contains(p.Error, "503") || p.Job.Recipient.Key() != "webhook:ops" || p.Job.Alert != "role-review.requested" {
		t.Errorf("parked %+v, want the role review to webhook:ops after %d attempts with the 503", p, h.cfg.MaxAttempts)
	}
	if other, _ := notify.ListParked(ctx, h.js, "globex"); len(other) != 0 {
		t.Errorf("listing another organisation shows %d parked jobs", len(other))
	}

	broken.mu.Lock()
	broken.failures = 0
	broken.mu.Unlock()
	if _, err := notify.Replay(ctx, h.js, p.Seq); err != nil {
		t.Fatalf("Replay: %v", err)
	}
	testenv.WaitFor(t, 10*time.Second, "the replayed delivery", func() bool { return len(broken.delivered()) == 1 })
	if left, _ := notify.ListParked(ctx, h.js, ""); len(left) != 0 {
		t.Errorf("%d jobs still parked after the replay", len(left))
	}
	if _, err := notify.Replay(ctx, h.js, p.Seq); err == nil {
		t.Error("replaying the same parked job twice succeeded")
	}
	h.settled(t, 30*time.Second) // a second replayed job would have been delivered by now
	if n := len(broken.delivered()); n != 1 {
		t.Errorf("%d successful deliveries after the replay, want 1", n)
	}
}

// A receiver that refuses the request as such (4xx), or redirects it, is
// not retried: the job is parked at once, its error naming the webhook
// and host but not the URL (which can be a credential).
func TestRefusedDeliveryIsParkedAtOnce(t *testing.T) {
	for _, tc := range []struct {
		status int
		want   string
	}{{401, "401 Unauthorized"}, {302, "a redirect"}} {
		t.Run(fmt.Sprint(tc.status), func(t *testing.T) {
			h := newHarness(t)
			refusing := newHook(t, "test-secret", 0)
			refusing.status = tc.status
			h.org("acme", settings(func(s *notify.Settings) {
				s.Admins = false
				w := refusing.settings("ops", notify.FormatCloudEvents)
				w.URL += "/T000/secret-token"
				s.Webhooks = []notify.Webhook{w}
			}))
			h.start()
			h.publish(events.TypeRoleReviewRequested, "acme", roleReview("acme", "ada@acme.example"))
			var parked []notify.Parked
			testenv.WaitFor(t, 10*time.Second, "the job parked", func() bool {
				var err error
				parked, err = notify.ListParked(context.Background(), h.js, "")
				return err == nil && len(parked) == 1
			})
			if p := parked[0]; p.Attempts != 1 || !strings.Contains(p.Error, tc.want) || !strings.Contains(p.Error, "webhook ops (127.0.0.1") ||
				strings.Contains(p.Error, "secret-token") {
				t.Errorf("parked after %d tries with %q; want 1 try, %q, the host and no URL path", p.Attempts, p.Error, tc.want)
			}
			if n := len(refusing.requests()); n != 1 {
				t.Errorf("webhook got %d requests, want 1", n)
			}
		})
	}
}

// 100 seats.exhausted alerts for one organisation inside its cool-down
// make one message, which counts the 100 people turned away; one more
// inside the cool-down waits for the cool-down to end. The notifier's
// clock is the test's: it stands still while the alerts are planned,
// however long that takes, and moves only when the test moves it.
func TestSeatExhaustionThrottledToOneMessagePerCooldown(t *testing.T) {
	h := newHarness(t)
	clk, flushed := h.fakeClock()
	const delay, cooldown = 3 * time.Second, time.Hour
	ops, marker := newHook(t, "test-secret", 0), newHook(t, "test-secret-marker", 0)
	h.org("acme", settings(func(s *notify.Settings) {
		s.Emails = nil
		s.Webhooks = []notify.Webhook{ops.settings("ops", notify.FormatCloudEvents)}
		s.SeatDelay, s.SeatCooldown = delay, cooldown
	}))
	// Another organisation, whose message marks a flusher pass (below).
	h.org("globex", settings(func(s *notify.Settings) {
		s.Admins = false
		s.Webhooks = []notify.Webhook{marker.settings("marker", notify.FormatCloudEvents)}
		s.SeatDelay, s.SeatCooldown = delay, cooldown
	}))
	h.admin("acme", "amy@acme.example", "admin")
	h.start()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := clk.BlockUntilContext(ctx, 1); err != nil { // the flusher's ticker
		t.Fatalf("the flusher never started its ticker: %v", err)
	}
	start := clk.Now()
	for i := range 100 {
		h.publish(events.TypeSeatsExhausted, "acme", seatsExhausted("acme", i))
	}
	h.planned(t)
	clk.Advance(delay)
	testenv.WaitFor(t, 30*time.Second, "the seat message", func() bool { return len(ops.delivered()) == 1 && len(h.mail.Mails()) == 1 })
	first := flushed.wait(t, "acme", 1)
	if len(first) != 1 || first[0].Now.Before(start.Add(delay)) {
		t.Fatalf("seat messages sent %v; want one, once the gathering delay (%s) had passed since %s",
			first, delay, start.Format(time.TimeOnly))
	}

	// One more turned-away person inside the cool-down, then globex's
	// first: the flusher learns of batches in the order they change, so
	// the pass that sends globex's message, once the gathering delay has
	// passed again, has seen acme's batch too. Had the cool-down not held
	// it, that pass (or one before it) would have sent it.
	late := h.publish(events.TypeSeatsExhausted, "acme", seatsExhausted("acme", 100))
	h.planned(t)
	h.publish(events.TypeSeatsExhausted, "globex", seatsExhausted("globex", 0))
	h.planned(t)
	clk.Advance(delay)
	// The flusher looks on its ticker and when its watcher sees a batch
	// change; a pass that ran before the watcher knew of globex's batch, or
	// found it changing, leaves it to the next tick, which a clock standing
	// still never brings. Move it on a second at a time until the message
	// is sent: at most ten minutes, far inside acme's cool-down.
	testenv.WaitFor(t, 30*time.Second, "globex's seat message", func() bool {
		if len(flushed.sent("globex")) > 0 {
			return true
		}
		if clk.Since(start) < 10*time.Minute {
			clk.Advance(time.Second)
		}
		return false
	})
	if got := flushed.sent("acme"); len(got) != 1 {
		t.Fatalf("%d seat messages for acme %s after the first, inside the cool-down; want none until it ends",
			len(got)-1, clk.Since(first[0].Now))
	}
	// Once the cool-down is over, the next message counts that one person.
	clk.Advance(cooldown)
	testenv.WaitFor(t, 30*time.Second, "the message after the cool-down", func() bool { return len(ops.delivered()) == 2 && len(h.mail.Mails()) == 2 })
	h.settled(t, 30*time.Second)
	if sent := flushed.wait(t, "acme", 2); len(sent) != 2 || sent[1].Now.Before(first[0].Now.Add(cooldown)) {
		t.Errorf("acme's seat messages sent %v; want the second a cool-down (%s) after the first", sent, cooldown)
	}
	if n, m := len(ops.requests()), len(h.mail.Mails()); n != 2 || m != 2 {
		t.Errorf("got %d webhook requests and %d mails, want two of each (one per cool-down)", n, m)
	}

	var got events.Event
	if err := json.Unmarshal(ops.delivered()[0].Body, &got); err != nil {
		t.Fatalf("%v: %s", err, ops.delivered()[0].Body)
	}
	for ext, want := range map[string]int32{"jitprovcount": 100, "jitprovpeople": 100} {
		if n, err := types.ToInteger(got.Extensions()[ext]); err != nil || n != want {
			t.Errorf("%s = %v (%v), want %d", ext, got.Extensions()[ext], err, want)
		}
	}
	// A message about one person is that person's alert as it is.
	if err := json.Unmarshal(ops.delivered()[1].Body, &got); err != nil || got.ID() != late.ID() {
		t.Errorf("second message (%v): %s, want the alert %s", err, ops.delivered()[1].Body, late.ID())
	}
	for i, want := range []string{"Org ACME: 100 people could not sign in — all 50 seats are taken",
		"Org ACME: 1 person could not sign in — all 50 seats are taken"} {
		if p := testenv.ParseMail(t, h.mail.Mails()[i].Raw); p.Subject != want {
			t.Errorf("mail %d: subject %q, want %q", i+1, p.Subject, want)
		}
	}
}

// Role reviews in digest mode: the first after a quiet spell goes at once,
// those that follow within the interval make one digest listing them,
// sent when the interval is over. The notifier's clock is the test's.
func TestRoleReviewDigest(t *testing.T) {
	h := newHarness(t)
	clk, flushed := h.fakeClock()
	const interval = 3 * time.Second
	ops := newHook(t, "test-secret", 0)
	h.org("acme", settings(func(s *notify.Settings) {
		s.Webhooks = []notify.Webhook{ops.settings("ops", notify.FormatCloudEvents)}
		s.RoleReviews, s.DigestInterval = notify.ReviewsDigest, interval
	}))
	h.admin("acme", "amy@acme.example", "admin")
	h.start()
	h.publish(events.TypeRoleReviewRequested, "acme", roleReview("acme", "first@acme.example"))
	// At once: the clock has not moved.
	testenv.WaitFor(t, 30*time.Second, "the first review", func() bool { return len(ops.delivered()) == 1 })
	first := flushed.wait(t, "acme", 1)
	clk.Advance(time.Second) // the next reviews come a second later
	for _, who := range []string{"b@acme.example", "c@acme.example", "d@acme.example"} {
		h.publish(events.TypeRoleReviewRequested, "acme", roleReview("acme", who))
	}
	h.planned(t)
	clk.Advance(interval)
	testenv.WaitFor(t, 30*time.Second, "the digest", func() bool { return len(ops.delivered()) == 2 && len(h.mail.Mails()) == 2 })
	if sent := flushed.wait(t, "acme", 2); len(sent) != 2 || sent[1].Now.Before(first[0].Now.Add(interval)) {
		t.Errorf("messages sent %v; want the digest an interval (%s) after the first", sent, interval)
	}

	digest := ops.delivered()[1]
	if ct := digest.Header.Get("Content-Type"); ct != "application/cloudevents-batch+json" {
		t.Errorf("digest content type %q, want a CloudEvents batch", ct)
	}
	var batch []events.Event
	if err := json.Unmarshal(digest.Body, &batch); err != nil || len(batch) != 3 {
		t.Fatalf("digest body is not a batch of 3 events (%v): %s", err, digest.Body)
	}
	for _, ev := range batch {
		if n, err := types.ToInteger(ev.Extensions()["jitprovcount"]); err != nil || n != 3 {
			t.Errorf("digest element %s: jitprovcount %v (%v), want 3", ev.ID(), ev.Extensions()["jitprovcount"], err)
		}
	}
	var subjects []string
	for _, m := range h.mail.Mails() {
		subjects = append(subjects, testenv.ParseMail(t, m.Raw).Subject)
	}
	want := []string{"Org ACME: first@acme.example asks for role admin", "Org ACME: 3 role reviews waiting"}
	if !slices.Equal(subjects, want) {
		t.Errorf("mail subjects %q, want %q", subjects, want)
	}
	p := testenv.ParseMail(t, h.mail.Mails()[1].Raw)
	for _, who := range []string{"b@acme.example", "c@acme.example", "d@acme.example", "https://app.test/orgs/acme/reviews"} {
		if !strings.Contains(p.Text, who) {
			t.Errorf("digest text lacks %s:\n%s", who, p.Text)
		}
	}
}

// A notifier killed while a receiver hangs, then restarted: the hanging
// receiver gets the alert after the restart, and those that had it are
// not sent it again.
func TestKilledMidDeliveryLosesNoneAndSendsNoneTwice(t *testing.T) {
	h := newHarness(t)
	a, b, slow := newHook(t, "test-secret-a", 0), newHook(t, "test-secret-b", 0), newHook(t, "test-secret-c", 0)
	slow.hang = make(chan struct{})
	h.cfg.WebhookTimeout = 2 * time.Second
	h.org("acme", settings(func(s *notify.Settings) {
		s.Webhooks = []notify.Webhook{a.settings("a", ""), b.settings("b", ""), slow.settings("slow", "")}
	}))
	h.admin("acme", "amy@acme.example", "admin")
	n := h.start()
	h.publish(events.TypeProvisioningFailed, "acme", events.ProvisioningFailed{LoginID: "login-1", OrganizationID: "acme",
		ConnectionID: "okta", ExternalID: "00u1", Reason: "failed 8 times", Deliveries: 8, FailedAt: time.Now().UTC()})
	testenv.WaitFor(t, 10*time.Second, "a, b and the mail delivered", func() bool {
		return len(a.delivered()) == 1 && len(b.delivered()) == 1 && len(h.mail.Mails()) == 1
	})
	testenv.WaitFor(t, 10*time.Second, "the slow receiver reached", func() bool { return slow.arrivals() == 1 })
	n.kill(t)
	// The killed notifier's request ends without an answer; then the
	// receiver recovers.
	testenv.WaitFor(t, 10*time.Second, "the cut request", func() bool { return len(slow.requests()) >= 1 })
	slow.mu.Lock()
	close(slow.hang)
	slow.hang = nil
	slow.mu.Unlock()

	h.start()
	testenv.WaitFor(t, 20*time.Second, "the slow receiver's delivery after the restart", func() bool { return len(slow.delivered()) == 1 })
	// Every job the killed notifier held comes back after the ack wait;
	// once all are finished, anything sent twice would have arrived.
	h.settled(t, h.cfg.Topology.AckWait+30*time.Second)
	if na, nb, nm, ns := len(a.requests()), len(b.requests()), len(h.mail.Mails()), len(slow.delivered()); na != 1 || nb != 1 || nm != 1 || ns != 1 {
		t.Errorf("requests: a %d, b %d, mails %d, slow delivered %d; want exactly 1 each", na, nb, nm, ns)
	}
}

// A hanging receiver holds at most PerOrg deliveries; another
// organisation's alerts go through meanwhile.
func TestHangingReceiverDoesNotBlockOtherOrganisations(t *testing.T) {
	h := newHarness(t)
	stuck, fine := newHook(t, "test-secret-stuck", 0), newHook(t, "test-secret-fine", 0)
	stuck.hang = make(chan struct{})
	// The stuck receiver hangs for longer than the test waits for the
	// other organisation: were its deliveries to hold every worker, the
	// other alert could not get through in time.
	h.cfg.WebhookTimeout = 2 * time.Minute
	h.cfg.Topology.AckWait = 3 * time.Minute
	h.org("slow", settings(func(s *notify.Settings) {
		s.Admins = false
		s.Webhooks = []notify.Webhook{stuck.settings("stuck", "")}
	}))
	h.org("fast", settings(func(s *notify.Settings) {
		s.Admins = false
		s.Webhooks = []notify.Webhook{fine.settings("fine", "")}
	}))
	h.start()
	// Registered after start, so it runs first: the receiver recovers
	// before the notifier stops, which then waits for its deliveries.
	t.Cleanup(func() { close(stuck.hang) })
	for range 20 {
		h.publish(events.TypeRoleReviewRequested, "slow", roleReview("slow", "x@slow.example"))
	}
	// The slow organisation's jobs are queued, and its receiver holds
	// deliveries.
	h.planned(t)
	testenv.WaitFor(t, 30*time.Second, "the stuck receiver reached", func() bool { return stuck.arrivals() >= h.cfg.PerOrg })
	published := time.Now()
	h.publish(events.TypeRoleReviewRequested, "fast", roleReview("fast", "y@fast.example"))
	testenv.WaitFor(t, time.Minute, "the other organisation's alert", func() bool { return len(fine.delivered()) == 1 })
	t.Logf("other organisation delivered %s after publishing, with the slow one's receiver hanging", time.Since(published).Round(time.Millisecond))
	stuck.mu.Lock()
	defer stuck.mu.Unlock()
	if stuck.peak > h.cfg.PerOrg || stuck.peak == 0 {
		t.Errorf("the hanging receiver held %d deliveries at once, want 1 to PerOrg = %d", stuck.peak, h.cfg.PerOrg)
	}
}

// A job delivered, then delivered again by JetStream (its ack lost), is
// not sent twice: the delivery record stops it.
func TestRedeliveredJobIsNotSentTwice(t *testing.T) {
	h := newHarness(t)
	ops := newHook(t, "test-secret", 0)
	h.org("acme", settings(func(s *notify.Settings) {
		s.Admins = false
		s.Webhooks = []notify.Webhook{ops.settings("ops", notify.FormatCloudEvents)}
	}))
	h.start()
	ev := h.publish(events.TypeRoleReviewRequested, "acme", roleReview("acme", "ada@acme.example"))
	testenv.WaitFor(t, 10*time.Second, "the delivery", func() bool { return len(ops.delivered()) == 1 })

	// The same job again, past the stream's duplicate check.
	raw, _ := json.Marshal(ev)
	job := notify.Job{ID: ev.ID(), Org: "acme", Alert: "role-review.requested", Recipient: notify.Recipient{Kind: notify.KindWebhook, Address: "ops"},
		Events: []json.RawMessage{raw}, Count: 1, Since: ev.Time()}
	data, _ := json.Marshal(job)
	if _, err := h.js.PublishMsg(context.Background(), &nats.Msg{Subject: "jit.notify.job.acme", Data: data}, jetstream.WithMsgID("another-id")); err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(t, 10*time.Second, "the job consumed", func() bool {
		s, err := h.js.Stream(context.Background(), notify.StreamJobs)
		if err != nil {
			return false
		}
		info, err := s.Info(context.Background())
		return err == nil && info.State.Msgs == 0
	})
	if n := len(ops.requests()); n != 1 {
		t.Errorf("webhook got %d requests, want 1", n)
	}
}

// The Slack format posts an incoming-webhook body, still signed.
func TestSlackWebhookBody(t *testing.T) {
	h := newHarness(t)
	slack := newHook(t, "test-secret", 0)
	h.org("acme", settings(func(s *notify.Settings) {
		s.Admins = false
		s.Webhooks = []notify.Webhook{slack.settings("slack", notify.FormatSlack)}
	}))
	h.start()
	h.publish(events.TypeIdPCertificateExpiring, "acme", events.IdPCertificateExpiring{OrganizationID: "acme", ConnectionID: "okta",
		Subject: "CN=<acme> & co", FingerprintSHA256: strings.Repeat("ab", 32), NotAfter: time.Now().Add(7 * 24 * time.Hour).UTC(),
		DaysLeft: 7, ThresholdDays: 7})
	testenv.WaitFor(t, 10*time.Second, "the Slack message", func() bool { return len(slack.delivered()) == 1 })
	r := slack.delivered()[0]
	if r.SigErr != nil {
		t.Errorf("signature: %v", r.SigErr)
	}
	var body struct {
		Text   string           `json:"text"`
		Blocks []map[string]any `json:"blocks"`
	}
	if err := json.Unmarshal(r.Body, &body); err != nil {
		t.Fatal(err)
	}
	if body.Text != "Org ACME: the signing certificate of connection okta expires in 7 days" || len(body.Blocks) == 0 {
		t.Errorf("Slack body %s", r.Body)
	}
	if !strings.Contains(string(r.Body), `CN=\u0026lt;acme\u0026gt; \u0026amp; co`) {
		t.Errorf("Slack markup in the certificate subject was not escaped: %s", r.Body)
	}
}

// An alert that breaks the contract is terminated, not retried, and
// sends nothing.
func TestInvalidAlertIsTerminated(t *testing.T) {
	h := newHarness(t)
	ops := newHook(t, "test-secret", 0)
	h.org("acme", settings(func(s *notify.Settings) {
		s.Admins = false
		s.Webhooks = []notify.Webhook{ops.settings("ops", "")}
	}))
	h.start()
	if _, err := h.js.Publish(context.Background(), "jit.alert.seats.exhausted.acme", []byte("not an event")); err != nil {
		t.Fatal(err)
	}
	h.publish(events.TypeRoleReviewRequested, "acme", roleReview("acme", "ada@acme.example"))
	testenv.WaitFor(t, 10*time.Second, "the valid alert", func() bool { return len(ops.delivered()) == 1 })
	cons, err := h.js.Consumer(context.Background(), "ALERTS", notify.ConsumerPlanner)
	if err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(t, 5*time.Second, "nothing pending", func() bool {
		info, err := cons.Info(context.Background())
		return err == nil && info.NumAckPending == 0 && info.NumPending == 0
	})
	if n := len(ops.requests()); n != 1 {
		t.Errorf("webhook got %d requests, want 1", n)
	}
}

// Thousands of one organisation's jobs failing and waiting out their
// retries (all of them pending in JetStream) do not stop another
// organisation's alert.
func TestRetryBacklogDoesNotBlockOtherOrganisations(t *testing.T) {
	h := newHarness(t)
	failing, fine := newHook(t, "test-secret-failing", 1<<30), newHook(t, "test-secret-fine", 0)
	// Failed and deferred jobs stay pending for 5 minutes at least: far
	// longer than the test waits for the other organisation's alert.
	h.cfg.BackoffMin, h.cfg.BackoffMax = 10*time.Minute, time.Hour
	h.org("slow", settings(func(s *notify.Settings) {
		s.Admins = false
		s.Webhooks = []notify.Webhook{failing.settings("ops", "")}
	}))
	h.org("fast", settings(func(s *notify.Settings) {
		s.Admins = false
		s.Webhooks = []notify.Webhook{fine.settings("ops", "")}
	}))
	h.start()
	ctx := context.Background()
	const backlog = 5000 // above the 4096 pending a default consumer allows
	raw, _ := json.Marshal(map[string]any{"specversion": "1.0", "id": "x", "source": "/t", "type": "io.jitprov.role-review.requested.v1"})
	for i := range backlog {
		job := notify.Job{ID: fmt.Sprintf("bulk-%d", i), Org: "slow", Alert: "role-review.requested", Count: 1,
			Recipient: notify.Recipient{Kind: notify.KindWebhook, Address: "ops"}, Events: []json.RawMessage{raw}}
		data, _ := json.Marshal(job)
		if _, err := h.js.PublishAsync("jit.notify.job.slow", data, jetstream.WithMsgID(job.MsgID())); err != nil {
			t.Fatal(err)
		}
		if i%500 == 499 {
			<-h.js.PublishAsyncComplete()
		}
	}
	select {
	case <-h.js.PublishAsyncComplete():
	case <-time.After(60 * time.Second):
		t.Fatal("backlog not published")
	}
	testenv.WaitFor(t, 4*time.Minute, "the backlog handed out", func() bool {
		cons, err := h.js.Consumer(ctx, notify.StreamJobs, notify.ConsumerSender)
		if err != nil {
			return false
		}
		info, err := cons.Info(ctx)
		return err == nil && info.NumAckPending >= 4096
	})
	published := time.Now()
	h.publish(events.TypeRoleReviewRequested, "fast", roleReview("fast", "y@fast.example"))
	// Far less than the backlog waits (BackoffMin/2 at least): the alert
	// does not wait for the backlog to make room.
	testenv.WaitFor(t, time.Minute, "the other organisation's alert", func() bool { return len(fine.delivered()) == 1 })
	t.Logf("other organisation delivered %s after publishing, behind %d pending retries", time.Since(published).Round(time.Millisecond), backlog)
}

// role-review.decided is published on ALERTS but is not an alert: the
// planner acks it (neither retried nor terminated) and nobody is told —
// not the admins by mail, not a webhook that takes every alert — while
// the alert beside it is delivered as usual.
func TestReviewDecidedIsAckedWithoutMessage(t *testing.T) {
	if slices.Contains(events.AlertTypes(), events.TypeRoleReviewDecided) {
		t.Fatal("role-review.decided is in events.AlertTypes(): the notifier would alert on it")
	}
	h := newHarness(t)
	ops := newHook(t, "test-secret", 0)
	h.org("acme", settings(func(s *notify.Settings) {
		s.Webhooks = []notify.Webhook{ops.settings("ops", "")} // no alerts list: every alert
	}))
	h.admin("acme", "amy@acme.example", "admin")
	// An organisation nobody hears from: a decided review there is not
	// "dropped: nobody to tell" either.
	h.org("initech", settings(func(s *notify.Settings) { s.Admins = false }))
	terminated, err := h.js.Conn().SubscribeSync("$JS.EVENT.ADVISORY.CONSUMER.MSG_TERMINATED.ALERTS." + notify.ConsumerPlanner)
	if err != nil {
		t.Fatal(err)
	}
	h.start()

	decided := func(org string) events.RoleReviewDecided {
		return events.RoleReviewDecided{ReviewID: uuid.NewString(), OrganizationID: org, UserID: uuid.NewString(),
			RequestedRole: "admin", Decision: events.ReviewApproved,
			Actor: events.Actor{Type: events.ActorUser, ID: uuid.NewString(), Name: "amy@acme.example"}, DecidedAt: time.Now().UTC()}
	}
	h.publish(events.TypeRoleReviewDecided, "acme", decided("acme"))
	h.publish(events.TypeRoleReviewDecided, "initech", decided("initech"))
	h.publish(events.TypeRoleReviewRequested, "acme", roleReview("acme", "ada@acme.example"))
	testenv.WaitFor(t, 10*time.Second, "the review request by webhook and mail", func() bool {
		return len(ops.delivered()) == 1 && len(h.mail.Mails()) == 1
	})
	h.settled(t, 30*time.Second)

	if n := len(ops.requests()); n != 1 {
		t.Errorf("webhook got %d requests, want 1 (the review request only)", n)
	}
	for _, r := range ops.requests() {
		if typ := eventType(t, r.Body); typ != string(events.TypeRoleReviewRequested) {
			t.Errorf("webhook got a %s", typ)
		}
	}
	if n := len(h.mail.Mails()); n != 1 {
		t.Errorf("%d mails, want 1 (the review request only)", n)
	}
	if msg, err := terminated.NextMsg(500 * time.Millisecond); err == nil {
		t.Errorf("the planner terminated an alert: %s", msg.Data)
	}
	info, err := h.js.Stream(context.Background(), notify.StreamJobs)
	if err != nil {
		t.Fatal(err)
	}
	if n := info.CachedInfo().State.Msgs; n != 0 {
		t.Errorf("%s holds %d jobs after everything settled", notify.StreamJobs, n)
	}
	dead, err := h.js.Stream(context.Background(), notify.StreamDead)
	if err != nil {
		t.Fatal(err)
	}
	if n := dead.CachedInfo().State.Msgs; n != 0 {
		t.Errorf("%s holds %d parked jobs, want none", notify.StreamDead, n)
	}
}

// eventType is the "type" of a structured-mode CloudEvent.
func eventType(t *testing.T, body []byte) string {
	t.Helper()
	var ev struct {
		Type string `json:"type"`
	}
	if err := json.Unmarshal(body, &ev); err != nil {
		t.Fatalf("webhook body is not a CloudEvent: %v", err)
	}
	return ev.Type
}

// A held sign-up reaches the admins by mail and by a Slack webhook at
// once, saying who waits, why, and linking to where the admin approves or
// denies that very person.
func TestSignupHeldTellsAdminsWhereToAct(t *testing.T) {
	h := newHarness(t)
	slack := newHook(t, "test-secret", 0)
	h.org("acme", settings(func(s *notify.Settings) {
		s.Webhooks = []notify.Webhook{slack.settings("slack", notify.FormatSlack)}
	}))
	h.admin("acme", "amy@acme.example", "admin")
	h.start()
	const userID = "5f0c6a2e-8a43-4e5b-9d1e-2b7f3c4d5e6f"
	h.publish(events.TypeSignupHeld, "acme", events.SignupHeld{OrganizationID: "acme", UserID: userID, Email: "ada@acme.example",
		DisplayName: "Ada Lovelace", ConnectionID: "okta", ExternalID: "00u1", Reason: events.ReasonSeatsExhausted,
		MaxSeats: 10, SeatsUsed: 10, LoginID: "login-1"})
	testenv.WaitFor(t, 10*time.Second, "the mail and the Slack message", func() bool {
		return len(h.mail.Mails()) == 1 && len(slack.delivered()) == 1
	})
	link := "https://app.test/orgs/acme/users/" + userID
	p := testenv.ParseMail(t, h.mail.Mails()[0].Raw)
	if want := "Org ACME: Ada Lovelace (ada@acme.example) waits for your approval"; p.Subject != want {
		t.Errorf("subject %q, want %q", p.Subject, want)
	}
	for _, want := range []string{"all of its 10 seats", "take no seat", "Approve or deny: " + link} {
		if !strings.Contains(p.Text, want) {
			t.Errorf("text body lacks %q:\n%s", want, p.Text)
		}
	}
	if !strings.Contains(p.HTML, `<a href="`+link+`"`) {
		t.Errorf("HTML body lacks the link:\n%s", p.HTML)
	}
	if body := string(slack.delivered()[0].Body); !strings.Contains(body, link) || !strings.Contains(body, "Approve or deny") {
		t.Errorf("Slack body lacks the button to %s: %s", link, body)
	}
}

// The inactivity sweep's alert reaches the admins as one message per
// organisation and sweep, listing the people suspended and saying how
// they come back.
func TestInactiveUsersSuspendedListsThePeople(t *testing.T) {
	h := newHarness(t)
	h.org("acme", settings(func(*notify.Settings) {}))
	h.admin("acme", "amy@acme.example", "admin")
	h.start()
	at := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	h.publish(events.TypeInactiveUsersSuspended, "acme", events.InactiveUsersSuspended{OrganizationID: "acme",
		InactiveAfterSeconds: 90 * 86400, Count: 2, MaxSeats: 10, SeatsUsed: 3, SweptAt: at,
		Users: []events.InactiveUserSummary{
			{UserID: "5f0c6a2e-8a43-4e5b-9d1e-2b7f3c4d5e6f", Email: "ada@acme.example", DisplayName: "Ada Lovelace", LastSeenAt: at.AddDate(0, -4, 0)},
			{UserID: "5f0c6a2e-8a43-4e5b-9d1e-2b7f3c4d5e70", Email: "bob@acme.example", LastSeenAt: at.AddDate(0, -5, 0)},
		}})
	testenv.WaitFor(t, 10*time.Second, "the mail", func() bool { return len(h.mail.Mails()) == 1 })
	p := testenv.ParseMail(t, h.mail.Mails()[0].Raw)
	if want := "Org ACME: 2 people suspended after 90 days without signing in"; p.Subject != want {
		t.Errorf("subject %q, want %q", p.Subject, want)
	}
	for _, want := range []string{"3 of 10 are taken now", "Ada Lovelace (ada@acme.example), last seen 2026-08-01 09:00 UTC",
		"bob@acme.example, last seen 2026-07-01 09:00 UTC", "signs in again is reactivated", "Manage seats: https://app.test/orgs/acme/seats"} {
		if !strings.Contains(p.Text, want) {
			t.Errorf("text body lacks %q:\n%s", want, p.Text)
		}
	}
}
