package telemetry

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

// A server span holds the route, not the path a client sent; the peer,
// not a forwarded-for header; a standard method or _OTHER — whatever the
// client sends.
func TestServerHandlerKeepsClientChoicesOut(t *testing.T) {
	spans := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(spans))
	mux := http.NewServeMux()
	mux.HandleFunc("DELETE /api/v1/organizations/{org}/identities/{conn}/{external_id}", func(http.ResponseWriter, *http.Request) {})
	mux.HandleFunc("GET /x", func(http.ResponseWriter, *http.Request) {})
	h := ServerHandler(mux, tp)
	for _, c := range []struct {
		method, path, wantName, wantPath, wantMethod string
	}{
		{"DELETE", "/api/v1/organizations/acme/identities/okta/ada@example.com", "DELETE /api/v1/organizations/{org}/identities/{conn}/{external_id}",
			"/api/v1/organizations/{org}/identities/{conn}/{external_id}", "DELETE"},
		{"ORG_ACME_SECRETISH", "/x", "_OTHER", "unmatched", "_OTHER"},
		{"GET", "/no/such/ada@example.com", "GET", "unmatched", "GET"},
	} {
		spans.Reset()
		req := httptest.NewRequest(c.method, c.path, nil)
		req.RemoteAddr = "192.0.2.7:4711"
		req.Header.Set("X-Forwarded-For", "6.6.6.6")
		h.ServeHTTP(httptest.NewRecorder(), req)
		got := spans.GetSpans()
		if len(got) != 1 {
			t.Fatalf("%s %s: %d spans", c.method, c.path, len(got))
		}
		attrs := map[attribute.Key]string{}
		for _, kv := range got[0].Attributes {
			attrs[kv.Key] = kv.Value.Emit()
		}
		if got[0].Name != c.wantName || attrs["url.path"] != c.wantPath || attrs["client.address"] != "192.0.2.7" ||
			attrs["http.request.method"] != c.wantMethod {
			t.Errorf("%s %s: span %q, url.path %q, client.address %q, method %q", c.method, c.path, got[0].Name,
				attrs["url.path"], attrs["client.address"], attrs["http.request.method"])
		}
		for k, v := range attrs {
			if strings.Contains(v, "ada@example.com") || strings.Contains(v, "SECRETISH") || strings.Contains(v, "6.6.6.6") {
				t.Errorf("%s %s: attribute %s = %q holds what the client sent", c.method, c.path, k, v)
			}
		}
	}
}
