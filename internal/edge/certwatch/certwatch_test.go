package certwatch_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/jitprov/jitprov/events"
	"github.com/jitprov/jitprov/internal/bus"
	"github.com/jitprov/jitprov/internal/edge/certwatch"
	"github.com/jitprov/jitprov/internal/testenv"
)

const day = 24 * time.Hour

func TestStep(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name          string
		left          time.Duration
		wantThreshold int
		wantFires     bool
		wantDaysLeft  int
	}{
		{"40 days", 40 * day, 0, false, 40},
		{"a second over 30 days", 30*day + time.Second, 0, false, 30},
		{"exactly 30 days", 30 * day, 30, true, 30},
		{"20 days", 20 * day, 30, true, 20},
		{"a second over 7 days", 7*day + time.Second, 30, true, 7},
		{"exactly 7 days", 7 * day, 7, true, 7},
		{"5 days", 5 * day, 7, true, 5},
		{"a second over a day", day + time.Second, 7, true, 1},
		{"exactly a day", day, 1, true, 1},
		{"12 hours", 12 * time.Hour, 1, true, 0},
		{"expires now (still valid)", 0, 1, true, 0},
		{"expired a second ago", -time.Second, 0, true, 0},
		{"expired a day ago", -day, 0, true, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			threshold, fires := certwatch.Step(now.Add(tt.left), now)
			if threshold != tt.wantThreshold || fires != tt.wantFires {
				t.Errorf("Step: got %d %t, want %d %t", threshold, fires, tt.wantThreshold, tt.wantFires)
			}
			if got := certwatch.DaysLeft(now.Add(tt.left), now); got != tt.wantDaysLeft {
				t.Errorf("DaysLeft: got %d, want %d", got, tt.wantDaysLeft)
			}
		})
	}
}

func TestKey(t *testing.T) {
	fp := "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	tests := []struct {
		name, org, conn string
		threshold       int
		want            string // "" when an error is wanted
	}{
		{"plain", "acme", "okta-prod", 7, "acme.okta-prod.0123456789abcdef.7"},
		{"expired", "acme", "idp_1", 0, "acme.idp_1.0123456789abcdef.0"},
		{"dot in the connection", "acme", "a.b", 7, ""},
		{"empty organisation", "", "idp", 7, ""},
		{"wildcard", "acme", "*", 1, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := certwatch.Key(tt.org, tt.conn, fp, tt.threshold)
			if tt.want == "" {
				if err == nil {
					t.Errorf("got %q, want an error", got)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("got %q, %v; want %q", got, err, tt.want)
			}
		})
	}
	a, _ := certwatch.Key("acme", "idp", fp, 7)
	b, _ := certwatch.Key("acme", "idp", fp, 1)
	if certwatch.EventID(a) != certwatch.EventID(a) || certwatch.EventID(a) == certwatch.EventID(b) {
		t.Errorf("event ids: the same key must give the same id and different keys different ids")
	}
}

// clock is a settable test clock.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// source is a test Source: fixed certificates, and an optional error for
// connections it "could not read".
type source struct {
	mu    sync.Mutex
	certs []certwatch.Cert
	err   error
	calls int
}

func (s *source) Certificates(context.Context) ([]certwatch.Cert, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls++
	return append([]certwatch.Cert(nil), s.certs...), s.err
}

func (s *source) set(certs []certwatch.Cert, err error) {
	s.mu.Lock()
	s.certs, s.err = certs, err
	s.mu.Unlock()
}

func (s *source) callCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls
}

// newCert makes a self-signed certificate valid until notAfter (which
// x509 keeps to the second).
func newCert(t *testing.T, cn string, notAfter time.Time) *x509.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn, Organization: []string{"Test IdP"}},
		NotBefore: notAfter.Add(-400 * day), NotAfter: notAfter}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

// env is one test's NATS with the ALERTS stream.
type env struct {
	ns *server.Server
	js jetstream.JetStream
}

func newEnv(t *testing.T, withStreams bool) env {
	t.Helper()
	ns := testenv.NATS(t)
	js, err := jetstream.New(testenv.Connect(t, ns))
	if err != nil {
		t.Fatal(err)
	}
	if withStreams {
		ensureStreams(t, js)
	}
	return env{ns: ns, js: js}
}

func ensureStreams(t *testing.T, js jetstream.JetStream) {
	t.Helper()
	if err := bus.Ensure(t.Context(), js, bus.DefaultTopology()); err != nil {
		t.Fatal(err)
	}
}

