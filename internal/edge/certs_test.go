package edge_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/xml"
	"log/slog"
	"math/big"
	"net/http"
	"net/url"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/crewjam/saml"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	nooptrace "go.opentelemetry.io/otel/trace/noop"

	"github.com/jitprov/jitprov/events"
	"github.com/jitprov/jitprov/internal/bus"
	"github.com/jitprov/jitprov/internal/edge"
	"github.com/jitprov/jitprov/internal/edge/certwatch"
	"github.com/jitprov/jitprov/internal/edge/session"
	"github.com/jitprov/jitprov/internal/store"
	"github.com/jitprov/jitprov/internal/testenv"
)

// certExpiring is a self-signed certificate valid until now plus left.
func certExpiring(t *testing.T, cn string, left time.Duration) *x509.Certificate {
	t.Helper()
	return certValid(t, cn, -time.Hour, left)
}

// certValid is a certificate valid from now+from to now+to.
func certValid(t *testing.T, cn string, from, to time.Duration) *x509.Certificate {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(from), NotAfter: time.Now().Add(to)}
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

// addSAMLConnection adds organisation initech with one SAML connection,
// okta, whose IdP metadata (the world's IdP's, with other certificates)
// lists signing as a signing and encryption key, and next with no use,
// as an IdP announcing its next certificate does.
func addSAMLConnection(t *testing.T, w *world, signing, next *x509.Certificate) {
	t.Helper()
	idp := *w.idp.idp
	idp.Certificate = signing
	md := idp.Metadata()
	kds := &md.IDPSSODescriptors[0].KeyDescriptors
	*kds = append(*kds, saml.KeyDescriptor{KeyInfo: saml.KeyInfo{X509Data: saml.X509Data{
		X509Certificates: []saml.X509Certificate{{Data: base64.StdEncoding.EncodeToString(next.Raw)}}}}})
	raw, err := xml.Marshal(md)
	if err != nil {
		t.Fatal(err)
	}
	settings, _ := json.Marshal(map[string]any{
		"idp_metadata_xml": string(raw),
		"sp_entity_id":     "https://sso.initech.example/saml/initech/okta",
		"attributes":       map[string]string{"email": "email"},
	})
	err = w.store.ApplyOrganizations(context.Background(), []store.Organization{{
		ID: "initech", Name: "Initech", MaxSeats: 5, Roles: []string{"member", "admin"}, DefaultRole: "member",
		JITRoleCeiling: "member", UpdatePolicy: store.PreferIdP, LinkByEmail: store.LinkNever,
	}}, []store.Connection{{OrganizationID: "initech", ID: "okta", Protocol: "saml", Settings: settings}})
	if err != nil {
		t.Fatal(err)
	}
}

func edgeDeps(t *testing.T, w *world) edge.Deps {
	t.Helper()
	keys, err := session.NewKeys(make([]byte, 32)) // TEST KEY: all zeros
	if err != nil {
		t.Fatal(err)
	}
	sessions, err := session.NewManager(keys, session.Options{Insecure: true})
	if err != nil {
		t.Fatal(err)
	}
	return edge.Deps{Store: w.store, NATS: testenv.Connect(t, w.ns), Sessions: sessions,
		Logger: w.log, Tracer: nooptrace.NewTracerProvider()}
}

func spKeyPair(t *testing.T) *tls.Certificate {
	key, cert := newKeyPair(t, "test-sp")
	return &tls.Certificate{Certificate: [][]byte{cert.Raw}, PrivateKey: key, Leaf: cert}
}

// The edge's source lists the signing certificates of every SAML
// connection in the store — loaded or not since the start — each once.
func TestCertificatesOfEveryConnection(t *testing.T) {
	day := 24 * time.Hour
	for _, tc := range []struct {
		name      string
		nextFrom  time.Duration
		wantFirst bool // the expiring certificate is listed
	}{
		{"successor not valid yet: both listed", 10 * day, true},
		{"successor valid already: a rollover, the old one is not", -time.Hour, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t, 10, false)
			signing, next := certExpiring(t, "okta-2025", 5*day), certValid(t, "okta-2026", tc.nextFrom, 400*day)
			addSAMLConnection(t, w, signing, next)
			public, _ := url.Parse("https://sso.example.com")
			s, _, err := edge.New(context.Background(), edge.Config{PublicURL: *public, SPKeyPair: spKeyPair(t)}, edgeDeps(t, w))
			if err != nil {
				t.Fatal(err)
			}
			// Nobody has signed in since the start: the check still sees it.
			all, err := s.Certificates(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, c := range all {
				if c.OrganizationID == "initech" { // the world has SAML connections of its own
					if c.ConnectionID != "okta" {
						t.Errorf("certificate of connection %q", c.ConnectionID)
					}
					got = append(got, c.Cert.Subject.CommonName)
				}
			}
			want := []string{"okta-2026"}
			if tc.wantFirst {
				want = []string{"okta-2025", "okta-2026"}
			}
			if !slices.Equal(got, want) {
				t.Errorf("listed %v, want %v", got, want)
			}
		})
	}
}

