package loadtest

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/jitprov/jitprov/internal/bench"
	"github.com/jitprov/jitprov/internal/bus"
	"github.com/jitprov/jitprov/internal/store/postgres"
)

// Targets of `compare`.
const (
	TargetEdge       = "edge"            // sso-edge, provisioner, NATS JetStream, Postgres
	TargetNaive      = "naive"           // the naive synchronous handler: validation and one pgx transaction
	TargetValidation = "validation-only" // the naive handler without the database
)

// The scenarios of compare, in the order they run.
const (
	CmpSAMLFirst      = "saml-first"
	CmpSAMLReturning  = "saml-returning"
	CmpSAMLStorm      = "saml-storm"
	CmpOIDCFirst      = "oidc-first"
	CmpNaiveSAML      = "naive-saml-first"
	CmpNaiveSAMLStorm = "naive-saml-storm"
	CmpNaiveOIDC      = "naive-oidc-first"
	CmpValidation     = "validation-only"
)

// Process names in the CPU and memory figures.
const (
	ProcEdge        = "sso-edge"
	ProcProvisioner = "provisioner"
	ProcNATS        = "nats-server"
	ProcNaive       = "naive"
	ProcOIDC        = "oidc-provider"
	ProcLoadTool    = "loadtool"
	// ProcPostgres is the whole PostgreSQL server the scratch database is
	// on (every process named postgres: the server, its backends, and
	// through the server's children times the backends that ended): both
	// designs spend much of a login there, and neither's own process
	// shows it.
	ProcPostgres = "postgres"
)

// CompareOptions configure `jitprov loadtest compare`.
type CompareOptions struct {
	// AdminDatabaseURL names the PostgreSQL server the scratch database is
	// created on (and dropped from, unless Keep).
	AdminDatabaseURL string
	// Src is the jitprov source tree the processes are built from (go
	// build); Bin, when set, holds them built already (sso-edge,
	// provisioner, jitprov-loadtest-peer and, without NATSServer,
	// nats-server).
	Src, Bin string
	// NATSServer is the nats-server to run; empty builds the version go.mod
	// pins.
	NATSServer string
	// NATSSync is JetStream's sync_interval: "always" (fsync every write,
	// the default), a duration (group commit, e.g. 100ms), or "" for
	// nats-server's own default (2m).
	NATSSync string
	// NATSCluster is how many nats-server processes run: 1 (or 0), one
	// server whose streams have one replica; 3 (or 5), a JetStream cluster
	// of that many nodes on loopback, each with its own store folder and
	// the same NATSSync, and the services run with JITPROV_STREAM_REPLICAS
	// set to it (R3) and the URLs of every node.
	NATSCluster int
	Orgs        int // M organisations of the M-organisation scenarios (default 10)
	Mode        string
	Concurrency int
	Rate        float64
	Duration    time.Duration
	Logins      int
	// Workers: the provisioner's workers, the naive handler's database
	// connections and pgbench's clients, so that each has as many
	// transactions in flight (default 16).
	Workers int
	Timeout time.Duration
	// Encrypt encrypts every SAML assertion to the SP (the edge's and the
	// naive handler's SP key pair), so that decryption is measured too.
	Encrypt bool
	// Telemetry, instead of the baselines, compares the pipeline with
	// telemetry off (no exporter, nothing scraped) and on (every span
	// exported over OTLP to a receiver in this process, metrics pushed
	// too, and every service's /metrics scraped each second): SAML first
	// logins, rounds of each in turn (TelemetryRounds, default 2).
	Telemetry       bool
	TelemetryRounds int
	// Keep leaves the scratch database and the work folder (binaries,
	// logs, state) in place.
	Keep     bool
	Progress io.Writer // progress bars and what is being started; nil for none
}

// CompareReport is the result of compare: -o json prints it.
type CompareReport struct {
	RunID     string                `json:"run_id"`
	CPUs      int                   `json:"cpus"`
	Settings  map[string]any        `json:"settings"`
	Scenarios []CompareScenario     `json:"scenarios"`
	Pgbench   *bench.PgbenchResult  `json:"pgbench,omitempty"`
	Ratios    map[string]float64    `json:"ratios"`
	Targets   []TargetCheck         `json:"targets"`
	PeakRSSMB map[string]float64    `json:"peak_rss_mb"`
	Invariant map[string]Invariants `json:"invariants"`
	// UserCreated: one user.created event on the USERS stream per user of
	// the edge's organisations.
	UserCreated *EventInvariant `json:"user_created,omitempty"`
	// Processes are the pids of the processes it started, by name (the
	// naive handler's after the edge's had stopped).
	Processes map[string]int `json:"processes"`
	// Database is the scratch database (dropped at the end unless Keep),
	// WorkDir the work folder when kept.
	Database string `json:"database,omitempty"`
	WorkDir  string `json:"work_dir,omitempty"`
}

// CompareScenario is one scenario's figures and what it ran against.
type CompareScenario struct {
	Target string `json:"target"`
	ScenarioResult
}

// TargetCheck is one of the performance targets against this run's figures.
type TargetCheck struct {
	Name  string  `json:"name"`
	Value float64 `json:"value"`
	Want  string  `json:"want"`
	Met   bool    `json:"met"`
}

