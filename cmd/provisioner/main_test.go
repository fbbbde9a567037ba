package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/jitprov/jitprov/events"
	"github.com/jitprov/jitprov/internal/bus"
	"github.com/jitprov/jitprov/internal/store/postgres"
	"github.com/jitprov/jitprov/internal/testenv"
)

// clearEnv unsets every variable run reads, so that the caller's
// environment cannot leak into a test; t.Setenv restores them afterwards.
func clearEnv(t *testing.T) {
	t.Helper()
	for _, v := range []string{"JITPROV_DATABASE_URL", "JITPROV_NATS_URL", "JITPROV_NATS_CREDENTIALS",
		"JITPROV_WORKERS", "JITPROV_HEALTH_ADDR", "JITPROV_LOG_LEVEL", "JITPROV_LOG_FORMAT", "JITPROV_STREAM_REPLICAS",
		"OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT"} {
		t.Setenv(v, "")
		if err := os.Unsetenv(v); err != nil {
			t.Fatal(err)
		}
	}
}

// runCmd runs the command line args and returns its stdout, stderr and
// error.
func runCmd(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var stdout, stderr testenv.Output
	err := run(ctx, args, &stdout, &stderr)
	return stdout.String(), stderr.String(), err
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

const validOrgs = `# two organisations, three connections
organizations:
  - id: acme
    name: Acme Corp
    max_seats: 50
    roles: [viewer, member, manager, admin]
    default_role: member
    jit_role_ceiling: manager
    link_by_email: verified-domains
    verified_domains: [acme.com]
    connections:
      - id: okta
        protocol: saml
        settings:
          idp_metadata_url: https://acme.okta.com/app/exk1/sso/saml/metadata
          sp_entity_id: https://sso.acme.com/saml/acme/okta
      - id: google
        protocol: oidc
        settings:
          issuer: https://accounts.google.com
          client_id: acme-google
          client_secret_env: ACME_GOOGLE_SECRET
  - id: initech
    name: Initech
    max_seats: 10
    connections:
      - id: idp
        protocol: saml
        settings:
          idp_metadata_file: /etc/jitprov/initech-idp.xml
          sp_entity_id: https://sso.acme.com/saml/initech/idp
`

func TestRunRejectsUnknownCommands(t *testing.T) {
	clearEnv(t)
	tests := []struct {
		name string
		args []string
		want []string
	}{
		{"unknown command", []string{"frobnicate"}, []string{`unknown command "frobnicate"`, usage}},
		{"typo of migrate", []string{"migrat"}, []string{`unknown command "migrat"`, "provisioner migrate"}},
		{"unknown command with flags", []string{"deploy", "-f", "x.yaml"}, []string{`unknown command "deploy"`, usage}},
		{"extra argument", []string{"check", "-f", "orgs.yaml", "extra"}, []string{`unexpected argument "extra"`, usage}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			stdout, _, err := runCmd(t, tc.args...)
			if err == nil {
				t.Fatalf("run %q = nil, want an error", tc.args)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("run %q = %q, want it to contain %q", tc.args, err, w)
				}
			}
			if stdout != "" {
				t.Errorf("stdout = %q, want nothing", stdout)
			}
		})
	}
}

func TestRunRejectsUnknownFlags(t *testing.T) {
	clearEnv(t)
	_, stderr, err := runCmd(t, "check", "-file", "orgs.yaml")
	if err == nil || !strings.Contains(err.Error(), "-file") {
		t.Fatalf("run = %v, want an error naming the flag", err)
	}
	if !strings.Contains(stderr, usage) {
		t.Errorf("stderr = %q, want the usage", stderr)
	}
}

