// Command jitprov-loadtest-peer runs the processes `jitprov loadtest
// compare` starts beside the real sso-edge, each in a process of its own
// so that its CPU time and memory are its own:
//
//	jitprov-loadtest-peer naive -addr A -public-url U -state DIR -database-url DB -sp-key F -sp-cert F [-oidc-issuer URL]
//	jitprov-loadtest-peer oidc-provider -addr A -issuer URL -key-file F
//
// naive is the naive synchronous baseline (internal/loadtest/naive): the
// organisations of the state folder's loadtest.json, the load-test IdP of
// its idp-cert.pem. oidc-provider is the load-test OpenID provider
// (loadtest.OIDCProvider). The OIDC client secret is read from
// JITPROV_LOADTEST_OIDC_SECRET. Both stop on SIGTERM or SIGINT.
package main

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/tls"
	"encoding/xml"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/crewjam/saml"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/jitprov/jitprov/internal/loadtest"
	"github.com/jitprov/jitprov/internal/loadtest/naive"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	if err := run(ctx, os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "jitprov-loadtest-peer:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return errors.New("name naive or oidc-provider")
	}
	fs := flag.NewFlagSet(args[0], flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:0", "listen address")
	secret := os.Getenv(loadtest.OIDCSecretEnv)
	switch args[0] {
	case "naive":
		publicURL := fs.String("public-url", "", "the URL browsers reach it at")
		dir := fs.String("state", "", "state folder (loadtest.json, idp-cert.pem)")
		dbURL := fs.String("database-url", "", "the database (empty: validation only)")
		poolSize := fs.Int("pool", 16, "database connections")
		spKey := fs.String("sp-key", "", "SP key (PEM)")
		spCert := fs.String("sp-cert", "", "SP certificate (PEM)")
		issuer := fs.String("oidc-issuer", "", "the OpenID provider of the OIDC connections (none: SAML only)")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		st, err := loadtest.LoadState(*dir)
		if err != nil {
			return err
		}
		idp, err := loadtest.LoadIdP(*dir)
		if err != nil {
			return err
		}
		mdXML, err := idp.MetadataXML()
		if err != nil {
			return err
		}
		var md saml.EntityDescriptor
		if err := xml.Unmarshal([]byte(mdXML), &md); err != nil {
			return err
		}
		pair, err := tls.LoadX509KeyPair(*spCert, *spKey)
		if err != nil {
			return err
		}
		pub, err := url.Parse(*publicURL)
		if err != nil {
			return err
		}
		key := make([]byte, 32)
		_, _ = rand.Read(key)
		cfg := naive.Config{PublicURL: *pub, Orgs: st.Orgs, SAMLConnection: st.Connection, SPEntityID: loadtest.SPEntityID,
			IDPMetadata: &md, ClockSkew: loadtest.ClockSkew, SPKey: pair.PrivateKey.(crypto.Signer), SPCert: pair.Leaf, CookieKey: key}
		if *issuer != "" {
			cfg.OIDC = &naive.OIDC{Connection: loadtest.OIDCConnectionID, Issuer: *issuer, ClientID: loadtest.OIDCClientID, ClientSecret: secret}
		}
		if *dbURL != "" {
			pc, err := pgxpool.ParseConfig(*dbURL)
			if err != nil {
				return err
			}
			pc.MaxConns = int32(*poolSize)
			if cfg.Pool, err = pgxpool.NewWithConfig(ctx, pc); err != nil {
				return err
			}
			defer cfg.Pool.Close()
		}
		s, err := naive.New(ctx, cfg)
		if err != nil {
			return err
		}
		return serve(ctx, *addr, s)
	case "oidc-provider":
		issuer := fs.String("issuer", "", "its URL")
		keyFile := fs.String("key-file", "", "its P-256 key (PEM)")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		raw, err := os.ReadFile(*keyFile)
		if err != nil {
			return err
		}
		p, err := loadtest.LoadOIDCProvider(*issuer, secret, raw)
		if err != nil {
			return err
		}
		go func() {
			for t := time.NewTicker(time.Minute); ctx.Err() == nil; <-t.C {
				p.Sweep()
			}
		}()
		return serve(ctx, *addr, p)
	default:
		return fmt.Errorf("%s: unknown; want naive or oidc-provider", args[0])
	}
}

func serve(ctx context.Context, addr string, h http.Handler) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
