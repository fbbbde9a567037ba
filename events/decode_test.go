package events_test

import (
	"context"
	"errors"
	"regexp"
	"testing"

	"github.com/jitprov/jitprov/events"
)

// Data that the type's schema admits but its Go type cannot read is
// refused by Decode with ErrInvalid, as data breaking the schema is: no
// consumer could ever read it with DataAs. Found by FuzzDecode (a time
// with a lower-case "t", valid RFC 3339 and JSON Schema date-time).
func TestDecodeRefusesDataItsGoTypeCannotRead(t *testing.T) {
	for _, tt := range []struct {
		name string
		typ  events.Type
		from *regexp.Regexp
		to   string
	}{
		{"date-time with a lower-case t", events.TypeLoginFirstSeen, regexp.MustCompile(`"authenticated_at":"[^"]*"`), `"authenticated_at":"1985-04-12t23:20:50.52z"`},
		{"integer written with an exponent", events.TypeSeatsExhausted, regexp.MustCompile(`"max_seats":10`), `"max_seats":1e1`},
		{"integer written with a fraction", events.TypeSeatsExhausted, regexp.MustCompile(`"max_seats":10`), `"max_seats":10.0`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var data any
			for _, s := range samples() {
				if s.typ == tt.typ {
					data = s.data
				}
			}
			ev, err := events.New(tt.typ, source, "s", data)
			if err != nil {
				t.Fatal(err)
			}
			msg, err := events.Encode(context.Background(), ev, "jit.test")
			if err != nil {
				t.Fatal(err)
			}
			edited := tt.from.ReplaceAll(msg.Data, []byte(tt.to))
			if string(edited) == string(msg.Data) {
				t.Fatalf("%s not found in %s", tt.from, msg.Data)
			}
			msg.Data = edited
			if _, err := events.Decode(msg); !errors.Is(err, events.ErrInvalid) {
				t.Fatalf("Decode: got %v, want ErrInvalid", err)
			}
			if _, err := events.DecodeTrusted(msg); !errors.Is(err, events.ErrInvalid) {
				t.Fatalf("DecodeTrusted: got %v, want ErrInvalid", err)
			}
		})
	}
}

// NewUnvalidated builds what New would, without the schema check: the
// same event for valid data, and an event the consumer's Decode refuses
// for data the schema does not admit.
func TestNewUnvalidated(t *testing.T) {
	ctx := context.Background()
	for _, s := range samples() {
		t.Run(s.typ.Short(), func(t *testing.T) {
			checked, err := events.New(s.typ, source, "s", s.data)
			if err != nil {
				t.Fatal(err)
			}
			unchecked, err := events.NewUnvalidated(s.typ, source, "s", s.data)
			if err != nil {
				t.Fatal(err)
			}
			if string(checked.Data()) != string(unchecked.Data()) || checked.DataSchema() != unchecked.DataSchema() ||
				checked.Type() != unchecked.Type() || checked.DataContentType() != unchecked.DataContentType() {
				t.Fatalf("New and NewUnvalidated differ:\n%v\n%v", checked, unchecked)
			}
			msg, err := events.Encode(ctx, unchecked, "jit.test")
			if err != nil {
				t.Fatal(err)
			}
			if _, err := events.Decode(msg); err != nil {
				t.Fatalf("Decode of NewUnvalidated's event: %v", err)
			}
		})
	}
	bad := events.Identity{OrganizationID: "Not An Org", ConnectionID: "c", Protocol: events.ProtocolSAML, ExternalID: "e"}
	if _, err := events.New(events.TypeLoginFirstSeen, source, "", bad); !errors.Is(err, events.ErrInvalid) {
		t.Fatalf("New = %v, want ErrInvalid", err)
	}
	ev, err := events.NewUnvalidated(events.TypeLoginFirstSeen, source, "", bad)
	if err != nil {
		t.Fatalf("NewUnvalidated = %v; it leaves the schema to the consumer", err)
	}
	msg, err := events.Encode(ctx, ev, "jit.test")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := events.Decode(msg); !errors.Is(err, events.ErrInvalid) {
		t.Fatalf("Decode = %v, want ErrInvalid: the consumer's check is the one that holds", err)
	}
}
