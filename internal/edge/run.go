package edge

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/metric"
	noopmetric "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/trace"
	"golang.org/x/sync/errgroup"

	"github.com/jitprov/jitprov/internal/bus"
	"github.com/jitprov/jitprov/internal/edge/certwatch"
	"github.com/jitprov/jitprov/internal/edge/replay"
	"github.com/jitprov/jitprov/internal/edge/session"
	"github.com/jitprov/jitprov/internal/health"
	"github.com/jitprov/jitprov/internal/known"
	"github.com/jitprov/jitprov/internal/startup"
	"github.com/jitprov/jitprov/internal/store"
)

// Config is what the edge needs to know.
type Config struct {
	// Addr is the listen address, e.g. ":8080".
	Addr string
	// MetricsAddr is the internal listener of /metrics (Deps.Metrics),
	// /healthz and /readyz, e.g. ":8084"; "" serves none. Never Addr: the
	// public listener serves no metrics.
	MetricsAddr string
	// PublicURL is the edge's address as browsers and IdPs see it; ACS and
	// metadata URLs are built on it.
	PublicURL url.URL
	// AllowedReturnOrigins are the origins (scheme://host[:port]) a login
	// may return to besides relative paths on the edge.
	AllowedReturnOrigins []string
	// DefaultReturnTo is where a login without a valid return URL lands.
	DefaultReturnTo string
	// ProvisionTimeout is how long a first login waits for its account
	// before the "setting up your account" page.
	ProvisionTimeout time.Duration
	// SessionRecheck is how long /auth/verify trusts what it last read of
	// a session's user: a user suspended, deprovisioned or given another
	// role is refused (or answered with the new role) at most this long
	// after. 0 is DefaultSessionRecheck; negative trusts the session
	// until it expires.
	SessionRecheck time.Duration
	// MaxBodyBytes bounds a request body (the ACS form).
	MaxBodyBytes int64
	// MetadataTimeout bounds an IdP metadata fetch; MetadataRefresh is how
	// often a connection (and its metadata) is reloaded (default 5m).
	MetadataTimeout time.Duration
	MetadataRefresh time.Duration
	// Reload, when set, reloads every connection in use (Server.Reload)
	// at each value received: sso-edge and jitprov dev send one on SIGHUP.
	// A value received while the edge is starting is ignored: it loads the
	// connections afresh anyway.
	Reload <-chan struct{}
	// SPKeyPair is the service provider's default key pair, for the
	// connections that have none of their own.
	SPKeyPair *tls.Certificate
	// DeriveSPEntityIDs serves a SAML connection without sp_entity_id
	// under the URL of its SP metadata, <PublicURL>/saml/<org>/<conn>/metadata,
	// as its entity id. For development mode only: that id moves with the
	// public URL, and persistent NameIDs with it. Otherwise such a
	// connection is a configuration error, not served.
	DeriveSPEntityIDs bool
	// Replicas of the edge's KV buckets: 1, or 3 in a cluster.
	Replicas int
	// CertCheckInterval is how often Run checks the SAML connections' IdP
	// signing certificates and warns of their expiry (certwatch): 0 means
	// every 24 hours, a negative value never.
	CertCheckInterval time.Duration
	// ShutdownTimeout bounds the graceful shutdown.
	ShutdownTimeout time.Duration
	// RatePerClient and RatePerConnection bound the sign-in requests a
	// minute from one client address and to one connection; 0 means
	// DefaultRatePerClient and DefaultRatePerConnection, a negative value
	// no limit.
	RatePerClient     int
	RatePerConnection int
	// TrustedProxies are the proxies (ingress, load balancer) whose
	// X-Forwarded-For names the client; without them the peer address is
	// the client.
	TrustedProxies []netip.Prefix
}

func (c *Config) defaults() error {
	if c.PublicURL.Scheme == "" || c.PublicURL.Host == "" {
		return errors.New("edge: the public URL (JITPROV_EDGE_PUBLIC_URL) is required, e.g. https://sso.example.com")
	}
	if c.DefaultReturnTo == "" {
		c.DefaultReturnTo = "/"
	}
	if c.ProvisionTimeout <= 0 {
		c.ProvisionTimeout = 5 * time.Second
	}
	if c.MaxBodyBytes <= 0 {
		c.MaxBodyBytes = 512 << 10 // the base64 response (256 KiB) plus form overhead
	}
	if c.MetadataTimeout <= 0 {
		c.MetadataTimeout = 10 * time.Second
	}
	if c.MetadataRefresh <= 0 {
		c.MetadataRefresh = 5 * time.Minute
	}
	if c.Replicas == 0 {
		c.Replicas = 1
	}
	if c.CertCheckInterval == 0 {
		c.CertCheckInterval = certwatch.DefaultInterval
	}
	if c.ShutdownTimeout <= 0 {
		c.ShutdownTimeout = 15 * time.Second
	}
	if c.RatePerClient == 0 {
		c.RatePerClient = DefaultRatePerClient
	}
	if c.RatePerConnection == 0 {
		c.RatePerConnection = DefaultRatePerConnection
	}
	return nil
}

