// Command admin serves the admin API (/api/v1/, described by
// /api/v1/openapi.yaml) and, once mounted, the web console (/admin/):
// what organisation admins and operators do with users, role reviews,
// seats, decisions and API tokens.
//
//	admin [serve] [-config FILE]   run the service (default)
//	admin token create -name NAME -scope read|write|scim [-org ORG] [-expires 720h]
//	                               make an API token with database access (the first one)
package main

import (
	"context"
	"crypto/sha256"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/jitprov/jitprov/internal/admin"
	"github.com/jitprov/jitprov/internal/admin/authn"
	"github.com/jitprov/jitprov/internal/admin/console"
	"github.com/jitprov/jitprov/internal/admin/service"
	"github.com/jitprov/jitprov/internal/admin/token"
	"github.com/jitprov/jitprov/internal/cli"
	"github.com/jitprov/jitprov/internal/config"
	"github.com/jitprov/jitprov/internal/edge/session"
	"github.com/jitprov/jitprov/internal/startup"
	"github.com/jitprov/jitprov/internal/store/postgres"
	"github.com/jitprov/jitprov/internal/telemetry"
)

func main() {
	cli.Main("admin", func(ctx context.Context) error { return run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr) })
}

const usage = `usage:
  admin [serve] [-config FILE]   serve the admin API (and the console)
  admin token create -name NAME -scope read|write|scim [-org ORG] [-expires DURATION] [-config FILE]
                                 make an API token straight in the database, as an operator,
                                 and print its secret once: the first token, before any other
                                 can create tokens through the API

Settings come from the optional -config YAML file and JITPROV_* environment
variables (see docs/config.md, "Admin service configuration");
JITPROV_DATABASE_URL is required, and the edge's session keys
(JITPROV_SESSION_KEYS_FILE) let organisation admins in with their SSO.`

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cmd := "serve"
	switch {
	case len(args) > 0 && args[0] == "serve":
		args = args[1:]
	case len(args) > 1 && args[0] == "token" && args[1] == "create":
		cmd, args = "token create", args[2:]
	case len(args) > 0 && args[0] != "" && args[0][0] != '-':
		return fmt.Errorf("unknown command %q\n%s", args[0], usage)
	}
	fs := flag.NewFlagSet("admin "+cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprintln(stderr, usage) }
	cfgPath := fs.String("config", "", "YAML configuration file (optional)")
	name := fs.String("name", "", "what the token is for (token create)")
	scope := fs.String("scope", "", "read, write, or scim: an organisation's SCIM client, with -org (token create)")
	org := fs.String("org", "", "the one organisation the token acts on; none for a global token (token create)")
	expires := fs.Duration("expires", admin.DefaultTokenLifetime, "how long the token lives (token create)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q\n%s", fs.Arg(0), usage)
	}
	cfg, err := config.LoadAdmin(*cfgPath, getenv)
	if err != nil {
		return err
	}
	log, err := telemetry.NewLogger(stderr, cfg.LogLevel, cfg.LogFormat)
	if err != nil {
		return err
	}
	if cmd == "token create" {
		return createToken(ctx, cfg, log, admin.NewToken{Name: *name, OrganizationID: *org, Scope: *scope,
			ExpiresAt: time.Now().Add(*expires)}, stdout, stderr)
	}
	return serve(ctx, cfg, log)
}

// createToken makes a token as the operator, who has the database.
func createToken(ctx context.Context, cfg config.Admin, log *slog.Logger, req admin.NewToken, stdout, stderr io.Writer) error {
	s, err := postgres.Open(ctx, cfg.DatabaseURL, postgres.Options{Logger: log, MaxConns: 2})
	if err != nil {
		return err
	}
	defer s.Close()
	if err := requireSchema(ctx, s); err != nil {
		return err
	}
	user := os.Getenv("USER")
	if user == "" {
		user = "operator"
	}
	c, err := admin.New(s, log).CreateToken(ctx, admin.Operator(user), req)
	if err != nil {
		var fe *admin.FieldError
		if errors.As(err, &fe) {
			return fmt.Errorf("-%s: %s", map[string]string{"name": "name", "scope": "scope", "expires_at": "expires"}[fe.Field], fe.Msg)
		}
		return err
	}
	where := "every organisation"
	if c.Token.OrganizationID != "" {
		where = "organisation " + c.Token.OrganizationID
	}
	fmt.Fprintf(stdout, "token %s (%q): %s on %s, until %s\n%s\n", c.Token.ID, c.Token.Name, c.Token.Scope, where,
		c.Token.ExpiresAt.UTC().Format(time.RFC3339), c.Secret)
	fmt.Fprintln(stderr, "The secret above is shown this once; keep it in a secret store. Revoke with DELETE /api/v1/tokens/"+c.Token.ID+".")
	return nil
}