// EventInvariant compares users with their user.created events.
type EventInvariant struct {
	Users      int  `json:"users"`
	Events     int  `json:"events"`
	Duplicates int  `json:"duplicates"` // users with more than one
	Missing    int  `json:"missing"`    // users with none
	OK         bool `json:"ok"`
}

type proc struct {
	name string
	cmd  *exec.Cmd
	log  string
	done chan struct{}
	err  error
}

type comparer struct {
	o       CompareOptions
	work    string
	bin     string
	mu      sync.Mutex
	procs   []*proc
	peakRSS map[string]float64
	started map[string]int // pids by name
	// provMetrics is the running provisioner's /metrics, whose batch
	// histogram gives each edge scenario's logins per transaction.
	provMetrics string
}

func (o *CompareOptions) defaults() error {
	if o.Orgs <= 0 {
		o.Orgs = 10
	}
	if o.Workers <= 0 {
		o.Workers = 16
	}
	if o.Mode == "" {
		o.Mode = ModeClosed
	}
	if o.Concurrency <= 0 {
		o.Concurrency = 32
	}
	if o.Duration <= 0 {
		o.Duration = 10 * time.Second
	}
	if o.Logins <= 0 {
		o.Logins = 3000
	}
	if o.Mode == ModeOpen && o.Rate <= 0 {
		return errors.New("an open loop needs -rate, the logins started a second")
	}
	if o.Mode != ModeOpen && o.Mode != ModeClosed {
		return fmt.Errorf("mode %q: want %s or %s", o.Mode, ModeClosed, ModeOpen)
	}
	if o.NATSCluster <= 0 {
		o.NATSCluster = 1
	}
	if o.NATSCluster != 1 && o.NATSCluster != 3 && o.NATSCluster != 5 {
		return fmt.Errorf("a NATS cluster of %d: want 1 (one server), 3 or 5 nodes", o.NATSCluster)
	}
	if o.AdminDatabaseURL == "" {
		o.AdminDatabaseURL = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
	}
	return nil
}

