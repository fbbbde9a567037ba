package telemetry_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/jitprov/jitprov/internal/telemetry"
)

// An outgoing request is a client span, child of the caller's span, that
// the server sees in traceparent; its URL is recorded as redacted.
func TestHTTPTransport(t *testing.T) {
	tests := []struct {
		name   string
		redact telemetry.Redact
		want   string
	}{
		{"without the query", telemetry.RedactQuery, "/metadata"},
		{"without the path", telemetry.RedactPath, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := make(chan string, 1)
			srv := httptest.NewServer(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
				got <- r.Header.Get("traceparent")
			}))
			defer srv.Close()
			spans := tracetest.NewInMemoryExporter()
			tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(spans))
			client := &http.Client{Transport: telemetry.HTTPTransport(nil, tp, "idp-metadata", tt.redact)}

			ctx, parent := tp.Tracer("test").Start(context.Background(), "caller")
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/metadata?key=s3cret-key", nil)
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			parent.End()

			var span sdktrace.ReadOnlySpan
			for _, s := range spans.GetSpans().Snapshots() {
				if s.Name() == "GET idp-metadata" {
					span = s
				}
			}
			if span == nil {
				t.Fatalf("no span \"GET idp-metadata\" among %v", spans.GetSpans())
			}
			if span.SpanKind() != trace.SpanKindClient || span.Parent().SpanID() != parent.SpanContext().SpanID() {
				t.Errorf("span of kind %s, parent %s; want a client span under the caller's %s", span.SpanKind(), span.Parent().SpanID(), parent.SpanContext().SpanID())
			}
			sc := trace.SpanContextFromContext(propagation.TraceContext{}.Extract(context.Background(), propagation.MapCarrier{"traceparent": <-got}))
			if sc.SpanID() != span.SpanContext().SpanID() || sc.TraceID() != span.SpanContext().TraceID() {
				t.Errorf("the server saw span %s of trace %s, want the client span %s", sc.SpanID(), sc.TraceID(), span.SpanContext().SpanID())
			}
			for _, a := range span.Attributes() {
				if strings.Contains(a.Value.Emit(), "s3cret") {
					t.Errorf("attribute %s records the query: %q", a.Key, a.Value.Emit())
				}
				if a.Key == "url.full" && a.Value.AsString() != srv.URL+tt.want {
					t.Errorf("url.full = %q, want %q", a.Value.AsString(), srv.URL+tt.want)
				}
			}
		})
	}
}

// The wrapped transport still decides: a refusal of the base transport
// (an address check, say) is the request's error.
func TestHTTPTransportKeepsTheBaseTransport(t *testing.T) {
	refused := errors.New("refused by policy")
	base := roundTripFunc(func(*http.Request) (*http.Response, error) { return nil, refused })
	client := &http.Client{Transport: telemetry.HTTPTransport(base, nil, "webhook", telemetry.RedactPath)}
	_, err := client.Get("http://192.0.2.1/hook")
	if !errors.Is(err, refused) {
		t.Errorf("got %v, want the base transport's refusal", err)
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