// Deps are the edge's connections, opened and closed by the caller.
type Deps struct {
	Store    store.Store
	NATS     *nats.Conn
	Sessions *session.Manager
	Logger   *slog.Logger
	Tracer   trace.TracerProvider
	// Meter records the edge's metrics; nil records none.
	Meter metric.MeterProvider
	// Metrics serves Meter's instruments to Prometheus at /metrics on
	// MetricsAddr (telemetry.Providers.Metrics).
	Metrics http.Handler
}

// New builds the edge's server: the request-reply client and the KV
// buckets it shares with the other replicas and the provisioner.
func New(ctx context.Context, cfg Config, deps Deps) (*Server, func(context.Context) error, error) {
	if err := cfg.defaults(); err != nil {
		return nil, nil, err
	}
	js, err := jetstream.New(deps.NATS)
	if err != nil {
		return nil, nil, fmt.Errorf("edge: jetstream: %w", err)
	}
	replays, err := replay.New(ctx, js, replay.Config{Replicas: cfg.Replicas, Logger: deps.Logger})
	if err != nil {
		return nil, nil, fmt.Errorf("edge: %w", err)
	}
	// The provisioner owns the known identities: bind, and compare.
	knownIDs, err := known.Open(ctx, js, "", 0)
	if err != nil {
		return nil, nil, fmt.Errorf("edge: %w", err)
	}
	if have, err := knownIDs.Replicas(ctx); err == nil {
		bus.CheckReplicas(ctx, deps.Logger, "the known-identities bucket "+known.DefaultBucket, "provisioner", have, cfg.Replicas)
	}
	client, err := bus.NewClient(deps.NATS, js, loginSource)
	if err != nil {
		return nil, nil, fmt.Errorf("edge: %w", err)
	}
	meter := deps.Meter
	if meter == nil {
		meter = noopmetric.NewMeterProvider()
	}
	m, err := newEdgeMetrics(meter.Meter(meterName))
	if err != nil {
		return nil, nil, fmt.Errorf("edge: metrics: %w", err)
	}
	s := &Server{
		m: m, certExp: &certExpiries{},
		cfg: cfg, reg: newRegistry(deps.Store, cfg.SPKeyPair, cfg.PublicURL, cfg.MetadataTimeout, cfg.MetadataRefresh, deps.Tracer, deps.Logger),
		sessions: deps.Sessions, replays: replays, known: knownIDs, prov: client, decided: deps.Store,
		republishing: make(chan struct{}, maxRepublishing),
		tracer:       deps.Tracer, log: deps.Logger,
		failures: newSampler(deps.Logger, 10*time.Second),
		unmapped: newUnmappedWarnings(),
	}
	if cfg.SessionRecheck >= 0 {
		s.standings = newStandings(deps.Store, cmp.Or(cfg.SessionRecheck, DefaultSessionRecheck))
	}
	s.reg.deriveEntityIDs = cfg.DeriveSPEntityIDs
	s.limits = newLimits(cfg, s)
	// Last, once nothing can fail: New is retried until NATS answers, and
	// a callback registered twice would report every certificate twice.
	if err := registerCertGauge(meter.Meter(meterName), s.certExp, time.Now); err != nil {
		return nil, nil, fmt.Errorf("edge: metrics: %w", err)
	}
	ready := func(ctx context.Context) error {
		if err := deps.Store.Ping(ctx); err != nil {
			return err
		}
		if !deps.NATS.IsConnected() {
			return fmt.Errorf("nats: %s", deps.NATS.Status())
		}
		return nil
	}
	return s, ready, nil
}

