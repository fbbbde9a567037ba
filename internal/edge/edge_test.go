package edge_test

import (
	"cmp"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"log/slog"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/crewjam/saml"
	"github.com/google/uuid"
	dsig "github.com/russellhaering/goxmldsig"
	"go.opentelemetry.io/otel/metric"
	noopmetric "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/trace"
	nooptrace "go.opentelemetry.io/otel/trace/noop"

	"github.com/jitprov/jitprov/events"
	"github.com/jitprov/jitprov/internal/admin"
	"github.com/jitprov/jitprov/internal/bus"
	"github.com/jitprov/jitprov/internal/edge"
	"github.com/jitprov/jitprov/internal/edge/session"
	"github.com/jitprov/jitprov/internal/known"
	"github.com/jitprov/jitprov/internal/provisioner"
	"github.com/jitprov/jitprov/internal/store"
	"github.com/jitprov/jitprov/internal/store/postgres"
	"github.com/jitprov/jitprov/internal/testenv"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// world is one test's (or benchmark's) deployment: Postgres, NATS, a
// provisioner, a SAML IdP (crewjam/saml's, keys generated now) and
// sso-edge.
type world struct {
	tb    testing.TB
	log   *slog.Logger // of Postgres, the provisioner and every edge
	store *postgres.Store
	nats  *testenv.Cluster // one node, which a test may restart
	ns    *server.Server   // its server (until a restart)
	idp   *testIdP
	// provisionTimeout is how long the edge waits for an answer before the
	// waiting page (5s unless a test sets it).
	provisionTimeout time.Duration
	// edgeConfig, when set, changes the edges' configuration.
	edgeConfig func(*edge.Config)
	// sessions, when set, is the edges' cookie clock.
	sessionClock func() time.Time
	// tracer, when set, traces the edges' requests and the provisioner's
	// decisions (default: no-op).
	tracer trace.TracerProvider
	// samlSettings, when set, changes the settings of the SAML
	// connections before they are applied.
	samlSettings func(map[string]any)
	edgeURL      string
	stopProv     context.CancelFunc
	provDone     chan error
	// edgeMeter and provMeter, when set, record the edges' and the
	// provisioner's metrics (default: no-op); provHealth, when set, is the
	// provisioner's health listener, serving provMetrics at /metrics.
	edgeMeter, provMeter metric.MeterProvider
	provHealth           string
	provMetrics          http.Handler
	// server is the edge startEdge started last.
	server *edge.Server
}

// withMetrics records the edges' metrics with edgeMeter and the
// provisioner's with provMeter, whose /metrics (provMetrics) the
// provisioner serves on its health listener at provHealth.
func withMetrics(edgeMeter, provMeter metric.MeterProvider, provHealth string, provMetrics http.Handler) worldOption {
	return func(w *world) {
		w.edgeMeter, w.provMeter, w.provHealth, w.provMetrics = edgeMeter, provMeter, provHealth, provMetrics
	}
}

// worldOption changes how newWorld assembles a world.
type worldOption func(*world)

// withProvisionTimeout sets how long the edge waits for the provisioner's
// answer before it shows the waiting page.
func withProvisionTimeout(d time.Duration) worldOption {
	return func(w *world) { w.provisionTimeout = d }
}

// withEdgeConfig changes the configuration of the world's edges.
// withSAMLSettings changes the settings of the world's SAML connections
// (acme/idp and acme/idp-init).
func withSAMLSettings(change func(map[string]any)) worldOption {
	return func(w *world) { w.samlSettings = change }
}

func withEdgeConfig(change func(*edge.Config)) worldOption {
	return func(w *world) { w.edgeConfig = change }
}

// withSessionClock runs the edges' cookies and waiting pages on now.
func withSessionClock(now func() time.Time) worldOption {
	return func(w *world) { w.sessionClock = now }
}

// withTracer traces the edges' requests and the provisioner's decisions
// with tp, so that their logs and pages carry trace ids.
func withTracer(tp trace.TracerProvider) worldOption {
	return func(w *world) { w.tracer = tp }
}

// withLogger sends the logs of the world's parts to log instead of
// through t.Log (testenv.Logger, the default).
func withLogger(log *slog.Logger) worldOption {
	return func(w *world) { w.log = log }
}

type testIdP struct {
	idp *saml.IdentityProvider
	srv *httptest.Server

	mu   sync.Mutex
	next *saml.Session // who signs in next
	// nameIDFor, when set, turns the person's NameID into the one this
	// IdP sends the SP of the given entity id (a pairwise persistent id).
	nameIDFor func(spEntityID, nameID string) string
}

func (p *testIdP) GetSession(w http.ResponseWriter, r *http.Request, req *saml.IdpAuthnRequest) *saml.Session {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := *p.next
	if p.nameIDFor != nil {
		s.NameID = p.nameIDFor(req.ServiceProviderMetadata.EntityID, s.NameID)
	}
	s.ID, s.CreateTime, s.ExpireTime, s.Index = fmt.Sprint(time.Now().UnixNano()), time.Now(), time.Now().Add(time.Hour), "idx"
	return &s
}

func (p *testIdP) signsIn(s saml.Session) {
	p.mu.Lock()
	p.next = &s
	p.mu.Unlock()
}

// GetServiceProvider fetches the SP's metadata from sso-edge, as an IdP
// configured with the metadata URL does (testenv.SPMetadataURL says where).
type spByMetadataURL struct{}

func (spByMetadataURL) GetServiceProvider(r *http.Request, id string) (*saml.EntityDescriptor, error) {
	resp, err := http.Get(testenv.SPMetadataURL(r, id))
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var md saml.EntityDescriptor
	if err := xml.NewDecoder(resp.Body).Decode(&md); err != nil {
		return nil, err
	}
	return &md, nil
}

func newKeyPair(tb testing.TB, cn string) (*rsa.PrivateKey, *x509.Certificate) {
	tb.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		tb.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		tb.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		tb.Fatal(err)
	}
	return key, cert
}

