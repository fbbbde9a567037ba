package notify_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jonboulle/clockwork"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	noopmetric "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/trace"
	nooptrace "go.opentelemetry.io/otel/trace/noop"

	"github.com/jitprov/jitprov/events"
	"github.com/jitprov/jitprov/events/webhooksig"
	"github.com/jitprov/jitprov/internal/bus"
	"github.com/jitprov/jitprov/internal/notify"
	"github.com/jitprov/jitprov/internal/store"
	"github.com/jitprov/jitprov/internal/store/postgres"
	"github.com/jitprov/jitprov/internal/testenv"
)

// harness is one test's notifier world: a real Postgres (the admins), an
// embedded NATS server, a real SMTP server in the test process, and
// webhook receivers.
type harness struct {
	t     testing.TB
	store *postgres.Store
	ns    *server.Server
	js    jetstream.JetStream
	mail  *testenv.MailSink
	cfg   notify.Config
	orgs  []store.Organization
	set   map[string]notify.Settings
	env   map[string]string
	// tracer, when set, records the notifier's spans.
	tracer trace.TracerProvider
}

func newHarness(t testing.TB) *harness {
	t.Helper()
	s, _ := testenv.Store(t)
	ns := testenv.NATS(t)
	js, err := jetstream.New(testenv.Connect(t, ns))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := bus.Ensure(ctx, js, bus.DefaultTopology()); err != nil {
		t.Fatal(err)
	}
	sink := testenv.SMTP(t)
	topo := notify.DefaultTopology()
	topo.AckWait = 4 * time.Second // quick redelivery after a kill
	return &harness{
		t: t, store: s, ns: ns, js: js, mail: sink, set: map[string]notify.Settings{}, env: map[string]string{},
		cfg: notify.Config{
			Topology: topo, Workers: 8, PerOrg: 2, MaxAttempts: 4,
			BackoffMin: 300 * time.Millisecond, BackoffMax: 2 * time.Second,
			WebhookTimeout: time.Second, MailTimeout: 2 * time.Second,
			FlushInterval: 100 * time.Millisecond, DrainTimeout: 3 * time.Second,
			SMTP: &notify.SMTPConfig{Addr: sink.Addr, TLS: notify.SMTPPlain, From: "jitprov <noreply@jitprov.test>"},
			Links: notify.Links{Seats: "https://app.test/orgs/{org}/seats", RoleReviews: "https://app.test/orgs/{org}/reviews",
				Signups: "https://app.test/orgs/{org}/users/{user}"},
		},
	}
}

// org declares an organisation with its notification settings.
func (h *harness) org(id string, s notify.Settings) {
	h.t.Helper()
	o := store.Organization{ID: id, Name: "Org " + strings.ToUpper(id), MaxSeats: 50,
		Roles: []string{"member", "admin"}, DefaultRole: "member", JITRoleCeiling: "member",
		UpdatePolicy: store.PreferIdP, LinkByEmail: store.LinkNever}
	if err := h.store.ApplyOrganizations(context.Background(), []store.Organization{o}, nil); err != nil {
		h.t.Fatal(err)
	}
	h.orgs = append(h.orgs, o)
	h.set[id] = s
}

// admin creates an active user with the organisation's admin role.
func (h *harness) admin(org, email, role string) {
	h.t.Helper()
	err := h.store.InTx(context.Background(), func(ctx context.Context, tx store.Tx) error {
		_, err := tx.CreateUser(ctx, store.User{ID: uuid.NewString(), OrganizationID: org, Email: email,
			Role: role, Status: store.StatusActive, CreatedBy: store.CreatedByAdmin})
		return err
	})
	if err != nil {
		h.t.Fatal(err)
	}
}

// notifier is one running notifier process.
type notifier struct {
	cancel context.CancelFunc
	nc     *nats.Conn
	done   chan error
}

