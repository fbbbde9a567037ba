package bus_test

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/jitprov/jitprov/internal/bus"
	"github.com/jitprov/jitprov/internal/startup"
	"github.com/jitprov/jitprov/internal/testenv"
)

func replicasOf(t *testing.T, js jetstream.JetStream, stream string) int {
	t.Helper()
	s, err := js.Stream(testContext(t, 10*time.Second), stream)
	if err != nil {
		t.Fatal(err)
	}
	return s.CachedInfo().Config.Replicas
}

// A component started without the cluster's replica setting (the default,
// 1) must not shrink streams, consumers or buckets the others rely on: it
// keeps their count and says so. Raising the count still works.
func TestEnsureNeverLowersReplicas(t *testing.T) {
	cluster := testenv.NATSCluster(t, 3)
	js, err := jetstream.New(cluster.Connect(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx := testContext(t, 2*time.Minute)
	one, three := bus.DefaultTopology(), bus.DefaultTopology()
	three.Replicas = 3

	if err := bus.Ensure(ctx, js, one); err != nil {
		t.Fatal(err)
	}
	if err := bus.Ensure(ctx, js, three); err != nil {
		t.Fatalf("raising the replicas: %v", err)
	}
	var logs testenv.Output
	if err := bus.Ensure(ctx, js, one, bus.WithLogger(logs.Logger())); err != nil {
		t.Fatalf("Ensure with 1 replica after 3: %v", err)
	}
	for _, stream := range []string{bus.StreamLogins, bus.StreamUsers, bus.StreamAlerts} {
		if got := replicasOf(t, js, stream); got != 3 {
			t.Errorf("stream %s has %d replicas after an Ensure configured for 1, want 3 kept", stream, got)
		}
	}
	for _, sc := range one.Consumers() {
		name := sc.Config.Durable
		// A consumer just scaled up may not answer at once.
		var replicas int
		waitUntil(t, func() bool {
			ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			defer cancel()
			c, err := js.Consumer(ctx, sc.Stream, name)
			if err == nil {
				replicas = c.CachedInfo().Config.Replicas
			}
			return err == nil
		})
		if replicas != 3 {
			t.Errorf("consumer %s has %d replicas, want 3, as its stream", name, replicas)
		}
	}
	if !strings.Contains(logs.String(), "stream LOGINS has 3 replicas, more than the 1 this component is configured for") {
		t.Errorf("no warning that the replica count was kept:\n%s", logs.String())
	}

	// The same for a bucket.
	kvCfg := jetstream.KeyValueConfig{Bucket: "OWNED", History: 1, Storage: jetstream.FileStorage, Replicas: 3}
	if _, err := bus.EnsureKeyValue(ctx, js, kvCfg, slog.New(slog.DiscardHandler)); err != nil {
		t.Fatal(err)
	}
	kvCfg.Replicas = 1
	kvCfg.Description = "a changed description is applied"
	if _, err := bus.EnsureKeyValue(ctx, js, kvCfg, slog.New(slog.DiscardHandler)); err != nil {
		t.Fatal(err)
	}
	s, err := js.Stream(ctx, "KV_OWNED")
	if err != nil {
		t.Fatal(err)
	}
	if cfg := s.CachedInfo().Config; cfg.Replicas != 3 || cfg.Description != kvCfg.Description {
		t.Errorf("bucket after an Ensure for 1 replica: %d replicas, description %q; want 3 kept and the description applied",
			cfg.Replicas, cfg.Description)
	}
}

// Replicas of one component starting at the same instant on a fresh
// cluster all declare the same streams, each as a replica does at start
// (startup.Wait: tries of at most 15 s, retried): every one succeeds. A
// single try can time out — while the cluster places a new R3 stream,
// requests about it may go unanswered — which is why starts are retried.
func TestEnsureFromManyReplicasAtOnce(t *testing.T) {
	cluster := testenv.NATSCluster(t, 3)
	topo := bus.DefaultTopology()
	topo.Replicas = 3
	const n = 6
	errs := make([]error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		js, err := jetstream.New(cluster.Connect(t))
		if err != nil {
			t.Fatal(err)
		}
		wg.Go(func() {
			<-start
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			log := testenv.Logger(t)
			errs[i] = startup.Wait(ctx, log, nil, "JetStream", func(ctx context.Context) error {
				if err := bus.Ensure(ctx, js, topo); err != nil {
					return err
				}
				_, err := bus.EnsureKeyValue(ctx, js, jetstream.KeyValueConfig{Bucket: "RACED", Replicas: 3}, log)
				return err
			})
		})
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("replica %d: %v", i, err)
		}
	}
}

func TestClassifyPublish(t *testing.T) {
	api := func(code jetstream.ErrorCode) error {
		return fmt.Errorf("nats: %w", &jetstream.APIError{ErrorCode: code, Code: 503})
	}
	apiDesc := func(code jetstream.ErrorCode, desc string) error {
		return fmt.Errorf("nats: %w", &jetstream.APIError{ErrorCode: code, Code: 503, Description: desc})
	}
	for _, tc := range []struct {
		name string
		err  error
		want bus.Failure
	}{
		{"organisation full: refused", apiDesc(10077, "maximum messages per subject exceeded"), bus.FailureRefused},
		{"stream full: refused", apiDesc(10077, "maximum bytes exceeded"), bus.FailureRefused},
		{"store closing as its server restarts: maybe stored", apiDesc(10077, "store is closed"), bus.FailureUnknown},
		{"message too large: refused", api(10054), bus.FailureRefused},
		{"cluster between leaders", api(10008), bus.FailureTransient},
		{"same id still being stored", api(10158), bus.FailureUnknown},
		{"no stream leader", jetstream.ErrNoStreamResponse, bus.FailureTransient},
		{"no responders", nats.ErrNoResponders, bus.FailureTransient},
		{"timeout: maybe stored", nats.ErrTimeout, bus.FailureUnknown},
		{"deadline: maybe stored", fmt.Errorf("publish: %w", context.DeadlineExceeded), bus.FailureUnknown},
		{"connection closed for good", nats.ErrConnectionClosed, bus.FailureRefused},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := bus.ClassifyPublish(tc.err); got != tc.want {
				t.Errorf("ClassifyPublish(%v) = %d, want %d", tc.err, got, tc.want)
			}
		})
	}
}
