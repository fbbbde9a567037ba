package events_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/jitprov/jitprov/events"
)

// readers decode the data of each type with DataAs, as consumers do.
var readers = map[events.Type]func(events.Event, events.Type) (any, error){
	events.TypeLoginFirstSeen:         dataAs[events.Identity],
	events.TypeLoginSeen:              dataAs[events.LoginSeen],
	events.TypeProvisioningResult:     dataAs[events.ProvisioningResult],
	events.TypeProvisioningResultV2:   dataAs[events.ProvisioningResult],
	events.TypeUserCreated:            dataAs[events.UserCreated],
	events.TypeUserUpdated:            dataAs[events.UserUpdated],
	events.TypeUserCreatedV2:          dataAs[events.UserCreated],
	events.TypeUserUpdatedV2:          dataAs[events.UserUpdated],
	events.TypeUserIdentityLinked:     dataAs[events.IdentityLinked],
	events.TypeUserIdentityUnlinked:   dataAs[events.IdentityUnlinked],
	events.TypeUserSuspended:          dataAs[events.UserStatusChanged],
	events.TypeUserReactivated:        dataAs[events.UserStatusChanged],
	events.TypeUserDeprovisioned:      dataAs[events.UserStatusChanged],
	events.TypeUserRoleChanged:        dataAs[events.UserRoleChanged],
	events.TypeSeatsExhausted:         dataAs[events.SeatsExhausted],
	events.TypeRoleReviewRequested:    dataAs[events.RoleReviewRequested],
	events.TypeRoleReviewDecided:      dataAs[events.RoleReviewDecided],
	events.TypeSeatsThresholdReached:  dataAs[events.SeatsThresholdReached],
	events.TypeIdPCertificateExpiring: dataAs[events.IdPCertificateExpiring],
	events.TypeProvisioningFailed:     dataAs[events.ProvisioningFailed],
	events.TypeSignupHeld:             dataAs[events.SignupHeld],
	events.TypeInactiveUsersSuspended: dataAs[events.InactiveUsersSuspended],
}

func dataAs[T any](ev events.Event, t events.Type) (any, error) { return events.DataAs[T](ev, t) }

// headerText renders h one "key: value" line per value; parseHeader
// reads it back, any line without a colon being skipped.
func headerText(h nats.Header) string {
	var b strings.Builder
	for k, vs := range h {
		for _, v := range vs {
			b.WriteString(k + ": " + v + "\n")
		}
	}
	return b.String()
}

func parseHeader(s string) nats.Header {
	h := nats.Header{}
	for line := range strings.SplitSeq(s, "\n") {
		k, v, ok := strings.Cut(line, ":")
		if ok {
			h.Add(k, strings.TrimPrefix(v, " "))
		}
	}
	return h
}

// FuzzDecode feeds Decode what another service could publish into the
// streams: any headers and data. Decode either refuses with ErrInvalid,
// or returns an event of a known type whose data every reader of that
// type reads (DataAs; readers of other types refuse with ErrInvalid),
// and what was read builds a valid event again (New validates against the
// schema) that encodes, decodes and reads back the same. ExtractTrace
// takes any headers.
func FuzzDecode(f *testing.F) {
	ctx := context.Background()
	for _, s := range samples() {
		ev, err := events.New(s.typ, source, s.subject, s.data)
		if err != nil {
			f.Fatal(err)
		}
		msg, err := events.Encode(ctx, ev, "jit.fuzz")
		if err != nil {
			f.Fatal(err)
		}
		msg.Header.Set("traceparent", "00-4bf92f3577b34da6a3ce929b0e0e4736-00f067aa0ba902b7-01")
		f.Add(headerText(msg.Header), msg.Data)
		invalid, err := json.Marshal(s.invalid)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(headerText(msg.Header), invalid)
	}
	login := samples()[0]
	ev, err := events.New(login.typ, source, login.subject, login.data)
	if err != nil {
		f.Fatal(err)
	}
	msg, err := events.Encode(ctx, ev, "jit.fuzz")
	if err != nil {
		f.Fatal(err)
	}
	h := headerText(msg.Header)
	f.Add(strings.Replace(h, "ce-specversion: 1.0", "ce-specversion: 0.3", 1), msg.Data)
	f.Add(strings.Replace(h, "content-type: application/json", "content-type: application/xml", 1), msg.Data)
	f.Add(h+"ce-dataschema: https://evil.example/schema.json\n", msg.Data)
	f.Add(strings.Replace(h, "content-type: application/json", "content-type: application/json; charset=utf-8", 1), msg.Data)
	f.Add(strings.Replace(h, "content-type: application/json", "Content-Type: application/json;charset=ISO-8859-1", 1), msg.Data)
	f.Add(strings.Replace(h, "ce-id: ", "Ce-Id: ", 1), msg.Data)
	f.Add(h+"Ce-Id: another\n", msg.Data)
	f.Add(h+"ce-traceparent: 00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01\nce-tracestate: b=2\n", msg.Data)
	f.Add(h+"traceparent: 00-zz-00-01\ntracestate: a=b,,c\n", msg.Data)
	f.Add(h, regexp.MustCompile(`"authenticated_at":"[^"]*"`).ReplaceAll(msg.Data, []byte(`"authenticated_at":"1985-04-12t23:20:50.52z"`)))
	f.Add(h, bytes.Replace(msg.Data, []byte(`"email_verified":true`), []byte(`"email_verified":true,"email_verified":false`), 1))
	f.Add("ce-specversion: 1.0\n", []byte("{}"))
	f.Add("", []byte{})

	f.Fuzz(func(t *testing.T, header string, data []byte) {
		msg := &nats.Msg{Subject: "jit.fuzz", Header: parseHeader(header), Data: data}
		_ = events.ExtractTrace(ctx, msg.Header)
		ev, err := events.Decode(msg)
		if err != nil {
			if !errors.Is(err, events.ErrInvalid) {
				t.Fatalf("Decode refused without ErrInvalid: %v", err)
			}
			return
		}
		typ := events.Type(ev.Type())
		read, ok := readers[typ]
		if !ok {
			t.Fatalf("Decode accepted type %q, which has no reader", typ)
		}
		v, err := read(ev, typ)
		if err != nil {
			t.Fatalf("Decode accepted %s data that DataAs refuses: %v\ndata: %s", typ, err, ev.Data())
		}
		for other, r := range readers {
			if other == typ {
				continue
			}
			if _, err := r(ev, other); !errors.Is(err, events.ErrInvalid) {
				t.Fatalf("DataAs as %s read a %s event: %v", other, typ, err)
			}
		}
		at := ev.Time()
		if at.IsZero() {
			at = time.Unix(0, 0) // ce-time is optional; New requires one
		}
		again, err := events.NewWithID(ev.ID(), typ, ev.Source(), ev.Subject(), at, v)
		if err != nil {
			t.Fatalf("what DataAs read from an accepted %s event does not build one: %v\ndata: %s\nread: %+v", typ, err, ev.Data(), v)
		}
		msg2, err := events.Encode(ctx, again, "jit.fuzz")
		if err != nil {
			t.Fatalf("Encode: %v", err)
		}
		back, err := events.Decode(msg2)
		if err != nil {
			t.Fatalf("Decode of the re-encoded event: %v", err)
		}
		v2, err := read(back, typ)
		if err != nil {
			t.Fatal(err)
		}
		j1, _ := json.Marshal(v)
		j2, _ := json.Marshal(v2)
		if !bytes.Equal(j1, j2) {
			t.Fatalf("read back differently:\n%s\n%s", j1, j2)
		}
	})
}