func serve(ctx context.Context, cfg config.Admin, log *slog.Logger) error {
	log.InfoContext(ctx, "starting admin", "config", cfg.String())
	tel, err := telemetry.Setup(ctx, "jitprov-admin")
	if err != nil {
		return err
	}
	defer tel.Flush(ctx, log)
	var sessions *session.Manager
	if len(cfg.SessionKeys) > 0 {
		if sessions, err = authn.SessionManager(cfg.SessionKeys, cfg.InsecureCookies, cfg.CookieDomain); err != nil {
			return fmt.Errorf("the edge's session keys: %w", err)
		}
	} else {
		log.WarnContext(ctx, "no session keys (JITPROV_SESSION_KEYS_FILE): only API tokens are accepted; organisation admins cannot sign in")
	}
	proxies, _ := cfg.Proxies() // validated by LoadAdmin
	// The database need not answer yet: Run waits for it, alive and not
	// ready meanwhile.
	s, err := postgres.Open(ctx, cfg.DatabaseURL, postgres.Options{Logger: log, MaxConns: 10, Lazy: true, Tracer: tel.Tracer,
		StatementTimeout: 10 * time.Second, LockTimeout: 5 * time.Second, IdleInTxTimeout: 10 * time.Second})
	if err != nil {
		return err
	}
	defer s.Close()
	rate := cfg.TokenRate
	if rate == 0 {
		rate = -1 // no limit
	}
	auth := authn.New(authn.Config{Store: s, Sessions: sessions, UsesPerMinute: rate, TrustedProxies: proxies,
		Failures: token.NewLimiter(cfg.TokenFailures, time.Minute, nil)})
	var con http.Handler
	switch {
	case sessions == nil:
	case cfg.EdgePublicURL == "":
		log.WarnContext(ctx, "no JITPROV_EDGE_PUBLIC_URL: the console (/admin/) is off; set it to sso-edge's public URL, on whose host the console is served")
	default:
		edgeURL := strings.TrimSuffix(cfg.EdgePublicURL, "/")
		// Every replica keys its forms' tokens alike, from the session keys
		// (a form rendered by one replica is posted to another).
		csrf := sha256.Sum256([]byte("jitprov admin console forms\x00" + cfg.SessionKeys[0]))
		consoleCore := admin.New(s, log.With("component", "console"))
		consoleCore.TraceOutgoing(tel.Tracer)
		c, err := console.New(console.Config{Core: consoleCore, Auth: auth,
			LoginURL: edgeURL + "/login", PublicURL: edgeURL, CSRFKey: csrf[:], Logger: log.With("component", "console")})
		if err != nil {
			return err
		}
		con = c
	}
	err = service.Run(ctx, service.Config{Addr: cfg.Addr, HealthAddr: cfg.HealthAddr, ShutdownTimeout: time.Duration(cfg.ShutdownTimeout),
		ReviewExpiry: time.Duration(cfg.ReviewExpiry)},
		service.Deps{Store: s, Authn: auth, Logger: log, Console: con, Metrics: tel.Metrics, Tracer: tel.Tracer, CheckStore: func(ctx context.Context) error { return requireSchema(ctx, s) }})
	if err != nil {
		return err
	}
	log.Info("admin stopped")
	return nil
}

// requireSchema refuses to serve a database that was not migrated to this
// binary's schema, with the command that fixes it; retried meanwhile (a
// migration may be running).
func requireSchema(ctx context.Context, s *postgres.Store) error {
	have, err := s.SchemaVersion(ctx)
	if err != nil {
		return err
	}
	all, err := postgres.Migrations()
	if err != nil {
		return startup.Permanent(err)
	}
	if have < len(all) {
		return fmt.Errorf("the database schema is at version %d, this binary needs %d: run `provisioner migrate`", have, len(all))
	}
	return nil
}
