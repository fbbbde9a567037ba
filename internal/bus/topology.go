// Package bus is jitprov's use of NATS JetStream: the streams and consumers
// (declared here and applied idempotently at start-up), the request-reply
// client the edge uses to provision a login, and the outbox relay.
package bus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/jitprov/jitprov/events"
)

// Stream and consumer names.
const (
	StreamLogins = "LOGINS"
	StreamUsers  = "USERS"
	StreamAlerts = "ALERTS"
	// ConsumerProvisioner is the durable pull consumer all provisioner
	// replicas share.
	ConsumerProvisioner = "provisioner"
	// ConsumerSeen records returning logins (login.seen).
	ConsumerSeen = "provisioner-seen"
	// ConsumerKnown keeps the known identities right after an admin's
	// change to a user (KnownInvalidations).
	ConsumerKnown = "provisioner-known"
)

// KnownInvalidations are the user events after which a known identity's
// record may be stale: the user's status or role changed, or an identity
// was taken from them. Consumer ConsumerKnown takes them.
func KnownInvalidations() []events.Type {
	return []events.Type{events.TypeUserSuspended, events.TypeUserReactivated, events.TypeUserDeprovisioned,
		events.TypeUserRoleChanged, events.TypeUserIdentityUnlinked}
}

// Topology sizes the streams. The zero value is not valid; start from
// DefaultTopology.
type Topology struct {
	// Replicas per stream: 1 on a single server, 3 in a cluster.
	Replicas int
	// LoginsMaxAge drops logins nobody processed for this long: the person
	// waiting for them has long gone.
	LoginsMaxAge time.Duration
	// LoginsMaxBytes bounds the LOGINS stream; when it is full, new logins
	// are refused (the edge shows an outage page) and none already accepted
	// is dropped.
	LoginsMaxBytes int64
	// EventsMaxAge is how long USERS and ALERTS keep events for consumers
	// that were away.
	EventsMaxAge time.Duration
	// DuplicateWindow is how long JetStream remembers Nats-Msg-Id values to
	// drop a re-published event; it covers an outbox relay's crash and
	// restart, and an edge retrying a publish.
	DuplicateWindow time.Duration
	// LoginsMaxPerOrg bounds the logins waiting for one organisation, so
	// that a flood for one cannot fill the stream for all.
	LoginsMaxPerOrg int64
	// AckWait, MaxDeliver and MaxAckPending shape the provisioner consumer.
	// MaxDeliver is the hard bound on deliveries of one login; with the
	// provisioner's backoff capped at 30 s, 240 lets logins wait out a
	// database outage of about two hours.
	AckWait       time.Duration
	MaxDeliver    int
	MaxAckPending int
}

// DefaultTopology suits a single server; set Replicas to 3 for a cluster.
func DefaultTopology() Topology {
	return Topology{
		Replicas:        1,
		LoginsMaxAge:    24 * time.Hour,
		LoginsMaxBytes:  1 << 30,
		LoginsMaxPerOrg: 100_000,
		EventsMaxAge:    7 * 24 * time.Hour,
		DuplicateWindow: 2 * time.Hour,
		AckWait:         30 * time.Second,
		MaxDeliver:      240,
		MaxAckPending:   2048,
	}
}

// Validate reports the first setting that cannot work.
func (t Topology) Validate() error {
	switch {
	case t.Replicas != 1 && t.Replicas != 3 && t.Replicas != 5:
		return fmt.Errorf("stream replicas must be 1, 3 or 5, got %d", t.Replicas)
	case t.LoginsMaxAge <= 0 || t.EventsMaxAge <= 0:
		return errors.New("stream max ages must be positive")
	case t.LoginsMaxPerOrg <= 0:
		return fmt.Errorf("logins max per organisation must be positive, got %d", t.LoginsMaxPerOrg)
	case t.LoginsMaxBytes <= 0:
		return fmt.Errorf("logins max bytes must be positive (an unbounded LOGINS stream could fill the disk), got %d", t.LoginsMaxBytes)
	case t.DuplicateWindow <= 0 || t.DuplicateWindow > t.EventsMaxAge || t.DuplicateWindow > t.LoginsMaxAge:
		return fmt.Errorf("duplicate window %s must be positive and no longer than the streams' max age", t.DuplicateWindow)
	case t.AckWait < time.Second:
		return fmt.Errorf("ack wait %s is shorter than one second", t.AckWait)
	case t.MaxDeliver < 2:
		return fmt.Errorf("max deliver must be at least 2, got %d", t.MaxDeliver)
	case t.MaxAckPending < 1:
		return fmt.Errorf("max ack pending must be positive, got %d", t.MaxAckPending)
	}
	return nil
}

