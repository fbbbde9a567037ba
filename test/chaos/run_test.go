//go:build chaos

package chaos

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

// window is the width of a throughput window.
const window = 500 * time.Millisecond

// scenarioRun is one scenario in progress: its deployment, its burst, what
// it measured and what it found.
type scenarioRun struct {
	t   *testing.T
	row *row
	dir string
	d   *deployment
	l   *loader

	faultStart, faultEnd time.Time
	arrivalsEnd          time.Time
	burstStart           time.Time // crashes before it are the scenario's own business
	notesMu              sync.Mutex
	health               *healthProbe
}

// deploy builds the scenario's system.
func (r *scenarioRun) deploy(o deployOptions) *deployment {
	r.t.Helper()
	start := time.Now()
	r.d = newDeployment(r.t, r.dir, o)
	r.t.Logf("deployment ready in %s: nats %s, postgres 127.0.0.1:%d, logs in %s",
		time.Since(start).Round(time.Millisecond), r.d.nats.urls(), r.d.pg.port, r.dir)
	return r.d
}

// fail records an invariant (or aim) failure and fails the test; the
// scenario goes on.
func (r *scenarioRun) fail(name, format string, args ...any) {
	r.t.Helper()
	msg := fmt.Sprintf(format, args...)
	r.t.Errorf("%s: %s", name, msg)
	for _, f := range r.row.failed {
		if f == name {
			return
		}
	}
	r.row.failed = append(r.row.failed, name)
}

func (r *scenarioRun) note(format string, args ...any) {
	r.notesMu.Lock()
	r.row.notes = append(r.row.notes, fmt.Sprintf(format, args...))
	r.notesMu.Unlock()
}

// pause waits d as part of the scenario's schedule (not to let something
// happen before a check: checks poll).
func pause(d time.Duration) { <-time.After(d) }

// supervise restarts services that exit by themselves, as Kubernetes
// would, so that one crash does not end the scenario; the crash still
// fails it (no-crashes). It stops when the test ends.
func (r *scenarioRun) supervise() {
	ctx, cancel := context.WithCancel(bg())
	var wg sync.WaitGroup
	r.t.Cleanup(func() { cancel(); wg.Wait() })
	for _, s := range r.d.services() {
		wg.Go(func() {
			for {
				select {
				case <-ctx.Done():
					return
				case <-s.exited():
				}
				if s.lastRunCrashed() {
					select {
					case <-ctx.Done():
						return
					case <-time.After(time.Second):
					}
					if err := s.start(); err == nil {
						r.t.Logf("supervisor: restarted %s after it exited by itself", s.name)
					}
					continue
				}
				// The suite stopped it: wait until the suite starts it again.
				for !s.running() {
					select {
					case <-ctx.Done():
						return
					case <-time.After(200 * time.Millisecond):
					}
				}
			}
		})
	}
}

// burst runs the standard scenario: sign-ins arrive at the configured
// rate; after the warm-up fault runs (and returns when the fault is
// over); arrivals go on for the recovery period; then every person in
// flight finishes or reaches the bound, and the invariants are checked.
func (r *scenarioRun) burst(faultName string, fault func() error) {
	r.t.Helper()
	r.burstStart = time.Now()
	r.l = newLoader(r.t, r.d, rate())
	r.health = startHealthProbe(r.t, r.d.edges[0].base)
	ctx, stop := context.WithCancel(bg())
	arrived := make(chan struct{})
	go func() { r.l.arrive(ctx); close(arrived) }()
	pause(*flagWarm)
	r.faultStart = time.Now()
	r.faultEnd = r.faultStart
	if fault != nil {
		if err := fault(); err != nil {
			r.fail("fault", "%s: %v", faultName, err)
		}
		r.faultEnd = time.Now()
	}
	r.l.setFaultEnd(r.faultEnd)
	pause(*flagPost)
	r.arrivalsEnd = time.Now()
	stop()
	<-arrived
	r.l.wait()
	r.health.stop()
	r.t.Logf("burst over: fault %q %s → %s, every browser done %s after the fault ended",
		faultName, r.faultStart.Format("15:04:05.0"), r.faultEnd.Format("15:04:05.0"), time.Since(r.faultEnd).Round(time.Millisecond))
	r.measure()
	r.verify()
}

