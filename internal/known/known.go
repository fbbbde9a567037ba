// Package known is the known-identities fast path. The provisioner records
// each decided identity — its user, role, status and a digest of the claims
// it decided on — in a NATS JetStream key-value bucket. When a person signs
// in again, sso-edge looks the identity up: if it is known, active and its
// claims are unchanged (Fresh), the edge signs the person in without
// waiting for the provisioner; otherwise the login takes the synchronous
// path, so that a role removed at the IdP is removed at once.
//
// Writers: the provisioner must Put after every decision and after every
// change made to a user outside a login (role change, suspension,
// deletion, an identity unlinked: its consumer provisioner-known does so
// for admins' changes), or the edge keeps signing people in with the old
// role or status until the record expires.
package known

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"time"

	"github.com/jitprov/jitprov/internal/bus"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/jitprov/jitprov/events"
)

// Errors. Match with errors.Is.
var (
	// ErrNotFound: the identity is not known (never decided, deleted, or
	// expired from the bucket).
	ErrNotFound = errors.New("known: identity not known")
	// ErrUnavailable: NATS did not answer. The edge takes the synchronous
	// path; the provisioner may retry.
	ErrUnavailable = errors.New("known: known-identity bucket unavailable")
	// ErrNotCreated: the bucket does not exist yet; its owner, the
	// provisioner, creates it when it starts.
	ErrNotCreated = errors.New("known: known-identity bucket not created yet")
)

// StatusActive is the only status that is ever fresh (the user statuses of
// package store: active, suspended, deprovisioned, held): a held person,
// waiting for an admin's approval, is never signed in from the fast path.
const StatusActive = "active"

// StatusUnlinked is the status of the record of an identity an admin
// unlinked from its user (Record.UserID): never fresh. The record stays, in
// place of a deletion, so that a decision made before the unlink, whose
// record is written late, cannot bring the link back (Put keeps the newer
// record; over a deleted key it would simply create).
const StatusUnlinked = "unlinked"

// Defaults of Config.
const (
	DefaultBucket  = "JITPROV_KNOWN"
	DefaultTTL     = 30 * 24 * time.Hour
	DefaultTimeout = 2 * time.Second
)

// maxPutAttempts bounds Put's compare-and-set retries under contention.
const maxPutAttempts = 8

// Record is what the provisioner decided about an identity.
type Record struct {
	UserID         string `json:"user_id"`
	OrganizationID string `json:"org"`
	ConnectionID   string `json:"connection"`
	ExternalID     string `json:"external_id"`
	Role           string `json:"role"`
	Status         string `json:"status"`
	// Email is the user's stored email (not what an IdP last sent): the
	// edge puts it in the session.
	Email string `json:"email,omitempty"`
	// ClaimsDigest is Digest of the identity the decision was made on.
	ClaimsDigest string `json:"claims_digest"`
	// UpdatedAt orders decisions: Put never replaces a record with an
	// older one. Put sets it to now when zero.
	UpdatedAt time.Time `json:"updated_at"`
}

// Config configures the bucket. The zero value uses the defaults.
type Config struct {
	// Bucket name. Default "JITPROV_KNOWN".
	Bucket string
	// Replicas of the bucket: 1 (default), 3 or 5.
	Replicas int
	// TTL is how long a record lives after its last Put. Default 30 days;
	// an identity not decided for that long takes the synchronous path
	// once.
	TTL time.Duration
	// Timeout bounds each call whose context has no earlier deadline.
	// Default 2s.
	Timeout time.Duration
	// Logger hears of a replica count kept rather than lowered; nil
	// discards.
	Logger *slog.Logger
}

// Cache reads and writes known identities. It is safe for concurrent use.
type Cache struct {
	kv      jetstream.KeyValue
	timeout time.Duration
}

var bucketName = regexp.MustCompile(`^[a-zA-Z0-9_-]+$`)