// Streams returns the stream configurations of the topology.
func (t Topology) Streams() []jetstream.StreamConfig {
	return []jetstream.StreamConfig{{
		Name:        StreamLogins,
		Description: "jitprov logins waiting to be provisioned (work queue: a login is removed once a provisioner acks it)",
		Subjects:    events.LoginSubjects(),
		Retention:   jetstream.WorkQueuePolicy,
		Storage:     jetstream.FileStorage,
		Replicas:    t.Replicas,
		MaxAge:      t.LoginsMaxAge,
		MaxBytes:    t.LoginsMaxBytes,
		// Each organisation's logins are one subject: a full organisation
		// refuses its new logins, the others go on.
		MaxMsgsPerSubject:    t.LoginsMaxPerOrg,
		Discard:              jetstream.DiscardNew,
		DiscardNewPerSubject: true,
		Duplicates:           t.DuplicateWindow,
	},
		t.eventStream(StreamUsers, events.SubjectUsers, "jitprov user events (user.created, user.updated, user.identity-linked) for every interested service"),
		t.eventStream(StreamAlerts, events.SubjectAlerts, "jitprov alerts for admins (seats.*, role-review.requested, idp-certificate.expiring, provisioning.failed, signup.held, inactive-users.suspended)"),
	}
}

// eventStream is a stream of published events: kept for EventsMaxAge for
// any number of consumers, oldest dropped first.
func (t Topology) eventStream(name, subject, description string) jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:        name,
		Description: description,
		Subjects:    []string{subject},
		Retention:   jetstream.LimitsPolicy,
		Storage:     jetstream.FileStorage,
		Replicas:    t.Replicas,
		MaxAge:      t.EventsMaxAge,
		Discard:     jetstream.DiscardOld,
		Duplicates:  t.DuplicateWindow,
	}
}

// ProvisionerConsumer is the configuration of the provisioners' shared
// durable consumer. A delivery not acked within AckWait (a crashed
// replica) is redelivered; a transient failure is Nak'ed with the
// provisioner's own backoff delay. The consumer sets no BackOff list on
// purpose: the server would add it to every Nak delay.
func (t Topology) ProvisionerConsumer() jetstream.ConsumerConfig {
	return jetstream.ConsumerConfig{
		Durable:       ConsumerProvisioner,
		Description:   "jitprov provisioners: one decision per login",
		FilterSubject: events.SubjectLoginFirstSeenAll,
		AckPolicy:     jetstream.AckExplicitPolicy,
		DeliverPolicy: jetstream.DeliverAllPolicy,
		AckWait:       t.AckWait,
		MaxDeliver:    t.MaxDeliver,
		MaxAckPending: t.MaxAckPending,
		Replicas:      t.Replicas,
	}
}

// SeenConsumer is the configuration of the consumer that records
// returning logins. Losing one costs only a less precise last-login time,
// so it gives up sooner than the provisioner consumer.
func (t Topology) SeenConsumer() jetstream.ConsumerConfig {
	return jetstream.ConsumerConfig{
		Durable:       ConsumerSeen,
		Description:   "jitprov provisioners: record returning logins",
		FilterSubject: events.SubjectLoginSeenAll,
		AckPolicy:     jetstream.AckExplicitPolicy,
		DeliverPolicy: jetstream.DeliverAllPolicy,
		AckWait:       t.AckWait,
		MaxDeliver:    20,
		MaxAckPending: t.MaxAckPending,
		Replicas:      t.Replicas,
	}
}

