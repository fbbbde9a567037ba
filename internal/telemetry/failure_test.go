package telemetry

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

type sqlErr struct{ code string }

func (e sqlErr) Error() string {
	return "duplicate key value violates unique constraint: (ada@example.com)"
}
func (e sqlErr) SQLState() string { return e.code }

func TestErrorType(t *testing.T) {
	for _, c := range []struct {
		err  error
		want string
	}{
		{fmt.Errorf("sending to ada@example.com: %w", context.DeadlineExceeded), "timeout"},
		{fmt.Errorf("read: %w", os.ErrDeadlineExceeded), "timeout"},
		{fmt.Errorf("stopping: %w", context.Canceled), "canceled"},
		{fmt.Errorf("insert identity %q: %w", "ada@example.com", sqlErr{"23505"}), "sqlstate 23505"},
		{fmt.Errorf("webhook answered 500: %w", errors.New("body: secret stuff")), "*errors.errorString"},
		{nil, ""},
	} {
		if got := ErrorType(c.err); got != c.want {
			t.Errorf("ErrorType(%v) = %q, want %q", c.err, got, c.want)
		}
	}
}

// A failure recorded on a span says what failed and its kind, never the
// error's message, which may carry personal data.
func TestRecordFailureKeepsTheMessageOut(t *testing.T) {
	spans := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(spans))
	_, span := tp.Tracer("t").Start(context.Background(), "deliver")
	RecordFailure(span, fmt.Errorf("sending to ada@example.com: %w", errors.New("550 no such user")), "not delivered")
	span.End()
	got := spans.GetSpans()[0]
	if got.Status.Description != "not delivered" {
		t.Errorf("status %q", got.Status.Description)
	}
	text := fmt.Sprint(got.Attributes, got.Events, got.Status)
	if strings.Contains(text, "ada@example.com") || strings.Contains(text, "550") {
		t.Errorf("the span holds the error's message: %s", text)
	}
	if !strings.Contains(text, "error.type") {
		t.Errorf("no error.type: %s", text)
	}
}
