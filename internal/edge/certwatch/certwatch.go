// Package certwatch is sso-edge's check of the IdP signing certificates:
// once a day (by default) it looks at every certificate a Source reports
// and warns the organisation's admins, through an idp-certificate.expiring
// event on stream ALERTS, 30, 7 and 1 days before the certificate expires
// and once it has expired.
//
// Every edge replica runs the check. Each (organisation, connection,
// certificate, step) is alerted once across all of them: the replica that
// first creates the step's mark in a JetStream key-value bucket (an atomic
// create) publishes the event, and the others see the mark and stay quiet.
// The event id is derived from the mark's key, so a publish that is
// retried within the stream's duplicate window is stored once.
//
// Failure windows, both small and both deliberate:
//   - A replica that dies between creating the mark and publishing leaves
//     the mark behind without an event: that step of that certificate is
//     not alerted (the next step still is). A publish that fails while the
//     replica lives deletes the mark, so the next check retries it.
//   - A publish that reached the stream but whose acknowledgement was lost
//     deletes the mark as well; the next check publishes the same event id
//     again, which the stream drops only within its duplicate window (2h by
//     default), so the admins may be told twice.
package certwatch

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/jitprov/jitprov/events"
	"github.com/jitprov/jitprov/internal/bus"
)

// Defaults of Config, and of Run's interval.
const (
	DefaultBucket   = "JITPROV_CERT_ALERTS"
	DefaultTTL      = 60 * 24 * time.Hour
	DefaultTimeout  = 5 * time.Second
	DefaultSource   = "/jitprov/sso-edge"
	DefaultInterval = 24 * time.Hour
)

const day = 24 * time.Hour

// maxSubject is the longest subject the event's schema accepts, in
// characters.
const maxSubject = 1024

// Cert is one IdP signing certificate of a connection.
type Cert struct {
	OrganizationID string
	ConnectionID   string
	Cert           *x509.Certificate
}

// Source lists the certificates to check. It returns every certificate it
// could read; a non-nil error describes the connections it could not read
// and does not void the certificates returned with it.
type Source interface {
	Certificates(ctx context.Context) ([]Cert, error)
}

// Step decides which warning a certificate expiring at notAfter gets at
// now: the smallest of 30, 7 and 1 days that is at least the time left
// (20 days left → 30, 5 → 7, 12 hours → 1), or 0 once the certificate has
// expired (now after notAfter; x509 validity includes notAfter itself).
// fires is false while more than 30 days are left.
func Step(notAfter, now time.Time) (threshold int, fires bool) {
	left := notAfter.Sub(now)
	switch {
	case left < 0:
		return 0, true
	case left <= 1*day:
		return 1, true
	case left <= 7*day:
		return 7, true
	case left <= 30*day:
		return 30, true
	}
	return 0, false
}

// DaysLeft is the whole days left until notAfter at now, 0 once expired.
func DaysLeft(notAfter, now time.Time) int {
	left := notAfter.Sub(now)
	if left < 0 {
		return 0
	}
	return int(left / day)
}

// Fingerprint is the lower-case hex SHA-256 of the DER certificate.
func Fingerprint(c *x509.Certificate) string {
	sum := sha256.Sum256(c.Raw)
	return hex.EncodeToString(sum[:])
}

// keyToken is what an organisation or connection id must look like to be
// one token of a mark's key (no dots, nothing a KV key refuses).
var keyToken = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

// Key is the mark of one warning: "<org>.<connection>.<fp16>.<step>", with
// fp16 the first 16 hex digits of the certificate's fingerprint. A new
// certificate (a rollover) has new marks; a new step has a new mark.
func Key(org, conn, fingerprint string, threshold int) (string, error) {
	if !keyToken.MatchString(org) || !keyToken.MatchString(conn) {
		return "", fmt.Errorf("certwatch: organisation %q or connection %q cannot be part of a key (want letters, digits, '-' and '_')", org, conn)
	}
	if len(fingerprint) < 16 {
		return "", fmt.Errorf("certwatch: fingerprint %q is too short", fingerprint)
	}
	return fmt.Sprintf("%s.%s.%s.%d", org, conn, fingerprint[:16], threshold), nil
}

// idNamespace names the event ids derived from marks' keys.
var idNamespace = uuid.NewSHA1(uuid.NameSpaceURL, []byte("https://jitprov.io/ns/idp-certificate.expiring"))

