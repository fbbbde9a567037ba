package bus

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// GaugeCacheFor is how long the JetStream figures behind the gauges
// (ConsumerInfo, StreamInfo) are reused: a scrape every second, by several
// Prometheus servers, asks NATS at most once per consumer in this time.
const GaugeCacheFor = 10 * time.Second

// infoTimeout bounds one ConsumerInfo or StreamInfo call made for a
// scrape.
const infoTimeout = 2 * time.Second

// Cached calls fetch at most once every ttl and hands out its last good
// result meanwhile; a failed fetch keeps no result, so the gauge it feeds
// reports nothing rather than an old figure as a new one. Safe for
// concurrent use: concurrent callers share one fetch.
type Cached[T any] struct {
	ttl   time.Duration
	fetch func(context.Context) (T, error)
	now   func() time.Time

	mu   sync.Mutex
	at   time.Time
	val  T
	err  error
	have bool
}

// NewCached returns a Cached of fetch, reused for ttl.
func NewCached[T any](ttl time.Duration, fetch func(context.Context) (T, error)) *Cached[T] {
	return &Cached[T]{ttl: ttl, fetch: fetch, now: time.Now}
}

// Get returns the cached value, fetching it anew when it is older than
// the ttl.
func (c *Cached[T]) Get(ctx context.Context) (T, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.have && c.now().Sub(c.at) < c.ttl {
		return c.val, c.err
	}
	ctx, cancel := context.WithTimeout(ctx, infoTimeout)
	defer cancel()
	c.val, c.err = c.fetch(ctx)
	c.at, c.have = c.now(), true
	return c.val, c.err
}

// ConsumerRef names a durable consumer of a stream.
type ConsumerRef struct{ Stream, Consumer string }

// RegisterConsumerGauges reports, for each consumer, the messages it has
// yet to deliver (num_pending: its lag), those delivered and not yet
// acknowledged (num_ack_pending) and those delivered more than once
// (num_redelivered), read from ConsumerInfo at most every GaugeCacheFor.
// Every replica of a service reports the same figures: they share the
// consumer.
func RegisterConsumerGauges(m metric.Meter, js jetstream.JetStream, log *slog.Logger, consumers ...ConsumerRef) error {
	pending, err1 := m.Int64ObservableGauge("jitprov.consumer.pending",
		metric.WithDescription("Messages of the stream the consumer has yet to deliver (JetStream num_pending): its lag."), metric.WithUnit("{message}"))
	ackPending, err2 := m.Int64ObservableGauge("jitprov.consumer.ack_pending",
		metric.WithDescription("Messages delivered and not yet acknowledged (JetStream num_ack_pending)."), metric.WithUnit("{message}"))
	redelivered, err3 := m.Int64ObservableGauge("jitprov.consumer.redelivered",
		metric.WithDescription("Messages delivered more than once and not yet acknowledged (JetStream num_redelivered)."), metric.WithUnit("{message}"))
	if err := errors.Join(err1, err2, err3); err != nil {
		return err
	}
	infos := make([]*Cached[*jetstream.ConsumerInfo], len(consumers))
	for i, c := range consumers {
		infos[i] = NewCached(GaugeCacheFor, func(ctx context.Context) (*jetstream.ConsumerInfo, error) {
			cons, err := js.Consumer(ctx, c.Stream, c.Consumer)
			if err != nil {
				return nil, err
			}
			return cons.Info(ctx)
		})
	}
	_, err := m.RegisterCallback(func(ctx context.Context, o metric.Observer) error {
		for i, c := range consumers {
			info, err := infos[i].Get(ctx)
			if err != nil {
				log.DebugContext(ctx, "consumer gauges: no consumer info", "stream", c.Stream, "consumer", c.Consumer, "err", err)
				continue // no figures this time; the scrape goes on
			}
			attrs := metric.WithAttributes(attribute.String("stream", c.Stream), attribute.String("consumer", c.Consumer))
			o.ObserveInt64(pending, int64(info.NumPending), attrs)
			o.ObserveInt64(ackPending, int64(info.NumAckPending), attrs)
			o.ObserveInt64(redelivered, int64(info.NumRedelivered), attrs)
		}
		return nil
	}, pending, ackPending, redelivered)
	return err
}