// KnownConsumer is the configuration of the consumer on USERS that keeps
// the known-identities fast path right after an admin's change. Losing an
// event could leave a suspended person signing in from the fast path, so
// it gives up no sooner than the provisioner consumer.
func (t Topology) KnownConsumer() jetstream.ConsumerConfig {
	var filters []string
	for _, typ := range KnownInvalidations() {
		f, err := events.SubjectFilter(typ)
		if err != nil {
			panic(err) // a programming error: every user event has a subject
		}
		filters = append(filters, f)
	}
	return jetstream.ConsumerConfig{
		Durable:        ConsumerKnown,
		Description:    "jitprov provisioners: keep known identities right after admins change users",
		FilterSubjects: filters,
		AckPolicy:      jetstream.AckExplicitPolicy,
		DeliverPolicy:  jetstream.DeliverAllPolicy,
		AckWait:        t.AckWait,
		MaxDeliver:     t.MaxDeliver,
		MaxAckPending:  t.MaxAckPending,
		Replicas:       t.Replicas,
	}
}

// Consumers are the provisioner's consumers and the stream of each.
func (t Topology) Consumers() []StreamConsumer {
	return []StreamConsumer{{StreamLogins, t.ProvisionerConsumer()}, {StreamLogins, t.SeenConsumer()}, {StreamUsers, t.KnownConsumer()}}
}

// StreamConsumer is a consumer's configuration and its stream.
type StreamConsumer struct {
	Stream string
	Config jetstream.ConsumerConfig
}

// EnsureOption tunes Ensure.
type EnsureOption func(*ensureOptions)

type ensureOptions struct{ log *slog.Logger }

// WithLogger has Ensure log what it changes, and a replica count it keeps.
func WithLogger(log *slog.Logger) EnsureOption {
	return func(o *ensureOptions) { o.log = log }
}

// Ensure declares the streams and the provisioner consumers, as their
// owner: it creates what is missing and updates settings that changed,
// never lowering a replica count (EnsureStream). It is safe to run from
// every replica at once; consumers get the replica count their stream
// has.
func Ensure(ctx context.Context, js jetstream.JetStream, t Topology, opts ...EnsureOption) error {
	o := ensureOptions{log: slog.New(slog.DiscardHandler)}
	for _, opt := range opts {
		opt(&o)
	}
	if err := t.Validate(); err != nil {
		return fmt.Errorf("bus: %w", err)
	}
	if err := CheckServer(js.Conn()); err != nil {
		return fmt.Errorf("bus: %w", err)
	}
	replicas := map[string]int{}
	for _, cfg := range t.Streams() {
		s, err := EnsureStream(ctx, js, cfg, o.log)
		if err != nil {
			return fmt.Errorf("bus: %w", err)
		}
		replicas[cfg.Name] = s.CachedInfo().Config.Replicas
	}
	for _, c := range t.Consumers() {
		cc := c.Config
		cc.Replicas = replicas[c.Stream]
		if _, err := js.CreateOrUpdateConsumer(ctx, c.Stream, cc); err != nil {
			return fmt.Errorf("bus: create or update consumer %s on %s: %w", cc.Durable, c.Stream, err)
		}
	}
	return nil
}

// streamMatches reports whether the server's stream config already has
// every setting this topology declares.
func streamMatches(have, want jetstream.StreamConfig) bool {
	maxBytes := want.MaxBytes
	if maxBytes == 0 {
		maxBytes = -1
	}
	return slices.Equal(have.Subjects, want.Subjects) && have.Retention == want.Retention &&
		have.Storage == want.Storage && have.Replicas == want.Replicas && have.MaxAge == want.MaxAge &&
		have.MaxBytes == maxBytes && have.Discard == want.Discard && have.Duplicates == want.Duplicates &&
		have.MaxMsgsPerSubject == cmpOr(want.MaxMsgsPerSubject, -1) && have.DiscardNewPerSubject == want.DiscardNewPerSubject &&
		have.Description == want.Description
}

func cmpOr(v, def int64) int64 {
	if v == 0 {
		return def
	}
	return v
}
