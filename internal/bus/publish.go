package bus

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/jitprov/jitprov/events"
)

// Publish publishes ev on its type's subject for organisation org and waits
// for JetStream to store it. The event id is the Nats-Msg-Id, so publishing
// the same event again within the duplicate window stores it once. The
// publish is a producer span (StartPublish) of the provider of ctx's span,
// whose trace context the message carries.
func Publish(ctx context.Context, js jetstream.JetStream, ev events.Event, org string) (err error) {
	subject, err := events.Subject(events.Type(ev.Type()), org)
	if err != nil {
		return fmt.Errorf("bus: %w", err)
	}
	ctx, span := StartPublish(ctx, nil, eventName(ev.Type()), subject, ev.ID())
	defer func() { endPublish(span, err) }()
	msg, err := events.Encode(ctx, ev, subject)
	if err != nil {
		return fmt.Errorf("bus: %w", err)
	}
	if _, err := js.PublishMsg(ctx, msg, jetstream.WithMsgID(ev.ID())); err != nil {
		return fmt.Errorf("bus: publish %s to %s: %w", ev.Type(), subject, err)
	}
	return nil
}

// Unavailable wraps err with sentinel (a package's ErrUnavailable) unless
// JetStream itself answered with an API error: it tells "NATS cannot be
// reached, try later" from "NATS refused this".
func Unavailable(err, sentinel error) error {
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) {
		return err
	}
	return fmt.Errorf("%w: %w", sentinel, err)
}

// Failure says what a failed JetStream write (a publish, a KV create or
// update) means for the message, and whether to try again.
type Failure int

// Failures of a JetStream write.
const (
	// FailureTransient: not stored; worth another try (no stream leader
	// at that moment, the cluster between leaders).
	FailureTransient Failure = iota
	// FailureUnknown: maybe stored, its PubAck lost (a timeout, a
	// disconnection mid-request); worth another try under the same
	// Nats-Msg-Id, or with a check of what was written.
	FailureUnknown
	// FailureRefused: not stored, and another try would be refused too
	// (the stream answered with an error: full, too large, sealed…).
	FailureRefused
)

// Transient JetStream API errors of a write: the cluster or the stream is
// between leaders. Any other error the stream answers is a refusal.
var transientAPIErrors = []jetstream.ErrorCode{
	10008, // JetStream system temporarily unavailable
	10163, // expected last sequence per subject temporarily unavailable
}

// inProcessAPIErrors: an earlier try with the same Nats-Msg-Id is still
// being stored (a replicated stream's proposal in flight); the next try
// will find it stored, or not.
var inProcessAPIErrors = []jetstream.ErrorCode{
	10158, // duplicate message id is in process
}

// storeFailed is the API error of a stream that could not store a
// message: a refusal when a limit says so, a passing failure otherwise
// (the store closing as its server restarts).
const storeFailed jetstream.ErrorCode = 10077

// storeLimits are the descriptions of a storeFailed that refuses: the
// stream or the organisation is full, or the message too large.
var storeLimits = []string{"maximum messages", "maximum bytes", "message too large"}

// ClassifyPublish classifies the error of a failed JetStream write.
func ClassifyPublish(err error) Failure {
	var apiErr *jetstream.APIError
	switch {
	case errors.As(err, &apiErr) && slices.Contains(inProcessAPIErrors, apiErr.ErrorCode):
		return FailureUnknown
	case errors.As(err, &apiErr) && apiErr.ErrorCode == storeFailed:
		for _, limit := range storeLimits {
			if strings.Contains(apiErr.Description, limit) {
				return FailureRefused
			}
		}
		return FailureUnknown
	case errors.As(err, &apiErr):
		if slices.Contains(transientAPIErrors, apiErr.ErrorCode) {
			return FailureTransient
		}
		return FailureRefused
	case errors.Is(err, jetstream.ErrNoStreamResponse), errors.Is(err, nats.ErrNoResponders):
		// Nobody took the message: no stream leader at that moment.
		return FailureTransient
	case errors.Is(err, nats.ErrConnectionClosed), errors.Is(err, nats.ErrBadSubject),
		errors.Is(err, nats.ErrMaxPayload), errors.Is(err, nats.ErrHeadersNotSupported):
		return FailureRefused
	}
	return FailureUnknown
}

// RetryBackoff is the pause between the attempts of a JetStream write
// retried until the caller's deadline: 50 ms doubling to 2 s, with jitter
// so that replicas do not retry in step after a failover.
func RetryBackoff() backoff.BackOff {
	return &backoff.ExponentialBackOff{InitialInterval: 50 * time.Millisecond, RandomizationFactor: 0.5,
		Multiplier: 2, MaxInterval: 2 * time.Second}
}

// NakDelay is the delay before the redelivery that follows delivery n
// (n ≥ 1) of a message Nak'ed for a retry: lo, 2·lo, 4·lo … up to hi,
// with jitter so that replicas do not retry in step. Each delay lies
// between half of its step and the step itself, so that hi bounds every
// delay (the retry totals in docs/config.md and docs/events.md count on
// it).
//
// The steps are those of an ExponentialBackOff whose interval is ¾ of the
// step, randomized by ⅓: the library's randomized interval is the
// interval ·(1 ± ⅓), i.e. [½, 1] of the step.
func NakDelay(n int, lo, hi time.Duration) time.Duration {
	lo = min(lo, hi)
	b := &backoff.ExponentialBackOff{InitialInterval: lo * 3 / 4, RandomizationFactor: 1.0 / 3,
		Multiplier: 2, MaxInterval: hi * 3 / 4}
	// Past 64 doublings the interval is at its maximum whatever lo is.
	var d time.Duration
	for range min(max(n, 1), 64) {
		d = b.NextBackOff()
	}
	return min(d, hi)
}
