// Package bench measures first-seen provisioning end to end — a client
// publishing login.first-seen on JetStream and waiting for the answer,
// provisioners deciding against Postgres — beside pgbench running the same
// SQL transaction against the same database, the database's own limit on
// the machine.
package bench

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	noopmetric "go.opentelemetry.io/otel/metric/noop"
	nooptrace "go.opentelemetry.io/otel/trace/noop"

	"github.com/jitprov/jitprov/events"
	"github.com/jitprov/jitprov/internal/bus"
	"github.com/jitprov/jitprov/internal/provisioner"
	"github.com/jitprov/jitprov/internal/store"
	"github.com/jitprov/jitprov/internal/store/postgres"
)

//go:embed decision.pgbench.sql
var pgbenchScript string

// Options of a run.
type Options struct {
	DatabaseURL string // a database to fill (it is migrated); use an empty one
	Duration    time.Duration
	Warmup      time.Duration
	Concurrency int // logins in flight (clients waiting for an answer)
	Workers     int // provisioner workers
	Replicas    int // provisioners in the process
	OrgCounts   []int
	NATSSync    bool // fsync every JetStream write, as production single-node runs
	StoreDir    string
	Log         *slog.Logger
}

// Result of one scenario.
type Result struct {
	Orgs       int
	Logins     int
	PerSecond  float64
	P50, P99   time.Duration
	PgbenchTPS float64
	Errors     int
	Outcomes   map[events.Outcome]int
	Elapsed    time.Duration
}

// Ratio is provisions per second over pgbench's transactions per second.
func (r Result) Ratio() float64 {
	if r.PgbenchTPS == 0 {
		return 0
	}
	return r.PerSecond / r.PgbenchTPS
}

// Run measures every scenario and prints a table to out.
func Run(ctx context.Context, o Options, out io.Writer) ([]Result, error) {
	if _, err := exec.LookPath("pgbench"); err != nil {
		return nil, errors.New("pgbench is not installed (Debian: apt-get install postgresql-client)")
	}
	s, err := postgres.Open(ctx, o.DatabaseURL, postgres.Options{MaxConns: int32(o.Replicas*o.Workers + 8)})
	if err != nil {
		return nil, err
	}
	defer s.Close()
	if _, err := s.Migrate(ctx); err != nil {
		return nil, err
	}
	ns, err := startNATS(o)
	if err != nil {
		return nil, err
	}
	defer ns.Shutdown()

	var results []Result
	for _, n := range o.OrgCounts {
		r, err := scenario(ctx, o, s, ns, n)
		if err != nil {
			return results, fmt.Errorf("%d orgs: %w", n, err)
		}
		results = append(results, r)
	}
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(out, "first-seen provisioning: %d in flight, %d provisioner(s) x %d workers, %s per run, JetStream fsync always: %t, %d CPUs\n",
		o.Concurrency, o.Replicas, o.Workers, o.Duration, o.NATSSync, runtime.NumCPU())
	fmt.Fprintln(tw, "orgs\tlogins\tprovisions/s\tp50\tp99\terrors\tpgbench tps\tratio\t")
	for _, r := range results {
		fmt.Fprintf(tw, "%d\t%d\t%.0f\t%s\t%s\t%d\t%.0f\t%.2f\t\n", r.Orgs, r.Logins, r.PerSecond,
			r.P50.Round(10*time.Microsecond), r.P99.Round(10*time.Microsecond), r.Errors, r.PgbenchTPS, r.Ratio())
	}
	return results, tw.Flush()
}

