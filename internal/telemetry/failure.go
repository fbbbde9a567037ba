package telemetry

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

// RecordFailure marks span failed with the fixed description what and
// the attribute error.type: what kind of error err is, never its message.
// An error's message can carry what a span must not — a recipient's
// address, an external id (often an email), a webhook receiver's answer,
// a value PostgreSQL quotes back — and spans go to a collector and on to
// a tracing backend that need not be trusted with personal data. The
// message is in the log line written with the same context, which
// carries the span's trace_id.
func RecordFailure(span trace.Span, err error, what string) {
	span.SetStatus(codes.Error, what)
	span.SetAttributes(attribute.String("error.type", ErrorType(err)))
}

// ErrorType classifies err for error.type: "timeout", "canceled", a
// PostgreSQL SQLSTATE ("sqlstate 40001"), or the Go type of the innermost
// error ("*net.OpError", "*errors.errorString").
func ErrorType(err error) string {
	var sqlState interface{ SQLState() string }
	var ne net.Error
	switch {
	case err == nil:
		return ""
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded),
		errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	case errors.Is(err, context.Canceled):
		return "canceled"
	case errors.As(err, &sqlState) && sqlState.SQLState() != "":
		return "sqlstate " + sqlState.SQLState()
	}
	for {
		next := errors.Unwrap(err)
		if next == nil {
			return fmt.Sprintf("%T", err)
		}
		err = next
	}
}
