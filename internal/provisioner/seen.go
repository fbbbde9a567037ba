package provisioner

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/trace"

	"github.com/jitprov/jitprov/events"
	"github.com/jitprov/jitprov/internal/bus"
	"github.com/jitprov/jitprov/internal/store"
)

// LoginRecorder records users' latest logins.
type LoginRecorder interface {
	RecordLogins(ctx context.Context, logins []store.Login) (unknown []int, err error)
}

// maxSeenBatch bounds the returning logins recorded in one transaction.
const maxSeenBatch = 256

// recordSeen consumes login.seen — returning logins that sso-edge signed
// in on its fast path — and records each user's last login, until ctx is
// done; then it drains.
//
// It records what is in hand together, in one transaction (up to
// maxSeenBatch), never waiting for more: one commit, one WAL flush, for
// all the returning logins that arrived while the previous batch was
// being written, rather than one each.
func recordSeen(ctx context.Context, cons jetstream.Consumer, s LoginRecorder, tracer trace.Tracer, log *slog.Logger) error {
	in, quit := make(chan jetstream.Msg, maxSeenBatch), make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			var msg jetstream.Msg
			select {
			case msg = <-in:
			case <-quit:
				// What was delivered is recorded before returning; what
				// was not is redelivered.
				for len(in) > 0 {
					recordBatch(ctx, drainChan(in, maxSeenBatch), s, tracer, log)
				}
				return
			}
			recordBatch(ctx, append([]jetstream.Msg{msg}, drainChan(in, maxSeenBatch-1)...), s, tracer, log)
		}
	}()
	stop := func() {
		close(quit)
		<-done
	}
	cc, err := cons.Consume(func(msg jetstream.Msg) {
		select {
		case in <- msg:
		case <-quit:
		}
	}, jetstream.PullMaxMessages(maxSeenBatch), jetstream.PullExpiry(bus.PullExpiry),
		jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
			log.WarnContext(ctx, "login.seen consumer trouble; retrying", "err", err)
		}))
	if err != nil {
		stop()
		return fmt.Errorf("provisioner: consume login.seen: %w", err)
	}
	select {
	case <-ctx.Done():
		cc.Drain()
		select {
		case <-cc.Closed():
		case <-time.After(10 * time.Second):
			cc.Stop()
		}
		stop()
		return nil
	case <-cc.Closed():
		stop()
		return fmt.Errorf("provisioner: the login.seen consumer %q stopped while running (deleted?); exiting so that the next start re-creates it",
			cons.CachedInfo().Name)
	}
}

// drainChan takes up to n deliveries waiting in in, never waiting for more.
func drainChan(in chan jetstream.Msg, n int) []jetstream.Msg {
	var out []jetstream.Msg
	for len(out) < n {
		select {
		case msg := <-in:
			out = append(out, msg)
		default:
			return out
		}
	}
	return out
}

// recordBatch records the returning logins of msgs in one transaction and
// acks them; a delivery breaking the event contract is terminated, and
// when the database fails every login is handed back for a later try.
func recordBatch(ctx context.Context, msgs []jetstream.Msg, s LoginRecorder, tracer trace.Tracer, log *slog.Logger) {
	hctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	type seenMsg struct {
		msg  jetstream.Msg
		ctx  context.Context
		span trace.Span
		seen events.LoginSeen
	}
	batch := make([]seenMsg, 0, len(msgs))
	for _, msg := range msgs {
		// A child of the edge's publish, in the returning login's trace.
		mctx, span := bus.StartConsume(hctx, tracer, "record login seen", bus.ConsumerSeen, msg)
		ev, err := events.Decode(&nats.Msg{Subject: msg.Subject(), Header: msg.Headers(), Data: msg.Data()})
		var seen events.LoginSeen
		if err == nil {
			seen, err = events.DataAs[events.LoginSeen](ev, events.TypeLoginSeen)
		}
		if err != nil {
			log.ErrorContext(mctx, "login.seen message breaks the event contract; terminated", "subject", msg.Subject(), "err", err)
			_ = msg.TermWithReason("invalid event")
			span.End()
			continue
		}
		batch = append(batch, seenMsg{msg: msg, ctx: mctx, span: span, seen: seen})
	}
	if len(batch) == 0 {
		return
	}
	logins := make([]store.Login, len(batch))
	for i, b := range batch {
		logins[i] = store.Login{OrganizationID: b.seen.OrganizationID, ConnectionID: b.seen.ConnectionID,
			ExternalID: b.seen.ExternalID, UserID: b.seen.UserID, At: b.seen.AuthenticatedAt}
	}
	unknown, err := s.RecordLogins(hctx, logins)
	for i, b := range batch {
		switch {
		case err == nil:
			if slices.Contains(unknown, i) {
				log.WarnContext(b.ctx, "login.seen names no such user; dropped", "user_id", b.seen.UserID, "org", b.seen.OrganizationID)
			}
			if err := b.msg.Ack(); err != nil {
				log.WarnContext(b.ctx, "ack failed; the login is recorded again on redelivery", "err", err)
			}
		default:
			delivered := uint64(1)
			if md, err := b.msg.Metadata(); err == nil {
				delivered = md.NumDelivered
			}
			_ = b.msg.NakWithDelay(backoff(delivered))
		}
		b.span.End()
	}
	if err != nil {
		log.WarnContext(hctx, "could not record returning logins; will retry", "logins", len(batch), "err", err,
			"unavailable", errors.Is(err, store.ErrUnavailable))
	}
}