func scenario(ctx context.Context, o Options, s *postgres.Store, ns *server.Server, orgs int) (Result, error) {
	res := Result{Orgs: orgs, Outcomes: map[events.Outcome]int{}}
	if err := ApplyOrganizations(ctx, s, orgs); err != nil {
		return res, err
	}

	// The pipeline: provisioners and one client, each on its own connection.
	runCtx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	errs := make(chan error, o.Replicas)
	for range o.Replicas {
		nc, err := nats.Connect(ns.ClientURL())
		if err != nil {
			stop()
			return res, err
		}
		defer nc.Close()
		wg.Go(func() {
			errs <- provisioner.Run(runCtx, provisioner.Config{
				Workers: o.Workers, DecisionTimeout: 10 * time.Second, DrainTimeout: 10 * time.Second,
				Topology: bus.DefaultTopology(),
			}, provisioner.Deps{Store: s, NATS: nc, Logger: o.Log,
				Tracer: nooptrace.NewTracerProvider(), Meter: noopmetric.NewMeterProvider()})
		})
	}
	defer func() { stop(); wg.Wait() }()
	nc, err := nats.Connect(ns.ClientURL())
	if err != nil {
		return res, err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return res, err
	}
	if err := waitForConsumer(ctx, js); err != nil {
		return res, err
	}
	client, err := bus.NewClient(nc, js, "/jitprov/bench")
	if err != nil {
		return res, err
	}
	defer client.Close()

	// Closed loop: Concurrency clients, each signing in new people one
	// after another; only what completes after the warm-up counts.
	var seq atomic.Int64
	run := fmt.Sprintf("o%d-%d", orgs, time.Now().UnixNano())
	var mu sync.Mutex
	var lat []time.Duration
	var errCount int
	measureFrom := time.Now().Add(o.Warmup)
	end := measureFrom.Add(o.Duration)
	var cw sync.WaitGroup
	for c := range o.Concurrency {
		cw.Go(func() {
			var mine []time.Duration
			outcomes := map[events.Outcome]int{}
			bad := 0
			for time.Now().Before(end) {
				n := seq.Add(1)
				// The scenario's own people: scenarios share the database
				// (and bench-0), and a person of an earlier one would be an
				// existing user, not a first login.
				id := events.Identity{OrganizationID: fmt.Sprintf("bench-%d", int(n)%orgs), ConnectionID: "idp",
					Protocol: events.ProtocolSAML, ExternalID: fmt.Sprintf("%s-c%d-%d", run, c, n),
					Email: fmt.Sprintf("%s-c%d-%d@bench.example", run, c, n), GivenName: "Bench", AuthenticatedAt: time.Now().UTC()}
				rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
				t0 := time.Now()
				r, err := client.Provision(rctx, id)
				d := time.Since(t0)
				cancel()
				if t0.Before(measureFrom) {
					continue
				}
				if err != nil {
					bad++
					continue
				}
				if time.Now().After(end) {
					break
				}
				mine = append(mine, d)
				outcomes[r.Outcome]++
			}
			mu.Lock()
			lat = append(lat, mine...)
			errCount += bad
			for k, v := range outcomes {
				res.Outcomes[k] += v
			}
			mu.Unlock()
		})
	}
	cw.Wait()
	if len(lat) == 0 {
		return res, fmt.Errorf("no login completed (errors: %d)", errCount)
	}
	slices.Sort(lat)
	res.Logins, res.Errors, res.Elapsed = len(lat), errCount, o.Duration
	res.PerSecond = float64(len(lat)) / o.Duration.Seconds()
	res.P50, res.P99 = lat[len(lat)/2], lat[len(lat)*99/100]
	if res.Outcomes[events.OutcomeCreated] != len(lat) {
		return res, fmt.Errorf("outcomes %v: every login should have created a user", res.Outcomes)
	}
	stop()
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			return res, err
		}
	}

	tps, err := pgbench(ctx, o, orgs)
	if err != nil {
		return res, err
	}
	res.PgbenchTPS = tps
	return res, nil
}

