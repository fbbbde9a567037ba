// Command sso-edge is jitprov's front door: a SAML service provider that
// validates what a person's identity provider says, gets their account
// from the provisioner (created on the spot the first time), and signs
// them in; ingresses put applications behind its /auth/verify.
//
// Settings come from an optional -config YAML file and JITPROV_* environment
// variables, which win (docs/config.md).
package main

import (
	"context"
	"crypto/tls"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"syscall"
	"time"

	"github.com/jitprov/jitprov/internal/cli"

	"github.com/jitprov/jitprov/internal/config"
	"github.com/jitprov/jitprov/internal/edge"
	"github.com/jitprov/jitprov/internal/edge/session"
	"github.com/jitprov/jitprov/internal/store/postgres"
	"github.com/jitprov/jitprov/internal/telemetry"
)

func main() {
	cli.Main("sso-edge", func(ctx context.Context) error { return run(ctx, os.Args[1:], os.Getenv, os.Stderr) })
}

func run(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) error {
	fs := flag.NewFlagSet("sso-edge", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", "", "YAML configuration file (optional; JITPROV_* variables win)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg, err := config.LoadEdge(*cfgPath, getenv)
	if err != nil {
		return err
	}
	log, err := telemetry.NewLogger(stderr, cfg.LogLevel, cfg.LogFormat)
	if err != nil {
		return err
	}
	log.InfoContext(ctx, "starting sso-edge", "config", cfg.String())
	tel, err := telemetry.Setup(ctx, "jitprov-sso-edge")
	if err != nil {
		return err
	}
	defer tel.Flush(ctx, log)

	sessions, err := sessionManager(cfg)
	if err != nil {
		return err
	}
	var spKey *tls.Certificate
	if cfg.SPKeyFile != "" {
		pair, err := tls.LoadX509KeyPair(cfg.SPCertFile, cfg.SPKeyFile)
		if err != nil {
			return fmt.Errorf("JITPROV_EDGE_SP_KEY_FILE/JITPROV_EDGE_SP_CERT_FILE: %w", err)
		}
		spKey = &pair
	}
	public, _ := url.Parse(cfg.PublicURL) // validated by LoadEdge
	proxies, _ := cfg.Proxies()           // validated by LoadEdge

	// Neither the database nor NATS need answer yet: Run waits for both,
	// alive and not ready meanwhile.
	s, err := postgres.Open(ctx, cfg.DatabaseURL, postgres.Options{Logger: log, Lazy: true, Tracer: tel.Tracer})
	if err != nil {
		return err
	}
	defer s.Close()
	nc, err := cli.ConnectNATS("jitprov-sso-edge", cfg.NATSURL, cfg.NATSCredentials, log)
	if err != nil {
		return err
	}
	defer nc.Close()

	return edge.Run(ctx, edge.Config{
		Addr: cfg.Addr, MetricsAddr: cfg.MetricsAddr, PublicURL: *public, AllowedReturnOrigins: cfg.ReturnOrigins, DefaultReturnTo: cfg.LandingURL,
		ProvisionTimeout: time.Duration(cfg.ProvisionTimeout), SessionRecheck: time.Duration(cfg.SessionRecheck), SPKeyPair: spKey, Replicas: cfg.Replicas,
		CertCheckInterval: time.Duration(cfg.CertCheckInterval), // negative when "off": the edge's convention too
		RatePerClient:     config.Rate(cfg.RatePerClient), RatePerConnection: config.Rate(cfg.RatePerConnection),
		TrustedProxies:  proxies,
		MetadataRefresh: time.Duration(cfg.MetadataRefresh),
		Reload:          cli.Notify(ctx, syscall.SIGHUP), // reload the connections and their IdP metadata now
	}, edge.Deps{Store: s, NATS: nc, Sessions: sessions, Logger: log, Tracer: tel.Tracer, Meter: tel.Meter, Metrics: tel.Metrics})
}

func sessionManager(cfg config.Edge) (*session.Manager, error) {
	secrets := make([][]byte, len(cfg.SessionKeys))
	for i, k := range cfg.SessionKeys {
		b, err := session.DecodeKey(k)
		if err != nil {
			return nil, fmt.Errorf("session key %d: %w", i+1, err)
		}
		secrets[i] = b
	}
	keys, err := session.NewKeys(secrets[0], secrets[1:]...)
	if err != nil {
		return nil, err
	}
	return session.NewManager(keys, session.Options{Insecure: cfg.InsecureCookies, Domain: cfg.CookieDomain})
}
