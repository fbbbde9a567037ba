package token

import (
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/jonboulle/clockwork"
	"golang.org/x/time/rate"
)

// Defaults of a Limiter: 10 failed attempts a minute per client.
const (
	DefaultFailures = 10
	DefaultPer      = time.Minute
)

// Limiter limits the failed attempts of each client (a key the HTTP layer
// chooses, e.g. the remote address): a client may fail `failures` times in
// a row, then once every per/failures, as a token bucket (x/time/rate)
// refills. The HTTP layer asks Allow before checking a secret, answers 429
// Too Many Requests when it says no, and calls Fail when Authenticate
// refuses one (Refused). A success does not forgive failures: a client
// holding one good token could otherwise guess between its uses.
//
// Clients that have not failed for `per` are forgotten, so the memory held
// is that of the clients failing within the last `per` or so.
type Limiter struct {
	limit rate.Limit
	burst int
	per   time.Duration
	clock clockwork.Clock

	mu      sync.Mutex
	clients map[string]*rate.Limiter
	swept   time.Time
}

// NewLimiter allows each client failures failed attempts per per (both
// above zero), telling the time by clock (nil for the real one).
func NewLimiter(failures int, per time.Duration, clock clockwork.Clock) *Limiter {
	if failures <= 0 || per <= 0 {
		panic(fmt.Sprintf("token: NewLimiter(%d, %v): want failures and per above zero", failures, per))
	}
	if clock == nil {
		clock = clockwork.NewRealClock()
	}
	return &Limiter{
		limit:   rate.Every(per / time.Duration(failures)),
		burst:   failures,
		per:     per,
		clock:   clock,
		clients: make(map[string]*rate.Limiter),
		swept:   clock.Now(),
	}
}

// Allow reports whether clientKey may present a secret now: false while it
// has used up its failures.
func (l *Limiter) Allow(clientKey string) bool {
	return l.tokens(clientKey) >= 1
}

// RetryAfter is how long clientKey must wait before Allow says yes (0 when
// it does now), for a Retry-After header.
func (l *Limiter) RetryAfter(clientKey string) time.Duration {
	missing := 1 - l.tokens(clientKey)
	if missing <= 0 {
		return 0
	}
	// To the microsecond, never 0: floating point is off by a few ns.
	return max(time.Duration(math.Round(missing/float64(l.limit)*1e6))*time.Microsecond, time.Microsecond)
}

// tokens is how many failures clientKey has left now.
func (l *Limiter) tokens(clientKey string) float64 {
	now := l.clock.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	lim, ok := l.clients[clientKey]
	if !ok {
		return float64(l.burst)
	}
	return lim.TokensAt(now)
}

// Fail records a failed attempt of clientKey.
func (l *Limiter) Fail(clientKey string) {
	now := l.clock.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	l.sweep(now)
	lim, ok := l.clients[clientKey]
	if !ok {
		lim = rate.NewLimiter(l.limit, l.burst)
		l.clients[clientKey] = lim
	}
	// Refused when none is left: the client stays refused until its
	// bucket refills, however often it fails meanwhile.
	lim.AllowN(now, 1)
}

// sweep forgets, at most once per l.per, the clients whose failures have
// all been refilled: they are as if they had never failed.
func (l *Limiter) sweep(now time.Time) {
	if now.Sub(l.swept) < l.per {
		return
	}
	l.swept = now
	for k, lim := range l.clients {
		if lim.TokensAt(now) >= float64(l.burst) {
			delete(l.clients, k)
		}
	}
}