// EventID is the id of the event of the mark key: a name-based (version 5)
// UUID, the same for the same certificate and step on every replica.
func EventID(key string) string {
	return uuid.NewSHA1(idNamespace, []byte(key)).String()
}

// Config configures a Watcher. The zero value uses the defaults.
type Config struct {
	// Bucket of the marks. Default "JITPROV_CERT_ALERTS".
	Bucket string
	// Replicas of the bucket: 1 (default), 3 or 5.
	Replicas int
	// TTL is how long a mark lives. Default 60 days: longer than the 30
	// days the warning steps span, so no step alerts twice. A certificate
	// that stays expired in the IdP's metadata is reminded of once a TTL.
	TTL time.Duration
	// Timeout bounds each NATS call whose context has no earlier
	// deadline. Default 5s.
	Timeout time.Duration
	// Source is the events' CloudEvents source. Default
	// "/jitprov/sso-edge".
	Source string
	// Now is the clock; default time.Now.
	Now func() time.Time
	// Logger; default slog.Default().
	Logger *slog.Logger
}

// Watcher checks certificates and publishes the warnings. It is safe for
// concurrent use; any number of Watchers (one per edge replica) may share
// a bucket.
type Watcher struct {
	src Source
	js  jetstream.JetStream
	cfg Config
}

var bucketName = regexp.MustCompile(`^[a-zA-Z0-9_-]+$`)

