package loadtest_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/url"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/jitprov/jitprov/internal/loadtest"
	"github.com/jitprov/jitprov/internal/testenv"
)

// The comparison end to end, with tiny scenarios: it builds and starts
// nats-server, the OpenID provider, the provisioner, sso-edge and the naive
// handler as processes, and its JSON summary has every scenario, every
// ratio and target, pgbench, CPU and memory figures, and invariants that
// hold. Nothing here asserts on speed: the machine may be busy.
func TestCompareJSONSummary(t *testing.T) {
	var out, errOut bytes.Buffer
	getenv := func(string) string { return "" }
	err := loadtest.Main(context.Background(), []string{"compare", "-db", testenv.AdminURL(), "-orgs", "2", "-concurrency", "4",
		"-logins", "24", "-duration", "2s", "-workers", "4", "-o", "json", "-quiet"}, getenv, &out, &errOut)
	if err != nil {
		t.Fatalf("compare: %v\n%s\n%s", err, out.String(), errOut.String())
	}
	var rep loadtest.CompareReport
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatalf("-o json: %v\n%s", err, out.String())
	}
	want := map[string]string{loadtest.CmpSAMLFirst: loadtest.TargetEdge, loadtest.CmpSAMLReturning: loadtest.TargetEdge,
		loadtest.CmpSAMLStorm: loadtest.TargetEdge, loadtest.CmpOIDCFirst: loadtest.TargetEdge,
		loadtest.CmpNaiveSAML: loadtest.TargetNaive, loadtest.CmpNaiveSAMLStorm: loadtest.TargetNaive,
		loadtest.CmpNaiveOIDC: loadtest.TargetNaive, loadtest.CmpValidation: loadtest.TargetValidation}
	if len(rep.Scenarios) != len(want) {
		t.Errorf("%d scenarios, want %d", len(rep.Scenarios), len(want))
	}
	for name, target := range want {
		s := rep.Scenario(name)
		if s == nil {
			t.Errorf("no scenario %s", name)
			continue
		}
		if s.Target != target || s.Rate <= 0 || s.P50 <= 0 || s.P99 < s.P50 || s.P999 < s.P99 {
			t.Errorf("%s: target %s rate %.1f p50 %.1f p99 %.1f p99.9 %.1f", name, s.Target, s.Rate, s.P50, s.P99, s.P999)
		}
		if s.Outcomes[loadtest.OutcomeSignedIn] != s.Logins {
			t.Errorf("%s: outcomes %v of %d logins; want all signed in", name, s.Outcomes, s.Logins)
		}
		proc := map[string]string{loadtest.TargetEdge: loadtest.ProcEdge, loadtest.TargetNaive: loadtest.ProcNaive,
			loadtest.TargetValidation: loadtest.ProcNaive}[target]
		if s.CPUMsPerLogin[proc] <= 0 || s.PeakRSSMB[proc] <= 0 {
			t.Errorf("%s: CPU per login %v, peak RSS %v; want %s's", name, s.CPUMsPerLogin, s.PeakRSSMB, proc)
		}
		// First logins are decided by the provisioner, in transactions of
		// one login at least; the baselines have no provisioner. (Returning
		// logins take the fast path, unless a record was late.)
		got := s.LoginsPerTransaction
		switch {
		case target == loadtest.TargetEdge && name != loadtest.CmpSAMLReturning && got < 1,
			target != loadtest.TargetEdge && got != 0:
			t.Errorf("%s: %v logins per transaction", name, got)
		}
	}
	for _, r := range []string{loadtest.RatioSAMLFirst, loadtest.RatioSAMLFirstP99, loadtest.RatioSAMLStorm, loadtest.RatioSAMLStormP99,
		loadtest.RatioOIDCFirst, loadtest.RatioOIDCFirstP99, loadtest.RatioReturning, loadtest.RatioSAMLFirstPgbench, loadtest.RatioNaiveFirstPgbench} {
		if rep.Ratios[r] <= 0 {
			t.Errorf("ratio %s: %v", r, rep.Ratios[r])
		}
	}
	if len(rep.Targets) != 6 || !slices.ContainsFunc(rep.Targets, func(c loadtest.TargetCheck) bool { return c.Name == "sso_edge_peak_rss_mb" && c.Value > 0 }) {
		t.Errorf("targets: %+v", rep.Targets)
	}
	if rep.Pgbench == nil || rep.Pgbench.TPS <= 0 {
		t.Errorf("pgbench: %+v", rep.Pgbench)
	}
	for _, p := range []string{loadtest.ProcEdge, loadtest.ProcProvisioner, loadtest.ProcNATS, loadtest.ProcNaive, loadtest.ProcOIDC} {
		if rep.PeakRSSMB[p] <= 0 {
			t.Errorf("no peak RSS of %s: %v", p, rep.PeakRSSMB)
		}
	}
	for _, name := range []string{loadtest.CmpSAMLFirst, loadtest.CmpSAMLStorm, loadtest.CmpOIDCFirst, loadtest.CmpNaiveSAML,
		loadtest.CmpNaiveSAMLStorm, loadtest.CmpNaiveOIDC} {
		inv, ok := rep.Invariant[name]
		if !ok || !inv.UsersOK || !inv.SeatsOK || inv.RunUsers == 0 {
			t.Errorf("invariants of %s: %+v", name, inv)
		}
	}
	if e := rep.UserCreated; e == nil || !e.OK || e.Users == 0 {
		t.Errorf("user.created invariant: %+v", e)
	}
}