// Compare builds and starts the whole system on this machine — a scratch
// database, a nats-server of its own, the load-test OpenID provider, the
// provisioner and sso-edge as real processes — runs the edge's scenarios,
// then stops them and runs the baselines on the same machine and data
// shape: the naive synchronous handler (and without its database: the
// validation-only ceiling) and pgbench of the provisioning transaction.
// Every process it started is stopped when it returns, whatever happened
// (and, on Linux, dies with it if it is killed).
func Compare(ctx context.Context, o CompareOptions) (rep *CompareReport, err error) {
	if err := o.defaults(); err != nil {
		return nil, err
	}
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	rep = &CompareReport{RunID: time.Now().UTC().Format("20060102t150405") + "-" + hex.EncodeToString(b), CPUs: runtime.NumCPU(),
		Settings: map[string]any{"orgs": o.Orgs, "mode": o.Mode, "concurrency": o.Concurrency, "rate": o.Rate,
			"duration_s": o.Duration.Seconds(), "logins": o.Logins, "workers": o.Workers, "nats_sync_interval": cmp.Or(o.NATSSync, "default"),
			"nats_cluster": o.NATSCluster, "stream_replicas": o.NATSCluster, "encrypt": o.Encrypt},
		Ratios: map[string]float64{}, PeakRSSMB: map[string]float64{}, Invariant: map[string]Invariants{}, Processes: map[string]int{}}
	c := &comparer{o: o, peakRSS: rep.PeakRSSMB, started: rep.Processes}
	if c.work, err = os.MkdirTemp("", "jitprov-compare-"); err != nil {
		return nil, err
	}
	var drop func()
	defer func() {
		// Whatever happened (an error, Ctrl-C): every process started
		// stops, then the database and the folder go.
		c.stopAll()
		if o.Keep {
			return
		}
		if drop != nil {
			drop()
		}
		os.RemoveAll(c.work)
	}()
	if o.Keep {
		rep.WorkDir = c.work
	}
	if err := c.build(ctx); err != nil {
		return rep, err
	}

	dbURL, drop, err := scratchDatabase(ctx, o.AdminDatabaseURL)
	if err != nil {
		return rep, err
	}
	rep.Database = redact(dbURL)
	c.logf("scratch database %s\n", redact(dbURL))
	st, err := postgres.Open(ctx, dbURL, postgres.Options{MaxConns: 4})
	if err != nil {
		return rep, err
	}
	defer st.Close()
	if _, err := st.Migrate(ctx); err != nil {
		return rep, err
	}
	if err := bench.ApplyOrganizations(ctx, st, o.Orgs); err != nil {
		return rep, err
	}

	// NATS, the OpenID provider, the provisioner, the edge.
	// One server, or a cluster whose every node the services know.
	natsURL, err := c.startNATS(ctx)
	if err != nil {
		return rep, err
	}
	replicas := "JITPROV_STREAM_REPLICAS=" + strconv.Itoa(o.NATSCluster)
	secretB := make([]byte, 16)
	_, _ = rand.Read(secretB)
	secret := hex.EncodeToString(secretB)
	op, err := NewOIDCProvider("http://placeholder", secret)
	if err != nil {
		return rep, err
	}
	keyFile := filepath.Join(c.work, "oidc-key.pem")
	if err := os.WriteFile(keyFile, op.KeyPEM(), 0o600); err != nil {
		return rep, err
	}
	opAddr, err := freeAddr()
	if err != nil {
		return rep, err
	}
	issuer := "http://" + opAddr
	if _, err := c.start(ctx, ProcOIDC, "jitprov-loadtest-peer", []string{"oidc-provider", "-addr", opAddr, "-issuer", issuer, "-key-file", keyFile},
		[]string{OIDCSecretEnv + "=" + secret}, issuer+"/.well-known/openid-configuration"); err != nil {
		return rep, err
	}
	idp, err := NewIdP(24 * time.Hour)
	if err != nil {
		return rep, err
	}
	sp, err := NewIdP(24 * time.Hour) // the SP key pair of the edge's and the naive handler's connections
	if err != nil {
		return rep, err
	}
	spDir := filepath.Join(c.work, "sp")
	if err := os.MkdirAll(spDir, 0o700); err != nil {
		return rep, err
	}
	if err := sp.Save(spDir); err != nil {
		return rep, err
	}
	spKey, spCert := filepath.Join(spDir, keyFile0), filepath.Join(spDir, certFile)
	edgeAddr, err := freeAddr()
	if err != nil {
		return rep, err
	}
	edgeURL := "http://" + edgeAddr
	sessionKey := make([]byte, 32)
	_, _ = rand.Read(sessionKey)
	pl := pipeline{dbURL: dbURL, natsURL: natsURL, replicas: replicas, edgeAddr: edgeAddr, sessionKey: hex.EncodeToString(sessionKey),
		spKey: spKey, spCert: spCert, oidcSecret: secret}
	if err := c.startPipeline(ctx, &pl, nil); err != nil {
		return rep, err
	}

	// The load-test organisations: the edge's, the naive handler's (same
	// settings, their own ids), the validation-only target.
	edgeDir, naiveDir, validDir := filepath.Join(c.work, "edge"), filepath.Join(c.work, "naive"), filepath.Join(c.work, "validate")
	if _, err := Setup(ctx, SetupConfig{Dir: edgeDir, EdgeURL: edgeURL, Orgs: o.Orgs, DatabaseURL: dbURL, OIDCIssuer: issuer, IdP: idp}); err != nil {
		return rep, err
	}
	naiveAddr, err := freeAddr()
	if err != nil {
		return rep, err
	}
	naiveURL := "http://" + naiveAddr
	if _, err := Setup(ctx, SetupConfig{Dir: naiveDir, EdgeURL: naiveURL, Orgs: o.Orgs, Prefix: "naive", DatabaseURL: dbURL,
		OIDCIssuer: issuer, IdP: idp}); err != nil {
		return rep, err
	}
	naiveState, err := LoadState(naiveDir)
	if err != nil {
		return rep, err
	}
	if err := WriteTarget(validDir, idp, State{EdgeURL: naiveURL + "/validate", Orgs: naiveState.Orgs, Connection: ConnectionID,
		Created: time.Now().UTC()}); err != nil {
		return rep, err
	}

	// run runs ro's scenarios, naming them names in the report.
	run := func(target string, names []string, ro Options) error {
		ro.Mode, ro.Concurrency, ro.Rate, ro.Duration, ro.Logins = o.Mode, o.Concurrency, o.Rate, o.Duration, o.Logins
		ro.Timeout, ro.Follow, ro.Progress, ro.Observe = o.Timeout, true, o.Progress, c.observe
		ro.Tag, ro.Names = cmp.Or(ro.Tag, names[0]), names
		if o.Encrypt {
			ro.EncryptTo = sp.Cert
		}
		if len(ro.Scenarios) == 0 {
			ro.Scenarios = []string{ScenarioFirst}
		}
		r, err := Run(ctx, ro)
		if r != nil {
			for _, s := range r.Scenarios {
				rep.Scenarios = append(rep.Scenarios, CompareScenario{Target: target, ScenarioResult: s})
			}
			if r.Invariants != nil {
				rep.Invariant[names[0]] = *r.Invariants
			}
		}
		if err != nil {
			return fmt.Errorf("%s: %w", names[0], err)
		}
		return nil
	}
	var failed []error // invariants and scenarios that failed; the others still run
	note := func(err error) error {
		if err != nil && ctx.Err() == nil && strings.Contains(err.Error(), "invariants failed") {
			failed = append(failed, err)
			return nil
		}
		return err
	}
	if o.Telemetry {
		err := c.compareTelemetry(ctx, rep, &pl, func(name string, scrape []string) error {
			return note(run(TargetEdge, []string{name}, Options{Dir: edgeDir, Tag: name, DatabaseURL: dbURL, Scrape: scrape}))
		}, &failed)
		return rep, errors.Join(append(failed, err)...)
	}
	if err := note(run(TargetEdge, []string{CmpSAMLFirst, CmpSAMLReturning}, Options{Dir: edgeDir, Scenarios: []string{ScenarioFirst, ScenarioReturning}, DatabaseURL: dbURL})); err != nil {
		return rep, err
	}
	if err := note(run(TargetEdge, []string{CmpSAMLStorm}, Options{Dir: edgeDir, Orgs: 1, DatabaseURL: dbURL})); err != nil {
		return rep, err
	}
	if err := note(run(TargetEdge, []string{CmpOIDCFirst}, Options{Dir: edgeDir, Protocol: ProtocolOIDC, DatabaseURL: dbURL})); err != nil {
		return rep, err
	}
	ev, err := checkUserCreated(ctx, dbURL, natsURL, mustState(edgeDir).Orgs)
	rep.UserCreated = ev
	if err := note(err); err != nil {
		return rep, err
	}
	// The edge's processes go before the baselines run, so that they have
	// the machine to themselves as the edge had (and the provisioner's
	// outbox relay does not publish the naive handler's user.created rows).
	c.stop(pl.edge)
	c.stop(pl.provisioner)
	c.stopNATS()

	if _, err := c.start(ctx, ProcNaive, "jitprov-loadtest-peer", []string{"naive", "-addr", naiveAddr, "-public-url", naiveURL,
		"-state", naiveDir, "-database-url", dbURL, "-pool", strconv.Itoa(o.Workers), "-sp-key", spKey, "-sp-cert", spCert,
		"-oidc-issuer", issuer}, []string{OIDCSecretEnv + "=" + secret}, naiveURL+"/healthz"); err != nil {
		return rep, err
	}
	if err := note(run(TargetNaive, []string{CmpNaiveSAML}, Options{Dir: naiveDir, DatabaseURL: dbURL})); err != nil {
		return rep, err
	}
	if err := note(run(TargetNaive, []string{CmpNaiveSAMLStorm}, Options{Dir: naiveDir, Orgs: 1, DatabaseURL: dbURL})); err != nil {
		return rep, err
	}
	if err := note(run(TargetNaive, []string{CmpNaiveOIDC}, Options{Dir: naiveDir, Protocol: ProtocolOIDC, DatabaseURL: dbURL})); err != nil {
		return rep, err
	}
	if err := run(TargetValidation, []string{CmpValidation}, Options{Dir: validDir}); err != nil {
		return rep, err
	}
	c.stopAll()

	c.logf("pgbench: the decision transaction, %d clients, %s\n", o.Workers, o.Duration.Round(time.Second))
	pg, err := bench.Pgbench(ctx, dbURL, o.Orgs, o.Workers, o.Duration)
	if err != nil {
		return rep, err
	}
	rep.Pgbench = &pg
	rep.ratios()
	return rep, errors.Join(failed...)
}

