package events_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel/trace"

	"github.com/jitprov/jitprov/events"
)

// loginIdentity is the data of the login.first-seen sample.
func loginIdentity() events.Identity { return samples()[0].data.(events.Identity) }

func newLogin(t *testing.T) events.Event {
	t.Helper()
	ev, err := events.New(events.TypeLoginFirstSeen, source, "okta-main/00u1a2b3c4d5e6f7g8h9", loginIdentity())
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return ev
}

func encode(t *testing.T, ctx context.Context, ev events.Event) *nats.Msg {
	t.Helper()
	subject, err := events.Subject(events.TypeLoginFirstSeen, "acme")
	if err != nil {
		t.Fatal(err)
	}
	msg, err := events.Encode(ctx, ev, subject)
	if err != nil {
		t.Fatalf("Encode: %v", err)
	}
	return msg
}

// TestEncodeHeaders checks the wire format other services rely on: NATS
// headers are case-sensitive, so the exact lower-case keys matter.
func TestEncodeHeaders(t *testing.T) {
	ev := newLogin(t)
	msg := encode(t, context.Background(), ev)

	if msg.Subject != "jit.login.first-seen.acme" {
		t.Errorf("subject = %q", msg.Subject)
	}
	want := map[string]string{
		"ce-id":          ev.ID(),
		"ce-type":        string(events.TypeLoginFirstSeen),
		"ce-source":      source,
		"ce-specversion": "1.0",
		"ce-subject":     "okta-main/00u1a2b3c4d5e6f7g8h9",
		"ce-dataschema":  events.TypeLoginFirstSeen.SchemaURL(),
	}
	for key, value := range want {
		got, ok := msg.Header[key]
		if !ok {
			t.Errorf("no %q header in %v", key, msg.Header)
			continue
		}
		if len(got) != 1 || got[0] != value {
			t.Errorf("header %q = %q, want [%q]", key, got, value)
		}
	}
	at, err := time.Parse(time.RFC3339Nano, msg.Header.Get("ce-time"))
	if err != nil {
		t.Errorf("ce-time %q is not RFC 3339: %v", msg.Header.Get("ce-time"), err)
	} else if !at.Equal(ev.Time()) {
		t.Errorf("ce-time = %v, want %v", at, ev.Time())
	}
	for key := range msg.Header {
		if key != strings.ToLower(key) {
			t.Errorf("header key %q is not lower case", key)
		}
	}
	if _, ok := msg.Header["traceparent"]; ok {
		t.Error("traceparent header written for a context without a span")
	}
	if !bytes.Equal(msg.Data, ev.Data()) {
		t.Errorf("body = %s, want the event data %s", msg.Data, ev.Data())
	}
	assertJSONEqual(t, msg.Data, loginIdentity())
}

// TestEncodeContentTypeHeader checks that the data content type travels in
// the "content-type" header, as events.Encode documents.
func TestEncodeContentTypeHeader(t *testing.T) {
	msg := encode(t, context.Background(), newLogin(t))
	_, hasCEContentType := msg.Header["ce-datacontenttype"]
	if got := msg.Header["content-type"]; len(got) != 1 || got[0] != "application/json" {
		t.Errorf("content-type header = %q, want [\"application/json\"]", got)
	}
	if hasCEContentType {
		t.Errorf("both content-type and ce-datacontenttype headers written: %v", msg.Header)
	}
}

func TestEncodeDecodeRoundTrip(t *testing.T) {
	for _, s := range samples() {
		t.Run(string(s.typ), func(t *testing.T) {
			ev, err := events.New(s.typ, source, s.subject, s.data)
			if err != nil {
				t.Fatal(err)
			}
			msg, err := events.Encode(context.Background(), ev, "some.subject")
			if err != nil {
				t.Fatalf("Encode: %v", err)
			}
			got, err := events.Decode(msg)
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			assertSameEvent(t, got, ev)
			s.checkData(t, got)
		})
	}
}

