// Package devmode is `jitprov dev`: the whole pipeline in one process on a
// laptop — an embedded NATS server with JetStream, the embedded SQLite
// store, sso-edge, the provisioner and the notifier (through the same Run
// functions their binaries use), with the built-in development IdP, a demo
// application behind forward-auth and an inbox for the notifier's
// messages. Development only: its keys and secrets live in the data folder,
// its pages say so, and it listens on loopback.
package devmode

import (
	"bytes"
	"cmp"
	"context"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"text/template"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
	"golang.org/x/sync/errgroup"

	"github.com/jitprov/jitprov/internal/admin"
	"github.com/jitprov/jitprov/internal/admin/authn"
	"github.com/jitprov/jitprov/internal/admin/console"
	"github.com/jitprov/jitprov/internal/admin/service"
	"github.com/jitprov/jitprov/internal/bus"
	"github.com/jitprov/jitprov/internal/config"
	"github.com/jitprov/jitprov/internal/devidp"
	"github.com/jitprov/jitprov/internal/devinbox"
	"github.com/jitprov/jitprov/internal/edge"
	"github.com/jitprov/jitprov/internal/edge/session"
	"github.com/jitprov/jitprov/internal/notify"
	"github.com/jitprov/jitprov/internal/provisioner"
	"github.com/jitprov/jitprov/internal/store"
	"github.com/jitprov/jitprov/internal/store/postgres"
	"github.com/jitprov/jitprov/internal/store/sqlite"
	"github.com/jitprov/jitprov/internal/telemetry"
)

// Config is what `jitprov dev` is asked for.
type Config struct {
	// DataDir keeps everything between starts: the NATS store, the SQLite
	// database, keys and secrets. Default ".jitprov-dev". One Run at a
	// time holds it (a lock file in it says which process).
	DataDir string
	// Host is the host name in every URL; default "localhost". The edge,
	// the IdP and the demo application must share it (cookies).
	Host string
	// EdgePort serves sso-edge (default 8080); DevPort the IdP, the demo
	// application and the inbox (default 8090); NATSPort the embedded NATS
	// server (default 4223: beside a system NATS on 4222).
	EdgePort, DevPort, NATSPort int
	// DatabaseURL, when set, uses that Postgres (migrated at start)
	// instead of the embedded store; NATSURL that NATS server instead of
	// the embedded one.
	DatabaseURL string
	NATSURL     string
	// AllowRemote lets DatabaseURL and NATSURL name other hosts than this
	// machine. Development mode applies demo organisations to the database
	// and joins the durable consumers on the NATS server: pointed at a
	// shared one, it would take real logins and alerts.
	AllowRemote bool
	// Reload, when set, makes the edge reload its connections and their
	// IdP metadata at each value (jitprov dev sends one on SIGHUP).
	Reload <-chan struct{}
	// Out receives the banner with the URLs to open.
	Out    io.Writer
	Logger *slog.Logger
	Tracer trace.TracerProvider
	Meter  metric.MeterProvider
	// Metrics, when set, serves Meter's instruments (every service's: they
	// share it) to Prometheus at /metrics on DevPort.
	Metrics http.Handler
}

//go:embed organizations.yaml.tmpl
var orgsTemplate string

const clientID = "jitprov-dev"

