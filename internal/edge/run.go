package edge

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/trace"
	"golang.org/x/sync/errgroup"

	"github.com/jitprov/jitprov/internal/bus"
	"github.com/jitprov/jitprov/internal/edge/certwatch"
	"github.com/jitprov/jitprov/internal/edge/replay"
	"github.com/jitprov/jitprov/internal/edge/session"
	"github.com/jitprov/jitprov/internal/known"
	"github.com/jitprov/jitprov/internal/store"
)

// Config is what the edge needs to know.
type Config struct {
	// Addr is the listen address, e.g. ":8080".
	Addr string
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
	// MaxBodyBytes bounds a request body (the ACS form).
	MaxBodyBytes int64
	// MetadataTimeout bounds an IdP metadata fetch; MetadataRefresh is how
	// often a connection (and its metadata) is reloaded.
	MetadataTimeout time.Duration
	MetadataRefresh time.Duration
	// SPKeyPair is the service provider's default key pair, for the
	// connections that have none of their own.
	SPKeyPair *tls.Certificate
	// Replicas of the edge's KV buckets: 1, or 3 in a cluster.
	Replicas int
	// CertCheckInterval is how often Run checks the SAML connections' IdP
	// signing certificates and warns of their expiry (certwatch): 0 means
	// every 24 hours, a negative value never.
	CertCheckInterval time.Duration
	// ShutdownTimeout bounds the graceful shutdown.
	ShutdownTimeout time.Duration
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
	return nil
}

// Deps are the edge's connections, opened and closed by the caller.
type Deps struct {
	Store    store.Store
	NATS     *nats.Conn
	Sessions *session.Manager
	Logger   *slog.Logger
	Tracer   trace.TracerProvider
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
	replays, err := replay.New(ctx, js, replay.Config{Replicas: cfg.Replicas})
	if err != nil {
		return nil, nil, fmt.Errorf("edge: %w", err)
	}
	knownIDs, err := known.New(ctx, js, known.Config{Replicas: cfg.Replicas})
	if err != nil {
		return nil, nil, fmt.Errorf("edge: %w", err)
	}
	client, err := bus.NewClient(deps.NATS, js, loginSource)
	if err != nil {
		return nil, nil, fmt.Errorf("edge: %w", err)
	}
	s := &Server{
		cfg: cfg, reg: newRegistry(deps.Store, cfg.SPKeyPair, cfg.PublicURL, cfg.MetadataTimeout, cfg.MetadataRefresh, deps.Logger),
		sessions: deps.Sessions, replays: replays, known: knownIDs, prov: client, decided: deps.Store,
		republishing: make(chan struct{}, maxRepublishing),
		tracer:       deps.Tracer.Tracer("github.com/jitprov/jitprov/internal/edge"), log: deps.Logger,
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
func Run(ctx context.Context, cfg Config, deps Deps) error {
	s, ready, err := New(ctx, cfg, deps)
	if err != nil {
		return err
	}
	cfg = s.cfg
	srv := &http.Server{
		Addr:              cfg.Addr,
		Handler:           s.Handler(ready),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       15 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       60 * time.Second,
		MaxHeaderBytes:    64 << 10,
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	var certs *certwatch.Watcher
	if cfg.CertCheckInterval > 0 {
		js, err := jetstream.New(deps.NATS)
		if err != nil {
			return fmt.Errorf("edge: jetstream: %w", err)
		}
		certs, err = certwatch.New(s, js, certwatch.Config{Replicas: cfg.Replicas, Logger: deps.Logger})
		if err != nil {
			return fmt.Errorf("edge: %w", err)
		}
	} else {
		deps.Logger.InfoContext(ctx, "IdP certificate check off")
	}
	g, gctx := errgroup.WithContext(ctx)
	if certs != nil {
		g.Go(func() error {
			certs.Run(gctx, cfg.CertCheckInterval)
			return nil
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
	return g.Wait()
}
