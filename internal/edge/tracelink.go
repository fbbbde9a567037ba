package edge

import (
	"context"

	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/jitprov/jitprov/internal/edge/session"
)

// A login has two legs: the redirect to the IdP, then the ACS or OIDC
// callback, each a trace of its own (the browser carries no trace
// context). The first leg's span context travels in the sealed
// pending-login cookie, and the second leg's span links to it.

// firstLeg is the W3C traceparent of the span in ctx, for the pending
// login ("" without one).
func firstLeg(ctx context.Context) string {
	if !trace.SpanContextFromContext(ctx).IsValid() {
		return ""
	}
	c := propagation.MapCarrier{}
	propagation.TraceContext{}.Inject(ctx, c)
	return c["traceparent"]
}

// linkFirstLeg links the span in ctx to the first leg of pending login p.
// The traceparent comes from a cookie the edge sealed itself; whatever it
// holds, it is parsed as a traceparent (nothing else) and used only as a
// link — never as a parent, which would let a browser choose the trace.
func linkFirstLeg(ctx context.Context, p session.PendingLogin) {
	if p.Traceparent == "" {
		return
	}
	first := trace.SpanContextFromContext(propagation.TraceContext{}.Extract(context.Background(),
		propagation.MapCarrier{"traceparent": p.Traceparent}))
	if !first.IsValid() {
		return
	}
	trace.SpanFromContext(ctx).AddLink(trace.Link{SpanContext: first})
}
