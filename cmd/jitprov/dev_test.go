package main

import (
	"bufio"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jitprov/jitprov/internal/devinbox"
	"github.com/jitprov/jitprov/internal/testenv"
)

// `jitprov dev` as a person meets it: a subprocess on free ports, and a
// scripted browser (an HTTP client with cookies) that signs in through the
// development SAML IdP and OpenID provider, runs out of seats, reads the
// inbox, stops the process with Ctrl-C and starts it again.
func TestDevMode(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs jitprov dev")
	}
	bin := buildJitprov(t)
	data := t.TempDir()
	ports := testenv.FreePorts(t, 3)
	dev := startDev(t, bin, data, ports)
	app := dev.url + "/app"

	// The admin API answers the token jitprov dev keeps for the CLI.
	apiGet := func() int {
		t.Helper()
		secret, err := os.ReadFile(filepath.Join(data, "admin-token"))
		if err != nil {
			t.Fatalf("the dev admin token: %v", err)
		}
		req, _ := http.NewRequest(http.MethodGet, dev.url+"/api/v1/organizations", nil)
		req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(secret)))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := apiGet(); code != http.StatusOK {
		t.Errorf("GET /api/v1/organizations with the dev admin token: %d, want 200", code)
	}

	// Ada signs in through SAML: her account is created, the app shows it.
	ada := testenv.NewBrowser(t)
	p := ada.Get(app)
	p = ada.Get(p.Link("Demo — SAML"))
	p = p.Click("Sign in as Ada Lovelace") // the IdP's login page
	p = p.Submit()                         // the auto-posting SAML response, to the edge's ACS
	adaID := mustShow(t, p, "ada@demo.example", "member", "demo")

	// The README tour's step 1: Ada again, through OpenID Connect, is the
	// same user (a second identity, linked by her verified email; no second
	// seat).
	adaOIDC := testenv.NewBrowser(t)
	p = adaOIDC.Get(app)
	p = adaOIDC.Get(p.Link("Demo — OpenID Connect"))
	p = p.Click("Sign in as Ada Lovelace")
	if id := mustShow(t, p, "ada@demo.example", "member", "demo"); id != adaID {
		t.Errorf("Ada through OpenID Connect is user %s, want the user SAML created, %s", id, adaID)
	}

	// Grace signs in through OpenID Connect: she claims admin, gets member
	// and a role review.
	grace := testenv.NewBrowser(t)
	p = grace.Get(app)
	p = grace.Get(p.Link("Demo — OpenID Connect"))
	p = p.Click("Sign in as Grace Hopper")
	mustShow(t, p, "grace@demo.example", "member", "demo")

	// Demo Small has three seats: the fourth person is turned away.
	for i, who := range []string{"Alan Turing", "Barbara Liskov", "Edsger Dijkstra", "Katherine Johnson"} {
		b := testenv.NewBrowser(t)
		p := b.Get(app)
		p = b.Get(p.Link("Demo Small (3 seats) — SAML"))
		p = p.Click("Sign in as " + who).Submit()
		if i < 3 {
			mustShow(t, p, strings.ToLower(strings.Fields(who)[0])+"@small.example", "viewer", "demo-small")
			continue
		}
		if p.Status != http.StatusForbidden || !strings.Contains(p.Body, "No seat available") {
			t.Fatalf("the fourth person of demo-small got %d at %s, want the seat page:\n%s", p.Status, p.URL, p.Body)
		}
	}

	// The dev inbox shows the alerts, by mail and by webhook.
	want := map[string]bool{
		"Demo Small: 1 person could not sign in — all 3 seats are taken": false,
		"Demo: grace@demo.example asks for role admin":                   false,
		"Demo Small uses 2 of 3 seats":                                   false,
		"io.jitprov.seats.exhausted.v1":                                  false,
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		var msgs []devinbox.Message
		ada.GetJSON(dev.url+"/inbox/messages.json", &msgs)
		for _, m := range msgs {
			if _, ok := want[m.Subject]; ok {
				want[m.Subject] = true
			}
		}
		missing := []string{}
		for s, seen := range want {
			if !seen {
				missing = append(missing, s)
			}
		}
		if len(missing) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the inbox lacks %q after 30s; it has %+v", missing, msgs)
		}
		time.Sleep(250 * time.Millisecond)
	}

	// Ctrl-C stops it within 10 seconds.
	dev.interrupt(t, 10*time.Second)

	// A second start keeps the data: Ada is the same user, and her session
	// cookie (signed with the kept key) still works.
	dev = startDev(t, bin, data, ports)
	if code := apiGet(); code != http.StatusOK {
		t.Errorf("the dev admin token after a restart: %d, want 200 (kept)", code)
	}
	if id := mustShow(t, ada.Get(app), "ada@demo.example", "member", "demo"); id != adaID {
		t.Errorf("after a restart Ada's session shows user %s, want %s", id, adaID)
	}
	again := testenv.NewBrowser(t)
	p = again.Get(again.Get(app).Link("Demo — SAML"))
	if id := mustShow(t, p.Click("Sign in as Ada Lovelace").Submit(), "ada@demo.example", "member", "demo"); id != adaID {
		t.Errorf("after a restart Ada signs in as user %s, want the same user %s", id, adaID)
	}
	dev.interrupt(t, 10*time.Second)
}

