package events

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"sort"
	"strings"
	"time"

	cejs "github.com/cloudevents/sdk-go/protocol/nats_jetstream/v2"
	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/cloudevents/sdk-go/v2/binding"
	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/jitprov/jitprov/schemas"
)

// Event is a CloudEvent of this contract.
type Event = cloudevents.Event

// ErrInvalid marks an event that breaks the contract: missing or malformed
// CloudEvents attributes, an unknown type, or data that does not match its
// schema. Such an event can never be processed; consumers terminate it.
var ErrInvalid = errors.New("invalid event")

const headerContentType = "content-type"

// MaxDataBytes bounds the data of any event.
const MaxDataBytes = 256 << 10

// New builds an event of type t with a fresh id (a UUIDv7, so ids sort by
// time), the given source (e.g. "/jitprov/provisioner") and CloudEvents
// subject (the entity it is about), and data encoded as JSON. The data is
// validated against the type's schema: an event that breaks the contract is
// never built.
func New(t Type, source, subject string, data any) (Event, error) {
	id, err := uuid.NewV7()
	if err != nil {
		return Event{}, fmt.Errorf("events: new id: %w", err)
	}
	return NewWithID(id.String(), t, source, subject, time.Now().UTC(), data)
}

// NewWithID is New with a caller-chosen id and time, for events whose
// identity must be stable across retries (such as a reply re-sent after a
// redelivery).
func NewWithID(id string, t Type, source, subject string, at time.Time, data any) (Event, error) {
	return build(id, t, source, subject, at, data, true)
}

// NewUnvalidated is New without the check of the data against the type's
// schema. It is for a producer whose own code already bounds the data to
// the contract and whose every consumer validates on receipt: sso-edge's
// logins (login.first-seen, login.seen), which its claim mapping fits to
// the schema's limits (internal/edge/identity.go, proved by its tests) and
// which the provisioner validates as it receives them, since any service
// may publish a login. docs/events.md ("Where events are validated") lists
// who checks what.
func NewUnvalidated(t Type, source, subject string, data any) (Event, error) {
	id, err := uuid.NewV7()
	if err != nil {
		return Event{}, fmt.Errorf("events: new id: %w", err)
	}
	return build(id.String(), t, source, subject, time.Now().UTC(), data, false)
}

func build(id string, t Type, source, subject string, at time.Time, data any, validate bool) (Event, error) {
	if !t.Known() {
		return Event{}, fmt.Errorf("events: %w: unknown type %q", ErrInvalid, t)
	}
	if at.IsZero() {
		return Event{}, fmt.Errorf("events: %w: %s has no time", ErrInvalid, t)
	}
	// No HTML escaping: it would grow "<", ">" and "&" sixfold and break
	// the size limit for data that fits it.
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	// Times in TimeLayout, whatever the data's Go type (wiretime.go).
	if err := enc.Encode(wireData(data)); err != nil {
		return Event{}, fmt.Errorf("events: encode %s data: %w", t, err)
	}
	raw := bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
	if len(raw) > MaxDataBytes {
		return Event{}, fmt.Errorf("events: %w: %s data of %d bytes exceeds %d", ErrInvalid, t, len(raw), MaxDataBytes)
	}
	if validate {
		if err := schemas.Validate(t.SchemaPath(), raw); err != nil {
			return Event{}, fmt.Errorf("events: %w: %s: %w", ErrInvalid, t, err)
		}
	}
	ev := cloudevents.NewEvent(cloudevents.VersionV1)
	ev.SetID(id)
	ev.SetType(string(t))
	ev.SetSource(source)
	if subject != "" {
		ev.SetSubject(subject)
	}
	ev.SetTime(at)
	ev.SetDataSchema(t.SchemaURL())
	if err := ev.SetData(cloudevents.ApplicationJSON, json.RawMessage(raw)); err != nil {
		return Event{}, fmt.Errorf("events: set %s data: %w", t, err)
	}
	if err := ev.Validate(); err != nil {
		return Event{}, fmt.Errorf("events: %w: %w", ErrInvalid, err)
	}
	return ev, nil
}

