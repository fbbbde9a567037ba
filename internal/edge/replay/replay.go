// Package replay makes every SAML assertion usable once across all sso-edge
// replicas. Claims are recorded in a NATS JetStream key-value bucket with an
// atomic create, and each entry expires when its assertion would be refused
// anyway (NotOnOrAfter plus the allowed clock skew), so the bucket holds
// only what can still be replayed.
//
// The cache fails closed: when NATS cannot answer, Claim returns an error
// wrapping ErrUnavailable and the login must be refused, never accepted
// unchecked.
package replay

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"regexp"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/jitprov/jitprov/internal/bus"
)

// Errors of Claim and New. Match with errors.Is.
var (
	// ErrReplayed: the assertion was already claimed, on this or another
	// replica.
	ErrReplayed = errors.New("replay: assertion already used")
	// ErrUnavailable: NATS did not answer; the assertion's use is unknown
	// and the login must be refused.
	ErrUnavailable = errors.New("replay: replay cache unavailable")
	// ErrExpired: the assertion is past NotOnOrAfter plus the skew; the
	// caller's validation should already have refused it.
	ErrExpired = errors.New("replay: assertion already expired")
	// ErrTooLong: the assertion stays valid longer than the bucket keeps
	// entries (Config.MaxLifetime), so a replay after that could not be
	// detected. Refuse it, or raise MaxLifetime.
	ErrTooLong = errors.New("replay: assertion validity exceeds the replay window")
)

var bucketName = regexp.MustCompile(`^[a-zA-Z0-9_-]+$`)

// Defaults of Config.
const (
	DefaultBucket      = "JITPROV_ASSERTIONS"
	DefaultMaxLifetime = time.Hour
	DefaultSkew        = 5 * time.Minute
	// DefaultTimeout bounds a claim, its retries through a leader failover
	// included: a JetStream election takes 4 to 9 s (longer under load),
	// and a login refused for it costs its person more than the wait.
	DefaultTimeout = 15 * time.Second
	// markerTTL is how long the server keeps the marker it writes when an
	// entry expires; KV Create treats the marker as a deleted key.
	markerTTL = time.Minute
)

// Config configures the cache. The zero value uses the defaults.
type Config struct {
	// Bucket name. Default "JITPROV_ASSERTIONS".
	Bucket string
	// Replicas of the bucket: 1 (default), 3 or 5. Use 3 on a clustered
	// JetStream so a claim survives the loss of a server.
	Replicas int
	// MaxLifetime is the longest assertion validity accepted: the bucket's
	// upper bound on how long an entry lives. Default 1h.
	MaxLifetime time.Duration
	// Skew is the clock skew the SAML validator allows after NotOnOrAfter;
	// entries live that much longer. It must be at least the validator's
	// skew, or an entry could expire while its assertion is still
	// accepted. Default 5m, the largest skew samlsp allows.
	Skew time.Duration
	// Timeout bounds each call whose context has no earlier deadline,
	// its retries included. Default 15s.
	Timeout time.Duration
	// Now is the clock; default time.Now.
	Now func() time.Time
	// Logger hears of a replica count kept rather than lowered; nil
	// discards.
	Logger *slog.Logger
}

// Cache records claimed assertion ids. It is safe for concurrent use; any
// number of Caches (one per edge replica) may share a bucket.
type Cache struct {
	kv      jetstream.KeyValue
	perKey  bool // the server supports per-key TTL
	maxAge  time.Duration
	skew    time.Duration
	timeout time.Duration
	now     func() time.Time
}