func newIdP(tb testing.TB) *testIdP {
	key, cert := newKeyPair(tb, "test-idp")
	p := &testIdP{}
	p.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if sp := r.URL.Query().Get("idp_initiated_for"); sp != "" {
			p.idp.ServeIDPInitiated(w, r, sp, r.URL.Query().Get("relay_state"))
			return
		}
		p.idp.ServeSSO(w, r)
	}))
	tb.Cleanup(p.srv.Close)
	base, _ := url.Parse(p.srv.URL)
	p.idp = &saml.IdentityProvider{
		Key: key, Certificate: cert, SignatureMethod: dsig.RSASHA256SignatureMethod,
		MetadataURL: *base.JoinPath("metadata"), SSOURL: *base.JoinPath("sso"),
		ServiceProviderProvider: spByMetadataURL{}, SessionProvider: p,
	}
	return p
}

func (p *testIdP) metadataXML(tb testing.TB) string {
	out, err := xml.Marshal(p.idp.Metadata())
	if err != nil {
		tb.Fatal(err)
	}
	return string(out)
}

func newWorld(tb testing.TB, seats int, startProvisioner bool, opts ...worldOption) *world {
	tb.Helper()
	w := &world{tb: tb}
	for _, o := range opts {
		o(w)
	}
	if w.log == nil {
		w.log = testenv.Logger(tb)
	}
	// testenv.Store, with the world's logger.
	ctx := context.Background()
	s, err := postgres.Open(ctx, testenv.NewDatabase(tb), postgres.Options{MaxConns: 20, Logger: w.log})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(s.Close)
	if _, err := s.Migrate(ctx); err != nil {
		tb.Fatal(err)
	}
	w.nats = testenv.NATSCluster(tb, 1)
	w.store, w.ns, w.idp = s, w.nats.Server(0), newIdP(tb)
	samlSettings := map[string]any{
		"idp_metadata_xml": w.idp.metadataXML(tb),
		"sp_entity_id":     spEntityID("idp"),
		"attributes":       map[string]string{"email": "email", "given_name": "givenName", "groups": "groups"},
		"email_verified":   true,
		"group_roles":      []map[string]string{{"group": "eng-leads", "role": "manager"}},
	}
	if w.samlSettings != nil {
		w.samlSettings(samlSettings)
	}
	settings, _ := json.Marshal(samlSettings)
	var idpInit map[string]any
	_ = json.Unmarshal(settings, &idpInit)
	idpInit["allow_idp_initiated"] = true
	idpInit["sp_entity_id"] = spEntityID("idp-init")
	idpInitSettings, _ := json.Marshal(idpInit)
	err = s.ApplyOrganizations(ctx, []store.Organization{{
		ID: "acme", Name: "Acme", MaxSeats: seats, Roles: []string{"viewer", "member", "manager", "admin"},
		DefaultRole: "member", JITRoleCeiling: "manager", UpdatePolicy: store.PreferIdP, LinkByEmail: store.LinkNever,
		VerifiedDomains: []string{"acme.example"},
	}}, []store.Connection{{OrganizationID: "acme", ID: "idp", Protocol: "saml", Settings: settings},
		{OrganizationID: "acme", ID: "idp-init", Protocol: "saml", Settings: idpInitSettings}})
	if err != nil {
		tb.Fatal(err)
	}
	if startProvisioner {
		w.startProvisioner()
	} else {
		// The edge binds to the known identities the provisioner creates.
		js, err := jetstream.New(w.nats.Connect(tb))
		if err != nil {
			tb.Fatal(err)
		}
		if _, err := known.New(ctx, js, known.Config{}); err != nil {
			tb.Fatal(err)
		}
	}
	w.edgeURL = w.startEdge()
	return w
}

func (w *world) startProvisioner() {
	w.tb.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	nc := w.nats.Connect(w.tb)
	var tp trace.TracerProvider = nooptrace.NewTracerProvider()
	if w.tracer != nil {
		tp = w.tracer
	}
	var mp metric.MeterProvider = noopmetric.NewMeterProvider()
	if w.provMeter != nil {
		mp = w.provMeter
	}
	go func() {
		done <- provisioner.Run(ctx, provisioner.Config{Workers: 4, Topology: bus.DefaultTopology(), HealthAddr: w.provHealth},
			provisioner.Deps{Store: w.store, NATS: nc, Logger: w.log,
				Tracer: tp, Meter: mp, Metrics: w.provMetrics})
	}()
	w.stopProv, w.provDone = cancel, done
	w.tb.Cleanup(w.stopProvisioner)
	// Wait until its consumer and the known identities' bucket exist, so
	// logins are not published into a stream nobody set up and the edge
	// finds the bucket it binds to (the provisioner creates both, in no
	// promised order).
	js, err := jetstream.New(nc)
	if err != nil {
		w.tb.Fatal(err)
	}
	waitUntil(w.tb, func() bool {
		_, err := js.Consumer(context.Background(), bus.StreamLogins, bus.ConsumerProvisioner)
		if err != nil {
			return false
		}
		_, err = js.KeyValue(context.Background(), known.DefaultBucket)
		return err == nil
	})
}

func (w *world) stopProvisioner() {
	if w.stopProv == nil {
		return
	}
	w.stopProv()
	<-w.provDone
	w.stopProv = nil
}

// startEdge serves sso-edge on a test server; several may share the world.
func (w *world) startEdge() string {
	w.tb.Helper()
	var h http.Handler
	srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) { h.ServeHTTP(rw, r) }))
	w.tb.Cleanup(srv.Close)
	public, _ := url.Parse(srv.URL)
	keys, err := session.NewKeys(make([]byte, 32)) // TEST KEY: all zeros
	if err != nil {
		w.tb.Fatal(err)
	}
	sessions, err := session.NewManager(keys, session.Options{Insecure: true, Now: w.sessionClock})
	if err != nil {
		w.tb.Fatal(err)
	}
	key, cert := newKeyPair(w.tb, "test-sp")
	pair := &tls.Certificate{Certificate: [][]byte{cert.Raw}, PrivateKey: key, Leaf: cert}
	cfg := edge.Config{PublicURL: *public, ProvisionTimeout: cmp.Or(w.provisionTimeout, 5*time.Second), SPKeyPair: pair}
	if w.edgeConfig != nil {
		w.edgeConfig(&cfg)
	}
	var tp trace.TracerProvider = nooptrace.NewTracerProvider()
	if w.tracer != nil {
		tp = w.tracer
	}
	s, ready, err := edge.New(context.Background(), cfg,
		edge.Deps{Store: w.store, NATS: w.nats.Connect(w.tb), Sessions: sessions, Logger: w.log, Tracer: tp, Meter: w.edgeMeter})
	if err != nil {
		w.tb.Fatal(err)
	}
	h = s.Handler(ready)
	w.server = s
	return srv.URL
}

