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
	node := testenv.Node(t, ".")

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
