// Package health serves a service's /healthz and /readyz endpoints.
package health

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"
)

// Handler answers GET /healthz (the process runs) and GET /readyz, which
// calls ready and answers 503 with its error when it fails.
func Handler(ready func(context.Context) error) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) })
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		if err := ready(ctx); err != nil {
			http.Error(w, "not ready: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ready\n"))
	})
	return mux
}

// WithMetrics adds GET /metrics, served by metrics (a Prometheus handler,
// telemetry.Providers.Metrics), to the health endpoints h; a nil metrics
// leaves h as it is. The health listener is internal (probes, scrapes),
// never a service's public one.
func WithMetrics(h, metrics http.Handler) http.Handler {
	if metrics == nil {
		return h
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", metrics)
	mux.Handle("/", h)
	return mux
}

// Serve serves h on addr until ctx is done, then shuts down within five
// seconds.
func Serve(ctx context.Context, addr string, h http.Handler) error {
	srv := &http.Server{Addr: addr, Handler: h, ReadHeaderTimeout: 5 * time.Second,
		BaseContext: func(net.Listener) context.Context { return ctx }}
	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServe() }()
	select {
	case err := <-errc:
		return fmt.Errorf("health server on %s: %w", addr, err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	err := srv.Shutdown(sctx)
	if lerr := <-errc; !errors.Is(lerr, http.ErrServerClosed) {
		err = errors.Join(err, lerr)
	}
	return err
}