// newBrowser is a person's browser: cookies, and no automatic redirects
// so that each hop can be checked.
func newBrowser(tb testing.TB) *testenv.Browser {
	tb.Helper()
	return testenv.NewBrowser(tb, testenv.MaxRedirects(0))
}

// login runs an SP-initiated login at edgeURL in b: start, IdP, back to
// the ACS. It returns the ACS response and the form the IdP posted.
func login(tb testing.TB, b *testenv.Browser, edgeURL, returnTo string) (*testenv.Page, url.Values) {
	tb.Helper()
	action, form := startLogin(tb, b, edgeURL, returnTo)
	return b.Post(action, form), form
}

// startLogin runs an SP-initiated login at edgeURL in b up to the IdP's
// answer: the ACS URL and the response form the browser is to post there.
func startLogin(tb testing.TB, b *testenv.Browser, edgeURL, returnTo string) (string, url.Values) {
	tb.Helper()
	start := b.Get(edgeURL + "/saml/acme/idp/login?return_to=" + url.QueryEscape(returnTo))
	if start.Status != http.StatusFound {
		tb.Fatalf("login start: status %d, want 302 to the IdP", start.Status)
	}
	idp, err := start.URL.Parse(start.Header.Get("Location"))
	if err != nil {
		tb.Fatalf("login start: Location %q: %v", start.Header.Get("Location"), err)
	}
	return responseForm(tb, b.Get(idp.String()))
}

// responseForm is the IdP's response form on page p: the ACS URL it posts
// to and its fields.
func responseForm(tb testing.TB, p *testenv.Page) (string, url.Values) {
	tb.Helper()
	forms := p.Forms()
	if len(forms) == 0 || forms[0].Fields.Get("SAMLResponse") == "" {
		tb.Fatalf("the IdP did not answer with a response form: %d %s", p.Status, p.Body)
	}
	return forms[0].Action, forms[0].Fields
}

// verify asks the edge at edgeURL, with b's cookies, who is signed in: the
// answer and the user id it names.
func verify(tb testing.TB, b *testenv.Browser, edgeURL string) (*testenv.Page, string) {
	tb.Helper()
	p := b.Get(edgeURL + "/auth/verify")
	return p, p.Header.Get("X-Jitprov-User-Id")
}

// refreshTarget is where the page's meta refresh sends the browser, or ""
// without one.
func refreshTarget(p *testenv.Page) string {
	for _, m := range p.Elements("meta") {
		if strings.EqualFold(testenv.Attr(m, "http-equiv"), "refresh") {
			if _, target, ok := strings.Cut(testenv.Attr(m, "content"), "url="); ok {
				return target
			}
		}
	}
	return ""
}

func person(id, email string, groups ...string) saml.Session {
	return saml.Session{NameID: id, NameIDFormat: string(saml.PersistentNameIDFormat), CustomAttributes: []saml.Attribute{
		{Name: "email", Values: []saml.AttributeValue{{Type: "xs:string", Value: email}}},
		{Name: "givenName", Values: []saml.AttributeValue{{Type: "xs:string", Value: "Given"}}},
		{Name: "groups", Values: values(groups)},
	}}
}

func values(vs []string) []saml.AttributeValue {
	out := []saml.AttributeValue{}
	for _, v := range vs {
		out = append(out, saml.AttributeValue{Type: "xs:string", Value: v})
	}
	return out
}

// waitUntil polls cond until it holds, for at most 20s.
func waitUntil(tb testing.TB, cond func() bool) {
	tb.Helper()
	waitWithin(tb, 20*time.Second, cond)
}

