package provisioner

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

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
