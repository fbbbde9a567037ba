// Package node_test proves jitprov's event contract in a second language:
// the Node.js examples in examples/node (nats.js v3 and the CloudEvents
// JavaScript SDK, written from docs/events.md alone, pinned in their
// package-lock.json) run against a real `jitprov dev` process.
package node_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/jitprov/jitprov/internal/testenv"
)

// examples is the folder of the Node.js examples, from this package's.
var examples = filepath.Join("..", "..", "..", "examples", "node")

// TestNodeExamples builds jitprov and runs `jitprov dev` (SQLite and its
// embedded NATS in a temporary folder, on free ports), starts
// consume-users.mjs, and then:
//
//   - publish-login.mjs publishes a first login of a new person of demo
//     and gets its answer, created; the consumer prints that person's
//     user.created, for that login;
//   - a person signs in through the dev IdP (SAML, as a browser would):
//     the consumer prints their user.created too;
//   - publish-login.mjs publishes a login that breaks the schema: it gets
//     no answer, and reports the reason from the server's termination
//     advisory, where docs/events.md says to look.
//
// Node.js and npm come from `make test` (scripts/test-deps.sh installs
// them and runs `npm ci` in examples/node). Without node the test fails,
// saying how to install it: the contract is proven in a second language on
// every run, never skipped.
func TestNodeExamples(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs jitprov dev and Node.js")
	}
	node := testenv.Node(t, examples)

	dev := startDev(t, buildJitprov(t))

	consumer := startNode(t, dev.natsURL, "consume-users.mjs")
	consumer.stderr.wait(t, 30*time.Second, "the consumer's start", func(l string) bool {
		return strings.HasPrefix(l, "consuming jit.user.created.> from USERS")
	})

	t.Run("published login", func(t *testing.T) {
		email := "node-" + uuid.NewString()[:8] + "@demo.example"
		lines, code := runPublisher(t, node, dev.natsURL, "--org", "demo", "--connection", "devidp-saml",
			"--external-id", "node-"+uuid.NewString(), "--email", email, "--email-verified",
			"--given-name", "Node", "--family-name", "Publisher")
		if code != 0 {
			t.Fatalf("publish-login.mjs exited %d, want 0 (answered):\n%s", code, strings.Join(lines, "\n"))
		}
		var acked struct {
			LoginID string `json:"login_id"`
			PubAck  struct {
				Stream string `json:"stream"`
				Seq    uint64 `json:"seq"`
			} `json:"pub_ack"`
		}
		var answered struct {
			Type   string `json:"type"`
			Answer struct {
				LoginID string `json:"login_id"`
				Outcome string `json:"outcome"`
				User    struct {
					ID, Email, Role, Status string
				} `json:"user"`
			} `json:"answer"`
		}
		if len(lines) != 2 || json.Unmarshal([]byte(lines[0]), &acked) != nil || json.Unmarshal([]byte(lines[1]), &answered) != nil {
			t.Fatalf("publish-login.mjs printed %q, want a PubAck line and an answer line", lines)
		}
		if acked.PubAck.Stream != "LOGINS" || acked.PubAck.Seq == 0 || acked.LoginID == "" {
			t.Errorf("PubAck line %s: want stream LOGINS, a sequence and the login id", lines[0])
		}
		a := answered.Answer
		if answered.Type != "io.jitprov.provisioning.result.v1" || a.LoginID != acked.LoginID || a.Outcome != "created" ||
			a.User.Email != email || a.User.Role != "member" || a.User.Status != "active" || a.User.ID == "" {
			t.Fatalf("answer %s: want a v1 provisioning.result for login %s, created, %s, member, active", lines[1], acked.LoginID, email)
		}
		got := consumer.stdout.wait(t, 30*time.Second, "user.created of login "+acked.LoginID, func(l string) bool {
			return userCreated(l).LoginID == acked.LoginID
		})
		if u := userCreated(got); u.Type != "io.jitprov.user.created.v1" || u.User.ID != a.User.ID || u.User.Email != email ||
			u.User.OrganizationID != "demo" || u.ID == "" {
			t.Errorf("consumer printed %s, want user.created v1 of user %s (%s) in demo", got, a.User.ID, email)
		}
	})

	t.Run("dev IdP sign-in", func(t *testing.T) {
		b := testenv.NewBrowser(t)
		p := b.Get(b.Get(dev.url + "/app").Link("Demo — SAML"))
		p = p.Click("Sign in as Ada Lovelace").Submit()
		if p.URL.Path != "/app" || !strings.Contains(p.Body, "ada@demo.example") {
			t.Fatalf("the sign-in ended at %s (status %d), not on the demo app showing Ada:\n%s", p.URL, p.Status, p.Body)
		}
		got := consumer.stdout.wait(t, 30*time.Second, "user.created of ada@demo.example", func(l string) bool {
			return userCreated(l).User.Email == "ada@demo.example"
		})
		if u := userCreated(got); u.LoginID == "" || u.User.OrganizationID != "demo" {
			t.Errorf("consumer printed %s, want Ada's user.created in demo with its login id", got)
		}
	})

	t.Run("terminated login", func(t *testing.T) {
		lines, code := runPublisher(t, node, dev.natsURL, "--org", "demo", "--connection", "devidp-saml",
			"--external-id", "node-"+uuid.NewString(), "--email", "not-an-email", "--no-check", "--timeout", "30000")
		if code != 4 || len(lines) != 2 {
			t.Fatalf("publish-login.mjs exited %d, want 4 (terminated), printing a PubAck and the termination:\n%s", code, strings.Join(lines, "\n"))
		}
		var term struct {
			Terminated bool   `json:"terminated"`
			Reason     string `json:"reason"`
		}
		if err := json.Unmarshal([]byte(lines[1]), &term); err != nil || !term.Terminated ||
			!strings.HasPrefix(term.Reason, "invalid event: ") || !strings.Contains(term.Reason, "not valid email") {
			t.Errorf("termination line %s: want the provisioner's reason, invalid event … not valid email", lines[1])
		}
	})

	// Ctrl-C stops the consumer cleanly.
	consumer.interrupt(t, 30*time.Second)
	dev.interrupt(t, 30*time.Second)
}

