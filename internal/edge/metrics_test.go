package edge_test

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"go.opentelemetry.io/otel/metric"
	nooptrace "go.opentelemetry.io/otel/trace/noop"

	"github.com/jitprov/jitprov/internal/admin/authn"
	"github.com/jitprov/jitprov/internal/admin/service"
	"github.com/jitprov/jitprov/internal/edge"
	"github.com/jitprov/jitprov/internal/notify"
	"github.com/jitprov/jitprov/internal/store"
	"github.com/jitprov/jitprov/internal/telemetry"
	"github.com/jitprov/jitprov/internal/testenv"
)

// labelProbe is what the scanner of newMetricsWorld writes into paths,
// forms and methods.
const labelProbe = "xyzprobe"

// freeAddr is a loopback address nothing listens on now.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// promMeter is a meter provider read by Prometheus, as telemetry.Setup
// builds it, and its /metrics handler.
func promMeter(t *testing.T) (metric.MeterProvider, http.Handler) {
	t.Helper()
	mp, h, err := telemetry.NewPrometheusMeter()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
	return mp, h
}

// metricsWorld is the whole pipeline with every service's /metrics: the
// edge (its handler), the provisioner, the notifier and the admin service
// (their health listeners), after these sign-ins into acme (1 seat, an
// admin who holds none): Ada (created), Bob (rejected: no seat, an alert
// mailed to the admin), Ada again (the fast path), Carol IdP-initiated
// through the connection idp-init (rejected) and her response posted
// again (a replay), and a response over acme/idp's rate limit.
type metricsWorld struct {
	w                           *world
	edge, prov, notifier, admin string // /metrics URLs
}

