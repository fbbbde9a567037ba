//go:build chaos

package chaos

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/jitprov/jitprov/internal/bus"
	"github.com/jitprov/jitprov/internal/edge/certwatch"
	"github.com/jitprov/jitprov/internal/edge/replay"
	"github.com/jitprov/jitprov/internal/known"
)

type scenario struct {
	name string
	run  func(r *scenarioRun)
}

// scenarios are issue 10's faults, each on a fresh database and cluster.
func scenarios() []scenario {
	return []scenario{
		{"baseline", runBaseline},
		{"provisioner-kill9", runProvisionerKill},
		{"provisioner-sigstop", runProvisionerFreeze},
		{"logins-leader-kill9", runLeaderKill},
		{"nats-full-outage", runNATSOutage},
		{"postgres-stop", runPostgresStop},
		{"startup-races", runStartupRaces},
		{"replica-ownership", runReplicaOwnership},
		{"forged-saml-flood", runForgedFlood},
	}
}

// standard is three provisioners and two edges.
var standard = deployOptions{provisioners: 3, edges: 2}

// The control row: the same burst, no fault.
func runBaseline(r *scenarioRun) {
	r.deploy(standard)
	r.supervise()
	r.burst("none", nil)
}

// Every provisioner killed (SIGKILL) and restarted, one after the other:
// logins in their hands, decisions committed and not yet acked, acked and
// not yet answered or recorded as known.
func runProvisionerKill(r *scenarioRun) {
	d := r.deploy(standard)
	r.supervise()
	r.burst("kill -9 each provisioner in turn, twice, restarting it", func() error {
		for _, p := range append(append([]*service(nil), d.provs...), d.provs...) {
			if err := p.kill9(); err != nil {
				return err
			}
			pause(time.Second)
			if err := p.start(); err != nil {
				return err
			}
			if err := p.waitReady(bg(), 60*time.Second); err != nil {
				return err
			}
			pause(2 * time.Second)
		}
		return nil
	})
}

// One provisioner frozen (SIGSTOP) in the middle of a transaction for 30 s,
// then thawed: its open transaction holds the row locks it took.
func runProvisionerFreeze(r *scenarioRun) {
	d := r.deploy(standard)
	r.supervise()
	frozen := d.provs[0]
	r.burst("SIGSTOP a provisioner holding a seat row for 30 s", func() error {
		tries, err := r.freezeMidTransaction(frozen)
		if err != nil {
			return err
		}
		r.note("%s frozen holding a seat row (caught at try %d)", frozen.name, tries)
		// What the database sees meanwhile.
		var seen []string
		for _, at := range []time.Duration{2 * time.Second, 10 * time.Second, 25 * time.Second} {
			pause(time.Until(r.faultStart.Add(at)))
			var waiting, unsent int
			var idle []string
			_ = d.db.QueryRow(bg(), `SELECT count(*) FILTER (WHERE wait_event_type = 'Lock'),
				coalesce(array_agg(left(regexp_replace(query, '\s+', ' ', 'g'), 60)) FILTER (WHERE state = 'idle in transaction'), '{}'),
				(SELECT count(*) FROM outbox WHERE sent_at IS NULL)
				FROM pg_stat_activity WHERE datname = 'jitprov'`).Scan(&waiting, &idle, &unsent)
			seen = append(seen, fmt.Sprintf("%s in: %d sessions waiting on a lock, %d idle in transaction %q, %d outbox rows unsent",
				at, waiting, len(idle), idle, unsent))
		}
		r.note("the freeze %s", strings.Join(seen, "; "))
		pause(time.Until(r.faultStart.Add(30 * time.Second)))
		return frozen.signalGroup(syscall.SIGCONT, false)
	})
	per := r.perOrgDuringFault()
	var xs []string
	stalled := 0
	for _, o := range d.orgs {
		share, ok := per[o.ID]
		if !ok {
			continue
		}
		xs = append(xs, fmt.Sprintf("%s %.0f%%", o.ID, 100*share))
		if share < 0.5 {
			stalled++
		}
	}
	r.note("each organisation's sign-ins during the freeze, share of its baseline: %s", strings.Join(xs, ", "))
	if stalled > 1 {
		r.fail("aim-others-unaffected", "%d organisations fell below half their throughput while one provisioner was frozen: %s",
			stalled, strings.Join(xs, ", "))
	}
}

