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
		})
	}
}
