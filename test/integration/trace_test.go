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
	"github.com/jitprov/jitprov/internal/testenv"
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

	// The provisioner ends its span just after answering; its parent is
	// the producer span of the login's publish, a child of the edge's.
	var provisionSpan, publishSpan sdktrace.ReadOnlySpan
	testenv.WaitFor(t, 20*time.Second, "the provisioner's and the publish's spans", func() bool {
		for _, s := range spans.GetSpans().Snapshots() {
			switch s.Name() {
			case "provision login":
				provisionSpan = s
			case "send login.first-seen":
				publishSpan = s
			}
		}
		return provisionSpan != nil && publishSpan != nil
	})
	if got := provisionSpan.SpanContext().TraceID(); got != want {
		t.Errorf("provisioner span in trace %s, want the edge's %s", got, want)
	}
	if publishSpan.SpanKind() != trace.SpanKindProducer || publishSpan.Parent().SpanID() != edgeSpan.SpanContext().SpanID() {
		t.Errorf("publish span of kind %s under %s, want a producer span under the edge span %s",
			publishSpan.SpanKind(), publishSpan.Parent().SpanID(), edgeSpan.SpanContext().SpanID())
	}
	if provisionSpan.SpanKind() != trace.SpanKindConsumer || provisionSpan.Parent().SpanID() != publishSpan.SpanContext().SpanID() {
		t.Errorf("provisioner span of kind %s under %s, want a consumer span under the publish %s",
			provisionSpan.SpanKind(), provisionSpan.Parent().SpanID(), publishSpan.SpanContext().SpanID())
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
