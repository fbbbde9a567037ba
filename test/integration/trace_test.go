package integration

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
)

// One login is one trace: the edge's span context travels in the login's
// traceparent, the provisioner's span joins that trace, and the events the
// decision emits carry it on.
func TestOneLoginIsOneTrace(t *testing.T) {
	e := newEnv(t)
	e.apply(org("acme", 10))
	spans := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(spans))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	e.startProvisionerTraced(2, tp)
	c := e.client()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ctx, edgeSpan := tp.Tracer("test-edge").Start(ctx, "acs")
	id := identity("acme", "ivan")
	id.Roles = []string{"admin"}
	if _, err := c.Provision(ctx, id); err != nil {
		t.Fatal(err)
	}
	edgeSpan.End()
	want := edgeSpan.SpanContext().TraceID()

	// The provisioner ends its span just after answering.
	var provisionSpan sdktrace.ReadOnlySpan
	waitFor(t, func() bool {
		for _, s := range spans.GetSpans().Snapshots() {
			if s.Name() == "provision login" {
				provisionSpan = s
			}
		}
		return provisionSpan != nil
	})
	if got := provisionSpan.SpanContext().TraceID(); got != want {
		t.Errorf("provisioner span in trace %s, want the edge's %s", got, want)
	}
	if provisionSpan.Parent().SpanID() != edgeSpan.SpanContext().SpanID() {
		t.Errorf("provisioner span's parent is %s, want the edge span %s", provisionSpan.Parent().SpanID(), edgeSpan.SpanContext().SpanID())
	}
	msgs := append(e.collect(bus.StreamUsers, "jit.user.created.>", 1, 10*time.Second),
		e.collect(bus.StreamAlerts, "jit.alert.role-review.requested.>", 1, 10*time.Second)...)
	if len(msgs) != 2 {
		t.Fatalf("got %d events, want user.created and role-review.requested", len(msgs))
	}
	for _, m := range msgs {
		ctx := events.ExtractTrace(context.Background(), nats.Header(m.Headers()))
		if got := trace.SpanContextFromContext(ctx).TraceID(); got != want {
			t.Errorf("%s carries trace %s, want %s", m.Headers().Get("ce-type"), got, want)
		}
	}
}
