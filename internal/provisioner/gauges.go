package provisioner

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/jitprov/jitprov/internal/bus"
	"github.com/jitprov/jitprov/internal/store"
)

// organizationsFunc lists the organisations and their seats (the store).
type organizationsFunc func(ctx context.Context) ([]store.Organization, error)

// registerSeatGauges reports each organisation's seats in use and seat
// limit as gauges, read from the store when metrics are collected, so
// every replica reports the same figures and a dashboard can alert before
// seats run out.
func registerSeatGauges(m metric.Meter, orgs organizationsFunc, log *slog.Logger) error {
	used, err1 := m.Int64ObservableGauge("jitprov.seats.used",
		metric.WithDescription("Seats in use, per organisation."), metric.WithUnit("{seat}"))
	limit, err2 := m.Int64ObservableGauge("jitprov.seats.max",
		metric.WithDescription("Seat limit (max_seats), per organisation."), metric.WithUnit("{seat}"))
	if err := errors.Join(err1, err2); err != nil {
		return err
	}
	_, err := m.RegisterCallback(func(ctx context.Context, o metric.Observer) error {
		ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		list, err := orgs(ctx)
		if err != nil {
			log.WarnContext(ctx, "seat gauges: cannot list the organisations", "err", err)
			return nil // no figures this time; the export goes on
		}
		for _, org := range list {
			attrs := metric.WithAttributes(attribute.String("jitprov.org", org.ID))
			o.ObserveInt64(used, int64(org.SeatsUsed), attrs)
			o.ObserveInt64(limit, int64(org.MaxSeats), attrs)
		}
		return nil
	}, used, limit)
	return err
}

// outboxCacheFor is how long one reading of the outbox backlog serves
// the scrapes: one query, at most this often.
const outboxCacheFor = 5 * time.Second

// registerOutboxGauges reports the outbox messages the relay has yet to
// publish and the age of the oldest of them (0 when none), read from the
// store at most every outboxCacheFor. A relay that is stuck (NATS down, a
// message JetStream refuses) shows as a growing age.
func registerOutboxGauges(m metric.Meter, backlog func(context.Context) (store.OutboxBacklog, error), log *slog.Logger) error {
	unsent, err1 := m.Int64ObservableGauge("jitprov.outbox.unsent",
		metric.WithDescription("Outbox messages not yet published by the relay."), metric.WithUnit("{message}"))
	age, err2 := m.Float64ObservableGauge("jitprov.outbox.oldest.age",
		metric.WithDescription("Age of the oldest outbox message not yet published (0 when none)."), metric.WithUnit("s"))
	if err := errors.Join(err1, err2); err != nil {
		return err
	}
	cached := bus.NewCached(outboxCacheFor, backlog)
	_, err := m.RegisterCallback(func(ctx context.Context, o metric.Observer) error {
		b, err := cached.Get(ctx)
		if err != nil {
			log.WarnContext(ctx, "outbox gauges: cannot read the backlog", "err", err)
			return nil // no figures this time; the export goes on
		}
		o.ObserveInt64(unsent, b.Unsent)
		var a float64
		if !b.Oldest.IsZero() {
			a = max(0, time.Since(b.Oldest).Seconds())
		}
		o.ObserveFloat64(age, a)
		return nil
	}, unsent, age)
	return err
}
