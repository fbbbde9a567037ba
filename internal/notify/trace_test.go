package notify_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/jitprov/jitprov/events"
	"github.com/jitprov/jitprov/internal/bus"
	"github.com/jitprov/jitprov/internal/notify"
	"github.com/jitprov/jitprov/internal/testenv"
)

// Each delivery continues the trace of the alert that caused it: an
// alert sent at once, and a seat message gathered from many alerts, in
// the trace of the alert that opened its batch. The webhook request
// carries the trace context of its client span.
func TestDeliveriesContinueTheAlertsTrace(t *testing.T) {
	h := newHarness(t)
	spans := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(spans))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	h.tracer = tp
	clk, _ := h.fakeClock()
	const delay = 3 * time.Second
	ops := newHook(t, "test-secret", 0)
	h.org("acme", settings(func(s *notify.Settings) {
		s.Admins, s.Emails = false, nil
		s.Webhooks = []notify.Webhook{ops.settings("ops", notify.FormatCloudEvents)}
		s.SeatDelay = delay
	}))
	h.start()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := clk.BlockUntilContext(ctx, 1); err != nil {
		t.Fatalf("the flusher never started its ticker: %v", err)
	}
	// Each alert published in a trace of its own, as the provisioner's
	// relay would.
	publish := func(typ events.Type, data any) trace.TraceID {
		t.Helper()
		ev, err := events.New(typ, "/jitprov/test", "acme", data)
		if err != nil {
			t.Fatal(err)
		}
		pctx, span := tp.Tracer("test").Start(ctx, "decision")
		defer span.End()
		if err := bus.Publish(pctx, h.js, ev, "acme"); err != nil {
			t.Fatal(err)
		}
		return span.SpanContext().TraceID()
	}
	threshold := publish(events.TypeSeatsThresholdReached, events.SeatsThresholdReached{OrganizationID: "acme",
		MaxSeats: 50, SeatsUsed: 40, ThresholdPercent: 80, UserID: uuid.NewString(), LoginID: uuid.NewString()})
	testenv.WaitFor(t, 30*time.Second, "the threshold message", func() bool { return len(ops.delivered()) == 1 })
	opened := publish(events.TypeSeatsExhausted, seatsExhausted("acme", 0))
	// Planned before the others: the planner's workers take alerts side by
	// side, and the batch is opened by whichever is planned first.
	h.planned(t)
	for i := range 3 {
		publish(events.TypeSeatsExhausted, seatsExhausted("acme", i+1))
	}
	h.planned(t)
	clk.Advance(delay)
	testenv.WaitFor(t, 30*time.Second, "the seat message", func() bool { return len(ops.delivered()) == 2 })
	h.settled(t, 30*time.Second)

	for i, want := range []trace.TraceID{threshold, opened} {
		req := ops.delivered()[i]
		sc := trace.SpanContextFromContext(propagation.TraceContext{}.Extract(context.Background(),
			propagation.HeaderCarrier(req.Header)))
		if sc.TraceID() != want {
			t.Errorf("webhook request %d in trace %s, want the alert's %s", i+1, sc.TraceID(), want)
		}
		// The request's span is the webhook client span, under the delivery.
		var client, deliver sdktrace.ReadOnlySpan
		testenv.WaitFor(t, 10*time.Second, "the delivery's spans", func() bool {
			client, deliver = nil, nil
			for _, s := range spans.GetSpans().Snapshots() {
				if s.SpanContext().SpanID() == sc.SpanID() {
					client = s
				}
			}
			if client == nil {
				return false
			}
			for _, s := range spans.GetSpans().Snapshots() {
				if s.SpanContext().SpanID() == client.Parent().SpanID() {
					deliver = s
				}
			}
			return deliver != nil
		})
		if client.Name() != "POST webhook" || client.SpanKind() != trace.SpanKindClient {
			t.Errorf("request %d: span %q of kind %s, want the client span \"POST webhook\"", i+1, client.Name(), client.SpanKind())
		}
		if deliver.Name() != "deliver notification" || deliver.SpanKind() != trace.SpanKindConsumer {
			t.Errorf("request %d: parent %q of kind %s, want the consumer span \"deliver notification\"", i+1, deliver.Name(), deliver.SpanKind())
		}
	}
}
