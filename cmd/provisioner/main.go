// Command provisioner decides first logins: it consumes login.first-seen
// events from JetStream, creates or updates users in Postgres inside each
// organisation's seat limit, answers each login, and relays user and alert
// events.
//
//	provisioner [serve] [-config FILE]   run the service (default)
//	provisioner migrate [-config FILE]   apply the database migrations
//	provisioner apply -f FILE            create or update organisations
//	provisioner check -f FILE            validate an organisations file
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/jitprov/jitprov/internal/cli"

	"github.com/jitprov/jitprov/internal/config"
	"github.com/jitprov/jitprov/internal/provisioner"
	"github.com/jitprov/jitprov/internal/store"
	"github.com/jitprov/jitprov/internal/store/postgres"
	"github.com/jitprov/jitprov/internal/telemetry"
)

func main() {
	cli.Main("provisioner", func(ctx context.Context) error { return run(ctx, os.Args[1:], os.Stdout, os.Stderr) })
}

const usage = `usage:
  provisioner [serve] [-config FILE]   run the service (default)
  provisioner migrate [-config FILE]   apply the database migrations
  provisioner apply -f FILE [-config FILE]
                                       create or update the organisations in FILE
  provisioner check -f FILE [-files=false]
                                       validate an organisations file, touching nothing:
                                       every problem sso-edge would refuse a connection for,
                                       reading the files connections name (-files=false: not)

Settings come from the optional -config YAML file and JITPROV_* environment
variables (see docs/config.md); JITPROV_DATABASE_URL is required.`

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cmd := "serve"
	if len(args) > 0 && args[0] != "" && args[0][0] != '-' {
		cmd, args = args[0], args[1:]
	}
	fs := flag.NewFlagSet("provisioner "+cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprintln(stderr, usage) }
	cfgPath := fs.String("config", "", "YAML configuration file (optional)")
	orgsPath := fs.String("f", "", "organisations file (apply, check)")
	readFiles := fs.Bool("files", true, "read the files connections name, as sso-edge will (check)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if flagSet(fs, "files") && cmd != "check" {
		return fmt.Errorf("-files is a flag of check\n%s", usage)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q\n%s", fs.Arg(0), usage)
	}

	switch cmd {
	case "serve", "migrate", "apply", "check":
	default:
		return fmt.Errorf("unknown command %q\n%s", cmd, usage)
	}
	if cmd == "check" {
		return check(*orgsPath, *readFiles, stdout)
	}
	cfg, err := config.LoadProvisioner(*cfgPath, os.Getenv)
	if err != nil {
		return err
	}
	log, err := telemetry.NewLogger(stderr, cfg.LogLevel, cfg.LogFormat)
	if err != nil {
		return err
	}
	switch cmd {
	case "serve":
		return serve(ctx, cfg, log)
	case "migrate":
		return withStore(ctx, cfg, log, func(s *postgres.Store) error {
			applied, err := s.Migrate(ctx)
			if err != nil {
				return err
			}
			v, err := s.SchemaVersion(ctx)
			if err != nil {
				return err
			}
			fmt.Fprintf(stdout, "applied %d migrations; the schema is at version %d\n", len(applied), v)
			return nil
		})
	case "apply":
		orgs, conns, err := loadOrgs(*orgsPath)
		if err != nil {
			return err
		}
		return withStore(ctx, cfg, log, func(s *postgres.Store) error {
			if err := requireSchema(ctx, s); err != nil {
				return err
			}
			if err := s.ApplyOrganizations(ctx, orgs, conns); err != nil {
				return err
			}
			fmt.Fprintf(stdout, "applied %d organisations and %d connections from %s\n", len(orgs), len(conns), *orgsPath)
			return nil
		})
	default:
		return fmt.Errorf("unknown command %q\n%s", cmd, usage)
	}
}

func loadOrgs(path string) ([]store.Organization, []store.Connection, error) {
	if path == "" {
		return nil, nil, errors.New("name the organisations file with -f FILE")
	}
	orgs, conns, err := config.LoadOrganizations(path)
	return orgs, conns, counted(path, err, "; nothing was applied")
}

