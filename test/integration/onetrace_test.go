package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	noopmetric "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/jitprov/jitprov/internal/devmode"
	"github.com/jitprov/jitprov/internal/telemetry"
	"github.com/jitprov/jitprov/internal/testenv"
)

// One SAML first login that ends in a seat alert is one trace, from the
// edge's ACS request to the webhook request, with the spans of every
// service in between: the whole pipeline in this process (jitprov dev on
// a real PostgreSQL, its embedded NATS and development IdP), recording
// into one in-memory exporter, and a webhook receiver that sees the
// traceparent.
func TestSAMLLoginToWebhookIsOneTrace(t *testing.T) {
	spans := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(spans))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })

	type delivery struct{ traceparent, body string }
	hooks := make(chan delivery, 10)
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var b bytes.Buffer
		_, _ = b.ReadFrom(r.Body)
		hooks <- delivery{traceparent: r.Header.Get("traceparent"), body: b.String()}
	}))
	t.Cleanup(receiver.Close)

	ports := testenv.FreePorts(t, 3)
	dir := t.TempDir()
	devURL := fmt.Sprintf("http://localhost:%d", ports[1])
	edgeURL := fmt.Sprintf("http://localhost:%d", ports[0])
	secret := filepath.Join(dir, "hook-secret")
	secretValue := fmt.Sprintf("whsec-%d", time.Now().UnixNano())
	if err := os.WriteFile(secret, []byte(secretValue), 0o600); err != nil {
		t.Fatal(err)
	}
	// Two seats, a warning at half of them: the first login takes the
	// first seat and raises seats.threshold-reached, which the notifier
	// posts at once to the receiver.
	orgs := fmt.Sprintf(`# jitprov dev template version 3
organizations:
  - id: demo-small
    name: Demo Small
    max_seats: 2
    seat_warning_percent: 50
    verified_domains: [small.example]
    connections:
      - id: devidp-saml
        protocol: saml
        settings:
          idp_metadata_url: %s/dev-idp/saml/metadata
          sp_entity_id: urn:jitprov:dev:demo-small:devidp-saml
          email_verified: true
          attributes: {email: email, given_name: given_name, family_name: family_name, display_name: name, groups: groups}
    notifications:
      admins: false
      webhooks:
        - id: receiver
          url: %s/hook
          secret_file: %s
`, devURL, receiver.URL, secret)
	data := filepath.Join(dir, "dev")
	if err := os.MkdirAll(data, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(data, "organizations.yaml"), []byte(orgs), 0o644); err != nil {
		t.Fatal(err)
	}
	logs := &testenv.Output{}
	log, err := telemetry.NewLogger(logs, "debug", "json")
	if err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- devmode.Run(ctx, devmode.Config{DataDir: data, EdgePort: ports[0], DevPort: ports[1], NATSPort: ports[2],
			DatabaseURL: testenv.NewDatabase(t), Logger: log, Tracer: tp, Meter: noopmetric.NewMeterProvider()})
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("jitprov dev: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Errorf("jitprov dev did not stop within 30s")
		}
	})
	testenv.WaitFor(t, 60*time.Second, "the edge ready", func() bool {
		resp, err := http.Get(edgeURL + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})

	// Alan signs in for the first time through SAML: the edge's login
	// page sends him to the IdP, whose answer posts itself to the ACS.
	b := testenv.NewBrowser(t)
	p := b.Get(edgeURL + "/saml/demo-small/devidp-saml/login")
	p = p.Click("Sign in as Alan Turing").Submit()
	if p.Status != http.StatusOK {
		t.Fatalf("the login ended with %d at %s:\n%s", p.Status, p.URL, p.Body)
	}
	var hook delivery
	select {
	case hook = <-hooks:
	case <-time.After(60 * time.Second):
		t.Fatalf("no webhook within 60s; logs:\n%s", logs.String())
	}
	if !strings.Contains(hook.body, "seats.threshold-reached") {
		t.Fatalf("the webhook got %s, want the seat alert", hook.body)
	}

	// The delivery span ends after the receiver answered.
	var got []sdktrace.ReadOnlySpan
	testenv.WaitFor(t, 30*time.Second, "the notification's delivery span", func() bool {
		got = spans.GetSpans().Snapshots()
		return find(got, "deliver notification", trace.SpanKindConsumer) != nil
	})
	acs := find(got, "POST /saml/{org}/{conn}/acs", trace.SpanKindServer)
	if acs == nil {
		t.Fatalf("no ACS server span among %s", names(got))
	}
	tid := acs.SpanContext().TraceID()
	in := inTrace(got, tid)
	must := func(name string, kind trace.SpanKind, parent sdktrace.ReadOnlySpan) sdktrace.ReadOnlySpan {
		t.Helper()
		s := find(in, name, kind)
		if s == nil {
			t.Fatalf("no %s span %q in the login's trace %s; it has %s", kind, name, tid, names(in))
		}
		if parent != nil && s.Parent().SpanID() != parent.SpanContext().SpanID() {
			t.Errorf("%q is a child of %s, want of %q (%s)", name, s.Parent().SpanID(), parent.Name(), parent.SpanContext().SpanID())
		}
		return s
	}
	publish := must("send login.first-seen", trace.SpanKindProducer, acs)
	provision := must("provision login", trace.SpanKindConsumer, publish)
	relayed := must("send seats.threshold-reached", trace.SpanKindProducer, provision)
	plan := must("plan alert", trace.SpanKindConsumer, relayed)
	job := must("send notification job", trace.SpanKindProducer, plan)
	deliver := must("deliver notification", trace.SpanKindConsumer, job)
	webhook := must("POST webhook", trace.SpanKindClient, deliver)
	t.Logf("the login's trace: %s", names(in))

	// The provisioner's statements are client spans under its span.
	var statements int
	for _, s := range in {
		if s.SpanKind() == trace.SpanKindClient && hasAttr(s, "db.query.text") {
			if !descends(in, s, provision) {
				t.Errorf("database span %q is not under the provisioner's span", s.Name())
			}
			statements++
		}
	}
	if statements == 0 {
		t.Errorf("no database span in the login's trace; it has %s", names(in))
	}
	if v := attr(publish, "messaging.system"); v != "nats" {
		t.Errorf("the publish has messaging.system %q, want nats", v)
	}
	if v := attr(publish, "messaging.destination.name"); v != "jit.login.first-seen.demo-small" {
		t.Errorf("the publish has messaging.destination.name %q", v)
	}
	if attr(relayed, "messaging.message.id") == "" {
		t.Error("the relay's publish has no messaging.message.id")
	}
	// The relay's batch is a trace of its own, linked to the writer.
	var batch sdktrace.ReadOnlySpan
	for _, s := range got {
		if s.Name() == "relay outbox" && linksTo(s, provision.SpanContext()) {
			batch = s
		}
	}
	if batch == nil {
		t.Error("no relay batch span linked to the provisioner's span")
	} else if !linksTo(relayed, batch.SpanContext()) {
		t.Error("the relay's publish does not link to its batch")
	}

	// The receiver saw the webhook span's trace context.
	sc := trace.SpanContextFromContext(propagation.TraceContext{}.Extract(context.Background(),
		propagation.MapCarrier{"traceparent": hook.traceparent}))
	if sc.TraceID() != tid || sc.SpanID() != webhook.SpanContext().SpanID() {
		t.Errorf("the webhook request carried traceparent %q, want trace %s span %s", hook.traceparent, tid, webhook.SpanContext().SpanID())
	}
	if u := attr(webhook, "url.full"); strings.Contains(u, "/hook") {
		t.Errorf("the webhook span records the URL's path: %q", u)
	}

	// The first leg (the redirect to the IdP) is a trace of its own,
	// linked from the ACS span.
	first := find(got, "GET /saml/{org}/{conn}/login", trace.SpanKindServer)
	if first == nil {
		t.Fatalf("no span of the redirect to the IdP among %s", names(got))
	}
	if !linksTo(acs, first.SpanContext()) {
		t.Errorf("the ACS span does not link to the first leg %s", first.SpanContext().SpanID())
	}

	// No secret in any span: the webhook's secret, the browser's cookies
	// (session, pending login), the SAML response.
	secrets := []string{secretValue}
	for _, u := range []string{edgeURL, devURL} {
		pu, _ := url.Parse(u)
		for _, c := range b.Client().Jar.Cookies(pu) {
			if len(c.Value) >= 16 {
				secrets = append(secrets, c.Value)
			}
		}
	}
	for _, s := range got {
		var values []string
		for _, a := range s.Attributes() {
			values = append(values, a.Value.Emit())
		}
		for _, e := range s.Events() {
			for _, a := range e.Attributes {
				values = append(values, a.Value.Emit())
			}
		}
		for _, v := range values {
			if strings.Contains(v, "SAMLResponse") || strings.Contains(v, "<saml") {
				t.Errorf("span %q records a SAML message: %.200s", s.Name(), v)
			}
			for _, sec := range secrets {
				if strings.Contains(v, sec) {
					t.Errorf("span %q records a secret (%.8s…)", s.Name(), sec)
				}
			}
		}
	}

	// The delivery's log line carries the alert's trace.
	if !logged(t, logs.String(), "alert delivered", tid.String()) {
		t.Errorf("no \"alert delivered\" log line with trace_id %s:\n%s", tid, logs.String())
	}
}

