// Package telemetry sets up what every jitprov service reports: structured
// logs (log/slog) carrying the trace and span ids of the request at hand,
// and OpenTelemetry traces and metrics exported over OTLP when the standard
// OTEL_* variables ask for it. Metrics are also always served to Prometheus
// (Providers.Metrics, the /metrics handler each service mounts).
package telemetry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetrichttp"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.37.0"
	"go.opentelemetry.io/otel/trace"
)

// NewLogger returns a logger writing to w in format "json" or "text" at
// level "debug", "info", "warn" or "error". Each record logged with a
// context carries that context's trace_id and span_id.
func NewLogger(w io.Writer, level, format string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("log level %q: want debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: lv}
	var h slog.Handler
	switch strings.ToLower(format) {
	case "json", "":
		h = slog.NewJSONHandler(w, opts)
	case "text":
		h = slog.NewTextHandler(w, opts)
	default:
		return nil, fmt.Errorf("log format %q: want json or text", format)
	}
	return slog.New(newTraceHandler(h)), nil
}

// traceHandler copies the trace context of each record's context into it,
// at the top level even below WithGroup: it keeps the handler without
// groups and replays the groups (and attributes added inside them) after
// adding the ids.
type traceHandler struct {
	base slog.Handler                      // before any group
	ops  []func(slog.Handler) slog.Handler // WithGroup/WithAttrs since the first group
	h    slog.Handler                      // base with ops applied
}

func newTraceHandler(h slog.Handler) traceHandler { return traceHandler{base: h, h: h} }

func (t traceHandler) Enabled(ctx context.Context, l slog.Level) bool { return t.h.Enabled(ctx, l) }

func (t traceHandler) Handle(ctx context.Context, r slog.Record) error {
	sc := trace.SpanContextFromContext(ctx)
	if !sc.IsValid() {
		return t.h.Handle(ctx, r)
	}
	h := t.base.WithAttrs([]slog.Attr{slog.String("trace_id", sc.TraceID().String()), slog.String("span_id", sc.SpanID().String())})
	for _, op := range t.ops {
		h = op(h)
	}
	return h.Handle(ctx, r)
}

func (t traceHandler) WithAttrs(as []slog.Attr) slog.Handler {
	if len(t.ops) == 0 {
		return newTraceHandler(t.base.WithAttrs(as))
	}
	return t.with(func(h slog.Handler) slog.Handler { return h.WithAttrs(as) })
}

func (t traceHandler) WithGroup(name string) slog.Handler {
	return t.with(func(h slog.Handler) slog.Handler { return h.WithGroup(name) })
}

func (t traceHandler) with(op func(slog.Handler) slog.Handler) traceHandler {
	return traceHandler{base: t.base, ops: append(slices.Clip(t.ops), op), h: op(t.h)}
}

// Providers are a service's tracer and meter providers.
type Providers struct {
	Tracer trace.TracerProvider
	Meter  metric.MeterProvider
	// Metrics serves the meter's instruments, and the Go runtime's and the
	// process's, in the Prometheus text format: each service mounts it at
	// GET /metrics on an internal listener.
	Metrics  http.Handler
	shutdown []func(context.Context) error
}

// Shutdown flushes and stops the exporters.
func (p *Providers) Shutdown(ctx context.Context) error {
	var errs []error
	for _, f := range p.shutdown {
		errs = append(errs, f(ctx))
	}
	return errors.Join(errs...)
}

// Flush shuts the providers down once ctx is done or the command returns,
// exporting what is buffered within five seconds; a failure is logged.
// Use it as `defer tel.Flush(ctx, log)`.
func (p *Providers) Flush(ctx context.Context, log *slog.Logger) {
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := p.Shutdown(sctx); err != nil {
		log.Warn("telemetry shutdown", "err", err)
	}
}

// Setup builds the providers of service. Spans are always recorded (so that
// trace context flows through every event) and exported over OTLP/HTTP when
// OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is set;
// metrics likewise with OTEL_EXPORTER_OTLP_METRICS_ENDPOINT. The exporters
// read the other standard OTEL_* variables themselves. Metrics are always
// recorded too, and served to Prometheus by Providers.Metrics, beside the
// OTLP push when it is on: two readers of one meter provider.
func Setup(ctx context.Context, service string) (*Providers, error) {
	// OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES win over the default
	// service name.
	res, err := resource.New(ctx, resource.WithAttributes(semconv.ServiceName(service)),
		resource.WithFromEnv(), resource.WithTelemetrySDK(), resource.WithHost())
	if err != nil {
		return nil, fmt.Errorf("telemetry: resource: %w", err)
	}
	p := &Providers{}
	topts := []sdktrace.TracerProviderOption{sdktrace.WithResource(res), sdktrace.WithRawSpanLimits(spanLimits())}
	if env("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") {
		exp, err := otlptracehttp.New(ctx)
		if err != nil {
			return nil, fmt.Errorf("telemetry: OTLP trace exporter: %w", err)
		}
		topts = append(topts, sdktrace.WithBatcher(exp))
	}
	tp := sdktrace.NewTracerProvider(topts...)
	p.Tracer = tp
	p.shutdown = append(p.shutdown, tp.Shutdown)

	readers := []sdkmetric.Option{sdkmetric.WithResource(res)}
	if env("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT") {
		exp, err := otlpmetrichttp.New(ctx)
		if err != nil {
			_ = p.Shutdown(ctx)
			return nil, fmt.Errorf("telemetry: OTLP metric exporter: %w", err)
		}
		readers = append(readers, sdkmetric.WithReader(sdkmetric.NewPeriodicReader(exp)))
	}
	mp, h, err := NewPrometheusMeter(readers...)
	if err != nil {
		_ = p.Shutdown(ctx)
		return nil, err
	}
	p.Meter, p.Metrics = mp, h
	p.shutdown = append(p.shutdown, mp.Shutdown)
	return p, nil
}

// NewPrometheusMeter returns a meter provider whose instruments are read by
// a Prometheus exporter, besides any reader in opts (the OTLP push), and
// the handler that serves them with the Go runtime's and the process's
// metrics. The exporter has a registry of its own, never the global
// default, so two providers in one process (tests) do not collide.
func NewPrometheusMeter(opts ...sdkmetric.Option) (*sdkmetric.MeterProvider, http.Handler, error) {
	reg := prometheus.NewRegistry()
	if err := reg.Register(collectors.NewGoCollector()); err != nil {
		return nil, nil, fmt.Errorf("telemetry: Go runtime metrics: %w", err)
	}
	if err := reg.Register(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})); err != nil {
		return nil, nil, fmt.Errorf("telemetry: process metrics: %w", err)
	}
	exp, err := otelprom.New(otelprom.WithRegisterer(reg))
	if err != nil {
		return nil, nil, fmt.Errorf("telemetry: Prometheus exporter: %w", err)
	}
	mp := sdkmetric.NewMeterProvider(append([]sdkmetric.Option{sdkmetric.WithCardinalityLimit(CardinalityLimit)},
		append(slices.Clip(opts), sdkmetric.WithReader(exp))...)...)
	// Two scrapes at a time at most (Prometheus's HA pair); more are
	// answered 503 at once rather than each running the gauges' reads
	// (the seat gauges query the database) side by side.
	h := promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg, ErrorHandling: promhttp.ContinueOnError,
		MaxRequestsInFlight: 2, Timeout: 10 * time.Second})
	return mp, h, nil
}

func env(names ...string) bool {
	for _, n := range names {
		if os.Getenv(n) != "" {
			return true
		}
	}
	return false
}

// CardinalityLimit bounds the label sets of each instrument. jitprov's
// labels take values fixed in code, or one per organisation and
// connection; should a label ever take values from outside (a message's
// type, say), the instrument folds what is beyond the limit into one
// series marked otel.metric.overflow="true" instead of growing
// Prometheus's memory without bound.
const CardinalityLimit = 2000

// spanLimits are the SDK's defaults (and the OTEL_SPAN_* and
// OTEL_ATTRIBUTE_* variables) with attribute values cut at 1024 bytes
// unless OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT says otherwise: a user agent
// or a forwarded-for header can be as long as a request's headers may be,
// and 2,048 queued spans of those would hold hundreds of megabytes.
func spanLimits() sdktrace.SpanLimits {
	l := sdktrace.NewSpanLimits()
	if os.Getenv("OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT") == "" && os.Getenv("OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT") == "" {
		l.AttributeValueLengthLimit = 1024
	}
	return l
}
