package provisioner

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/trace"

	"github.com/jitprov/jitprov/events"
	"github.com/jitprov/jitprov/internal/bus"
	"github.com/jitprov/jitprov/internal/store"
)

// LoginRecorder records a user's latest login.
type LoginRecorder interface {
	RecordLogin(ctx context.Context, l store.Login) error
}

// recordSeen consumes login.seen — returning logins that sso-edge signed
// in on its fast path — and records each user's last login. Until ctx is
// done; then it drains.
func recordSeen(ctx context.Context, cons jetstream.Consumer, s LoginRecorder, tracer trace.Tracer, log *slog.Logger) error {
	handle := func(msg jetstream.Msg) {
		hctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		// A child of the edge's publish, in the returning login's trace.
		hctx, span := bus.StartConsume(hctx, tracer, "record login seen", bus.ConsumerSeen, msg)
		defer span.End()
		ev, err := events.Decode(&nats.Msg{Subject: msg.Subject(), Header: msg.Headers(), Data: msg.Data()})
		var seen events.LoginSeen
		if err == nil {
			seen, err = events.DataAs[events.LoginSeen](ev, events.TypeLoginSeen)
		}
		if err != nil {
			log.ErrorContext(hctx, "login.seen message breaks the event contract; terminated", "subject", msg.Subject(), "err", err)
			_ = msg.TermWithReason("invalid event")
			return
		}
		err = s.RecordLogin(hctx, store.Login{OrganizationID: seen.OrganizationID, ConnectionID: seen.ConnectionID,
			ExternalID: seen.ExternalID, UserID: seen.UserID, At: seen.AuthenticatedAt})
		switch {
		case err == nil, errors.Is(err, store.ErrNotFound):
			if err != nil {
				log.WarnContext(hctx, "login.seen names no such user; dropped", "user_id", seen.UserID, "org", seen.OrganizationID)
			}
			if err := msg.Ack(); err != nil {
				log.WarnContext(hctx, "ack failed; the login is recorded again on redelivery", "err", err)
			}
		default:
			delivered := uint64(1)
			if md, err := msg.Metadata(); err == nil {
				delivered = md.NumDelivered
			}
			log.WarnContext(hctx, "could not record a returning login; will retry", "err", err)
			_ = msg.NakWithDelay(backoff(delivered))
		}
	}
	cc, err := cons.Consume(handle, jetstream.PullExpiry(bus.PullExpiry), jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
		log.WarnContext(ctx, "login.seen consumer trouble; retrying", "err", err)
	}))
	if err != nil {
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
		return nil
	case <-cc.Closed():
		return fmt.Errorf("provisioner: the login.seen consumer %q stopped while running (deleted?); exiting so that the next start re-creates it",
			cons.CachedInfo().Name)
	}
}