func find(spans []sdktrace.ReadOnlySpan, name string, kind trace.SpanKind) sdktrace.ReadOnlySpan {
	for _, s := range spans {
		if s.Name() == name && s.SpanKind() == kind {
			return s
		}
	}
	return nil
}

func inTrace(spans []sdktrace.ReadOnlySpan, id trace.TraceID) []sdktrace.ReadOnlySpan {
	var out []sdktrace.ReadOnlySpan
	for _, s := range spans {
		if s.SpanContext().TraceID() == id {
			out = append(out, s)
		}
	}
	return out
}

// descends reports whether s is below ancestor in spans.
func descends(spans []sdktrace.ReadOnlySpan, s, ancestor sdktrace.ReadOnlySpan) bool {
	byID := map[trace.SpanID]sdktrace.ReadOnlySpan{}
	for _, x := range spans {
		byID[x.SpanContext().SpanID()] = x
	}
	for p := s.Parent().SpanID(); p.IsValid(); {
		if p == ancestor.SpanContext().SpanID() {
			return true
		}
		x, ok := byID[p]
		if !ok {
			return false
		}
		p = x.Parent().SpanID()
	}
	return false
}

func linksTo(s sdktrace.ReadOnlySpan, sc trace.SpanContext) bool {
	for _, l := range s.Links() {
		if l.SpanContext.TraceID() == sc.TraceID() && l.SpanContext.SpanID() == sc.SpanID() {
			return true
		}
	}
	return false
}

func attr(s sdktrace.ReadOnlySpan, key string) string {
	for _, a := range s.Attributes() {
		if string(a.Key) == key {
			return a.Value.Emit()
		}
	}
	return ""
}

func hasAttr(s sdktrace.ReadOnlySpan, key string) bool {
	for _, a := range s.Attributes() {
		if string(a.Key) == key {
			return true
		}
	}
	return false
}

func names(spans []sdktrace.ReadOnlySpan) string {
	var out []string
	for _, s := range spans {
		out = append(out, fmt.Sprintf("%q (%s, trace %s)", s.Name(), s.SpanKind(), s.SpanContext().TraceID()))
	}
	return strings.Join(out, ", ")
}

// logged reports whether a JSON log line with msg carries trace_id id.
func logged(t *testing.T, logs, msg, id string) bool {
	t.Helper()
	for _, line := range strings.Split(logs, "\n") {
		var rec struct {
			Msg     string `json:"msg"`
			TraceID string `json:"trace_id"`
		}
		if json.Unmarshal([]byte(line), &rec) == nil && rec.Msg == msg && rec.TraceID == id {
			return true
		}
	}
	return false
}
