//go:build chaos

package chaos

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"gopkg.in/yaml.v3"
)

// orgSpec is one organisation of the scenario: every organisation has one
// SAML connection, "idp", to the suite's IdP.
type orgSpec struct {
	ID    string
	Seats int
}

// defaultOrgs: three organisations that never run out of seats, and one
// that does, so that rejections and seats.exhausted alerts happen.
func defaultOrgs() []orgSpec {
	return []orgSpec{{"alpha", 1_000_000}, {"bravo", 1_000_000}, {"charlie", 1_000_000}, {"small", 25}}
}

// deployment is one scenario's system, every part a real process but the
// IdP: a throwaway Postgres, a 3-node JetStream cluster, provisioners and
// sso-edges, configured as docs/config.md says.
type deployment struct {
	t      *testing.T
	dir    string // logs and generated files
	pg     *pgServer
	nats   *natsCluster
	idp    *idp
	dbURL  string
	orgs   []orgSpec
	key    string // session key, hex
	spKey  string // SP key pair files
	spCert string

	provs []*service
	edges []*service

	nc *nats.Conn // the suite's own connections, for faults and checks
	js jetstream.JetStream
	db *pgxpool.Pool
}

// service is a provisioner or an sso-edge process.
type service struct {
	*proc
	ready string // /readyz URL
	base  string // the edge's public URL; "" for a provisioner
}

type deployOptions struct {
	orgs []orgSpec
	// provisioners and edges to start (and wait for); the scenario may
	// start more itself.
	provisioners, edges int
	// noServices leaves the services to the scenario (start-up races).
	noServices bool
}