// watcher returns a Watcher with its own NATS connection, as an edge
// replica has.
func (e env) watcher(t *testing.T, src certwatch.Source, clk *clock) *certwatch.Watcher {
	t.Helper()
	js, err := jetstream.New(testenv.Connect(t, e.ns))
	if err != nil {
		t.Fatal(err)
	}
	w, err := certwatch.New(src, js, certwatch.Config{Now: clk.Now, Logger: testenv.Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	return w
}

type alert struct {
	subject string
	msgID   string
	ev      events.Event
	data    events.IdPCertificateExpiring
}

// alerts reads every message of stream ALERTS, decoded.
func (e env) alerts(t *testing.T) []alert {
	t.Helper()
	ctx := t.Context()
	s, err := e.js.Stream(ctx, bus.StreamAlerts)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var out []alert
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if err != nil {
			t.Fatal(err)
		}
		ev, err := events.Decode(&nats.Msg{Subject: m.Subject, Header: m.Header, Data: m.Data})
		if err != nil {
			t.Fatalf("message %d breaks the contract: %v", seq, err)
		}
		d, err := events.DataAs[events.IdPCertificateExpiring](ev, events.TypeIdPCertificateExpiring)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, alert{subject: m.Subject, msgID: m.Header.Get(jetstream.MsgIDHeader), ev: ev, data: d})
	}
	return out
}