func (c *Config) defaults() {
	if c.DataDir == "" {
		c.DataDir = ".jitprov-dev"
	}
	if c.Host == "" {
		c.Host = "localhost"
	}
	if c.EdgePort == 0 {
		c.EdgePort = 8080
	}
	if c.DevPort == 0 {
		c.DevPort = 8090
	}
	if c.NATSPort == 0 {
		c.NATSPort = 4223
	}
	if c.Out == nil {
		c.Out = io.Discard
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// Run runs development mode until ctx is done, then shuts everything down.
func Run(ctx context.Context, cfg Config) error {
	cfg.defaults()
	if err := cfg.checkLocal(); err != nil {
		return err
	}
	log := cfg.Logger
	dir, err := filepath.Abs(cfg.DataDir)
	if err != nil {
		return err
	}
	edgeURL := fmt.Sprintf("http://%s", net.JoinHostPort(cfg.Host, strconv.Itoa(cfg.EdgePort)))
	devURL := fmt.Sprintf("http://%s", net.JoinHostPort(cfg.Host, strconv.Itoa(cfg.DevPort)))

	// One process per data folder, before anything in it is opened: two
	// NATS servers on one JetStream folder, or two writers of one SQLite
	// file, would corrupt them.
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("devmode: data folder: %w", err)
	}
	natsAt := cmp.Or(cfg.NATSURL, fmt.Sprintf("nats://127.0.0.1:%d", cfg.NATSPort))
	unlock, err := lockDataDir(dir, cfg.DataDir, holder{PID: os.Getpid(), Started: time.Now(), Tour: devURL, Edge: edgeURL, NATS: natsAt})
	if err != nil {
		return err
	}
	defer unlock()
	if err := os.MkdirAll(filepath.Join(dir, "secrets"), 0o700); err != nil {
		return fmt.Errorf("devmode: data folder: %w", err)
	}
	secrets := filepath.Join(dir, "secrets")

	// Listen first: a port in use is the most likely trouble, and it
	// should be said before anything starts.
	devLn, err := net.Listen("tcp", net.JoinHostPort(cfg.Host, strconv.Itoa(cfg.DevPort)))
	if err != nil {
		return fmt.Errorf("devmode: the demo port %d is taken (choose another with -dev-port): %w", cfg.DevPort, err)
	}
	defer devLn.Close()
	if ln, err := net.Listen("tcp", net.JoinHostPort(cfg.Host, strconv.Itoa(cfg.EdgePort))); err != nil {
		return fmt.Errorf("devmode: the edge port %d is taken (choose another with -edge-port): %w", cfg.EdgePort, err)
	} else {
		_ = ln.Close() // edge.Run listens itself
	}
	smtpLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("devmode: inbox SMTP port: %w", err)
	}
	defer smtpLn.Close()

	// NATS: embedded, with its data in the folder, unless one is named.
	nc, stopNATS, natsDesc, err := startNATS(cfg, dir)
	if err != nil {
		return err
	}
	defer stopNATS()
	defer nc.Close()

	// The store: SQLite in the folder, unless a Postgres is named.
	st, storeDesc, err := openStore(ctx, cfg, dir, log)
	if err != nil {
		return err
	}
	defer st.Close()

	// Secrets of development: made once, kept in the folder.
	sessionKey, err := secretFile(filepath.Join(secrets, "session-key"), 32)
	if err != nil {
		return err
	}
	clientSecretFile := filepath.Join(secrets, "oidc-client-secret")
	clientSecret, err := secretFile(clientSecretFile, 24)
	if err != nil {
		return err
	}
	webhookSecretFile := filepath.Join(secrets, "webhook-secret")
	webhookSecret, err := secretFile(webhookSecretFile, 32)
	if err != nil {
		return err
	}
	spPair, err := spKeyPair(secrets)
	if err != nil {
		return fmt.Errorf("devmode: SP key pair: %w", err)
	}

	// The organisations file, written from the template (pointed at this
	// run's URLs) when missing, applied as it is.
	orgs, err := applyOrganizations(ctx, st, filepath.Join(dir, "organizations.yaml"), orgVars{
		IdP: devURL + "/dev-idp", ClientID: clientID, ClientSecretFile: clientSecretFile,
		InboxWebhook: devURL + "/inbox/webhook", WebhookSecretFile: webhookSecretFile,
	}, log)
	if err != nil {
		return err
	}
	directory, err := notify.NewDirectory(orgs.Organizations, orgs.Notifications, os.Getenv)
	if err != nil {
		return fmt.Errorf("devmode: %w", err)
	}

	idp, err := devidp.New(ctx, devidp.Config{
		BaseURL: devURL + "/dev-idp", DataDir: filepath.Join(dir, "idp"), Logger: log.With("component", "dev-idp"),
		SAMLServiceProviders: []devidp.ServiceProvider{
			{MetadataURL: edgeURL + "/saml/demo/devidp-saml/metadata", Organization: devidp.OrgDemo},
			{MetadataURL: edgeURL + "/saml/demo-small/devidp-saml/metadata", Organization: devidp.OrgDemoSmall},
		},
		OIDCClients: []devidp.Client{{ID: clientID, Secret: clientSecret,
			RedirectURIs: []string{edgeURL + "/oidc/demo/devidp-oidc/callback"}, Organization: devidp.OrgDemo}},
	})
	if err != nil {
		return fmt.Errorf("devmode: %w", err)
	}
	inbox := devinbox.New([]byte(webhookSecret))
	defer inbox.Close()

	key, err := session.DecodeKey(sessionKey)
	if err != nil {
		return err
	}
	keys, err := session.NewKeys(key)
	if err != nil {
		return err
	}
	sessions, err := session.NewManager(keys, session.Options{Insecure: true})
	if err != nil {
		return err
	}

	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	topo := bus.DefaultTopology()
	setup, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	// The streams exist before the edge takes its first login.
	if err := bus.Ensure(setup, js, topo); errors.Is(err, bus.ErrServerTooOld) {
		return fmt.Errorf("devmode: %w; or leave NATS_URL and -nats-url unset, and jitprov dev runs a NATS server of its own", err)
	} else if err != nil {
		return fmt.Errorf("devmode: %w", err)
	}

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		return provisioner.Run(gctx, provisioner.Config{Workers: 8, DecisionTimeout: 10 * time.Second,
			DrainTimeout: 5 * time.Second, Topology: topo, InactiveSweep: time.Hour},
			provisioner.Deps{Store: st, NATS: nc, Logger: log.With("service", "provisioner"), Tracer: cfg.Tracer, Meter: cfg.Meter})
	})
	g.Go(func() error {
		return notify.Run(gctx, notify.Config{
			SMTP: &notify.SMTPConfig{Addr: smtpLn.Addr().String(), TLS: notify.SMTPPlain, From: "jitprov dev <notifier@jitprov.dev>"},
			// Straight to the console's page where the admin acts.
			Links: notify.Links{Seats: devURL + "/admin/orgs/{org}/", RoleReviews: devURL + "/admin/orgs/{org}/reviews",
				Connections: devURL + "/admin/orgs/{org}/connections", Logins: devURL + "/admin/orgs/{org}/audit",
				Signups: devURL + "/admin/orgs/{org}/users/{user}"},
			BackoffMin: time.Second, BackoffMax: 30 * time.Second, DrainTimeout: 5 * time.Second,
			WebhookTimeout: 5 * time.Second, MailTimeout: 5 * time.Second,
		}, notify.Deps{NATS: nc, Admins: st, Directory: directory, Logger: log.With("service", "notifier"),
			Tracer: cfg.Tracer, Meter: cfg.Meter})
	})
	g.Go(func() error {
		public, _ := url.Parse(edgeURL)
		return edge.Run(gctx, edge.Config{Addr: net.JoinHostPort(cfg.Host, strconv.Itoa(cfg.EdgePort)), PublicURL: *public,
			AllowedReturnOrigins: []string{devURL}, DefaultReturnTo: devURL + "/app", SPKeyPair: spPair,
			MetadataRefresh: time.Minute, ShutdownTimeout: 5 * time.Second,
			// The demo connections pin theirs; one a person adds is served too.
			DeriveSPEntityIDs: true, Reload: cfg.Reload},
			edge.Deps{Store: st, NATS: nc, Sessions: sessions, Logger: log.With("service", "sso-edge"), Tracer: cfg.Tracer, Meter: cfg.Meter})
	})
	g.Go(func() error { return inbox.ServeSMTP(smtpLn) })
	// The admin console, on the edge's session: the dev server shares the
	// edge's host, so its cookie reaches the console.
	// The admin service's API (/api/) beside it, on the same sign-in.
	core := admin.New(st, log.With("service", "admin"))
	core.TraceOutgoing(cfg.Tracer)
	tokenPath, err := adminToken(ctx, dir, st, core)
	if err != nil {
		return fmt.Errorf("devmode: %w", err)
	}
	auth := authn.New(authn.Config{Store: st, Sessions: sessions})
	con, err := console.New(console.Config{Core: core, Auth: auth,
		LoginURL: edgeURL + "/login", PublicURL: devURL, Logger: log.With("service", "admin-console")})
	if err != nil {
		return fmt.Errorf("devmode: %w", err)
	}
	adminService := telemetry.ServerHandler(service.Handler(core, auth, con, log.With("service", "admin")), cfg.Tracer)
	dev := &http.Server{Handler: devHandler(edgeURL, devURL, idp, inbox, adminService, cfg.Metrics), ReadHeaderTimeout: 5 * time.Second}
	closeUnusedOnShutdown(dev) // or Ctrl-C with the tour open in a browser fails after 5s
	g.Go(func() error {
		if err := dev.Serve(devLn); !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	})
	g.Go(func() error {
		<-gctx.Done()
		_ = inbox.Close()
		sctx, cancel := context.WithTimeout(context.WithoutCancel(gctx), 5*time.Second)
		defer cancel()
		return dev.Shutdown(sctx)
	})
	g.Go(func() error {
		// The banner says "open this": only once the edge answers.
		if err := waitReady(gctx, edgeURL+"/readyz"); err != nil {
			if gctx.Err() != nil {
				return nil
			}
			return err
		}
		banner(cfg.Out, edgeURL, devURL, dir, natsDesc, storeDesc, tokenPath, cfg.Metrics != nil)
		return nil
	})
	err = g.Wait()
	log.Info("jitprov dev stopped")
	return err
}