// keyFile0 is the key file IdP.Save writes.
const keyFile0 = keyFile

func mustState(dir string) State {
	st, _ := LoadState(dir)
	return st
}

// Scenario returns the named scenario of the report (nil if absent).
func (rep *CompareReport) Scenario(name string) *CompareScenario {
	for i := range rep.Scenarios {
		if rep.Scenarios[i].Name == name {
			return &rep.Scenarios[i]
		}
	}
	return nil
}

// Ratio names in the report.
const (
	RatioSAMLFirst         = "saml_first_rate_vs_naive"
	RatioSAMLFirstP99      = "saml_first_p99_vs_naive"
	RatioSAMLStorm         = "saml_storm_rate_vs_naive"
	RatioSAMLStormP99      = "saml_storm_p99_vs_naive"
	RatioOIDCFirst         = "oidc_first_rate_vs_naive"
	RatioOIDCFirstP99      = "oidc_first_p99_vs_naive"
	RatioReturning         = "saml_returning_rate_vs_validation_only"
	RatioSAMLFirstPgbench  = "saml_first_rate_vs_pgbench"
	RatioNaiveFirstPgbench = "naive_saml_first_rate_vs_pgbench"
)

func (rep *CompareReport) ratios() {
	div := func(a, b float64) float64 {
		if b == 0 {
			return 0
		}
		return float64(int(a/b*1000+0.5)) / 1000
	}
	pair := func(rate, p99, edge, base string) {
		e, n := rep.Scenario(edge), rep.Scenario(base)
		if e == nil || n == nil {
			return
		}
		rep.Ratios[rate] = div(e.Rate, n.Rate)
		if p99 != "" {
			rep.Ratios[p99] = div(e.P99, n.P99)
		}
	}
	pair(RatioSAMLFirst, RatioSAMLFirstP99, CmpSAMLFirst, CmpNaiveSAML)
	pair(RatioSAMLStorm, RatioSAMLStormP99, CmpSAMLStorm, CmpNaiveSAMLStorm)
	pair(RatioOIDCFirst, RatioOIDCFirstP99, CmpOIDCFirst, CmpNaiveOIDC)
	pair(RatioReturning, "", CmpSAMLReturning, CmpValidation)
	if rep.Pgbench != nil {
		if s := rep.Scenario(CmpSAMLFirst); s != nil {
			rep.Ratios[RatioSAMLFirstPgbench] = div(s.Rate, rep.Pgbench.TPS)
		}
		if s := rep.Scenario(CmpNaiveSAML); s != nil {
			rep.Ratios[RatioNaiveFirstPgbench] = div(s.Rate, rep.Pgbench.TPS)
		}
	}
	check := func(name string, v float64, want string, met bool) {
		rep.Targets = append(rep.Targets, TargetCheck{Name: name, Value: v, Want: want, Met: met})
	}
	r := rep.Ratios
	check(RatioSAMLFirst, r[RatioSAMLFirst], ">= 1.5", r[RatioSAMLFirst] >= 1.5)
	check(RatioSAMLFirstP99, r[RatioSAMLFirstP99], "<= 1", r[RatioSAMLFirstP99] > 0 && r[RatioSAMLFirstP99] <= 1)
	check(RatioOIDCFirst, r[RatioOIDCFirst], ">= 1.5", r[RatioOIDCFirst] >= 1.5)
	check(RatioOIDCFirstP99, r[RatioOIDCFirstP99], "<= 1", r[RatioOIDCFirstP99] > 0 && r[RatioOIDCFirstP99] <= 1)
	check(RatioReturning, r[RatioReturning], ">= 0.9", r[RatioReturning] >= 0.9)
	rss := rep.PeakRSSMB[ProcEdge]
	check("sso_edge_peak_rss_mb", rss, "<= 150", rss > 0 && rss <= 150)
}

