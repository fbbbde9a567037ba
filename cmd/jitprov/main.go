// Command jitprov runs jitprov on one machine, and administers it
// through the admin API.
//
//	jitprov dev [flags]   the whole pipeline in one process, with a built-in
//	                      development IdP, a demo application and an inbox
//	jitprov loadtest setup|run|compare [flags]
//	                      a login storm against a running sso-edge, or the whole
//	                      comparison with the baselines (docs/loadtest.md)
//	jitprov orgs|users|reviews|audit|decisions|connections|dry-run|apply|tokens …
//	                      an operator's commands against the admin API
//	                      (--server / JITPROV_ADMIN_URL, --token / JITPROV_TOKEN)
//	jitprov help [COMMAND] every command, or one with its flags
package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"syscall"

	"github.com/jitprov/jitprov/internal/cli"

	"github.com/jitprov/jitprov/internal/devmode"
	"github.com/jitprov/jitprov/internal/loadtest"
	"github.com/jitprov/jitprov/internal/telemetry"
)

func main() {
	cli.Main("jitprov", func(ctx context.Context) error { return run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr) })
}

var usage = `usage: jitprov COMMAND [ARGS] [flags]

Run jitprov on this machine:
  dev [flags]                                    run everything on this machine, for development and demos
  loadtest setup|run|compare [flags]             a login storm against a running sso-edge, or the pipeline against the naive design (jitprov loadtest help)

Administer jitprov through its admin API (--server URL or JITPROV_ADMIN_URL,
--token TOKEN or JITPROV_TOKEN; -o table|json|yaml):
` + commandList() + `
  help [COMMAND]                                 every command, or one with its flags (or COMMAND --help)

` + globalFlags + "\n" + exitCodes + "\n" + devUsage

const devUsage = `Flags of dev:
  -data DIR         where the data and development keys live (default .jitprov-dev);
                    one jitprov dev at a time uses a folder
  -host NAME        the host name in every URL (default localhost)
  -edge-port N      sso-edge (default 8080)
  -dev-port N       the tour, demo app, dev inbox and dev IdP (default 8090)
  -nats-port N      the embedded NATS server (default 4223)
  -database-url URL use this PostgreSQL instead of the embedded store
                    (or DATABASE_URL / JITPROV_DATABASE_URL)
  -nats-url URL     use this NATS server instead of the embedded one
                    (or NATS_URL / JITPROV_NATS_URL)
  -allow-remote     let the database and NATS URLs name other hosts than this
                    machine (dev mode applies demo organisations there and
                    consumes its logins and alerts)
  -log-level LEVEL  debug, info, warn or error (default info)`

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	switch {
	case len(args) == 0:
		fmt.Fprintln(stderr, usage)
		return errors.New("name a command")
	case args[0] == "help" || args[0] == "-h" || args[0] == "-help" || args[0] == "--help":
		return help(args[1:], stdout)
	case args[0] == "loadtest":
		return loadtest.Main(ctx, args[1:], getenv, stdout, stderr)
	case args[0] != "dev":
		return runAdmin(ctx, args, getenv, stdout, stderr)
	}
	fs := flag.NewFlagSet("jitprov dev", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprintln(stderr, "usage: jitprov dev [flags]\n\n"+devUsage) }
	var cfg devmode.Config
	fs.StringVar(&cfg.DataDir, "data", ".jitprov-dev", "")
	fs.StringVar(&cfg.Host, "host", "localhost", "")
	fs.IntVar(&cfg.EdgePort, "edge-port", 8080, "")
	fs.IntVar(&cfg.DevPort, "dev-port", 8090, "")
	fs.IntVar(&cfg.NATSPort, "nats-port", 4223, "")
	fs.StringVar(&cfg.DatabaseURL, "database-url", cmp.Or(getenv("DATABASE_URL"), getenv("JITPROV_DATABASE_URL")), "")
	fs.StringVar(&cfg.NATSURL, "nats-url", cmp.Or(getenv("NATS_URL"), getenv("JITPROV_NATS_URL")), "")
	fs.BoolVar(&cfg.AllowRemote, "allow-remote", false, "")
	level := fs.String("log-level", "info", "")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q\nusage: jitprov dev [flags]\n\n%s", fs.Arg(0), devUsage)
	}
	log, err := telemetry.NewLogger(stderr, *level, "text")
	if err != nil {
		return err
	}
	tel, err := telemetry.Setup(ctx, "jitprov-dev")
	if err != nil {
		return err
	}
	defer tel.Flush(ctx, log)
	cfg.Out, cfg.Logger, cfg.Tracer, cfg.Meter, cfg.Metrics = stdout, log, tel.Tracer, tel.Meter, tel.Metrics
	cfg.Reload = cli.Notify(ctx, syscall.SIGHUP) // the edge reloads its connections and their IdP metadata
	return devmode.Run(ctx, cfg)
}