func (h *harness) start() *notifier {
	h.t.Helper()
	dir, err := notify.NewDirectory(h.orgs, h.set, func(k string) string { return h.env[k] })
	if err != nil {
		h.t.Fatal(err)
	}
	nc, err := nats.Connect(h.ns.ClientURL())
	if err != nil {
		h.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	n := &notifier{cancel: cancel, nc: nc, done: make(chan error, 1)}
	tp := h.tracer
	if tp == nil {
		tp = nooptrace.NewTracerProvider()
	}
	go func() {
		n.done <- notify.Run(ctx, h.cfg, notify.Deps{NATS: nc, Admins: h.store, Directory: dir,
			Logger: testenv.Logger(h.t), Tracer: tp, Meter: noopmetric.NewMeterProvider()})
	}()
	h.t.Cleanup(func() { n.stop(h.t) })
	return n
}

// stop shuts the notifier down gracefully.
func (n *notifier) stop(t testing.TB) {
	n.cancel()
	select {
	case err := <-n.done:
		if err != nil {
			t.Errorf("notifier stopped with: %v", err)
		}
		n.done <- nil
	case <-time.After(15 * time.Second):
		t.Errorf("notifier did not stop within 15s")
	}
	n.nc.Close()
}

// kill cuts the notifier off at once, as a crash would: its connection
// closes with deliveries in hand, unacked.
func (n *notifier) kill(t testing.TB) {
	n.nc.Close()
	n.cancel()
	select {
	case <-n.done: // a crash reports what it likes
		n.done <- nil
	case <-time.After(15 * time.Second):
		t.Errorf("killed notifier did not return within 15s")
	}
}

// publish emits an alert as its producer would.
func (h *harness) publish(t events.Type, org string, data any) events.Event {
	h.t.Helper()
	ev, err := events.New(t, "/jitprov/test", org, data)
	if err != nil {
		h.t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := bus.Publish(ctx, h.js, ev, org); err != nil {
		h.t.Fatal(err)
	}
	return ev
}

func seatsExhausted(org string, i int) events.SeatsExhausted {
	return events.SeatsExhausted{OrganizationID: org, MaxSeats: 50, SeatsUsed: 50, ConnectionID: "okta",
		ExternalID: "ext-" + uuid.NewString()[:8], Email: "person" + string(rune('a'+i%26)) + "@" + org + ".example", LoginID: uuid.NewString()}
}

func roleReview(org, email string) events.RoleReviewRequested {
	return events.RoleReviewRequested{ReviewID: uuid.NewString(), OrganizationID: org, UserID: uuid.NewString(),
		Email: email, CurrentRole: "member", RequestedRole: "admin", LoginID: uuid.NewString()}
}

// idle reports whether consumer of stream has nothing left to hand out
// and nothing handed out that is not acked or terminated: every message
// stored so far is finished with.
func (h *harness) idle(stream, consumer string) bool {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	cons, err := h.js.Consumer(ctx, stream, consumer)
	if err != nil {
		return false
	}
	info, err := cons.Info(ctx)
	return err == nil && info.NumPending == 0 && info.NumAckPending == 0
}

// planned waits until the notifier has planned every alert published so
// far: their jobs are queued or their batches hold them.
func (h *harness) planned(t testing.TB) {
	t.Helper()
	testenv.WaitFor(t, 30*time.Second, "every alert planned", func() bool { return h.idle(bus.StreamAlerts, notify.ConsumerPlanner) })
}

// settled waits until every alert published so far is planned and every
// job queued is finished (delivered, parked or dropped as a duplicate),
// including jobs redelivered after an ack wait. Whatever those alerts and
// jobs were going to send has arrived once it returns; batches still
// waiting for their time are not sent.
func (h *harness) settled(t testing.TB, within time.Duration) {
	t.Helper()
	testenv.WaitFor(t, within, "every alert planned and every job finished", func() bool {
		// In this order: an alert is acked only after its jobs are
		// queued, so the jobs of every planned alert are counted next.
		return h.idle(bus.StreamAlerts, notify.ConsumerPlanner) && h.idle(notify.StreamJobs, notify.ConsumerSender)
	})
}

// fakeClock makes the notifiers started next tell batch time by a clock
// the test moves, and records the flusher's passes.
func (h *harness) fakeClock() (*clockwork.FakeClock, *flushes) {
	clk := clockwork.NewFakeClock()
	h.cfg.Clock = clk
	f := &flushes{}
	notify.OnFlushPass(&h.cfg, f.add)
	return clk, f
}

// flushes records the flusher's passes: when each looked (on the fake
// clock) and the batch messages it sent.
type flushes struct {
	mu     sync.Mutex
	passes []flushPass
}

type flushPass struct {
	Now  time.Time
	Sent []notify.Job
}

func (f *flushes) add(now time.Time, sent []notify.Job) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.passes = append(f.passes, flushPass{Now: now, Sent: sent})
}

// sent are the batch messages sent for org, each with the time of the
// pass that sent it.
func (f *flushes) sent(org string) []flushPass {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []flushPass
	for _, p := range f.passes {
		for _, j := range p.Sent {
			if j.Org == org {
				out = append(out, flushPass{Now: p.Now, Sent: []notify.Job{j}})
			}
		}
	}
	return out
}

// wait waits until the passes that sent n messages for org have
// finished (a message can arrive before the pass that sent it ends), and
// returns those messages.
func (f *flushes) wait(t testing.TB, org string, n int) []flushPass {
	t.Helper()
	var sent []flushPass
	testenv.WaitFor(t, 30*time.Second, fmt.Sprintf("%d batch messages for %s sent", n, org), func() bool {
		sent = f.sent(org)
		return len(sent) >= n
	})
	return sent
}

// String shows when a message was sent and what it counts.
func (p flushPass) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "at %s:", p.Now.Format(time.TimeOnly))
	for _, j := range p.Sent {
		fmt.Fprintf(&b, " [%s %s, %d alerts about %d people]", j.Org, j.Alert, j.Count, j.People)
	}
	return b.String()
}

