package loadtest

import (
	"cmp"
	"context"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Scenarios.
const (
	ScenarioFirst     = "first"     // every login is a new person's first
	ScenarioReturning = "returning" // the people of the run's first logins sign in again
)

// Modes.
const (
	ModeClosed = "closed" // Concurrency logins in flight, each starting when one ends: maximum throughput
	ModeOpen   = "open"   // logins start at Rate a second whatever the answers: honest latency
)

// Outcomes of one login, as the browser sees it.
const (
	OutcomeSignedIn    = "signed_in"    // 303 to the RelayState with a cookie (and, with Follow, /auth/verify names the user)
	OutcomeWaiting     = "waiting"      // 202, "setting up your account" (the provisioner did not answer in time)
	OutcomeNoSession   = "no_session"   // 303, but no cookie or /auth/verify refused it
	OutcomeRateLimited = "rate_limited" // 429: the edge's rate limits (turn them off for a load test)
	OutcomeRefused     = "refused"      // 403: the edge refused the response or the person
	OutcomeUnavailable = "unavailable"  // 503
	OutcomeError       = "error"        // no HTTP answer (connection refused, timeout)
)

// relayState is where every login asks to go: the edge's forward-auth
// endpoint, which names the session's user.
const relayState = "/auth/verify"

// Options of a run.
type Options struct {
	Dir         string   // the state folder setup wrote
	Scenarios   []string // ScenarioFirst, ScenarioReturning, in order
	Mode        string   // ModeClosed or ModeOpen
	Concurrency int      // closed loop: logins in flight
	Rate        float64  // open loop: logins started a second
	Duration    time.Duration
	// Logins bounds a closed-loop scenario: that many responses are
	// signed beforehand, and the scenario ends when they are used up or
	// Duration has passed, whichever is first.
	Logins int
	// Orgs uses the first Orgs of setup's organisations (0: all; 1 is a
	// one-organisation storm).
	Orgs int
	// MaxInFlight bounds an open-loop run's logins in flight (default
	// 4096); a login waiting for a slot is still timed from its scheduled
	// start.
	MaxInFlight int
	Timeout     time.Duration // of one HTTP request (default 30s)
	Follow      bool          // follow the redirect to /auth/verify and check the session names a user
	// DatabaseURL, when set, checks the invariants after the scenarios.
	DatabaseURL string
	Progress    io.Writer // a progress bar, redrawn every second; nil for none
	// Protocol of the logins: ProtocolSAML (default: signed IdP-initiated
	// responses POSTed to the ACS) or ProtocolOIDC (the browser flow
	// through the OIDC connection named in the state: login start,
	// the provider's authorization endpoint, the callback).
	Protocol string
	// Observe, when set, is called as each scenario's timed phase starts
	// (after its signing) and the function it returns as it ends, with the
	// result so far: compare uses it to read the processes' CPU time.
	Observe func(scenario string) func(*ScenarioResult)
	// EncryptTo, when set, is the edge's SP certificate: the assertions
	// are encrypted to it (AES-128-CBC, RSA-OAEP), so that the edge's
	// decryption is measured too, as it costs with an IdP that encrypts.
	EncryptTo *x509.Certificate
	// Names name the scenarios in the report and on the progress bar, in
	// order (default: the scenarios' own names).
	Names []string
	// Tag makes the run's people its own (external ids lt-<run id>-<tag>…),
	// for several runs in one process; default the scenario's name.
	Tag string
	// Scrape, when set, are /metrics URLs scraped every ScrapeEvery
	// (default DefaultScrapeEvery) during each scenario's timed phase, as
	// Prometheus would: the run with them, against one without, measures
	// what scraping costs (ScenarioResult.Scrapes).
	Scrape      []string
	ScrapeEvery time.Duration
}

// Protocols.
const (
	ProtocolSAML = "saml"
	ProtocolOIDC = "oidc"
)

// ScenarioResult is one scenario's figures. Latencies are of the ACS POST
// (until the edge's answer to the browser), over the logins that signed
// in or got the waiting page (failures are counted in Outcomes, their
// often quick answers would flatter the percentiles); in an open loop
// from the login's scheduled start, not from when it was sent.
type ScenarioResult struct {
	Name        string         `json:"name"`
	Mode        string         `json:"mode"`
	Orgs        int            `json:"orgs"`
	Concurrency int            `json:"concurrency,omitempty"`
	TargetRate  float64        `json:"target_rate,omitempty"`
	Signed      int            `json:"responses_signed"`
	SignSeconds float64        `json:"sign_seconds"`
	Logins      int            `json:"logins"`
	Seconds     float64        `json:"seconds"`
	Rate        float64        `json:"rate"` // signed-in logins a second
	P50         float64        `json:"p50_ms"`
	P95         float64        `json:"p95_ms"`
	P99         float64        `json:"p99_ms"`
	P999        float64        `json:"p999_ms"`
	Max         float64        `json:"max_ms"`
	Outcomes    map[string]int `json:"outcomes"`
	// Exhausted: a closed loop used every signed response before Duration.
	Exhausted bool   `json:"exhausted,omitempty"`
	Protocol  string `json:"protocol,omitempty"`
	// CPUMsPerLogin is each observed process's CPU time (user + system)
	// over the timed phase per signed-in login; PeakRSSMB their peak
	// resident memory (VmHWM) at its end. Set by compare.
	CPUMsPerLogin map[string]float64 `json:"cpu_ms_per_login,omitempty"`
	PeakRSSMB     map[string]float64 `json:"peak_rss_mb,omitempty"`
	// Scrapes: what scraping Options.Scrape cost during the timed phase.
	Scrapes *ScrapeStats `json:"scrapes,omitempty"`
	// LoginsPerTransaction: the provisioner's mean batch over the timed
	// phase (its jitprov_provisioner_batch_logins). Set by compare for the
	// edge's scenarios.
	LoginsPerTransaction float64 `json:"logins_per_transaction,omitempty"`
}

// Report is a run's result.
type Report struct {
	RunID      string           `json:"run_id"`
	EdgeURL    string           `json:"edge_url"`
	CPUs       int              `json:"cpus"`
	Scenarios  []ScenarioResult `json:"scenarios"`
	Invariants *Invariants      `json:"invariants,omitempty"`
}

// Run signs the responses of each scenario, then sends them to the edge,
// and checks the invariants when o.DatabaseURL is set. An error means the
// run could not be made (or an invariant failed); logins that fail are
// outcomes in the report, not errors.
func Run(ctx context.Context, o Options) (*Report, error) {
	if err := o.defaults(); err != nil {
		return nil, err
	}
	st, err := LoadState(o.Dir)
	if err != nil {
		return nil, err
	}
	idp, err := LoadIdP(o.Dir)
	if err != nil {
		return nil, err
	}
	orgs := st.Orgs
	if o.Orgs > 0 {
		if o.Orgs > len(orgs) {
			return nil, fmt.Errorf("-orgs %d: setup made only %d organisations", o.Orgs, len(orgs))
		}
		orgs = orgs[:o.Orgs]
	}
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	r := &runner{o: o, st: st, idp: idp, orgs: orgs, runID: time.Now().UTC().Format("20060102t150405") + "-" + hex.EncodeToString(b),
		transport: &http.Transport{MaxIdleConns: 0, MaxIdleConnsPerHost: max(o.Concurrency, 64) * 2, IdleConnTimeout: time.Minute}}
	defer r.transport.CloseIdleConnections()
	rep := &Report{RunID: r.runID, EdgeURL: st.EdgeURL, CPUs: runtime.NumCPU()}
	created := 0 // first logins the edge answered with a session or the waiting page
	for si, name := range o.Scenarios {
		var people []Person
		switch name {
		case ScenarioFirst:
			people = r.newPeople(cmp.Or(o.Tag, name), r.count())
		case ScenarioReturning:
			if len(r.known) == 0 {
				// Nobody yet: first logins, unmeasured, to come back as.
				n := min(r.count(), 1000)
				r.progressf("returning: %d first logins beforehand (not measured)\n", n)
				warm, err := r.scenario(ctx, "returning-warmup", r.newPeople(o.Tag+"w", n), ModeClosed, false)
				if err != nil {
					return rep, err
				}
				created += warm.Outcomes[OutcomeSignedIn] + warm.Outcomes[OutcomeWaiting]
			}
			if len(r.known) == 0 {
				return rep, errors.New("returning: nobody signed in to come back")
			}
			people = make([]Person, r.count())
			for i := range people {
				people[i] = r.known[i%len(r.known)]
			}
		default:
			return rep, fmt.Errorf("unknown scenario %q (want %s or %s)", name, ScenarioFirst, ScenarioReturning)
		}
		label := name
		if si < len(o.Names) && o.Names[si] != "" {
			label = o.Names[si]
		}
		res, err := r.scenario(ctx, label, people, o.Mode, name == ScenarioReturning)
		if err != nil {
			return rep, err
		}
		if name == ScenarioFirst {
			created += res.Outcomes[OutcomeSignedIn] + res.Outcomes[OutcomeWaiting]
		}
		rep.Scenarios = append(rep.Scenarios, res)
	}
	if o.DatabaseURL != "" {
		inv, err := checkInvariants(ctx, o.DatabaseURL, st.Orgs, r.prefix(), created)
		rep.Invariants = inv
		if err != nil {
			return rep, err
		}
	}
	return rep, nil
}

func (o *Options) defaults() error {
	if len(o.Scenarios) == 0 {
		o.Scenarios = []string{ScenarioFirst}
	}
	if o.Mode == "" {
		o.Mode = ModeClosed
	}
	if o.Duration <= 0 {
		o.Duration = 10 * time.Second
	}
	if o.Timeout <= 0 {
		o.Timeout = 30 * time.Second
	}
	if o.MaxInFlight <= 0 {
		o.MaxInFlight = 4096
	}
	if o.ScrapeEvery <= 0 {
		o.ScrapeEvery = DefaultScrapeEvery
	}
	if o.Protocol == "" {
		o.Protocol = ProtocolSAML
	}
	if o.Protocol != ProtocolSAML && o.Protocol != ProtocolOIDC {
		return fmt.Errorf("protocol %q: want %s or %s", o.Protocol, ProtocolSAML, ProtocolOIDC)
	}
	switch o.Mode {
	case ModeClosed:
		if o.Concurrency <= 0 {
			o.Concurrency = 32
		}
		if o.Logins <= 0 {
			o.Logins = 2000
		}
	case ModeOpen:
		if o.Rate <= 0 {
			return errors.New("an open loop needs -rate, the logins started a second")
		}
	default:
		return fmt.Errorf("mode %q: want %s or %s", o.Mode, ModeClosed, ModeOpen)
	}
	return nil
}

type runner struct {
	o         Options
	st        State
	idp       *IdP
	orgs      []string
	runID     string
	transport *http.Transport
	known     []Person // people who signed in during this run
}

// prefix begins every external id of the run.
func (r *runner) prefix() string { return "lt-" + r.runID + "-" }

// count is how many responses a scenario signs.
func (r *runner) count() int {
	if r.o.Mode == ModeOpen {
		return int(math.Ceil(r.o.Rate * r.o.Duration.Seconds()))
	}
	return r.o.Logins
}

func (r *runner) newPeople(tag string, n int) []Person {
	out := make([]Person, n)
	for i := range out {
		id := fmt.Sprintf("%s%s-%d", r.prefix(), tag, i)
		out[i] = Person{Org: r.orgs[i%len(r.orgs)], ExternalID: id, Email: id + "@loadtest.example"}
	}
	return out
}

func (r *runner) progressf(format string, args ...any) {
	if r.o.Progress != nil {
		fmt.Fprintf(r.o.Progress, format, args...)
	}
}

// scenario signs one response per person, then sends them.
// returning: people are the run's people again (not added to r.known).
func (r *runner) scenario(ctx context.Context, name string, people []Person, mode string, returning bool) (ScenarioResult, error) {
	res := ScenarioResult{Name: name, Mode: mode, Orgs: len(r.orgs), Outcomes: map[string]int{}, Protocol: r.o.Protocol}
	t0 := time.Now()
	forms := make([]string, len(people)) // OIDC: nothing to sign beforehand (the ID token carries the login's nonce)
	if r.o.Protocol == ProtocolSAML {
		var err error
		if forms, err = r.signAll(ctx, name, people, t0); err != nil {
			return res, err
		}
		res.Signed, res.SignSeconds = len(forms), time.Since(t0).Seconds()
	}
	if time.Since(t0)+r.o.Duration > Window {
		return res, fmt.Errorf("%s: signing took %s; with -duration %s the responses would expire (a scenario and its signing must fit in %s): sign fewer or run shorter",
			name, time.Since(t0).Round(time.Second), r.o.Duration, Window)
	}
	var (
		mu       sync.Mutex
		lat      []time.Duration
		inFlight atomic.Int64
		done     atomic.Int64
		counts   [7]atomic.Int64
	)
	outcomeIdx := map[string]int{OutcomeSignedIn: 0, OutcomeWaiting: 1, OutcomeNoSession: 2, OutcomeRateLimited: 3,
		OutcomeRefused: 4, OutcomeUnavailable: 5, OutcomeError: 6}
	var other sync.Map // outcomes outside outcomeIdx (http_NNN)
	record := func(i int, outcome string, d time.Duration) {
		if j, ok := outcomeIdx[outcome]; ok {
			counts[j].Add(1)
		} else {
			v, _ := other.LoadOrStore(outcome, new(atomic.Int64))
			v.(*atomic.Int64).Add(1)
		}
		done.Add(1)
		mu.Lock()
		if outcome == OutcomeSignedIn || outcome == OutcomeWaiting {
			lat = append(lat, d)
		}
		if outcome == OutcomeSignedIn && !returning {
			r.known = append(r.known, people[i])
		}
		mu.Unlock()
	}

	var observed func(*ScenarioResult)
	if r.o.Observe != nil {
		observed = r.o.Observe(name)
	}
	var stopScraping func() *ScrapeStats
	if len(r.o.Scrape) > 0 {
		stopScraping = startScraping(ctx, r.o.Scrape, r.o.ScrapeEvery, r.o.Timeout)
	}
	start := time.Now()
	stopProgress := r.progress(name, start, len(forms), &done, &inFlight, &counts[0], &counts[1])
	end := start.Add(r.o.Duration)
	var wg sync.WaitGroup
	switch mode {
	case ModeClosed:
		res.Concurrency = r.o.Concurrency
		var next atomic.Int64
		for range r.o.Concurrency {
			wg.Go(func() {
				for ctx.Err() == nil && time.Now().Before(end) {
					i := int(next.Add(1) - 1)
					if i >= len(forms) {
						return
					}
					inFlight.Add(1)
					t := time.Now()
					outcome, d := r.login(ctx, people[i], forms[i], t)
					inFlight.Add(-1)
					record(i, outcome, d)
				}
			})
		}
		wg.Wait()
		res.Exhausted = int(next.Load()) >= len(forms) && time.Now().Before(end)
	case ModeOpen:
		res.TargetRate = r.o.Rate
		slots := make(chan struct{}, r.o.MaxInFlight)
		interval := time.Duration(float64(time.Second) / r.o.Rate)
	schedule:
		for i := range forms {
			at := start.Add(time.Duration(i) * interval)
			if !at.Before(end) {
				break
			}
			if d := time.Until(at); d > 0 {
				select {
				case <-ctx.Done():
					break schedule
				case <-time.After(d):
				}
			}
			select {
			case slots <- struct{}{}:
			case <-ctx.Done():
				break schedule
			}
			inFlight.Add(1)
			wg.Go(func() {
				defer func() { <-slots }()
				outcome, d := r.login(ctx, people[i], forms[i], at)
				inFlight.Add(-1)
				record(i, outcome, d)
			})
		}
		wg.Wait()
	}
	elapsed := time.Since(start)
	stopProgress()
	if stopScraping != nil {
		res.Scrapes = stopScraping()
	}
	for k, j := range outcomeIdx {
		if n := counts[j].Load(); n > 0 {
			res.Outcomes[k] = int(n)
		}
	}
	other.Range(func(k, v any) bool { res.Outcomes[k.(string)] = int(v.(*atomic.Int64).Load()); return true })
	res.Logins = int(done.Load())
	res.Seconds = elapsed.Seconds()
	res.Rate = float64(res.Outcomes[OutcomeSignedIn]) / elapsed.Seconds()
	slices.Sort(lat)
	res.P50, res.P95, res.P99, res.P999 = ms(percentile(lat, 0.50)), ms(percentile(lat, 0.95)), ms(percentile(lat, 0.99)), ms(percentile(lat, 0.999))
	if len(lat) > 0 {
		res.Max = ms(lat[len(lat)-1])
	}
	if observed != nil {
		observed(&res)
	}
	return res, ctx.Err()
}

// signAll signs every person's response on every core.
func (r *runner) signAll(ctx context.Context, name string, people []Person, t0 time.Time) ([]string, error) {
	s := newSigner(r.idp, t0, r.o.EncryptTo)
	forms := make([]string, len(people))
	var next atomic.Int64
	var firstErr error
	var once sync.Once
	var wg sync.WaitGroup
	stop := r.ticker(func() {
		r.progressf("\r%-10s signing %d/%d responses", name, min(int(next.Load()), len(people)), len(people))
	})
	for range runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			for ctx.Err() == nil {
				i := int(next.Add(1) - 1)
				if i >= len(people) {
					return
				}
				f, err := s.sign(r.st.target(people[i].Org), people[i])
				if err != nil {
					once.Do(func() { firstErr = err })
					return
				}
				forms[i] = f
			}
		})
	}
	wg.Wait()
	stop()
	r.progressf("\r%-10s signed %d responses in %s\n", name, len(people), time.Since(t0).Round(10*time.Millisecond))
	if firstErr != nil {
		return nil, firstErr
	}
	return forms, ctx.Err()
}