// freezeMidTransaction stops p while one of its transactions holds an
// organisation's seat row (issue 10's frozen provisioner): SIGSTOP, and
// unless a session has sat idle for 200 ms in a transaction that updated
// the organisations table (a live one moves on in milliseconds), SIGCONT
// and try again. The fault starts with the freeze that caught one. It
// returns the tries it took.
func (r *scenarioRun) freezeMidTransaction(p *service) (int, error) {
	const tries = 200
	for try := 1; try <= tries; try++ {
		if err := p.signalGroup(syscall.SIGSTOP, false); err != nil {
			return try, err
		}
		stopped := time.Now()
		pause(250 * time.Millisecond)
		var n int
		if err := r.d.db.QueryRow(bg(), `SELECT count(*) FROM pg_stat_activity a JOIN pg_locks l ON l.pid = a.pid
			WHERE a.datname = 'jitprov' AND a.state = 'idle in transaction' AND a.state_change < now() - interval '200 milliseconds'
			AND l.relation = 'organizations'::regclass AND l.mode = 'RowExclusiveLock'`).Scan(&n); err != nil {
			return try, err
		}
		if n > 0 {
			r.faultStart = stopped
			return try, nil
		}
		if err := p.signalGroup(syscall.SIGCONT, false); err != nil {
			return try, err
		}
		pause(50 * time.Millisecond)
	}
	return tries, fmt.Errorf("%s was never caught holding a seat row", p.name)
}

// The node leading LOGINS killed (SIGKILL) for 10 s, then restarted: the
// other two hold a quorum, so no login should be refused.
func runLeaderKill(r *scenarioRun) {
	d := r.deploy(standard)
	r.supervise()
	leader, err := streamLeader(bg(), d.js, bus.StreamLogins)
	if err != nil {
		r.t.Fatal(err)
	}
	r.gatherLeadership(leader) // before the burst: stepdowns are elections too
	r.burst("kill -9 the LOGINS leader for 10 s", func() error {
		if now, err := streamLeader(bg(), d.js, bus.StreamLogins); err != nil {
			return err
		} else if now != leader {
			r.note("LOGINS leader moved from %s to %s before the fault", leader, now)
			leader = now
		}
		r.note("%s led %s", leader, strings.Join(r.ledBy(leader), ", "))
		n := d.nats.node(leader)
		if err := n.proc.kill9(); err != nil {
			return err
		}
		pause(10 * time.Second)
		if err := n.proc.start(); err != nil {
			return err
		}
		r.noteHealthy("the killed node", time.Now())
		return nil
	})
	next, _ := streamLeader(bg(), d.js, bus.StreamLogins)
	r.note("LOGINS leader %s killed; leader now %s", leader, next)
	if r.row.refused > 0 {
		r.fail("aim-no-refusals", "%d sign-ins refused while one node of three was down", r.row.refused)
	}
}

// All three nats-servers stopped for 15 s, then started again.
func runNATSOutage(r *scenarioRun) {
	d := r.deploy(standard)
	r.supervise()
	r.burst("stop all three nats-servers for 15 s", func() error {
		if err := d.nats.stopAll(); err != nil {
			return err
		}
		pause(15 * time.Second)
		if err := d.nats.startAll(); err != nil {
			return err
		}
		r.noteHealthy("the cluster", time.Now())
		return nil
	})
}