// cancelOn cancels when the progress output first names the scenario.
type cancelOn struct {
	mu     sync.Mutex
	seen   bytes.Buffer
	name   string
	cancel context.CancelFunc
}

func (c *cancelOn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.seen.Write(p)
	if strings.Contains(c.seen.String(), c.name) {
		c.cancel()
	}
	return len(p), nil
}

// Stopped midway (Ctrl-C, SIGTERM: the context ends) while the edge's
// first scenario runs, compare returns, and every process it started has
// ended, the scratch database is gone.
func TestCompareStopsEverythingWhenCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	w := &cancelOn{name: loadtest.CmpSAMLFirst + " ", cancel: cancel}
	rep, err := loadtest.Compare(ctx, loadtest.CompareOptions{AdminDatabaseURL: testenv.AdminURL(), Orgs: 1, Concurrency: 2,
		Logins: 10, Duration: time.Minute, Workers: 2, NATSSync: "always", Progress: w})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("compare: %v, want context.Canceled\n%s", err, w.seen.String())
	}
	if rep == nil || len(rep.Processes) < 4 {
		t.Fatalf("processes started: %+v", rep)
	}
	checkAllGone(t, rep)
}

// checkAllGone checks that every process compare started has ended and
// that its scratch database is gone.
func checkAllGone(t *testing.T, rep *loadtest.CompareReport) {
	t.Helper()
	for name, pid := range rep.Processes {
		// Each was waited for: its pid is free (ESRCH), not a zombie.
		if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
			t.Errorf("%s (pid %d) still there: kill -0: %v", name, pid, err)
		}
	}
	u, err := url.Parse(rep.Database)
	if err != nil || rep.Database == "" {
		t.Fatalf("database %q: %v", rep.Database, err)
	}
	conn, err := pgx.Connect(context.Background(), testenv.AdminURL())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var n int
	if err := conn.QueryRow(context.Background(), `SELECT count(*) FROM pg_database WHERE datname = $1`,
		strings.TrimPrefix(u.Path, "/")).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Errorf("the scratch database %s is still there", u.Path)
	}
}

