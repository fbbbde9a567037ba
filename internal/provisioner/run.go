package provisioner

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
	"golang.org/x/sync/errgroup"

	"github.com/jitprov/jitprov/internal/bus"
	"github.com/jitprov/jitprov/internal/health"
	"github.com/jitprov/jitprov/internal/known"
	"github.com/jitprov/jitprov/internal/startup"
	"github.com/jitprov/jitprov/internal/store"
)

// Config is what Run needs to know.
type Config struct {
	Workers int
	// MaxBatch bounds the logins of one organisation decided together
	// (Options.MaxBatch; default DefaultMaxBatch).
	MaxBatch        int
	DecisionTimeout time.Duration
	DrainTimeout    time.Duration
	// MaxAttempts bounds the tries of a login failing for another reason
	// than an unreachable database (Options.MaxAttempts; default 8).
	MaxAttempts int
	Topology    bus.Topology
	// HealthAddr serves /healthz, /readyz and (with Deps.Metrics)
	// /metrics; "" serves nothing.
	HealthAddr string
	// InactiveSweep is how often people unseen for their organisation's
	// inactive_after are suspended (inactive.go); 0 never.
	InactiveSweep time.Duration
}

// Deps are the provisioner's connections, opened by the caller (the
// provisioner binary, or development mode running everything in one
// process) and closed by it after Run returns.
type Deps struct {
	Store  store.Store
	NATS   *nats.Conn
	Logger *slog.Logger
	Tracer trace.TracerProvider
	Meter  metric.MeterProvider
	// Metrics serves Meter's instruments to Prometheus at /metrics on the
	// health listener (telemetry.Providers.Metrics); nil serves none.
	Metrics http.Handler
	// Known records decided identities; nil means the known-identities
	// bucket, which Run creates. Tests put a faulty one here.
	Known KnownIdentities
	// CheckStore, when set, runs once the database answers, before any
	// login is taken: the binary's schema check. Run retries it until it
	// passes (a migration still running), unless its error is marked
	// startup.Permanent.
	CheckStore func(context.Context) error
}

// Run waits for the database and NATS, applies the JetStream topology,
// then consumes logins, records returning logins, keeps the known
// identities right after admins' changes (known.go) and relays the outbox
// until ctx is done, and drains before it returns. The health endpoints answer from the start: alive,
// and not ready (saying what it waits for) until the start is complete.
func Run(ctx context.Context, cfg Config, deps Deps) error {
	js, err := jetstream.New(deps.NATS)
	if err != nil {
		return fmt.Errorf("provisioner: jetstream: %w", err)
	}
	if err := cfg.Topology.Validate(); err != nil {
		return fmt.Errorf("provisioner: %w", err)
	}
	var status startup.Status
	g, gctx := errgroup.WithContext(ctx)
	if cfg.HealthAddr != "" {
		g.Go(func() error {
			return health.Serve(gctx, cfg.HealthAddr, health.WithMetrics(health.Handler(func(ctx context.Context) error {
				if err := status.Ready(ctx); err != nil {
					return err
				}
				return ready(deps)(ctx)
			}), deps.Metrics))
		})
	}
	g.Go(func() error { return serve(gctx, cfg, deps, js, &status) })
	return g.Wait()
}

