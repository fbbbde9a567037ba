package bus

import (
	"context"
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