func assertSameEvent(t *testing.T, got, want events.Event) {
	t.Helper()
	attrs := []struct{ name, got, want string }{
		{"id", got.ID(), want.ID()},
		{"type", got.Type(), want.Type()},
		{"source", got.Source(), want.Source()},
		{"subject", got.Subject(), want.Subject()},
		{"specversion", got.SpecVersion(), want.SpecVersion()},
		{"dataschema", got.DataSchema(), want.DataSchema()},
		{"datacontenttype", got.DataContentType(), want.DataContentType()},
	}
	for _, a := range attrs {
		if a.got != a.want {
			t.Errorf("%s = %q, want %q", a.name, a.got, a.want)
		}
	}
	if !got.Time().Equal(want.Time()) {
		t.Errorf("time = %v, want %v", got.Time(), want.Time())
	}
	if !bytes.Equal(got.Data(), want.Data()) {
		t.Errorf("data = %s, want %s", got.Data(), want.Data())
	}
	if len(got.Extensions()) != len(want.Extensions()) {
		t.Errorf("extensions = %v, want %v", got.Extensions(), want.Extensions())
	}
}

func TestTraceContextPropagation(t *testing.T) {
	traceID := trace.TraceID{0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36}
	spanID := trace.SpanID{0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7}
	state, err := trace.ParseTraceState("vendor=opaque")
	if err != nil {
		t.Fatal(err)
	}
	sc := trace.NewSpanContext(trace.SpanContextConfig{
		TraceID:    traceID,
		SpanID:     spanID,
		TraceFlags: trace.FlagsSampled,
		TraceState: state,
		Remote:     true,
	})
	if !sc.IsValid() {
		t.Fatal("test span context is not valid")
	}
	ctx := trace.ContextWithRemoteSpanContext(context.Background(), sc)

	msg := encode(t, ctx, newLogin(t))
	wantHeaders := map[string]string{
		"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
		"tracestate":  "vendor=opaque",
	}
	for key, want := range wantHeaders {
		if got := msg.Header[key]; len(got) != 1 || got[0] != want {
			t.Errorf("header %q = %q, want [%q] (headers: %v)", key, got, want, msg.Header)
		}
	}
	for key := range msg.Header {
		if key != strings.ToLower(key) {
			t.Errorf("header key %q is not lower case", key)
		}
	}

	if _, err := events.Decode(msg); err != nil {
		t.Fatalf("Decode of a traced message: %v", err)
	}
	got := trace.SpanContextFromContext(events.ExtractTrace(context.Background(), msg.Header))
	if !got.IsValid() {
		t.Fatal("ExtractTrace found no span context")
	}
	if got.TraceID() != traceID {
		t.Errorf("trace id = %s, want %s", got.TraceID(), traceID)
	}
	if got.SpanID() != spanID {
		t.Errorf("span id = %s, want %s", got.SpanID(), spanID)
	}
	if !got.IsSampled() || !got.IsRemote() {
		t.Errorf("sampled = %v, remote = %v, want both", got.IsSampled(), got.IsRemote())
	}
	if got.TraceState().Len() != 0 {
		t.Errorf("trace state = %q, want none: the receiving side drops it", got.TraceState())
	}
}

func TestInjectTrace(t *testing.T) {
	sc := trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: trace.TraceID{1}, SpanID: trace.SpanID{2}, TraceFlags: trace.FlagsSampled,
	})
	h := nats.Header{}
	events.InjectTrace(trace.ContextWithRemoteSpanContext(context.Background(), sc), h)
	if _, ok := h["traceparent"]; !ok {
		t.Fatalf("no lower-case traceparent header in %v", h)
	}
	got := trace.SpanContextFromContext(events.ExtractTrace(context.Background(), h))
	if got.TraceID() != sc.TraceID() {
		t.Errorf("trace id = %s, want %s", got.TraceID(), sc.TraceID())
	}

	// Nothing to inject, nothing to extract.
	h = nats.Header{}
	events.InjectTrace(context.Background(), h)
	if len(h) != 0 {
		t.Errorf("InjectTrace without a span wrote %v", h)
	}
	if sc := trace.SpanContextFromContext(events.ExtractTrace(context.Background(), h)); sc.IsValid() {
		t.Errorf("ExtractTrace from empty headers = %v, want no span context", sc)
	}
	if sc := trace.SpanContextFromContext(events.ExtractTrace(context.Background(), nil)); sc.IsValid() {
		t.Errorf("ExtractTrace from nil headers = %v, want no span context", sc)
	}
}

