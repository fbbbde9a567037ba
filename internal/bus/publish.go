package bus

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/jitprov/jitprov/events"
)

// Publish publishes ev on its type's subject for organisation org and waits
// for JetStream to store it. The event id is the Nats-Msg-Id, so publishing
// the same event again within the duplicate window stores it once.
func Publish(ctx context.Context, js jetstream.JetStream, ev events.Event, org string) error {
	subject, err := events.Subject(events.Type(ev.Type()), org)
	if err != nil {
		return fmt.Errorf("bus: %w", err)
	}
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