// ApplyOrganizations applies bench-0 … bench-(n-1), the organisations
// pgbench's decision transaction (decision.pgbench.sql) signs people in to.
func ApplyOrganizations(ctx context.Context, s *postgres.Store, n int) error {
	var orgList []store.Organization
	var conns []store.Connection
	for i := range n {
		id := fmt.Sprintf("bench-%d", i)
		orgList = append(orgList, store.Organization{ID: id, Name: id, MaxSeats: 1 << 30,
			Roles: []string{"viewer", "member", "admin"}, DefaultRole: "member", JITRoleCeiling: "member",
			UpdatePolicy: store.PreferIdP, LinkByEmail: store.LinkNever})
		conns = append(conns, store.Connection{OrganizationID: id, ID: "idp", Protocol: "saml"})
	}
	return s.ApplyOrganizations(ctx, orgList, conns)
}

func waitForConsumer(ctx context.Context, js jetstream.JetStream) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := js.Consumer(ctx, bus.StreamLogins, bus.ConsumerProvisioner); err == nil {
			return nil
		} else if time.Now().After(deadline) {
			return fmt.Errorf("the provisioner did not set up JetStream: %w", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

var tpsLine = regexp.MustCompile(`tps = ([0-9.]+) \(without initial connection time\)`)

// pgbench runs the decision transaction with as many clients as logins
// were in flight, for the same duration.
func pgbench(ctx context.Context, o Options, orgs int) (float64, error) {
	r, err := Pgbench(ctx, o.DatabaseURL, orgs, min(o.Concurrency, o.Replicas*o.Workers), o.Duration)
	return r.TPS, err
}

// PgbenchResult is what pgbench reported.
type PgbenchResult struct {
	TPS          float64 `json:"tps"`
	LatencyAvgMs float64 `json:"latency_avg_ms"`
	Clients      int     `json:"clients"`
	Seconds      float64 `json:"seconds"`
}

var latencyLine = regexp.MustCompile(`latency average = ([0-9.]+) ms`)

// Pgbench runs the decision transaction (decision.pgbench.sql) against
// dbURL, whose organisations bench-0 … bench-(orgs-1) ApplyOrganizations
// made, with clients connections for d (whole seconds, at least 1).
func Pgbench(ctx context.Context, dbURL string, orgs, clients int, d time.Duration) (PgbenchResult, error) {
	res := PgbenchResult{Clients: clients, Seconds: max(1, d.Round(time.Second).Seconds())}
	if _, err := exec.LookPath("pgbench"); err != nil {
		return res, errors.New("pgbench is not installed (Debian: apt-get install postgresql-client)")
	}
	f, err := os.CreateTemp("", "jitprov-*.pgbench.sql")
	if err != nil {
		return res, err
	}
	defer os.Remove(f.Name())
	if _, err := f.WriteString(pgbenchScript); err != nil {
		return res, err
	}
	_ = f.Close()
	cmd := exec.CommandContext(ctx, "pgbench", "-n", "-f", f.Name(), "-D", "norgs="+strconv.Itoa(orgs),
		"-c", strconv.Itoa(clients), "-j", strconv.Itoa(min(clients, runtime.NumCPU())),
		"-T", strconv.Itoa(int(res.Seconds)), dbURL)
	outb, err := cmd.CombinedOutput()
	if err != nil {
		return res, fmt.Errorf("pgbench: %w\n%s", err, outb)
	}
	m := tpsLine.FindSubmatch(outb)
	if m == nil {
		return res, fmt.Errorf("pgbench printed no tps line:\n%s", outb)
	}
	if res.TPS, err = strconv.ParseFloat(string(m[1]), 64); err != nil {
		return res, err
	}
	if m := latencyLine.FindSubmatch(outb); m != nil {
		res.LatencyAvgMs, _ = strconv.ParseFloat(string(m[1]), 64)
	}
	return res, nil
}

func startNATS(o Options) (*server.Server, error) {
	ns, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, JetStream: true,
		StoreDir: o.StoreDir, SyncAlways: o.NATSSync, NoSigs: true, NoLog: true})
	if err != nil {
		return nil, err
	}
	ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		return nil, errors.New("embedded nats-server did not start")
	}
	return ns, nil
}