// createdLine is what consume-users.mjs prints for each user.created.
type createdLine struct {
	Event   string `json:"event"`
	Type    string `json:"type"`
	ID      string `json:"id"`
	LoginID string `json:"login_id"`
	User    struct {
		ID             string `json:"id"`
		OrganizationID string `json:"organization_id"`
		Email          string `json:"email"`
	} `json:"user"`
}

func userCreated(line string) createdLine {
	var c createdLine
	if json.Unmarshal([]byte(line), &c) != nil || c.Event != "user.created" {
		return createdLine{}
	}
	return c
}

// runPublisher runs publish-login.mjs to its end and returns the lines it
// printed on stdout and its exit status.
func runPublisher(t *testing.T, node, natsURL string, args ...string) ([]string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, append([]string{"publish-login.mjs"}, args...)...)
	cmd.Dir = examples
	cmd.Env = append(os.Environ(), "NATS_URL="+natsURL)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	t.Logf("publish-login.mjs %s:\n%s%s", strings.Join(args, " "), out, stderr.String())
	code := 0
	if ee := (*exec.ExitError)(nil); errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("publish-login.mjs: %v", err)
	}
	return strings.Split(strings.TrimSpace(string(out)), "\n"), code
}

// --- Node.js ---

// nodeProcess is a long-running example, its output read line by line.
type nodeProcess struct {
	cmd            *exec.Cmd
	done           chan error
	stdout, stderr *lines
}

func startNode(t *testing.T, natsURL, script string) *nodeProcess {
	t.Helper()
	cmd := exec.Command(testenv.Node(t, examples), script)
	cmd.Dir = examples
	cmd.Env = append(os.Environ(), "NATS_URL="+natsURL)
	p := &nodeProcess{cmd: cmd, done: make(chan error, 1), stdout: newLines(), stderr: newLines()}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var read sync.WaitGroup
	read.Add(2)
	go func() { defer read.Done(); p.stdout.read(stdout) }()
	go func() { defer read.Done(); p.stderr.read(stderr) }()
	go func() { read.Wait(); p.done <- cmd.Wait() }()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			t.Logf("%s stdout:\n%s\n%s stderr:\n%s", script, p.stdout, script, p.stderr)
		}
	})
	return p
}

