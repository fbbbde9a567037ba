package loadtest

import (
	"cmp"
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

// Usage of `jitprov loadtest`.
const Usage = `usage: jitprov loadtest setup -edge-url URL [-orgs M] [-dir DIR] [-database-url URL]
       jitprov loadtest run [-dir DIR] [-scenarios first,returning] [-mode closed|open]
                            [-concurrency N | -rate R] [-duration D] [-logins N] [-orgs M]
                            [-encrypt-to CERT] [-database-url URL] [-scrape URL,…] [-o text|json]
       jitprov loadtest compare [-orgs M] [-mode closed|open] [-concurrency N | -rate R] [-duration D]
                            [-logins N] [-workers W] [-nats-sync always|DURATION|default]
                            [-nats-cluster 1|3] [-db URL]
                            [-src DIR | -bin DIR] [-nats-server PATH] [-encrypt] [-keep] [-o text|json]
                            [-telemetry [-telemetry-rounds R]]

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
  -encrypt-to CERT   encrypt the assertions to this certificate (PEM): the edge's SP certificate
                     (JITPROV_EDGE_SP_CERT_FILE, or the connection's sp_cert_file)
  -follow            follow the redirect to /auth/verify and check the session (default true)
  -database-url URL  check the invariants afterwards (or DATABASE_URL / JITPROV_DATABASE_URL)
  -scrape URLS       /metrics URLs (comma-separated) to scrape every -scrape-every during each timed
                     phase, as Prometheus would: compare with a run without to see what scraping costs
  -scrape-every D    (default 1s)
  -o FORMAT          text (default) or json
  -quiet             no progress bar

compare runs the whole comparison on this machine, by itself: a scratch
database, its own nats-server, the load-test OpenID provider, the
provisioner and sso-edge built and started as processes; SAML first and
returning logins over M organisations, a one-organisation storm, OIDC
first logins; then, with the edge stopped, the same against the naive
synchronous handler (validation and one pgx transaction), validation only,
and pgbench of the provisioning transaction; the ratios, CPU per login of
each process, peak RSS and the invariants. Every process it started is
stopped at the end, on an error or Ctrl-C.

Flags of compare (and -mode, -concurrency, -rate, -duration, -timeout, -o, -quiet as for run):
  -orgs M            organisations of the M-organisation scenarios (default 10)
  -logins N          closed loop: responses signed per scenario (default 3000)
  -workers W         provisioner workers = naive handler's pool = pgbench clients (default 16)
  -nats-sync S       JetStream sync_interval: always (fsync every write, default), a duration
                     such as 100ms (group commit), or default (nats-server's own, 2m)
  -nats-cluster N    1: one nats-server (default); 3 (or 5): a JetStream cluster of N
                     nats-server processes on loopback, streams of N replicas (R3)
  -db URL            server to create the scratch database on (JITPROV_BENCH_DATABASE_URL,
                     default postgres://postgres@127.0.0.1:5432/postgres)
  -src DIR           jitprov source tree to build from (default: the one the current folder is in)
  -bin DIR           take sso-edge, provisioner, jitprov-loadtest-peer (and nats-server) from DIR
  -nats-server PATH  run this nats-server (default: built from the version go.mod pins)
  -encrypt           encrypt every SAML assertion to the SP (AES-128-CBC, RSA-OAEP), as some IdPs do
  -keep              keep the scratch database and the work folder (logs, binaries)
  -telemetry         instead of the baselines: SAML first logins with telemetry off, then on
                     (every span exported over OTLP to a receiver in this process, metrics
                     pushed, each service's /metrics scraped every second), in rounds, and
                     the ratio of the medians (docs/operations.md, "What telemetry costs")
  -telemetry-rounds R  rounds of off and on (default 2)`

// Main runs `jitprov loadtest ARGS`.
func Main(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" || args[0] == "-help" {
		fmt.Fprintln(stdout, Usage)
		if len(args) == 0 {
			return errors.New("name setup, run or compare")
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
		fmt.Fprintln(stdout, "Run the edge with its sign-in rate limits off (JITPROV_EDGE_RATE_PER_CLIENT=0, JITPROV_EDGE_RATE_PER_CONNECTION=0), then: jitprov loadtest run -dir", c.Dir)
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
		var encryptTo string
		fs.StringVar(&encryptTo, "encrypt-to", "", "")
		fs.StringVar(&o.DatabaseURL, "database-url", dbDefault, "")
		var scrape string
		fs.StringVar(&scrape, "scrape", "", "")
		fs.DurationVar(&o.ScrapeEvery, "scrape-every", DefaultScrapeEvery, "")
		fs.StringVar(&format, "o", "text", "")
		fs.BoolVar(&quiet, "quiet", false, "")
		if err := parse(fs, args[1:]); err != nil {
			return err
		}
		if format != "text" && format != "json" {
			return fmt.Errorf("-o %q: want text or json", format)
		}
		for u := range strings.SplitSeq(scrape, ",") {
			if u = strings.TrimSpace(u); u != "" {
				if !strings.HasPrefix(u, "http://") && !strings.HasPrefix(u, "https://") {
					return fmt.Errorf("-scrape %q: want http(s) URLs such as http://127.0.0.1:8084/metrics", u)
				}
				o.Scrape = append(o.Scrape, u)
			}
		}
		if encryptTo != "" {
			raw, err := os.ReadFile(encryptTo)
			if err != nil {
				return err
			}
			b, _ := pem.Decode(raw)
			if b == nil || b.Type != "CERTIFICATE" {
				return fmt.Errorf("-encrypt-to %s: no CERTIFICATE PEM block", encryptTo)
			}
			if o.EncryptTo, err = x509.ParseCertificate(b.Bytes); err != nil {
				return fmt.Errorf("-encrypt-to %s: %w", encryptTo, err)
			}
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
	case "compare":
		var o CompareOptions
		var format, natsSync string
		var quiet bool
		fs.IntVar(&o.Orgs, "orgs", 10, "")
		fs.StringVar(&o.Mode, "mode", ModeClosed, "")
		fs.IntVar(&o.Concurrency, "concurrency", 32, "")
		fs.Float64Var(&o.Rate, "rate", 0, "")
		fs.DurationVar(&o.Duration, "duration", 10*time.Second, "")
		fs.IntVar(&o.Logins, "logins", 3000, "")
		fs.IntVar(&o.Workers, "workers", 16, "")
		fs.DurationVar(&o.Timeout, "timeout", 0, "")
		fs.StringVar(&natsSync, "nats-sync", "always", "")
		fs.IntVar(&o.NATSCluster, "nats-cluster", 1, "")
		fs.StringVar(&o.AdminDatabaseURL, "db", cmp.Or(getenv("JITPROV_BENCH_DATABASE_URL"), "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"), "")
		fs.StringVar(&o.Src, "src", "", "")
		fs.StringVar(&o.Bin, "bin", "", "")
		fs.StringVar(&o.NATSServer, "nats-server", "", "")
		fs.BoolVar(&o.Keep, "keep", false, "")
		fs.BoolVar(&o.Encrypt, "encrypt", false, "")
		fs.BoolVar(&o.Telemetry, "telemetry", false, "")
		fs.IntVar(&o.TelemetryRounds, "telemetry-rounds", 2, "")
		fs.StringVar(&format, "o", "text", "")
		fs.BoolVar(&quiet, "quiet", false, "")
		if err := parse(fs, args[1:]); err != nil {
			return err
		}
		if format != "text" && format != "json" {
			return fmt.Errorf("-o %q: want text or json", format)
		}
		switch natsSync {
		case "always", "":
			o.NATSSync = "always"
		case "default":
		default:
			if _, err := time.ParseDuration(natsSync); err != nil {
				return fmt.Errorf("-nats-sync %q: want always, a duration (100ms) or default", natsSync)
			}
			o.NATSSync = natsSync
		}
		if !quiet {
			o.Progress = stderr
		}
		rep, err := Compare(ctx, o)
		if rep != nil && len(rep.Scenarios) > 0 {
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
		return fmt.Errorf("jitprov loadtest %s: unknown; want setup, run or compare\n\n%s", args[0], Usage)
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
