// Package devtest runs development mode (`jitprov dev`: every service,
// the development IdP, an embedded NATS and SQLite or a given Postgres)
// in a test's process, for tests of the whole system. It is apart from
// package testenv, which the services' own tests import: devmode imports
// the services.
package devtest

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/jitprov/jitprov/internal/devmode"
	"github.com/jitprov/jitprov/internal/testenv"
)

// Dev is a running development mode.
type Dev struct {
	EdgeURL string // sso-edge
	DevURL  string // the IdP, the admin API and console, SCIM, the inbox, /metrics
	DataDir string // its folder: keys, secrets, admin-token
}

// Start runs development mode with cfg until the test ends, on free
// ports of localhost and in a temporary folder unless cfg names them,
// and returns once it serves (its banner is printed). The test fails if
// it does not start within two minutes, or does not stop cleanly.
func Start(t *testing.T, cfg devmode.Config) Dev {
	t.Helper()
	ports := testenv.FreePorts(t, 3)
	if cfg.EdgePort == 0 {
		cfg.EdgePort = ports[0]
	}
	if cfg.DevPort == 0 {
		cfg.DevPort = ports[1]
	}
	if cfg.NATSPort == 0 {
		cfg.NATSPort = ports[2]
	}
	if cfg.DataDir == "" {
		cfg.DataDir = t.TempDir()
	}
	cfg.Host = "localhost"
	ready := &readyWriter{ready: make(chan struct{})}
	cfg.Out = ready
	d := Dev{EdgeURL: fmt.Sprintf("http://localhost:%d", cfg.EdgePort), DevURL: fmt.Sprintf("http://localhost:%d", cfg.DevPort),
		DataDir: cfg.DataDir}
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- devmode.Run(ctx, cfg) }()
	t.Cleanup(func() {
		stop()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("jitprov dev: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Errorf("jitprov dev did not stop within 30s")
		}
	})
	select {
	case <-ready.ready:
	case err := <-done:
		t.Fatalf("jitprov dev stopped at start: %v", err)
	case <-time.After(2 * time.Minute):
		t.Fatal("jitprov dev printed no banner within two minutes")
	}
	return d
}

// readyWriter takes the banner, which dev mode prints once it serves.
type readyWriter struct {
	once  sync.Once
	ready chan struct{}
}

func (w *readyWriter) Write(p []byte) (int, error) {
	if bytes.Contains(p, []byte("Press Ctrl-C to stop")) {
		w.once.Do(func() { close(w.ready) })
	}
	return len(p), nil
}
