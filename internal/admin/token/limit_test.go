package token

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
)

func TestLimiter(t *testing.T) {
	type step struct {
		advance time.Duration
		fail    int  // failures of "a" to record
		allowA  bool // then Allow("a")
	}
	for _, c := range []struct {
		name  string
		steps []step
	}{
		{"never failed", []step{{allowA: true}}},
		{"nine failures are allowed a tenth", []step{{fail: 9, allowA: true}}},
		{"ten failures are refused", []step{{fail: 10, allowA: false}}},
		{"refused until one failure refills (6s)", []step{
			{fail: 10, allowA: false},
			{advance: 5 * time.Second, allowA: false},
			{advance: time.Second, allowA: true},
			{fail: 1, allowA: false},
		}},
		{"failing while refused changes nothing", []step{
			{fail: 10, allowA: false},
			{fail: 100, allowA: false},
			{advance: 6 * time.Second, allowA: true},
		}},
		{"ten a minute go on being allowed", []step{
			{fail: 10, allowA: false},
			{advance: time.Minute, allowA: true},
			{fail: 9, allowA: true},
			{fail: 1, allowA: false},
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			clk := clockwork.NewFakeClock()
			l := NewLimiter(10, time.Minute, clk)
			for i, s := range c.steps {
				clk.Advance(s.advance)
				for range s.fail {
					l.Fail("a")
				}
				if got := l.Allow("a"); got != s.allowA {
					t.Errorf("step %d: Allow(a) = %v, want %v", i, got, s.allowA)
				}
				if got := l.RetryAfter("a") == 0; got != s.allowA {
					t.Errorf("step %d: RetryAfter(a) = %v, want 0 exactly when allowed", i, l.RetryAfter("a"))
				}
				if !l.Allow("b") {
					t.Errorf("step %d: Allow(b) = false; b never failed", i)
				}
			}
		})
	}
}

func TestLimiterRetryAfter(t *testing.T) {
	clk := clockwork.NewFakeClock()
	l := NewLimiter(10, time.Minute, clk)
	for range 10 {
		l.Fail("a")
	}
	if got := l.RetryAfter("a"); got != 6*time.Second {
		t.Errorf("RetryAfter after 10 failures: %v, want 6s", got)
	}
	clk.Advance(2 * time.Second)
	if got := l.RetryAfter("a"); got != 4*time.Second {
		t.Errorf("RetryAfter 2s later: %v, want 4s", got)
	}
}

// Clients whose failures have all refilled are forgotten.
func TestLimiterForgets(t *testing.T) {
	clk := clockwork.NewFakeClock()
	l := NewLimiter(10, time.Minute, clk)
	for i := range 1000 {
		l.Fail(fmt.Sprintf("client-%d", i))
	}
	for range 10 {
		l.Fail("stubborn")
	}
	clk.Advance(61 * time.Second)
	l.Fail("stubborn")
	l.Fail("stubborn")
	l.mu.Lock()
	n := len(l.clients)
	l.mu.Unlock()
	if n != 1 {
		t.Errorf("%d clients kept a minute later, want 1 (the one still failing)", n)
	}
	if !l.Allow("client-1") {
		t.Error("a forgotten client is refused")
	}
}

func TestLimiterConcurrent(t *testing.T) {
	clk := clockwork.NewFakeClock()
	l := NewLimiter(10, time.Minute, clk)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 200 {
				key := fmt.Sprintf("client-%d", (g+i)%4)
				if l.Allow(key) {
					l.Fail(key)
				}
				_ = l.RetryAfter(key)
				if i%50 == 0 {
					clk.Advance(time.Second)
				}
			}
		})
	}
	wg.Wait()
}

func TestNewLimiterRefusesNonsense(t *testing.T) {
	for _, c := range []struct {
		failures int
		per      time.Duration
	}{{0, time.Minute}, {10, 0}, {-1, time.Minute}} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("NewLimiter(%d, %v) did not panic", c.failures, c.per)
				}
			}()
			NewLimiter(c.failures, c.per, nil)
		}()
	}
}
