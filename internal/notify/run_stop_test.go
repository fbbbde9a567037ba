package notify_test

import (
	"context"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	noopmetric "go.opentelemetry.io/otel/metric/noop"
	nooptrace "go.opentelemetry.io/otel/trace/noop"

	"github.com/jitprov/jitprov/internal/bus"
	"github.com/jitprov/jitprov/internal/notify"
	"github.com/jitprov/jitprov/internal/testenv"
)

// Stopped while it starts — Ctrl-C right after jitprov dev's banner, a pod
// deleted as it starts — the notifier stops cleanly, as it does once
// running, instead of failing with "context canceled".
func TestRunStoppedWhileStarting(t *testing.T) {
	h := newHarness(t)
	dir, err := notify.NewDirectory(nil, nil, func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err = notify.Run(ctx, h.cfg, notify.Deps{NATS: testenv.Connect(t, h.ns), Admins: h.store, Directory: dir,
		Logger: testenv.Logger(t), Tracer: nooptrace.NewTracerProvider(), Meter: noopmetric.NewMeterProvider()})
	if err != nil {
		t.Errorf("Run stopped while starting = %v, want nil", err)
	}
}

// A notifier started before the provisioner has created stream ALERTS
// (a fresh cluster, the whole deployment rolled out at once) waits for it
// — alive, not ready, saying why — instead of exiting, and is ready once
// the provisioner has declared its streams.
func TestRunWaitsForTheAlertsStream(t *testing.T) {
	h := newHarness(t)
	fresh := testenv.NATS(t) // nothing declared
	nc := testenv.Connect(t, fresh)
	dir, err := notify.NewDirectory(nil, nil, func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg := h.cfg
	cfg.HealthAddr = ln.Addr().String()
	ln.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- notify.Run(ctx, cfg, notify.Deps{NATS: nc, Admins: h.store, Directory: dir,
			Logger: testenv.Logger(t), Tracer: nooptrace.NewTracerProvider(), Meter: noopmetric.NewMeterProvider()})
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	until := func(code int, want string) {
		t.Helper()
		testenv.WaitHTTP(t, "http://"+cfg.HealthAddr+"/readyz", code, want, time.Minute, done)
	}
	until(http.StatusServiceUnavailable, "stream ALERTS does not exist yet")
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	if err := bus.Ensure(ctx, js, bus.DefaultTopology()); err != nil {
		t.Fatal(err)
	}
	until(http.StatusOK, "ready")
}