// noteHealthy notes, in the background, how long after at every node of
// the cluster answered /healthz again: NATS's own part of the recovery.
func (r *scenarioRun) noteHealthy(what string, at time.Time) {
	done := make(chan struct{})
	r.t.Cleanup(func() { <-done })
	go func() {
		defer close(done)
		if err := r.d.nats.waitHealthy(bg(), 2*time.Minute); err != nil {
			r.note("%s not healthy again: %v", what, err)
			return
		}
		healthy := time.Since(at)
		// /healthz can pass before every Raft group has its leader: the
		// provisioners' consumer is what the pipeline waits for.
		err := pollUntil(bg(), time.Now().Add(2*time.Minute), func() (bool, string) {
			ctx, cancel := context.WithTimeout(bg(), 2*time.Second)
			defer cancel()
			c, err := r.d.js.Consumer(ctx, bus.StreamLogins, bus.ConsumerProvisioner)
			if err != nil {
				return false, err.Error()
			}
			info, err := c.Info(ctx)
			if err != nil {
				return false, err.Error()
			}
			return info.Cluster != nil && info.Cluster.Leader != "", "no leader"
		})
		if err != nil {
			r.note("%s healthy again %s after the restart; the provisioner consumer without a leader: %v", what, healthy.Round(100*time.Millisecond), err)
			return
		}
		r.note("%s healthy again %s after the restart, the provisioner consumer led again after %s", what,
			healthy.Round(100*time.Millisecond), time.Since(at).Round(100*time.Millisecond))
	}()
}

// Postgres stopped at once (immediate: sessions cut, crash recovery on
// start) for 10 s, then started again.
func runPostgresStop(r *scenarioRun) {
	d := r.deploy(standard)
	r.supervise()
	r.burst("stop postgres (immediate) for 10 s", func() error {
		if err := d.pg.stopImmediate(); err != nil {
			return err
		}
		pause(10 * time.Second)
		return d.pg.start(bg())
	})
}

// Start-up races: three provisioners started at the same instant on a
// fresh cluster; then an edge and a provisioner started while NATS and
// Postgres are down, which must become ready once they are back, without
// a restart. Then a burst without a fault.
func runStartupRaces(r *scenarioRun) {
	d := r.deploy(deployOptions{noServices: true})
	ctx := bg()
	for range 3 {
		d.addProvisioner()
	}
	start := time.Now()
	for _, p := range d.provs {
		if err := p.start(); err != nil {
			r.t.Fatal(err)
		}
	}
	var bad []string
	for _, p := range d.provs {
		if err := p.waitReady(ctx, 60*time.Second); err != nil {
			bad = append(bad, err.Error())
		}
	}
	if len(bad) > 0 {
		r.fail("start-together", "%d of 3 provisioners started together did not become ready: %s", len(bad), strings.Join(bad, "; "))
	} else {
		r.note("3 provisioners started together: all ready in %s", time.Since(start).Round(100*time.Millisecond))
	}
	// Two edges started together, on a cluster without their buckets yet.
	edges := []*service{d.addEdge(true), d.addEdge(true)}
	start = time.Now()
	for _, e := range edges {
		if err := e.start(); err != nil {
			r.t.Fatal(err)
		}
	}
	bad = nil
	for _, e := range edges {
		if err := e.waitReady(ctx, 60*time.Second); err != nil {
			bad = append(bad, err.Error())
		}
	}
	if len(bad) > 0 {
		r.fail("start-together", "%d of 2 edges started together did not become ready: %s", len(bad), strings.Join(bad, "; "))
	} else {
		r.note("2 edges started together: both ready in %s", time.Since(start).Round(100*time.Millisecond))
	}

	// Everything down, then an edge and a provisioner started.
	for _, s := range d.services() {
		if err := s.stop(30 * time.Second); err != nil {
			r.t.Fatal(err)
		}
	}
	if err := d.nats.stopAll(); err != nil {
		r.t.Fatal(err)
	}
	if err := d.pg.stopImmediate(); err != nil {
		r.t.Fatal(err)
	}
	early := []*service{d.addEdge(true), d.addProvisioner()}
	for _, s := range early {
		if err := s.start(); err != nil {
			r.t.Fatal(err)
		}
	}
	pause(5 * time.Second) // the dependencies' outage, as the early starters live it
	back := time.Now()
	if err := d.pg.start(ctx); err != nil {
		r.t.Fatal(err)
	}
	if err := d.nats.startAll(); err != nil {
		r.t.Fatal(err)
	}
	bad = nil
	for _, s := range early {
		if err := s.waitReady(ctx, 60*time.Second); err != nil {
			bad = append(bad, err.Error())
		}
	}
	if len(bad) > 0 {
		r.fail("start-while-down", "%s", strings.Join(bad, "; "))
	} else {
		r.note("edge and provisioner started 5 s before NATS and Postgres: ready %s after they were back", time.Since(back).Round(100*time.Millisecond))
	}
	if err := d.nats.waitHealthy(ctx, 60*time.Second); err != nil {
		r.t.Fatal(err)
	}

	// Everything is started again, one at a time (what was measured is
	// measured), and a burst checks the system works.
	for _, s := range d.services() {
		if s.running() {
			continue
		}
		for try := 1; ; try++ {
			err := d.startAll(ctx, []*service{s}, 60*time.Second)
			if err == nil {
				if try > 1 {
					r.note("%s ready at start %d after the restarts (earlier: %s)", s.name, try, strings.Join(exitLines(s), "; "))
				}
				break
			}
			if try == 4 {
				r.t.Fatalf("%s did not start in %d tries: %v", s.name, try, err)
			}
			_ = s.stop(10 * time.Second)
		}
	}
	if err := waitAllReady(ctx, d.services(), 90*time.Second); err != nil {
		r.t.Fatal(err)
	}
	r.supervise()
	r.burst("none (after the start-up races)", nil)
}

