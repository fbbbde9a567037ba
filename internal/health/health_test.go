package health_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jitprov/jitprov/internal/health"
)

func TestServe(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	var down atomic.Bool
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- health.Serve(ctx, addr, health.Handler(func(context.Context) error {
			if down.Load() {
				return errors.New("database unreachable")
			}
			return nil
		}))
	}()
	get := func(path string) (int, string) {
		var resp *http.Response
		var err error
		// Until the server listens: poll with a deadline, not a count of
		// tries that a slow machine can use up.
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			if resp, err = http.Get("http://" + addr + path); err == nil || time.Now().After(deadline) {
				break
			}
		}
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, _ := get("/healthz"); code != 200 {
		t.Errorf("/healthz: %d", code)
	}
	if code, _ := get("/readyz"); code != 200 {
		t.Errorf("/readyz while ready: %d", code)
	}
	down.Store(true)
	if code, body := get("/readyz"); code != 503 || !strings.Contains(body, "database unreachable") {
		t.Errorf("/readyz while not ready: %d %q", code, body)
	}
	// A second server on the same address says why it cannot start.
	if err := health.Serve(context.Background(), addr, http.NotFoundHandler()); err == nil || !strings.Contains(err.Error(), "health server on "+addr) {
		t.Errorf("second Serve on %s: %v", addr, err)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Serve after shutdown: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return after ctx ended")
	}
}

// WithMetrics adds /metrics beside the health endpoints, and nothing with
// no metrics handler.
func TestWithMetrics(t *testing.T) {
	ready := health.Handler(func(context.Context) error { return nil })
	metrics := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("# metrics\n")) })
	tests := []struct {
		name    string
		h       http.Handler
		path    string
		want    int
		contain string
	}{
		{"metrics", health.WithMetrics(ready, metrics), "/metrics", http.StatusOK, "# metrics"},
		{"healthz beside", health.WithMetrics(ready, metrics), "/healthz", http.StatusOK, "ok"},
		{"readyz beside", health.WithMetrics(ready, metrics), "/readyz", http.StatusOK, "ready"},
		{"no metrics handler", health.WithMetrics(ready, nil), "/metrics", http.StatusNotFound, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			tc.h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, tc.path, nil))
			if rec.Code != tc.want || !strings.Contains(rec.Body.String(), tc.contain) {
				t.Errorf("GET %s: %d %q, want %d with %q", tc.path, rec.Code, rec.Body, tc.want, tc.contain)
			}
		})
	}
}
