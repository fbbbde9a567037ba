package notify

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/jitprov/jitprov/events"
	"github.com/jitprov/jitprov/internal/bus"
)

// Streams, consumers and buckets of the notifier.
const (
	StreamJobs = "NOTIFY"
	StreamDead = "NOTIFY_DEAD"
	// ConsumerPlanner reads alerts from stream ALERTS.
	ConsumerPlanner = "notifier"
	// ConsumerSender delivers jobs from stream NOTIFY.
	ConsumerSender = "notifier-send"
	BucketBatches  = "notifier_batches"
	BucketRecords  = "notifier_deliveries"

	subjectJobs = "jit.notify.job"  // .<org>
	subjectDead = "jit.notify.dead" // .<org>
)

// Topology sizes what the notifier declares.
type Topology struct {
	Replicas int
	// JobsMaxAge drops a job nobody could deliver for this long; it must
	// outlast the retries.
	JobsMaxAge time.Duration
	// DeadMaxAge is how long parked jobs wait for an operator.
	DeadMaxAge time.Duration
	// DuplicateWindow covers a planner or flusher that crashes and
	// publishes the same jobs again.
	DuplicateWindow time.Duration
	// RecordsTTL is how long delivery records are kept: longer than any
	// job lives.
	RecordsTTL time.Duration
	// AckWait must exceed the slowest delivery (the channel timeouts).
	AckWait time.Duration
	// MaxAckPending bounds the jobs handed out and not yet acked, which
	// includes every job waiting out a retry delay. It must be far above
	// what one organisation's failing receivers can hold back, or their
	// retries would stop every other organisation's jobs.
	MaxAckPending int
}

// DefaultTopology suits a single server; set Replicas to 3 in a cluster.
func DefaultTopology() Topology {
	return Topology{Replicas: 1, JobsMaxAge: 7 * 24 * time.Hour, DeadMaxAge: 30 * 24 * time.Hour,
		DuplicateWindow: 2 * time.Hour, RecordsTTL: 8 * 24 * time.Hour, AckWait: 2 * time.Minute, MaxAckPending: 1 << 20}
}

func (t Topology) streams() []jetstream.StreamConfig {
	return []jetstream.StreamConfig{{
		Name:        StreamJobs,
		Description: "jitprov notifier: delivery jobs, one per alert message and recipient (work queue)",
		Subjects:    []string{subjectJobs + ".*"},
		Retention:   jetstream.WorkQueuePolicy,
		Storage:     jetstream.FileStorage,
		Replicas:    t.Replicas,
		MaxAge:      t.JobsMaxAge,
		MaxBytes:    1 << 30,
		Discard:     jetstream.DiscardNew,
		Duplicates:  t.DuplicateWindow,
	}, {
		Name:        StreamDead,
		Description: "jitprov notifier: deliveries that failed for good, kept for `notifier dead list|replay`",
		Subjects:    []string{subjectDead + ".*"},
		Retention:   jetstream.LimitsPolicy,
		Storage:     jetstream.FileStorage,
		Replicas:    t.Replicas,
		MaxAge:      t.DeadMaxAge,
		MaxBytes:    1 << 30,
		// A full dead-letter stream refuses new entries rather than
		// dropping parked ones; the sender then keeps the job and retries.
		Discard:    jetstream.DiscardNew,
		Duplicates: t.DuplicateWindow,
	}}
}

// ErrNoAlertsStream: the provisioner, which owns stream ALERTS, has not
// created it yet.
var ErrNoAlertsStream = errors.New("notify: stream ALERTS does not exist yet (a provisioner creates it when it starts)")

// Ensure declares the notifier's streams, consumers and buckets, as their
// owner (bus.EnsureStream, bus.EnsureKeyValue: safe from replicas starting
// at once, never lowering a replica count). Stream ALERTS belongs to the
// provisioner: Ensure fails with ErrNoAlertsStream until it exists, and
// the notifier's start retries.
func Ensure(ctx context.Context, js jetstream.JetStream, t Topology, log *slog.Logger) (jetstream.KeyValue, jetstream.KeyValue, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := bus.CheckServer(js.Conn()); err != nil {
		return nil, nil, fmt.Errorf("notify: %w", err)
	}
	replicas := map[string]int{}
	for _, cfg := range t.streams() {
		s, err := bus.EnsureStream(ctx, js, cfg, log)
		if err != nil {
			return nil, nil, fmt.Errorf("notify: %w", err)
		}
		replicas[cfg.Name] = s.CachedInfo().Config.Replicas
	}
	alerts, err := js.Stream(ctx, bus.StreamAlerts)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil, nil, ErrNoAlertsStream
	} else if err != nil {
		return nil, nil, fmt.Errorf("notify: stream %s: %w", bus.StreamAlerts, err)
	}
	replicas[bus.StreamAlerts] = alerts.CachedInfo().Config.Replicas
	consumers := []struct {
		stream string
		cfg    jetstream.ConsumerConfig
	}{{bus.StreamAlerts, jetstream.ConsumerConfig{
		Durable:       ConsumerPlanner,
		Description:   "jitprov notifier: plans a message per alert",
		FilterSubject: events.SubjectAlerts,
		AckPolicy:     jetstream.AckExplicitPolicy,
		DeliverPolicy: jetstream.DeliverAllPolicy,
		AckWait:       30 * time.Second,
		MaxDeliver:    -1, // the planner backs off and never gives up an alert
		MaxAckPending: 1024,
	}}, {StreamJobs, jetstream.ConsumerConfig{
		Durable:       ConsumerSender,
		Description:   "jitprov notifier: delivers one job at a time per recipient",
		FilterSubject: subjectJobs + ".*",
		AckPolicy:     jetstream.AckExplicitPolicy,
		DeliverPolicy: jetstream.DeliverAllPolicy,
		AckWait:       t.AckWait,
		// The sender counts tries in its delivery records and parks a job
		// itself; a server-side bound would strand it in the work queue.
		MaxDeliver:    -1,
		MaxAckPending: cmp.Or(t.MaxAckPending, 1<<20),
	}}}
	for _, c := range consumers {
		c.cfg.Replicas = replicas[c.stream] // as its stream
		if _, err := js.CreateOrUpdateConsumer(ctx, c.stream, c.cfg); err != nil {
			return nil, nil, fmt.Errorf("notify: create or update consumer %s on %s: %w", c.cfg.Durable, c.stream, err)
		}
	}
	batches, err := bus.EnsureKeyValue(ctx, js, jetstream.KeyValueConfig{Bucket: BucketBatches,
		Description: "jitprov notifier: throttled and digested alerts waiting to be sent", History: 1,
		Storage: jetstream.FileStorage, Replicas: t.Replicas}, log)
	if err != nil {
		return nil, nil, fmt.Errorf("notify: %w", err)
	}
	records, err := bus.EnsureKeyValue(ctx, js, jetstream.KeyValueConfig{Bucket: BucketRecords,
		Description: "jitprov notifier: one delivery record per job and recipient", History: 1,
		TTL: t.RecordsTTL, Storage: jetstream.FileStorage, Replicas: t.Replicas}, log)
	if err != nil {
		return nil, nil, fmt.Errorf("notify: %w", err)
	}
	return batches, records, nil
}