// check validates the organisations file at path as apply does and, with
// readFiles, reads the files its connections name as sso-edge will.
func check(path string, readFiles bool, stdout io.Writer) error {
	if path == "" {
		return errors.New("name the organisations file with -f FILE")
	}
	unread := ""
	if !readFiles {
		unread = "; the files connections name were not read (-files=false)"
	}
	f, err := config.CheckOrgFile(path, readFiles)
	if err != nil {
		return counted(path, err, "")
	}
	fmt.Fprintf(stdout, "%s: %d organisations, %d connections: valid%s\n", path, len(f.Organizations), len(f.Connections), unread)
	fmt.Fprintln(stdout, "IdP metadata URLs and OIDC issuers were not fetched: sso-edge fetches them when it loads a connection.")
	return nil
}

// counted puts the number of a file's problems on a line of its own above
// them, so that each problem (FILE:LINE: …) starts a line.
func counted(path string, err error, note string) error {
	var list interface{ Unwrap() []error }
	if !errors.As(err, &list) {
		return err
	}
	n := len(list.Unwrap())
	what := "problems"
	if n == 1 {
		what = "problem"
	}
	return fmt.Errorf("%s: %d %s%s:\n%w", path, n, what, note, err)
}

// flagSet reports whether the command line set the flag name.
func flagSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

func withStore(ctx context.Context, cfg config.Provisioner, log *slog.Logger, fn func(*postgres.Store) error) error {
	s, err := postgres.Open(ctx, cfg.DatabaseURL, postgres.Options{Logger: log})
	if err != nil {
		return err
	}
	defer s.Close()
	return fn(s)
}

// requireSchema refuses to run against a database that was not migrated
// to this binary's schema, with the command that fixes it.
func requireSchema(ctx context.Context, s *postgres.Store) error {
	have, err := s.SchemaVersion(ctx)
	if err != nil {
		return err
	}
	all, err := postgres.Migrations()
	if err != nil {
		return err
	}
	if have < len(all) {
		return fmt.Errorf("the database schema is at version %d, this binary needs %d: run `provisioner migrate`", have, len(all))
	}
	return nil
}

func serve(ctx context.Context, cfg config.Provisioner, log *slog.Logger) error {
	log.InfoContext(ctx, "starting provisioner", "config", cfg.String())
	tel, err := telemetry.Setup(ctx, "jitprov-provisioner")
	if err != nil {
		return err
	}
	defer tel.Flush(ctx, log)
	// Neither the database nor NATS need answer yet: Run waits for both,
	// alive and not ready meanwhile.
	s, err := postgres.Open(ctx, cfg.DatabaseURL, postgres.Options{Logger: log, Tracer: tel.Tracer, MaxConns: int32(cfg.Workers + 4),
		LockTimeout: time.Duration(cfg.DBLockTimeout), StatementTimeout: time.Duration(cfg.DBStatementTimeout),
		IdleInTxTimeout: time.Duration(cfg.DBIdleInTransactionTimeout), Lazy: true})
	if err != nil {
		return err
	}
	defer s.Close()
	nc, err := cli.ConnectNATS("jitprov-provisioner", cfg.NATSURL, cfg.NATSCredentials, log)
	if err != nil {
		return err
	}
	defer nc.Close()

	err = provisioner.Run(ctx, provisioner.Config{
		Workers: cfg.Workers, MaxBatch: cfg.MaxBatch, DecisionTimeout: time.Duration(cfg.DecisionTimeout),
		DrainTimeout: time.Duration(cfg.DrainTimeout), Topology: cfg.Streams.Topology(), HealthAddr: cfg.HealthAddr,
		InactiveSweep: cfg.InactiveSweepInterval(),
	}, provisioner.Deps{Store: s, NATS: nc, Logger: log, Tracer: tel.Tracer, Meter: tel.Meter, Metrics: tel.Metrics,
		CheckStore: func(ctx context.Context) error { return requireSchema(ctx, s) }})
	if err != nil {
		return err
	}
	log.Info("provisioner stopped")
	return nil
}