func TestCheck(t *testing.T) {
	// check touches nothing: no database URL is needed.
	clearEnv(t)
	tests := []struct {
		name    string
		content string
		wantOut string
		wantErr []string // substrings; the file path is always expected too
	}{
		{"valid", strings.Replace(validOrgs, "/etc/jitprov/initech-idp.xml", idpMetadataFile(t), 1), "2 organisations, 3 connections: valid", nil},
		{"metadata file missing", validOrgs, "", []string{":30:", "organizations[1].connections[0].settings.idp_metadata_file", `cannot read the IdP's metadata from "/etc/jitprov/initech-idp.xml"`}},
		// sso-edge serves no SAML connection without a pinned entity id.
		{"sp_entity_id missing", strings.NewReplacer("          sp_entity_id: https://sso.acme.com/saml/acme/okta\n", "",
			"/etc/jitprov/initech-idp.xml", idpMetadataFile(t)).Replace(validOrgs), "",
			[]string{"1 problem:", ":14:", "organizations[0].connections[0].settings.sp_entity_id: required: sso-edge serves no SAML connection without it (outside jitprov dev)",
				"(<public url>/saml/<org>/<connection>/metadata until now; sso-edge logs the exact value)"}},
		{"minimal", "organizations:\n  - id: initech\n    name: Initech\n    max_seats: 10\n", "1 organisations, 0 connections: valid", nil},
		{"wrong type", "organizations:\n  - id: acme\n    name: Acme\n    max_seats: fifty\n",
			"", []string{":4:", "organizations[0].max_seats", "fifty"}},
		{"unknown key", "organizations:\n  - id: acme\n    name: Acme\n    max_seats: 5\n    protcol: saml\n",
			"", []string{":5:", "protcol"}},
		{"admin as ceiling", "organizations:\n  - id: acme\n    name: Acme\n    max_seats: 5\n    jit_role_ceiling: admin\n",
			"", []string{":5:", "jit_role_ceiling"}},
		{"missing name", "organizations:\n  - id: acme\n    max_seats: 5\n",
			"", []string{":2:", "name"}},
		{"invalid YAML", "organizations:\n  - id: acme\n    name: [Acme\n",
			"", []string{"invalid YAML"}},
		{"empty file", "", "", []string{"empty"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := writeFile(t, "orgs.yaml", tc.content)
			stdout, _, err := runCmd(t, "check", "-f", path)
			if tc.wantErr == nil {
				if err != nil {
					t.Fatalf("check = %v", err)
				}
				if !strings.Contains(stdout, tc.wantOut) || !strings.Contains(stdout, path) {
					t.Errorf("stdout = %q, want %q about %s", stdout, tc.wantOut, path)
				}
				return
			}
			if err == nil {
				t.Fatalf("check = nil (stdout %q), want an error", stdout)
			}
			for _, w := range append([]string{path}, tc.wantErr...) {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("check = %q, want it to contain %q", err, w)
				}
			}
			if strings.Contains(stdout, "valid") {
				t.Errorf("stdout = %q for an invalid file", stdout)
			}
		})
	}
}

func TestCheckNeedsAFile(t *testing.T) {
	clearEnv(t)
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no -f", []string{"check"}, "-f FILE"},
		{"empty -f", []string{"check", "-f", ""}, "-f FILE"},
		{"missing file", []string{"check", "-f", filepath.Join(t.TempDir(), "nope.yaml")}, "nope.yaml"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := runCmd(t, tc.args...)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("run %q = %v, want an error containing %q", tc.args, err, tc.want)
			}
		})
	}
}

func TestCommandsNeedTheDatabaseURL(t *testing.T) {
	clearEnv(t)
	orgs := writeFile(t, "orgs.yaml", validOrgs)
	tests := []struct {
		name string
		args []string
	}{{"migrate", []string{"migrate"}}, {"apply", []string{"apply", "-f", orgs}}, {"serve", []string{"serve"}}, {"no command", nil}}
	for _, tc := range tests {
		args := tc.args
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := runCmd(t, args...)
			if err == nil {
				t.Fatal("run = nil, want an error")
			}
			for _, w := range []string{"database_url", "JITPROV_DATABASE_URL"} {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("run %q = %q, want it to name %s", args, err, w)
				}
			}
		})
	}
}

func TestCommandsReportBadSettings(t *testing.T) {
	tests := []struct {
		name  string
		env   map[string]string
		file  string
		wants []string
	}{
		{"log level", map[string]string{"JITPROV_LOG_LEVEL": "verbose"}, "", []string{"JITPROV_LOG_LEVEL", "verbose"}},
		{"workers", map[string]string{"JITPROV_WORKERS": "abc"}, "", []string{"JITPROV_WORKERS", "abc"}},
		{"config file line", nil, "database_url: postgres://x@127.0.0.1/x\nworkers: 0\n", []string{"provisioner.yaml:2", "workers"}},
		{"missing config file", nil, "-", []string{"nope.yaml"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			clearEnv(t)
			t.Setenv("JITPROV_DATABASE_URL", "postgres://x@127.0.0.1/x")
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			args := []string{"migrate"}
			switch tc.file {
			case "":
			case "-":
				args = append(args, "-config", filepath.Join(t.TempDir(), "nope.yaml"))
			default:
				args = append(args, "-config", writeFile(t, "provisioner.yaml", tc.file))
			}
			_, _, err := runCmd(t, args...)
			if err == nil {
				t.Fatal("run = nil, want an error")
			}
			for _, w := range tc.wants {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("run %q = %q, want it to contain %q", args, err, w)
				}
			}
		})
	}
}

