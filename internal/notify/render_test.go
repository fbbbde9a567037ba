package notify_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/jitprov/jitprov/events"
	"github.com/jitprov/jitprov/internal/notify"
)

// The seat messages agree in number with the people and seats they count,
// in the mail (text and HTML) and in the Slack text alike.
func TestRenderSeatMessagesAgreeInNumber(t *testing.T) {
	since := time.Date(2026, 12, 7, 9, 30, 0, 0, time.UTC)
	tests := []struct {
		name          string
		alert         events.Type
		data          any
		count, people int
		want, wantNot []string
	}{
		{
			name: "one person turned away", alert: events.TypeSeatsExhausted,
			data:  events.SeatsExhausted{OrganizationID: "acme", MaxSeats: 3, SeatsUsed: 3, ConnectionID: "okta", ExternalID: "x1", LoginID: "l1"},
			count: 1, people: 1,
			want:    []string{"Acme: 1 person could not sign in — all 3 seats are taken", "1 person signed in through single sign-on for the first time and was turned away", "uses all of its 3 seats"},
			wantNot: []string{"were turned away", "1 people", "sign-in attempts in all"},
		},
		{
			name: "several people turned away", alert: events.TypeSeatsExhausted,
			data:  events.SeatsExhausted{OrganizationID: "acme", MaxSeats: 3, SeatsUsed: 3, ConnectionID: "okta", ExternalID: "x1", LoginID: "l1"},
			count: 2, people: 2,
			want:    []string{"Acme: 2 people could not sign in", "2 people signed in through single sign-on for the first time and were turned away"},
			wantNot: []string{"was turned away", "in all"},
		},
		{
			name: "one person, several attempts", alert: events.TypeSeatsExhausted,
			data:  events.SeatsExhausted{OrganizationID: "acme", MaxSeats: 3, SeatsUsed: 3, ConnectionID: "okta", ExternalID: "x1", LoginID: "l1"},
			count: 4, people: 1,
			want:    []string{"1 person signed in", "and was turned away", "(4 sign-in attempts in all.)"},
			wantNot: []string{"were turned away"},
		},
		{
			name: "a single seat", alert: events.TypeSeatsExhausted,
			data:  events.SeatsExhausted{OrganizationID: "acme", MaxSeats: 1, SeatsUsed: 1, ConnectionID: "okta", ExternalID: "x1", LoginID: "l1"},
			count: 1, people: 1,
			want:    []string{"could not sign in — its only seat is taken", "uses its only seat"},
			wantNot: []string{"1 seats", "all 1"},
		},
		{
			name: "threshold, one seat used", alert: events.TypeSeatsThresholdReached,
			data:    events.SeatsThresholdReached{OrganizationID: "acme", MaxSeats: 1, SeatsUsed: 1, ThresholdPercent: 90, UserID: "0d9f2a52-3c1b-4d8e-9f6a-1b2c3d4e5f60", LoginID: "l1"},
			count:   1,
			want:    []string{"Acme uses 1 of 1 seat", "1 of 1 is taken"},
			wantNot: []string{"1 seats", "1 of 1 are"},
		},
		{
			name: "threshold, several seats used", alert: events.TypeSeatsThresholdReached,
			data:  events.SeatsThresholdReached{OrganizationID: "acme", MaxSeats: 3, SeatsUsed: 2, ThresholdPercent: 60, UserID: "0d9f2a52-3c1b-4d8e-9f6a-1b2c3d4e5f60", LoginID: "l1"},
			count: 1,
			want:  []string{"Acme uses 2 of 3 seats", "2 of 3 are taken"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev, err := events.New(tt.alert, "/test", "", tt.data)
			if err != nil {
				t.Fatal(err)
			}
			raw, err := json.Marshal(ev)
			if err != nil {
				t.Fatal(err)
			}
			m, err := notify.Render(notify.Job{ID: "j1", Org: "acme", Alert: tt.alert.Short(), Events: []json.RawMessage{raw},
				Count: tt.count, People: tt.people, Since: since}, "Acme", notify.Links{})
			if err != nil {
				t.Fatal(err)
			}
			slack, err := m.Slack()
			if err != nil {
				t.Fatal(err)
			}
			for _, out := range []struct{ name, text string }{
				{"mail text", m.Subject + "\n" + m.Text()},
				{"mail HTML", m.HTML()},
				{"Slack", string(slack)},
			} {
				for _, w := range tt.want {
					if !strings.Contains(out.text, w) {
						t.Errorf("%s lacks %q:\n%s", out.name, w, out.text)
					}
				}
				for _, w := range tt.wantNot {
					if strings.Contains(out.text, w) {
						t.Errorf("%s has %q:\n%s", out.name, w, out.text)
					}
				}
			}
		})
	}
}

// The alert label of the alerts counter is one of jitprov's alert types or
// "other": a type sent by anyone on the bus makes no series of its own.
func TestAlertLabelIsBounded(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{string(events.TypeSeatsExhausted), string(events.TypeSeatsExhausted)},
		{string(events.TypeRoleReviewDecided), "other"},
		{"io.example.random-1234", "other"},
		{"", "other"},
	} {
		if got := notify.AlertLabel(c.in); got != c.want {
			t.Errorf("alertLabel(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}
