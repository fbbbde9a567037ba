package bus

import (
	"context"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/attribute"
	semconv "go.opentelemetry.io/otel/semconv/v1.37.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/jitprov/jitprov/events"
	"github.com/jitprov/jitprov/internal/telemetry"
)

// TracerName is the instrumentation scope of the spans package bus starts.
const TracerName = "github.com/jitprov/jitprov/internal/bus"

// messagingSystem is messaging.system of every span about a NATS message
// (the semantic conventions name no value for NATS).
var messagingSystem = attribute.String("messaging.system", "nats")

// StartPublish starts the producer span of a publish of the message with
// id msgID to subject, named "send <what>" (what names the kind of
// message, such as an event type: subjects carry organisation ids, too
// many names for a span). The span is recorded by tp, or, when tp is nil,
// by the provider of the span in ctx (none without one). Inject the
// returned context into the message's headers (events.Encode or
// events.InjectTrace), so that its consumer's span is the producer span's
// child, and end the span once the publish is acknowledged or has failed.
func StartPublish(ctx context.Context, tp trace.TracerProvider, what, subject, msgID string) (context.Context, trace.Span) {
	if tp == nil {
		tp = trace.SpanFromContext(ctx).TracerProvider()
	}
	attrs := []attribute.KeyValue{messagingSystem, semconv.MessagingOperationTypeSend, semconv.MessagingOperationName("send"),
		semconv.MessagingDestinationName(subject)}
	if msgID != "" {
		attrs = append(attrs, semconv.MessagingMessageID(msgID))
	}
	return tp.Tracer(TracerName).Start(ctx, "send "+what, trace.WithSpanKind(trace.SpanKindProducer), trace.WithAttributes(attrs...))
}

// StartConsume starts the consumer span of the delivery msg of consumer,
// named name, as the child of the span context msg carries
// (traceparent, or the CloudEvents tracing extension): the producer span
// of its publish. ctx's own span, if any, is replaced.
func StartConsume(ctx context.Context, tracer trace.Tracer, name, consumer string, msg jetstream.Msg, attrs ...attribute.KeyValue) (context.Context, trace.Span) {
	ctx = events.ExtractTrace(ctx, msg.Headers())
	attrs = append(attrs, ConsumeAttributes(consumer, msg)...)
	return tracer.Start(ctx, name, trace.WithSpanKind(trace.SpanKindConsumer), trace.WithAttributes(attrs...))
}

// ConsumeAttributes are the messaging attributes of the processing of
// delivery msg by consumer.
func ConsumeAttributes(consumer string, msg jetstream.Msg) []attribute.KeyValue {
	attrs := []attribute.KeyValue{messagingSystem, semconv.MessagingOperationTypeProcess, semconv.MessagingOperationName("process"),
		semconv.MessagingDestinationName(msg.Subject()), semconv.MessagingConsumerGroupName(consumer)}
	if id := msgID(msg.Headers()); id != "" {
		attrs = append(attrs, semconv.MessagingMessageID(id))
	}
	if md, err := msg.Metadata(); err == nil {
		attrs = append(attrs, attribute.Int64("messaging.nats.delivery_count", int64(md.NumDelivered)))
	}
	return attrs
}

// msgID is a message's id: its Nats-Msg-Id, or its CloudEvents id.
func msgID(h nats.Header) string {
	if id := h.Get(jetstream.MsgIDHeader); id != "" {
		return id
	}
	return events.HeaderValue(h, "ce-id")
}

// eventName is the short name of a CloudEvents type for span names, such
// as "user.created" for io.jitprov.user.created.v1.
func eventName(ceType string) string {
	if t := events.Type(ceType).Short(); t != "" {
		return t
	}
	return "event"
}

// endPublish ends the producer span of a publish that returned err.
func endPublish(span trace.Span, err error) {
	if err != nil {
		telemetry.RecordFailure(span, err, "not acknowledged")
	}
	span.End()
}