// TestExtractTraceSources covers where ExtractTrace finds the trace
// context: the W3C headers in any case, and the CloudEvents tracing
// extension (ce-traceparent) when there is no traceparent header.
func TestExtractTraceSources(t *testing.T) {
	const (
		w3c     = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
		ext     = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
		w3cID   = "4bf92f3577b34da6a3ce929d0e0e4736"
		extID   = "0af7651916cd43dd8448eb211c80319c"
		noTrace = ""
	)
	for _, tc := range []struct {
		name      string
		h         nats.Header
		wantTrace string
		wantState string
	}{
		// The tracestate is dropped: any publisher on the bus could set
		// one, and it would travel on into customers' webhook requests.
		{"traceparent", nats.Header{"traceparent": {w3c}, "tracestate": {"a=1"}}, w3cID, ""},
		{"Traceparent in MIME case", nats.Header{"Traceparent": {w3c}, "Tracestate": {"a=1"}}, w3cID, ""},
		{"ce-traceparent alone", nats.Header{"ce-traceparent": {ext}, "ce-tracestate": {"b=2"}}, extID, ""},
		{"Ce-Traceparent in MIME case", nats.Header{"Ce-Traceparent": {ext}}, extID, ""},
		{"lower-case traceparent wins over another spelling", nats.Header{"Traceparent": {ext}, "traceparent": {w3c}}, w3cID, ""},
		{"traceparent wins over ce-traceparent", nats.Header{"traceparent": {w3c}, "ce-traceparent": {ext}, "ce-tracestate": {"b=2"}}, w3cID, ""},
		{"ce-tracestate without ce-traceparent", nats.Header{"ce-tracestate": {"b=2"}}, noTrace, ""},
		{"malformed ce-traceparent", nats.Header{"ce-traceparent": {"00-zz-00-01"}}, noTrace, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sc := trace.SpanContextFromContext(events.ExtractTrace(context.Background(), tc.h))
			if tc.wantTrace == noTrace {
				if sc.IsValid() {
					t.Fatalf("span context = %v, want none", sc)
				}
				return
			}
			if !sc.IsValid() || !sc.IsRemote() {
				t.Fatalf("span context = %v, want a valid remote one", sc)
			}
			if got := sc.TraceID().String(); got != tc.wantTrace {
				t.Errorf("trace id = %s, want %s", got, tc.wantTrace)
			}
			if got := sc.TraceState().String(); got != tc.wantState {
				t.Errorf("trace state = %q, want %q", got, tc.wantState)
			}
		})
	}
}

func TestHeaderCarrier(t *testing.T) {
	h := nats.Header{}
	c := events.HeaderCarrier(h)
	c.Set("Traceparent", "v1")
	c.Set("TRACESTATE", "v2")
	if got := h["traceparent"]; len(got) != 1 || got[0] != "v1" {
		t.Errorf(`h["traceparent"] = %q, want ["v1"]`, got)
	}
	if got := h["tracestate"]; len(got) != 1 || got[0] != "v2" {
		t.Errorf(`h["tracestate"] = %q, want ["v2"]`, got)
	}
	for _, key := range []string{"traceparent", "Traceparent", "TRACEPARENT"} {
		if got := c.Get(key); got != "v1" {
			t.Errorf("Get(%q) = %q, want v1", key, got)
		}
	}
	keys := c.Keys()
	slices.Sort(keys)
	if !slices.Equal(keys, []string{"traceparent", "tracestate"}) {
		t.Errorf("Keys() = %q", keys)
	}
}

// Hand-written wire format: what a producer in another language sends.
const (
	wireID   = "0192f3a4-0000-7000-8000-000000000001"
	wireData = `{"organization_id":"acme","connection_id":"okta-main","protocol":"saml",` +
		`"external_id":"ada","email_verified":false,"authenticated_at":"2025-03-04T05:06:07Z"}`
)

func wireMsg() *nats.Msg {
	msg := nats.NewMsg("jit.login.first-seen.acme")
	msg.Header["ce-specversion"] = []string{"1.0"}
	msg.Header["ce-id"] = []string{wireID}
	msg.Header["ce-type"] = []string{string(events.TypeLoginFirstSeen)}
	msg.Header["ce-source"] = []string{"/sso-edge"}
	msg.Header["ce-time"] = []string{"2025-03-04T05:06:07.5Z"}
	msg.Header["ce-dataschema"] = []string{events.TypeLoginFirstSeen.SchemaURL()}
	msg.Header["content-type"] = []string{"application/json"}
	msg.Data = []byte(wireData)
	return msg
}