func waitWithin(tb testing.TB, limit time.Duration, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("condition not met within %s", limit)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func countUsers(tb testing.TB, s *postgres.Store) int {
	tb.Helper()
	var n int
	if err := s.Pool().QueryRow(context.Background(), `SELECT count(*) FROM users`).Scan(&n); err != nil {
		tb.Fatal(err)
	}
	return n
}

// A first login through the IdP ends with a user in Postgres, a session,
// and /auth/verify naming them; the role follows the group rules.
func TestSPInitiatedFirstLogin(t *testing.T) {
	w := newWorld(t, 10, true)
	w.idp.signsIn(person("00u-alice", "alice@acme.example", "eng-leads"))
	b := newBrowser(t)
	resp, _ := login(t, b, w.edgeURL, "/app/home")
	if resp.Status != http.StatusSeeOther || resp.Header.Get("Location") != "/app/home" {
		t.Fatalf("ACS: status %d location %q body %s, want 303 to /app/home", resp.Status, resp.Header.Get("Location"), resp.Body)
	}
	v, userID := verify(t, b, w.edgeURL)
	if v.Status != http.StatusOK || userID == "" || v.Header.Get("X-Jitprov-Role") != "manager" {
		t.Fatalf("verify: %d user %q role %q, want 200, a user and role manager", v.Status, userID, v.Header.Get("X-Jitprov-Role"))
	}
	var email, ext string
	if err := w.store.Pool().QueryRow(context.Background(), `SELECT u.email, i.external_id FROM users u JOIN identities i ON i.user_id = u.id WHERE u.id = $1`, userID).Scan(&email, &ext); err != nil {
		t.Fatalf("the user named by /auth/verify is not in Postgres: %v", err)
	}
	if email != "alice@acme.example" || ext != "00u-alice" {
		t.Errorf("stored email %q external id %q", email, ext)
	}
	if v, _ := verify(t, newBrowser(t), w.edgeURL); v.Status != http.StatusUnauthorized {
		t.Errorf("verify without a session: %d, want 401", v.Status)
	}
}

// The same SAMLResponse posted again — to this edge or another replica —
// is refused, and provisions nothing more.
func TestReplayedResponseIsRefusedAcrossEdges(t *testing.T) {
	w := newWorld(t, 10, true)
	w.idp.signsIn(person("00u-bob", "bob@acme.example"))
	resp, form := login(t, newBrowser(t), w.edgeURL, "/")
	if resp.Status != http.StatusSeeOther {
		t.Fatalf("first login: %d", resp.Status)
	}
	other := w.startEdge()
	for _, target := range []string{w.edgeURL, other} {
		again := newBrowser(t).Post(target+"/saml/acme/idp/acs", form)
		if again.Status != http.StatusForbidden || !strings.Contains(again.Body, "Sign-in failed") {
			t.Errorf("replay to %s: status %d, want 403 sign-in failed", target, again.Status)
		}
	}
	if n := countUsers(t, w.store); n != 1 {
		t.Errorf("%d users, want 1", n)
	}
}

// An organisation without a free seat shows the seat page.
func TestSeatsExhaustedPage(t *testing.T) {
	w := newWorld(t, 1, true)
	w.idp.signsIn(person("00u-first", "first@acme.example"))
	if resp, _ := login(t, newBrowser(t), w.edgeURL, "/"); resp.Status != http.StatusSeeOther {
		t.Fatalf("first person: %d", resp.Status)
	}
	w.idp.signsIn(person("00u-second", "second@acme.example"))
	resp, _ := login(t, newBrowser(t), w.edgeURL, "/")
	if resp.Status != http.StatusForbidden || !strings.Contains(resp.Body, "No seat available") {
		t.Fatalf("second person: %d %s, want the seat page", resp.Status, resp.Body)
	}
	if n := countUsers(t, w.store); n != 1 {
		t.Errorf("%d users, want 1", n)
	}
	// The organisation's admins are told: a seats.exhausted event naming
	// the person turned away reaches the ALERTS stream.
	js, err := jetstream.New(testenv.Connect(t, w.ns))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := js.OrderedConsumer(ctx, bus.StreamAlerts, jetstream.OrderedConsumerConfig{FilterSubjects: []string{"jit.alert.seats.exhausted.acme"}})
	if err != nil {
		t.Fatal(err)
	}
	m, err := c.Next(jetstream.FetchMaxWait(15 * time.Second))
	if err != nil {
		t.Fatalf("no seats.exhausted event: %v", err)
	}
	ev, err := events.Decode(&nats.Msg{Subject: m.Subject(), Header: m.Headers(), Data: m.Data()})
	if err != nil {
		t.Fatal(err)
	}
	seats, err := events.DataAs[events.SeatsExhausted](ev, events.TypeSeatsExhausted)
	if err != nil || seats.ExternalID != "00u-second" || seats.MaxSeats != 1 {
		t.Errorf("seats.exhausted %+v, %v; want the second person and 1 seat", seats, err)
	}
}

// With NATS gone, a first login gets the outage page, never an error
// dump: the assertion's single use cannot be checked, so it is refused.
func TestPipelineDownShowsOutagePage(t *testing.T) {
	w := newWorld(t, 10, true, withProvisionTimeout(time.Second))
	w.stopProvisioner()
	w.idp.signsIn(person("00u-frank", "frank@acme.example"))
	b := newBrowser(t)
	action, form := startLogin(t, b, w.edgeURL, "/")
	w.nats.Stop(0) // NATS goes away between the IdP and the ACS
	acs := b.Post(action, form)
	if acs.Status != http.StatusServiceUnavailable || !strings.Contains(acs.Body, "Sign-in is unavailable") {
		t.Fatalf("ACS with NATS down: %d %s, want the 503 outage page", acs.Status, acs.Body)
	}
	if strings.Contains(acs.Body, "nats:") || strings.Contains(acs.Body, "goroutine") {
		t.Errorf("the outage page leaks internals: %s", acs.Body)
	}
}

// followWaiting follows a waiting page's continuation until it answers
// something else than the waiting page.
func followWaiting(t *testing.T, b *testenv.Browser, edgeURL, next string) *testenv.Page {
	t.Helper()
	var final *testenv.Page
	waitWithin(t, 60*time.Second, func() bool {
		final = b.Get(edgeURL + next)
		return final.Status != http.StatusAccepted
	})
	return final
}

// loginsDrained waits until every login in LOGINS was acked: the
// provisioner has committed, answered, recorded and acked each.
func (w *world) loginsDrained(t *testing.T) {
	t.Helper()
	js, err := jetstream.New(w.nats.Connect(t))
	if err != nil {
		t.Fatal(err)
	}
	waitUntil(t, func() bool {
		s, err := js.Stream(context.Background(), bus.StreamLogins)
		if err != nil {
			return false
		}
		info, err := s.Info(context.Background())
		return err == nil && info.State.Msgs == 0
	})
}

// The waiting page reads the login's own decision when no known identity
// answers — the record lost with a provisioner that died after its commit,
// NATS away for a moment — so a person whose account exists never waits
// on it.
func TestWaitingPageSignsInFromTheStoredDecision(t *testing.T) {
	w := newWorld(t, 10, true, withProvisionTimeout(300*time.Millisecond))
	w.stopProvisioner()
	w.idp.signsIn(person("00u-gina", "gina@acme.example"))
	b := newBrowser(t)
	resp, _ := login(t, b, w.edgeURL, "/desk")
	if resp.Status != http.StatusAccepted {
		t.Fatalf("login without a provisioner: %d %s, want the waiting page", resp.Status, resp.Body)
	}
	w.startProvisioner()
	w.loginsDrained(t)
	// The decision is made; its known-identity record is lost.
	knownIDs := w.knownIDs(t)
	if err := knownIDs.Delete(context.Background(), "acme", "idp", "00u-gina"); err != nil {
		t.Fatal(err)
	}
	final := b.Get(w.edgeURL + refreshTarget(resp))
	if final.Status != http.StatusSeeOther || final.Header.Get("Location") != "/desk" {
		t.Fatalf("continuation after the decision: %d %s, want 303 to /desk", final.Status, final.Body)
	}
	if v, id := verify(t, b, w.edgeURL); v.Status != http.StatusOK || id == "" {
		t.Errorf("verify after the continuation: %d %q", v.Status, id)
	}
}

// A person suspended after their waiting login was decided gets no
// working session from the waiting page: the stored decision says active,
// but the session's first check reads the store, and their older session,
// already refused, stays refused. (A change that took the stored decision
// for a fresh reading of the user failed this.)
func TestWaitingPageAfterASuspensionGivesNoWorkingSession(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t, 10, true, withProvisionTimeout(300*time.Millisecond), withEdgeConfig(func(c *edge.Config) { c.SessionRecheck = time.Second }))
	w.idp.signsIn(person("00u-hal", "hal@acme.example"))
	old := newBrowser(t)
	if resp, _ := login(t, old, w.edgeURL, "/"); resp.Status != http.StatusSeeOther {
		t.Fatalf("first login: %d %s", resp.Status, resp.Body)
	}
	_, userID := verify(t, old, w.edgeURL)
	knownIDs := w.knownIDs(t)
	// A second login waits (its known record gone, no provisioner), and is
	// decided — active — once a provisioner runs.
	if err := knownIDs.Delete(ctx, "acme", "idp", "00u-hal"); err != nil {
		t.Fatal(err)
	}
	w.stopProvisioner()
	b := newBrowser(t)
	resp, _ := login(t, b, w.edgeURL, "/desk")
	if resp.Status != http.StatusAccepted {
		t.Fatalf("login without a provisioner: %d %s, want the waiting page", resp.Status, resp.Body)
	}
	w.startProvisioner()
	w.loginsDrained(t)
	// Then an admin suspends them; the older session is refused.
	if _, err := admin.New(w.store, w.log).Suspend(ctx, admin.Operator("test"), "acme", userID, "on leave"); err != nil {
		t.Fatal(err)
	}
	// (within the recheck interval: a second)
	waitUntil(t, func() bool { v, _ := verify(t, old, w.edgeURL); return v.Status == http.StatusUnauthorized })
	// The waiting page continues from the stored decision (the known
	// record, rewritten as suspended, is gone again).
	waitUntil(t, func() bool {
		rec, err := knownIDs.Get(ctx, "acme", "idp", "00u-hal")
		return err == nil && rec.Status == store.StatusSuspended
	})
	if err := knownIDs.Delete(ctx, "acme", "idp", "00u-hal"); err != nil {
		t.Fatal(err)
	}
	b.Get(w.edgeURL + refreshTarget(resp))
	if v, _ := verify(t, b, w.edgeURL); v.Status != http.StatusUnauthorized {
		t.Errorf("session from the waiting page after the suspension: %d, want 401", v.Status)
	}
	if v, _ := verify(t, old, w.edgeURL); v.Status != http.StatusUnauthorized {
		t.Errorf("older session after the waiting page's continuation: %d, want 401 still", v.Status)
	}
}

