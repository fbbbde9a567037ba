package bus_test

import (
	"testing"
	"time"

	"github.com/jitprov/jitprov/internal/bus"
)

// TestNakDelay holds the Nak delays to what docs/config.md and
// docs/events.md promise: after delivery n, between half of
// lo·2^(n-1) (capped at hi) and that step itself, so that hi bounds
// every delay, and spread over that range (jitter).
func TestNakDelay(t *testing.T) {
	for _, tc := range []struct {
		name   string
		n      int
		lo, hi time.Duration
		step   time.Duration
	}{
		{name: "first try", n: 1, lo: 5 * time.Second, hi: 10 * time.Minute, step: 5 * time.Second},
		{name: "doubles", n: 2, lo: 5 * time.Second, hi: 10 * time.Minute, step: 10 * time.Second},
		{name: "doubles again", n: 4, lo: 5 * time.Second, hi: 10 * time.Minute, step: 40 * time.Second},
		{name: "capped", n: 8, lo: 5 * time.Second, hi: 10 * time.Minute, step: 10 * time.Minute},
		{name: "provisioner first", n: 1, lo: time.Second, hi: 30 * time.Second, step: time.Second},
		{name: "provisioner capped", n: 6, lo: time.Second, hi: 30 * time.Second, step: 30 * time.Second},
		{name: "provisioner at max deliver", n: 240, lo: time.Second, hi: 30 * time.Second, step: 30 * time.Second},
		{name: "far past any doubling", n: 1 << 30, lo: time.Nanosecond * 7, hi: time.Hour, step: time.Hour},
		{name: "delivery 0 counts as the first", n: 0, lo: time.Second, hi: time.Minute, step: time.Second},
		{name: "min above max", n: 1, lo: time.Hour, hi: time.Minute, step: time.Minute},
		{name: "odd durations", n: 3, lo: 333 * time.Millisecond, hi: time.Minute, step: 1332 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			least, most := tc.step, time.Duration(0)
			for range 2000 {
				d := bus.NakDelay(tc.n, tc.lo, tc.hi)
				if d < tc.step/2 || d > tc.step {
					t.Fatalf("NakDelay(%d, %s, %s) = %s, want within [%s, %s]", tc.n, tc.lo, tc.hi, d, tc.step/2, tc.step)
				}
				least, most = min(least, d), max(most, d)
			}
			// 2000 uniform draws fall within 5% of both ends.
			if spread := tc.step / 2; least > tc.step/2+spread/20 || most < tc.step-spread/20 {
				t.Errorf("NakDelay(%d, %s, %s) ranged over [%s, %s], want jitter over [%s, %s]", tc.n, tc.lo, tc.hi, least, most, tc.step/2, tc.step)
			}
		})
	}
}
