package telemetry_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/jitprov/jitprov/internal/telemetry"
	"github.com/jitprov/jitprov/internal/testenv"
)

func TestNewLoggerRejectsBadSettings(t *testing.T) {
	tests := []struct {
		name          string
		level, format string
		want          []string
	}{
		{"unknown level", "verbose", "json", []string{`"verbose"`, "level", "debug, info, warn or error"}},
		{"level typo", "inf", "json", []string{`"inf"`, "level"}},
		{"unknown format", "info", "xml", []string{`"xml"`, "format", "json or text"}},
		{"logfmt", "info", "logfmt", []string{`"logfmt"`, "format"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			log, err := telemetry.NewLogger(io.Discard, tc.level, tc.format)
			if err == nil {
				t.Fatalf("NewLogger(%q, %q) = %v, nil; want an error", tc.level, tc.format, log)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("NewLogger(%q, %q) = %q, want it to contain %q", tc.level, tc.format, err, w)
				}
			}
		})
	}
}

func TestNewLoggerLevelsAndFormats(t *testing.T) {
	tests := []struct {
		level, format string
		// which of debug, info, warn, error are written
		written [4]bool
		json    bool
	}{
		{"debug", "json", [4]bool{true, true, true, true}, true},
		{"info", "json", [4]bool{false, true, true, true}, true},
		{"warn", "text", [4]bool{false, false, true, true}, false},
		{"error", "text", [4]bool{false, false, false, true}, false},
		{"INFO", "JSON", [4]bool{false, true, true, true}, true},
		{"info", "", [4]bool{false, true, true, true}, true},
	}
	for _, tc := range tests {
		t.Run(tc.level+"/"+tc.format, func(t *testing.T) {
			var buf bytes.Buffer
			log, err := telemetry.NewLogger(&buf, tc.level, tc.format)
			if err != nil {
				t.Fatalf("NewLogger: %v", err)
			}
			levels := []slog.Level{slog.LevelDebug, slog.LevelInfo, slog.LevelWarn, slog.LevelError}
			for i, lv := range levels {
				buf.Reset()
				log.Log(context.Background(), lv, "hello", "n", i)
				if got := buf.Len() > 0; got != tc.written[i] {
					t.Errorf("%s record written = %v, want %v", lv, got, tc.written[i])
					continue
				}
				if !tc.written[i] {
					continue
				}
				var m map[string]any
				isJSON := json.Unmarshal(buf.Bytes(), &m) == nil
				if isJSON != tc.json {
					t.Errorf("record %q: JSON = %v, want %v", buf.String(), isJSON, tc.json)
				}
				if !strings.Contains(buf.String(), "hello") {
					t.Errorf("record %q lacks its message", buf.String())
				}
			}
		})
	}
}

func spanContext(t *testing.T) trace.SpanContext {
	t.Helper()
	tid, err := trace.TraceIDFromHex("4bf92f3577b34da6a3ce929d0e0e4736")
	if err != nil {
		t.Fatal(err)
	}
	sid, err := trace.SpanIDFromHex("00f067aa0ba902b7")
	if err != nil {
		t.Fatal(err)
	}
	return trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid, TraceFlags: trace.FlagsSampled, Remote: true})
}

func decodeRecord(t *testing.T, b []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(bytes.TrimSpace(b), &m); err != nil {
		t.Fatalf("record %q is not one JSON object: %v", b, err)
	}
	return m
}

func TestLoggerCarriesTraceContext(t *testing.T) {
	sc := spanContext(t)
	withSpan := trace.ContextWithSpanContext(context.Background(), sc)
	invalid := trace.ContextWithSpanContext(context.Background(), trace.SpanContext{})
	tests := []struct {
		name      string
		ctx       context.Context
		log       func(*slog.Logger, context.Context)
		wantTrace bool
	}{
		{"InfoContext with span", withSpan, func(l *slog.Logger, ctx context.Context) { l.InfoContext(ctx, "m", "k", "v") }, true},
		{"ErrorContext with span", withSpan, func(l *slog.Logger, ctx context.Context) { l.ErrorContext(ctx, "m") }, true},
		{"Log with span", withSpan, func(l *slog.Logger, ctx context.Context) { l.Log(ctx, slog.LevelWarn, "m") }, true},
		{"With attrs and span", withSpan, func(l *slog.Logger, ctx context.Context) {
			l.With("component", "relay").InfoContext(ctx, "m")
		}, true},
		{"no span", context.Background(), func(l *slog.Logger, ctx context.Context) { l.InfoContext(ctx, "m") }, false},
		{"invalid span context", invalid, func(l *slog.Logger, ctx context.Context) { l.InfoContext(ctx, "m") }, false},
		{"without context", withSpan, func(l *slog.Logger, _ context.Context) { l.Info("m") }, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			log, err := telemetry.NewLogger(&buf, "info", "json")
			if err != nil {
				t.Fatal(err)
			}
			tc.log(log, tc.ctx)
			rec := decodeRecord(t, buf.Bytes())
			traceID, hasTrace := rec["trace_id"]
			spanID, hasSpan := rec["span_id"]
			if !tc.wantTrace {
				if hasTrace || hasSpan {
					t.Errorf("record %s carries trace_id/span_id without a span", buf.Bytes())
				}
				return
			}
			if traceID != sc.TraceID().String() || spanID != sc.SpanID().String() {
				t.Errorf("record %s: trace_id %v span_id %v, want %s %s", buf.Bytes(), traceID, spanID, sc.TraceID(), sc.SpanID())
			}
			if rec["msg"] != "m" {
				t.Errorf("record %s lost its message", buf.Bytes())
			}
		})
	}
}