// knownIDs opens the known-identities bucket the world's provisioner
// keeps, as the edge reads it.
func (w *world) knownIDs(t *testing.T) *known.Cache {
	t.Helper()
	js, err := jetstream.New(w.nats.Connect(t))
	if err != nil {
		t.Fatal(err)
	}
	ids, err := known.Open(context.Background(), js, "", 0)
	if err != nil {
		t.Fatal(err)
	}
	return ids
}

// A login decided while its person waits is answered on the waiting page
// whatever the decision: a seat refusal is shown, not waited on forever.
func TestWaitingPageShowsARejection(t *testing.T) {
	w := newWorld(t, 1, true, withProvisionTimeout(300*time.Millisecond))
	w.idp.signsIn(person("00u-first", "first@acme.example"))
	if resp, _ := login(t, newBrowser(t), w.edgeURL, "/"); resp.Status != http.StatusSeeOther {
		t.Fatalf("first login: %d %s", resp.Status, resp.Body)
	}
	w.stopProvisioner()
	w.idp.signsIn(person("00u-second", "second@acme.example"))
	b := newBrowser(t)
	resp, _ := login(t, b, w.edgeURL, "/")
	if resp.Status != http.StatusAccepted {
		t.Fatalf("login without a provisioner: %d %s, want the waiting page", resp.Status, resp.Body)
	}
	w.startProvisioner()
	w.loginsDrained(t)
	final := b.Get(w.edgeURL + refreshTarget(resp))
	if final.Status != http.StatusForbidden || !strings.Contains(final.Body, "No seat available") {
		t.Fatalf("continuation after the rejection: %d %s, want the seats page", final.Status, final.Body)
	}
}

// A returning person with unchanged claims is signed in even while no
// provisioner runs: the known identities answer.
func TestReturningPersonSignsInWithoutProvisioner(t *testing.T) {
	w := newWorld(t, 10, true)
	w.idp.signsIn(person("00u-carol", "carol@acme.example"))
	if resp, _ := login(t, newBrowser(t), w.edgeURL, "/"); resp.Status != http.StatusSeeOther {
		t.Fatalf("first login: %d", resp.Status)
	}
	w.stopProvisioner()
	b := newBrowser(t)
	resp, _ := login(t, b, w.edgeURL, "/again")
	if resp.Status != http.StatusSeeOther || resp.Header.Get("Location") != "/again" {
		t.Fatalf("returning login with the provisioner stopped: %d %s", resp.Status, resp.Body)
	}
	if v, id := verify(t, b, w.edgeURL); v.Status != http.StatusOK || id == "" {
		t.Errorf("verify: %d %q", v.Status, id)
	}
	// The fast path told the pipeline: once a provisioner runs again, the
	// returning login is recorded as the user's last login.
	var before time.Time
	if err := w.store.Pool().QueryRow(context.Background(), `SELECT last_login_at FROM users`).Scan(&before); err != nil {
		t.Fatal(err)
	}
	w.startProvisioner()
	waitUntil(t, func() bool {
		var after time.Time
		_ = w.store.Pool().QueryRow(context.Background(), `SELECT last_login_at FROM users`).Scan(&after)
		return after.After(before)
	})
	w.stopProvisioner()
	// Changed claims need the provisioner: the person waits, and is told so.
	w.idp.signsIn(person("00u-carol", "carol@acme.example", "new-group"))
	waiting := newBrowser(t)
	resp, _ = login(t, waiting, w.edgeURL, "/later")
	if resp.Status != http.StatusAccepted || !strings.Contains(resp.Body, "Setting up your account") {
		t.Fatalf("changed claims without a provisioner: %d %s", resp.Status, resp.Body)
	}
	// The page continues by itself; once a provisioner has decided, the
	// continuation signs the person in where they were going.
	next := refreshTarget(resp)
	if !strings.HasPrefix(next, "/login/continue?t=") || next == "/login/continue?t=" {
		t.Fatalf("the waiting page does not continue by itself: %s", resp.Body)
	}
	// The link signs in only the browser that waited.
	if stolen := newBrowser(t).Get(w.edgeURL + next); stolen.Status != http.StatusForbidden {
		t.Errorf("continuation link from another browser: %d, want 403", stolen.Status)
	}
	w.startProvisioner()
	var final *testenv.Page
	waitUntil(t, func() bool {
		final = waiting.Get(w.edgeURL + next)
		return final.Status != http.StatusAccepted
	})
	if final.Status != http.StatusSeeOther || final.Header.Get("Location") != "/later" {
		t.Fatalf("continuation: %d to %q, want 303 to /later", final.Status, final.Header.Get("Location"))
	}
	if v, id := verify(t, waiting, w.edgeURL); v.Status != http.StatusOK || id == "" {
		t.Errorf("verify after the continuation: %d %q", v.Status, id)
	}
}