func newMetricsWorld(t *testing.T) *metricsWorld {
	edgeMP, edgeH := promMeter(t)
	provMP, provH := promMeter(t)
	notifyMP, notifyH := promMeter(t)
	_, adminH := promMeter(t)
	provAddr, notifyAddr, adminAddr := freeAddr(t), freeAddr(t), freeAddr(t)
	// Three sign-ins post three responses to acme/idp's ACS; the fourth
	// is over its limit.
	w := newWorld(t, 1, true, withMetrics(edgeMP, provMP, provAddr, provH),
		withEdgeConfig(func(c *edge.Config) { c.RatePerConnection = 3 }))
	edgeSrv := httptest.NewServer(edgeH)
	t.Cleanup(edgeSrv.Close)
	mw := &metricsWorld{w: w, edge: edgeSrv.URL + "/metrics", prov: "http://" + provAddr + "/metrics",
		notifier: "http://" + notifyAddr + "/metrics", admin: "http://" + adminAddr + "/metrics"}

	ctx := t.Context()
	err := w.store.InTx(ctx, func(ctx context.Context, tx store.Tx) error {
		_, err := tx.CreateUser(ctx, store.User{ID: uuid.NewString(), OrganizationID: "acme", Email: "boss@acme.example",
			Role: "admin", Status: store.StatusActive, CreatedBy: store.CreatedByAdmin})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	orgs, err := w.store.Organizations(ctx)
	if err != nil {
		t.Fatal(err)
	}
	settings := notify.DefaultSettings()
	settings.SeatDelay = 100 * time.Millisecond
	dir, err := notify.NewDirectory(orgs, map[string]notify.Settings{"acme": settings}, nil)
	if err != nil {
		t.Fatal(err)
	}
	sink := testenv.SMTP(t)
	nc := w.nats.Connect(t) // closed after the notifier stops (cleanups run last first)
	runCtx, cancel := context.WithCancel(context.Background())
	notifyDone, adminDone := make(chan error, 1), make(chan error, 1)
	go func() {
		notifyDone <- notify.Run(runCtx, notify.Config{HealthAddr: notifyAddr, FlushInterval: 100 * time.Millisecond,
			SMTP: &notify.SMTPConfig{Addr: sink.Addr, TLS: notify.SMTPPlain, From: "jitprov <noreply@jitprov.test>"}},
			notify.Deps{NATS: nc, Admins: w.store, Directory: dir, Logger: w.log,
				Tracer: nooptrace.NewTracerProvider(), Meter: notifyMP, Metrics: notifyH})
	}()
	go func() {
		adminDone <- service.Run(runCtx, service.Config{Addr: "127.0.0.1:0", HealthAddr: adminAddr},
			service.Deps{Store: w.store, Authn: authn.New(authn.Config{Store: w.store}), Logger: w.log, Metrics: adminH})
	}()
	t.Cleanup(func() {
		cancel()
		for what, done := range map[string]chan error{"notifier": notifyDone, "admin": adminDone} {
			if err := <-done; err != nil {
				t.Errorf("%s: %v", what, err)
			}
		}
	})

	ada, bob, again := newBrowser(t), newBrowser(t), newBrowser(t)
	w.idp.signsIn(person("ada", "ada@acme.example"))
	p, adaForm := login(t, ada, w.edgeURL, "/")
	if p.Status != http.StatusSeeOther {
		t.Fatalf("Ada's sign-in: status %d, want 303 (signed in)\n%s", p.Status, p.Body)
	}
	w.idp.signsIn(person("bob", "bob@acme.example"))
	if p, _ := login(t, bob, w.edgeURL, "/"); p.Status != http.StatusForbidden || !strings.Contains(p.Body, "No seat") {
		t.Fatalf("Bob's sign-in: status %d, want 403 (no seat)\n%s", p.Status, p.Body)
	}
	w.idp.signsIn(person("ada", "ada@acme.example"))
	if p, _ := login(t, again, w.edgeURL, "/"); p.Status != http.StatusSeeOther {
		t.Fatalf("Ada's second sign-in: status %d, want 303\n%s", p.Status, p.Body)
	}
	// Carol, IdP-initiated through idp-init, finds no seat; the same
	// response posted again is a replay.
	w.idp.signsIn(person("carol", "carol@acme.example"))
	sp := w.edgeURL + "/saml/acme/idp-init/metadata"
	initACS, initForm := responseForm(t, testenv.NewBrowser(t).Get(w.idp.srv.URL+"/sso?idp_initiated_for="+url.QueryEscape(sp)))
	if p := newBrowser(t).Post(initACS, initForm); p.Status != http.StatusForbidden || !strings.Contains(p.Body, "No seat") {
		t.Fatalf("Carol through idp-init: status %d, want 403 (no seat)\n%s", p.Status, p.Body)
	}
	if p := newBrowser(t).Post(initACS, initForm); p.Status != http.StatusForbidden || !strings.Contains(p.Body, "Sign-in failed") {
		t.Fatalf("Carol's response posted again: status %d, want 403 (replayed)\n%s", p.Status, p.Body)
	}
	if p := newBrowser(t).Post(w.edgeURL+"/saml/acme/idp/acs", adaForm); p.Status != http.StatusTooManyRequests {
		t.Fatalf("the fourth response posted to acme/idp: status %d, want 429", p.Status)
	}
	// A scanner's probes: what they write must never become a label value.
	probe := newBrowser(t)
	probe.Get(w.edgeURL + "/wp-login.php?user=" + labelProbe)
	probe.Post(w.edgeURL+"/saml/"+labelProbe+"/"+labelProbe+"/acs", url.Values{"SAMLResponse": {labelProbe}})
	req, err := http.NewRequest(strings.ToUpper(labelProbe), w.edgeURL+"/login", nil)
	if err != nil {
		t.Fatal(err)
	}
	probe.Do(req)
	// The admin hears that Bob found no seat: a mail, delivered.
	waitUntil(t, func() bool {
		v, _ := testenv.ScrapeMetrics(t, mw.notifier).Value("jitprov_notifier_deliveries_total", "result", "delivered")
		return v >= 1
	})
	// The certificate check, which runs once a day, fills the expiry gauge.
	if _, err := w.server.Certificates(ctx); err != nil {
		t.Fatal(err)
	}
	return mw
}

// Every service serves /metrics, and after the sign-ins each figure says
// what happened: the edge's logins by outcome, the provisioner's seats as
// the store has them, the notifier's delivery.
func TestEveryServiceServesMetricsAfterALogin(t *testing.T) {
	mw := newMetricsWorld(t)
	type want struct {
		name   string
		labels []string
		value  float64
		// min: at least value, not exactly
		min bool
	}
	check := func(t *testing.T, url string, wants []want) {
		t.Helper()
		s := testenv.ScrapeMetrics(t, url)
		for _, w := range wants {
			got, ok := s.Value(w.name, w.labels...)
			switch {
			case !ok:
				t.Errorf("%s: no %s%v in the scrape", url, w.name, w.labels)
			case w.min && got < w.value:
				t.Errorf("%s: %s%v = %v, want at least %v", url, w.name, w.labels, got, w.value)
			case !w.min && got != w.value:
				t.Errorf("%s: %s%v = %v, want %v", url, w.name, w.labels, got, w.value)
			}
		}
	}
	t.Run("edge", func(t *testing.T) {
		check(t, mw.edge, []want{
			{name: "jitprov_edge_logins_total", labels: []string{"protocol", "saml", "outcome", "created", "reason", ""}, value: 1},
			{name: "jitprov_edge_logins_total", labels: []string{"protocol", "saml", "outcome", "rejected", "reason", "seats_exhausted"}, value: 2},
			{name: "jitprov_edge_logins_total", labels: []string{"protocol", "saml", "outcome", "existing", "reason", ""}, value: 1},
			{name: "jitprov_edge_logins_total", labels: []string{"protocol", "saml", "outcome", "invalid", "reason", "replay"}, value: 1},
			{name: "jitprov_edge_validation_failures_total", labels: []string{"protocol", "saml", "reason", "replay"}, value: 1},
			{name: "jitprov_edge_replay_refusals_total", value: 1},
			{name: "jitprov_edge_fast_path_hits_total", labels: []string{"protocol", "saml"}, value: 1},
			{name: "jitprov_edge_rate_limited_total", labels: []string{"limit", "per-connection"}, value: 1},
			{name: "jitprov_edge_provision_waiting", value: 0},
			{name: "jitprov_edge_provision_wait_duration_seconds", labels: []string{"result", "answered"}, value: 3},
			// Seven responses posted to an ACS: four sign-ins, the replay,
			// the one over the limit and the scanner's (404).
			{name: "jitprov_edge_request_duration_seconds", labels: []string{"route", "/saml/{org}/{conn}/acs", "method", "POST"}, value: 7},
			{name: "jitprov_edge_request_duration_seconds", labels: []string{"route", "/saml/{org}/{conn}/acs", "status", "404"}, value: 1},
			{name: "jitprov_edge_request_duration_seconds", labels: []string{"route", "unmatched", "method", "GET"}, value: 1},
			{name: "jitprov_edge_request_duration_seconds", labels: []string{"method", "other"}, value: 1},
			{name: "jitprov_edge_request_duration_seconds", labels: []string{"route", "/saml/{org}/{conn}/acs", "method", "POST", "status", "429"}, value: 1},
		})
		s := testenv.ScrapeMetrics(t, mw.edge)
		for name, f := range s {
			for _, m := range f.GetMetric() {
				for _, l := range m.GetLabel() {
					if v := strings.ToLower(l.GetValue()); strings.Contains(v, labelProbe) || (l.GetName() == "route" && strings.Contains(v, "acme")) {
						t.Errorf("%s{%s=%q}: a label value taken from a request", name, l.GetName(), l.GetValue())
					}
				}
			}
		}
		// The test certificates (IdP and SP) expire a day after they were made.
		for _, kind := range []string{"idp", "sp"} {
			v, ok := s.Value("jitprov_edge_certificate_expiry_seconds", "kind", kind, "jitprov_org", "acme", "jitprov_connection", "idp")
			if !ok || v < 23*3600 || v > 24*3600 {
				t.Errorf("jitprov_edge_certificate_expiry_seconds{kind=%q,acme/idp} = %v (found: %v), want about a day", kind, v, ok)
			}
		}
	})
	t.Run("provisioner", func(t *testing.T) {
		orgs, err := mw.w.store.Organizations(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		i := slices.IndexFunc(orgs, func(o store.Organization) bool { return o.ID == "acme" })
		if i < 0 || orgs[i].SeatsUsed != 1 {
			t.Fatalf("acme in the store: %+v, want 1 seat used", orgs)
		}
		check(t, mw.prov, []want{
			{name: "jitprov_provisioner_decisions_total", labels: []string{"outcome", "created"}, value: 1},
			{name: "jitprov_provisioner_decisions_total", labels: []string{"outcome", "rejected", "reason", "seats_exhausted"}, value: 2},
			{name: "jitprov_provisioner_decision_duration_seconds", value: 3},
			// Three logins, in one to three batches (as they arrived).
			{name: "jitprov_provisioner_batch_logins", value: 1, min: true},
			{name: "jitprov_seats_used", labels: []string{"jitprov_org", "acme"}, value: float64(orgs[i].SeatsUsed)},
			{name: "jitprov_seats_max", labels: []string{"jitprov_org", "acme"}, value: float64(orgs[i].MaxSeats)},
			{name: "jitprov_consumer_pending", labels: []string{"stream", "LOGINS", "consumer", "provisioner"}, value: 0},
			{name: "jitprov_consumer_redelivered", labels: []string{"stream", "LOGINS", "consumer", "provisioner"}, value: 0},
		})
		// The relay publishes every decided event (outbox figures are read
		// at most every 5 s).
		waitUntil(t, func() bool {
			v, ok := testenv.ScrapeMetrics(t, mw.prov).Value("jitprov_outbox_unsent")
			return ok && v == 0
		})
		check(t, mw.prov, []want{{name: "jitprov_outbox_oldest_age_seconds", value: 0}})
	})
	t.Run("notifier", func(t *testing.T) {
		check(t, mw.notifier, []want{
			{name: "jitprov_notifier_alerts_total", labels: []string{"alert", "io.jitprov.seats.exhausted.v1", "result", "planned"}, value: 1, min: true},
			{name: "jitprov_notifier_deliveries_total", labels: []string{"channel", "email", "result", "delivered"}, value: 1, min: true},
			{name: "jitprov_notifier_parked_jobs", value: 0},
			{name: "jitprov_consumer_pending", labels: []string{"stream", "ALERTS", "consumer", "notifier"}, value: 0, min: true},
			{name: "jitprov_consumer_ack_pending", labels: []string{"stream", "NOTIFY", "consumer", "notifier-send"}, value: 0, min: true},
		})
	})
	t.Run("admin", func(t *testing.T) {
		s := testenv.ScrapeMetrics(t, mw.admin)
		for _, name := range []string{"target_info", "go_goroutines", "process_resident_memory_bytes"} {
			if _, ok := s[name]; !ok {
				t.Errorf("the admin service's /metrics lacks %s", name)
			}
		}
	})

	// The docs cannot drift: every metric docs/operations.md lists is in
	// a scrape, with its labels, and every jitprov metric scraped is listed.
	t.Run("docs", func(t *testing.T) {
		all := testenv.Scrape{}
		for _, url := range []string{mw.edge, mw.prov, mw.notifier, mw.admin} {
			for name, f := range testenv.ScrapeMetrics(t, url) {
				if have, ok := all[name]; ok {
					have.Metric = append(have.Metric, f.Metric...)
					continue
				}
				all[name] = f
			}
		}
		// Counters of failures this run does not cause: they appear once
		// they first count.
		onlyOnFailure := map[string]bool{
			"jitprov_provisioner_invalid_events_total":  true,
			"jitprov_provisioner_retries_total":         true,
			"jitprov_notifier_parked_total":             true,
			"jitprov_notifier_duplicates_skipped_total": true,
		}
		documented := map[string]bool{}
		for _, d := range testenv.DocumentedMetrics(t, "../../docs/operations.md") {
			documented[d.Name] = true
			f, ok := all[d.Name]
			switch {
			case !ok && onlyOnFailure[d.Name]:
				continue
			case !ok:
				t.Errorf("docs/operations.md lists %s, which no service's /metrics shows", d.Name)
				continue
			}
			if got := strings.ToLower(f.GetType().String()); got != d.Type {
				t.Errorf("docs/operations.md says %s is a %s; /metrics says %s", d.Name, d.Type, got)
			}
			have := all.Labels(d.Name)
			for _, l := range d.Labels {
				if !have[l] {
					t.Errorf("docs/operations.md gives %s the label %s; /metrics shows %v", d.Name, l, have)
				}
			}
		}
		for name := range all {
			if strings.HasPrefix(name, "jitprov_") && !documented[name] {
				t.Errorf("/metrics shows %s, which docs/operations.md does not list", name)
			}
		}
	})
}

// OIDC logins are counted as SAML's are, under protocol oidc: a first
// login, its callback replayed by the same browser, and the provider's
// redirect carried to another browser.
func TestOIDCLoginsAreCounted(t *testing.T) {
	edgeMP, edgeH := promMeter(t)
	w := newWorld(t, 10, true, withMetrics(edgeMP, nil, "", nil))
	o := addZitadelConnection(t, w)
	b := newBrowser(t)
	callback := oidcStartLogin(t, b, w, o, "/app")
	if resp := b.Get(callback); resp.Status != http.StatusSeeOther {
		t.Fatalf("callback: %d %s, want 303", resp.Status, resp.Body)
	}
	if again := b.Get(callback); again.Status != http.StatusForbidden {
		t.Fatalf("replayed callback: %d, want 403", again.Status)
	}
	if other := newBrowser(t).Get(oidcStartLogin(t, newBrowser(t), w, o, "/app")); other.Status != http.StatusForbidden {
		t.Fatalf("callback in another browser: %d, want 403", other.Status)
	}
	srv := httptest.NewServer(edgeH)
	defer srv.Close()
	s := testenv.ScrapeMetrics(t, srv.URL)
	for _, tc := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"jitprov_edge_logins_total", []string{"protocol", "oidc", "outcome", "created"}, 1},
		{"jitprov_edge_logins_total", []string{"protocol", "oidc", "outcome", "invalid"}, 2},
		// Neither browser sends back a pending-login cookie: the first
		// used it up, the other never had one.
		{"jitprov_edge_validation_failures_total", []string{"protocol", "oidc", "reason", "no_pending_cookie"}, 2},
		{"jitprov_edge_logins_total", []string{"protocol", "saml"}, 0},
		{"jitprov_edge_request_duration_seconds", []string{"route", "/oidc/{org}/{conn}/callback", "method", "GET"}, 3},
	} {
		if got, _ := s.Value(tc.name, tc.labels...); got != tc.want {
			t.Errorf("%s%v = %v, want %v", tc.name, tc.labels, got, tc.want)
		}
	}
}