// Run serves until ctx is done, then shuts down within ShutdownTimeout.
// It listens at once: until the database and NATS JetStream answer (and
// a provisioner has created the pipeline's streams and buckets) the edge
// is alive and not ready, its readiness says what it waits for, and sign-in
// pages say sign-in is starting.
func Run(ctx context.Context, cfg Config, deps Deps) error {
	if err := cfg.defaults(); err != nil {
		return err
	}
	var status startup.Status
	var serving atomic.Pointer[http.Handler] // the edge's handler, once started
	starting := startingHandler(&status)
	srv := &http.Server{
		Addr: cfg.Addr,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if h := serving.Load(); h != nil {
				(*h).ServeHTTP(w, r)
				return
			}
			starting.ServeHTTP(w, r)
		}),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       15 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       60 * time.Second,
		MaxHeaderBytes:    64 << 10,
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	g, gctx := errgroup.WithContext(ctx)
	if cfg.MetricsAddr != "" {
		g.Go(func() error {
			h := health.WithMetrics(health.Handler(func(ctx context.Context) error {
				if err := status.Ready(ctx); err != nil {
					return err
				}
				return readyDeps(deps)(ctx)
			}), deps.Metrics)
			return health.Serve(gctx, cfg.MetricsAddr, h)
		})
	}
	g.Go(func() error {
		deps.Logger.InfoContext(ctx, "sso-edge listening", "addr", cfg.Addr, "public_url", cfg.PublicURL.String())
		if err := srv.ListenAndServe(); !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("edge: listen on %s: %w", cfg.Addr, err)
		}
		return nil
	})
	g.Go(func() error {
		<-gctx.Done()
		sctx, cancel := context.WithTimeout(context.WithoutCancel(gctx), cfg.ShutdownTimeout)
		defer cancel()
		return srv.Shutdown(sctx)
	})
	g.Go(func() error {
		s, err := start(gctx, cfg, deps, &status)
		if err != nil || s == nil {
			return err
		}
		h := s.Handler(readyDeps(deps))
		serving.Store(&h)
		status.Done()
		deps.Logger.InfoContext(gctx, "sso-edge ready")
		go s.flushSamples(gctx)
		go s.reloadOn(gctx, cfg.Reload)
		if cfg.CertCheckInterval <= 0 {
			deps.Logger.InfoContext(gctx, "IdP certificate check off")
			return nil
		}
		js, err := jetstream.New(deps.NATS)
		if err != nil {
			return fmt.Errorf("edge: jetstream: %w", err)
		}
		certs, err := certwatch.New(s, js, certwatch.Config{Replicas: cfg.Replicas, Logger: deps.Logger})
		if err != nil {
			return fmt.Errorf("edge: %w", err)
		}
		certs.Run(gctx, cfg.CertCheckInterval)
		return nil
	})
	return g.Wait()
}

// meterName names the edge's meter.
const meterName = "github.com/jitprov/jitprov/internal/edge"

// readyDeps reports whether the database and NATS answer.
func readyDeps(deps Deps) func(context.Context) error {
	return func(ctx context.Context) error {
		if err := deps.Store.Ping(ctx); err != nil {
			return err
		}
		if !deps.NATS.IsConnected() {
			return fmt.Errorf("nats: %s", deps.NATS.Status())
		}
		return nil
	}
}

// reloadOn reloads the connections at each value of reload, until ctx is
// done.
func (s *Server) reloadOn(ctx context.Context, reload <-chan struct{}) {
	if reload == nil {
		return
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-reload:
			_ = s.Reload(ctx)
		}
	}
}

// Reload loads every connection in use again now — its settings from the
// database and its IdP metadata from its URL or file — rather than at its
// next refresh (MetadataRefresh), and logs what it did. A connection that
// fails to load goes on being served from its last good copy; the error
// says which and why.
func (s *Server) Reload(ctx context.Context) error {
	s.log.InfoContext(ctx, "reloading the connections in use: settings and IdP metadata")
	n, err := s.reg.reload(ctx)
	if err != nil {
		s.log.WarnContext(ctx, "connections reloaded, some failed; those are served from their last good copy", "reloaded", n, "err", err)
		return err
	}
	s.log.InfoContext(ctx, "connections reloaded", "reloaded", n)
	return nil
}

// start waits for the database and for NATS JetStream, then builds the
// edge's server; nil without an error when ctx ended first.
func start(ctx context.Context, cfg Config, deps Deps, status *startup.Status) (*Server, error) {
	err := startup.Wait(ctx, deps.Logger, status, "the database", func(ctx context.Context) error {
		if err := deps.Store.Ping(ctx); err != nil && !errors.Is(err, store.ErrUnavailable) {
			return startup.Permanent(err) // refused credentials, no such database…
		} else if err != nil {
			return err
		}
		return nil
	})
	if err != nil {
		return nil, stoppedOr(ctx, fmt.Errorf("edge: %w", err))
	}
	var s *Server
	err = startup.Wait(ctx, deps.Logger, status, "NATS JetStream (the provisioner's streams and buckets)", func(ctx context.Context) error {
		var err error
		s, _, err = New(ctx, cfg, deps)
		return err
	})
	if err != nil {
		return nil, stoppedOr(ctx, err)
	}
	return s, nil
}

// stoppedOr is nil when ctx was stopped (a shutdown during the start is a
// clean stop), and err otherwise.
func stoppedOr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return nil
	}
	return err
}

// startingHandler answers while the edge starts: alive, not ready, and a
// page that says sign-in is starting.
func startingHandler(status *startup.Status) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) })
	// The edge's listener is public: its readiness names the step, and
	// the log says why (hosts, users and errors stay there).
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		msg := "not ready: starting"
		if step := status.Step(); step != "" {
			msg += ": waiting for " + step
		}
		http.Error(w, msg, http.StatusServiceUnavailable)
	})
	s := &Server{log: slog.New(slog.DiscardHandler)}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", "5")
		s.render(w, r, pageStarting)
	})
	return mux
}
