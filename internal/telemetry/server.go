package telemetry

import (
	"net"
	"net/http"
	"strings"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/attribute"
	noopmetric "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// ServerHandler runs each request to next in a server span (otelhttp)
// recorded by tp, so that its logs carry a trace id and what it publishes
// continues the same trace. jitprov's HTTP services face browsers and
// IdPs: each request starts a trace of its own, and a trace context a
// client sends (W3C traceparent) is only linked (WithPublicEndpoint).
// Spans are named after the route the mux matched (SpanName). otelhttp
// records no metrics here: the services measure their requests
// themselves, by route pattern.
//
// What a client chooses stays out of the span where it could be personal
// data or grow without bound: url.path is the matched route's pattern
// (an admin API path can hold an external id, often an email), or
// "unmatched"; client.address is the connection's peer, not an
// X-Forwarded-For anyone can write; an unknown method is "_OTHER".
func ServerHandler(next http.Handler, tp trace.TracerProvider) http.Handler {
	return otelhttp.NewHandler(routeOnly(next), "", otelhttp.WithTracerProvider(tp),
		otelhttp.WithMeterProvider(noopmetric.NewMeterProvider()), otelhttp.WithPublicEndpoint(),
		otelhttp.WithPropagators(propagation.TraceContext{}), otelhttp.WithSpanNameFormatter(SpanName))
}

// routeOnly overwrites, once next has run (and its mux has set
// r.Pattern), the attributes otelhttp took from the request as sent.
func routeOnly(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		next.ServeHTTP(w, r)
		span := trace.SpanFromContext(r.Context())
		if !span.IsRecording() {
			return
		}
		path := "unmatched"
		if r.Pattern != "" {
			_, path, _ = strings.Cut(r.Pattern, "/")
			path = "/" + path
		}
		peer, _, err := net.SplitHostPort(r.RemoteAddr)
		if err != nil {
			peer = r.RemoteAddr
		}
		span.SetAttributes(attribute.String("url.path", path), attribute.String("client.address", peer),
			attribute.String("http.request.method", method(r.Method)))
		if method(r.Method) != r.Method {
			span.SetAttributes(attribute.String("http.request.method_original", "_OTHER"))
		}
	})
}

// SpanName names a request's span after the route the mux matched, such as
// "POST /saml/{org}/{conn}/acs", and after its method alone until then or
// when no route matches: a name per path would make one per organisation
// and connection, and one per probe of a scanner. A method outside the
// standard ones is "_OTHER" (OpenTelemetry's convention): a client could
// send any token, and make a span name of each.
func SpanName(_ string, r *http.Request) string {
	switch {
	case r.Pattern == "":
		return method(r.Method)
	case strings.HasPrefix(r.Pattern, "/"):
		return method(r.Method) + " " + r.Pattern
	}
	return r.Pattern
}

func method(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete,
		http.MethodOptions, http.MethodConnect, http.MethodTrace:
		return m
	}
	return "_OTHER"
}