// New creates the bucket, or updates it to cfg, and returns a Cache on it.
// It is idempotent: every replica calls it at start (sso-edge owns the
// bucket), and never lowers its replica count (bus.EnsureKeyValue).
//
// Entries expire by per-key TTL (nats-server 2.11+: the bucket allows
// message TTLs and keeps limit markers); on an older server New falls back
// to the bucket's age limit alone, MaxLifetime+Skew for every entry, which
// is as safe and only keeps entries longer.
func New(ctx context.Context, js jetstream.JetStream, cfg Config) (*Cache, error) {
	if cfg.Bucket == "" {
		cfg.Bucket = DefaultBucket
	}
	if cfg.Replicas == 0 {
		cfg.Replicas = 1
	}
	if cfg.MaxLifetime == 0 {
		cfg.MaxLifetime = DefaultMaxLifetime
	}
	if cfg.Skew == 0 {
		cfg.Skew = DefaultSkew
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	switch {
	case !bucketName.MatchString(cfg.Bucket):
		return nil, fmt.Errorf("replay: bucket name %q: want letters, digits, '-' and '_'", cfg.Bucket)
	case cfg.Replicas != 1 && cfg.Replicas != 3 && cfg.Replicas != 5:
		return nil, fmt.Errorf("replay: replicas must be 1, 3 or 5, not %d", cfg.Replicas)
	case cfg.MaxLifetime < time.Second || cfg.Skew < 0 || cfg.Timeout < 0:
		return nil, fmt.Errorf("replay: invalid durations (max lifetime %s, skew %s, timeout %s)", cfg.MaxLifetime, cfg.Skew, cfg.Timeout)
	}
	c := &Cache{
		maxAge:  cfg.MaxLifetime + cfg.Skew,
		skew:    cfg.Skew,
		timeout: cfg.Timeout,
		now:     cfg.Now,
	}
	kvCfg := jetstream.KeyValueConfig{
		Bucket:         cfg.Bucket,
		Description:    "sso-edge: SAML assertion ids already used (sha256 of issuer and id)",
		History:        1,
		TTL:            c.maxAge,
		MaxValueSize:   256,
		Storage:        jetstream.FileStorage,
		Replicas:       cfg.Replicas,
		LimitMarkerTTL: markerTTL,
	}
	ctx, cancel := c.bound(ctx)
	defer cancel()
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	kv, err := bus.EnsureKeyValue(ctx, js, kvCfg, log)
	if errors.Is(err, jetstream.ErrLimitMarkerTTLNotSupported) {
		kvCfg.LimitMarkerTTL = 0
		kv, err = bus.EnsureKeyValue(ctx, js, kvCfg, log)
	} else if err == nil {
		c.perKey = true
	}
	if err != nil {
		return nil, fmt.Errorf("replay: %w", bus.Unavailable(err, ErrUnavailable))
	}
	c.kv = kv
	return c, nil
}

func (c *Cache) bound(ctx context.Context) (context.Context, context.CancelFunc) {
	if c.timeout <= 0 {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, c.timeout)
}

// Key is the bucket key of an assertion: the hex SHA-256 of issuer, a NUL
// and the assertion id, so that any id is a valid key and ids of different
// issuers never collide.
func Key(issuer, assertionID string) string {
	sum := sha256.Sum256([]byte(issuer + "\x00" + assertionID))
	return hex.EncodeToString(sum[:])
}

// Claim records the use of the assertion assertionID from issuer, valid
// until notOnOrAfter: the earliest NotOnOrAfter the validator enforced
// (samlsp's Assertion.NotOnOrAfter; zero when there is none, which keeps
// the entry for MaxLifetime). Call it after the assertion was verified and
// before anything is done with it. It returns nil the first time, across all replicas, and
// ErrReplayed afterwards. Other errors — ErrUnavailable, ErrExpired,
// ErrTooLong — all mean: refuse the login.
func (c *Cache) Claim(ctx context.Context, issuer, assertionID string, notOnOrAfter time.Time) error {
	if assertionID == "" {
		return errors.New("replay: empty assertion id")
	}
	now := c.now()
	ttl := c.maxAge
	if !notOnOrAfter.IsZero() {
		ttl = notOnOrAfter.Add(c.skew).Sub(now)
	}
	switch {
	case ttl <= 0:
		return fmt.Errorf("%w: not on or after %s", ErrExpired, notOnOrAfter.Format(time.RFC3339))
	case ttl > c.maxAge:
		return fmt.Errorf("%w: valid for %s more, entries live %s", ErrTooLong, ttl.Round(time.Second), c.maxAge)
	}
	// The claim is made while the assertion is valid, or not at all: a
	// claim retried past that (a leader failover) could find the first
	// use's entry already expired and take a replay for a first use.
	expires := now.Add(ttl)
	ctx, cancel := c.bound(ctx)
	defer cancel()
	ctx, cancelValidity := context.WithTimeout(ctx, ttl)
	defer cancelValidity()
	// A token of this claim, so that a retried create can tell its own
	// earlier attempt (stored, its answer lost) from another claim.
	token := make([]byte, 12)
	if _, err := rand.Read(token); err != nil {
		return fmt.Errorf("replay: %w", err)
	}
	value := []byte(now.UTC().Format(time.RFC3339Nano) + " " + hex.EncodeToString(token))
	key := Key(issuer, assertionID)
	ambiguous := false // an attempt may have been stored
	var last error
	_, err := backoff.Retry(ctx, func() (struct{}, error) {
		left := expires.Sub(c.now())
		if left <= 0 {
			return struct{}{}, backoff.Permanent(fmt.Errorf("%w while its claim was retried", ErrExpired))
		}
		var opts []jetstream.KVCreateOpt
		if c.perKey {
			// The server counts message TTLs in whole seconds, truncating:
			// round up so that an entry never expires before its assertion.
			opts = append(opts, jetstream.KeyTTL(time.Duration(math.Ceil(left.Seconds()))*time.Second))
		}
		actx, cancel := context.WithTimeout(ctx, attemptTimeout)
		defer cancel()
		_, err := c.kv.Create(actx, key, value, opts...)
		switch {
		case err == nil:
			return struct{}{}, nil
		case errors.Is(err, jetstream.ErrKeyExists):
			if !ambiguous {
				return struct{}{}, backoff.Permanent(ErrReplayed)
			}
			e, gerr := c.kv.Get(actx, key)
			switch {
			case gerr == nil && bytes.Equal(e.Value(), value):
				return struct{}{}, nil // this claim's own earlier attempt
			case gerr == nil:
				return struct{}{}, backoff.Permanent(ErrReplayed)
			}
			last = gerr
			return struct{}{}, gerr
		}
		last = err
		switch bus.ClassifyPublish(err) {
		case bus.FailureRefused:
			return struct{}{}, backoff.Permanent(err)
		case bus.FailureUnknown:
			ambiguous = true
		}
		return struct{}{}, err
	}, backoff.WithBackOff(bus.RetryBackoff()), backoff.WithMaxElapsedTime(0))
	switch {
	case err == nil && !c.now().Before(expires):
		return fmt.Errorf("%w by the time its claim was made", ErrExpired)
	case err == nil:
		return nil
	case errors.Is(err, ErrReplayed), errors.Is(err, ErrExpired):
		return err
	case last != nil && ctx.Err() != nil:
		return fmt.Errorf("replay: claim: %w: %w (last try: %w)", ErrUnavailable, err, last)
	default:
		return fmt.Errorf("replay: claim: %w: %w", ErrUnavailable, err)
	}
}

// attemptTimeout bounds one try of a claim, so that a try sent to a
// leader that just died is retried on its successor within the deadline.
const attemptTimeout = time.Second