// With -nats-cluster 3, compare runs three nats-server processes as a
// JetStream cluster and the services with R3 streams: the edge's first
// scenarios sign people in, the CPU and memory of NATS are the three nodes
// summed (and each node's), the settings record the cluster and the sync
// interval; stopped midway, every process of the cluster has ended too.
func TestCompareNATSClusterStopsEverythingWhenCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	w := &cancelOn{name: loadtest.CmpSAMLStorm + " ", cancel: cancel}
	rep, err := loadtest.Compare(ctx, loadtest.CompareOptions{AdminDatabaseURL: testenv.AdminURL(), Orgs: 1, Concurrency: 2,
		Logins: 10, Duration: 2 * time.Second, Workers: 2, NATSSync: "100ms", NATSCluster: 3, Progress: w})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("compare: %v, want context.Canceled\n%s", err, w.seen.String())
	}
	if rep == nil {
		t.Fatal("no report")
	}
	nodes := []string{loadtest.ProcNATS + "-n1", loadtest.ProcNATS + "-n2", loadtest.ProcNATS + "-n3"}
	for _, n := range nodes {
		if rep.Processes[n] == 0 {
			t.Errorf("no process %s: %v", n, rep.Processes)
		}
	}
	if _, ok := rep.Processes[loadtest.ProcNATS]; ok {
		t.Errorf("a single nats-server was started beside the cluster: %v", rep.Processes)
	}
	checkAllGone(t, rep)

	raw, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	var summary struct {
		Settings map[string]any `json:"settings"`
	}
	if err := json.Unmarshal(raw, &summary); err != nil {
		t.Fatal(err)
	}
	if summary.Settings["nats_cluster"] != 3.0 || summary.Settings["stream_replicas"] != 3.0 || summary.Settings["nats_sync_interval"] != "100ms" {
		t.Errorf("settings: %v", summary.Settings)
	}
	for _, name := range []string{loadtest.CmpSAMLFirst, loadtest.CmpSAMLReturning} {
		s := rep.Scenario(name)
		if s == nil {
			t.Errorf("no scenario %s before the cancel", name)
			continue
		}
		if s.Outcomes[loadtest.OutcomeSignedIn] == 0 || s.Outcomes[loadtest.OutcomeSignedIn] != s.Logins {
			t.Errorf("%s: outcomes %v of %d logins; want all signed in", name, s.Outcomes, s.Logins)
		}
		sum, rss := 0.0, 0.0
		for _, n := range nodes {
			// CPU is counted in clock ticks (10 ms): a follower of a short
			// scenario may use less than one (and is then left out of
			// CPUMsPerLogin), so only the cluster's must be more than none.
			cpu := s.CPUMsPerLogin[n]
			if cpu < 0 || s.PeakRSSMB[n] <= 0 {
				t.Errorf("%s: no RSS (or negative CPU) of %s: %v %v", name, n, s.CPUMsPerLogin, s.PeakRSSMB)
			}
			sum += cpu
			rss += s.PeakRSSMB[n]
		}
		if sum <= 0 {
			t.Errorf("%s: the cluster's nodes used no CPU: %v", name, s.CPUMsPerLogin)
		}
		// The sum is of the nodes' ticks, rounded once: within the
		// rounding of the three figures.
		if got := s.CPUMsPerLogin[loadtest.ProcNATS]; got < sum-0.01 || got > sum+0.01 {
			t.Errorf("%s: nats-server CPU %.3f, the nodes sum to %.3f", name, got, sum)
		}
		if got := s.PeakRSSMB[loadtest.ProcNATS]; got < rss-0.2 || got > rss+0.2 {
			t.Errorf("%s: nats-server peak RSS %.1f, the nodes sum to %.1f", name, got, rss)
		}
	}
	if inv, ok := rep.Invariant[loadtest.CmpSAMLFirst]; !ok || !inv.UsersOK || !inv.SeatsOK {
		t.Errorf("invariants of %s: %+v", loadtest.CmpSAMLFirst, inv)
	}
}

// A cluster of two would elect no leader once one node went: refused
// before anything starts.
func TestCompareRefusesAnEvenCluster(t *testing.T) {
	rep, err := loadtest.Compare(context.Background(), loadtest.CompareOptions{NATSCluster: 2})
	if err == nil || rep != nil || !strings.Contains(err.Error(), "cluster of 2") {
		t.Fatalf("compare with a cluster of 2: %v, %+v", err, rep)
	}
}

