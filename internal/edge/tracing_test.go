package edge_test

import (
	"net/http"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

// Each request runs in a server span named after its route, not its path
// (which names organisations and connections); the ACS span carries the
// sign-in's organisation and connection, and the provisioner's decision
// of the login it publishes continues its trace. A trace context the browser sends starts no trace
// of ours: the edge is a public endpoint.
func TestRequestSpans(t *testing.T) {
	spans := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(spans))
	t.Cleanup(func() { _ = tp.Shutdown(t.Context()) })
	w := newWorld(t, 10, true, withTracer(tp))
	w.idp.signsIn(person("00u-ada", "ada@acme.example"))

	b := newBrowser(t)
	if resp, _ := login(t, b, w.edgeURL, "/app"); resp.Status != http.StatusSeeOther {
		t.Fatalf("ACS %d %s", resp.Status, resp.Body)
	}
	foreign := "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, w.edgeURL+"/healthz", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("traceparent", foreign)
	if p := b.Do(req); p.Status != http.StatusOK {
		t.Fatalf("healthz %d", p.Status)
	}
	if p := b.Get(w.edgeURL + "/wp-login.php"); p.Status != http.StatusNotFound {
		t.Fatalf("unknown path %d, want 404", p.Status)
	}

	byName := map[string]sdktrace.ReadOnlySpan{}
	for _, s := range spans.GetSpans().Snapshots() {
		if s.SpanKind() == trace.SpanKindServer {
			byName[s.Name()] = s
		}
	}
	tests := []struct {
		name   string
		status int
		attrs  map[attribute.Key]attribute.Value
	}{
		{name: "GET /saml/{org}/{conn}/login", status: http.StatusFound},
		{name: "POST /saml/{org}/{conn}/acs", status: http.StatusSeeOther, attrs: map[attribute.Key]attribute.Value{
			"jitprov.org": attribute.StringValue("acme"), "jitprov.connection": attribute.StringValue("idp"),
			// The route, not the path: a path can name a person (admin API).
			"http.request.method": attribute.StringValue("POST"), "url.path": attribute.StringValue("/saml/{org}/{conn}/acs")}},
		{name: "GET /healthz", status: http.StatusOK},
		{name: "GET", status: http.StatusNotFound, attrs: map[attribute.Key]attribute.Value{ // no route matched
			"url.path": attribute.StringValue("unmatched")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, ok := byName[tt.name]
			if !ok {
				t.Fatalf("no server span %q; have %v", tt.name, names(byName))
			}
			got := map[attribute.Key]attribute.Value{}
			for _, kv := range s.Attributes() {
				got[kv.Key] = kv.Value
			}
			if code := got["http.response.status_code"]; code.AsInt64() != int64(tt.status) {
				t.Errorf("http.response.status_code = %v, want %d", code.Emit(), tt.status)
			}
			for k, want := range tt.attrs {
				if got[k] != want {
					t.Errorf("%s = %v, want %v", k, got[k].Emit(), want.Emit())
				}
			}
			if s.Parent().IsValid() {
				t.Errorf("parent %s, want a trace of its own", s.Parent().SpanID())
			}
		})
	}
	if s := byName["GET /healthz"]; s != nil {
		if s.SpanContext().TraceID().String() == "0af7651916cd43dd8448eb211c80319c" {
			t.Errorf("the request's span joined the trace the client sent")
		}
	}

	// The provisioner's decision continues the ACS span's trace: one
	// login, one trace, through the producer span of the login's publish.
	acs := byName["POST /saml/{org}/{conn}/acs"]
	if acs == nil {
		return
	}
	// The ACS span links to the first leg, the redirect to the IdP.
	if first := byName["GET /saml/{org}/{conn}/login"]; first != nil {
		linked := false
		for _, l := range acs.Links() {
			linked = linked || l.SpanContext.SpanID() == first.SpanContext().SpanID()
		}
		if !linked {
			t.Errorf("the ACS span does not link to the redirect to the IdP (%s): links %v", first.SpanContext().SpanID(), acs.Links())
		}
	}
	var publish, decision sdktrace.ReadOnlySpan
	waitUntil(t, func() bool {
		for _, s := range spans.GetSpans().Snapshots() {
			switch {
			case s.Name() == "provision login":
				decision = s
			case s.Name() == "send login.first-seen" && s.SpanKind() == trace.SpanKindProducer:
				publish = s
			}
		}
		return decision != nil && publish != nil
	})
	if publish.SpanContext().TraceID() != acs.SpanContext().TraceID() || publish.Parent().SpanID() != acs.SpanContext().SpanID() {
		t.Errorf("publish span in trace %s under %s, want the ACS span's trace %s under it (%s)",
			publish.SpanContext().TraceID(), publish.Parent().SpanID(), acs.SpanContext().TraceID(), acs.SpanContext().SpanID())
	}
	if decision.SpanContext().TraceID() != acs.SpanContext().TraceID() || decision.Parent().SpanID() != publish.SpanContext().SpanID() {
		t.Errorf("provisioner span in trace %s under %s, want the ACS span's trace %s under the publish (%s)",
			decision.SpanContext().TraceID(), decision.Parent().SpanID(), acs.SpanContext().TraceID(), publish.SpanContext().SpanID())
	}
}

func names(spans map[string]sdktrace.ReadOnlySpan) []string {
	var out []string
	for n := range spans {
		out = append(out, n)
	}
	return out
}

// An OIDC login: the callback span links to the first leg, and the
// requests to the provider (discovery, token endpoint) are client spans
// under the edge's request spans, with the URL's query left out.
func TestOIDCSpans(t *testing.T) {
	spans := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(spans))
	t.Cleanup(func() { _ = tp.Shutdown(t.Context()) })
	w := newWorld(t, 10, true, withTracer(tp))
	o := addZitadelConnection(t, w)
	b := newBrowser(t)
	if resp := b.Get(oidcStartLogin(t, b, w, o, "/app")); resp.Status != http.StatusSeeOther {
		t.Fatalf("callback: %d %s", resp.Status, resp.Body)
	}
	got := spans.GetSpans().Snapshots()
	byID := map[trace.SpanID]sdktrace.ReadOnlySpan{}
	var start, callback sdktrace.ReadOnlySpan
	for _, s := range got {
		byID[s.SpanContext().SpanID()] = s
		switch s.Name() {
		case "GET /oidc/{org}/{conn}/login":
			start = s
		case "GET /oidc/{org}/{conn}/callback":
			callback = s
		}
	}
	if start == nil || callback == nil {
		t.Fatalf("no span of the login start or the callback")
	}
	linked := false
	for _, l := range callback.Links() {
		linked = linked || l.SpanContext.SpanID() == start.SpanContext().SpanID()
	}
	if !linked {
		t.Errorf("the callback span does not link to the login start")
	}
	var token bool
	for _, s := range got {
		if s.Name() != "POST oidc-provider" {
			continue
		}
		if s.SpanKind() != trace.SpanKindClient {
			t.Errorf("%q is a %s span, want client", s.Name(), s.SpanKind())
		}
		if s.Parent().SpanID() == callback.SpanContext().SpanID() {
			token = true
		}
		for _, a := range s.Attributes() {
			if a.Key == "url.full" && strings.Contains(a.Value.AsString(), "?") {
				t.Errorf("url.full %q keeps the query", a.Value.AsString())
			}
		}
	}
	if !token {
		t.Errorf("no token request span under the callback")
	}
}