func TestMigrateThenApply(t *testing.T) {
	clearEnv(t)
	dbURL := testenv.NewDatabase(t)
	t.Setenv("JITPROV_DATABASE_URL", dbURL)
	orgs := writeFile(t, "orgs.yaml", validOrgs)

	latest := latestSchema(t)
	steps := []struct {
		args    []string
		wantOut []string
	}{
		{[]string{"migrate"}, []string{fmt.Sprintf("applied %d migrations", latest), fmt.Sprintf("schema is at version %d", latest)}},
		{[]string{"migrate"}, []string{"applied 0 migrations", fmt.Sprintf("schema is at version %d", latest)}},
		{[]string{"apply", "-f", orgs}, []string{"applied 2 organisations and 3 connections from " + orgs}},
		// Applying again is idempotent.
		{[]string{"apply", "-f", orgs}, []string{"applied 2 organisations and 3 connections"}},
	}
	for _, s := range steps {
		stdout, stderr, err := runCmd(t, s.args...)
		if err != nil {
			t.Fatalf("run %q = %v\nstderr: %s", s.args, err, stderr)
		}
		for _, w := range s.wantOut {
			if !strings.Contains(stdout, w) {
				t.Errorf("run %q printed %q, want %q", s.args, stdout, w)
			}
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	type org struct {
		id, name, defaultRole, ceiling string
		seats                          int
		roles                          []string
	}
	rows, err := conn.Query(ctx, `SELECT id, name, max_seats, roles, default_role, jit_role_ceiling FROM organizations ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	got, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (org, error) {
		var o org
		err := r.Scan(&o.id, &o.name, &o.seats, &o.roles, &o.defaultRole, &o.ceiling)
		return o, err
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []org{
		{"acme", "Acme Corp", "member", "manager", 50, []string{"viewer", "member", "manager", "admin"}},
		{"initech", "Initech", "viewer", "viewer", 10, []string{"viewer", "member", "admin"}},
	}
	if len(got) != len(want) {
		t.Fatalf("organisations = %+v, want %+v", got, want)
	}
	for i := range want {
		g, w := got[i], want[i]
		if g.id != w.id || g.name != w.name || g.seats != w.seats || g.defaultRole != w.defaultRole ||
			g.ceiling != w.ceiling || !slices.Equal(g.roles, w.roles) {
			t.Errorf("organisation %d = %+v, want %+v", i, g, w)
		}
	}
	var conns []string
	rows, err = conn.Query(ctx, `SELECT org_id || '/' || id || '/' || protocol FROM connections ORDER BY 1`)
	if err != nil {
		t.Fatal(err)
	}
	conns, err = pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"acme/google/oidc", "acme/okta/saml", "initech/idp/saml"}; !slices.Equal(conns, want) {
		t.Errorf("connections = %v, want %v", conns, want)
	}
}

func TestMigrateWithConfigFile(t *testing.T) {
	clearEnv(t)
	dbURL := testenv.NewDatabase(t)
	cfg := writeFile(t, "provisioner.yaml", fmt.Sprintf("database_url: %q\nlog_format: text\nlog_level: debug\n", dbURL))
	stdout, stderr, err := runCmd(t, "migrate", "-config", cfg)
	if err != nil {
		t.Fatalf("migrate = %v\nstderr: %s", err, stderr)
	}
	if want := fmt.Sprintf("schema is at version %d", latestSchema(t)); !strings.Contains(stdout, want) {
		t.Errorf("stdout = %q, want %q", stdout, want)
	}
	if !strings.Contains(stderr, "level=INFO") || !strings.Contains(stderr, "applied migration") {
		t.Errorf("stderr = %q, want text log lines about the migration", stderr)
	}
}

func TestCommandsBeforeMigrate(t *testing.T) {
	clearEnv(t)
	t.Setenv("JITPROV_DATABASE_URL", testenv.NewDatabase(t))
	t.Setenv("JITPROV_HEALTH_ADDR", "127.0.0.1:0")
	orgs := writeFile(t, "orgs.yaml", validOrgs)
	for _, args := range [][]string{{"apply", "-f", orgs}} {
		t.Run(args[0], func(t *testing.T) {
			stdout, _, err := runCmd(t, args...)
			if err == nil {
				t.Fatalf("run %q = nil (stdout %q), want an error", args, stdout)
			}
			if !strings.Contains(err.Error(), "`provisioner migrate`") {
				t.Errorf("run %q = %q, want it to tell the operator to run `provisioner migrate`", args, err)
			}
		})
	}
}

func TestApplyRefusesAnInvalidFileWithoutTouchingTheDatabase(t *testing.T) {
	clearEnv(t)
	dbURL := testenv.NewDatabase(t)
	t.Setenv("JITPROV_DATABASE_URL", dbURL)
	if _, _, err := runCmd(t, "migrate"); err != nil {
		t.Fatal(err)
	}
	bad := writeFile(t, "orgs.yaml", validOrgs+"  - id: Bad Org\n    name: Bad\n    max_seats: 1\n")
	_, _, err := runCmd(t, "apply", "-f", bad)
	if err == nil || !strings.Contains(err.Error(), bad+":") {
		t.Fatalf("apply = %v, want an error naming %s and a line", err, bad)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var n int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM organizations`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Errorf("%d organisations after a refused apply, want 0", n)
	}
}

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	return addr
}

func TestServe(t *testing.T) {
	clearEnv(t)
	dbURL := testenv.NewDatabase(t)
	ns := testenv.NATS(t)
	addr := freePort(t)
	t.Setenv("JITPROV_DATABASE_URL", dbURL)
	t.Setenv("JITPROV_NATS_URL", ns.ClientURL())
	t.Setenv("JITPROV_HEALTH_ADDR", addr)
	t.Setenv("JITPROV_WORKERS", "4")
	for _, args := range [][]string{{"migrate"}, {"apply", "-f", writeFile(t, "orgs.yaml", validOrgs)}} {
		if _, stderr, err := runCmd(t, args...); err != nil {
			t.Fatalf("run %q = %v\nstderr: %s", args, err, stderr)
		}
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stdout, stderr testenv.Output
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{"serve"}, &stdout, &stderr) }()

	client := &http.Client{Timeout: 2 * time.Second}
	get := func(path string) (int, string, error) {
		resp, err := client.Get("http://" + addr + path)
		if err != nil {
			return 0, "", err
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body), err
	}
	testenv.WaitHTTP(t, "http://"+addr+"/readyz", http.StatusOK, "ready", 30*time.Second, done)
	if code, _, err := get("/healthz"); err != nil || code != http.StatusOK {
		t.Errorf("/healthz = %d, %v", code, err)
	}

	// The service decides a login end to end.
	nc := testenv.Connect(t, ns)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	c, err := bus.NewClient(nc, js, "/jitprov/test-edge")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	pctx, pcancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer pcancel()
	res, err := c.Provision(pctx, events.Identity{
		OrganizationID: "initech", ConnectionID: "idp", Protocol: events.ProtocolSAML, ExternalID: "peter",
		Email: "peter@initech.example", EmailVerified: true, AuthenticatedAt: time.Now().UTC().Truncate(time.Second),
	})
	if err != nil {
		t.Fatalf("Provision: %v\nstderr: %s", err, stderr.String())
	}
	if res.Outcome != events.OutcomeCreated || res.User == nil || res.User.Role != "viewer" {
		t.Errorf("result = %+v, want a created viewer", res)
	}
	// The outbox relay announces the user.
	cons, err := js.OrderedConsumer(pctx, bus.StreamUsers, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	m, err := cons.Next(jetstream.FetchMaxWait(10 * time.Second))
	if err != nil {
		t.Fatalf("no user event in %s: %v", bus.StreamUsers, err)
	}
	ev, err := events.Decode(&nats.Msg{Subject: m.Subject(), Header: m.Headers(), Data: m.Data()})
	if err != nil {
		t.Fatal(err)
	}
	if ev.Type() != string(events.TypeUserCreated) || m.Headers().Get(jetstream.MsgIDHeader) != ev.ID() {
		t.Errorf("user event: type %q, Nats-Msg-Id %q, id %q", ev.Type(), m.Headers().Get(jetstream.MsgIDHeader), ev.ID())
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("serve returned %v after the cancellation, want nil", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("serve did not return within 30s of the cancellation\nstderr: %s", stderr.String())
	}
	if _, _, err := get("/healthz"); err == nil {
		t.Error("the health server still answers after serve returned")
	}
	logs := stderr.String()
	for _, w := range []string{"starting provisioner", "provisioner stopped"} {
		if !strings.Contains(logs, w) {
			t.Errorf("logs lack %q:\n%s", w, logs)
		}
	}
	if strings.Contains(logs, `"level":"ERROR"`) {
		t.Errorf("errors logged:\n%s", logs)
	}
	if stdout.String() != "" {
		t.Errorf("serve wrote to stdout: %q", stdout.String())
	}
}

// serve started before its database is reachable, migrated, and before
// NATS runs, waits for each in turn — alive, not ready, saying what it
// waits for — and decides logins once they are all there.
func TestServeWaitsForItsDependencies(t *testing.T) {
	clearEnv(t)
	dbURL := testenv.NewDatabase(t)
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	proxy := testenv.NewProxy(t, u.Host)
	proxy.Cut()
	viaProxy := strings.Replace(dbURL, u.Host, proxy.Addr(), 1)
	natsNode := testenv.NATSCluster(t, 1)
	natsNode.Stop(0)
	addr := freePort(t)
	t.Setenv("JITPROV_DATABASE_URL", viaProxy)
	t.Setenv("JITPROV_NATS_URL", natsNode.URLs())
	t.Setenv("JITPROV_HEALTH_ADDR", addr)
	t.Setenv("JITPROV_WORKERS", "2")

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stdout, stderr testenv.Output
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{"serve"}, &stdout, &stderr) }()

	until := func(code int, want string) {
		t.Helper()
		testenv.WaitHTTP(t, "http://"+addr+"/readyz", code, want, time.Minute, done)
	}
	until(http.StatusServiceUnavailable, "waiting for the database")
	testenv.WaitHTTP(t, "http://"+addr+"/healthz", http.StatusOK, "ok", 10*time.Second, done) // a waiting service is alive
	proxy.Restore()
	until(http.StatusServiceUnavailable, "run `provisioner migrate`")
	for _, args := range [][]string{{"migrate"}, {"apply", "-f", writeFile(t, "orgs.yaml", validOrgs)}} {
		if _, stderr, err := runCmd(t, args...); err != nil {
			t.Fatalf("run %q = %v\nstderr: %s", args, err, stderr)
		}
	}
	until(http.StatusServiceUnavailable, "waiting for NATS JetStream")
	natsNode.Start(0)
	until(http.StatusOK, "ready")

	nc := natsNode.Connect(t)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	c, err := bus.NewClient(nc, js, "/jitprov/test-edge")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	pctx, pcancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer pcancel()
	res, err := c.Provision(pctx, events.Identity{
		OrganizationID: "initech", ConnectionID: "idp", Protocol: events.ProtocolSAML, ExternalID: "milton",
		Email: "milton@initech.example", EmailVerified: true, AuthenticatedAt: time.Now().UTC().Truncate(time.Second),
	})
	if err != nil || res.Outcome != events.OutcomeCreated {
		t.Fatalf("Provision once ready = %+v, %v; want created\nstderr: %s", res, err, stderr.String())
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("serve returned %v after the cancellation, want nil", err)
	}
	logs := stderr.String()
	for _, w := range []string{"waiting for the database; retrying", "waiting for NATS JetStream"} {
		if !strings.Contains(logs, w) {
			t.Errorf("logs lack %q:\n%s", w, logs)
		}
	}
}

// A refused password is no outage: serve stops at once and says why.
func TestServeStopsOnRefusedCredentials(t *testing.T) {
	clearEnv(t)
	dbURL := testenv.NewDatabase(t)
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.UserPassword("no_such_role", "wrong") // TEST CREDENTIALS: refused by design
	t.Setenv("JITPROV_DATABASE_URL", u.String())
	t.Setenv("JITPROV_HEALTH_ADDR", freePort(t))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var stdout, stderr testenv.Output
	err = run(ctx, []string{"serve"}, &stdout, &stderr)
	if err == nil || ctx.Err() != nil {
		t.Fatalf("serve with a refused role = %v (ctx %v), want it to stop with an error", err, ctx.Err())
	}
	if !strings.Contains(err.Error(), "no_such_role") || strings.Contains(err.Error(), "wrong") {
		t.Errorf("serve = %q, want it to name the role and not the password", err)
	}
}

// latestSchema is the newest migration this binary carries.
func latestSchema(t *testing.T) int {
	t.Helper()
	all, err := postgres.Migrations()
	if err != nil {
		t.Fatal(err)
	}
	return all[len(all)-1].Version
}