// ticker calls f every second until the returned stop.
func (r *runner) ticker(f func()) (stop func()) {
	if r.o.Progress == nil {
		return func() {}
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				f()
			}
		}
	})
	return func() { close(done); wg.Wait() }
}

func (r *runner) progress(name string, start time.Time, total int, done, inFlight, signedIn, waiting *atomic.Int64) func() {
	line := func() {
		el := time.Since(start)
		frac := min(el.Seconds()/r.o.Duration.Seconds(), 1)
		if r.o.Mode == ModeClosed && total > 0 {
			frac = max(frac, min(float64(done.Load())/float64(total), 1))
		}
		const width = 20
		bar := strings.Repeat("#", int(frac*width)) + strings.Repeat(".", width-int(frac*width))
		r.progressf("\r%-16s [%s] %3.0f%% %5.1fs  %d logins  %d signed in (%.0f/s)  %d waiting  %d in flight   ", name, bar, frac*100,
			el.Seconds(), done.Load(), signedIn.Load(), float64(signedIn.Load())/el.Seconds(), waiting.Load(), inFlight.Load())
	}
	stop := r.ticker(line)
	return func() {
		stop()
		line()
		r.progressf("\n")
	}
}

// login is one person's browser: a fresh cookie jar on the shared
// connection pool, POSTing the response to the ACS and, with Follow,
// following the redirect. The latency is from `from` to the ACS answer.
func (r *runner) login(ctx context.Context, who Person, form string, from time.Time) (string, time.Duration) {
	jar, _ := cookiejar.New(nil)
	client := &http.Client{Transport: r.transport, Jar: jar, Timeout: r.o.Timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	if r.o.Protocol == ProtocolOIDC {
		return r.oidcLogin(ctx, client, who, from)
	}
	acs := r.st.target(who.Org).acs
	body := url.Values{"SAMLResponse": {form}, "RelayState": {relayState}}.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, acs, strings.NewReader(body))
	if err != nil {
		return OutcomeError, 0
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return r.answer(ctx, client, req, from)
}

// oidcLogin is the OIDC browser flow: the edge's login start (a redirect
// to the provider, with the pending-login cookie), the provider's
// authorization endpoint (which signs in the person named by login_hint at
// once and redirects back with a code), then the callback, whose answer is
// classified as an ACS answer is. The latency is of the whole flow.
func (r *runner) oidcLogin(ctx context.Context, client *http.Client, who Person, from time.Time) (string, time.Duration) {
	start := r.st.oidcLogin(who.Org) + "?return_to=" + url.QueryEscape(relayState)
	step := func(u string) (*url.URL, string) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if err != nil {
			return nil, OutcomeError
		}
		resp, err := client.Do(req)
		if err != nil {
			return nil, OutcomeError
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusFound && resp.StatusCode != http.StatusSeeOther {
			return nil, classify(resp.StatusCode)
		}
		loc, err := resp.Location()
		if err != nil {
			return nil, fmt.Sprintf("http_%d", resp.StatusCode)
		}
		return loc, ""
	}
	authz, outcome := step(start)
	if authz == nil {
		return outcome, time.Since(from)
	}
	q := authz.Query()
	q.Set("login_hint", who.ExternalID) // the person signs in at the provider
	authz.RawQuery = q.Encode()
	callback, outcome := step(authz.String())
	if callback == nil {
		return outcome, time.Since(from)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, callback.String(), nil)
	if err != nil {
		return OutcomeError, time.Since(from)
	}
	return r.answer(ctx, client, req, from)
}

// answer sends the request that ends a login (the ACS POST, the OIDC
// callback) and classifies the edge's answer, following the redirect to
// /auth/verify with Follow.
func (r *runner) answer(ctx context.Context, client *http.Client, req *http.Request, from time.Time) (string, time.Duration) {
	resp, err := client.Do(req)
	if err != nil {
		return OutcomeError, time.Since(from)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	d := time.Since(from)
	if resp.StatusCode != http.StatusSeeOther {
		return classify(resp.StatusCode), d
	}
	if resp.Header.Get("Location") != relayState || len(resp.Cookies()) == 0 {
		return OutcomeNoSession, d
	}
	if !r.o.Follow {
		return OutcomeSignedIn, d
	}
	next, err := req.URL.Parse(relayState)
	if err != nil {
		return OutcomeNoSession, d
	}
	vreq, _ := http.NewRequestWithContext(ctx, http.MethodGet, next.String(), nil)
	v, err := client.Do(vreq)
	if err != nil {
		return OutcomeError, d
	}
	_, _ = io.Copy(io.Discard, v.Body)
	v.Body.Close()
	if v.StatusCode != http.StatusOK || v.Header.Get("X-Jitprov-User-Id") == "" {
		return OutcomeNoSession, d
	}
	return OutcomeSignedIn, d
}

func classify(status int) string {
	switch status {
	case http.StatusAccepted:
		return OutcomeWaiting
	case http.StatusTooManyRequests:
		return OutcomeRateLimited
	case http.StatusForbidden:
		return OutcomeRefused
	case http.StatusServiceUnavailable:
		return OutcomeUnavailable
	default:
		return fmt.Sprintf("http_%d", status)
	}
}

// percentile is the nearest-rank percentile of sorted latencies.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(p*float64(len(sorted)))) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

func ms(d time.Duration) float64 { return math.Round(float64(d)/float64(time.Microsecond)) / 1000 }