// replicated are the streams and buckets that must keep three replicas.
var replicated = []string{bus.StreamLogins, bus.StreamUsers, bus.StreamAlerts,
	"KV_" + known.DefaultBucket, "KV_" + replay.DefaultBucket, "KV_" + certwatch.DefaultBucket}

// replicas reads the replica count of each stream.
func (r *scenarioRun) replicas(ctx context.Context) map[string]int {
	out := map[string]int{}
	for _, name := range replicated {
		s, err := r.d.js.Stream(ctx, name)
		if err != nil {
			out[name] = -1
			continue
		}
		info, err := s.Info(ctx)
		if err != nil {
			out[name] = -1
			continue
		}
		out[name] = info.Config.Replicas
	}
	return out
}

func notR3(m map[string]int) []string {
	var out []string
	for name, n := range m {
		if n != 3 {
			out = append(out, fmt.Sprintf("%s R%d", name, n))
		}
	}
	sort.Strings(out)
	return out
}

// gatherLeadership moves the leaders of the buckets a sign-in writes to
// (the replay cache, the known identities) and of the provisioner consumer
// to node, by stepping their leaders down with node preferred: the node
// then killed takes every Raft group of the sign-in path with it, the
// worst single-node failure, the same in every run. A group that does not
// move is noted.
func (r *scenarioRun) gatherLeadership(node string) {
	body, _ := json.Marshal(map[string]any{"placement": map[string]string{"preferred": node}})
	groups := []struct{ name, subject string }{
		{"KV_" + replay.DefaultBucket, "$JS.API.STREAM.LEADER.STEPDOWN.KV_" + replay.DefaultBucket},
		{"KV_" + known.DefaultBucket, "$JS.API.STREAM.LEADER.STEPDOWN.KV_" + known.DefaultBucket},
		{"consumer " + bus.ConsumerProvisioner, "$JS.API.CONSUMER.LEADER.STEPDOWN." + bus.StreamLogins + "." + bus.ConsumerProvisioner},
	}
	for _, g := range groups {
		led := func() bool { return slices.Contains(r.ledBy(node), g.name) }
		if led() {
			continue
		}
		if _, err := r.d.nc.Request(g.subject, body, 5*time.Second); err != nil {
			r.note("%s: leader stepdown toward %s: %v", g.name, node, err)
			continue
		}
		if err := pollUntil(bg(), time.Now().Add(15*time.Second), func() (bool, string) { return led(), "not moved" }); err != nil {
			r.note("%s: leader not moved to %s: %v", g.name, node, err)
		}
	}
}