// A response nobody asked for is refused while IdP-initiated login is off.
func TestUnsolicitedResponseRefused(t *testing.T) {
	w := newWorld(t, 10, true)
	w.idp.signsIn(person("00u-dave", "dave@acme.example"))
	_, form := login(t, newBrowser(t), w.edgeURL, "/")
	// Another browser, which started no login, posts a response.
	if resp := newBrowser(t).Post(w.edgeURL+"/saml/acme/idp/acs", form); resp.Status != http.StatusForbidden {
		t.Errorf("unsolicited response: %d, want 403", resp.Status)
	}
}

// Home-realm discovery: the email's verified domain picks the connection.
func TestHomeRealmDiscovery(t *testing.T) {
	w := newWorld(t, 10, false)
	b := newBrowser(t)
	tests := []struct {
		email      string
		wantStatus int
		wantIn     string // in Location or body
	}{
		// acme has two SAML connections: the person chooses.
		{"alice@ACME.example", http.StatusOK, `href="/saml/acme/idp-init/login?return_to=%2Fapp"`},
		{"mallory@evil.example", http.StatusNotFound, "Single sign-on is not set up for evil.example"},
		{"not an email", http.StatusBadRequest, "Please enter your work email address"},
	}
	for _, tt := range tests {
		t.Run(tt.email, func(t *testing.T) {
			resp := b.Post(w.edgeURL+"/login", url.Values{"email": {tt.email}, "return_to": {"/app"}})
			got := resp.Header.Get("Location") + resp.Body
			if resp.Status != tt.wantStatus || !strings.Contains(got, tt.wantIn) {
				t.Errorf("got %d %q, want %d containing %q", resp.Status, got, tt.wantStatus, tt.wantIn)
			}
		})
	}
	// An open redirect through return_to is not possible.
	resp := b.Post(w.edgeURL+"/login", url.Values{"email": {"a@acme.example"}, "return_to": {"//evil.example"}})
	// It is dropped: the login lands where the organisation says.
	if !strings.Contains(resp.Body, `href="/saml/acme/idp/login"`) || strings.Contains(resp.Body, "evil") {
		t.Errorf("return_to //evil.example was not dropped: %s", resp.Body)
	}
}

// With a single SAML connection, discovery goes straight to it.
func TestHomeRealmDiscoverySingleConnection(t *testing.T) {
	w := newWorld(t, 10, false)
	if _, err := w.store.Pool().Exec(context.Background(), `DELETE FROM connections WHERE id = 'idp-init'`); err != nil {
		t.Fatal(err)
	}
	resp := newBrowser(t).Post(w.edgeURL+"/login", url.Values{"email": {"alice@acme.example"}, "return_to": {"/app"}})
	if resp.Status != http.StatusSeeOther || resp.Header.Get("Location") != "/saml/acme/idp/login?return_to=%2Fapp" {
		t.Errorf("got %d to %q, want 303 to the connection's login", resp.Status, resp.Header.Get("Location"))
	}
}

// IdP-initiated login works on a connection that allows it (RelayState
// still checked against the allow-list) and is refused on one that does
// not.
func TestIdPInitiatedLogin(t *testing.T) {
	w := newWorld(t, 10, true)
	w.idp.signsIn(person("00u-erin", "erin@acme.example"))
	idpInitiated := func(conn, relayState string) (string, url.Values) {
		t.Helper()
		sp := w.edgeURL + "/saml/acme/" + conn + "/metadata"
		return responseForm(t, testenv.NewBrowser(t).Get(w.idp.srv.URL+"/sso?idp_initiated_for="+url.QueryEscape(sp)+"&relay_state="+url.QueryEscape(relayState)))
	}

	acs, form := idpInitiated("idp-init", "/welcome")
	b := newBrowser(t)
	resp := b.Post(acs, form)
	if resp.Status != http.StatusSeeOther || resp.Header.Get("Location") != "/welcome" {
		t.Fatalf("IdP-initiated login where allowed: %d to %q, want 303 to /welcome", resp.Status, resp.Header.Get("Location"))
	}
	if v, id := verify(t, b, w.edgeURL); v.Status != http.StatusOK || id == "" {
		t.Errorf("verify after IdP-initiated login: %d %q", v.Status, id)
	}

	acs, form = idpInitiated("idp-init", "https://evil.example/steal")
	if loc := newBrowser(t).Post(acs, form).Header.Get("Location"); loc != "/" {
		t.Errorf("RelayState https://evil.example/steal led to %q, want the default /", loc)
	}

	acs, form = idpInitiated("idp", "/")
	if resp := newBrowser(t).Post(acs, form); resp.Status != http.StatusForbidden || !strings.Contains(resp.Body, "Sign-in failed") {
		t.Errorf("IdP-initiated login where not allowed: %d, want 403", resp.Status)
	}
}

// The session's email is the one stored for the user, never one an IdP
// just claimed: an IdP sending another user's email cannot make apps see
// that user, on the slow path or the fast one.
func TestSessionCarriesTheStoredEmail(t *testing.T) {
	w := newWorld(t, 10, true)
	w.idp.signsIn(person("00u-alice", "alice@acme.example"))
	if resp, _ := login(t, newBrowser(t), w.edgeURL, "/"); resp.Status != http.StatusSeeOther {
		t.Fatalf("alice: %d", resp.Status)
	}
	w.idp.signsIn(person("00u-mallory", "mallory@acme.example"))
	if resp, _ := login(t, newBrowser(t), w.edgeURL, "/"); resp.Status != http.StatusSeeOther {
		t.Fatalf("mallory: %d", resp.Status)
	}
	// Mallory's IdP profile now claims alice's email.
	w.idp.signsIn(person("00u-mallory", "alice@acme.example"))
	for i, path := range []string{"slow", "fast"} {
		b := newBrowser(t)
		if resp, _ := login(t, b, w.edgeURL, "/"); resp.Status != http.StatusSeeOther {
			t.Fatalf("%s path login %d: %d", path, i, resp.Status)
		}
		v, _ := verify(t, b, w.edgeURL)
		if got := v.Header.Get("X-Jitprov-Email"); got != "mallory@acme.example" {
			t.Errorf("%s path: /auth/verify says %q, want mallory's stored email", path, got)
		}
		// A stopped provisioner has finished its decisions, recorded in
		// the known identities: the next login can only take the fast path.
		w.stopProvisioner()
	}
}