// The text report shows NATS as one figure, the cluster's nodes in
// parentheses after it.
func TestCompareTextShowsNATSNodesAfterTheirSum(t *testing.T) {
	nodes := map[string]float64{loadtest.ProcNATS: 3, loadtest.ProcNATS + "-n1": 1, loadtest.ProcNATS + "-n2": 1.5,
		loadtest.ProcNATS + "-n3": 0.5, loadtest.ProcEdge: 2}
	rep := &loadtest.CompareReport{Settings: map[string]any{"nats_cluster": 3}, PeakRSSMB: nodes,
		Scenarios: []loadtest.CompareScenario{{Target: loadtest.TargetEdge,
			ScenarioResult: loadtest.ScenarioResult{Name: loadtest.CmpSAMLFirst, CPUMsPerLogin: nodes}}}}
	var out bytes.Buffer
	if err := rep.WriteText(&out); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"nats-server 3.00 (n1 1.00 n2 1.50 n3 0.50) sso-edge 2.00",
		"peak RSS (VmHWM): nats-server 3 MB (n1 1 MB, n2 2 MB, n3 0 MB), sso-edge 2 MB", "nats_cluster=3"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("no %q in\n%s", want, out.String())
		}
	}
}

// compare -telemetry with tiny scenarios: a round of SAML first logins
// with telemetry off, then on — every span exported to the receiver in
// the load tool, which decodes and counts them, and every service's
// /metrics scraped — and the ratio of the two. Nothing here asserts on
// speed: the machine may be busy.
func TestCompareTelemetry(t *testing.T) {
	var out, errOut bytes.Buffer
	getenv := func(string) string { return "" }
	err := loadtest.Main(context.Background(), []string{"compare", "-telemetry", "-telemetry-rounds", "1", "-db", testenv.AdminURL(),
		"-orgs", "2", "-concurrency", "4", "-logins", "24", "-duration", "2s", "-workers", "4", "-o", "json", "-quiet"}, getenv, &out, &errOut)
	if err != nil {
		t.Fatalf("compare -telemetry: %v\n%s\n%s", err, out.String(), errOut.String())
	}
	var rep loadtest.CompareReport
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatalf("-o json: %v\n%s", err, out.String())
	}
	off, on := rep.Scenario(loadtest.CmpTelemetryOff+"-1"), rep.Scenario(loadtest.CmpTelemetryOn+"-1")
	if off == nil || on == nil || len(rep.Scenarios) != 2 {
		t.Fatalf("scenarios: %+v", rep.Scenarios)
	}
	for _, s := range []*loadtest.CompareScenario{off, on} {
		if s.Rate <= 0 || s.Outcomes[loadtest.OutcomeSignedIn] != s.Logins {
			t.Errorf("%s: rate %.1f, outcomes %v of %d logins", s.Name, s.Rate, s.Outcomes, s.Logins)
		}
	}
	if off.Scrapes != nil {
		t.Errorf("telemetry off was scraped: %+v", off.Scrapes)
	}
	if on.Scrapes == nil || on.Scrapes.Count == 0 || on.Scrapes.Errors != 0 || len(on.Scrapes.URLs) != 2 {
		t.Errorf("telemetry on: scrapes %+v, want both services' /metrics scraped without an error", on.Scrapes)
	}
	// 24 first logins: each is several spans in each service.
	if n, _ := rep.Settings["telemetry_spans_received"].(float64); n < 24*3 {
		t.Errorf("the OTLP receiver counted %v spans for 24 logins", rep.Settings["telemetry_spans_received"])
	}
	if rep.Ratios[loadtest.RatioTelemetryRate] <= 0 || rep.Ratios[loadtest.RatioTelemetryP99] <= 0 {
		t.Errorf("ratios: %v", rep.Ratios)
	}
	if !slices.ContainsFunc(rep.Targets, func(c loadtest.TargetCheck) bool { return c.Name == loadtest.RatioTelemetryRate }) {
		t.Errorf("targets: %+v", rep.Targets)
	}
}