// New returns a Watcher of src's certificates that publishes through js.
// It does no I/O: each check creates (or updates) the bucket first, so an
// unavailable NATS delays the checks and never the edge's start.
func New(src Source, js jetstream.JetStream, cfg Config) (*Watcher, error) {
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
	if cfg.Source == "" {
		cfg.Source = DefaultSource
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	switch {
	case src == nil || js == nil:
		return nil, errors.New("certwatch: a source and a JetStream handle are required")
	case !bucketName.MatchString(cfg.Bucket):
		return nil, fmt.Errorf("certwatch: bucket name %q: want letters, digits, '-' and '_'", cfg.Bucket)
	case cfg.Replicas != 1 && cfg.Replicas != 3 && cfg.Replicas != 5:
		return nil, fmt.Errorf("certwatch: replicas must be 1, 3 or 5, not %d", cfg.Replicas)
	case cfg.TTL <= 30*day || cfg.Timeout < 0:
		return nil, fmt.Errorf("certwatch: invalid durations (TTL %s, want more than 30 days; timeout %s)", cfg.TTL, cfg.Timeout)
	}
	return &Watcher{src: src, js: js, cfg: cfg}, nil
}

// Summary tells what one check did.
type Summary struct {
	// Checked counts the certificates looked at; Alerted the warnings
	// this watcher published; Failed the certificates that could not be
	// checked, plus one when the source could not read every connection.
	Checked, Alerted, Failed int
}

// Run checks at once and then every interval (DefaultInterval when not
// positive) until ctx is done. A failing check, connection or certificate
// is logged and never stops it.
func (w *Watcher) Run(ctx context.Context, every time.Duration) {
	if every <= 0 {
		every = DefaultInterval
	}
	log := w.cfg.Logger
	log.InfoContext(ctx, "IdP certificate check running", "every", every.String(), "bucket", w.cfg.Bucket)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		sum, err := w.Check(ctx)
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			log.ErrorContext(ctx, "IdP certificate check failed; retrying at the next check", "next_in", every.String(), "err", err)
		default:
			log.InfoContext(ctx, "IdP certificate check done",
				"checked", sum.Checked, "alerted", sum.Alerted, "failed", sum.Failed)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Check checks every certificate of the source once. It returns an error
// only when no certificate could be checked at all (the bucket is not
// available, or ctx ended); a connection or certificate that fails is
// logged, counted in Summary.Failed, and the others are checked.
func (w *Watcher) Check(ctx context.Context) (Summary, error) {
	var sum Summary
	kv, err := w.bucket(ctx)
	if err != nil {
		return sum, err
	}
	certs, err := w.src.Certificates(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return sum, ctx.Err()
		}
		sum.Failed++
		w.cfg.Logger.WarnContext(ctx, "IdP certificates of some connections could not be read; they are checked at the next check", "err", err)
	}
	now := w.cfg.Now()
	for _, c := range certs {
		if err := ctx.Err(); err != nil {
			return sum, err
		}
		sum.Checked++
		alerted, err := w.checkOne(ctx, kv, c, now)
		if err != nil {
			sum.Failed++
			w.cfg.Logger.ErrorContext(ctx, "IdP certificate not checked",
				"org", c.OrganizationID, "connection", c.ConnectionID, "err", err)
			continue
		}
		if alerted {
			sum.Alerted++
		}
	}
	return sum, nil
}

func (w *Watcher) bucket(ctx context.Context) (jetstream.KeyValue, error) {
	ctx, cancel := w.bound(ctx)
	defer cancel()
	kv, err := bus.EnsureKeyValue(ctx, w.js, jetstream.KeyValueConfig{
		Bucket:       w.cfg.Bucket,
		Description:  "sso-edge: IdP certificate warnings already published (org.connection.fingerprint16.step)",
		History:      1,
		TTL:          w.cfg.TTL,
		MaxValueSize: 1024,
		Storage:      jetstream.FileStorage,
		Replicas:     w.cfg.Replicas,
	}, w.cfg.Logger)
	if err != nil {
		return nil, fmt.Errorf("certwatch: %w", err)
	}
	return kv, nil
}

func (w *Watcher) bound(ctx context.Context) (context.Context, context.CancelFunc) {
	if w.cfg.Timeout <= 0 {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, w.cfg.Timeout)
}

// mark is the value of a mark, for an operator reading the bucket.
type mark struct {
	EventID   string    `json:"event_id"`
	ClaimedAt time.Time `json:"claimed_at"`
}

// checkOne publishes c's warning if a step fires and no replica has
// published it yet. It reports whether this call published.
func (w *Watcher) checkOne(ctx context.Context, kv jetstream.KeyValue, c Cert, now time.Time) (bool, error) {
	if c.Cert == nil {
		return false, errors.New("certwatch: no certificate")
	}
	threshold, fires := Step(c.Cert.NotAfter, now)
	if !fires {
		return false, nil
	}
	fp := Fingerprint(c.Cert)
	key, err := Key(c.OrganizationID, c.ConnectionID, fp, threshold)
	if err != nil {
		return false, err
	}
	// The event is built (and validated against its schema) before the
	// mark is taken, so that an event that cannot be published never
	// leaves a mark.
	id := EventID(key)
	ev, err := events.NewWithID(id, events.TypeIdPCertificateExpiring, w.cfg.Source, c.ConnectionID, now.UTC(),
		events.IdPCertificateExpiring{
			OrganizationID:    c.OrganizationID,
			ConnectionID:      c.ConnectionID,
			Subject:           truncate(c.Cert.Subject.String(), maxSubject),
			FingerprintSHA256: fp,
			NotAfter:          c.Cert.NotAfter.UTC(),
			DaysLeft:          DaysLeft(c.Cert.NotAfter, now),
			ThresholdDays:     threshold,
			Expired:           now.After(c.Cert.NotAfter),
		})
	if err != nil {
		return false, fmt.Errorf("certwatch: %w", err)
	}
	value, err := json.Marshal(mark{EventID: id, ClaimedAt: now.UTC()})
	if err != nil {
		return false, fmt.Errorf("certwatch: %w", err)
	}
	cctx, cancel := w.bound(ctx)
	rev, err := kv.Create(cctx, key, value)
	cancel()
	switch {
	case errors.Is(err, jetstream.ErrKeyExists):
		return false, nil // alerted already, by this replica or another
	case err != nil:
		return false, fmt.Errorf("certwatch: claim %s: %w", key, err)
	}
	pctx, cancel := w.bound(ctx)
	err = bus.Publish(pctx, w.js, ev, c.OrganizationID)
	cancel()
	if err == nil {
		w.cfg.Logger.InfoContext(ctx, "IdP certificate warning published",
			"org", c.OrganizationID, "connection", c.ConnectionID, "fingerprint", fp,
			"not_after", c.Cert.NotAfter.UTC(), "threshold_days", threshold, "event_id", id)
		return true, nil
	}
	// Give the mark back so that the next check retries. Not with ctx,
	// which may be what ended the publish; and only our own revision.
	dctx, cancel := w.bound(context.WithoutCancel(ctx))
	defer cancel()
	if derr := kv.Delete(dctx, key, jetstream.LastRevision(rev)); derr != nil {
		return false, fmt.Errorf("certwatch: %w; deleting the mark %s failed too, so this warning is lost until the mark expires: %w", err, key, derr)
	}
	return false, fmt.Errorf("certwatch: %w (the next check retries)", err)
}

// truncate shortens s to at most n characters.
func truncate(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n])
}