// A domain verified for two organisations sends nobody anywhere.
func TestHomeRealmDiscoveryRefusesAmbiguousDomain(t *testing.T) {
	w := newWorld(t, 10, false)
	err := w.store.ApplyOrganizations(context.Background(), []store.Organization{{
		ID: "globex", Name: "Globex", MaxSeats: 1, Roles: []string{"member", "admin"}, DefaultRole: "member",
		JITRoleCeiling: "member", UpdatePolicy: store.PreferIdP, LinkByEmail: store.LinkNever,
		VerifiedDomains: []string{"acme.example"},
	}}, []store.Connection{{OrganizationID: "globex", ID: "idp", Protocol: "saml", Settings: []byte(`{}`)}})
	if err != nil {
		t.Fatal(err)
	}
	resp := newBrowser(t).Post(w.edgeURL+"/login", url.Values{"email": {"alice@acme.example"}})
	if resp.Status != http.StatusConflict || strings.Contains(resp.Body, "/saml/") {
		t.Errorf("ambiguous domain: %d %s, want 409 and no way to any IdP", resp.Status, resp.Body)
	}
}

// A login JetStream never confirmed may not be stored: the waiting page
// waits while the edge republishes it, and once that is over and still
// nothing decided it, asks the person to sign in again — where a
// confirmed login keeps waiting for its decision.
func TestWaitingPageGivesUpOnAnUnconfirmedLogin(t *testing.T) {
	var mu sync.Mutex
	now := time.Now()
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	w := newWorld(t, 10, true, withSessionClock(clock))
	keys, err := session.NewKeys(make([]byte, 32)) // TEST KEY: the world's
	if err != nil {
		t.Fatal(err)
	}
	sessions, err := session.NewManager(keys, session.Options{Insecure: true, Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	// The tokens the edge would have sealed for two logins nobody decided.
	waiting := func(unconfirmed bool, abandoned ...bool) (*testenv.Browser, string) {
		rec := httptest.NewRecorder()
		tok, err := sessions.SealAwaiting(rec, session.Awaiting{OrganizationID: "acme", ConnectionID: "idp",
			ExternalID: "00u-lost", ClaimsDigest: "digest", ReturnTo: "/home", LoginID: uuid.NewString(), Unconfirmed: unconfirmed,
			Abandoned: len(abandoned) > 0 && abandoned[0]})
		if err != nil {
			t.Fatal(err)
		}
		b := newBrowser(t)
		u, _ := url.Parse(w.edgeURL)
		b.Client().Jar.SetCookies(u, rec.Result().Cookies())
		return b, "/login/continue?t=" + url.QueryEscape(tok)
	}
	unconfirmed, next := waiting(true)
	confirmed, nextConfirmed := waiting(false)
	// One the edge could not even republish (too many at once) is given
	// up at the first look that finds no decision.
	abandoned, nextAbandoned := waiting(true, true)
	if p := abandoned.Get(w.edgeURL + nextAbandoned); p.Status != http.StatusServiceUnavailable || !strings.Contains(p.Body, "Sign-in did not complete") {
		t.Errorf("abandoned unconfirmed login: %d %s, want \"Sign-in did not complete\" at once", p.Status, p.Body)
	}
	for _, p := range []*testenv.Page{unconfirmed.Get(w.edgeURL + next), confirmed.Get(w.edgeURL + nextConfirmed)} {
		if p.Status != http.StatusAccepted {
			t.Fatalf("continuation at first: %d %s, want the waiting page", p.Status, p.Body)
		}
	}
	mu.Lock()
	now = now.Add(3 * time.Minute) // past the 2 minutes of republishing and the grace after
	mu.Unlock()
	p := unconfirmed.Get(w.edgeURL + next)
	if p.Status != http.StatusServiceUnavailable || !strings.Contains(p.Body, "Sign-in did not complete") || p.Link("Sign in again") != w.edgeURL+"/home" {
		t.Errorf("unconfirmed login 3 minutes on: %d %s, want \"Sign-in did not complete\" with a link back to /home", p.Status, p.Body)
	}
	if p := confirmed.Get(w.edgeURL + nextConfirmed); p.Status != http.StatusAccepted {
		t.Errorf("confirmed login 3 minutes on: %d %s, want it still waiting for its decision", p.Status, p.Body)
	}
}

// A waiting page left open while the same person signed in again with
// other claims (a new email, groups, a role) does not sign them in with
// the older, superseded decision: they are asked to start again.
func TestWaitingPageRefusesASupersededDecision(t *testing.T) {
	w := newWorld(t, 10, true, withProvisionTimeout(300*time.Millisecond))
	w.stopProvisioner()
	w.idp.signsIn(person("00u-hal", "hal@acme.example"))
	first := newBrowser(t)
	resp, _ := login(t, first, w.edgeURL, "/")
	if resp.Status != http.StatusAccepted {
		t.Fatalf("first login without a provisioner: %d, want the waiting page", resp.Status)
	}
	w.startProvisioner()
	w.loginsDrained(t)
	// The same person again, now in another group: decided afresh.
	w.idp.signsIn(person("00u-hal", "hal@acme.example", "eng-leads"))
	if again, _ := login(t, newBrowser(t), w.edgeURL, "/"); again.Status != http.StatusSeeOther {
		t.Fatalf("second login: %d %s", again.Status, again.Body)
	}
	// Its answer comes before its known-identity record: wait for the ack,
	// which follows the record.
	w.loginsDrained(t)
	p := first.Get(w.edgeURL + refreshTarget(resp))
	if p.Status != http.StatusForbidden || !strings.Contains(p.Body, "Sign-in failed") {
		t.Errorf("the first login's waiting page after a newer decision: %d %s, want \"Sign-in failed\" (start again)", p.Status, p.Body)
	}
}

// A person an admin suspends is never signed in again from the fast path:
// their known identity was fresh (a second login took the fast path,
// without a provisioner), the suspension rewrites it, and the next login
// is decided and refused with the suspended page. Reactivated, they sign
// in again, and their next login is fast again. Deprovisioned, they are
// refused with the page that says their account was removed.
func TestSuspendedOrRemovedPersonIsRefusedAfterTheFastPath(t *testing.T) {
	w := newWorld(t, 10, true)
	ctx := context.Background()
	w.idp.signsIn(person("00u-sam", "sam@acme.example"))
	b := newBrowser(t)
	if resp, _ := login(t, b, w.edgeURL, "/"); resp.Status != http.StatusSeeOther {
		t.Fatalf("first login: %d %s", resp.Status, resp.Body)
	}
	_, userID := verify(t, b, w.edgeURL)
	knownIDs := w.knownIDs(t)
	record := func() known.Record {
		t.Helper()
		rec, err := knownIDs.Get(ctx, "acme", "idp", "00u-sam")
		if err != nil {
			t.Fatalf("known identity of sam: %v", err)
		}
		return rec
	}
	// The returning login takes the fast path: it needs no provisioner.
	w.stopProvisioner()
	if resp, _ := login(t, newBrowser(t), w.edgeURL, "/fast"); resp.Status != http.StatusSeeOther || resp.Header.Get("Location") != "/fast" {
		t.Fatalf("returning login without a provisioner: %d %s", resp.Status, resp.Body)
	}
	w.startProvisioner()
	if rec := record(); rec.Status != store.StatusActive || rec.ClaimsDigest == "" || rec.UserID != userID {
		t.Fatalf("before the suspension the record is not fresh: %+v", rec)
	}

	core := admin.New(w.store, w.log)
	if _, err := core.Suspend(ctx, admin.Operator("test"), "acme", userID, "on leave"); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, func() bool { return record().Status == store.StatusSuspended })
	for i := range 2 { // the refusal is not recorded as a fresh record either
		resp, _ := login(t, newBrowser(t), w.edgeURL, "/")
		if resp.Status != http.StatusForbidden || !strings.Contains(resp.Body, "Account suspended") {
			t.Fatalf("login %d after the suspension: %d %s, want the suspended page", i+1, resp.Status, resp.Body)
		}
	}

	if _, err := core.Reactivate(ctx, admin.Operator("test"), "acme", userID, ""); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, func() bool { return record().Status == store.StatusActive })
	back := newBrowser(t)
	if resp, _ := login(t, back, w.edgeURL, "/back"); resp.Status != http.StatusSeeOther || resp.Header.Get("Location") != "/back" {
		t.Fatalf("login after the reactivation: %d %s", resp.Status, resp.Body)
	}
	if _, id := verify(t, back, w.edgeURL); id != userID {
		t.Errorf("after the reactivation signed in as %q, want %q", id, userID)
	}
	waitUntil(t, func() bool { return record().ClaimsDigest != "" })
	w.stopProvisioner()
	if resp, _ := login(t, newBrowser(t), w.edgeURL, "/"); resp.Status != http.StatusSeeOther {
		t.Fatalf("returning login after the reactivation, without a provisioner: %d %s", resp.Status, resp.Body)
	}
	w.startProvisioner()

	// Deprovisioned, they are told their account was removed, not that
	// it is suspended: from the record, and from the provisioner's answer.
	if _, err := core.Deprovision(ctx, admin.Operator("test"), "acme", userID, "left"); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, func() bool { return record().Status == store.StatusDeprovisioned })
	for i := range 2 {
		resp, _ := login(t, newBrowser(t), w.edgeURL, "/")
		if resp.Status != http.StatusForbidden || !strings.Contains(resp.Body, "Account removed") || strings.Contains(resp.Body, "suspended") {
			t.Fatalf("login %d after the deprovisioning: %d %s, want the removed page", i+1, resp.Status, resp.Body)
		}
	}
}

