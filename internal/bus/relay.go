package bus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/jitprov/jitprov/internal/store"
)

// Outbox is what the relay needs of a store.
type Outbox interface {
	RelayOutbox(ctx context.Context, limit int, publish func(context.Context, []store.OutboxMessage) (int, error)) (int, error)
	PruneOutbox(ctx context.Context, age time.Duration) (int64, error)
}

// Relay publishes the outbox to JetStream. Each event is published with
// Nats-Msg-Id = its event id and marked sent only after its PubAck, so an
// event is never lost; a relay that dies between the PubAck and the mark
// leaves the event to be published again, and JetStream's duplicate window
// drops the copy, so it is not doubled either. Any number of replicas may
// run a relay: the store lets one publish at a time, in outbox order.
type Relay struct {
	outbox Outbox
	js     jetstream.JetStream
	log    *slog.Logger
	wake   chan struct{}

	// Batch is how many events one round publishes at most.
	Batch int
	// Interval is how often the relay looks without being woken.
	Interval time.Duration
	// Retention is how long sent events stay in the outbox.
	Retention time.Duration
	// OnPublished, when set, is called with the number of events marked sent.
	OnPublished func(n int)
}

// NewRelay returns a relay with default settings.
func NewRelay(o Outbox, js jetstream.JetStream, log *slog.Logger) *Relay {
	return &Relay{outbox: o, js: js, log: log, wake: make(chan struct{}, 1),
		Batch: 256, Interval: time.Second, Retention: 24 * time.Hour}
}

// Wake asks the relay to look at the outbox now, e.g. after a commit.
func (r *Relay) Wake() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// Run relays until ctx is done, then makes one last bounded attempt so that
// events decided just before shutdown leave now rather than at the next start.
func (r *Relay) Run(ctx context.Context) error {
	tick := time.NewTicker(r.Interval)
	defer tick.Stop()
	prune := time.NewTicker(10 * time.Minute)
	defer prune.Stop()
	for {
		select {
		case <-ctx.Done():
			final, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer cancel()
			r.drain(final)
			return nil
		case <-r.wake:
		case <-tick.C:
		case <-prune.C:
			if n, err := r.outbox.PruneOutbox(ctx, r.Retention); err != nil {
				r.log.WarnContext(ctx, "outbox prune failed", "err", err)
			} else if n > 0 {
				r.log.DebugContext(ctx, "outbox pruned", "deleted", n)
			}
			continue
		}
		r.drain(ctx)
	}
}

// drain relays until the outbox is empty or a round fails.
func (r *Relay) drain(ctx context.Context) {
	for ctx.Err() == nil {
		n, err := r.outbox.RelayOutbox(ctx, r.Batch, r.publish)
		if n > 0 && r.OnPublished != nil {
			r.OnPublished(n)
		}
		if err != nil {
			if !errors.Is(err, context.Canceled) {
				r.log.WarnContext(ctx, "outbox relay round failed; the events stay in the outbox and are retried",
					"published", n, "err", err)
			}
			return
		}
		if n < r.Batch {
			return
		}
	}
}

// publish sends msgs asynchronously and waits for every PubAck. It returns
// how many leading messages were acknowledged.
func (r *Relay) publish(ctx context.Context, msgs []store.OutboxMessage) (int, error) {
	futures := make([]jetstream.PubAckFuture, 0, len(msgs))
	for _, m := range msgs {
		f, err := r.js.PublishMsgAsync(&nats.Msg{Subject: m.Subject, Header: m.Header, Data: m.Data},
			jetstream.WithMsgID(m.EventID))
		if err != nil {
			return r.await(ctx, futures, msgs, fmt.Errorf("publish event %s to %s: %w", m.EventID, m.Subject, err))
		}
		futures = append(futures, f)
	}
	return r.await(ctx, futures, msgs, nil)
}

func (r *Relay) await(ctx context.Context, futures []jetstream.PubAckFuture, msgs []store.OutboxMessage, pubErr error) (int, error) {
	timeout := time.NewTimer(10 * time.Second)
	defer timeout.Stop()
	for i, f := range futures {
		select {
		case <-f.Ok():
		case err := <-f.Err():
			return i, fmt.Errorf("bus: event %s to %s not acknowledged: %w", msgs[i].EventID, msgs[i].Subject, err)
		case <-timeout.C:
			return i, fmt.Errorf("bus: event %s to %s: no PubAck within 10s", msgs[i].EventID, msgs[i].Subject)
		case <-ctx.Done():
			return i, ctx.Err()
		}
	}
	if pubErr != nil {
		return len(futures), fmt.Errorf("bus: %w", pubErr)
	}
	return len(futures), nil
}