// observe reads every running process's CPU time (and this process's) as
// a timed phase starts; the function it returns reads them again and sets
// the CPU time per signed-in login and the peak RSS.
func (c *comparer) observe(string) func(*ScenarioResult) {
	type snap struct {
		pid   int
		ticks int64
	}
	before := map[string]snap{}
	for name, pid := range c.pids() {
		if t, err := cpuTicks(pid); err == nil {
			before[name] = snap{pid, t}
		}
	}
	pgBefore, pgErr := postgresTicks()
	c.mu.Lock()
	provMetrics := c.provMetrics
	c.mu.Unlock()
	var txBefore, loginsBefore float64
	batchErr := errors.New("no provisioner")
	if provMetrics != "" {
		txBefore, loginsBefore, batchErr = batchTotals(context.Background(), provMetrics)
	}
	return func(res *ScenarioResult) {
		if batchErr == nil {
			if tx, logins, err := batchTotals(context.Background(), provMetrics); err == nil && tx > txBefore {
				res.LoginsPerTransaction = float64(int((logins-loginsBefore)/(tx-txBefore)*100+0.5)) / 100
			}
		}
		res.CPUMsPerLogin, res.PeakRSSMB = map[string]float64{}, map[string]float64{}
		n := res.Outcomes[OutcomeSignedIn]
		perLogin := func(ticks int64) float64 {
			return float64(int((float64(ticks)*1000/clockTicks)/float64(n)*1000+0.5)) / 1000
		}
		if pgAfter, err := postgresTicks(); err == nil && pgErr == nil && n > 0 && pgAfter > pgBefore {
			res.CPUMsPerLogin[ProcPostgres] = perLogin(pgAfter - pgBefore)
		}
		// The nodes of a NATS cluster are also summed as nats-server: the
		// CPU and memory NATS costs, whatever its shape.
		var natsTicks int64
		var natsRSS float64
		nodes := 0
		for name, s := range before {
			t, err := cpuTicks(s.pid)
			if err != nil {
				continue
			}
			node := isNATS(name) && name != ProcNATS
			if node {
				nodes++
				natsTicks += max(t-s.ticks, 0)
			}
			if n > 0 && t > s.ticks {
				res.CPUMsPerLogin[name] = perLogin(t - s.ticks)
			}
			if rss, err := peakRSS(s.pid); err == nil {
				res.PeakRSSMB[name] = rss
				if node {
					natsRSS += rss
				}
				c.mu.Lock()
				c.peakRSS[name] = max(c.peakRSS[name], rss)
				c.mu.Unlock()
			}
		}
		if nodes > 0 {
			if n > 0 && natsTicks > 0 {
				res.CPUMsPerLogin[ProcNATS] = perLogin(natsTicks)
			}
			// The sum of each node's peak: at most what they held
			// together at any one time.
			natsRSS = float64(int(natsRSS*10+0.5)) / 10
			res.PeakRSSMB[ProcNATS] = natsRSS
			c.mu.Lock()
			c.peakRSS[ProcNATS] = max(c.peakRSS[ProcNATS], natsRSS)
			c.mu.Unlock()
		}
	}
}

func (c *comparer) pids() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[string]int{ProcLoadTool: os.Getpid()}
	for _, p := range c.procs {
		select {
		case <-p.done:
		default:
			out[p.name] = p.cmd.Process.Pid
		}
	}
	return out
}

// clockTicks is USER_HZ, the unit of /proc/<pid>/stat's times: 100 on
// every Linux architecture Go runs on.
const clockTicks = 100