func (p *nodeProcess) interrupt(t *testing.T, within time.Duration) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-p.done:
		if err != nil {
			t.Errorf("%s exited with %v after SIGINT", p.cmd.Args[1], err)
		}
	case <-time.After(within):
		t.Fatalf("%s still running %s after SIGINT", p.cmd.Args[1], within)
	}
}

// lines collects the lines a process writes and lets a test wait for one.
type lines struct {
	mu      sync.Mutex
	all     []string
	changed chan struct{} // closed and replaced at each new line, and at the end
	closed  bool
}

func newLines() *lines { return &lines{changed: make(chan struct{})} }

func (l *lines) read(r io.Reader) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		l.mu.Lock()
		l.all = append(l.all, sc.Text())
		close(l.changed)
		l.changed = make(chan struct{})
		l.mu.Unlock()
	}
	l.mu.Lock()
	l.closed = true
	close(l.changed)
	l.mu.Unlock()
}

// wait returns the first line for which match holds, waiting for it up to
// within; it fails the test when the deadline passes or the output ends.
func (l *lines) wait(t *testing.T, within time.Duration, what string, match func(string) bool) string {
	t.Helper()
	deadline := time.After(within)
	seen := 0
	for {
		l.mu.Lock()
		for ; seen < len(l.all); seen++ {
			if match(l.all[seen]) {
				line := l.all[seen]
				l.mu.Unlock()
				return line
			}
		}
		changed, closed := l.changed, l.closed
		l.mu.Unlock()
		if closed {
			t.Fatalf("waiting for %s: the output ended", what)
		}
		select {
		case <-changed:
		case <-deadline:
			t.Fatalf("no %s within %s", what, within)
		}
	}
}

func (l *lines) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.all, "\n")
}

// --- jitprov dev ---

func buildJitprov(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "jitprov")
	build := exec.Command("go", "build", "-o", bin, "./cmd/jitprov")
	build.Dir = filepath.Join("..", "..", "..")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

type devProcess struct {
	cmd     *exec.Cmd
	url     string // the dev port: the tour, the demo app, the dev IdP
	natsURL string // its embedded NATS
	done    chan error
	out     *lines
}

// startDev runs `jitprov dev` on free ports with a data folder of its own,
// and waits for its banner.
func startDev(t *testing.T, bin string) *devProcess {
	t.Helper()
	ports := testenv.FreePorts(t, 3)
	cmd := exec.Command(bin, "dev", "-data", t.TempDir(), "-host", "localhost",
		"-edge-port", fmt.Sprint(ports[0]), "-dev-port", fmt.Sprint(ports[1]), "-nats-port", fmt.Sprint(ports[2]))
	// Its own store and NATS, whatever the environment names.
	cmd.Env = append(os.Environ(), "DATABASE_URL=", "JITPROV_DATABASE_URL=", "NATS_URL=", "JITPROV_NATS_URL=")
	p := &devProcess{cmd: cmd, url: fmt.Sprintf("http://localhost:%d", ports[1]),
		natsURL: fmt.Sprintf("nats://127.0.0.1:%d", ports[2]), done: make(chan error, 1), out: newLines()}
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go p.out.read(pr)
	go func() { err := cmd.Wait(); _ = pw.Close(); p.done <- err }()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			t.Logf("jitprov dev output:\n%s", p.out)
		}
	})
	p.out.wait(t, 90*time.Second, "jitprov dev banner", func(l string) bool { return strings.Contains(l, "Press Ctrl-C to stop") })
	return p
}

func (p *devProcess) interrupt(t *testing.T, within time.Duration) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-p.done:
		if err != nil {
			t.Errorf("jitprov dev exited with %v after SIGINT", err)
		}
	case <-time.After(within):
		t.Fatalf("jitprov dev still running %s after SIGINT", within)
	}
}
