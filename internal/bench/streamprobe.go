package bench

import (
	"context"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// StreamProbeResult is one row of StreamProbe: how many acknowledged
// JetStream publishes a second Publishers publishers got, spread evenly
// over Streams streams.
type StreamProbeResult struct {
	Streams    int     `json:"streams"`
	Publishers int     `json:"publishers"`
	SyncAlways bool    `json:"sync_always"`
	PerSecond  float64 `json:"publishes_per_second"`
}

// StreamProbe measures what nats-server's fsync policy does to
// throughput: publishers goroutines publish small messages, each waiting
// for its PubAck, to 1, 2, 4 … streams of an embedded nats-server that
// fsyncs every write (o.NATSSync) or not, for d each. With fsync on every
// write the server fsyncs one stream's writes one after another, so one
// stream's rate is its ceiling, and streams side by side add up: this is
// what bounds a login's writes per stream (docs/performance.md).
func StreamProbe(ctx context.Context, o Options, streamCounts []int, publishers int, d time.Duration, out io.Writer) ([]StreamProbeResult, error) {
	ns, err := startNATS(o)
	if err != nil {
		return nil, err
	}
	defer ns.Shutdown()
	nc, err := nats.Connect(ns.ClientURL())
	if err != nil {
		return nil, err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(out, "stream probe: %d publishers, each waiting for its PubAck, %s per row, fsync every write: %t\n", publishers, d, o.NATSSync)
	fmt.Fprintf(out, "%8s %14s\n", "streams", "publishes/s")
	var results []StreamProbeResult
	payload := make([]byte, 512)
	for round, n := range streamCounts {
		subjects := make([]string, n)
		for i := range n {
			name := fmt.Sprintf("PROBE_%d_%d", round, i)
			subjects[i] = fmt.Sprintf("probe.%d.%d", round, i)
			if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: name, Subjects: []string{subjects[i]},
				Storage: jetstream.FileStorage, Retention: jetstream.LimitsPolicy}); err != nil {
				return results, fmt.Errorf("stream probe: create stream %s: %w", name, err)
			}
		}
		rctx, cancel := context.WithTimeout(ctx, d)
		var (
			wg    sync.WaitGroup
			mu    sync.Mutex
			total int
			fail  error
		)
		start := time.Now()
		for p := range publishers {
			wg.Go(func() {
				done := 0
				for rctx.Err() == nil {
					if _, err := js.Publish(rctx, subjects[p%n], payload); err != nil {
						if rctx.Err() == nil {
							mu.Lock()
							fail = err
							mu.Unlock()
						}
						break
					}
					done++
				}
				mu.Lock()
				total += done
				mu.Unlock()
			})
		}
		wg.Wait()
		cancel()
		if fail != nil {
			return results, fmt.Errorf("stream probe: publish: %w", fail)
		}
		if err := ctx.Err(); err != nil {
			return results, err
		}
		r := StreamProbeResult{Streams: n, Publishers: publishers, SyncAlways: o.NATSSync, PerSecond: float64(total) / time.Since(start).Seconds()}
		results = append(results, r)
		fmt.Fprintf(out, "%8d %14.0f\n", n, r.PerSecond)
	}
	return results, nil
}