func TestLoggerCarriesTraceContextInTextFormat(t *testing.T) {
	sc := spanContext(t)
	var buf bytes.Buffer
	log, err := telemetry.NewLogger(&buf, "info", "text")
	if err != nil {
		t.Fatal(err)
	}
	log.InfoContext(trace.ContextWithSpanContext(context.Background(), sc), "m")
	for _, w := range []string{"trace_id=" + sc.TraceID().String(), "span_id=" + sc.SpanID().String()} {
		if !strings.Contains(buf.String(), w) {
			t.Errorf("record %q lacks %s", buf.String(), w)
		}
	}
}

// clearOTEL unsets every variable that would make Setup export.
func clearOTEL(t *testing.T) {
	for _, v := range []string{"OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
		"OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", "OTEL_EXPORTER_OTLP_PROTOCOL", "OTEL_EXPORTER_OTLP_HEADERS",
		"OTEL_TRACES_SAMPLER", "OTEL_TRACES_SAMPLER_ARG", "OTEL_SDK_DISABLED", "OTEL_RESOURCE_ATTRIBUTES", "OTEL_SERVICE_NAME"} {
		t.Setenv(v, "") // restored when t ends
		if err := os.Unsetenv(v); err != nil {
			t.Fatal(err)
		}
	}
}

func TestSetupWithoutExporters(t *testing.T) {
	clearOTEL(t)
	ctx := context.Background()
	p, err := telemetry.Setup(ctx, "jitprov-test")
	if err != nil {
		t.Fatalf("Setup: %v", err)
	}
	if p.Tracer == nil || p.Meter == nil {
		t.Fatalf("Setup returned Tracer %v, Meter %v", p.Tracer, p.Meter)
	}
	spanCtx, span := p.Tracer.Tracer("test").Start(ctx, "op")
	if !span.SpanContext().IsValid() {
		t.Errorf("span context %v is not valid", span.SpanContext())
	}
	if !span.IsRecording() {
		t.Error("span is not recording")
	}
	_, child := p.Tracer.Tracer("test").Start(spanCtx, "child")
	if child.SpanContext().TraceID() != span.SpanContext().TraceID() {
		t.Errorf("child trace %s, parent %s", child.SpanContext().TraceID(), span.SpanContext().TraceID())
	}
	child.End()
	span.End()

	// The logger and the tracer together: a record carries the live span.
	var buf bytes.Buffer
	log, err := telemetry.NewLogger(&buf, "info", "json")
	if err != nil {
		t.Fatal(err)
	}
	log.InfoContext(spanCtx, "m")
	rec := decodeRecord(t, buf.Bytes())
	if rec["trace_id"] != span.SpanContext().TraceID().String() || rec["span_id"] != span.SpanContext().SpanID().String() {
		t.Errorf("record %s does not carry span %v", buf.Bytes(), span.SpanContext())
	}

	// Without an endpoint, metrics are served to Prometheus only.
	c, err := p.Meter.Meter("test").Int64Counter("c")
	if err != nil {
		t.Fatal(err)
	}
	c.Add(ctx, 1)
	if v, ok := scrape(t, p).Value("c_total"); v != 1 {
		t.Errorf("/metrics: c_total = %v (found: %v), want 1", v, ok)
	}

	sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := p.Shutdown(sctx); err != nil {
		t.Errorf("Shutdown = %v, want nil", err)
	}
}

// scrape reads p's /metrics handler as Prometheus would.
func scrape(t *testing.T, p *telemetry.Providers) testenv.Scrape {
	t.Helper()
	srv := httptest.NewServer(p.Metrics)
	defer srv.Close()
	return testenv.ScrapeMetrics(t, srv.URL)
}

