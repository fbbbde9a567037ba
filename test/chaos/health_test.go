//go:build chaos

package chaos

import (
	"context"
	"io"
	"net"
	"net/http"
	"sort"
	"sync"
	"testing"
	"time"
)

// healthProbe asks an edge's /healthz ten times a second, on a connection
// of its own, and keeps each answer's latency: how an orchestrator's
// liveness probe would see the edge.
type healthProbe struct {
	mu      sync.Mutex
	samples []healthSample
	cancel  context.CancelFunc
	done    chan struct{}
}

type healthSample struct {
	at      time.Time
	latency time.Duration
	ok      bool
}

func startHealthProbe(t *testing.T, base string) *healthProbe {
	ctx, cancel := context.WithCancel(context.Background())
	h := &healthProbe{cancel: cancel, done: make(chan struct{})}
	client := &http.Client{Timeout: 10 * time.Second, Transport: transportFrom(net.IPv4(127, 0, 0, 3), 1)}
	go func() {
		defer close(h.done)
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			start := time.Now()
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/healthz", nil)
			resp, err := client.Do(req)
			ok := false
			if err == nil {
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				ok = resp.StatusCode == http.StatusOK
			}
			if ctx.Err() != nil {
				return
			}
			h.mu.Lock()
			h.samples = append(h.samples, healthSample{at: start, latency: time.Since(start), ok: ok})
			h.mu.Unlock()
		}
	}()
	t.Cleanup(h.stop)
	return h
}

func (h *healthProbe) stop() {
	h.cancel()
	<-h.done
}

// stats is the median and the maximum latency of the probes started in
// [from, to); a failed probe counts with its latency.
func (h *healthProbe) stats(from, to time.Time) (p50, maxLatency time.Duration) {
	h.mu.Lock()
	defer h.mu.Unlock()
	var ls []time.Duration
	for _, s := range h.samples {
		if !s.at.Before(from) && s.at.Before(to) {
			ls = append(ls, s.latency)
		}
	}
	if len(ls) == 0 {
		return 0, 0
	}
	sort.Slice(ls, func(i, j int) bool { return ls[i] < ls[j] })
	return ls[len(ls)/2], ls[len(ls)-1]
}

// failures counts the probes in [from, to) that got no 200.
func (h *healthProbe) failures(from, to time.Time) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, s := range h.samples {
		if !s.at.Before(from) && s.at.Before(to) && !s.ok {
			n++
		}
	}
	return n
}
