package integration

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jonboulle/clockwork"
	"github.com/nats-io/nats.go/jetstream"
	noopmetric "go.opentelemetry.io/otel/metric/noop"
	nooptrace "go.opentelemetry.io/otel/trace/noop"

	"github.com/jitprov/jitprov/events"
	"github.com/jitprov/jitprov/internal/bus"
	"github.com/jitprov/jitprov/internal/notify"
	"github.com/jitprov/jitprov/internal/store"
	"github.com/jitprov/jitprov/internal/testenv"
)

// From first logins to the admins' inbox: an organisation with 3 seats
// and ten people signing in at once. The admin is mailed once that seats
// run out (the seat reaching 66%, rounded up: the second) and once, after the gathering delay,
// that 7 people were turned away. The notifier's clock is the test's: the
// gathering delay ends when every turned-away login has reached it,
// however long the logins took.
func TestSeatAlertsReachTheAdmins(t *testing.T) {
	e := newEnv(t)
	o := org("acme", 3)
	o.SeatWarningPercent = 66
	e.apply(o)
	err := e.store.InTx(context.Background(), func(ctx context.Context, tx store.Tx) error {
		_, err := tx.CreateUser(ctx, store.User{ID: uuid.NewString(), OrganizationID: "acme", Email: "boss@acme.example",
			Role: "admin", Status: store.StatusActive, CreatedBy: store.CreatedByAdmin})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	e.startProvisioner(8)

	sink := testenv.SMTP(t)
	clk := clockwork.NewFakeClock()
	settings := notify.DefaultSettings()
	settings.SeatDelay = 2 * time.Second
	dir, err := notify.NewDirectory([]store.Organization{o}, map[string]notify.Settings{"acme": settings}, nil)
	if err != nil {
		t.Fatal(err)
	}
	nc := testenv.Connect(t, e.ns) // closed after the notifier stops
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- notify.Run(ctx, notify.Config{
			SMTP:  &notify.SMTPConfig{Addr: sink.Addr, TLS: notify.SMTPPlain, From: "jitprov <noreply@jitprov.test>"},
			Links: notify.Links{Seats: "https://app.test/orgs/{org}/seats"}, FlushInterval: 100 * time.Millisecond, Clock: clk,
		}, notify.Deps{NATS: nc, Admins: e.store, Directory: dir, Logger: testenv.Logger(t),
			Tracer: nooptrace.NewTracerProvider(), Meter: noopmetric.NewMeterProvider()})
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("notifier: %v", err)
		}
	})

	c := e.client()
	var wg sync.WaitGroup
	outcomes := make([]events.Outcome, 10)
	for i := range 10 {
		wg.Go(func() {
			lctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			res, err := c.Provision(lctx, identity("acme", "person-"+string(rune('a'+i))))
			if err != nil {
				t.Errorf("login %d: %v", i, err)
				return
			}
			outcomes[i] = res.Outcome
		})
	}
	wg.Wait()
	created := 0
	for _, o := range outcomes {
		if o == events.OutcomeCreated {
			created++
		}
	}
	mustf(t, created == 3, "%d created, want 3", created)

	// The seven alerts are in ALERTS and planned: then the gathering
	// delay ends.
	mustf(t, len(e.collect(bus.StreamAlerts, "jit.alert.seats.exhausted.acme", 7, 20*time.Second)) == 7, "want 7 seats.exhausted alerts")
	testenv.WaitFor(t, 30*time.Second, "the alert planner idle", func() bool { return consumerIdle(e.js, bus.StreamAlerts, notify.ConsumerPlanner) })
	wctx, wcancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer wcancel()
	if err := clk.BlockUntilContext(wctx, 1); err != nil { // the flusher's ticker
		t.Fatalf("the notifier's flusher never started: %v", err)
	}
	clk.Advance(settings.SeatDelay)
	testenv.WaitFor(t, 30*time.Second, "two mails delivered", func() bool { return len(sink.Mails()) >= 2 })
	// Every job finished: anything more would have been mailed by now.
	testenv.WaitFor(t, 30*time.Second, "the planner and the sender idle", func() bool {
		return consumerIdle(e.js, bus.StreamAlerts, notify.ConsumerPlanner) && consumerIdle(e.js, notify.StreamJobs, notify.ConsumerSender)
	})
	var subjects []string
	for _, m := range sink.Mails() {
		mustf(t, slices.Equal(m.To, []string{"boss@acme.example"}), "mail to %v, want the admin", m.To)
		p := testenv.ParseMail(t, m.Raw)
		subjects = append(subjects, p.Subject)
		mustf(t, strings.Contains(p.Text, "https://app.test/orgs/acme/seats"), "mail lacks the seats link:\n%s", p.Text)
	}
	slices.Sort(subjects)
	want := []string{"Org acme uses 2 of 3 seats", "Org acme: 7 people could not sign in — all 3 seats are taken"}
	if !slices.Equal(subjects, want) {
		t.Errorf("mails %q, want %q", subjects, want)
	}
}

// consumerIdle reports whether consumer of stream has handed out and
// finished every message stored so far.
func consumerIdle(js jetstream.JetStream, stream, consumer string) bool {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := js.Consumer(ctx, stream, consumer)
	if err != nil {
		return false
	}
	info, err := c.Info(ctx)
	return err == nil && info.NumPending == 0 && info.NumAckPending == 0
}