// cpuTicks is utime + stime of pid, from /proc/<pid>/stat.
func cpuTicks(pid int) (int64, error) {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name, in parentheses, may hold spaces: fields count from
	// after its closing parenthesis (state is field 3; utime 14, stime 15).
	i := bytes.LastIndexByte(raw, ')')
	if i < 0 {
		return 0, errors.New("unreadable stat")
	}
	f := strings.Fields(string(raw[i+1:]))
	if len(f) < 13 {
		return 0, errors.New("unreadable stat")
	}
	u, err1 := strconv.ParseInt(f[11], 10, 64)
	s, err2 := strconv.ParseInt(f[12], 10, 64)
	return u + s, errors.Join(err1, err2)
}

// postgresTicks is the CPU time of the PostgreSQL server on this machine:
// utime + stime of every process named postgres, plus their children's
// (cutime + cstime: the server's, of the backends it has reaped). A
// backend that ends during a phase counts whole, so this can only
// overstate a phase's share, by what such a backend spent before it.
func postgresTicks() (int64, error) {
	dirs, err := os.ReadDir("/proc")
	if err != nil {
		return 0, err
	}
	var total int64
	found := false
	for _, d := range dirs {
		pid, err := strconv.Atoi(d.Name())
		if err != nil {
			continue
		}
		raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			continue // ended meanwhile
		}
		open, end := bytes.IndexByte(raw, '('), bytes.LastIndexByte(raw, ')')
		if open < 0 || end < open || string(raw[open+1:end]) != "postgres" {
			continue
		}
		f := strings.Fields(string(raw[end+1:]))
		if len(f) < 15 {
			continue
		}
		for _, i := range []int{11, 12, 13, 14} { // utime, stime, cutime, cstime
			v, err := strconv.ParseInt(f[i], 10, 64)
			if err != nil {
				return 0, fmt.Errorf("/proc/%d/stat: %w", pid, err)
			}
			total += v
		}
		found = true
	}
	if !found {
		return 0, errors.New("no postgres process on this machine")
	}
	return total, nil
}

// peakRSS is VmHWM of pid in MB.
func peakRSS(pid int) (float64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
			return float64(int(kb/1024*10+0.5)) / 10, err
		}
	}
	return 0, errors.New("no VmHWM")
}

func (c *comparer) logf(format string, args ...any) {
	if c.o.Progress != nil {
		fmt.Fprintf(c.o.Progress, format, args...)
	}
}

// build builds the processes into the work folder (or finds them in Bin).
func (c *comparer) build(ctx context.Context) error {
	if c.o.Bin != "" {
		c.bin = c.o.Bin
		return nil
	}
	c.bin = filepath.Join(c.work, "bin")
	src := c.o.Src
	if src == "" {
		var err error
		if src, err = ModuleRoot(); err != nil {
			return err
		}
	}
	goTool := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(goTool); err != nil {
		goTool = "go"
	}
	c.logf("building sso-edge, provisioner and jitprov-loadtest-peer in %s\n", src)
	cmd := exec.CommandContext(ctx, goTool, "build", "-o", c.bin+string(filepath.Separator), "./cmd/sso-edge", "./cmd/provisioner", "./cmd/jitprov-loadtest-peer")
	cmd.Dir = src
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build: %w\n%s", err, out)
	}
	if c.o.NATSServer == "" {
		c.logf("building nats-server (the version go.mod pins)\n")
		cmd := exec.CommandContext(ctx, goTool, "build", "-o", filepath.Join(c.bin, "nats-server"), "github.com/nats-io/nats-server/v2")
		cmd.Dir = src
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("go build nats-server: %w\n%s", err, out)
		}
	}
	return nil
}

// ModuleRoot is the jitprov source tree this directory is in.
func ModuleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if raw, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil && bytes.HasPrefix(raw, []byte("module github.com/jitprov/jitprov\n")) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("not inside the jitprov source tree: run from it, or pass -src DIR or -bin DIR")
		}
		dir = parent
	}
}

// startNATS starts one nats-server, or a JetStream cluster of
// NATSCluster nodes, and returns the client URL list the services take.
func (c *comparer) startNATS(ctx context.Context) (string, error) {
	bin := c.o.NATSServer
	if bin == "" {
		bin = filepath.Join(c.bin, "nats-server")
	}
	jsConf := func(store string) string {
		conf := fmt.Sprintf("jetstream {\n  store_dir: %q\n", store)
		if c.o.NATSSync != "" {
			conf += fmt.Sprintf("  sync_interval: %s\n", c.o.NATSSync)
		}
		return conf + "}\n"
	}
	if c.o.NATSCluster <= 1 {
		addr, err := freeAddr()
		if err != nil {
			return "", err
		}
		conf := fmt.Sprintf("listen: %q\n", addr) + jsConf(filepath.Join(c.work, "jetstream"))
		path := filepath.Join(c.work, "nats.conf")
		if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
			return "", err
		}
		if _, err := c.start(ctx, ProcNATS, bin, []string{"-c", path}, nil, "tcp://"+addr); err != nil {
			return "", err
		}
		return "nats://" + addr, nil
	}

	// A cluster on loopback: each node its own client, route and
	// monitoring ports and its own store folder, routes to the others.
	n := c.o.NATSCluster
	addrs, err := freeAddrs(3 * n)
	if err != nil {
		return "", err
	}
	client, route, monitor := addrs[:n], addrs[n:2*n], addrs[2*n:]
	var urls []string
	for i := range n {
		urls = append(urls, "nats://"+client[i])
	}
	for i := range n {
		var routes []string
		for j := range n {
			if j != i {
				routes = append(routes, fmt.Sprintf("%q", "nats://"+route[j]))
			}
		}
		name := natsNodeName(i)
		conf := fmt.Sprintf("server_name: %s\nlisten: %q\nhttp: %q\n", name, client[i], monitor[i]) +
			jsConf(filepath.Join(c.work, "jetstream-"+name)) +
			fmt.Sprintf("cluster {\n  name: jitprov-compare\n  listen: %q\n  routes: [%s]\n}\n", route[i], strings.Join(routes, ", "))
		path := filepath.Join(c.work, name+".conf")
		if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
			return "", err
		}
		if _, err := c.start(ctx, ProcNATS+"-"+name, bin, []string{"-c", path}, nil, "tcp://"+client[i]); err != nil {
			return "", err
		}
	}
	c.logf("waiting for a JetStream meta leader with %d current peers\n", n)
	if err := c.waitMetaLeader(ctx, monitor); err != nil {
		return "", err
	}
	return strings.Join(urls, ","), nil
}