// End to end through edge.Run: a SAML connection whose IdP metadata
// carries a certificate expiring in 5 days gets one 7-day warning on
// ALERTS, however many checks run.
func TestRunWarnsOfAnExpiringIdPCertificate(t *testing.T) {
	var checks atomic.Int64 // certificate checks done, as the watcher logs them
	log := slog.New(countingHandler{Handler: testenv.Logger(t).Handler(), msg: "IdP certificate check done", n: &checks})
	w := newWorld(t, 10, false, withLogger(log))
	signing := certExpiring(t, "okta-2025", 5*24*time.Hour)
	addSAMLConnection(t, w, signing, certValid(t, "okta-2026", 10*24*time.Hour, 400*24*time.Hour))
	js, err := jetstream.New(testenv.Connect(t, w.ns))
	if err != nil {
		t.Fatal(err)
	}
	if err := bus.Ensure(t.Context(), js, bus.DefaultTopology()); err != nil {
		t.Fatal(err)
	}

	runEdge(t, edge.Config{SPKeyPair: spKeyPair(t), CertCheckInterval: 100 * time.Millisecond}, edgeDeps(t, w))
	// The check finds the connection without anyone signing in through it.
	c, err := js.OrderedConsumer(t.Context(), bus.StreamAlerts, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{"jit.alert.idp-certificate.expiring.initech"}})
	if err != nil {
		t.Fatal(err)
	}
	m, err := c.Next(jetstream.FetchMaxWait(15 * time.Second))
	if err != nil {
		t.Fatalf("no idp-certificate.expiring event: %v", err)
	}
	ev, err := events.Decode(&nats.Msg{Subject: m.Subject(), Header: m.Headers(), Data: m.Data()})
	if err != nil {
		t.Fatal(err)
	}
	d, err := events.DataAs[events.IdPCertificateExpiring](ev, events.TypeIdPCertificateExpiring)
	if err != nil {
		t.Fatal(err)
	}
	if m.Subject() != "jit.alert.idp-certificate.expiring.initech" || d.OrganizationID != "initech" || d.ConnectionID != "okta" ||
		d.ThresholdDays != 7 || d.DaysLeft != 4 || d.Expired || d.FingerprintSHA256 != certwatch.Fingerprint(signing) ||
		d.Subject != "CN=okta-2025" || !d.NotAfter.Equal(signing.NotAfter) {
		t.Errorf("got %s %+v; want initech/okta's certificate okta-2025 at step 7, 4 whole days left", m.Subject(), d)
	}
	// Checks go on every 100ms; none warns again. A check publishes its
	// warnings before it is done: three more checks done, a second
	// warning would be in the stream.
	after := checks.Load()
	waitUntil(t, func() bool { return checks.Load() >= after+3 })
	st, err := js.Stream(t.Context(), bus.StreamAlerts)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(t.Context(), jetstream.WithSubjectFilter(m.Subject()))
	if err != nil {
		t.Fatal(err)
	}
	if n := info.State.Subjects[m.Subject()]; n != 1 {
		t.Errorf("%d warnings after %d checks, want 1", n, checks.Load())
	}
}

// countingHandler passes records on to Handler and counts those whose
// message is msg.
type countingHandler struct {
	slog.Handler
	msg string
	n   *atomic.Int64
}

func (h countingHandler) Handle(ctx context.Context, r slog.Record) error {
	if r.Message == h.msg {
		h.n.Add(1)
	}
	return h.Handler.Handle(ctx, r)
}

func (h countingHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return countingHandler{Handler: h.Handler.WithAttrs(attrs), msg: h.msg, n: h.n}
}

func (h countingHandler) WithGroup(name string) slog.Handler {
	return countingHandler{Handler: h.Handler.WithGroup(name), msg: h.msg, n: h.n}
}

func get(t *testing.T, u string) {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d", u, resp.StatusCode)
	}
}