// Two providers in one process (the services of jitprov dev, tests) each
// serve their own instruments: the exporter does not use Prometheus's
// global registry.
func TestPrometheusMetersAreSeparate(t *testing.T) {
	mp1, h1, err := telemetry.NewPrometheusMeter()
	if err != nil {
		t.Fatal(err)
	}
	mp2, h2, err := telemetry.NewPrometheusMeter()
	if err != nil {
		t.Fatal(err)
	}
	c1, _ := mp1.Meter("one").Int64Counter("one")
	c2, _ := mp2.Meter("two").Int64Counter("two")
	c1.Add(context.Background(), 1)
	c2.Add(context.Background(), 2)
	for _, tc := range []struct {
		h         http.Handler
		has, lack string
	}{{h1, "one_total", "two_total"}, {h2, "two_total", "one_total"}} {
		srv := httptest.NewServer(tc.h)
		s := testenv.ScrapeMetrics(t, srv.URL)
		srv.Close()
		if _, ok := s[tc.has]; !ok {
			t.Errorf("a provider's /metrics lacks its own %s", tc.has)
		}
		if _, ok := s[tc.lack]; ok {
			t.Errorf("a provider's /metrics shows the other's %s", tc.lack)
		}
		if _, ok := s["go_goroutines"]; !ok {
			t.Errorf("/metrics lacks the Go runtime's go_goroutines")
		}
	}
}

// otlpCollector is an OTLP/HTTP endpoint that accepts everything and
// remembers the paths it was sent to.
type otlpCollector struct {
	mu    sync.Mutex
	paths map[string]int
}

func (c *otlpCollector) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	_, _ = io.Copy(io.Discard, r.Body)
	c.mu.Lock()
	c.paths[r.URL.Path]++
	c.mu.Unlock()
	w.Header().Set("Content-Type", "application/x-protobuf")
	w.WriteHeader(http.StatusOK)
}

func (c *otlpCollector) count(path string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.paths[path]
}

func TestSetupExportsToTheOTLPEndpoint(t *testing.T) {
	tests := []struct {
		name        string
		env         func(url string) map[string]string
		wantTraces  bool
		wantMetrics bool
	}{
		{"common endpoint", func(u string) map[string]string {
			return map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": u}
		}, true, true},
		{"traces only", func(u string) map[string]string {
			return map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": u + "/v1/traces"}
		}, true, false},
		{"metrics only", func(u string) map[string]string {
			return map[string]string{"OTEL_EXPORTER_OTLP_METRICS_ENDPOINT": u + "/v1/metrics"}
		}, false, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			clearOTEL(t)
			col := &otlpCollector{paths: map[string]int{}}
			srv := httptest.NewServer(col)
			t.Cleanup(srv.Close)
			for k, v := range tc.env(srv.URL) {
				t.Setenv(k, v)
			}
			ctx := context.Background()
			p, err := telemetry.Setup(ctx, "jitprov-test")
			if err != nil {
				t.Fatalf("Setup: %v", err)
			}
			_, span := p.Tracer.Tracer("test").Start(ctx, "op")
			if !span.SpanContext().IsValid() {
				t.Error("span context is not valid")
			}
			span.End()
			c, err := p.Meter.Meter("test").Int64Counter("logins")
			if err != nil {
				t.Fatal(err)
			}
			c.Add(ctx, 3)
			// Prometheus reads the same instruments beside the OTLP push.
			s := scrape(t, p)
			if v, ok := s.Value("logins_total"); v != 3 {
				t.Errorf("/metrics: logins_total = %v (found: %v), want 3", v, ok)
			}
			if v, ok := s.Value("target_info", "service_name", "jitprov-test"); v != 1 {
				t.Errorf("/metrics: target_info{service_name=\"jitprov-test\"} = %v (found: %v), want 1", v, ok)
			}

			sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			if err := p.Shutdown(sctx); err != nil {
				t.Fatalf("Shutdown = %v, want nil", err)
			}
			if got := col.count("/v1/traces") > 0; got != tc.wantTraces {
				t.Errorf("traces exported = %v, want %v (paths %v)", got, tc.wantTraces, col.paths)
			}
			if got := col.count("/v1/metrics") > 0; got != tc.wantMetrics {
				t.Errorf("metrics exported = %v, want %v (paths %v)", got, tc.wantMetrics, col.paths)
			}
		})
	}
}

// Log pipelines correlate on top-level trace_id/span_id; a logger with a
// group must not move them into the group.
func TestLoggerTraceContextStaysTopLevelInGroups(t *testing.T) {
	sc := spanContext(t)
	var buf bytes.Buffer
	log, err := telemetry.NewLogger(&buf, "info", "json")
	if err != nil {
		t.Fatal(err)
	}
	log.WithGroup("req").InfoContext(trace.ContextWithSpanContext(context.Background(), sc), "m", "path", "/acs")
	rec := decodeRecord(t, buf.Bytes())
	if rec["trace_id"] != sc.TraceID().String() || rec["span_id"] != sc.SpanID().String() {
		t.Errorf("record %s: want top-level trace_id %s and span_id %s", buf.Bytes(), sc.TraceID(), sc.SpanID())
	}
	if g, ok := rec["req"].(map[string]any); !ok || g["path"] != "/acs" {
		t.Errorf("record %s lost its group", buf.Bytes())
	}
}