func natsNodeName(i int) string { return "n" + strconv.Itoa(i+1) }

// isNATS says whether a process name is the nats-server or a node of the
// cluster (nats-server-n1…).
func isNATS(name string) bool { return name == ProcNATS || strings.HasPrefix(name, ProcNATS+"-") }

// waitMetaLeader waits (60s at most) until every node names the same
// JetStream meta leader and that leader sees every other node as a
// current peer, so that streams of NATSCluster replicas can be placed.
func (c *comparer) waitMetaLeader(ctx context.Context, monitor []string) error {
	type jsz struct {
		Meta *struct {
			Leader   string `json:"leader"`
			Size     int    `json:"cluster_size"`
			Replicas []struct {
				Name    string `json:"name"`
				Current bool   `json:"current"`
				Offline bool   `json:"offline"`
			} `json:"replicas"`
		} `json:"meta_cluster"`
	}
	client := &http.Client{Timeout: 2 * time.Second}
	check := func() error {
		leader, current := "", 0
		for i, addr := range monitor {
			resp, err := client.Get("http://" + addr + "/jsz")
			if err != nil {
				return err
			}
			var j jsz
			err = json.NewDecoder(resp.Body).Decode(&j)
			resp.Body.Close()
			if err != nil {
				return fmt.Errorf("%s /jsz: %w", natsNodeName(i), err)
			}
			if j.Meta == nil || j.Meta.Leader == "" {
				return fmt.Errorf("%s knows no meta leader", natsNodeName(i))
			}
			if leader != "" && j.Meta.Leader != leader {
				return fmt.Errorf("the nodes name different meta leaders (%s, %s)", leader, j.Meta.Leader)
			}
			leader = j.Meta.Leader
			if j.Meta.Leader == natsNodeName(i) {
				for _, r := range j.Meta.Replicas {
					if r.Current && !r.Offline {
						current++
					}
				}
			}
		}
		if current < len(monitor)-1 {
			return fmt.Errorf("the meta leader %s sees %d current peers of %d", leader, current, len(monitor)-1)
		}
		return nil
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		err := check()
		if err == nil {
			return nil
		}
		for _, p := range c.running() {
			if isNATS(p.name) {
				select {
				case <-p.done:
					return fmt.Errorf("%s ended while the cluster formed (%v):\n%s", p.name, p.err, tail(p.log))
				default:
				}
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no JetStream meta leader with every node current after 60s: %w", err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func (c *comparer) running() []*proc {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.procs)
}

// start runs bin (a name in the bin folder, or a path) with env added to
// a clean environment, and waits until ready (an http URL answering 200,
// or tcp://addr accepting) or the process ends.
func (c *comparer) start(ctx context.Context, name, bin string, args, env []string, ready string) (*proc, error) {
	if !strings.Contains(bin, string(filepath.Separator)) {
		bin = filepath.Join(c.bin, bin)
	}
	logPath := filepath.Join(c.work, name+".log")
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = append(cleanEnv(), env...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = sysProcAttr()
	c.logf("starting %s\n", name)
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() { p.err = cmd.Wait(); logf.Close(); close(p.done) }()
	c.mu.Lock()
	c.procs = append(c.procs, p)
	c.started[name] = cmd.Process.Pid
	c.mu.Unlock()
	deadline := time.Now().Add(60 * time.Second)
	for {
		if isReady(ctx, ready) {
			return p, nil
		}
		select {
		case <-p.done:
			return nil, fmt.Errorf("%s ended before it was ready (%v):\n%s", name, p.err, tail(logPath))
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("%s not ready at %s after 60s:\n%s", name, ready, tail(logPath))
		}
	}
}

func isReady(ctx context.Context, ready string) bool {
	if addr, ok := strings.CutPrefix(ready, "tcp://"); ok {
		conn, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			conn.Close()
		}
		return err == nil
	}
	rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(rctx, http.MethodGet, ready, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// stop sends SIGTERM, and SIGKILL if the process has not ended 10s later.
func (c *comparer) stop(p *proc) {
	if p == nil {
		return
	}
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// stopNATS stops the nats-server, or every node of the cluster.
func (c *comparer) stopNATS() {
	c.mu.Lock()
	ps := slices.Clone(c.procs)
	c.mu.Unlock()
	for _, p := range ps {
		if isNATS(p.name) {
			c.stop(p)
		}
	}
}

// stopAll stops every process started, the last started first.
func (c *comparer) stopAll() {
	c.mu.Lock()
	ps := slices.Clone(c.procs)
	c.mu.Unlock()
	for _, p := range slices.Backward(ps) {
		c.stop(p)
	}
}

func cleanEnv() []string {
	var out []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "JITPROV_") || strings.HasPrefix(k, "OTEL_") || k == "DATABASE_URL" || k == "NATS_URL" || k == "GOMAXPROCS" {
			continue
		}
		out = append(out, kv)
	}
	return out
}

func tail(path string) string {
	raw, _ := os.ReadFile(path)
	if len(raw) > 4000 {
		raw = raw[len(raw)-4000:]
	}
	return string(raw)
}

// freeAddrs returns n distinct loopback addresses free at the time of the
// call.
func freeAddrs(n int) ([]string, error) {
	var out []string
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		defer ln.Close()
		out = append(out, ln.Addr().String())
	}
	return out, nil
}

func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

func scratchDatabase(ctx context.Context, admin string) (string, func(), error) {
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		return "", nil, fmt.Errorf("connect to %s: %w", redact(admin), err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	name := "jitprov_compare_" + hex.EncodeToString(b)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		return "", nil, fmt.Errorf("create database %s: %w", name, err)
	}
	u, err := url.Parse(admin)
	if err != nil {
		return "", nil, err
	}
	u.Path = "/" + name
	return u.String(), func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, admin)
		if err != nil {
			return
		}
		defer conn.Close(ctx)
		_, _ = conn.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
	}, nil
}

func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}

