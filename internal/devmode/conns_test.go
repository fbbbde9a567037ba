package devmode

import (
	"context"
	"net"
	"net/http"
	"testing"
	"time"
)

// A connection opened ahead of a request, as a browser opens one, does not
// hold up a shutdown: without closeUnusedOnShutdown, Shutdown waits for it
// until it is 5 seconds old.
func TestShutdownClosesUnusedConnections(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.NotFoundHandler(), ReadHeaderTimeout: time.Minute}
	closeUnusedOnShutdown(srv)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()

	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// A request on a second connection: by the time it is answered, the
	// server has accepted the first one too (it accepts in order).
	resp, err := http.Get("http://" + ln.Addr().String() + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	start := time.Now()
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown with an unused connection open: %v after %s", err, time.Since(start).Round(time.Millisecond))
	}
	if err := <-served; err != http.ErrServerClosed {
		t.Errorf("Serve: %v", err)
	}
}