// --- webhooks ---

// hook is a webhook receiver that fails its first failures requests
// with 503, or hangs while hang is set, and records every request.
type hook struct {
	t        testing.TB
	srv      *httptest.Server
	secret   []byte
	mu       sync.Mutex
	reqs     []hookReq
	failures int
	status   int // answer after the failures; default 204
	hang     chan struct{}
	arrived  int // requests received, answered or not
	inflight int
	peak     int // most requests in progress at once
}

type hookReq struct {
	At       time.Time
	Body     []byte
	Header   http.Header
	Answered int
	SigErr   error
}

func newHook(t testing.TB, secret string, failures int) *hook {
	h := &hook{t: t, secret: []byte(secret), failures: failures, status: http.StatusNoContent}
	h.srv = httptest.NewServer(http.HandlerFunc(h.serve))
	t.Cleanup(h.srv.Close)
	return h
}

func (h *hook) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	h.mu.Lock()
	hang := h.hang
	h.arrived++
	h.inflight++
	h.peak = max(h.peak, h.inflight)
	h.mu.Unlock()
	defer func() {
		h.mu.Lock()
		h.inflight--
		h.mu.Unlock()
	}()
	if hang != nil {
		select {
		case <-hang:
		case <-r.Context().Done():
			h.record(r, body, 0) // the sender gave up (timeout or crash)
			return
		}
	}
	h.mu.Lock()
	status := h.status
	if h.failures > 0 {
		h.failures--
		status = http.StatusServiceUnavailable
	}
	h.mu.Unlock()
	h.record(r, body, status)
	w.WriteHeader(status)
}

func (h *hook) record(r *http.Request, body []byte, status int) {
	err := webhooksig.Verify(h.secret, r.Header.Get(webhooksig.HeaderDelivery), body, r.Header.Get(webhooksig.HeaderSignature), time.Now(), 0)
	h.mu.Lock()
	defer h.mu.Unlock()
	h.reqs = append(h.reqs, hookReq{At: time.Now(), Body: body, Header: r.Header.Clone(), Answered: status, SigErr: err})
}

func (h *hook) arrivals() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.arrived
}

func (h *hook) requests() []hookReq {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]hookReq(nil), h.reqs...)
}

// delivered are the requests answered 2xx.
func (h *hook) delivered() []hookReq {
	var out []hookReq
	for _, r := range h.requests() {
		if r.Answered >= 200 && r.Answered < 300 {
			out = append(out, r)
		}
	}
	return out
}

func (h *hook) settings(id, format string) notify.Webhook {
	return notify.Webhook{ID: id, URL: h.srv.URL + "/hook", Format: format, Secret: string(h.secret)}
}