// checkUserCreated reads every user.created event of the USERS stream and
// compares them with the users of orgs: one event each. The outbox relay
// publishes after the decision commits, so it waits up to settle for the
// counts to meet.
func checkUserCreated(ctx context.Context, dbURL, natsURL string, orgs []string) (*EventInvariant, error) {
	nc, err := nats.Connect(natsURL)
	if err != nil {
		return nil, fmt.Errorf("user.created invariant: %w", err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, err
	}
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		return nil, err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var users []string
	rows, err := conn.Query(ctx, `SELECT id::text FROM users WHERE org_id = ANY($1)`, orgs)
	if err != nil {
		return nil, err
	}
	if users, err = pgx.CollectRows(rows, pgx.RowTo[string]); err != nil {
		return nil, err
	}
	inOrg := map[string]bool{}
	for _, o := range orgs {
		inOrg[o] = true
	}
	deadline := time.Now().Add(settle)
	for {
		counts, events, err := userCreatedEvents(ctx, js, inOrg)
		if err != nil {
			return nil, fmt.Errorf("user.created invariant: %w", err)
		}
		ev := &EventInvariant{Users: len(users), Events: events}
		for _, u := range users {
			switch n := counts[u]; {
			case n == 0:
				ev.Missing++
			case n > 1:
				ev.Duplicates++
			}
		}
		ev.OK = ev.Missing == 0 && ev.Duplicates == 0 && events == len(users)
		if ev.OK || ev.Duplicates > 0 || time.Now().After(deadline) {
			if !ev.OK {
				return ev, fmt.Errorf("invariants failed: user.created: %d users, %d events, %d without one, %d with several",
					ev.Users, ev.Events, ev.Missing, ev.Duplicates)
			}
			return ev, nil
		}
		select {
		case <-ctx.Done():
			return ev, ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
}

func userCreatedEvents(ctx context.Context, js jetstream.JetStream, inOrg map[string]bool) (map[string]int, int, error) {
	cons, err := js.OrderedConsumer(ctx, bus.StreamUsers, jetstream.OrderedConsumerConfig{FilterSubjects: []string{"jit.user.created.>"}})
	if err != nil {
		return nil, 0, err
	}
	info, err := cons.Info(ctx)
	if err != nil {
		return nil, 0, err
	}
	pending := int(info.NumPending)
	counts := map[string]int{}
	events := 0
	for read := 0; read < pending; {
		batch, err := cons.Fetch(min(pending-read, 1000), jetstream.FetchMaxWait(2*time.Second))
		if err != nil {
			return nil, 0, err
		}
		n := 0
		for m := range batch.Messages() {
			n++
			var d struct {
				User struct {
					ID  string `json:"id"`
					Org string `json:"organization_id"`
				} `json:"user"`
			}
			if json.Unmarshal(m.Data(), &d) == nil && inOrg[d.User.Org] {
				counts[d.User.ID]++
				events++
			}
		}
		if err := batch.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) {
			return nil, 0, err
		}
		if n == 0 {
			break
		}
		read += n
	}
	return counts, events, nil
}
