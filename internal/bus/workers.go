package bus

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// PullExpiry bounds each pull request of a consumer: how long a stalled
// pull (its server restarted, its consumer's leader failed over) can go
// unnoticed.
const PullExpiry = 5 * time.Second

// Workers consumes from cons with n workers calling handle, until ctx is
// done; then it stops fetching, lets the deliveries in hand finish (up to
// drain) and returns. Deliveries not handled in time stay unacked and are
// redelivered. handle runs on a context that the end of ctx does not
// cancel, but the end of the drain does: shutdown takes at most drain.
//
// It returns an error when the server ends the consumption while ctx is
// live (the consumer was deleted): carrying on would look healthy and
// consume nothing.
func Workers(ctx context.Context, cons jetstream.Consumer, n int, drain time.Duration, log *slog.Logger,
	handle func(context.Context, jetstream.Msg)) error {
	// Deliveries go from the consumer's callback to the workers over work;
	// quit ends both sides. work is never closed, so a callback still
	// running after a timed-out drain cannot panic.
	work, quit := make(chan jetstream.Msg), make(chan struct{})
	hctx, cancelHandlers := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelHandlers()
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			for {
				select {
				case msg := <-work:
					handle(hctx, msg)
				case <-quit:
					return
				}
			}
		})
	}
	stop := func() {
		close(quit)
		wg.Wait()
	}
	name := cons.CachedInfo().Name
	cc, err := cons.Consume(func(msg jetstream.Msg) {
		select {
		case work <- msg:
		case <-quit:
		}
	},
		// Pull no more than the workers can start at once: a delivery
		// waiting in a client buffer still runs down its ack wait.
		jetstream.PullMaxMessages(n),
		// Pull requests of 5 s (heartbeats every 2.5 s): after a NATS
		// restart or a consumer leader failover, a pull that found no
		// responder is renewed within 5 s rather than the default 30 s.
		jetstream.PullExpiry(PullExpiry),
		jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
			log.WarnContext(ctx, "consumer trouble; retrying", "consumer", name, "err", err)
		}))
	if err != nil {
		stop()
		return fmt.Errorf("bus: consume %s: %w", name, err)
	}
	select {
	case <-ctx.Done():
	case <-cc.Closed():
		stop()
		return fmt.Errorf("bus: consumer %q stopped while running (deleted or re-created?); "+
			"exiting so that the next start re-creates it", name)
	}
	cc.Drain()
	select {
	case <-cc.Closed():
	case <-time.After(drain):
		cc.Stop()
		cancelHandlers()
		log.WarnContext(ctx, "drain timed out; unfinished deliveries will be redelivered", "consumer", name)
	}
	stop()
	return nil
}
