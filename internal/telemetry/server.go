package telemetry

import (
	"net/http"
	"strings"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	noopmetric "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// ServerHandler runs each request to next in a server span (otelhttp)
// recorded by tp, so that its logs carry a trace id and what it publishes
// continues the same trace. jitprov's HTTP services face browsers and
// IdPs: each request starts a trace of its own, and a trace context a
// client sends (W3C traceparent) is only linked (WithPublicEndpoint). Spans are named
// after the route the mux matched (SpanName). otelhttp records no metrics
// here: the services measure their requests themselves, by route pattern.
func ServerHandler(next http.Handler, tp trace.TracerProvider) http.Handler {
	return otelhttp.NewHandler(next, "", otelhttp.WithTracerProvider(tp),
		otelhttp.WithMeterProvider(noopmetric.NewMeterProvider()), otelhttp.WithPublicEndpoint(),
		otelhttp.WithPropagators(propagation.TraceContext{}), otelhttp.WithSpanNameFormatter(SpanName))
}

// SpanName names a request's span after the route the mux matched, such as
// "POST /saml/{org}/{conn}/acs", and after its method alone until then or
// when no route matches: a name per path would make one per organisation
// and connection, and one per probe of a scanner.
func SpanName(_ string, r *http.Request) string {
	switch {
	case r.Pattern == "":
		return r.Method
	case strings.HasPrefix(r.Pattern, "/"):
		return r.Method + " " + r.Pattern
	}
	return r.Pattern
}