// newDeployment builds and starts a fresh system under dir.
func newDeployment(t *testing.T, dir string, o deployOptions) *deployment {
	t.Helper()
	if o.orgs == nil {
		o.orgs = defaultOrgs()
	}
	d := &deployment{t: t, dir: dir, orgs: o.orgs}
	d.pg = newPostgres(t, dir)
	ctx := context.Background()
	if err := d.pg.createDatabase(ctx, "jitprov"); err != nil {
		t.Fatal(err)
	}
	d.dbURL = d.pg.url("jitprov")
	d.nats = newNATSCluster(t, binDir, dir)
	d.idp = newIdP(t)
	d.key = randomHex(t, 32)
	d.spKey, d.spCert = filepath.Join(dir, "sp.key"), filepath.Join(dir, "sp.crt")
	writeKeyPair(t, d.spKey, d.spCert, "chaos-sp")

	orgsFile := filepath.Join(dir, "organizations.yaml")
	d.writeOrganizations(orgsFile)
	env := d.provisionerEnv(0)
	if _, err := runOnce(ctx, 2*time.Minute, filepath.Join(dir, "provisioner-setup.log"), nil, env, filepath.Join(binDir, "provisioner"), "migrate"); err != nil {
		t.Fatal(err)
	}
	if _, err := runOnce(ctx, 2*time.Minute, filepath.Join(dir, "provisioner-setup.log"), nil, env, filepath.Join(binDir, "provisioner"), "apply", "-f", orgsFile); err != nil {
		t.Fatal(err)
	}

	var err error
	if d.db, err = pgxpool.New(ctx, d.dbURL+"&pool_max_conns=4"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.db.Close)
	d.nc, d.js = d.nats.connect(t)

	if o.noServices {
		return d
	}
	for range o.provisioners {
		d.addProvisioner()
	}
	// One first, which creates the streams, then the others: three started
	// together on a fresh cluster is a scenario of its own (startup-races),
	// not every scenario's set-up.
	for _, batch := range [][]*service{d.provs[:min(1, len(d.provs))], d.provs[min(1, len(d.provs)):]} {
		if err := d.startAll(ctx, batch, 90*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	// Edges one at a time too: two started together on a fresh cluster
	// race to create their buckets (startup-races measures it).
	for range o.edges {
		if err := d.startAll(ctx, []*service{d.addEdge(true)}, 90*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	return d
}

func randomHex(t *testing.T, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// writeOrganizations writes the organisations file `provisioner apply`
// reads, with the IdP's metadata inline in every connection.
func (d *deployment) writeOrganizations(path string) {
	d.t.Helper()
	type conn struct {
		ID       string         `yaml:"id"`
		Protocol string         `yaml:"protocol"`
		Settings map[string]any `yaml:"settings"`
	}
	type org struct {
		ID          string `yaml:"id"`
		Name        string `yaml:"name"`
		MaxSeats    int    `yaml:"max_seats"`
		Connections []conn `yaml:"connections"`
	}
	md := d.idp.metadataXML(d.t)
	var orgs []org
	for _, o := range d.orgs {
		orgs = append(orgs, org{ID: o.ID, Name: "Org " + o.ID, MaxSeats: o.Seats, Connections: []conn{{
			ID: "idp", Protocol: "saml", Settings: map[string]any{
				"idp_metadata_xml": md,
				// One entity id, whichever edge serves the login.
				"sp_entity_id":   "https://sso.chaos.example/saml/" + o.ID + "/idp",
				"attributes":     map[string]string{"email": "email", "given_name": "givenName"},
				"email_verified": true,
			},
		}}})
	}
	out, err := yaml.Marshal(map[string]any{"organizations": orgs})
	if err != nil {
		d.t.Fatal(err)
	}
	if err := os.WriteFile(path, out, 0o644); err != nil {
		d.t.Fatal(err)
	}
}

// baseEnv is what every jitprov process gets: nothing inherited from the
// suite's environment (no OTEL_* exporter, no stray JITPROV_*).
func (d *deployment) baseEnv() []string {
	return []string{
		"PATH=/usr/bin:/bin", "HOME=" + d.dir,
		"JITPROV_DATABASE_URL=" + d.dbURL,
		"JITPROV_NATS_URL=" + d.nats.urls(),
		"JITPROV_LOG_FORMAT=json", "JITPROV_LOG_LEVEL=info",
	}
}

func (d *deployment) provisionerEnv(healthPort int) []string {
	env := append(d.baseEnv(), "JITPROV_STREAM_REPLICAS=3")
	if healthPort > 0 {
		env = append(env, "JITPROV_HEALTH_ADDR=127.0.0.1:"+strconv.Itoa(healthPort))
	}
	return env
}

// addProvisioner declares one more provisioner (not started).
func (d *deployment) addProvisioner() *service {
	port := freePort(d.t)
	name := fmt.Sprintf("provisioner-%d", len(d.provs)+1)
	s := &service{proc: &proc{name: name, path: filepath.Join(binDir, "provisioner"), args: []string{"serve"},
		env: d.provisionerEnv(port), logPath: filepath.Join(d.dir, name+".log")},
		ready: fmt.Sprintf("http://127.0.0.1:%d/readyz", port)}
	d.t.Cleanup(s.cleanup)
	d.provs = append(d.provs, s)
	return s
}

// addEdge declares one more sso-edge (not started). withReplicas sets
// JITPROV_STREAM_REPLICAS=3, as a cluster needs; without it the edge runs
// with the default, 1.
func (d *deployment) addEdge(withReplicas bool) *service {
	port := freePort(d.t)
	name := fmt.Sprintf("sso-edge-%d", len(d.edges)+1)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	env := append(d.baseEnv(),
		"JITPROV_EDGE_ADDR=127.0.0.1:"+strconv.Itoa(port),
		"JITPROV_EDGE_PUBLIC_URL="+base,
		"JITPROV_EDGE_INSECURE_COOKIES=true",
		"JITPROV_SESSION_KEYS="+d.key,
		"JITPROV_EDGE_SP_KEY_FILE="+d.spKey,
		"JITPROV_EDGE_SP_CERT_FILE="+d.spCert,
		// Every edge its own metrics listener: two on the default :8084
		// cannot both start.
		"JITPROV_EDGE_METRICS_ADDR=127.0.0.1:"+strconv.Itoa(freePort(d.t)),
	)
	if withReplicas {
		env = append(env, "JITPROV_STREAM_REPLICAS=3")
	}
	s := &service{proc: &proc{name: name, path: filepath.Join(binDir, "sso-edge"), env: env,
		logPath: filepath.Join(d.dir, name+".log")}, ready: base + "/readyz", base: base}
	d.t.Cleanup(s.cleanup)
	d.edges = append(d.edges, s)
	return s
}

// startAll starts the services at the same instant and waits until every
// one is ready.
func (d *deployment) startAll(ctx context.Context, svcs []*service, within time.Duration) error {
	for _, s := range svcs {
		if err := s.start(); err != nil {
			return err
		}
	}
	return waitAllReady(ctx, svcs, within)
}

func waitAllReady(ctx context.Context, svcs []*service, within time.Duration) error {
	var wg sync.WaitGroup
	errs := make([]error, len(svcs))
	for i, s := range svcs {
		wg.Go(func() { errs[i] = s.waitReady(ctx, within) })
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// waitReady polls the service's /readyz until it answers 200, the process
// exits, or within passes.
func (s *service) waitReady(ctx context.Context, within time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, within)
	defer cancel()
	client := &http.Client{Timeout: 3 * time.Second}
	exited := s.exited()
	last := "no answer"
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.ready, nil)
		resp, err := client.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			last = resp.Status
		} else {
			last = err.Error()
		}
		select {
		case <-exited:
			return fmt.Errorf("%s exited before it was ready (log %s): %s", s.name, s.logPath, lastLine(s.logPath))
		case <-ctx.Done():
			return fmt.Errorf("%s not ready within %s (log %s): %s", s.name, within, s.logPath, last)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// services is every provisioner and edge.
func (d *deployment) services() []*service {
	return append(append([]*service(nil), d.provs...), d.edges...)
}

// logs lists every log file of the scenario.
func (d *deployment) logs() []string {
	paths, _ := filepath.Glob(filepath.Join(d.dir, "*.log"))
	return paths
}