// measure fills the row from the logins, and the recovery time.
func (r *scenarioRun) measure() {
	logins := r.l.snapshot()
	x := r.row
	x.logins = len(logins)
	others := map[string]int{}
	for _, l := range logins {
		switch l.outcome {
		case outSignedIn:
			x.signedIn++
		case outSignedInWait:
			x.signedIn++
			x.waited++
		case outSeats:
			x.seats++
		case outRefused:
			x.refused++
		case outOther, outWaitFailed:
			x.other++
			others[string(l.outcome)+" "+l.detail]++
		case outWaiting:
			x.waiting++
		}
	}
	if len(others) > 0 {
		var xs []string
		for k, n := range others {
			xs = append(xs, fmt.Sprintf("%d× %s", n, k))
		}
		sort.Strings(xs)
		if len(xs) > 4 {
			xs = append(xs[:4], fmt.Sprintf("…+%d kinds", len(xs)-4))
		}
		r.note("other: %s", strings.Join(xs, ", "))
	}
	r.note("sign-in time p50/p99: before the fault %s, after it %s", durations(logins, time.Time{}, r.faultStart), durations(logins, r.faultEnd, r.arrivalsEnd))
	if r.l.delayed > 0 {
		r.note("%d arrivals waited for a free browser (%d in flight)", r.l.delayed, r.l.maxInFlight)
	}

	// Throughput: completions per window; the baseline is the median
	// window before the fault (after a 2 s warm-up); recovered at the
	// first window after the fault's end at ≥ 80% of it that the next
	// three windows keep at ≥ 50%.
	start := r.l.start
	wins := windows(logins, start, window, nil)
	at := func(i int) int {
		if i < len(wins) {
			return wins[i]
		}
		return 0
	}
	from, to := int(2*time.Second/window), int(r.faultStart.Sub(start)/window)
	var pre []int
	for i := from; i < to; i++ {
		pre = append(pre, at(i))
	}
	base := median(pre)
	if r.faultEnd.Equal(r.faultStart) {
		x.recovery = "n/a"
		r.note("baseline %.1f sign-ins/s", base/window.Seconds())
		return
	}
	if base == 0 {
		r.note("no baseline throughput before the fault")
		return
	}
	first := int(math.Ceil(float64(r.faultEnd.Sub(start)) / float64(window)))
	last := int(r.arrivalsEnd.Sub(start)/window) - 1 // the last full window of arrivals
	rec := -1
	for i := first; i+3 <= last; i++ {
		if float64(at(i)) >= 0.8*base && float64(at(i+1)) >= 0.5*base && float64(at(i+2)) >= 0.5*base && float64(at(i+3)) >= 0.5*base {
			rec = i
			break
		}
	}
	if rec < 0 {
		x.recovery = fmt.Sprintf(">%.0f", r.arrivalsEnd.Sub(r.faultEnd).Seconds())
	} else {
		x.recovery = fmt.Sprintf("%.1f", max(0, start.Add(time.Duration(rec)*window).Sub(r.faultEnd).Seconds()))
	}
	during := 0.0
	n := 0
	for i := to; i < first; i++ {
		during += float64(at(i))
		n++
	}
	if n > 0 && r.faultEnd.Sub(r.faultStart) > window {
		r.note("fault %.1f s; throughput during it %.0f%% of the baseline (%.1f sign-ins/s)", r.faultEnd.Sub(r.faultStart).Seconds(), 100*during/float64(n)/base, base/window.Seconds())
	} else {
		r.note("baseline %.1f sign-ins/s", base/window.Seconds())
	}
	if rec < 0 {
		r.fail("aim-recovery", "throughput not back to 80%% of the baseline within %s of the fault's end (windows after it: %v)",
			r.arrivalsEnd.Sub(r.faultEnd).Round(time.Second), between(wins, first, last+1))
	} else if d := start.Add(time.Duration(rec) * window).Sub(r.faultEnd); d > 10*time.Second {
		r.fail("aim-recovery", "throughput back %s after the fault's end (aim: 10 s)", d.Round(100*time.Millisecond))
	}
	if p50, mx := r.health.stats(r.faultStart, r.faultEnd.Add(5*time.Second)); mx > 0 {
		r.note("edge /healthz during the fault p50 %s max %s", p50.Round(time.Millisecond), mx.Round(time.Millisecond))
	}
}

