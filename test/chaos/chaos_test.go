//go:build chaos

// Package chaos is jitprov's chaos suite (issue 10): real provisioner,
// sso-edge and nats-server processes, a throwaway PostgreSQL cluster and a
// 3-node JetStream cluster on loopback; faults injected in the middle of a
// burst of sign-ins through the edge; the invariants checked after
// recovery; a table of scenarios and results at the end.
//
//	make chaos                                   # or:
//	go test -tags chaos -count=1 -timeout 30m -v ./test/chaos/
//	go test -tags chaos -count=1 -v ./test/chaos/ -run 'TestChaos/leader' -chaos.rate 40
//
// See docs/chaos.md for the scenarios, the invariants and how to read
// the table.
package chaos

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

var (
	flagRate        = flag.Float64("chaos.rate", 0, "sign-ins started per second in each burst (default 20 × $CHAOS_SCALE)")
	flagWarm        = flag.Duration("chaos.warm", 8*time.Second, "burst time before the fault (the baseline)")
	flagPost        = flag.Duration("chaos.post", 15*time.Second, "burst time after the fault ends (the recovery)")
	flagStrandBound = flag.Duration("chaos.strand", 60*time.Second, "how long after the fault's end a person on the waiting page keeps waiting before counting as stranded or pending")
	flagSettle      = flag.Duration("chaos.settle", 60*time.Second, "bound for LOGINS and the outbox to drain once the burst is over")
	flagLogs        = flag.String("chaos.logs", "", "keep every process's log under this directory (default: a temporary directory, kept only for failed scenarios)")
	flagReport      = flag.String("chaos.report", "", "also write the results table (Markdown) to this file")
)

// binDir holds the binaries built once for the whole run.
var binDir string

func TestMain(m *testing.M) {
	flag.Parse()
	dir, err := os.MkdirTemp("", "jitprov-chaos-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "chaos:", err)
		os.Exit(1)
	}
	binDir = dir
	code := 1
	if err := buildBinaries(dir); err != nil {
		fmt.Fprintln(os.Stderr, "chaos:", err)
	} else {
		code = m.Run()
	}
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

// buildBinaries builds the provisioner and sso-edge of this tree, and
// nats-server at the version go.mod names (not whatever the machine has).
func buildBinaries(dir string) error {
	start := time.Now()
	root, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}").Output()
	if err != nil {
		return fmt.Errorf("find the module root: %w", err)
	}
	for _, args := range [][]string{
		{"build", "-o", dir + "/", "./cmd/provisioner", "./cmd/sso-edge"},
		{"build", "-o", filepath.Join(dir, "nats-server"), "github.com/nats-io/nats-server/v2"},
	} {
		cmd := exec.Command("go", args...)
		cmd.Dir = strings.TrimSpace(string(root))
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("go %s: %w\n%s", strings.Join(args, " "), err, out)
		}
	}
	fmt.Fprintf(os.Stderr, "chaos: built provisioner, sso-edge and nats-server in %s\n", time.Since(start).Round(time.Millisecond))
	return nil
}

// rate is the burst's arrival rate.
func rate() float64 {
	if *flagRate > 0 {
		return *flagRate
	}
	scale := 1.0
	if s := os.Getenv("CHAOS_SCALE"); s != "" {
		if v, err := strconv.ParseFloat(s, 64); err == nil && v > 0 {
			scale = v
		}
	}
	return 20 * scale
}

// row is one line of the results table.
type row struct {
	name     string
	logins   int
	signedIn int // directly or after waiting
	waited   int // of which after the waiting page
	seats    int
	refused  int
	other    int // error pages and transport failures
	waiting  int // still on the waiting page at the bound
	pending  int // sent to the waiting page, login never decided
	stranded int // sent to the waiting page, login decided, answer never shown
	recovery string
	failed   []string
	notes    []string
	logDir   string
}

// results collects the rows of every scenario, printed at the end even
// when scenarios fail.
type results struct {
	mu   sync.Mutex
	rows []*row
}

func (r *results) add(x *row) {
	r.mu.Lock()
	r.rows = append(r.rows, x)
	r.mu.Unlock()
}

func (r *results) table() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var b strings.Builder
	fmt.Fprintf(&b, "| scenario | logins | signed-in (after wait) | seats | refused | error pages | waiting at end | pending | stranded | recovery s | invariants |\n")
	fmt.Fprintf(&b, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|\n")
	for _, x := range r.rows {
		inv := "ok"
		if len(x.failed) > 0 {
			inv = "FAIL: " + strings.Join(x.failed, ", ")
		}
		fmt.Fprintf(&b, "| %s | %d | %d (%d) | %d | %d | %d | %d | %d | %d | %s | %s |\n",
			x.name, x.logins, x.signedIn, x.waited, x.seats, x.refused, x.other, x.waiting, x.pending, x.stranded, x.recovery, inv)
	}
	b.WriteString("\n")
	for _, x := range r.rows {
		if len(x.notes) == 0 && x.logDir == "" {
			continue
		}
		fmt.Fprintf(&b, "- **%s**: %s", x.name, strings.Join(x.notes, "; "))
		if x.logDir != "" {
			fmt.Fprintf(&b, " (logs: %s)", x.logDir)
		}
		b.WriteString("\n")
	}
	return b.String()
}

// TestChaos runs every scenario, each on a fresh database and cluster, and
// prints the table of results.
func TestChaos(t *testing.T) {
	logRoot := *flagLogs
	keepAll := logRoot != ""
	if logRoot == "" {
		var err error
		if logRoot, err = os.MkdirTemp("", "jitprov-chaos-logs-"); err != nil {
			t.Fatal(err)
		}
	}
	res := &results{}
	start := time.Now()
	t.Cleanup(func() {
		tab := res.table()
		t.Logf("chaos results (%s, %.0f sign-ins/s):\n%s", time.Since(start).Round(time.Second), rate(), tab)
		fmt.Printf("\nchaos results (%s, %.0f sign-ins/s):\n%s\n", time.Since(start).Round(time.Second), rate(), tab)
		if *flagReport != "" {
			if err := os.WriteFile(*flagReport, []byte(tab), 0o644); err != nil {
				t.Errorf("write %s: %v", *flagReport, err)
			}
		}
		if !keepAll {
			_ = os.Remove(logRoot) // only when every scenario's logs went
		}
	})
	for _, sc := range scenarios() {
		t.Run(sc.name, func(t *testing.T) {
			dir := filepath.Join(logRoot, sc.name)
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			x := &row{name: sc.name, recovery: "—"}
			res.add(x)
			r := &scenarioRun{t: t, row: x, dir: dir}
			t.Cleanup(func() {
				// Runs after the deployment's cleanups (registered later,
				// run first): every process is gone.
				if t.Failed() {
					if len(x.failed) == 0 {
						x.failed = []string{"setup"}
					}
					x.logDir = dir
					r.summarizeLogs()
					t.Logf("logs of %s kept in %s", sc.name, dir)
				} else if !keepAll {
					_ = os.RemoveAll(dir)
				}
			})
			sc.run(r)
		})
	}
}

// context for scenario steps.
func bg() context.Context { return context.Background() }
