package telemetry

import (
	"net/http"
	"net/url"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/attribute"
	noopmetric "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// Redact says how an outgoing request's URL is recorded in its span
// (url.full): a URL can be a credential (a Slack webhook's path is), or
// carry one in its query.
type Redact func(*url.URL) string

// Redactions of url.full.
var (
	// RedactQuery keeps scheme, host and path: an IdP's metadata, discovery,
	// JWKS or token URL, whose query may hold a key.
	RedactQuery Redact = func(u *url.URL) string { return (&url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path}).String() }
	// RedactPath keeps scheme and host: a webhook, whose path may be its
	// secret.
	RedactPath Redact = func(u *url.URL) string { return (&url.URL{Scheme: u.Scheme, Host: u.Host}).String() }
)

// HTTPTransport wraps base (nil: http.DefaultTransport) so that each
// request is a client span (otelhttp) named after its method and peer,
// such as "POST webhook", and carries the span's W3C trace context
// (traceparent) to the server. Spans are recorded by tp, or, when tp is
// nil, by the provider of the span in the request's context (none
// without one). url.full is recorded as redact makes it. The transport
// records no metrics. base keeps doing what it did (its timeouts, TLS
// settings, any dialer checks): it runs inside the span.
func HTTPTransport(base http.RoundTripper, tp trace.TracerProvider, peer string, redact Redact) http.RoundTripper {
	if base == nil {
		base = http.DefaultTransport
	}
	return otelhttp.NewTransport(redacting{next: base, redact: redact},
		otelhttp.WithTracerProvider(tp),
		otelhttp.WithMeterProvider(noopmetric.NewMeterProvider()),
		otelhttp.WithPropagators(propagation.TraceContext{}),
		otelhttp.WithSpanNameFormatter(func(_ string, r *http.Request) string { return r.Method + " " + peer }),
		otelhttp.WithSpanOptions(trace.WithAttributes(attribute.String("jitprov.http.peer", peer))))
}

// redacting overwrites the url.full otelhttp recorded from the whole URL
// before the request leaves: the span is in the request's context.
type redacting struct {
	next   http.RoundTripper
	redact Redact
}

func (t redacting) RoundTrip(r *http.Request) (*http.Response, error) {
	if span := trace.SpanFromContext(r.Context()); span.IsRecording() && r.URL != nil {
		redact := t.redact
		if redact == nil {
			redact = RedactQuery
		}
		span.SetAttributes(attribute.String("url.full", redact(r.URL)))
	}
	return t.next.RoundTrip(r)
}