// durations is the median and 99th percentile sign-in time of the
// completed sign-ins that started in [from, to).
func durations(logins []*login, from, to time.Time) string {
	var ds []time.Duration
	for _, l := range logins {
		if l.completed() && !l.start.Before(from) && l.start.Before(to) {
			ds = append(ds, l.end.Sub(l.start))
		}
	}
	if len(ds) == 0 {
		return "—"
	}
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	return fmt.Sprintf("%s/%s", ds[len(ds)/2].Round(10*time.Millisecond), ds[len(ds)*99/100].Round(10*time.Millisecond))
}

// between is xs[from:to], as far as xs goes.
func between(xs []int, from, to int) []int {
	to = min(to, len(xs))
	if from >= to {
		return nil
	}
	return xs[from:to]
}

// perOrgDuringFault is each organisation's throughput during the fault as
// a share of its own baseline.
func (r *scenarioRun) perOrgDuringFault() map[string]float64 {
	logins := r.l.snapshot()
	start := r.l.start
	out := map[string]float64{}
	from, to := int(2*time.Second/window), int(r.faultStart.Sub(start)/window)
	end := int(r.faultEnd.Sub(start) / window)
	for _, o := range r.d.orgs {
		// Seat pages count: they are the decisions of a full organisation.
		wins := windows(logins, start, window, func(l *login) bool { return l.org == o.ID })
		sum := func(a, b int) float64 {
			s := 0
			for i := a; i < b && i < len(wins); i++ {
				s += wins[i]
			}
			return float64(s) / float64(max(1, b-a))
		}
		if base := sum(from, to); base > 0 {
			out[o.ID] = sum(to, end) / base
		}
	}
	return out
}

// verify settles the system and checks every invariant.
func (r *scenarioRun) verify() {
	r.t.Helper()
	ctx := bg()
	loginsErr, outboxErr := settle(ctx, r.d, *flagSettle)
	st, err := readState(ctx, r.d)
	if err != nil {
		r.fail("read-state", "%v", err)
		return
	}
	v := check(st, r.l.snapshot(), loginsErr, outboxErr)
	r.row.pending, r.row.stranded = len(v.pending), len(v.stranded)
	if len(v.stranded) > 0 {
		r.note("stranded: %d with an account, %d turned away (rejected) but never told", v.strandedWithAccount, len(v.stranded)-v.strandedWithAccount)
	}
	for _, f := range v.failures {
		name, msg, _ := strings.Cut(f, ": ")
		r.fail(name, "%s", msg)
	}
	if v.failedAlertsCount > 0 {
		r.note("%d logins given up (provisioning.failed)", v.failedAlertsCount)
	}
	r.traceStranded(st, v.stranded)
	r.checkCrashes()
	r.noteLogErrors()
	r.crossCheckRefusals()
}

// crossCheckRefusals compares the refusals the browsers saw with those the
// edges logged: an operator reads the log, not the browsers.
func (r *scenarioRun) crossCheckRefusals() {
	if r.row.refused == 0 {
		return
	}
	logged := 0
	for _, e := range r.d.edges {
		for _, line := range grepLog(e.logPath, `"level":"ERROR"`) {
			logged += 1 + jsonInt(line, "suppressed")
		}
	}
	r.note("%d refusals seen by the browsers, %d ERROR events in the edges' logs (lines plus the counts they say they held back)", r.row.refused, logged)
}