// DATABASE_URL and NATS_URL switch development mode to a real Postgres
// and a real NATS server: the person is provisioned in that database.
func TestDevModeOnPostgresAndNATS(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs jitprov dev")
	}
	bin := buildJitprov(t)
	s, dbURL := testenv.Store(t)
	ns := testenv.NATS(t)
	// -allow-remote: JITPROV_TEST_DATABASE_URL may name another host.
	dev := startDev(t, bin, t.TempDir(), testenv.FreePorts(t, 3), "DATABASE_URL="+dbURL, "NATS_URL="+ns.ClientURL(), "-allow-remote")
	if !strings.Contains(dev.out.String(), "Store:           PostgreSQL") || !strings.Contains(dev.out.String(), "NATS:            "+ns.ClientURL()) {
		t.Errorf("the banner does not name the Postgres and NATS given:\n%s", dev.out.String())
	}
	b := testenv.NewBrowser(t)
	p := b.Get(b.Get(dev.url + "/app").Link("Demo — SAML"))
	id := mustShow(t, p.Click("Sign in as Ada Lovelace").Submit(), "ada@demo.example", "member", "demo")
	var email string
	if err := s.Pool().QueryRow(t.Context(), `SELECT email FROM users WHERE id = $1`, id).Scan(&email); err != nil || email != "ada@demo.example" {
		t.Errorf("user %s in Postgres: %q, %v", id, email, err)
	}
	// Every service's metrics, at the dev server's /metrics.
	var used float64
	if err := s.Pool().QueryRow(t.Context(), `SELECT seats_used FROM organizations WHERE id = 'demo'`).Scan(&used); err != nil {
		t.Fatal(err)
	}
	m := testenv.ScrapeMetrics(t, dev.url+"/metrics")
	if v, _ := m.Value("jitprov_edge_logins_total", "protocol", "saml", "outcome", "created"); v != 1 {
		t.Errorf("jitprov_edge_logins_total{protocol=saml,outcome=created} = %v, want 1", v)
	}
	if v, ok := m.Value("jitprov_seats_used", "jitprov_org", "demo"); !ok || v != used {
		t.Errorf("jitprov_seats_used{jitprov_org=demo} = %v (found: %v), want %v as in Postgres", v, ok, used)
	}
	dev.interrupt(t, 10*time.Second)
}

// --- the process ---

func buildJitprov(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "jitprov")
	build := exec.Command("go", "build", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

type devProcess struct {
	cmd  *exec.Cmd
	url  string
	done chan error
	out  *lockedBuffer
}

// startDev starts jitprov dev; env entries of the form "-flag" are passed
// as arguments instead.
func startDev(t *testing.T, bin, data string, ports []int, env ...string) *devProcess {
	t.Helper()
	args := []string{"dev", "-data", data, "-host", "localhost",
		"-edge-port", fmt.Sprint(ports[0]), "-dev-port", fmt.Sprint(ports[1]), "-nats-port", fmt.Sprint(ports[2])}
	env = slices.DeleteFunc(env, func(e string) bool {
		if strings.HasPrefix(e, "-") {
			args = append(args, e)
			return true
		}
		return false
	})
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), "DATABASE_URL=", "JITPROV_DATABASE_URL=", "NATS_URL=", "JITPROV_NATS_URL=")
	cmd.Env = append(cmd.Env, env...)
	out := &lockedBuffer{}
	cmd.Stderr = out
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	started := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &devProcess{cmd: cmd, url: fmt.Sprintf("http://localhost:%d", ports[1]), done: make(chan error, 1), out: out}
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stdout)
		once := sync.Once{}
		for sc.Scan() {
			out.Write([]byte(sc.Text() + "\n"))
			if strings.Contains(sc.Text(), "Press Ctrl-C to stop") {
				once.Do(func() { close(ready) })
			}
		}
	}()
	go func() { p.done <- cmd.Wait() }()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			t.Logf("jitprov dev output:\n%s", out.String())
		}
	})
	select {
	case <-ready:
		t.Logf("jitprov dev ready %s after start", time.Since(started).Round(time.Millisecond))
	case err := <-p.done:
		t.Fatalf("jitprov dev exited at start: %v\n%s", err, out.String())
	case <-time.After(60 * time.Second):
		t.Fatalf("jitprov dev printed no banner within 60s:\n%s", out.String())
	}
	return p
}

func (p *devProcess) interrupt(t *testing.T, within time.Duration) {
	t.Helper()
	start := time.Now()
	if err := p.cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-p.done:
		if err != nil {
			t.Errorf("jitprov dev exited with %v after SIGINT", err)
		}
		t.Logf("stopped %s after SIGINT", time.Since(start).Round(time.Millisecond))
	case <-time.After(within):
		t.Fatalf("jitprov dev still running %s after SIGINT", within)
	}
}

type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// mustShow checks the demo app shows the person, and returns their user id.
func mustShow(t *testing.T, p *testenv.Page, email, role, org string) string {
	t.Helper()
	got := map[string]string{}
	for _, dd := range p.Elements("dd") {
		got[testenv.Attr(dd, "id")] = strings.TrimSpace(testenv.Text(dd))
	}
	if p.URL.Path != "/app" || got["email"] != email || got["role"] != role || got["organization"] != org || got["user-id"] == "" {
		t.Fatalf("at %s (status %d) the app shows %v, want %s, %s in %s:\n%s", p.URL, p.Status, got, email, role, org, p.Body)
	}
	return got["user-id"]
}
