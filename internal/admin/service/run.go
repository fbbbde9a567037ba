// Package service runs the admin service: the admin API under /api/ and,
// mounted by its own package, the console under /admin/, with the health
// endpoints on their own address. cmd/admin and development mode call
// Run.
package service

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"go.opentelemetry.io/otel/trace"
	nooptrace "go.opentelemetry.io/otel/trace/noop"
	"golang.org/x/sync/errgroup"

	"github.com/jitprov/jitprov/internal/admin"
	"github.com/jitprov/jitprov/internal/admin/api"
	"github.com/jitprov/jitprov/internal/admin/authn"
	"github.com/jitprov/jitprov/internal/health"
	"github.com/jitprov/jitprov/internal/scim"
	"github.com/jitprov/jitprov/internal/startup"
	"github.com/jitprov/jitprov/internal/store"
	"github.com/jitprov/jitprov/internal/telemetry"
)

// Config is what Run needs to know.
type Config struct {
	// Addr serves the API and the console; HealthAddr /healthz and
	// /readyz ("" serves none).
	Addr       string
	HealthAddr string
	// ShutdownTimeout bounds the requests in flight at shutdown (default
	// 10s).
	ShutdownTimeout time.Duration
	// ReviewExpiry is the age at which pending role reviews expire,
	// checked every ReviewCheck (default 1h); 0 never expires them.
	ReviewExpiry time.Duration
	ReviewCheck  time.Duration
}

// Deps are the service's connections and parts, made by the caller.
type Deps struct {
	Store  store.Store
	Authn  *authn.Authenticator
	Logger *slog.Logger
	// Console serves /admin/ (internal/admin/console); nil serves none.
	Console http.Handler
	// CheckStore, when set, runs once the database answers, before the
	// service is ready: the binary's schema check (startup.Permanent
	// errors stop the start).
	CheckStore func(context.Context) error
	// Metrics serves the service's metrics to Prometheus at /metrics on
	// the health listener (telemetry.Providers.Metrics); nil serves none.
	Metrics http.Handler
	// Tracer records a server span for each request and a client span
	// for each IdP metadata fetch; nil records none.
	Tracer trace.TracerProvider
	// Listening, when set, receives the API's listener address once it
	// listens (tests listen on ":0").
	Listening func(net.Addr)
}

// Handler is the service's mux: the API under /api/, SCIM under
// /scim/v2/, the console under /admin/ (when given), and / sending people
// to the console.
func Handler(core *admin.Core, auth *authn.Authenticator, console http.Handler, log *slog.Logger) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/api/", api.New(api.Config{Core: core, Authn: auth, Log: log}).Handler())
	// SCIM 2.0 for the organisations' IdPs (internal/scim): the same core,
	// tokens and audit as the API, for tokens of scope scim only.
	sc, err := scim.New(scim.Config{Core: core, Authn: auth, Log: log.With("component", "scim")})
	if err != nil {
		panic(err) // the resource types are fixed: only a programming error fails here
	}
	mux.Handle(scim.Prefix, sc)
	// The console (another package) mounts here, with its own CSRF
	// protection for its forms and authn.Authenticator.Principal for who
	// is signed in.
	if console != nil {
		mux.Handle("/admin/", console)
		mux.Handle("GET /{$}", http.RedirectHandler("/admin/", http.StatusSeeOther))
	}
	return mux
}

// expireReviews closes the role reviews older than age, now and then every
// interval, until ctx is done. Replicas may all do it: a review is decided
// once, whoever comes first.
func expireReviews(ctx context.Context, core *admin.Core, age, every time.Duration, log *slog.Logger) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		n, err := core.ExpireReviews(ctx, age)
		switch {
		case err != nil && ctx.Err() == nil:
			log.WarnContext(ctx, "could not expire old role reviews; trying again later", "err", err)
		case n > 0:
			log.InfoContext(ctx, "role reviews expired unanswered", "count", n, "age", age.String())
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Run waits for the database, alive and not ready meanwhile (the API
// answers 503 unavailable until then), serves until ctx is done, then
// lets the requests in flight finish within ShutdownTimeout.
func Run(ctx context.Context, cfg Config, deps Deps) error {
	if cfg.ShutdownTimeout <= 0 {
		cfg.ShutdownTimeout = 10 * time.Second
	}
	log := deps.Logger
	var status startup.Status
	core := admin.New(deps.Store, log)
	tracer := deps.Tracer
	if tracer == nil {
		tracer = nooptrace.NewTracerProvider()
	}
	core.TraceOutgoing(tracer)
	h := Handler(core, deps.Authn, deps.Console, log)
	var starting http.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if status.Ready(r.Context()) != nil {
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte(`{"error":{"code":"unavailable","message":"the admin service is starting; try again shortly"}}` + "\n"))
			return
		}
		h.ServeHTTP(w, r)
	})
	starting = telemetry.ServerHandler(starting, tracer)
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("admin: listen on %s: %w", cfg.Addr, err)
	}
	if deps.Listening != nil {
		deps.Listening(ln.Addr())
	}
	srv := &http.Server{Handler: starting, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 30 * time.Second,
		WriteTimeout: 60 * time.Second, IdleTimeout: 2 * time.Minute, ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		BaseContext: func(net.Listener) context.Context { return context.WithoutCancel(ctx) }}

	g, gctx := errgroup.WithContext(ctx)
	if cfg.HealthAddr != "" {
		g.Go(func() error {
			return health.Serve(gctx, cfg.HealthAddr, health.WithMetrics(health.Handler(func(ctx context.Context) error {
				if err := status.Ready(ctx); err != nil {
					return err
				}
				if err := deps.Store.Ping(ctx); err != nil {
					log.WarnContext(ctx, "not ready: the database does not answer", "err", err)
					return errors.New("database unreachable")
				}
				return nil
			}), deps.Metrics))
		})
	}
	g.Go(func() error {
		err := startup.Wait(gctx, log, &status, "the database", func(ctx context.Context) error {
			if err := deps.Store.Ping(ctx); err != nil {
				if !errors.Is(err, store.ErrUnavailable) {
					return startup.Permanent(err)
				}
				return err
			}
			if deps.CheckStore != nil {
				return deps.CheckStore(ctx)
			}
			return nil
		})
		if err != nil {
			if gctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("admin: %w", err)
		}
		status.Done()
		log.InfoContext(gctx, "admin service ready", "addr", ln.Addr().String())
		if cfg.ReviewExpiry > 0 {
			expireReviews(gctx, core, cfg.ReviewExpiry, cmp.Or(cfg.ReviewCheck, time.Hour), log)
		}
		return nil
	})
	g.Go(func() error {
		errc := make(chan error, 1)
		go func() { errc <- srv.Serve(ln) }()
		select {
		case err := <-errc:
			return fmt.Errorf("admin: serve on %s: %w", cfg.Addr, err)
		case <-gctx.Done():
		}
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.ShutdownTimeout)
		defer cancel()
		err := srv.Shutdown(sctx)
		if serr := <-errc; !errors.Is(serr, http.ErrServerClosed) {
			err = errors.Join(err, serr)
		}
		return err
	})
	return g.Wait()
}