// New creates the bucket or updates it to cfg (idempotent, and never
// lowering its replica count: bus.EnsureKeyValue), for the provisioner,
// which owns it.
func New(ctx context.Context, js jetstream.JetStream, cfg Config) (*Cache, error) {
	if cfg.Bucket == "" {
		cfg.Bucket = DefaultBucket
	}
	if cfg.Replicas == 0 {
		cfg.Replicas = 1
	}
	if cfg.TTL == 0 {
		cfg.TTL = DefaultTTL
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultTimeout
	}
	switch {
	case !bucketName.MatchString(cfg.Bucket):
		return nil, fmt.Errorf("known: bucket name %q: want letters, digits, '-' and '_'", cfg.Bucket)
	case cfg.Replicas != 1 && cfg.Replicas != 3 && cfg.Replicas != 5:
		return nil, fmt.Errorf("known: replicas must be 1, 3 or 5, not %d", cfg.Replicas)
	case cfg.TTL < time.Minute || cfg.Timeout < 0:
		return nil, fmt.Errorf("known: invalid durations (TTL %s, timeout %s)", cfg.TTL, cfg.Timeout)
	}
	c := &Cache{timeout: cfg.Timeout}
	ctx, cancel := c.bound(ctx)
	defer cancel()
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	kv, err := bus.EnsureKeyValue(ctx, js, jetstream.KeyValueConfig{
		Bucket:       cfg.Bucket,
		Description:  "provisioner: identities already decided, for sso-edge's fast path",
		History:      1,
		TTL:          cfg.TTL,
		MaxValueSize: 4096,
		Storage:      jetstream.FileStorage,
		Replicas:     cfg.Replicas,
	}, log)
	if err != nil {
		return nil, fmt.Errorf("known: %w", bus.Unavailable(err, ErrUnavailable))
	}
	c.kv = kv
	return c, nil
}

// Open binds to the existing bucket without changing its configuration,
// for sso-edge, which only reads: the provisioner owns the bucket. Until
// the provisioner has created it, Open fails with ErrNotCreated. bucket ""
// is DefaultBucket; timeout 0 is DefaultTimeout.
func Open(ctx context.Context, js jetstream.JetStream, bucket string, timeout time.Duration) (*Cache, error) {
	if bucket == "" {
		bucket = DefaultBucket
	}
	if timeout == 0 {
		timeout = DefaultTimeout
	}
	if !bucketName.MatchString(bucket) {
		return nil, fmt.Errorf("known: bucket name %q: want letters, digits, '-' and '_'", bucket)
	}
	c := &Cache{timeout: timeout}
	ctx, cancel := c.bound(ctx)
	defer cancel()
	kv, err := js.KeyValue(ctx, bucket)
	if err != nil {
		if errors.Is(err, jetstream.ErrBucketNotFound) {
			return nil, fmt.Errorf("known: bucket %s does not exist yet (a provisioner creates it when it starts): %w: %w", bucket, ErrNotCreated, err)
		}
		return nil, fmt.Errorf("known: open bucket %s: %w", bucket, bus.Unavailable(err, ErrUnavailable))
	}
	c.kv = kv
	return c, nil
}

// Replicas is the bucket's replica count, as its owner declared it.
func (c *Cache) Replicas(ctx context.Context) (int, error) {
	ctx, cancel := c.bound(ctx)
	defer cancel()
	st, err := c.kv.Status(ctx)
	if err != nil {
		return 0, fmt.Errorf("known: bucket status: %w", bus.Unavailable(err, ErrUnavailable))
	}
	if bs, ok := st.(*jetstream.KeyValueBucketStatus); ok {
		return bs.StreamInfo().Config.Replicas, nil
	}
	return 0, errors.New("known: bucket status without a stream")
}

func (c *Cache) bound(ctx context.Context) (context.Context, context.CancelFunc) {
	if c.timeout <= 0 {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, c.timeout)
}

// Key is the bucket key of an identity: the hex SHA-256 of organisation,
// connection and external id separated by NUL, so that any external id is
// a valid key and none is stored in the clear in the key.
func Key(org, conn, externalID string) string {
	sum := sha256.Sum256([]byte(org + "\x00" + conn + "\x00" + externalID))
	return hex.EncodeToString(sum[:])
}

