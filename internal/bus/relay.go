package bus

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/attribute"
	semconv "go.opentelemetry.io/otel/semconv/v1.37.0"
	"go.opentelemetry.io/otel/trace"
	nooptrace "go.opentelemetry.io/otel/trace/noop"

	"github.com/jitprov/jitprov/events"
	"github.com/jitprov/jitprov/internal/store"
	"github.com/jitprov/jitprov/internal/telemetry"
)

// Outbox is what the relay needs of a store.
type Outbox interface {
	RelayOutbox(ctx context.Context, limit int, publish func(context.Context, []store.OutboxMessage) (int, error)) (int, error)
	PruneOutbox(ctx context.Context, age time.Duration) (int64, error)
}

// Relay publishes the outbox to JetStream. Each event is published with
// Nats-Msg-Id = its event id and marked sent only after its PubAck, so an
// event is never lost; a relay that dies between the PubAck and the mark
// leaves the event to be published again, and JetStream's duplicate window
// drops the copy, so it is not doubled either. Any number of replicas may
// run a relay: the store lets one publish at a time, in outbox order.
type Relay struct {
	outbox Outbox
	js     jetstream.JetStream
	log    *slog.Logger
	wake   chan struct{}

	// Batch is how many events one round publishes at most.
	Batch int
	// Interval is how often the relay looks without being woken.
	Interval time.Duration
	// Retention is how long sent events stay in the outbox.
	Retention time.Duration
	// OnPublished, when set, is called with the number of events marked sent.
	OnPublished func(n int)
	// Tracer records a span per batch, linked to the spans that wrote its
	// events, and a producer span per event in the trace of the span that
	// wrote it; nil records none.
	Tracer trace.TracerProvider
}

// NewRelay returns a relay with default settings.
func NewRelay(o Outbox, js jetstream.JetStream, log *slog.Logger) *Relay {
	return &Relay{outbox: o, js: js, log: log, wake: make(chan struct{}, 1),
		Batch: 256, Interval: time.Second, Retention: 24 * time.Hour}
}

// Wake asks the relay to look at the outbox now, e.g. after a commit.
func (r *Relay) Wake() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// Run relays until ctx is done, then makes one last bounded attempt so that
// events decided just before shutdown leave now rather than at the next start.
func (r *Relay) Run(ctx context.Context) error {
	tick := time.NewTicker(r.Interval)
	defer tick.Stop()
	prune := time.NewTicker(10 * time.Minute)
	defer prune.Stop()
	for {
		select {
		case <-ctx.Done():
			final, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer cancel()
			r.drain(final)
			return nil
		case <-r.wake:
		case <-tick.C:
		case <-prune.C:
			if n, err := r.outbox.PruneOutbox(ctx, r.Retention); err != nil {
				r.log.WarnContext(ctx, "outbox prune failed", "err", err)
			} else if n > 0 {
				r.log.DebugContext(ctx, "outbox pruned", "deleted", n)
			}
			continue
		}
		r.drain(ctx)
	}
}

// drain relays until the outbox is empty or a round fails.
func (r *Relay) drain(ctx context.Context) {
	for ctx.Err() == nil {
		n, err := r.outbox.RelayOutbox(ctx, r.Batch, r.publish)
		if n > 0 && r.OnPublished != nil {
			r.OnPublished(n)
		}
		if err != nil {
			if !errors.Is(err, context.Canceled) {
				r.log.WarnContext(ctx, "outbox relay round failed; the events stay in the outbox and are retried",
					"published", n, "err", err)
			}
			return
		}
		if n < r.Batch {
			return
		}
	}
}

// publish sends msgs asynchronously and waits for every PubAck. It returns
// how many leading messages were acknowledged.
//
// The batch is a span of its own ("relay outbox"), linked to the span
// that wrote each event (its outbox row keeps the writer's traceparent);
// each event's publish is a producer span in the writer's trace, linked to
// the batch, and the message carries the producer span's trace context:
// the consumer of the event continues the trace of the login or the
// admin's action that caused it.
func (r *Relay) publish(ctx context.Context, msgs []store.OutboxMessage) (n int, err error) {
	tp := r.Tracer
	if tp == nil {
		tp = nooptrace.NewTracerProvider()
	}
	writers := make([]context.Context, len(msgs))
	links := make([]trace.Link, 0, len(msgs))
	for i, m := range msgs {
		writers[i] = events.ExtractTrace(context.WithoutCancel(ctx), nats.Header(m.Header))
		if sc := trace.SpanContextFromContext(writers[i]); sc.IsValid() {
			links = append(links, trace.Link{SpanContext: sc})
		}
	}
	ctx, batch := tp.Tracer(TracerName).Start(ctx, "relay outbox", trace.WithNewRoot(), trace.WithLinks(links...),
		trace.WithAttributes(messagingSystem, semconv.MessagingOperationTypeSend, semconv.MessagingBatchMessageCount(len(msgs))))
	spans := make([]trace.Span, 0, len(msgs))
	defer func() {
		for i, span := range spans {
			if i >= n {
				endPublish(span, cmp.Or(err, errors.New("not acknowledged")))
			} else {
				endPublish(span, nil)
			}
		}
		batch.SetAttributes(attribute.Int("jitprov.outbox.published", n))
		if err != nil {
			telemetry.RecordFailure(batch, err, "outbox round failed")
		}
		batch.End()
	}()
	batchLink := trace.Link{SpanContext: batch.SpanContext()}
	futures := make([]jetstream.PubAckFuture, 0, len(msgs))
	for i, m := range msgs {
		parent := writers[i]
		if !trace.SpanContextFromContext(parent).IsValid() {
			parent = ctx // an event written outside any trace: the batch's
		}
		pctx, span := StartPublish(parent, tp, eventName(events.HeaderValue(nats.Header(m.Header), "ce-type")), m.Subject, m.EventID)
		span.AddLink(batchLink)
		spans = append(spans, span)
		h := nats.Header{}
		for k, v := range m.Header {
			h[k] = slices.Clone(v)
		}
		events.InjectTrace(pctx, h)
		f, err := r.js.PublishMsgAsync(&nats.Msg{Subject: m.Subject, Header: h, Data: m.Data},
			jetstream.WithMsgID(m.EventID))
		if err != nil {
			return r.await(ctx, futures, msgs, fmt.Errorf("publish event %s to %s: %w", m.EventID, m.Subject, err))
		}
		futures = append(futures, f)
	}
	return r.await(ctx, futures, msgs, nil)
}

func (r *Relay) await(ctx context.Context, futures []jetstream.PubAckFuture, msgs []store.OutboxMessage, pubErr error) (int, error) {
	timeout := time.NewTimer(10 * time.Second)
	defer timeout.Stop()
	for i, f := range futures {
		select {
		case <-f.Ok():
		case err := <-f.Err():
			return i, fmt.Errorf("bus: event %s to %s not acknowledged: %w", msgs[i].EventID, msgs[i].Subject, err)
		case <-timeout.C:
			return i, fmt.Errorf("bus: event %s to %s: no PubAck within 10s", msgs[i].EventID, msgs[i].Subject)
		case <-ctx.Done():
			return i, ctx.Err()
		}
	}
	if pubErr != nil {
		return len(futures), fmt.Errorf("bus: %w", pubErr)
	}
	return len(futures), nil
}