// traceContext is the W3C trace-context propagator; it holds no state.
var traceContext = propagation.TraceContext{}

// Encode renders ev as a NATS message on subject in binary content mode:
// ce-* headers, content-type, the data as body, and the trace context of
// ctx as traceparent/tracestate headers.
func Encode(ctx context.Context, ev Event, subject string) (*nats.Msg, error) {
	if err := ev.Validate(); err != nil {
		return nil, fmt.Errorf("events: %w: %w", ErrInvalid, err)
	}
	msg := nats.NewMsg(subject)
	var body bytes.Buffer
	hdr, err := cejs.WriteMsg(ctx, binding.ToMessage(&ev), &body)
	if err != nil {
		return nil, fmt.Errorf("events: encode %s %s: %w", ev.Type(), ev.ID(), err)
	}
	msg.Data = body.Bytes()
	for k, v := range hdr {
		// The NATS binding carries datacontenttype as "content-type".
		if k == "ce-datacontenttype" {
			k = headerContentType
		}
		msg.Header[k] = v
	}
	traceContext.Inject(ctx, HeaderCarrier(msg.Header))
	return msg, nil
}

// Decode reads a NATS message in binary content mode, checks the CloudEvents
// attributes, that the type is one of this contract, and that the data
// matches the type's schema. Every failure wraps ErrInvalid.
func Decode(msg *nats.Msg) (Event, error) {
	ev, t, err := decode(msg)
	if err != nil {
		return Event{}, err
	}
	if err := schemas.Validate(t.SchemaPath(), ev.Data()); err != nil {
		return Event{}, fmt.Errorf("events: %w: %s %s: %w", ErrInvalid, t, ev.ID(), err)
	}
	if err := readable(ev, t); err != nil {
		return Event{}, err
	}
	return ev, nil
}

// DecodeTrusted is Decode without the check of the data against the
// type's JSON Schema; everything else is checked as Decode checks it (the
// CloudEvents attributes, the spec version, the type, the dataschema, the
// content type, the size, and that the data reads as the type's Go
// type). It is for a consumer inside jitprov reading what a jitprov
// service built with New, which validated the data against the schema as
// it built it — the provisioner's answers, the alerts, the user events
// relayed from the outbox — so that no event is validated twice on its
// way. Whatever may come from outside jitprov (a login, which any service
// may publish) is read with Decode. docs/events.md ("Where events are
// validated") lists who checks what.
func DecodeTrusted(msg *nats.Msg) (Event, error) {
	ev, t, err := decode(msg)
	if err != nil {
		return Event{}, err
	}
	if err := readable(ev, t); err != nil {
		return Event{}, err
	}
	return ev, nil
}

// readable refuses data that its type's Go type cannot read. The schema
// admits a little more than the Go types read: an RFC 3339 time with a
// lower-case "t" or "z", an integer written 1e3 or 10.0. Such an event can
// never be read with DataAs, so it is refused here, once, rather than by
// whichever consumer reads it later (a notifier digest failing as a whole
// for one such alert).
func readable(ev Event, t Type) error {
	newData, ok := dataTypes[t]
	if !ok {
		return fmt.Errorf("events: %w: %s has no Go type to read its data", ErrInvalid, t)
	}
	if err := json.Unmarshal(ev.Data(), newData()); err != nil {
		return fmt.Errorf("events: %w: %s %s: the data does not read as %s's Go type: %w", ErrInvalid, t, ev.ID(), t.Short(), err)
	}
	return nil
}

