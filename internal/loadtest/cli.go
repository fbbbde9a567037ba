package loadtest

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
)

// Usage of `jitprov loadtest`.
const Usage = `usage: jitprov loadtest setup -edge-url URL [-orgs M] [-dir DIR] [-database-url URL]
       jitprov loadtest run [-dir DIR] [-scenarios first,returning] [-mode closed|open]
                            [-concurrency N | -rate R] [-duration D] [-logins N] [-orgs M]
                            [-database-url URL] [-o text|json]

Drives a running sso-edge over HTTP as browsers would: each synthetic
person is a new browser posting a signed, IdP-initiated SAML response to
the ACS of a load-test connection. The responses are signed before the
timed phase. See docs/loadtest.md.

Flags of setup:
  -edge-url URL      the edge's public URL (JITPROV_EDGE_PUBLIC_URL): ACS URLs are built on it
  -orgs M            load-test organisations to write (default 10)
  -prefix P          their ids are P-0 … P-(M-1) (default loadtest)
  -max-seats N       seats of each (default 1000000)
  -dir DIR           where the IdP key, the organisations file and the state go (default .jitprov-loadtest)
  -database-url URL  apply the organisations to this (migrated) database (or DATABASE_URL /
                     JITPROV_DATABASE_URL); without it, apply DIR/organizations.yaml yourself

Flags of run:
  -dir DIR           the folder setup wrote (default .jitprov-loadtest)
  -scenarios LIST    first (new people), returning (the run's people again), comma-separated, in order (default first)
  -mode MODE         closed: -concurrency logins in flight, maximum throughput (default);
                     open: -rate logins started a second, latency from each scheduled start
  -concurrency N     closed loop: logins in flight (default 32)
  -rate R            open loop: logins a second
  -duration D        of each scenario (default 10s); a scenario and its signing must fit in 9m50s
  -logins N          closed loop: responses signed per scenario, the most it sends (default 2000)
  -orgs M            use the first M organisations of setup's (default all; 1: a one-organisation storm)
  -max-in-flight N   open loop: bound on logins in flight (default 4096)
  -timeout D         of one HTTP request (default 30s)
  -follow            follow the redirect to /auth/verify and check the session (default true)
  -database-url URL  check the invariants afterwards (or DATABASE_URL / JITPROV_DATABASE_URL)
  -o FORMAT          text (default) or json
  -quiet             no progress line`

// Main runs `jitprov loadtest ARGS`.
func Main(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" || args[0] == "-help" {
		fmt.Fprintln(stdout, Usage)
		if len(args) == 0 {
			return errors.New("name setup or run")
		}
		return nil
	}
	dbDefault := cmp.Or(getenv("DATABASE_URL"), getenv("JITPROV_DATABASE_URL"))
	fs := flag.NewFlagSet("jitprov loadtest "+args[0], flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprintln(stderr, Usage) }
	switch args[0] {
	case "setup":
		var c SetupConfig
		fs.StringVar(&c.EdgeURL, "edge-url", getenv("JITPROV_EDGE_PUBLIC_URL"), "")
		fs.IntVar(&c.Orgs, "orgs", 10, "")
		fs.StringVar(&c.Prefix, "prefix", "loadtest", "")
		fs.IntVar(&c.MaxSeats, "max-seats", 1_000_000, "")
		fs.StringVar(&c.Dir, "dir", ".jitprov-loadtest", "")
		fs.StringVar(&c.DatabaseURL, "database-url", dbDefault, "")
		if err := parse(fs, args[1:]); err != nil {
			return err
		}
		if _, err := Setup(ctx, c); err != nil {
			return err
		}
		applied := "apply " + c.Dir + "/organizations.yaml to the edge's database (jitprov apply -f, or setup -database-url)"
		if c.DatabaseURL != "" {
			applied = "applied to the database"
		}
		fmt.Fprintf(stdout, "load-test IdP key and %d organisations written to %s; %s.\n", c.Orgs, c.Dir, applied)
		fmt.Fprintln(stdout, "Run the edge with its sign-in rate limits off (JITPROV_EDGE_RATE_PER_CLIENT=-1, JITPROV_EDGE_RATE_PER_CONNECTION=-1), then: jitprov loadtest run -dir", c.Dir)
		return nil
	case "run":
		var o Options
		var scenarios, format string
		var quiet bool
		fs.StringVar(&o.Dir, "dir", ".jitprov-loadtest", "")
		fs.StringVar(&scenarios, "scenarios", ScenarioFirst, "")
		fs.StringVar(&o.Mode, "mode", ModeClosed, "")
		fs.IntVar(&o.Concurrency, "concurrency", 32, "")
		fs.Float64Var(&o.Rate, "rate", 0, "")
		fs.DurationVar(&o.Duration, "duration", 0, "")
		fs.IntVar(&o.Logins, "logins", 2000, "")
		fs.IntVar(&o.Orgs, "orgs", 0, "")
		fs.IntVar(&o.MaxInFlight, "max-in-flight", 4096, "")
		fs.DurationVar(&o.Timeout, "timeout", 0, "")
		fs.BoolVar(&o.Follow, "follow", true, "")
		fs.StringVar(&o.DatabaseURL, "database-url", dbDefault, "")
		fs.StringVar(&format, "o", "text", "")
		fs.BoolVar(&quiet, "quiet", false, "")
		if err := parse(fs, args[1:]); err != nil {
			return err
		}
		if format != "text" && format != "json" {
			return fmt.Errorf("-o %q: want text or json", format)
		}
		for s := range strings.SplitSeq(scenarios, ",") {
			if s = strings.TrimSpace(s); s != "" {
				o.Scenarios = append(o.Scenarios, s)
			}
		}
		if !quiet {
			o.Progress = stderr
		}
		rep, err := Run(ctx, o)
		if rep != nil && (len(rep.Scenarios) > 0 || rep.Invariants != nil) {
			var werr error
			if format == "json" {
				werr = rep.WriteJSON(stdout)
			} else {
				werr = rep.WriteText(stdout)
			}
			err = errors.Join(err, werr)
		}
		return err
	default:
		return fmt.Errorf("jitprov loadtest %s: unknown; want setup or run\n\n%s", args[0], Usage)
	}
}

func parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q\n\n%s", fs.Arg(0), Usage)
	}
	return nil
}