func thresholds(as []alert) []int {
	out := make([]int, 0, len(as))
	for _, a := range as {
		out = append(out, a.data.ThresholdDays)
	}
	sort.Ints(out)
	return out
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// The five certificates of the brief: 40 days, 20 days, 5 days, 12 hours
// left, and expired a day ago.
func fiveCerts(t *testing.T, now time.Time) []certwatch.Cert {
	return []certwatch.Cert{
		{OrganizationID: "acme", ConnectionID: "idp-40d", Cert: newCert(t, "idp-40d.example", now.Add(40*day))},
		{OrganizationID: "acme", ConnectionID: "idp-20d", Cert: newCert(t, "idp-20d.example", now.Add(20*day))},
		{OrganizationID: "acme", ConnectionID: "idp-5d", Cert: newCert(t, "idp-5d.example", now.Add(5*day))},
		{OrganizationID: "globex", ConnectionID: "idp-12h", Cert: newCert(t, "idp-12h.example", now.Add(12*time.Hour))},
		{OrganizationID: "globex", ConnectionID: "idp-expired", Cert: newCert(t, "idp-expired.example", now.Add(-day))},
	}
}

// Each certificate due a warning gets exactly one event on ALERTS, with
// the right data; checking again the same day publishes nothing.
func TestWatcherPublishesEachStepOnce(t *testing.T) {
	e := newEnv(t, true)
	clk := &clock{now: time.Now().UTC().Truncate(time.Second)}
	certs := fiveCerts(t, clk.Now())
	w := e.watcher(t, &source{certs: certs}, clk)

	sum, err := w.Check(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if want := (certwatch.Summary{Checked: 5, Alerted: 4}); sum != want {
		t.Errorf("first check: got %+v, want %+v", sum, want)
	}
	got := e.alerts(t)
	type want struct {
		org               string
		days, threshold   int
		expired           bool
		subjectCommonName string
		cert              *x509.Certificate
	}
	wants := map[string]want{
		"idp-20d":     {"acme", 20, 30, false, "idp-20d.example", certs[1].Cert},
		"idp-5d":      {"acme", 5, 7, false, "idp-5d.example", certs[2].Cert},
		"idp-12h":     {"globex", 0, 1, false, "idp-12h.example", certs[3].Cert},
		"idp-expired": {"globex", 0, 0, true, "idp-expired.example", certs[4].Cert},
	}
	if len(got) != len(wants) {
		t.Fatalf("got %d alerts, want %d", len(got), len(wants))
	}
	for _, a := range got {
		w, ok := wants[a.data.ConnectionID]
		if !ok {
			t.Errorf("unexpected alert for connection %q", a.data.ConnectionID)
			continue
		}
		delete(wants, a.data.ConnectionID)
		d := a.data
		fp := certwatch.Fingerprint(w.cert)
		key, _ := certwatch.Key(w.org, d.ConnectionID, fp, w.threshold)
		switch {
		case a.subject != "jit.alert.idp-certificate.expiring."+w.org:
			t.Errorf("%s: NATS subject %q", d.ConnectionID, a.subject)
		case d.OrganizationID != w.org || d.DaysLeft != w.days || d.ThresholdDays != w.threshold || d.Expired != w.expired:
			t.Errorf("%s: got %+v, want org %s, %d days left, step %d, expired %t", d.ConnectionID, d, w.org, w.days, w.threshold, w.expired)
		case d.FingerprintSHA256 != fp || len(d.FingerprintSHA256) != 64:
			t.Errorf("%s: fingerprint %q, want %q", d.ConnectionID, d.FingerprintSHA256, fp)
		case d.Subject != w.cert.Subject.String() || d.Subject != "CN="+w.subjectCommonName+",O=Test IdP":
			t.Errorf("%s: subject %q, want %q", d.ConnectionID, d.Subject, w.cert.Subject.String())
		case !d.NotAfter.Equal(w.cert.NotAfter):
			t.Errorf("%s: not after %s, want %s", d.ConnectionID, d.NotAfter, w.cert.NotAfter)
		case a.ev.ID() != certwatch.EventID(key) || a.msgID != a.ev.ID():
			t.Errorf("%s: event id %q, Nats-Msg-Id %q, want both %q", d.ConnectionID, a.ev.ID(), a.msgID, certwatch.EventID(key))
		case a.ev.Subject() != d.ConnectionID || a.ev.Source() != certwatch.DefaultSource:
			t.Errorf("%s: ce-subject %q ce-source %q", d.ConnectionID, a.ev.Subject(), a.ev.Source())
		}
	}

	// Later the same day, on this replica: nothing new.
	clk.advance(3 * time.Hour)
	sum, err = w.Check(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if want := (certwatch.Summary{Checked: 5}); sum != want {
		t.Errorf("second check: got %+v, want %+v", sum, want)
	}
	if n := len(e.alerts(t)); n != 4 {
		t.Errorf("after the second check: %d alerts, want still 4", n)
	}
}

// Replicas checking at the same moment publish each warning once between
// them: exactly one wins each mark, also a mark given back (deleted) after
// a failed publish.
func TestWatchersShareTheMarks(t *testing.T) {
	e := newEnv(t, false) // no ALERTS stream in round 0: every publish fails
	clk := &clock{now: time.Now().UTC().Truncate(time.Second)}
	src := &source{certs: fiveCerts(t, clk.Now())}
	const replicas = 4
	ws := make([]*certwatch.Watcher, replicas)
	for i := range ws {
		ws[i] = e.watcher(t, src, clk)
	}
	for round := range 4 {
		if round == 1 {
			ensureStreams(t, e.js)
		}
		sums := make([]certwatch.Summary, replicas)
		errs := make([]error, replicas)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i, w := range ws {
			wg.Go(func() {
				<-start
				sums[i], errs[i] = w.Check(t.Context())
			})
		}
		close(start)
		wg.Wait()
		alerted, failed := 0, 0
		for i := range ws {
			if errs[i] != nil {
				t.Fatalf("round %d, replica %d: %v", round, i, errs[i])
			}
			if sums[i].Checked != 5 {
				t.Errorf("round %d, replica %d: %+v", round, i, sums[i])
			}
			alerted += sums[i].Alerted
			failed += sums[i].Failed
		}
		want := map[int]int{1: 4}[round]
		if round == 0 && failed < 4 {
			t.Errorf("round 0, without a stream: %d failures, want at least 4", failed)
		}
		if round > 0 && failed != 0 {
			t.Errorf("round %d: %d failures", round, failed)
		}
		// Publishing is counted before the stream's deduplication: this
		// is the marks at work, not Nats-Msg-Id.
		if alerted != want {
			t.Errorf("round %d: the replicas published %d warnings between them, want %d", round, alerted, want)
		}
	}
	if got := thresholds(e.alerts(t)); !equalInts(got, []int{0, 1, 7, 30}) {
		t.Errorf("steps on ALERTS: %v, want [0 1 7 30]", got)
	}
}

// A certificate alerted at 30 days is alerted again when it crosses to 7
// days, and only once there; its replacement starts afresh.
func TestWatcherNextStepAndRollover(t *testing.T) {
	e := newEnv(t, true)
	clk := &clock{now: time.Now().UTC().Truncate(time.Second)}
	old := newCert(t, "idp.example", clk.Now().Add(20*day))
	src := &source{certs: []certwatch.Cert{{OrganizationID: "acme", ConnectionID: "idp", Cert: old}}}
	w := e.watcher(t, src, clk)
	check := func(wantAlerted int) {
		t.Helper()
		sum, err := w.Check(t.Context())
		if err != nil || sum.Alerted != wantAlerted || sum.Failed != 0 {
			t.Fatalf("at %s: got %+v, %v; want %d alerted", clk.Now().Format(time.DateOnly), sum, err, wantAlerted)
		}
	}
	check(1) // 20 days: step 30
	for range 10 {
		clk.advance(day)
		check(0) // 19 to 10 days left: still step 30
	}
	clk.advance(5 * day) // 5 days left
	check(1)             // step 7
	check(0)
	got := e.alerts(t)
	if th := thresholds(got); !equalInts(th, []int{7, 30}) {
		t.Fatalf("steps: %v, want [7 30]", th)
	}
	last := got[len(got)-1].data
	if last.ThresholdDays != 7 || last.DaysLeft != 5 {
		t.Errorf("the second alert: %+v, want step 7 with 5 days left", last)
	}

	// The IdP rolls over to a new certificate which, as it happens, is
	// also due a warning: a new fingerprint, a new warning.
	fresh := newCert(t, "idp.example", clk.Now().Add(6*day))
	src.set([]certwatch.Cert{{OrganizationID: "acme", ConnectionID: "idp", Cert: old}, {OrganizationID: "acme", ConnectionID: "idp", Cert: fresh}}, nil)
	check(1)
	got = e.alerts(t)
	if len(got) != 3 || got[2].data.FingerprintSHA256 != certwatch.Fingerprint(fresh) || got[2].data.ThresholdDays != 7 {
		t.Errorf("after the rollover: %d alerts, the last %+v; want a step-7 warning of the new certificate", len(got), got[len(got)-1].data)
	}
}

// A connection the source cannot read, or a certificate that cannot be
// alerted, does not keep the others from being checked.
func TestWatcherGoesOnPastFailures(t *testing.T) {
	e := newEnv(t, true)
	clk := &clock{now: time.Now().UTC().Truncate(time.Second)}
	src := &source{
		certs: []certwatch.Cert{
			{OrganizationID: "Not.An.Org", ConnectionID: "idp", Cert: newCert(t, "bad.example", clk.Now().Add(5*day))},
			{OrganizationID: "acme", ConnectionID: "nil-cert"},
			{OrganizationID: "acme", ConnectionID: "good", Cert: newCert(t, "good.example", clk.Now().Add(5*day))},
		},
		err: errors.New("connection acme/broken: IdP metadata: GET https://idp.example/metadata: 503 Service Unavailable"),
	}
	sum, err := e.watcher(t, src, clk).Check(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if want := (certwatch.Summary{Checked: 3, Alerted: 1, Failed: 3}); sum != want {
		t.Errorf("got %+v, want %+v", sum, want)
	}
	if got := e.alerts(t); len(got) != 1 || got[0].data.ConnectionID != "good" {
		t.Errorf("alerts: %+v, want one for acme/good", got)
	}
}

// A warning whose publish fails gives its mark back: the next check
// publishes it.
func TestWatcherRetriesAFailedPublish(t *testing.T) {
	e := newEnv(t, false) // no ALERTS stream yet: publishing fails
	clk := &clock{now: time.Now().UTC().Truncate(time.Second)}
	src := &source{certs: []certwatch.Cert{{OrganizationID: "acme", ConnectionID: "idp", Cert: newCert(t, "idp.example", clk.Now().Add(5*day))}}}
	w := e.watcher(t, src, clk)
	sum, err := w.Check(t.Context())
	if err != nil || sum.Alerted != 0 || sum.Failed != 1 {
		t.Fatalf("check without a stream: got %+v, %v; want one failure", sum, err)
	}
	ensureStreams(t, e.js)
	clk.advance(time.Hour)
	sum, err = w.Check(t.Context())
	if err != nil || sum.Alerted != 1 {
		t.Fatalf("check with the stream: got %+v, %v; want one alert", sum, err)
	}
	if got := e.alerts(t); len(got) != 1 || got[0].data.ThresholdDays != 7 {
		t.Errorf("alerts: %+v, want the step-7 warning", got)
	}
}

// Run checks at once, then at every tick, until its context ends.
func TestRun(t *testing.T) {
	e := newEnv(t, true)
	clk := &clock{now: time.Now().UTC().Truncate(time.Second)}
	src := &source{certs: []certwatch.Cert{{OrganizationID: "acme", ConnectionID: "idp", Cert: newCert(t, "idp.example", clk.Now().Add(5*day))}},
		err: errors.New("connection acme/other: unavailable")}
	w := e.watcher(t, src, clk)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() {
		w.Run(ctx, 50*time.Millisecond)
		close(done)
	}()
	deadline := time.Now().Add(10 * time.Second)
	for src.callCount() < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("Run checked %d times in 10s, want at least 3", src.callCount())
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after its context ended")
	}
	if got := e.alerts(t); len(got) != 1 {
		t.Errorf("%d alerts, want 1", len(got))
	}
}

func TestNewRefusesBadConfig(t *testing.T) {
	e := newEnv(t, false)
	tests := []struct {
		name string
		cfg  certwatch.Config
	}{
		{"replicas", certwatch.Config{Replicas: 2}},
		{"bucket", certwatch.Config{Bucket: "cert.alerts"}},
		{"TTL shorter than the steps", certwatch.Config{TTL: 7 * day}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := certwatch.New(&source{}, e.js, tt.cfg); err == nil {
				t.Error("got no error")
			}
		})
	}
}
