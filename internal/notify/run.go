package notify

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/jonboulle/clockwork"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
	"golang.org/x/sync/errgroup"

	"github.com/jitprov/jitprov/events"
	"github.com/jitprov/jitprov/internal/bus"
	"github.com/jitprov/jitprov/internal/health"
	"github.com/jitprov/jitprov/internal/startup"
	"github.com/jitprov/jitprov/internal/telemetry"
)

// Config is what Run needs to know. Zero durations and counts take the
// defaults named.
type Config struct {
	Topology Topology
	// Workers deliver jobs at once (default 16); PerOrg bounds those for
	// one organisation (default 4), so that a hanging receiver never holds
	// the others' alerts.
	Workers int
	PerOrg  int
	// MaxAttempts tries of one job before it is parked (default 8), with
	// a backoff from BackoffMin (default 5s) doubling up to BackoffMax
	// (default 10m).
	MaxAttempts int
	BackoffMin  time.Duration
	BackoffMax  time.Duration
	// WebhookTimeout (default 10s) and MailTimeout (default 30s) bound one
	// delivery.
	WebhookTimeout time.Duration
	MailTimeout    time.Duration
	// SMTP is the mail server; nil parks every email job with a clear
	// error.
	SMTP  *SMTPConfig
	Links Links
	// FlushInterval is how often due batches are looked for (default 1s).
	FlushInterval time.Duration
	// DrainTimeout bounds shutdown (default 25s).
	DrainTimeout time.Duration
	// Clock tells the time of batches (the seat delay and cool-down, the
	// digest interval) and ticks the flusher; nil is the real clock. Tests
	// pass a fake clock and move it through these windows themselves.
	Clock clockwork.Clock
	// HealthAddr serves /healthz, /readyz and (with Deps.Metrics)
	// /metrics; "" serves nothing.
	HealthAddr string

	// flushed, when set (by tests, see export_test.go), is called after
	// each pass of the flusher with the time it looked at and the batch
	// messages it sent.
	flushed func(now time.Time, sent []Job)
}

// Deps are the notifier's connections, opened and closed by the caller.
type Deps struct {
	NATS      *nats.Conn
	Admins    Admins
	Directory *Directory
	Logger    *slog.Logger
	Tracer    trace.TracerProvider
	Meter     metric.MeterProvider
	// Metrics serves Meter's instruments to Prometheus at /metrics on the
	// health listener (telemetry.Providers.Metrics); nil serves none.
	Metrics    http.Handler
	HTTPClient *http.Client // default: a client with WebhookTimeout
}

func (c *Config) defaults() {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	dur := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&c.Workers, 16)
	def(&c.PerOrg, 4)
	def(&c.MaxAttempts, 8)
	dur(&c.BackoffMin, 5*time.Second)
	dur(&c.BackoffMax, 10*time.Minute)
	dur(&c.WebhookTimeout, 10*time.Second)
	dur(&c.MailTimeout, 30*time.Second)
	dur(&c.FlushInterval, time.Second)
	dur(&c.DrainTimeout, 25*time.Second)
	if c.Topology.Replicas == 0 {
		c.Topology = DefaultTopology()
	}
	if c.Clock == nil {
		c.Clock = clockwork.NewRealClock()
	}
}

// stoppedOr is err, unless ctx ended while Run was starting: stopped then
// (Ctrl-C right after jitprov dev's banner, a pod deleted as it starts),
// the notifier stops cleanly, as it does once running.
func stoppedOr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return nil
	}
	return err
}

// Run waits for NATS JetStream and the provisioner's ALERTS stream,
// declares the notifier's streams, then plans alerts, flushes batches and
// delivers jobs until ctx is done, and drains before it returns. The
// health endpoints answer from the start: alive, and not ready (saying
// what it waits for) until the start is complete.
func Run(ctx context.Context, cfg Config, deps Deps) error {
	cfg.defaults()
	if cfg.Topology.AckWait <= cfg.WebhookTimeout || cfg.Topology.AckWait <= cfg.MailTimeout {
		return fmt.Errorf("notify: the job ack wait (%s) must exceed the webhook and mail timeouts (%s, %s), or slow deliveries would be sent twice",
			cfg.Topology.AckWait, cfg.WebhookTimeout, cfg.MailTimeout)
	}
	var status startup.Status
	g, gctx := errgroup.WithContext(ctx)
	if cfg.HealthAddr != "" {
		g.Go(func() error {
			return health.Serve(gctx, cfg.HealthAddr, health.WithMetrics(health.Handler(func(ctx context.Context) error {
				if err := status.Ready(ctx); err != nil {
					return err
				}
				if !deps.NATS.IsConnected() {
					return fmt.Errorf("nats: %s", deps.NATS.Status())
				}
				return nil
			}), deps.Metrics))
		})
	}
	g.Go(func() error { return run(gctx, cfg, deps, &status) })
	return g.Wait()
}