func TestDecodeWireFormat(t *testing.T) {
	msg := wireMsg()
	// Headers of other concerns must not get in the way.
	msg.Header[events.HeaderReplyTo] = []string{"_INBOX.abc"}
	msg.Header["Nats-Msg-Id"] = []string{wireID}
	msg.Header["traceparent"] = []string{"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}

	ev, err := events.Decode(msg)
	if err != nil {
		t.Fatalf("Decode: %v", err)
	}
	attrs := []struct{ name, got, want string }{
		{"id", ev.ID(), wireID},
		{"type", ev.Type(), string(events.TypeLoginFirstSeen)},
		{"source", ev.Source(), "/sso-edge"},
		{"specversion", ev.SpecVersion(), "1.0"},
		{"dataschema", ev.DataSchema(), events.TypeLoginFirstSeen.SchemaURL()},
		{"datacontenttype", ev.DataContentType(), "application/json"},
	}
	for _, a := range attrs {
		if a.got != a.want {
			t.Errorf("%s = %q, want %q", a.name, a.got, a.want)
		}
	}
	if want := time.Date(2025, 3, 4, 5, 6, 7, 5e8, time.UTC); !ev.Time().Equal(want) {
		t.Errorf("time = %v, want %v", ev.Time(), want)
	}
	id, err := events.DataAs[events.Identity](ev, events.TypeLoginFirstSeen)
	if err != nil {
		t.Fatalf("DataAs: %v", err)
	}
	if id.ExternalID != "ada" || id.Protocol != events.ProtocolSAML || id.OrganizationID != "acme" {
		t.Errorf("DataAs = %+v", id)
	}
}

func TestDecodeRejects(t *testing.T) {
	structured := `{"specversion":"1.0","id":"` + wireID + `","type":"` + string(events.TypeLoginFirstSeen) +
		`","source":"/sso-edge","datacontenttype":"application/json","data":` + wireData + `}`
	for _, tc := range []struct {
		name   string
		mutate func(m *nats.Msg)
	}{
		{"no headers at all", func(m *nats.Msg) { m.Header = nil }},
		{"empty headers", func(m *nats.Msg) { m.Header = nats.Header{} }},
		{"structured mode without headers", func(m *nats.Msg) {
			m.Header = nil
			m.Data = []byte(structured)
		}},
		{"structured mode with cloudevents content type", func(m *nats.Msg) {
			m.Header = nats.Header{"content-type": {"application/cloudevents+json"}}
			m.Data = []byte(structured)
		}},
		{"no ce-specversion", func(m *nats.Msg) { delete(m.Header, "ce-specversion") }},
		{"empty ce-specversion", func(m *nats.Msg) { m.Header["ce-specversion"] = []string{""} }},
		{"unsupported ce-specversion", func(m *nats.Msg) { m.Header["ce-specversion"] = []string{"2.0"} }},
		{"no ce-id", func(m *nats.Msg) { delete(m.Header, "ce-id") }},
		{"empty ce-id", func(m *nats.Msg) { m.Header["ce-id"] = []string{""} }},
		{"no ce-source", func(m *nats.Msg) { delete(m.Header, "ce-source") }},
		{"no ce-type", func(m *nats.Msg) { delete(m.Header, "ce-type") }},
		{"unknown ce-type", func(m *nats.Msg) { m.Header["ce-type"] = []string{"io.jitprov.login.first-seen.v2"} }},
		{"foreign ce-type", func(m *nats.Msg) { m.Header["ce-type"] = []string{"com.example.order.placed"} }},
		{"bad ce-time", func(m *nats.Msg) { m.Header["ce-time"] = []string{"yesterday"} }},
		{"content-type text/plain", func(m *nats.Msg) { m.Header["content-type"] = []string{"text/plain"} }},
		{"content-type charset latin1", func(m *nats.Msg) { m.Header["content-type"] = []string{"application/json; charset=iso-8859-1"} }},
		{"content-type charset utf8 without dash", func(m *nats.Msg) { m.Header["content-type"] = []string{"application/json; charset=utf8"} }},
		{"content-type other parameter", func(m *nats.Msg) { m.Header["content-type"] = []string{"application/json; profile=x"} }},
		{"content-type charset and other parameter", func(m *nats.Msg) {
			m.Header["content-type"] = []string{"application/json; charset=utf-8; profile=x"}
		}},
		{"content-type json suffix", func(m *nats.Msg) { m.Header["content-type"] = []string{"application/cloudevents+json"} }},
		{"content-type unparsable", func(m *nats.Msg) { m.Header["content-type"] = []string{"application/json; charset"} }},
		{"ce-id twice in different case with different values", func(m *nats.Msg) { m.Header["Ce-Id"] = []string{"other"} }},
		{"content-type twice in different case with different values", func(m *nats.Msg) {
			m.Header["Content-Type"] = []string{"text/plain"}
		}},
		{"no content-type", func(m *nats.Msg) { delete(m.Header, "content-type") }},
		{"data missing external_id", func(m *nats.Msg) {
			m.Data = []byte(`{"organization_id":"acme","connection_id":"okta-main","protocol":"saml",` +
				`"email_verified":false,"authenticated_at":"2025-03-04T05:06:07Z"}`)
		}},
		{"data with an unknown property", func(m *nats.Msg) {
			m.Data = []byte(strings.TrimSuffix(wireData, "}") + `,"password":"hunter2"}`)
		}},
		{"data of another type", func(m *nats.Msg) {
			m.Data = []byte(`{"organization_id":"acme","max_seats":1,"seats_used":1,"connection_id":"c","external_id":"e","login_id":"l"}`)
		}},
		{"data over MaxDataBytes", func(m *nats.Msg) { m.Data = padJSON(wireData, events.MaxDataBytes+1) }},
		{"data not JSON", func(m *nats.Msg) { m.Data = []byte("organization_id=acme") }},
		{"data truncated", func(m *nats.Msg) { m.Data = []byte(wireData[:len(wireData)-1]) }},
		{"no data", func(m *nats.Msg) { m.Data = nil }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			msg := wireMsg()
			tc.mutate(msg)
			_, err := events.Decode(msg)
			if !errors.Is(err, events.ErrInvalid) {
				t.Fatalf("Decode = %v, want an error wrapping ErrInvalid", err)
			}
			// Only the JSON Schema refuses these, so DecodeTrusted, which
			// leaves the schema to the producer, takes them.
			schemaOnly := map[string]bool{"data missing external_id": true, "data with an unknown property": true, "data of another type": true}[tc.name]
			_, err = events.DecodeTrusted(msg)
			switch {
			case schemaOnly && err != nil:
				t.Fatalf("DecodeTrusted = %v; only the schema refuses this, and DecodeTrusted leaves the schema to the producer", err)
			case !schemaOnly && !errors.Is(err, events.ErrInvalid):
				t.Fatalf("DecodeTrusted = %v, want an error wrapping ErrInvalid", err)
			}
		})
	}
}

