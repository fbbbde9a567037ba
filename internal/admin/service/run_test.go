package service_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	oteltrace "go.opentelemetry.io/otel/trace"

	"github.com/jitprov/jitprov/events"
	"github.com/jitprov/jitprov/internal/admin/authn"
	"github.com/jitprov/jitprov/internal/admin/service"
	"github.com/jitprov/jitprov/internal/provisioner"
	"github.com/jitprov/jitprov/internal/store"
	"github.com/jitprov/jitprov/internal/store/postgres"
	"github.com/jitprov/jitprov/internal/testenv"
)

// start runs the service on s and returns its base URL and its end.
func start(t *testing.T, s *postgres.Store) (string, func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	addr := make(chan net.Addr, 1)
	done := make(chan error, 1)
	go func() {
		done <- service.Run(ctx, service.Config{Addr: "127.0.0.1:0", ShutdownTimeout: 2 * time.Second},
			service.Deps{Store: s, Authn: authn.New(authn.Config{Store: s}), Logger: testenv.Logger(t), Listening: func(a net.Addr) { addr <- a }})
	}()
	select {
	case a := <-addr:
		return "http://" + a.String(), func() error { cancel(); return <-done }
	case err := <-done:
		cancel()
		t.Fatalf("Run: %v", err)
	}
	return "", nil
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b := new(strings.Builder)
	_, _ = io.Copy(b, resp.Body)
	return resp.StatusCode, b.String()
}

// The API answers once the database does, and the service stops cleanly.
func TestRun(t *testing.T) {
	s, _ := testenv.Store(t)
	base, stop := start(t, s)
	deadline := time.Now().Add(10 * time.Second)
	for {
		code, body := get(t, base+"/api/v1/organizations")
		if code == http.StatusUnauthorized && strings.Contains(body, `"unauthorized"`) {
			break
		}
		if code != http.StatusServiceUnavailable || time.Now().After(deadline) {
			t.Fatalf("GET /api/v1/organizations: %d %s", code, body)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if code, _ := get(t, base+"/api/v1/openapi.yaml"); code != 200 {
		t.Errorf("the OpenAPI document: %d", code)
	}
	if err := stop(); err != nil {
		t.Errorf("stop: %v", err)
	}
}

// While the database does not answer, the service is up and says it is
// starting: 503 unavailable, as JSON.
func TestRunWaitsForTheDatabase(t *testing.T) {
	s, err := postgres.Open(context.Background(), "postgres://jitprov@127.0.0.1:1/jitprov?connect_timeout=1", postgres.Options{Lazy: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	base, stop := start(t, s)
	code, body := get(t, base+"/api/v1/organizations")
	if code != http.StatusServiceUnavailable || !strings.Contains(body, `"unavailable"`) {
		t.Errorf("starting: %d %s", code, body)
	}
	if err := stop(); err != nil {
		t.Errorf("stop while starting: %v", err)
	}
}

// The service expires role reviews left unanswered longer than
// ReviewExpiry, as the system.
func TestRunExpiresOldReviews(t *testing.T) {
	s, _ := testenv.Store(t)
	ctx := t.Context()
	if err := s.ApplyOrganizations(ctx, []store.Organization{{ID: "acme", Name: "Acme", MaxSeats: 5, Roles: []string{"member", "admin"},
		DefaultRole: "member", JITRoleCeiling: "member", UpdatePolicy: store.PreferIdP, LinkByEmail: store.LinkNever}},
		[]store.Connection{{OrganizationID: "acme", ID: "idp", Protocol: "saml"}}); err != nil {
		t.Fatal(err)
	}
	res, err := provisioner.NewDecider(s, testenv.Logger(t)).Decide(ctx, "login-1", events.Identity{OrganizationID: "acme",
		ConnectionID: "idp", Protocol: events.ProtocolSAML, ExternalID: "ann", Roles: []string{"admin"}, AuthenticatedAt: time.Now()})
	if err != nil || res.RoleReview == nil {
		t.Fatalf("a login claiming admin: %+v, %v; want a review", res, err)
	}
	if _, err := s.Pool().Exec(ctx, `UPDATE role_reviews SET created_at = now() - interval '2 hours'`); err != nil {
		t.Fatal(err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- service.Run(runCtx, service.Config{Addr: "127.0.0.1:0", ReviewExpiry: time.Hour},
			service.Deps{Store: s, Authn: authn.New(authn.Config{Store: s}), Logger: testenv.Logger(t)})
	}()
	t.Cleanup(func() { cancel(); <-done })
	// The first check runs as soon as the service is ready.
	deadline := time.Now().Add(30 * time.Second)
	for {
		var status, by string
		if err := s.Pool().QueryRow(ctx, `SELECT status, coalesce(decided_by, '') FROM role_reviews WHERE id = $1`, res.RoleReview.ID).Scan(&status, &by); err != nil {
			t.Fatal(err)
		}
		if status == store.ReviewExpired {
			if by != "system:review-expiry" {
				t.Errorf("expired by %q, want the system", by)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the review is still %s after 30s", status)
		}
		select {
		case err := <-done:
			t.Fatalf("Run ended: %v", err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Each request is a server span of the tracer given, named after its
// route, in a trace of its own: a traceparent a client sends is only
// linked, never adopted (the API and console face the internet).
func TestRunTracesRequests(t *testing.T) {
	s, _ := testenv.Store(t)
	spans := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(spans))
	ctx, cancel := context.WithCancel(context.Background())
	addr := make(chan net.Addr, 1)
	done := make(chan error, 1)
	go func() {
		done <- service.Run(ctx, service.Config{Addr: "127.0.0.1:0", ShutdownTimeout: 2 * time.Second},
			service.Deps{Store: s, Authn: authn.New(authn.Config{Store: s}), Logger: testenv.Logger(t), Tracer: tp,
				Listening: func(a net.Addr) { addr <- a }})
	}()
	base := "http://" + (<-addr).String()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	// The service answers once its database does (503 until then).
	testenv.WaitHTTP(t, base+"/api/v1/organizations", http.StatusUnauthorized, "unauthorized", 10*time.Second, nil)
	spans.Reset()
	const clientTrace = "4bf92f3577b34da6a3ce929d0e0e4736"
	req, _ := http.NewRequest(http.MethodGet, base+"/api/v1/organizations", nil)
	req.Header.Set("traceparent", "00-"+clientTrace+"-00f067aa0ba902b7-01")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("GET /api/v1/organizations: %d, want 401", resp.StatusCode)
	}
	var found bool
	for _, sp := range spans.GetSpans() {
		if sp.Name != "GET /api/v1/organizations" {
			continue
		}
		found = true
		if sp.SpanKind != oteltrace.SpanKindServer {
			t.Errorf("%s: kind %v, want server", sp.Name, sp.SpanKind)
		}
		if sp.SpanContext.TraceID().String() == clientTrace || sp.Parent.IsValid() {
			t.Errorf("%s: adopted the client's trace (parent %v)", sp.Name, sp.Parent)
		}
		if len(sp.Links) != 1 || sp.Links[0].SpanContext.TraceID().String() != clientTrace {
			t.Errorf("%s: links %v, want the client's span", sp.Name, sp.Links)
		}
	}
	if !found {
		var names []string
		for _, sp := range spans.GetSpans() {
			names = append(names, sp.Name)
		}
		t.Fatalf("no span GET /api/v1/organizations among %q", names)
	}
}