// run is Run once the health endpoints are up: the start, then the work.
func run(ctx context.Context, cfg Config, deps Deps, status *startup.Status) error {
	log := deps.Logger
	js, err := jetstream.New(deps.NATS)
	if err != nil {
		return fmt.Errorf("notify: jetstream: %w", err)
	}
	var batchKV, recordKV jetstream.KeyValue
	var planCons, sendCons jetstream.Consumer
	err = startup.Wait(ctx, log, status, "NATS JetStream (the notifier's streams and the provisioner's ALERTS)", func(ctx context.Context) error {
		var err error
		if batchKV, recordKV, err = Ensure(ctx, js, cfg.Topology, log); errors.Is(err, bus.ErrServerTooOld) {
			return startup.Permanent(err)
		} else if err != nil {
			return err
		}
		if planCons, err = js.Consumer(ctx, bus.StreamAlerts, ConsumerPlanner); err != nil {
			return fmt.Errorf("notify: consumer %s: %w", ConsumerPlanner, err)
		}
		if sendCons, err = js.Consumer(ctx, StreamJobs, ConsumerSender); err != nil {
			return fmt.Errorf("notify: consumer %s: %w", ConsumerSender, err)
		}
		return nil
	})
	if err != nil {
		return stoppedOr(ctx, err)
	}
	var mailer *Mailer
	if cfg.SMTP != nil {
		if mailer, err = NewMailer(*cfg.SMTP); err != nil {
			return err
		}
	} else {
		log.WarnContext(ctx, "no SMTP server configured: email recipients (admins, notification emails) will be parked, not mailed")
	}
	client := deps.HTTPClient
	if client == nil {
		client = NewHTTPClient(cfg.WebhookTimeout)
	}
	// Each webhook request is a client span of the delivery and carries
	// its traceparent; the client's own transport (timeouts, TLS, https-only
	// redirects) does the rest, unchanged.
	traced := *client
	traced.Transport = telemetry.HTTPTransport(client.Transport, deps.Tracer, "webhook", telemetry.RedactPath)
	client = &traced
	meter := deps.Meter.Meter("github.com/jitprov/jitprov/internal/notify")
	tracer := deps.Tracer.Tracer("github.com/jitprov/jitprov/internal/notify")
	sm, err := newSenderMetrics(meter)
	if err != nil {
		return fmt.Errorf("notify: metrics: %w", err)
	}
	planned, err := meter.Int64Counter("jitprov.notifier.alerts",
		metric.WithDescription("Alerts read from stream ALERTS, by alert and result (planned, retry, invalid, no_recipient, not_an_alert)."))
	if err != nil {
		return fmt.Errorf("notify: metrics: %w", err)
	}

	if err := bus.RegisterConsumerGauges(meter, js, log, bus.ConsumerRef{Stream: bus.StreamAlerts, Consumer: ConsumerPlanner},
		bus.ConsumerRef{Stream: StreamJobs, Consumer: ConsumerSender}); err != nil {
		return fmt.Errorf("notify: metrics: %w", err)
	}
	if err := registerParkedGauge(meter, js, log); err != nil {
		return fmt.Errorf("notify: metrics: %w", err)
	}

	batches := &Batches{kv: batchKV, now: cfg.Clock.Now, log: log, tracer: tracer}
	p := &planner{js: js, dir: deps.Directory, admins: deps.Admins, batches: batches, log: log.With("component", "planner")}
	s := &sender{js: js, dir: deps.Directory, records: recordKV, webhook: &WebhookSender{Client: client}, mailer: mailer,
		links: cfg.Links, log: log.With("component", "sender"), m: sm, inflight: map[string]int{}, tracer: tracer,
		opts: senderOptions{MaxAttempts: cfg.MaxAttempts, BackoffMin: cfg.BackoffMin, BackoffMax: cfg.BackoffMax,
			PerOrg: cfg.PerOrg, WebhookTimeout: cfg.WebhookTimeout, MailTimeout: cfg.MailTimeout}}

	planOne := func(ctx context.Context, msg jetstream.Msg) {
		ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		// A child of the relay's publish: the trace of the login (or the
		// admin's action) that caused the alert goes on.
		ctx, span := bus.StartConsume(ctx, tracer, "plan alert", ConsumerPlanner, msg)
		defer span.End()
		alert := attribute.String("alert", alertLabel(events.HeaderValue(msg.Headers(), "ce-type")))
		err := p.plan(ctx, &nats.Msg{Subject: msg.Subject(), Header: msg.Headers(), Data: msg.Data()})
		switch {
		case errors.Is(err, errNoRecipient):
			planned.Add(ctx, 1, metric.WithAttributes(alert, attribute.String("result", "no_recipient")))
			log.ErrorContext(ctx, "alert dropped: nobody to tell; give the organisation notifications.emails or a webhook", "err", err)
			_ = msg.DoubleAck(ctx)
		case errors.Is(err, errNotAnAlert):
			planned.Add(ctx, 1, metric.WithAttributes(alert, attribute.String("result", "not_an_alert")))
			log.DebugContext(ctx, "event on ALERTS is not an alert; acked without a message", "subject", msg.Subject(), "event", err)
			_ = msg.DoubleAck(ctx)
		case errors.Is(err, errInvalidAlert):
			planned.Add(ctx, 1, metric.WithAttributes(alert, attribute.String("result", "invalid")))
			span.SetStatus(codes.Error, "invalid alert")
			log.ErrorContext(ctx, "alert breaks the event contract; terminated", "subject", msg.Subject(), "err", err)
			_ = msg.TermWithReason("invalid alert")
		case err != nil:
			planned.Add(ctx, 1, metric.WithAttributes(alert, attribute.String("result", "retry")))
			n := uint64(1)
			if md, err := msg.Metadata(); err == nil {
				n = md.NumDelivered
			}
			delay := bus.NakDelay(int(min(n, 20)), time.Second, time.Minute)
			log.WarnContext(ctx, "alert not planned; will retry", "subject", msg.Subject(), "delivery", n, "retry_in", delay, "err", err)
			telemetry.RecordFailure(span, err, "alert not planned")
			_ = msg.NakWithDelay(delay)
		default:
			planned.Add(ctx, 1, metric.WithAttributes(alert, attribute.String("result", "planned")))
			if err := msg.DoubleAck(ctx); err != nil {
				log.WarnContext(ctx, "alert planned but the ack failed; the redelivery plans the same jobs, which are deduplicated", "err", err)
			}
		}
	}

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		return bus.Workers(gctx, planCons, 4, cfg.DrainTimeout, log, planOne)
	})
	g.Go(func() error {
		return bus.Workers(gctx, sendCons, cfg.Workers, cfg.DrainTimeout, log, s.handle)
	})
	g.Go(func() error {
		return flushLoop(gctx, batches, p, cfg.Clock, cfg.FlushInterval, cfg.flushed, log.With("component", "flusher"))
	})
	status.Done()
	log.InfoContext(ctx, "notifier running", "workers", cfg.Workers, "per_org", cfg.PerOrg, "max_attempts", cfg.MaxAttempts)
	err = g.Wait()
	log.InfoContext(ctx, "notifier stopped")
	return err
}