// A session already issued stops working once its user is suspended or
// deprovisioned, and carries the role an admin gave since: /auth/verify
// rechecks the user (here at every request; by default every 15s).
func TestSessionFollowsTheUsersStanding(t *testing.T) {
	w := newWorld(t, 10, true, withEdgeConfig(func(c *edge.Config) { c.SessionRecheck = time.Nanosecond }))
	ctx := context.Background()
	w.idp.signsIn(person("00u-kim", "kim@acme.example"))
	b := newBrowser(t)
	if resp, _ := login(t, b, w.edgeURL, "/"); resp.Status != http.StatusSeeOther {
		t.Fatalf("login: %d %s", resp.Status, resp.Body)
	}
	v, userID := verify(t, b, w.edgeURL)
	if v.Status != http.StatusOK || v.Header.Get("X-Jitprov-Role") != "member" {
		t.Fatalf("verify after login: %d role %q", v.Status, v.Header.Get("X-Jitprov-Role"))
	}
	core := admin.New(w.store, w.log)
	if _, err := core.ChangeRole(ctx, admin.Operator("test"), "acme", userID, "manager"); err != nil {
		t.Fatal(err)
	}
	if v, _ := verify(t, b, w.edgeURL); v.Status != http.StatusOK || v.Header.Get("X-Jitprov-Role") != "manager" {
		t.Errorf("verify after a role change: %d role %q, want 200 manager", v.Status, v.Header.Get("X-Jitprov-Role"))
	}
	if _, err := core.Suspend(ctx, admin.Operator("test"), "acme", userID, "on leave"); err != nil {
		t.Fatal(err)
	}
	if v, _ := verify(t, b, w.edgeURL); v.Status != http.StatusUnauthorized {
		t.Errorf("verify of a suspended user's session: %d, want 401", v.Status)
	}
	if _, err := core.Reactivate(ctx, admin.Operator("test"), "acme", userID, ""); err != nil {
		t.Fatal(err)
	}
	if v, _ := verify(t, b, w.edgeURL); v.Status != http.StatusOK {
		t.Errorf("verify after reactivation: %d, want 200", v.Status)
	}
	if _, err := core.Deprovision(ctx, admin.Operator("test"), "acme", userID, "left"); err != nil {
		t.Fatal(err)
	}
	if v, _ := verify(t, b, w.edgeURL); v.Status != http.StatusUnauthorized {
		t.Errorf("verify of a deprovisioned user's session: %d, want 401", v.Status)
	}
}