// Fresh reports whether rec lets id sign in without the provisioner: the
// record is about this identity, the user is active and the claims are
// those the provisioner decided on.
func Fresh(rec Record, id events.Identity) bool {
	return rec.UserID != "" &&
		rec.Status == StatusActive &&
		rec.OrganizationID == id.OrganizationID &&
		rec.ConnectionID == id.ConnectionID &&
		rec.ExternalID == id.ExternalID &&
		rec.ClaimsDigest != "" &&
		rec.ClaimsDigest == Digest(id)
}

// Get returns the record of an identity, ErrNotFound when there is none.
func (c *Cache) Get(ctx context.Context, org, conn, externalID string) (Record, error) {
	ctx, cancel := c.bound(ctx)
	defer cancel()
	rec, _, err := c.get(ctx, Key(org, conn, externalID))
	if err != nil {
		return Record{}, err
	}
	if rec.OrganizationID != org || rec.ConnectionID != conn || rec.ExternalID != externalID {
		return Record{}, fmt.Errorf("known: record under the key of %s/%s is about %s/%s", org, conn, rec.OrganizationID, rec.ConnectionID)
	}
	return rec, nil
}

func (c *Cache) get(ctx context.Context, key string) (Record, uint64, error) {
	e, err := c.kv.Get(ctx, key)
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound), errors.Is(err, jetstream.ErrKeyDeleted):
		return Record{}, 0, ErrNotFound
	case err != nil:
		return Record{}, 0, fmt.Errorf("known: get: %w: %w", ErrUnavailable, err)
	}
	var rec Record
	if err := json.Unmarshal(e.Value(), &rec); err != nil {
		return Record{}, e.Revision(), fmt.Errorf("known: record %s: %w", key, err)
	}
	return rec, e.Revision(), nil
}

// Put records a decision. A record older (UpdatedAt) than the one stored
// is dropped, so decisions that finish out of order leave the newest;
// concurrent Puts are serialised by compare-and-set on the key.
func (c *Cache) Put(ctx context.Context, rec Record) error {
	if rec.UserID == "" || rec.OrganizationID == "" || rec.ConnectionID == "" || rec.ExternalID == "" || rec.Status == "" {
		return errors.New("known: a record needs user, organisation, connection, external id and status")
	}
	if rec.UpdatedAt.IsZero() {
		rec.UpdatedAt = time.Now()
	}
	rec.UpdatedAt = rec.UpdatedAt.UTC()
	data, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("known: %w", err)
	}
	key := Key(rec.OrganizationID, rec.ConnectionID, rec.ExternalID)
	ctx, cancel := c.bound(ctx)
	defer cancel()
	for range maxPutAttempts {
		stored, revision, err := c.get(ctx, key)
		switch {
		case errors.Is(err, ErrNotFound):
			_, err = c.kv.Create(ctx, key, data)
		case err != nil && revision == 0:
			return err
		case err == nil && stored.UpdatedAt.After(rec.UpdatedAt):
			return nil // a newer decision is already recorded
		default: // the stored record, or an unreadable one, is replaced
			_, err = c.kv.Update(ctx, key, data, revision)
		}
		switch {
		case err == nil:
			return nil
		case errors.Is(err, jetstream.ErrKeyExists):
			continue // another writer came first: look again
		default:
			return fmt.Errorf("known: put: %w: %w", ErrUnavailable, err)
		}
	}
	return fmt.Errorf("known: put: %w: still contended after %d attempts", ErrUnavailable, maxPutAttempts)
}

// Delete forgets an identity (e.g. its user was deleted); its next login
// takes the synchronous path.
func (c *Cache) Delete(ctx context.Context, org, conn, externalID string) error {
	ctx, cancel := c.bound(ctx)
	defer cancel()
	if err := c.kv.Delete(ctx, Key(org, conn, externalID)); err != nil {
		return fmt.Errorf("known: delete: %w: %w", ErrUnavailable, err)
	}
	return nil
}
