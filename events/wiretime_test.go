package events_test

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jitprov/jitprov/events"
)

// Every time in event data is written fixed-width: RFC 3339, UTC, six
// fraction digits, truncated (never rounded into the next second).
func TestDataTimesAreFixedWidth(t *testing.T) {
	cet := time.FixedZone("CET", 3600)
	for _, tc := range []struct {
		name string
		at   time.Time
		want string
	}{
		{"whole second", time.Date(2025, 3, 4, 9, 15, 2, 0, time.UTC), "2025-03-04T09:15:02.000000Z"},
		{"milliseconds", time.Date(2025, 3, 4, 9, 15, 2, 198e6, time.UTC), "2025-03-04T09:15:02.198000Z"},
		{"trailing zero microsecond", time.Date(2025, 3, 4, 9, 15, 2, 198410e3, time.UTC), "2025-03-04T09:15:02.198410Z"},
		{"nanoseconds truncated", time.Date(2025, 3, 4, 9, 15, 2, 999999999, time.UTC), "2025-03-04T09:15:02.999999Z"},
		{"other zone in UTC", time.Date(2025, 3, 4, 10, 15, 2, 5e5, cet), "2025-03-04T09:15:02.000500Z"},
		{"zero time", time.Time{}, "0001-01-01T00:00:00.000000Z"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ev, err := events.New(events.TypeLoginSeen, "/jitprov/test", "", events.LoginSeen{
				OrganizationID: "acme", ConnectionID: "okta-main", ExternalID: "ada", UserID: "0192f3a4-5b6c-7d8e-9f01-23456789abcd", AuthenticatedAt: tc.at,
			})
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			var raw struct {
				At string `json:"authenticated_at"`
			}
			if err := json.Unmarshal(ev.Data(), &raw); err != nil {
				t.Fatal(err)
			}
			if raw.At != tc.want {
				t.Errorf("authenticated_at = %q, want %q", raw.At, tc.want)
			}
			got, err := events.DataAs[events.LoginSeen](ev, events.TypeLoginSeen)
			if err != nil {
				t.Fatal(err)
			}
			if want := tc.at.Truncate(time.Microsecond); !got.AuthenticatedAt.Equal(want) {
				t.Errorf("read back %v, want %v", got.AuthenticatedAt, want)
			}
		})
	}

	// A year that RFC 3339 cannot write is refused, as encoding/json does.
	_, err := events.New(events.TypeLoginSeen, "/jitprov/test", "", events.LoginSeen{
		OrganizationID: "acme", ConnectionID: "okta-main", ExternalID: "ada", UserID: "0192f3a4-5b6c-7d8e-9f01-23456789abcd",
		AuthenticatedAt: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC),
	})
	if err == nil || !strings.Contains(err.Error(), "year outside") {
		t.Errorf("New with year 10000 = %v, want an error about the year", err)
	}
}

// The text of the times sorts as the times do, which variable-width
// RFC 3339 does not ("…02Z" sorts after "…02.5Z").
func TestDataTimesSortAsText(t *testing.T) {
	base := time.Date(2025, 3, 4, 9, 15, 2, 0, time.UTC)
	var ats []time.Time
	for _, d := range []time.Duration{0, 1, time.Microsecond, 10 * time.Microsecond, 100 * time.Millisecond, 198410 * time.Microsecond, 500 * time.Millisecond, time.Second} {
		ats = append(ats, base.Add(d))
	}
	var texts []string
	for _, at := range ats {
		ev, err := events.New(events.TypeProvisioningFailed, "/jitprov/test", "", events.ProvisioningFailed{
			LoginID: "l", OrganizationID: "acme", ConnectionID: "c", ExternalID: "e", Reason: "r", Deliveries: 1, FailedAt: at,
		})
		if err != nil {
			t.Fatalf("New: %v", err)
		}
		var raw struct {
			At string `json:"failed_at"`
		}
		if err := json.Unmarshal(ev.Data(), &raw); err != nil {
			t.Fatal(err)
		}
		texts = append(texts, raw.At)
	}
	if !slices.IsSorted(texts) {
		t.Errorf("times in time order do not sort as text: %q", texts)
	}
}

// Times written by older jitprov versions and other producers (any width,
// any offset) are still read.
func TestDecodeReadsVariableWidthTimes(t *testing.T) {
	want := time.Date(2025, 3, 4, 5, 6, 7, 0, time.UTC)
	for _, tc := range []struct {
		text string
		want time.Time
	}{
		{"2025-03-04T05:06:07Z", want},
		{"2025-03-04T05:06:07.5Z", want.Add(500 * time.Millisecond)},
		{"2025-03-04T05:06:07.198Z", want.Add(198 * time.Millisecond)},
		{"2025-03-04T05:06:07.19841Z", want.Add(198410 * time.Microsecond)},
		{"2025-03-04T05:06:07.198410Z", want.Add(198410 * time.Microsecond)},
		{"2025-03-04T05:06:07.123456789Z", want.Add(123456789)},
		{"2025-03-04T06:06:07+01:00", want},
	} {
		t.Run(tc.text, func(t *testing.T) {
			msg := wireMsg()
			msg.Data = []byte(strings.Replace(wireData, "2025-03-04T05:06:07Z", tc.text, 1))
			ev, err := events.Decode(msg)
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			id, err := events.DataAs[events.Identity](ev, events.TypeLoginFirstSeen)
			if err != nil {
				t.Fatal(err)
			}
			if !id.AuthenticatedAt.Equal(tc.want) {
				t.Errorf("authenticated_at = %v, want %v", id.AuthenticatedAt, tc.want)
			}
		})
	}
}