// ledBy lists the streams and the provisioner consumer whose Raft groups
// node leads: what its death makes elect.
func (r *scenarioRun) ledBy(node string) []string {
	var out []string
	for _, name := range replicated {
		if l, err := streamLeader(bg(), r.d.js, name); err == nil && l == node {
			out = append(out, name)
		}
	}
	ctx, cancel := context.WithTimeout(bg(), 5*time.Second)
	defer cancel()
	if c, err := r.d.js.Consumer(ctx, bus.StreamLogins, bus.ConsumerProvisioner); err == nil {
		if info, err := c.Info(ctx); err == nil && info.Cluster != nil && info.Cluster.Leader == node {
			out = append(out, "consumer "+bus.ConsumerProvisioner)
		}
	}
	return out
}

// Replica ownership: with everything at three replicas, an edge started
// without JITPROV_STREAM_REPLICAS must leave them at three.
func runReplicaOwnership(r *scenarioRun) {
	d := r.deploy(standard)
	ctx := bg()
	if bad := notR3(r.replicas(ctx)); len(bad) > 0 {
		r.fail("replicas-kept", "before the test, not at three replicas: %s", strings.Join(bad, ", "))
	}
	loose := d.addEdge(false)
	if err := d.startAll(ctx, []*service{loose}, 60*time.Second); err != nil {
		r.fail("replicas-kept", "an edge without JITPROV_STREAM_REPLICAS did not start: %v", err)
	}
	if bad := notR3(r.replicas(ctx)); len(bad) > 0 {
		r.fail("replicas-kept", "after %s started without JITPROV_STREAM_REPLICAS: %s", loose.name, strings.Join(bad, ", "))
	} else {
		r.note("an edge without JITPROV_STREAM_REPLICAS left every stream and bucket at R3")
	}
	r.supervise()
	r.burst("none (one edge without JITPROV_STREAM_REPLICAS)", nil)

	// Not in the issue, measured for the record: a provisioner started
	// without the variable.
	p := d.addProvisioner()
	p.env = removeEnv(p.env, "JITPROV_STREAM_REPLICAS")
	if err := d.startAll(ctx, []*service{p}, 60*time.Second); err != nil {
		r.note("a provisioner without JITPROV_STREAM_REPLICAS did not start: %v", err)
	} else if bad := notR3(r.replicas(ctx)); len(bad) > 0 {
		r.note("a provisioner without JITPROV_STREAM_REPLICAS rescaled: %s", strings.Join(bad, ", "))
	} else {
		r.note("a provisioner without JITPROV_STREAM_REPLICAS left every stream and bucket at R3")
	}
}

// exitLines are the last words of a service's unexpected exits.
func exitLines(s *service) []string {
	var out []string
	for _, e := range s.unexpectedExits() {
		out = append(out, e.LastLine)
	}
	return out
}

func removeEnv(env []string, name string) []string {
	var out []string
	for _, e := range env {
		if !strings.HasPrefix(e, name+"=") {
			out = append(out, e)
		}
	}
	return out
}