// decode checks and reads everything but the data.
func decode(msg *nats.Msg) (Event, Type, error) {
	h, err := canonicalHeader(msg.Header)
	if err != nil {
		return Event{}, "", err
	}
	msg = &nats.Msg{Subject: msg.Subject, Reply: msg.Reply, Header: h, Data: msg.Data}
	if msg.Header.Get("ce-specversion") == "" {
		return Event{}, "", fmt.Errorf("events: %w: no ce-specversion header (binary content mode is required)", ErrInvalid)
	}
	if len(msg.Data) > MaxDataBytes {
		return Event{}, "", fmt.Errorf("events: %w: data of %d bytes exceeds %d", ErrInvalid, len(msg.Data), MaxDataBytes)
	}
	ev, err := binding.ToEvent(context.Background(), cejs.NewMessage(msg))
	if err != nil {
		return Event{}, "", fmt.Errorf("events: %w: %w", ErrInvalid, err)
	}
	if err := ev.Validate(); err != nil {
		return Event{}, "", fmt.Errorf("events: %w: %w", ErrInvalid, err)
	}
	if ev.SpecVersion() != cloudevents.VersionV1 {
		return Event{}, "", fmt.Errorf("events: %w: specversion %q, want %q", ErrInvalid, ev.SpecVersion(), cloudevents.VersionV1)
	}
	t := Type(ev.Type())
	if !t.Known() {
		return Event{}, "", fmt.Errorf("events: %w: unknown type %q", ErrInvalid, t)
	}
	if ds := ev.DataSchema(); ds != "" && ds != t.SchemaURL() {
		return Event{}, "", fmt.Errorf("events: %w: %s names dataschema %q, want %q", ErrInvalid, t, ds, t.SchemaURL())
	}
	if err := checkContentType(ev.DataContentType()); err != nil {
		return Event{}, "", fmt.Errorf("events: %w: %s %w", ErrInvalid, t, err)
	}
	// Whatever the producer wrote, the event is read as plain JSON.
	ev.SetDataContentType(cloudevents.ApplicationJSON)
	return *ev, t, nil
}

// checkContentType accepts "application/json", alone or with the one
// parameter "charset=utf-8" (as the CloudEvents JavaScript SDK writes it),
// in any case and with optional spaces. Data is JSON, which is UTF-8 on
// the wire (RFC 8259), so any other charset, any other parameter or media
// type is refused.
func checkContentType(ct string) error {
	want := fmt.Sprintf("want %q or %q", cloudevents.ApplicationJSON, cloudevents.ApplicationJSON+"; charset=utf-8")
	media, params, err := mime.ParseMediaType(ct)
	if err != nil {
		return fmt.Errorf("has content type %q, which does not parse (%v); %s", ct, err, want)
	}
	if media != cloudevents.ApplicationJSON {
		return fmt.Errorf("has content type %q, media type %q; %s", ct, media, want)
	}
	for k, v := range params {
		if k != "charset" {
			return fmt.Errorf("has content type %q with parameter %q; %s", ct, k, want)
		}
		if !strings.EqualFold(v, "utf-8") {
			return fmt.Errorf("has content type %q with charset %q; JSON data must be UTF-8; %s", ct, v, want)
		}
	}
	return nil
}

// canonicalHeader returns h with the CloudEvents headers ("ce-*",
// "content-type") and Jitprov-Reply-To under lower-case names, as the NATS
// binding reads them: nats.Header is case-sensitive, and
// producers (nats.js, HTTP-minded libraries) may write "Ce-Id" or
// "Content-Type". Other headers are kept as they are (ExtractTrace reads
// the trace context in any case by itself). One of these headers present
// under several cases with different values is ambiguous and refused: a
// login whose reply subject is ambiguous cannot be answered safely.
func canonicalHeader(h nats.Header) (nats.Header, error) {
	if h == nil {
		return nil, nil
	}
	out := make(nats.Header, len(h))
	from := make(map[string]string, len(h))
	// Sorted, so that the error about an ambiguous header names the same
	// spellings on every run.
	keys := make([]string, 0, len(h))
	for k := range h {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v := h[k]
		lk := strings.ToLower(k)
		if !strings.HasPrefix(lk, "ce-") && lk != headerContentType && lk != headerReplyToLower {
			out[k] = v
			continue
		}
		if prev, ok := from[lk]; ok {
			if !equalValues(out[lk], v) {
				return nil, ambiguous(lk, prev, k)
			}
			continue
		}
		from[lk] = k
		out[lk] = v
	}
	return out, nil
}