// waitReady polls url until it answers 200, for up to a minute.
func waitReady(ctx context.Context, url string) error {
	client := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(time.Minute)
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		if resp, err := client.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("devmode: %s did not answer within a minute", url)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// checkLocal refuses a database or NATS server on another host unless
// AllowRemote says so.
func (c Config) checkLocal() error {
	if c.AllowRemote {
		return nil
	}
	for _, v := range []struct{ name, raw string }{{"the database (DATABASE_URL)", c.DatabaseURL}, {"the NATS server (NATS_URL)", c.NATSURL}} {
		if v.raw == "" {
			continue
		}
		for _, h := range hosts(v.raw) {
			if !isLocal(h) {
				return fmt.Errorf("devmode: %s is on %s, not this machine: development mode would apply demo organisations "+
					"and consume real logins and alerts there; pass -allow-remote if that is what you want", v.name, h)
			}
		}
	}
	return nil
}

// hosts are the host names of a URL, a comma-separated URL list or a
// key=value connection string ("host=db port=5432").
func hosts(raw string) []string {
	if !strings.Contains(raw, "://") {
		for _, kv := range strings.Fields(raw) {
			if k, v, ok := strings.Cut(kv, "="); ok && k == "host" {
				return strings.Split(v, ",")
			}
		}
		return []string{"localhost"} // libpq's default: a local socket
	}
	var out []string
	for _, part := range strings.Split(raw, ",") {
		part = strings.TrimSpace(part)
		if !strings.Contains(part, "://") {
			part = "nats://" + part
		}
		u, err := url.Parse(part)
		if err != nil || u.Hostname() == "" {
			out = append(out, part)
			continue
		}
		out = append(out, u.Hostname())
	}
	return out
}

func isLocal(host string) bool {
	if host == "localhost" || strings.HasPrefix(host, "/") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func startNATS(cfg Config, dir string) (*nats.Conn, func(), string, error) {
	if cfg.NATSURL != "" {
		nc, err := nats.Connect(cfg.NATSURL, nats.Name("jitprov-dev"), nats.MaxReconnects(-1))
		if err != nil {
			return nil, nil, "", fmt.Errorf("devmode: cannot connect to NATS at %s: %w", cfg.NATSURL, err)
		}
		return nc, func() {}, cfg.NATSURL, nil
	}
	ns, err := server.NewServer(&server.Options{
		ServerName: "jitprov-dev", Host: "127.0.0.1", Port: cfg.NATSPort, JetStream: true,
		StoreDir: filepath.Join(dir, "nats"), SyncAlways: true, NoSigs: true, NoLog: true,
	})
	if err != nil {
		return nil, nil, "", fmt.Errorf("devmode: embedded NATS: %w", err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(15 * time.Second) {
		ns.Shutdown()
		return nil, nil, "", fmt.Errorf("devmode: the embedded NATS server did not start on port %d (taken? choose another with -nats-port)", cfg.NATSPort)
	}
	nc, err := nats.Connect(ns.ClientURL(), nats.Name("jitprov-dev"))
	if err != nil {
		ns.Shutdown()
		return nil, nil, "", fmt.Errorf("devmode: %w", err)
	}
	stop := func() {
		ns.Shutdown()
		ns.WaitForShutdown()
	}
	return nc, stop, ns.ClientURL() + " (embedded, data in " + filepath.Join(dir, "nats") + ")", nil
}

func openStore(ctx context.Context, cfg Config, dir string, log *slog.Logger) (store.Store, string, error) {
	if cfg.DatabaseURL != "" {
		s, err := postgres.Open(ctx, cfg.DatabaseURL, postgres.Options{Logger: log, Tracer: cfg.Tracer})
		if err != nil {
			return nil, "", err
		}
		if _, err := s.Migrate(ctx); err != nil {
			s.Close()
			return nil, "", err
		}
		return s, "PostgreSQL (DATABASE_URL)", nil
	}
	path := filepath.Join(dir, "jitprov.db")
	s, err := sqlite.Open(ctx, path, sqlite.WithLogger(log))
	if err != nil {
		return nil, "", err
	}
	return s, "SQLite " + path, nil
}

type orgVars struct {
	IdP, ClientID, ClientSecretFile, InboxWebhook, WebhookSecretFile string
}

// orgsTemplateVersion numbers the changes of organizations.yaml.tmpl that
// a copy written from an older template lacks and dev mode relies on (a
// connection the development IdP serves, a setting the tour needs): raise
// it with such a change, and people whose file is older are told.
const orgsTemplateVersion = 3

// templateVersion reads the version line of an organisations file written
// from the template; 1 for a file without one (written before it existed).
var templateVersionLine = regexp.MustCompile(`(?m)^# jitprov dev template version (\d+)\s*$`)

func templateVersion(data []byte) int {
	m := templateVersionLine.FindSubmatch(data)
	if m == nil {
		return 1
	}
	n, err := strconv.Atoi(string(m[1]))
	if err != nil {
		return 1
	}
	return n
}

// applyOrganizations applies the organisations file at path, as it is.
// It writes it from the template, pointed at this run's URLs, only when
// it does not exist: a person's edits are kept. An existing file written
// from an older template, or not naming this run's development IdP,
// inbox or secrets, is applied all the same, with a warning that says
// what to do; the current template is then written beside it
// (organizations.yaml.new) to merge from.
func applyOrganizations(ctx context.Context, st store.Store, path string, v orgVars, log *slog.Logger) (config.OrgFile, error) {
	var b bytes.Buffer
	if err := template.Must(template.New("orgs").Parse(orgsTemplate)).Execute(&b, v); err != nil {
		return config.OrgFile{}, err
	}
	rendered := b.Bytes()
	data, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if err := os.WriteFile(path, rendered, 0o644); err != nil {
			return config.OrgFile{}, fmt.Errorf("devmode: %w", err)
		}
		data = rendered
		log.Info("wrote the organisations file from the dev template; edit it, and each start applies it as it is", "path", path)
	case err != nil:
		return config.OrgFile{}, fmt.Errorf("devmode: the organisations file: %w", err)
	default:
		if err := checkOrgFile(path, data, rendered, v, log); err != nil {
			return config.OrgFile{}, err
		}
	}
	f, err := config.ParseOrgFile(path, data)
	if err != nil {
		return f, fmt.Errorf("devmode: the organisations file (fix it, or delete it to get the dev template's again): %w", err)
	}
	if err := st.ApplyOrganizations(ctx, f.Organizations, f.Connections); err != nil {
		return f, err
	}
	return f, nil
}

// checkOrgFile says what an existing organisations file lacks that this
// run of dev mode needs.
func checkOrgFile(path string, data, rendered []byte, v orgVars, log *slog.Logger) error {
	if bytes.Equal(data, rendered) {
		return nil
	}
	log.Info("applying the organisations file as it is: your edits are kept (delete it to get the dev template's again)", "path", path)
	if have := templateVersion(data); have < orgsTemplateVersion {
		next := path + ".new"
		if err := os.WriteFile(next, rendered, 0o644); err != nil {
			return fmt.Errorf("devmode: %w", err)
		}
		log.Warn("the organisations file was written from an older dev template, and the current one has content dev mode needs "+
			"(connections, settings the tour relies on): it is written beside yours; merge it into yours, or delete yours to start from it",
			"path", path, "template", next, "file_version", have, "template_version", orgsTemplateVersion)
	}
	var missing []string
	for _, want := range []struct{ what, value string }{
		{"development IdP " + v.IdP, v.IdP},
		{"OIDC client secret file " + v.ClientSecretFile, v.ClientSecretFile},
		{"inbox webhook " + v.InboxWebhook, v.InboxWebhook},
		{"webhook secret file " + v.WebhookSecretFile, v.WebhookSecretFile},
	} {
		if !bytes.Contains(data, []byte(want.value)) {
			missing = append(missing, want.what)
		}
	}
	if len(missing) > 0 {
		log.Warn("the organisations file does not name this run's "+strings.Join(missing, ", ")+
			": sign-in or alerts through the demo connections fail until it does (other ports or another data folder than when it was written?); "+
			"fix it, or delete it to get the dev template's again", "path", path)
	}
	return nil
}

func banner(w io.Writer, edgeURL, devURL, dir, natsDesc, storeDesc, tokenPath string, metrics bool) {
	metricsLine := ""
	if metrics {
		metricsLine = "  Metrics:         " + devURL + "/metrics     (Prometheus: every service's)\n"
	}
	fmt.Fprintf(w, `
jitprov dev is running — development mode, not for production.

  Start here:      %[2]s/            (what to click, and the demo people)
  Demo app:        %[2]s/app         (behind forward-auth: "Sign in with SSO")
  Admin console:   %[2]s/admin/      (sign in as Olivia, demo's admin)
  Admin API, CLI:  JITPROV_ADMIN_URL=%[2]s JITPROV_TOKEN=$(cat %[6]s) go run ./cmd/jitprov users list demo
  Dev inbox:       %[2]s/inbox/      (the notifier's mails and webhooks)
  Dev IdP:         %[2]s/dev-idp/    (SAML IdP and OpenID provider)
%[7]s  sso-edge:        %[1]s/login

  NATS:            %[4]s
  Store:           %[5]s
  Data:            %[3]s
  Organisations:   %[3]s/organizations.yaml
                   (applied as it is at each start: edit it and restart;
                   delete it to get the dev template's again)

Press Ctrl-C to stop; a second start keeps the data.

`, edgeURL, devURL, dir, natsDesc, storeDesc, tokenPath, metricsLine)
}