// A flood of forged SAML responses at one edge's ACS from one client, as
// fast as it goes, for 20 s, while people sign in.
func runForgedFlood(r *scenarioRun) {
	d := r.deploy(standard)
	r.supervise()
	target := d.edges[0]
	forged, err := forgeResponses(target.base)
	if err != nil {
		r.t.Fatal(err)
	}
	var sent atomic.Int64
	statuses := map[int]int{}
	var mu sync.Mutex
	r.burst("20 s of forged SAML responses from one client", func() error {
		ctx, cancel := context.WithTimeout(bg(), 20*time.Second)
		defer cancel()
		client := &http.Client{Timeout: 10 * time.Second, Transport: transportFrom(net.IPv4(127, 0, 0, 2), 16)}
		var wg sync.WaitGroup
		for w := range 16 {
			wg.Go(func() {
				for i := w; ctx.Err() == nil; i += 16 {
					form := url.Values{"SAMLResponse": {forged[i%len(forged)]}}
					req, _ := http.NewRequestWithContext(ctx, http.MethodPost, target.base+"/saml/alpha/idp/acs", strings.NewReader(form.Encode()))
					req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
					resp, err := client.Do(req)
					code := 0
					if err == nil {
						resp.Body.Close()
						code = resp.StatusCode
					}
					if ctx.Err() != nil {
						return
					}
					sent.Add(1)
					mu.Lock()
					statuses[code]++
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		return nil
	})
	var st []string
	for code, n := range statuses {
		st = append(st, fmt.Sprintf("%d×%d", n, code))
	}
	sort.Strings(st)
	r.note("%d forged responses in 20 s (%.0f/s), answers %s", sent.Load(), float64(sent.Load())/20, strings.Join(st, " "))
	before50, beforeMax := r.health.stats(r.l.start, r.faultStart)
	p50, mx := r.health.stats(r.faultStart, r.faultEnd)
	r.note("%s /healthz before the flood p50 %s max %s; during it p50 %s max %s, %d probes failed",
		target.name, before50.Round(100*time.Microsecond), beforeMax.Round(time.Millisecond), p50.Round(100*time.Microsecond),
		mx.Round(time.Millisecond), r.health.failures(r.faultStart, r.faultEnd))
	if p50 > 50*time.Millisecond || mx > time.Second {
		r.fail("aim-health-under-flood", "/healthz during the flood p50 %s max %s (aim: p50 ≤ 50 ms, max ≤ 1 s)", p50.Round(time.Millisecond), mx.Round(time.Millisecond))
	}
	if r.row.refused+r.row.other > 0 {
		r.fail("aim-good-logins", "%d refused and %d other failures among the good sign-ins during the flood", r.row.refused, r.row.other)
	}
}

// forgeResponses makes what the attacker posts: a real response of the
// IdP with its NameID changed (the signature no longer matches), and
// garbage of the size of a response.
func forgeResponses(edge string) ([]string, error) {
	var out []string
	b := &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	ctx := bg()
	start, err := get(ctx, b, edge+"/saml/alpha/idp/login")
	if err != nil || start.status != http.StatusFound {
		return nil, fmt.Errorf("forge: login start: %v %v", err, start)
	}
	atIdP, err := get(ctx, b, start.header.Get("Location"), personHeader, "alpha/intruder")
	if err != nil {
		return nil, fmt.Errorf("forge: IdP: %w", err)
	}
	_, form, err := responseForm(atIdP.body)
	if err != nil {
		return nil, fmt.Errorf("forge: %w", err)
	}
	raw, err := base64.StdEncoding.DecodeString(form.Get("SAMLResponse"))
	if err != nil {
		return nil, fmt.Errorf("forge: %w", err)
	}
	for i := range 64 {
		tampered := strings.ReplaceAll(string(raw), "intruder", fmt.Sprintf("victim%02d", i))
		out = append(out, base64.StdEncoding.EncodeToString([]byte(tampered)))
		junk := make([]byte, len(raw))
		for j := range junk {
			junk[j] = byte(rand.N(256))
		}
		out = append(out, base64.StdEncoding.EncodeToString(junk))
	}
	return out, nil
}