func equalValues(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// dataTypes make a value of each type's data, as DataAs reads it.
var dataTypes = map[Type]func() any{
	TypeLoginFirstSeen:         func() any { return new(Identity) },
	TypeLoginSeen:              func() any { return new(LoginSeen) },
	TypeProvisioningResult:     func() any { return new(ProvisioningResult) },
	TypeProvisioningResultV2:   func() any { return new(ProvisioningResult) },
	TypeUserCreated:            func() any { return new(UserCreated) },
	TypeUserUpdated:            func() any { return new(UserUpdated) },
	TypeUserCreatedV2:          func() any { return new(UserCreated) },
	TypeUserUpdatedV2:          func() any { return new(UserUpdated) },
	TypeUserIdentityLinked:     func() any { return new(IdentityLinked) },
	TypeUserIdentityUnlinked:   func() any { return new(IdentityUnlinked) },
	TypeUserSuspended:          func() any { return new(UserStatusChanged) },
	TypeUserReactivated:        func() any { return new(UserStatusChanged) },
	TypeUserDeprovisioned:      func() any { return new(UserStatusChanged) },
	TypeUserRoleChanged:        func() any { return new(UserRoleChanged) },
	TypeSeatsExhausted:         func() any { return new(SeatsExhausted) },
	TypeRoleReviewRequested:    func() any { return new(RoleReviewRequested) },
	TypeRoleReviewDecided:      func() any { return new(RoleReviewDecided) },
	TypeSeatsThresholdReached:  func() any { return new(SeatsThresholdReached) },
	TypeIdPCertificateExpiring: func() any { return new(IdPCertificateExpiring) },
	TypeProvisioningFailed:     func() any { return new(ProvisioningFailed) },
	TypeSignupHeld:             func() any { return new(SignupHeld) },
	TypeInactiveUsersSuspended: func() any { return new(InactiveUsersSuspended) },
}

// ResultOf decodes the provisioner's answer ev, of either version of
// provisioning.result (ProvisioningResultTypes): consumers accept every
// version the provisioner may send.
func ResultOf(ev Event) (ProvisioningResult, error) {
	for _, t := range ProvisioningResultTypes() {
		if Type(ev.Type()) == t {
			return DataAs[ProvisioningResult](ev, t)
		}
	}
	return ProvisioningResult{}, fmt.Errorf("events: %w: got type %q, want one of %v", ErrInvalid, ev.Type(), ProvisioningResultTypes())
}

// DataAs decodes the data of an event of type t into a T. It fails with
// ErrInvalid when the event has another type.
func DataAs[T any](ev Event, t Type) (T, error) {
	var v T
	if Type(ev.Type()) != t {
		return v, fmt.Errorf("events: %w: got type %q, want %q", ErrInvalid, ev.Type(), t)
	}
	if err := json.Unmarshal(ev.Data(), &v); err != nil {
		return v, fmt.Errorf("events: %w: %s data: %w", ErrInvalid, t, err)
	}
	return v, nil
}

// ExtractTrace returns ctx carrying the remote span context found in the
// message's traceparent header, if any. Header names are matched in any
// case. Without a traceparent header, the CloudEvents distributed-tracing
// extension ("ce-traceparent", as the CloudEvents SDKs write it) is taken
// instead. The tracestate is dropped: jitprov uses none, and a vendor's
// state set by any publisher on the bus would otherwise travel on through
// the outbox and the alerts into customers' webhook requests.
func ExtractTrace(ctx context.Context, h nats.Header) context.Context {
	tp, ts := "traceparent", "tracestate"
	if lookupFold(h, tp) == "" && lookupFold(h, "ce-traceparent") != "" {
		tp, ts = "ce-traceparent", "ce-tracestate"
	}
	ctx = traceContext.Extract(ctx, traceCarrier{h: h, parent: tp, state: ts})
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() && sc.TraceState().Len() > 0 {
		ctx = trace.ContextWithRemoteSpanContext(ctx, sc.WithTraceState(trace.TraceState{}))
	}
	return ctx
}

// ReplyTo returns the subject a login names in its Jitprov-Reply-To
// header (HeaderReplyTo), read in any case like the CloudEvents headers:
// "jitprov-reply-to" and "JITPROV-REPLY-TO" name it too. It returns "" when
// there is none. The header under two spellings with different values is
// ambiguous, an error wrapping ErrInvalid (Decode refuses such a login).
func ReplyTo(h nats.Header) (string, error) {
	// Sorted, so that the error names the same spellings on every run.
	keys := make([]string, 0, 1)
	for k, v := range h {
		if len(v) > 0 && strings.EqualFold(k, HeaderReplyTo) {
			keys = append(keys, k)
		}
	}
	if len(keys) == 0 {
		return "", nil
	}
	sort.Strings(keys)
	for _, k := range keys[1:] {
		if !equalValues(h[keys[0]], h[k]) {
			return "", ambiguous(headerReplyToLower, keys[0], k)
		}
	}
	return h[keys[0]][0], nil
}

// headerReplyToLower is HeaderReplyTo as canonicalHeader writes it.
var headerReplyToLower = strings.ToLower(HeaderReplyTo)

func ambiguous(name, a, b string) error {
	return fmt.Errorf("events: %w: header %q arrives as both %q and %q with different values; "+
		"header names are case-insensitive here, so the message is ambiguous", ErrInvalid, name, a, b)
}

// HeaderValue returns the first value of the header named key, matched
// in any case (an exact match first), as Decode reads the CloudEvents
// headers; for logging what a message that Decode refused claimed to be.
func HeaderValue(h nats.Header, key string) string { return lookupFold(h, key) }

// lookupFold returns the first value of the header named key in any case.
func lookupFold(h nats.Header, key string) string {
	if v := h.Get(key); v != "" {
		return v
	}
	for k, v := range h {
		if len(v) > 0 && strings.EqualFold(k, key) {
			return v[0]
		}
	}
	return ""
}

// traceCarrier reads the W3C trace context from the headers named parent
// and state, in any case.
type traceCarrier struct {
	h             nats.Header
	parent, state string
}

func (c traceCarrier) Get(key string) string {
	switch strings.ToLower(key) {
	case "traceparent":
		return lookupFold(c.h, c.parent)
	case "tracestate":
		return lookupFold(c.h, c.state)
	}
	return lookupFold(c.h, key)
}

func (c traceCarrier) Set(string, string) {}

func (c traceCarrier) Keys() []string { return []string{"traceparent", "tracestate"} }

// InjectTrace writes the trace context of ctx into h.
func InjectTrace(ctx context.Context, h nats.Header) {
	traceContext.Inject(ctx, HeaderCarrier(h))
}

// HeaderCarrier adapts nats.Header to OpenTelemetry propagation with the
// lower-case header names of the W3C spec ("traceparent"), as nats.Header
// keys are case-sensitive.
type HeaderCarrier nats.Header

// Get implements propagation.TextMapCarrier.
func (c HeaderCarrier) Get(key string) string { return nats.Header(c).Get(strings.ToLower(key)) }

// Set implements propagation.TextMapCarrier.
func (c HeaderCarrier) Set(key, value string) { nats.Header(c).Set(strings.ToLower(key), value) }

// Keys implements propagation.TextMapCarrier.
func (c HeaderCarrier) Keys() []string {
	keys := make([]string, 0, len(c))
	for k := range c {
		keys = append(keys, k)
	}
	return keys
}