// serve is Run once the health endpoints are up: the start, then the work.
func serve(ctx context.Context, cfg Config, deps Deps, js jetstream.JetStream, status *startup.Status) error {
	log := deps.Logger
	err := startup.Wait(ctx, log, status, "the database", func(ctx context.Context) error {
		if err := deps.Store.Ping(ctx); err != nil {
			if !errors.Is(err, store.ErrUnavailable) {
				return startup.Permanent(err) // refused credentials, no such database…
			}
			return err
		}
		if deps.CheckStore != nil {
			return deps.CheckStore(ctx)
		}
		return nil
	})
	if err != nil {
		return stoppedOr(ctx, fmt.Errorf("provisioner: %w", err))
	}
	var cons, seenCons, knownCons jetstream.Consumer
	var knownIDs *known.Cache
	err = startup.Wait(ctx, log, status, "NATS JetStream (streams, consumers, buckets)", func(ctx context.Context) error {
		if err := bus.Ensure(ctx, js, cfg.Topology, bus.WithLogger(log)); errors.Is(err, bus.ErrServerTooOld) {
			return startup.Permanent(err)
		} else if err != nil {
			return err
		}
		var err error
		if cons, err = js.Consumer(ctx, bus.StreamLogins, bus.ConsumerProvisioner); err != nil {
			return fmt.Errorf("consumer %s: %w", bus.ConsumerProvisioner, err)
		}
		if seenCons, err = js.Consumer(ctx, bus.StreamLogins, bus.ConsumerSeen); err != nil {
			return fmt.Errorf("consumer %s: %w", bus.ConsumerSeen, err)
		}
		if knownCons, err = js.Consumer(ctx, bus.StreamUsers, bus.ConsumerKnown); err != nil {
			return fmt.Errorf("consumer %s: %w", bus.ConsumerKnown, err)
		}
		knownIDs, err = known.New(ctx, js, known.Config{Replicas: cfg.Topology.Replicas, Logger: log})
		return err
	})
	if err != nil {
		return stoppedOr(ctx, fmt.Errorf("provisioner: %w", err))
	}
	if cfg.Topology.Replicas == 1 {
		log.WarnContext(ctx, "streams have a single replica: run nats-server with `jetstream { sync_interval: always }`, "+
			"or a power loss can lose logins and events JetStream already acknowledged; use 3 replicas in a cluster")
	}
	var record KnownIdentities = knownIDs
	if deps.Known != nil {
		record = deps.Known
	}
	meter := deps.Meter.Meter("github.com/jitprov/jitprov/internal/provisioner")
	if err := registerSeatGauges(meter, deps.Store.Organizations, log); err != nil {
		return fmt.Errorf("provisioner: seat gauges: %w", err)
	}
	tracer := deps.Tracer.Tracer("github.com/jitprov/jitprov/internal/provisioner")
	if err := registerOutboxGauges(meter, deps.Store.OutboxBacklog, log); err != nil {
		return fmt.Errorf("provisioner: outbox gauges: %w", err)
	}
	if err := bus.RegisterConsumerGauges(meter, js, log, bus.ConsumerRef{Stream: bus.StreamLogins, Consumer: bus.ConsumerProvisioner},
		bus.ConsumerRef{Stream: bus.StreamLogins, Consumer: bus.ConsumerSeen},
		bus.ConsumerRef{Stream: bus.StreamUsers, Consumer: bus.ConsumerKnown}); err != nil {
		return fmt.Errorf("provisioner: consumer gauges: %w", err)
	}
	relay := bus.NewRelay(deps.Store, js, log.With("component", "outbox-relay"))
	relay.Tracer = deps.Tracer
	svc, err := NewService(NewDecider(deps.Store, log), deps.NATS, cons, Options{
		Workers: cfg.Workers, MaxBatch: cfg.MaxBatch, DecisionTimeout: cfg.DecisionTimeout, DrainTimeout: cfg.DrainTimeout, MaxAttempts: cfg.MaxAttempts,
		Logger: log, Meter: meter,
		Tracer: tracer, OnDecided: relay.Wake,
		Known: record,
	})
	if err != nil {
		return err
	}

	// The relay must outlive the consumer so that events decided during
	// the drain still leave: it stops only once the consumer has stopped.
	relayCtx, stopRelay := context.WithCancel(context.WithoutCancel(ctx))
	defer stopRelay()
	g, gctx := errgroup.WithContext(ctx)
	relayDone := make(chan error, 1)
	go func() { relayDone <- relay.Run(relayCtx) }()
	g.Go(func() error {
		err := svc.Run(gctx)
		stopRelay()
		return errors.Join(err, <-relayDone)
	})
	g.Go(func() error {
		return recordSeen(gctx, seenCons, deps.Store, tracer, log.With("component", "login-seen"))
	})
	if cfg.InactiveSweep > 0 {
		g.Go(func() error {
			sweepInactive(gctx, deps.Store, cfg.InactiveSweep, relay.Wake, log.With("component", "inactive-sweep"))
			return nil
		})
	}
	g.Go(func() error {
		return keepKnown(gctx, knownCons, deps.Store, record, cmp.Or(cfg.DrainTimeout, 10*time.Second), tracer,
			log.With("component", "known-identities"))
	})
	status.Done()
	return g.Wait()
}

// sweepInactive suspends the people unseen for their organisation's
// inactive_after, now and then every interval, until ctx is done, and
// wakes the relay after a sweep that suspended anyone. Replicas may all do
// it: each person is suspended once, whoever comes first.
func sweepInactive(ctx context.Context, s store.Store, every time.Duration, wake func(), log *slog.Logger) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		n, err := SweepInactive(ctx, s, time.Now().UTC(), InactivePerSweep, log)
		switch {
		case err != nil && ctx.Err() == nil:
			log.WarnContext(ctx, "inactive sweep incomplete; trying again at the next one", "err", err, "suspended", n)
		case n > 0:
			log.InfoContext(ctx, "inactive sweep suspended people", "count", n, "next_in", every.String())
		}
		if n > 0 {
			wake()
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// stoppedOr is nil when ctx was stopped (a shutdown during the start is a
// clean stop), and err otherwise.
func stoppedOr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return nil
	}
	return err
}

// ready reports whether the database and NATS answer, for /readyz.
func ready(deps Deps) func(context.Context) error {
	return func(ctx context.Context) error {
		if err := deps.Store.Ping(ctx); err != nil {
			deps.Logger.WarnContext(ctx, "not ready: the database does not answer", "err", err)
			return errors.New("database unreachable")
		}
		if !deps.NATS.IsConnected() {
			return fmt.Errorf("nats: %s", deps.NATS.Status())
		}
		return nil
	}
}
