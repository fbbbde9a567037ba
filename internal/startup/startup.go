// Package startup lets a service start while what it depends on is still
// down — NATS restarting, Postgres failing over, a JetStream cluster still
// electing its leaders, a whole deployment rolled out at once. Each step
// of the start is retried with backoff until it succeeds or the service is
// stopped; meanwhile the service is alive (it answers /healthz) and not
// ready (/readyz says what it is waiting for), and its logs say why.
package startup

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v5"
)

// Status is a service's readiness during its start. The zero value is a
// service that has not started any step yet.
type Status struct {
	mu      sync.Mutex
	step    string // what the service waits for
	last    error  // why the last try failed
	started bool
}

// Ready reports nil once every step has succeeded (Done), and otherwise
// what the service is waiting for and why: the readiness of a starting
// service.
func (s *Status) Ready(context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.started:
		return nil
	case s.step == "":
		return errors.New("starting")
	case s.last == nil:
		return fmt.Errorf("starting: %s", s.step)
	}
	return fmt.Errorf("starting: waiting for %s: %w", s.step, s.last)
}

// Step is what the service waits for ("" once started): readiness for a
// public listener, without the error's details (hosts, users).
func (s *Status) Step() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.step
}

// Done marks the start as complete.
func (s *Status) Done() {
	s.mu.Lock()
	s.started, s.step, s.last = true, "", nil
	s.mu.Unlock()
}

func (s *Status) set(step string, err error) {
	s.mu.Lock()
	s.step, s.last = step, err
	s.mu.Unlock()
}

// Permanent marks an error that no retry can mend (a refused password, a
// schema too old, an invalid setting): Wait returns it at once.
func Permanent(err error) error { return backoff.Permanent(err) }

// Defaults of Wait.
const (
	// attemptTimeout bounds one try of a step.
	attemptTimeout = 15 * time.Second
	// logEvery is how often a step still failing the same way is logged
	// again.
	logEvery = 30 * time.Second
)

// Wait runs step until it succeeds, returns an error marked Permanent, or
// ctx is done, backing off from 250 ms to 5 s between tries (with
// jitter, so that replicas started together do not retry in step). Each
// try gets at most 15 s. The first failure is logged, then a changed error
// at once and the same error every 30 s, and success after failures;
// status, when not nil, carries what is being waited for to the
// readiness endpoint.
func Wait(ctx context.Context, log *slog.Logger, status *Status, what string, step func(context.Context) error) error {
	if status != nil {
		status.set(what, nil)
	}
	start := time.Now()
	var lastMsg string
	var lastLogged time.Time
	tries := 0
	_, err := backoff.Retry(ctx, func() (struct{}, error) {
		tries++
		actx, cancel := context.WithTimeout(ctx, attemptTimeout)
		defer cancel()
		err := step(actx)
		if err == nil {
			return struct{}{}, nil
		}
		var permanent *backoff.PermanentError
		if errors.As(err, &permanent) {
			return struct{}{}, err
		}
		if status != nil {
			status.set(what, err)
		}
		if msg := err.Error(); msg != lastMsg || time.Since(lastLogged) >= logEvery {
			log.WarnContext(ctx, "waiting for "+what+"; retrying", "tries", tries, "waited", time.Since(start).Round(time.Millisecond), "err", err)
			lastMsg, lastLogged = msg, time.Now()
		}
		return struct{}{}, err
	}, backoff.WithBackOff(&backoff.ExponentialBackOff{InitialInterval: 250 * time.Millisecond,
		RandomizationFactor: 0.5, Multiplier: 2, MaxInterval: 5 * time.Second}), backoff.WithMaxElapsedTime(0))
	switch {
	case err == nil:
		if tries > 1 {
			log.InfoContext(ctx, what+" ready", "tries", tries, "waited", time.Since(start).Round(time.Millisecond))
		}
		return nil
	case ctx.Err() != nil:
		return fmt.Errorf("stopped while waiting for %s (%d tries): %w", what, tries, err)
	}
	return fmt.Errorf("%s: %w", what, err)
}
