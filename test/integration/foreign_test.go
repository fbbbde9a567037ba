package integration

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/jitprov/jitprov/events"
	"github.com/jitprov/jitprov/internal/testenv"
)

// A login as a Node.js producer (nats.js v3 with the CloudEvents
// JavaScript SDK) writes it is answered: header names in MIME case
// ("Ce-Id"), the reply header in lower case, the SDK's content type with a
// charset, and the trace context in the CloudEvents tracing extension
// (ce-traceparent), which the provisioner's span joins.
func TestNodeStyleLoginIsAnswered(t *testing.T) {
	e := newEnv(t)
	e.apply(org("acme", 10))
	spans := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(spans))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	e.startProvisionerTraced(2, tp)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	inbox := nats.NewInbox()
	replies, err := e.nc.SubscribeSync(inbox)
	if err != nil {
		t.Fatal(err)
	}
	id := uuid.NewString()
	const (
		traceID     = "0af7651916cd43dd8448eb211c80319c"
		parentSpan  = "b7ad6b7169203331"
		traceparent = "00-" + traceID + "-" + parentSpan + "-01"
	)
	msg := &nats.Msg{
		Subject: "jit.login.first-seen.acme",
		Header: nats.Header{
			"Ce-Specversion":   {"1.0"},
			"Ce-Id":            {id},
			"Ce-Type":          {string(events.TypeLoginFirstSeen)},
			"Ce-Source":        {"/node-edge"},
			"Ce-Time":          {"2025-03-04T09:15:02.198Z"},
			"Ce-Traceparent":   {traceparent},
			"Content-Type":     {"application/json; charset=utf-8"},
			"Nats-Msg-Id":      {id},
			"jitprov-reply-to": {inbox}, // events.HeaderReplyTo, in any case
		},
		Data: []byte(`{"organization_id":"acme","connection_id":"idp","protocol":"saml","external_id":"nodejs",` +
			`"email":"nodejs@acme.example","email_verified":true,"authenticated_at":"2025-03-04T09:15:02.198Z"}`),
	}
	if _, err := e.js.PublishMsg(ctx, msg); err != nil {
		t.Fatal(err)
	}
	reply, err := replies.NextMsg(15 * time.Second)
	if err != nil {
		t.Fatalf("no answer to a Node.js-style login: %v", err)
	}
	ev, err := events.DecodeTrusted(reply)
	if err != nil {
		t.Fatal(err)
	}
	res, err := events.ResultOf(ev)
	if err != nil {
		t.Fatal(err)
	}
	if res.LoginID != id || res.Outcome != events.OutcomeCreated {
		t.Errorf("answer = %+v, want login %s created", res, id)
	}
	if got := e.count(`SELECT count(*) FROM users`); got != 1 {
		t.Errorf("users = %d, want the one the login created", got)
	}

	// The provisioner ends its span just after answering.
	var provision sdktrace.ReadOnlySpan
	testenv.WaitFor(t, 20*time.Second, "the provisioner's span", func() bool {
		for _, s := range spans.GetSpans().Snapshots() {
			if s.Name() == "provision login" {
				provision = s
			}
		}
		return provision != nil
	})
	if got := provision.SpanContext().TraceID().String(); got != traceID {
		t.Errorf("provisioner span in trace %s, want the producer's %s (from ce-traceparent)", got, traceID)
	}
	if got := provision.Parent().SpanID().String(); got != parentSpan {
		t.Errorf("provisioner span's parent = %s, want %s", got, parentSpan)
	}
}
