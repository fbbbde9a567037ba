package bus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Every stream and bucket has one owner, the component that declares its
// settings: the provisioner owns LOGINS, USERS, ALERTS, their consumers
// and the known-identities bucket; sso-edge the assertion and
// certificate-warning buckets; the notifier its own streams and buckets.
// Others only bind to what the owner declared (and check it). The owner's
// replicas declare the same settings, so EnsureStream and EnsureKeyValue
// are safe when any number of them start at once, and never lower a
// replica count: a replica started without the cluster's setting must not
// shrink what the others rely on.

// declareTimeout bounds declaring one stream or bucket: while a cluster
// places a new replicated stream, requests about it can go unanswered, and
// the caller's retry (startup.Wait) is the cure, not a longer wait.
const declareTimeout = 5 * time.Second

// EnsureStream declares stream cfg as its owner does: it creates the
// stream, or updates the settings that differ from cfg — all but the
// replica count, which it never lowers (it logs a warning and keeps the
// stream's). Replicas racing to create the same stream are safe: the
// loser reads the winner's stream and compares. It returns the stream.
func EnsureStream(ctx context.Context, js jetstream.JetStream, cfg jetstream.StreamConfig, log *slog.Logger) (jetstream.Stream, error) {
	ctx, cancel := context.WithTimeout(ctx, declareTimeout)
	defer cancel()
	s, err := js.Stream(ctx, cfg.Name)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		s, err = js.CreateStream(ctx, cfg)
		if err == nil {
			return s, nil
		}
		if !errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
			return nil, fmt.Errorf("create stream %s (%d replicas): %w", cfg.Name, cfg.Replicas, err)
		}
		// Another replica created it first, with other settings: compare.
		s, err = js.Stream(ctx, cfg.Name)
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return nil, fmt.Errorf("no answer about stream %s within %s (a new replicated stream may still be being placed, or the cluster has no quorum): %w", cfg.Name, declareTimeout, err)
	}
	if err != nil {
		return nil, fmt.Errorf("stream %s: %w", cfg.Name, err)
	}
	have := s.CachedInfo().Config
	cfg.Replicas = keepReplicas(ctx, log, "stream "+cfg.Name, have.Replicas, cfg.Replicas)
	if streamMatches(have, cfg) {
		return s, nil
	}
	s, err = js.UpdateStream(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("update stream %s (%d replicas): %w", cfg.Name, cfg.Replicas, err)
	}
	log.InfoContext(ctx, "stream settings updated", "stream", cfg.Name, "replicas", cfg.Replicas)
	return s, nil
}

// EnsureKeyValue is EnsureStream for the key-value bucket cfg.
func EnsureKeyValue(ctx context.Context, js jetstream.JetStream, cfg jetstream.KeyValueConfig, log *slog.Logger) (jetstream.KeyValue, error) {
	ctx, cancel := context.WithTimeout(ctx, declareTimeout)
	defer cancel()
	kv, err := js.KeyValue(ctx, cfg.Bucket)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		kv, err = js.CreateKeyValue(ctx, cfg)
		if err == nil {
			return kv, nil
		}
		if !errors.Is(err, jetstream.ErrBucketExists) {
			return nil, fmt.Errorf("create bucket %s (%d replicas): %w", cfg.Bucket, cfg.Replicas, err)
		}
		kv, err = js.KeyValue(ctx, cfg.Bucket)
	}
	if err != nil {
		return nil, fmt.Errorf("bucket %s: %w", cfg.Bucket, err)
	}
	status, err := kv.Status(ctx)
	if err != nil {
		return nil, fmt.Errorf("bucket %s: %w", cfg.Bucket, err)
	}
	bs, ok := status.(*jetstream.KeyValueBucketStatus)
	if !ok {
		return kv, nil
	}
	have := bs.Config()
	cfg.Replicas = keepReplicas(ctx, log, "bucket "+cfg.Bucket, have.Replicas, cfg.Replicas)
	if keyValueMatches(have, cfg) {
		return kv, nil
	}
	kv, err = js.UpdateKeyValue(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("update bucket %s (%d replicas): %w", cfg.Bucket, cfg.Replicas, err)
	}
	log.InfoContext(ctx, "bucket settings updated", "bucket", cfg.Bucket, "replicas", cfg.Replicas)
	return kv, nil
}

// CheckReplicas is what a component that does not own a stream or bucket
// does with its own replica setting: it compares, and warns of a
// difference, never changes anything.
func CheckReplicas(ctx context.Context, log *slog.Logger, what, owner string, have, want int) {
	if have != want {
		log.WarnContext(ctx, fmt.Sprintf("%s has %d replicas, and this component is configured for %d (JITPROV_STREAM_REPLICAS); "+
			"the %s owns its settings and nothing is changed: set the same value everywhere", what, have, want, owner),
			"have", have, "configured", want)
	}
}

// keepReplicas is the replica count to declare: want, unless the existing
// one is higher.
func keepReplicas(ctx context.Context, log *slog.Logger, what string, have, want int) int {
	if have > want {
		log.WarnContext(ctx, fmt.Sprintf("%s has %d replicas, more than the %d this component is configured for "+
			"(JITPROV_STREAM_REPLICAS); keeping %d: replica counts are never lowered automatically (use `nats stream edit` to do it on purpose)",
			what, have, want, have), "have", have, "configured", want)
		return have
	}
	return want
}

// keyValueMatches reports whether the bucket already has every setting
// cfg declares.
func keyValueMatches(have, want jetstream.KeyValueConfig) bool {
	if want.History == 0 {
		want.History = 1
	}
	if want.MaxValueSize == 0 {
		want.MaxValueSize = -1
	}
	if want.MaxBytes == 0 {
		want.MaxBytes = -1
	}
	return have.Description == want.Description && have.History == want.History && have.TTL == want.TTL &&
		have.MaxValueSize == want.MaxValueSize && have.MaxBytes == want.MaxBytes && have.Storage == want.Storage &&
		have.Replicas == want.Replicas && have.LimitMarkerTTL == want.LimitMarkerTTL
}
