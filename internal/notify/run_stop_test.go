package notify_test

import (
	"context"
	"testing"

	noopmetric "go.opentelemetry.io/otel/metric/noop"
	nooptrace "go.opentelemetry.io/otel/trace/noop"

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