// TestDecodeAcceptsLiberally covers what producers outside Go send: the
// CloudEvents JavaScript SDK's content type with a charset, and header
// names in another case (HTTP habits, nats.js).
func TestDecodeAcceptsLiberally(t *testing.T) {
	recase := func(from, to string) func(m *nats.Msg) {
		return func(m *nats.Msg) {
			m.Header[to] = m.Header[from]
			delete(m.Header, from)
		}
	}
	for _, tc := range []struct {
		name   string
		mutate func(m *nats.Msg)
	}{
		{"content-type with charset", func(m *nats.Msg) { m.Header["content-type"] = []string{"application/json; charset=utf-8"} }},
		{"content-type with charset upper case", func(m *nats.Msg) { m.Header["content-type"] = []string{"Application/JSON; Charset=UTF-8"} }},
		{"content-type with charset no space", func(m *nats.Msg) { m.Header["content-type"] = []string{"application/json;charset=utf-8"} }},
		{"content-type with charset many spaces", func(m *nats.Msg) { m.Header["content-type"] = []string{"application/json ;  charset = utf-8"} }},
		{"content-type with charset quoted", func(m *nats.Msg) { m.Header["content-type"] = []string{`application/json; charset="utf-8"`} }},
		{"ce-specversion in canonical MIME case", recase("ce-specversion", "Ce-Specversion")},
		{"ce-id in canonical MIME case", recase("ce-id", "Ce-Id")},
		{"ce-type upper case", recase("ce-type", "CE-TYPE")},
		{"content-type in canonical MIME case", recase("content-type", "Content-Type")},
		{"every header in canonical MIME case", func(m *nats.Msg) {
			for k, v := range m.Header {
				delete(m.Header, k)
				m.Header[http.CanonicalHeaderKey(k)] = v
			}
		}},
		{"ce-id twice in different case with the same value", func(m *nats.Msg) { m.Header["Ce-Id"] = m.Header["ce-id"] }},
		// Trace context is not part of the event: two spellings do not make
		// the login ambiguous (ExtractTrace takes the lower-case one).
		{"traceparent twice in different case with different values", func(m *nats.Msg) {
			m.Header["traceparent"] = []string{"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}
			m.Header["Traceparent"] = []string{"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}
		}},
		{"nats.js style: Ce-Id and content-type with charset", func(m *nats.Msg) {
			recase("ce-id", "Ce-Id")(m)
			recase("content-type", "Content-Type")(m)
			m.Header["Content-Type"] = []string{"application/json; charset=utf-8"}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			msg := wireMsg()
			tc.mutate(msg)
			for _, dec := range []struct {
				name string
				fn   func(*nats.Msg) (events.Event, error)
			}{{"Decode", events.Decode}, {"DecodeTrusted", events.DecodeTrusted}} {
				ev, err := dec.fn(msg)
				if err != nil {
					t.Fatalf("%s: %v", dec.name, err)
				}
				if ev.ID() != wireID || ev.Type() != string(events.TypeLoginFirstSeen) {
					t.Errorf("%s: id %q type %q", dec.name, ev.ID(), ev.Type())
				}
				// Read as plain JSON, whatever the producer wrote.
				if ct := ev.DataContentType(); ct != "application/json" {
					t.Errorf("%s: datacontenttype = %q, want application/json", dec.name, ct)
				}
				if _, err := events.DataAs[events.Identity](ev, events.TypeLoginFirstSeen); err != nil {
					t.Errorf("%s: DataAs: %v", dec.name, err)
				}
			}
		})
	}
}

// TestDecodeRefusalSaysWhy checks that the refusals a producer outside Go
// meets name what is wrong and what is wanted: the reason reaches the
// producer only through the termination advisory and the log.
func TestDecodeRefusalSaysWhy(t *testing.T) {
	for _, tc := range []struct {
		name   string
		mutate func(m *nats.Msg)
		want   []string
	}{
		{"other charset", func(m *nats.Msg) { m.Header["content-type"] = []string{"application/json; charset=iso-8859-1"} },
			[]string{`charset "iso-8859-1"`, "UTF-8", `"application/json; charset=utf-8"`}},
		{"other media type", func(m *nats.Msg) { m.Header["content-type"] = []string{"text/plain"} },
			[]string{`media type "text/plain"`, `want "application/json"`}},
		{"ambiguous header", func(m *nats.Msg) { m.Header["Ce-Id"] = []string{"other"} },
			[]string{`header "ce-id"`, `"Ce-Id"`, `"ce-id"`, "different values", "ambiguous"}},
		// A login whose reply subject is ambiguous cannot be answered
		// safely: refused like an ambiguous CloudEvents header.
		{"ambiguous reply subject", func(m *nats.Msg) {
			m.Header[events.HeaderReplyTo] = []string{"_INBOX.a.1"}
			m.Header["jitprov-reply-to"] = []string{"_INBOX.b.1"}
		}, []string{`header "jitprov-reply-to"`, `"Jitprov-Reply-To"`, `"jitprov-reply-to"`, "different values", "ambiguous"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			msg := wireMsg()
			tc.mutate(msg)
			_, err := events.Decode(msg)
			if !errors.Is(err, events.ErrInvalid) {
				t.Fatalf("Decode = %v, want ErrInvalid", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}
}

// padJSON pads a JSON document with trailing spaces to n bytes: it stays
// valid, so only its size can reject it.
func padJSON(doc string, n int) []byte {
	return []byte(doc + strings.Repeat(" ", n-len(doc)))
}

func TestDecodeDataSizeLimit(t *testing.T) {
	for _, tc := range []struct {
		size int
		ok   bool
	}{
		{events.MaxDataBytes - 1, true},
		{events.MaxDataBytes, true},
		{events.MaxDataBytes + 1, false},
		{4 * events.MaxDataBytes, false},
	} {
		msg := wireMsg()
		msg.Data = padJSON(wireData, tc.size)
		_, err := events.Decode(msg)
		switch {
		case tc.ok && err != nil:
			t.Errorf("Decode of %d bytes: %v, want success", tc.size, err)
		case !tc.ok && !errors.Is(err, events.ErrInvalid):
			t.Errorf("Decode of %d bytes = %v, want an error wrapping ErrInvalid", tc.size, err)
		}
	}
}

func TestDataAsRejects(t *testing.T) {
	msg := encode(t, context.Background(), newLogin(t))
	ev, err := events.Decode(msg)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		dataA func() error
	}{
		{"result of a login", func() error {
			_, err := events.DataAs[events.ProvisioningResult](ev, events.TypeProvisioningResult)
			return err
		}},
		{"identity as another type", func() error {
			_, err := events.DataAs[events.Identity](ev, events.TypeUserCreated)
			return err
		}},
		{"unknown type", func() error {
			_, err := events.DataAs[events.Identity](ev, "io.jitprov.login.first-seen.v2")
			return err
		}},
		{"data that does not decode into T", func() error {
			_, err := events.DataAs[[]string](ev, events.TypeLoginFirstSeen)
			return err
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.dataA(); !errors.Is(err, events.ErrInvalid) {
				t.Fatalf("DataAs = %v, want an error wrapping ErrInvalid", err)
			}
		})
	}
}

// TestDecodeIsReadOnly checks that a message can be decoded again, e.g. by
// a retry after a failed handler.
func TestDecodeIsReadOnly(t *testing.T) {
	msg := encode(t, context.Background(), newLogin(t))
	before, err := json.Marshal(msg.Header)
	if err != nil {
		t.Fatal(err)
	}
	data := bytes.Clone(msg.Data)
	first, err := events.Decode(msg)
	if err != nil {
		t.Fatal(err)
	}
	second, err := events.Decode(msg)
	if err != nil {
		t.Fatalf("second Decode: %v", err)
	}
	assertSameEvent(t, second, first)
	after, _ := json.Marshal(msg.Header)
	if !bytes.Equal(before, after) || !bytes.Equal(data, msg.Data) {
		t.Errorf("Decode changed the message: headers %s -> %s", before, after)
	}
}

// TestReplyTo reads the reply subject of a login in any header case, as
// Decode reads the CloudEvents headers, and refuses two spellings that
// disagree.
func TestReplyTo(t *testing.T) {
	for _, tc := range []struct {
		name      string
		h         nats.Header
		want      string
		ambiguous bool
	}{
		{"no header", nats.Header{"ce-id": {"x"}}, "", false},
		{"nil header", nil, "", false},
		{"as jitprov writes it", nats.Header{"Jitprov-Reply-To": {"_INBOX.a.1"}}, "_INBOX.a.1", false},
		{"lower case", nats.Header{"jitprov-reply-to": {"_INBOX.a.1"}}, "_INBOX.a.1", false},
		{"upper case", nats.Header{"JITPROV-REPLY-TO": {"_INBOX.a.1"}}, "_INBOX.a.1", false},
		{"mixed case", nats.Header{"Jitprov-reply-To": {"_INBOX.a.1"}}, "_INBOX.a.1", false},
		{"empty value list", nats.Header{"Jitprov-Reply-To": {}}, "", false},
		{"two spellings, same value", nats.Header{"Jitprov-Reply-To": {"_INBOX.a.1"}, "jitprov-reply-to": {"_INBOX.a.1"}}, "_INBOX.a.1", false},
		{"two spellings, different values", nats.Header{"Jitprov-Reply-To": {"_INBOX.a.1"}, "jitprov-reply-to": {"_INBOX.b.1"}}, "", true},
		{"three spellings, one differs", nats.Header{"Jitprov-Reply-To": {"_INBOX.a.1"}, "jitprov-reply-to": {"_INBOX.a.1"},
			"JITPROV-REPLY-TO": {"_INBOX.evil"}}, "", true},
		{"the first value of one spelling", nats.Header{"jitprov-reply-to": {"_INBOX.a.1", "_INBOX.a.2"}}, "_INBOX.a.1", false},
		{"other headers in other cases do not matter", nats.Header{"Jitprov-Reply-To": {"_INBOX.a.1"}, "Nats-Msg-Id": {"1"},
			"nats-msg-id": {"2"}}, "_INBOX.a.1", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := events.ReplyTo(tc.h)
			if tc.ambiguous {
				if !errors.Is(err, events.ErrInvalid) || !strings.Contains(err.Error(), "ambiguous") ||
					!strings.Contains(err.Error(), `"jitprov-reply-to"`) {
					t.Fatalf("ReplyTo = %q, %v; want an ambiguity error wrapping ErrInvalid", got, err)
				}
				if got != "" {
					t.Errorf("ReplyTo returned %q with its error", got)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Errorf("ReplyTo = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}
