// Package scimmy_test checks jitprov's SCIM 2.0 service provider with an
// independent client: check.mjs, which validates every answer with the
// schema definitions and messages of scimmy (an npm SCIM library written
// apart from jitprov and from the Go library it serves SCIM with), pinned
// in package-lock.json.
package scimmy_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	noopmetric "go.opentelemetry.io/otel/metric/noop"
	nooptrace "go.opentelemetry.io/otel/trace/noop"

	"github.com/jitprov/jitprov/internal/devmode"
	"github.com/jitprov/jitprov/internal/testenv"
	"github.com/jitprov/jitprov/internal/testenv/devtest"
)

// TestScimmy runs `jitprov dev` (devmode.Run, in this process: SQLite and
// an embedded NATS in a temporary folder, on free ports), makes a SCIM
// token for its organisation demo through the admin API with the admin
// token dev mode keeps, and runs check.mjs against /scim/v2 with it.
//
// Node.js and npm are required, never skipped for: `make test` installs
// them and this folder's node_modules (scripts/test-deps.sh).
func TestScimmy(t *testing.T) {
	node := need(t, "node")
	npmCI(t, need(t, "npm"))

	dev := startDev(t)
	scimToken := createToken(t, dev)

	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "check.mjs")
	cmd.Env = append(os.Environ(), "SCIM_BASE_URL="+dev.DevURL+"/scim/v2", "SCIM_TOKEN="+scimToken, "SCIM_EMAIL_DOMAIN=demo.example")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("node check.mjs: %v\n%s", err, out)
	}
	t.Logf("%s", bytes.TrimSpace(out))
}

// need is the path of a program the test cannot do without.
func need(t *testing.T, name string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("%s is required and not installed (%v): run `make test`, which installs Node.js and npm "+
			"(scripts/test-deps.sh), or `apt-get install nodejs npm`", name, err)
	}
	return path
}

// npmCI installs node_modules as package-lock.json pins them, unless each
// locked package is already there at its version (scripts/test-deps.sh
// ran `npm ci`, or an earlier run did): then nothing is fetched.
func npmCI(t *testing.T, npm string) {
	t.Helper()
	if installed(t) {
		return
	}
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, npm, "ci", "--ignore-scripts", "--no-audit", "--no-fund", "--prefer-offline")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("npm ci in test/interop/scimmy: %v\n%s", err, out)
	}
	if !installed(t) {
		t.Fatal("npm ci left node_modules unlike package-lock.json")
	}
}

func installed(t *testing.T) bool {
	t.Helper()
	raw, err := os.ReadFile("package-lock.json")
	if err != nil {
		t.Fatal(err)
	}
	var lock struct {
		Packages map[string]struct {
			Version string `json:"version"`
		} `json:"packages"`
	}
	if err := json.Unmarshal(raw, &lock); err != nil {
		t.Fatalf("package-lock.json: %v", err)
	}
	for path, p := range lock.Packages {
		if path == "" {
			continue
		}
		raw, err := os.ReadFile(filepath.Join(filepath.FromSlash(path), "package.json"))
		if err != nil {
			return false
		}
		var got struct {
			Version string `json:"version"`
		}
		if json.Unmarshal(raw, &got) != nil || got.Version != p.Version {
			return false
		}
	}
	return true
}

// startDev runs development mode until the test ends; its log is shown
// if the test fails.
func startDev(t *testing.T) devtest.Dev {
	t.Helper()
	logs := &testenv.Output{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("jitprov dev's log:\n%s", logs.String())
		}
	})
	return devtest.Start(t, devmode.Config{Logger: logs.Logger(), Tracer: nooptrace.NewTracerProvider(),
		Meter: noopmetric.NewMeterProvider()})
}

// createToken makes a token of scope scim for organisation demo, as
// `jitprov tokens create --scope scim --org demo` does, with the admin
// token dev mode keeps in its folder.
func createToken(t *testing.T, d devtest.Dev) string {
	t.Helper()
	admin, err := os.ReadFile(filepath.Join(d.DataDir, "admin-token"))
	if err != nil {
		t.Fatalf("the dev admin token: %v", err)
	}
	body := `{"name": "scimmy", "organization": "demo", "scope": "scim", "expires_in": "1h"}`
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, d.DevURL+"/api/v1/tokens", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(admin)))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var created struct {
		Secret string `json:"secret"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&created); err != nil || resp.StatusCode != http.StatusCreated || created.Secret == "" {
		t.Fatalf("POST /api/v1/tokens: %d, %v", resp.StatusCode, err)
	}
	return created.Secret
}
