package simplesamlphp_test

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	noopmetric "go.opentelemetry.io/otel/metric/noop"
	nooptrace "go.opentelemetry.io/otel/trace/noop"

	"github.com/jitprov/jitprov/internal/bus"
	"github.com/jitprov/jitprov/internal/edge"
	"github.com/jitprov/jitprov/internal/edge/session"
	"github.com/jitprov/jitprov/internal/provisioner"
	"github.com/jitprov/jitprov/internal/store"
	"github.com/jitprov/jitprov/internal/store/postgres"
	"github.com/jitprov/jitprov/internal/testenv"
)

// world is jitprov as it runs in production, in this test process: a fresh
// PostgreSQL database (migrated, organisations applied), an embedded NATS
// server with JetStream, a provisioner and sso-edge (edge.Run, as
// cmd/sso-edge runs it) on a loopback port.
type world struct {
	store   *postgres.Store
	edgeURL string // http://127.0.0.1:port, the edge's public URL
	// logs are the logs of the edge and the provisioner, also shown
	// through t.Log.
	logs *testenv.Output
}

// newWorld starts jitprov with orgs and conns applied, and returns once the
// edge is ready.
func newWorld(t *testing.T, orgs []store.Organization, conns []store.Connection) *world {
	t.Helper()
	ctx := t.Context()
	s, _ := testenv.Store(t)
	if err := s.ApplyOrganizations(ctx, orgs, conns); err != nil {
		t.Fatalf("apply the organisations: %v", err)
	}
	ns := testenv.NATS(t)
	logs := &testenv.Output{}
	log := slog.New(slog.NewMultiHandler(testenv.Logger(t).Handler(), logs.Logger().Handler()))

	// The provisioner, as cmd/provisioner runs it.
	pctx, stopProvisioner := context.WithCancel(context.Background())
	provDone := make(chan error, 1)
	nc := testenv.Connect(t, ns)
	go func() {
		provDone <- provisioner.Run(pctx, provisioner.Config{Workers: 4, Topology: bus.DefaultTopology()},
			provisioner.Deps{Store: s, NATS: nc, Logger: log,
				Tracer: nooptrace.NewTracerProvider(), Meter: noopmetric.NewMeterProvider()})
	}()
	t.Cleanup(func() {
		stopProvisioner()
		if err := <-provDone; err != nil {
			t.Errorf("provisioner.Run: %v", err)
		}
	})
	// Its consumer exists before the first login is published.
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(t, time.Minute, "the provisioner's consumer", func() bool {
		_, err := js.Consumer(ctx, bus.StreamLogins, bus.ConsumerProvisioner)
		return err == nil
	})

	// sso-edge, with an SP key pair (for signed AuthnRequests and
	// encrypted assertions) and session keys generated now.
	spKey, spCert := newKeyPair(t, "jitprov sso-edge interop SP")
	secret := make([]byte, 32)
	if _, err := rand.Read(secret); err != nil {
		t.Fatal(err)
	}
	keys, err := session.NewKeys(secret)
	if err != nil {
		t.Fatal(err)
	}
	sessions, err := session.NewManager(keys, session.Options{Insecure: true})
	if err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	public, _ := url.Parse("http://" + addr)
	ectx, stopEdge := context.WithCancel(context.Background())
	stopped, finished := make(chan error, 1), make(chan struct{})
	var edgeErr error
	go func() {
		defer close(finished)
		edgeErr = edge.Run(ectx, edge.Config{
			Addr: addr, PublicURL: *public,
			SPKeyPair:         &tls.Certificate{Certificate: [][]byte{spCert.Raw}, PrivateKey: spKey, Leaf: spCert},
			ProvisionTimeout:  30 * time.Second, // a busy machine still answers at once, not with the waiting page
			CertCheckInterval: -1,
		}, edge.Deps{Store: s, NATS: testenv.Connect(t, ns), Sessions: sessions, Logger: log, Tracer: nooptrace.NewTracerProvider()})
		stopped <- edgeErr
	}()
	t.Cleanup(func() {
		stopEdge()
		<-finished
		if edgeErr != nil {
			t.Errorf("edge.Run: %v", edgeErr)
		}
	})
	w := &world{store: s, edgeURL: public.String(), logs: logs}
	testenv.WaitHTTP(t, w.edgeURL+"/readyz", http.StatusOK, "ready", time.Minute, stopped)
	return w
}

// samlSettings are a SAML connection's settings as the organisations file
// would hold them, for an IdP whose metadata is at metadataURL.
type samlSettings struct {
	SPEntityID             string              `json:"sp_entity_id"`
	IDPMetadataURL         string              `json:"idp_metadata_url"`
	AllowIDPInitiated      bool                `json:"allow_idp_initiated"`
	RequireSignedAssertion bool                `json:"require_signed_assertion"`
	EmailVerified          bool                `json:"email_verified"`
	Attributes             map[string]string   `json:"attributes"`
	GroupRoles             []map[string]string `json:"group_roles,omitempty"`
}

func (s samlSettings) json(t testing.TB) []byte {
	t.Helper()
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