// noteLogErrors notes the most frequent ERROR records of the services,
// the evidence behind refusals and waits.
func (r *scenarioRun) noteLogErrors() {
	counts := map[string]int{}
	for _, s := range r.d.services() {
		kind := strings.TrimRight(s.name, "-0123456789")
		for msg, n := range logSummary(s.logPath) {
			counts[kind+": "+msg] += n
		}
	}
	if len(counts) == 0 {
		return
	}
	msgs := make([]string, 0, len(counts))
	for m := range counts {
		msgs = append(msgs, m)
	}
	sort.Slice(msgs, func(i, j int) bool { return counts[msgs[i]] > counts[msgs[j]] })
	var xs []string
	for _, m := range msgs[:min(3, len(msgs))] {
		xs = append(xs, fmt.Sprintf("%d× %q", counts[m], m))
	}
	r.note("ERROR logs: %s", strings.Join(xs, ", "))
}

// traceStranded logs, for a few stranded people, their decision and every
// log line that names its login: which provisioner decided it, and what
// happened to that provisioner then.
func (r *scenarioRun) traceStranded(st *state, stranded []*login) {
	for _, l := range stranded[:min(5, len(stranded))] {
		ds := st.byPerson[personKey(l.org, l.ext)]
		if len(ds) == 0 {
			continue
		}
		dc := ds[0]
		var seen []string
		named := false
		for _, s := range r.d.services() {
			lines := grepLog(s.logPath, dc.loginID)
			named = named || len(lines) > 0
			for _, line := range lines {
				seen = append(seen, fmt.Sprintf("%s %s %q", s.name, jsonField(line, "time"), jsonField(line, "msg")))
			}
			if len(lines) > 0 { // what the suite did to that process
				for _, m := range grepLog(s.logPath, "=== chaos: ") {
					if !bytes.Contains(m, []byte("start #1 ")) {
						seen = append(seen, s.name+" "+strings.TrimPrefix(string(m), "=== chaos: "))
					}
				}
			}
		}
		if !named { // no process logged the login: what the suite did around its decision
			for _, s := range r.d.services() {
				for _, m := range grepLog(s.logPath, "=== chaos: ") {
					at, err := time.Parse(time.RFC3339Nano, strings.TrimSuffix(strings.Fields(string(m))[2], ":"))
					if err == nil && at.Sub(dc.decidedAt).Abs() < 3*time.Second {
						seen = append(seen, s.name+" "+strings.TrimPrefix(string(m), "=== chaos: "))
					}
				}
			}
		}
		r.t.Logf("stranded %s/%s (%s, started %s): login %s decided %s at %s; in the logs: %s", l.org, l.ext, l.outcome,
			l.start.Format("15:04:05.000"), dc.loginID, dc.outcome, dc.decidedAt.Format("15:04:05.000"), strings.Join(seen, "; "))
	}
}

// checkCrashes fails the scenario for every service that exited by itself.
func (r *scenarioRun) checkCrashes() {
	procs := []*proc{r.d.pg.proc}
	for _, s := range r.d.services() {
		procs = append(procs, s.proc)
	}
	for _, n := range r.d.nats.nodes {
		procs = append(procs, n.proc)
	}
	for _, p := range procs {
		for _, e := range p.unexpectedExits() {
			if !e.At.Before(r.burstStart) {
				r.fail("no-crashes", "%s %s", p.name, e)
			}
		}
	}
}

// summarizeLogs notes, for a failed scenario, the most frequent ERROR
// records of each process.
func (r *scenarioRun) summarizeLogs() {
	paths, _ := filepath.Glob(filepath.Join(r.dir, "*.log"))
	for _, p := range paths {
		counts := logSummary(p)
		if len(counts) == 0 {
			continue
		}
		msgs := make([]string, 0, len(counts))
		for msg := range counts {
			msgs = append(msgs, msg)
		}
		sort.Slice(msgs, func(i, j int) bool { return counts[msgs[i]] > counts[msgs[j]] })
		var xs []string
		for _, msg := range msgs[:min(3, len(msgs))] {
			xs = append(xs, fmt.Sprintf("%d× %q", counts[msg], msg))
		}
		r.t.Logf("%s errors: %s", filepath.Base(p), strings.Join(xs, ", "))
	}
}
