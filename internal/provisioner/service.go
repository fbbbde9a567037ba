package provisioner

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/jitprov/jitprov/events"
	"github.com/jitprov/jitprov/internal/bus"
	"github.com/jitprov/jitprov/internal/known"
	"github.com/jitprov/jitprov/internal/store"
	"github.com/jitprov/jitprov/internal/telemetry"
)

// Options configure a Service.
type Options struct {
	// Workers is how many groups of logins one replica decides at once.
	Workers int
	// MaxBatch bounds the logins decided together in one transaction,
	// of one organisation or several (default 32; 1 decides each login
	// on its own).
	// A worker takes what is in hand when it is free, never waiting for
	// more.
	MaxBatch int
	// DecisionTimeout bounds one decision, database included.
	DecisionTimeout time.Duration
	// DrainTimeout bounds shutdown: in-flight decisions get this long to
	// finish; what remains unacked is redelivered to another replica.
	DrainTimeout time.Duration
	// MaxAttempts bounds the tries of a login that fails for a reason other
	// than an unreachable database (default 8): such a failure on delivery
	// MaxAttempts or later gives up. A failure because the database is
	// unreachable never gives up before the consumer's MaxDeliver, so
	// logins wait out an outage.
	MaxAttempts int
	Logger      *slog.Logger
	Meter       metric.Meter
	Tracer      trace.Tracer
	// OnDecided, when set, runs after each login is decided and acked; the
	// relay uses it to publish the new events at once.
	OnDecided func()
	// Known, when set, records each decided identity for sso-edge's
	// returning-login fast path.
	Known KnownIdentities
}

// KnownIdentities is where decided identities are recorded (the
// known-identities bucket).
type KnownIdentities interface {
	Put(ctx context.Context, rec known.Record) error
}

// DefaultMaxBatch is Options.MaxBatch's default.
const DefaultMaxBatch = 32

// Service consumes logins from the provisioner consumer and decides them.
type Service struct {
	decider *Decider
	nc      *nats.Conn
	cons    jetstream.Consumer
	opts    Options
	js      jetstream.JetStream
	log     *slog.Logger
	m       metrics
}

type metrics struct {
	decisions metric.Int64Counter
	invalid   metric.Int64Counter
	retries   metric.Int64Counter
	latency   metric.Float64Histogram
	batch     metric.Int64Histogram
}

func newMetrics(m metric.Meter) (metrics, error) {
	var out metrics
	var errs [5]error
	out.decisions, errs[0] = m.Int64Counter("jitprov.provisioner.decisions",
		metric.WithDescription("Logins decided, by outcome and reason."))
	out.invalid, errs[1] = m.Int64Counter("jitprov.provisioner.invalid_events",
		metric.WithDescription("Login messages terminated because they break the event contract."))
	out.retries, errs[2] = m.Int64Counter("jitprov.provisioner.retries",
		metric.WithDescription("Logins handed back for a later try after a transient failure."))
	out.latency, errs[3] = m.Float64Histogram("jitprov.provisioner.decision.duration",
		metric.WithUnit("s"), metric.WithDescription("Time from delivery to ack of one login."),
		metric.WithExplicitBucketBoundaries(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))
	out.batch, errs[4] = m.Int64Histogram("jitprov.provisioner.batch.logins",
		metric.WithDescription("Logins decided together, per batch (one transaction unless an organisation's seats are short)."),
		metric.WithExplicitBucketBoundaries(1, 2, 4, 8, 16, 32, 64, 128))
	return out, errors.Join(errs[:]...)
}