// flushLoop sends batches as they fall due, looking every interval on
// clock and whenever a batch changes; passed, if not nil, hears of each
// pass.
func flushLoop(ctx context.Context, b *Batches, p *planner, clock clockwork.Clock, every time.Duration,
	passed func(now time.Time, sent []Job), log *slog.Logger) error {
	var mu sync.Mutex
	due := map[string]time.Time{}
	wake := make(chan struct{}, 1)
	watchErr := make(chan error, 1)
	go func() {
		watchErr <- b.watch(ctx, due, &mu, func() {
			select {
			case wake <- struct{}{}:
			default:
			}
		})
	}()
	var sent []Job // in this pass, for passed
	send := func(ctx context.Context, j Job) error {
		err := p.send(ctx, j)
		if errors.Is(err, errNoRecipient) {
			log.ErrorContext(ctx, "batch dropped: nobody to tell; give the organisation notifications.emails or a webhook", "err", err)
			return nil
		}
		if err == nil && passed != nil {
			sent = append(sent, j)
		}
		return err
	}
	t := clock.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-watchErr:
			if err != nil && ctx.Err() == nil {
				return err
			}
			return nil
		case <-t.Chan():
		case <-wake:
		}
		now := b.now()
		mu.Lock()
		var ready []string
		for k, d := range due {
			if !now.Before(d) {
				ready = append(ready, k)
			}
		}
		mu.Unlock()
		for _, k := range ready {
			if err := b.flush(ctx, k, send); err != nil {
				log.WarnContext(ctx, "batch not sent; will retry", "batch", k, "err", err)
			}
		}
		if passed != nil {
			passed(now, sent)
			sent = nil
		}
	}
}

// alertLabel is the alert label of a message of type t: the type when it
// is one of jitprov's alerts (events.AlertTypes), else "other" — any
// publisher on the bus could send any type, and each would otherwise be a
// series of its own.
func alertLabel(t string) string {
	if slices.Contains(events.AlertTypes(), events.Type(t)) {
		return t
	}
	return "other"
}
