package bus_test

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/jitprov/jitprov/events"
	"github.com/jitprov/jitprov/internal/bus"
	"github.com/jitprov/jitprov/internal/store"
	"github.com/jitprov/jitprov/internal/testenv"
)

// A relay batch is a span of its own linked to the spans that wrote its
// events; each event is published in a producer span in its writer's
// trace (the batch's for an event written outside any trace), linked to
// the batch, and the message carries the producer span's context.
func TestRelaySpans(t *testing.T) {
	s, _ := testenv.Store(t)
	_, js := newJetStream(t)
	ensure(t, js)
	spans := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(spans))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })

	// Two writers in traces of their own, and an event written outside any.
	var msgs []store.OutboxMessage
	var writers []trace.Span
	for i := range 2 {
		ctx, w := tp.Tracer("test").Start(context.Background(), "decision")
		m := outboxEvent(t, events.TypeUserCreated, "acme", i)
		events.InjectTrace(ctx, nats.Header(m.Header))
		w.End()
		writers = append(writers, w)
		msgs = append(msgs, m)
	}
	msgs = append(msgs, outboxEvent(t, events.TypeSeatsExhausted, "acme", 2))
	appendOutbox(t, s, msgs...)
	startRelay(t, s, js, func(r *bus.Relay) { r.Tracer = tp; r.Interval = 50 * time.Millisecond })
	testenv.WaitFor(t, 10*time.Second, "the relay publishes the outbox", func() bool { return unsent(t, s) == 0 })
	checkRelayed(t, js, msgs)

	var batch sdktrace.ReadOnlySpan
	producers := map[string]sdktrace.ReadOnlySpan{} // by message id
	testenv.WaitFor(t, 10*time.Second, "the relay's spans end", func() bool {
		batch, producers = nil, map[string]sdktrace.ReadOnlySpan{}
		for _, sp := range spans.GetSpans().Snapshots() {
			switch {
			case sp.Name() == "relay outbox":
				batch = sp
			case sp.SpanKind() == trace.SpanKindProducer:
				for _, a := range sp.Attributes() {
					if a.Key == "messaging.message.id" {
						producers[a.Value.AsString()] = sp
					}
				}
			}
		}
		return batch != nil && len(producers) == len(msgs)
	})
	if batch.Parent().IsValid() {
		t.Errorf("the batch span has parent %s, want a root", batch.Parent().SpanID())
	}
	if len(batch.Links()) != len(writers) {
		t.Errorf("the batch links to %d spans, want the %d writers", len(batch.Links()), len(writers))
	}
	for i, w := range writers {
		if !linksTo(batch, w.SpanContext()) {
			t.Errorf("the batch does not link to writer %d", i)
		}
	}
	for i, m := range msgs {
		p := producers[m.EventID]
		parent := batch.SpanContext()
		if i < len(writers) {
			parent = writers[i].SpanContext()
		}
		if p.SpanContext().TraceID() != parent.TraceID() || p.Parent().SpanID() != parent.SpanID() {
			t.Errorf("event %d published under %s in trace %s, want under %s in %s", i, p.Parent().SpanID(), p.SpanContext().TraceID(), parent.SpanID(), parent.TraceID())
		}
		if !linksTo(p, batch.SpanContext()) {
			t.Errorf("event %d's producer span does not link to the batch", i)
		}
	}
	// The stream holds the producer spans' contexts.
	for _, stream := range []string{bus.StreamUsers, bus.StreamAlerts} {
		for _, m := range readStream(t, js, stream) {
			got := trace.SpanContextFromContext(events.ExtractTrace(context.Background(), m.Header))
			p := producers[m.Header.Get("Nats-Msg-Id")]
			if p == nil || got.SpanID() != p.SpanContext().SpanID() {
				t.Errorf("%s carries span %s, want its producer span", m.Subject, got.SpanID())
			}
		}
	}
}

func linksTo(s sdktrace.ReadOnlySpan, sc trace.SpanContext) bool {
	for _, l := range s.Links() {
		if l.SpanContext.SpanID() == sc.SpanID() && l.SpanContext.TraceID() == sc.TraceID() {
			return true
		}
	}
	return false
}