// NewService returns a Service consuming from cons (the provisioner
// consumer) with decisions made by d and answers sent on nc.
func NewService(d *Decider, nc *nats.Conn, cons jetstream.Consumer, opts Options) (*Service, error) {
	if opts.Workers <= 0 {
		opts.Workers = 16
	}
	if opts.MaxBatch <= 0 {
		opts.MaxBatch = DefaultMaxBatch
	}
	if opts.DecisionTimeout <= 0 {
		opts.DecisionTimeout = 10 * time.Second
	}
	if opts.DrainTimeout <= 0 {
		opts.DrainTimeout = 25 * time.Second
	}
	if opts.MaxAttempts <= 0 {
		opts.MaxAttempts = 8
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Meter == nil || opts.Tracer == nil {
		return nil, errors.New("provisioner: options need a Meter and a Tracer (use the noop ones when not exporting)")
	}
	m, err := newMetrics(opts.Meter)
	if err != nil {
		return nil, fmt.Errorf("provisioner: metrics: %w", err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("provisioner: jetstream: %w", err)
	}
	return &Service{decider: d, nc: nc, cons: cons, opts: opts, js: js, log: opts.Logger, m: m}, nil
}

// Run consumes until ctx is done, then drains: it stops fetching, finishes
// the logins in hand (up to DrainTimeout) and returns.
func (s *Service) Run(ctx context.Context) error {
	maxDeliver := s.cons.CachedInfo().Config.MaxDeliver
	s.log.InfoContext(ctx, "provisioner consuming logins", "workers", s.opts.Workers, "max_batch", s.opts.MaxBatch, "max_deliver", maxDeliver)
	err := s.consume(ctx, func(ctx context.Context, msgs []jetstream.Msg, answer func(func())) {
		s.handle(ctx, msgs, maxDeliver, answer)
	})
	if err != nil {
		return fmt.Errorf("provisioner: %w", err)
	}
	s.log.InfoContext(ctx, "provisioner drained")
	return nil
}

// inFlight is one login of a batch being decided.
type inFlight struct {
	ctx   context.Context // the login's trace, and its span
	span  trace.Span
	msg   jetstream.Msg
	ev    events.Event
	id    events.Identity
	log   *slog.Logger
	start time.Time
}

// handle decides a batch of logins, of one organisation or several, in
// one transaction where it can (Decider.DecideBatch), and has each
// answered by answer, which runs it beside the next decisions: answering
// is round trips to NATS (the reply, the known identity, the ack) that
// the next group need not wait for. In-flight work is not cut by shutdown
// (ctx is cancelled only when the drain runs out), and is bounded by
// DecisionTimeout.
func (s *Service) handle(ctx context.Context, msgs []jetstream.Msg, maxDeliver int, answer func(func())) {
	start := time.Now()
	batch := make([]*inFlight, 0, len(msgs))
	for _, msg := range msgs {
		if f := s.receive(ctx, msg, start); f != nil {
			batch = append(batch, f)
		}
	}
	if len(batch) == 0 {
		return
	}
	s.m.batch.Record(ctx, int64(len(batch)))
	logins := make([]Login, len(batch))
	links := make([]trace.Link, len(batch))
	for i, f := range batch {
		logins[i] = Login{ID: f.ev.ID(), Identity: f.id, Span: f.span}
		links[i] = trace.Link{SpanContext: f.span.SpanContext()}
	}
	// A lone login's decision is part of its trace; a batch's shared
	// statements are a span of their own, linked to its logins.
	dctx := ctx
	var batchSpan trace.Span
	if len(batch) == 1 {
		dctx = batch[0].ctx
	} else {
		attrs := []attribute.KeyValue{attribute.Int("jitprov.logins", len(batch))}
		if org := batch[0].id.OrganizationID; !slices.ContainsFunc(batch, func(f *inFlight) bool { return f.id.OrganizationID != org }) {
			attrs = append(attrs, attribute.String("jitprov.org", org))
		}
		dctx, batchSpan = s.opts.Tracer.Start(ctx, "decide logins", trace.WithLinks(links...), trace.WithAttributes(attrs...))
	}
	dctx, cancel := context.WithTimeout(dctx, s.opts.DecisionTimeout)
	answers := s.decider.DecideBatch(dctx, logins)
	cancel()
	if batchSpan != nil {
		batchSpan.End()
	}
	for i, f := range batch {
		answer(func() { s.answer(f, answers[i], maxDeliver) })
	}
}

// receive decodes a delivery and starts its span; a delivery breaking the
// event contract is terminated, and nil returned.
func (s *Service) receive(ctx context.Context, msg jetstream.Msg, start time.Time) *inFlight {
	// A child of the edge's publish: the login's trace goes on.
	ctx, span := bus.StartConsume(ctx, s.opts.Tracer, "provision login", bus.ConsumerProvisioner, msg)
	raw := &nats.Msg{Subject: msg.Subject(), Header: msg.Headers(), Data: msg.Data()}
	ev, id, err := decodeLogin(raw)
	if err != nil {
		defer span.End()
		s.m.invalid.Add(ctx, 1)
		span.SetStatus(codes.Error, "invalid login event")
		s.log.ErrorContext(ctx, "login message breaks the event contract; terminated, it will not be retried",
			"subject", msg.Subject(), "ce_id", events.HeaderValue(msg.Headers(), "ce-id"), "err", err)
		if err := msg.TermWithReason("invalid event: " + truncate(err.Error(), 1000)); err != nil {
			s.log.WarnContext(ctx, "term failed", "err", err)
		}
		return nil
	}
	span.SetAttributes(attribute.String("jitprov.login_id", ev.ID()), attribute.String("jitprov.org", id.OrganizationID))
	return &inFlight{ctx: ctx, span: span, msg: msg, ev: ev, id: id, start: start,
		log: s.log.With("login_id", ev.ID(), "org", id.OrganizationID, "connection", id.ConnectionID)}
}

// answer finishes one login of a batch with what was decided for it.
func (s *Service) answer(f *inFlight, a Answer, maxDeliver int) {
	ctx, span, msg, log := f.ctx, f.span, f.msg, f.log
	defer span.End()
	res, err := a.Result, a.Err
	if errors.Is(err, ErrLoginIDReused) {
		s.m.invalid.Add(ctx, 1)
		span.SetStatus(codes.Error, "login id reused")
		log.ErrorContext(ctx, "login id reused for another identity; terminated without an answer", "err", err)
		if err := msg.TermWithReason("login id reused"); err != nil {
			log.WarnContext(ctx, "term failed", "err", err)
		}
		return
	}
	if err != nil {
		s.retryOrFail(ctx, log, msg, f.ev, f.id, maxDeliver, err)
		telemetry.RecordFailure(span, err, "decision failed")
		return
	}
	// The decision is committed. The answer, the known-identities record
	// and the ack follow on a context of their own: a decision that used
	// up its deadline waiting on locks must still reach the person. The
	// record comes before the ack, so that a replica dying in between, or
	// NATS away for a moment, leaves the login to be redelivered and
	// answered again from the stored decision, record included.
	post, cancel := context.WithTimeout(context.WithoutCancel(ctx), postCommitTimeout)
	defer cancel()
	if err := bus.Reply(post, s.nc, msg.Headers(), res, Source); err != nil {
		log.WarnContext(ctx, "could not answer the login", "err", err)
	}
	if err := s.remember(post, f.id, res); err != nil {
		if s.keepUnrecorded(post, log, msg, maxDeliver, err) {
			span.SetStatus(codes.Error, "known identity not recorded")
			return
		}
	}
	if err := msg.DoubleAck(post); err != nil {
		log.WarnContext(ctx, "ack failed after commit; the redelivery will be answered from the stored decision", "err", err)
	}
	if s.opts.OnDecided != nil {
		s.opts.OnDecided()
	}
	s.m.decisions.Add(ctx, 1, metric.WithAttributes(attribute.String("outcome", string(res.Outcome)), attribute.String("reason", string(res.Reason))))
	s.m.latency.Record(ctx, time.Since(f.start).Seconds())
	span.SetAttributes(attribute.String("jitprov.outcome", string(res.Outcome)))
	log.InfoContext(ctx, "login decided", "outcome", res.Outcome, "reason", res.Reason, "message", res.Message)
}

// postCommitTimeout bounds what follows a committed decision: the answer,
// the known-identities record and the ack.
const postCommitTimeout = 5 * time.Second

// remember records the user a decision names in the known-identities
// bucket, which sso-edge's returning-login fast path and its waiting page
// read.
func (s *Service) remember(ctx context.Context, id events.Identity, res events.ProvisioningResult) error {
	if s.opts.Known == nil || res.User == nil {
		return nil
	}
	return s.opts.Known.Put(ctx, known.Record{
		UserID: res.User.ID, OrganizationID: id.OrganizationID, ConnectionID: id.ConnectionID,
		ExternalID: id.ExternalID, Role: res.User.Role, Status: res.User.Status, Email: res.User.Email,
		ClaimsDigest: known.Digest(id), UpdatedAt: res.DecidedAt,
	})
}

// keepUnrecorded hands a decided login back when its known-identities
// record could not be written, so that the record is written on the
// redelivery, which the stored decision answers at once. It reports
// whether the login was kept. From the recordDeliveries-th delivery on it
// is not: a login handed back stays pending on the consumer, and a
// bucket that stays unwritable must not hold back every new login (max
// ack pending); the decision stands, the edge's waiting page reads it from
// the database, and the person's next login writes the record.
func (s *Service) keepUnrecorded(ctx context.Context, log *slog.Logger, msg jetstream.Msg, maxDeliver int, cause error) bool {
	delivered := uint64(1)
	if md, err := msg.Metadata(); err == nil {
		delivered = md.NumDelivered
	}
	if delivered >= recordDeliveries || (maxDeliver > 0 && delivered >= uint64(maxDeliver)) {
		log.ErrorContext(ctx, "decided, but the known identity could not be recorded; acked anyway "+
			"(the waiting page reads the decision from the database; the next login of this person takes the slow path)",
			"deliveries", delivered, "err", cause)
		return false
	}
	delay := backoff(delivered)
	s.m.retries.Add(ctx, 1)
	log.WarnContext(ctx, "decided, but the known identity could not be recorded; the login is kept and recorded on its redelivery",
		"delivery", delivered, "retry_in", delay, "err", cause)
	if err := msg.NakWithDelay(delay); err != nil {
		log.WarnContext(ctx, "nak failed; the login is redelivered after the ack wait", "err", err)
	}
	return true
}

// recordDeliveries bounds the deliveries a decided login is kept for to
// write its known-identities record.
const recordDeliveries = 3

// retryOrFail hands a login back with a backoff delay after a failure, or
// answers "failed" and terminates it when trying again cannot help: the
// failure is permanent (the login cannot be turned into valid events), it
// has had MaxAttempts tries, or — for an unreachable database, which does
// not spend the attempts — it reached the consumer's MaxDeliver.
func (s *Service) retryOrFail(ctx context.Context, log *slog.Logger, msg jetstream.Msg, ev events.Event, id events.Identity, maxDeliver int, cause error) {
	delivered := uint64(1)
	if md, err := msg.Metadata(); err == nil {
		delivered = md.NumDelivered
	}
	outage := errors.Is(cause, store.ErrUnavailable) || errors.Is(cause, context.DeadlineExceeded)
	giveUp := ""
	switch {
	case errors.Is(cause, events.ErrInvalid), errors.Is(cause, store.ErrInvalidData):
		giveUp = "the login cannot be provisioned as sent"
	case !outage && delivered >= uint64(s.opts.MaxAttempts):
		giveUp = fmt.Sprintf("failed %d times", delivered)
	case maxDeliver > 0 && delivered >= uint64(maxDeliver):
		giveUp = fmt.Sprintf("still failing after %d deliveries", delivered)
	}
	if giveUp != "" {
		log.ErrorContext(ctx, "giving up on login: "+giveUp, "deliveries", delivered, "err", cause)
		// The decision's context may be what ran out: answer and alert on
		// a fresh one.
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		res := events.ProvisioningResult{LoginID: ev.ID(), Outcome: events.OutcomeFailed, Reason: events.ReasonInternalError,
			Message: "provisioning failed (" + giveUp + "); see the provisioner's logs", DecidedAt: time.Now().UTC()}
		if err := bus.Reply(ctx, s.nc, msg.Headers(), res, Source); err != nil {
			log.WarnContext(ctx, "could not answer the login", "err", err)
		}
		if err := s.decider.RecordFailure(ctx, ev.ID(), id, res); err != nil {
			log.WarnContext(ctx, "could not store the failed answer; a person waiting for it waits out their page", "err", err)
		}
		s.m.decisions.Add(ctx, 1, metric.WithAttributes(attribute.String("outcome", string(res.Outcome)), attribute.String("reason", string(res.Reason))))
		if err := s.alertFailed(ctx, ev.ID(), id, giveUp, delivered); errors.Is(err, events.ErrInvalid) {
			log.ErrorContext(ctx, "provisioning.failed cannot be built for this login; the admins will not hear of it", "err", err)
		} else if err != nil {
			// Keep the login rather than lose the alert: the next delivery
			// gives up again and publishes it under the same id.
			log.ErrorContext(ctx, "could not publish provisioning.failed; the login is kept and given up again shortly", "err", err)
			_ = msg.NakWithDelay(backoff(delivered))
			return
		}
		if err := msg.TermWithReason(giveUp); err != nil {
			log.WarnContext(ctx, "term failed", "err", err)
		}
		return
	}
	delay := backoff(delivered)
	s.m.retries.Add(ctx, 1)
	level := slog.LevelWarn
	if outage && !errors.Is(cause, store.ErrContended) {
		level = slog.LevelError
	}
	log.Log(ctx, level, "login not decided; will retry", "delivery", delivered, "retry_in", delay, "err", cause)
	if err := msg.NakWithDelay(delay); err != nil {
		log.WarnContext(ctx, "nak failed; the login is redelivered after the ack wait", "err", err)
	}
}

// alertFailed publishes provisioning.failed for a login given up on, so
// that the organisation's admins hear of it. It goes straight to stream
// ALERTS (the database may be what failed), with the login id in its
// Nats-Msg-Id so that a give-up repeated after a redelivery alerts once.
func (s *Service) alertFailed(ctx context.Context, loginID string, id events.Identity, reason string, deliveries uint64) error {
	ev, err := events.New(events.TypeProvisioningFailed, Source, loginID, events.ProvisioningFailed{
		LoginID: loginID, OrganizationID: id.OrganizationID, ConnectionID: id.ConnectionID, ExternalID: id.ExternalID,
		Email: id.Email, Reason: reason, Deliveries: int(max(deliveries, 1)), FailedAt: time.Now().UTC(),
	})
	if err != nil {
		return err
	}
	ev.SetID("failed-" + loginID)
	return bus.Publish(ctx, s.js, ev, id.OrganizationID)
}

// backoff is the delay before the next try after delivery n: 1s, 2s, 4s…
// up to 30s, with jitter so that replicas do not retry in step.
func backoff(n uint64) time.Duration {
	return bus.NakDelay(int(min(n, 64)), time.Second, 30*time.Second)
}

// maxLoginIDLen is the longest login id the answer and the audit log take.
const maxLoginIDLen = 256

func decodeLogin(m *nats.Msg) (events.Event, events.Identity, error) {
	ev, err := events.Decode(m)
	if err != nil {
		return ev, events.Identity{}, err
	}
	if len(ev.ID()) > maxLoginIDLen {
		return ev, events.Identity{}, fmt.Errorf("%w: login id of %d characters exceeds %d", events.ErrInvalid, len(ev.ID()), maxLoginIDLen)
	}
	id, err := events.DataAs[events.Identity](ev, events.TypeLoginFirstSeen)
	if err != nil {
		return ev, id, err
	}
	want, err := events.Subject(events.TypeLoginFirstSeen, id.OrganizationID)
	if err != nil || want != m.Subject {
		return ev, id, fmt.Errorf("%w: login for organisation %q arrived on subject %q", events.ErrInvalid, id.OrganizationID, m.Subject)
	}
	return ev, id, nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "") + "…"
}
