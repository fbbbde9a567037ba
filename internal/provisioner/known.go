package provisioner

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/trace"

	"github.com/jitprov/jitprov/events"
	"github.com/jitprov/jitprov/internal/bus"
	"github.com/jitprov/jitprov/internal/known"
	"github.com/jitprov/jitprov/internal/store"
)

// Keeping the known identities right after an admin's change.
//
// sso-edge signs a returning person in without the provisioner when the
// record of their identity is Fresh: active, and decided on the claims
// they bring. An admin who suspends, reactivates or deprovisions a user,
// changes their role or unlinks one of their identities changes what such
// a record should say; the admin core only commits the change and its
// event. Consumer provisioner-known takes those events (bus.
// KnownInvalidations) and rewrites the records of the user's identities,
// read from the store rather than from the event, so that a redelivered
// or reordered event converges on the current state:
//
//   - after a change of status or role, each identity of the user gets a
//     record with the user's current status and role and no claims digest:
//     never fresh, so the next login takes the synchronous path and the
//     provisioner decides it (and writes a fresh record if the person may
//     sign in);
//   - after an unlink, the identity gets a record with status
//     known.StatusUnlinked (never fresh) — not a deletion, see below — or,
//     if it has been linked to someone since, a never-fresh record of its
//     user. The user's other identities are left alone: nothing about the
//     user changed.
//
// The ordering argument. Put keeps the record with the newest UpdatedAt
// and drops an older one, whatever order they arrive in. A decision's
// record carries UpdatedAt = its DecidedAt, taken from its replica's
// clock when the decision starts, and the same DecidedAt is stored with
// the decision in provisioning_decisions; a redelivered login re-writes
// the record with that same stored DecidedAt, possibly seconds later (a
// failed Put is retried on redelivery). The danger is a decision D that
// read the user before the admin's change A (so its record is stale) and
// whose record arrives after ours: ours must be newer than DecidedAt(D).
//
//   - D read the user locked (UserByIdentity, UserByEmail lock it until
//     commit; a creation precedes anything an admin can do to the user),
//     and A changes the user locked (UserByID), so D committed — decision
//     row included — before A could change the user; an unlink deletes the
//     identity row, which D's SeeIdentity or LinkIdentity holds locked
//     until it commits. A's event is published after A commits, and this
//     consumer reads the store after receiving it: D's decision row is
//     visible to the read.
//   - Our UpdatedAt is max(now, newest DecidedAt of the user's decisions
//     stored since now-1s, plus 1ms). A DecidedAt(D) before now is older
//     than our record. A DecidedAt(D) at or after now — D's replica's
//     clock runs ahead of this one's — is found by the query (its stored
//     value is at most 1µs below the exact one, the store's precision), so
//     our record is newer by up to 1ms. No bound on clock skew between
//     replicas is assumed.
//
// So a record written by a decision made before the admin's change never
// replaces ours, and one written before ours is replaced. The cost runs
// the other way, and is only a slower login: a decision made just after
// the change on a replica whose clock is behind ours may carry an older
// DecidedAt than our record, and is dropped; the person's next login takes
// the synchronous path again and records them. Our own records are never
// fresh, so two of them racing (a suspension and a reactivation handled
// out of order by two replicas) can only cost that too.
//
// Why not Delete the unlinked identity's record: a deleted key has no
// UpdatedAt to compare, and Put creates a record over it, so a stale
// decision's late record would link the identity to its old user again,
// for as long as the record lives (its TTL, 30 days by default). The
// unlinked record keeps the key ordered; the edge never signs anyone in
// from it, and its waiting page reads it as "decided since" and has the
// person sign in again.

// knownWorkers is how many admin events a replica handles at once; admins
// act rarely, and each event is a short transaction and a few Puts.
const knownWorkers = 2

// knownTimeout bounds the handling of one event.
const knownTimeout = 10 * time.Second

// Ordering of the records written after an admin's change (see above).
const (
	// knownLookBehind widens the query for decisions at or after now by
	// the store's time precision and more; anything older is older than
	// now anyway.
	knownLookBehind = time.Second
	// knownAfter is how much newer than the newest decision our record is:
	// more than the store's precision (1µs) loses of a DecidedAt.
	knownAfter = time.Millisecond
)

// TxStore runs transactions: what keeping the known identities right
// reads through.
type TxStore interface {
	InTx(ctx context.Context, fn func(ctx context.Context, tx store.Tx) error) error
}

// knownKeeper rewrites the known identities of users admins changed.
type knownKeeper struct {
	store TxStore
	known KnownIdentities
	log   *slog.Logger
	now   func() time.Time
	// tracer records each event's handling; nil records nothing.
	tracer trace.Tracer
}

// keepKnown consumes the admin events of cons (consumer provisioner-known)
// until ctx is done; then it drains, for up to drain.
func keepKnown(ctx context.Context, cons jetstream.Consumer, s TxStore, k KnownIdentities, drain time.Duration, tracer trace.Tracer, log *slog.Logger) error {
	kk := &knownKeeper{store: s, known: k, log: log, now: time.Now, tracer: tracer}
	maxDeliver := cons.CachedInfo().Config.MaxDeliver
	err := bus.Workers(ctx, cons, knownWorkers, drain, log, func(ctx context.Context, msg jetstream.Msg) {
		kk.handle(ctx, msg, maxDeliver)
	})
	if err != nil {
		return fmt.Errorf("provisioner: %w", err)
	}
	return nil
}

// userChange is what an admin event says changed: a user, and for an
// unlink the identity taken from them.
type userChange struct {
	typ      events.Type
	org      string
	userID   string
	unlinked *events.LinkedIdentity
}

// decodeUserChange reads one of bus.KnownInvalidations, checking that it
// arrived on its organisation's subject.
func decodeUserChange(m *nats.Msg) (userChange, error) {
	// User events are built and validated by jitprov's services
	// (events.New, through the outbox).
	ev, err := events.DecodeTrusted(m)
	if err != nil {
		return userChange{}, err
	}
	ch := userChange{typ: events.Type(ev.Type())}
	var u events.User
	switch ch.typ {
	case events.TypeUserSuspended, events.TypeUserReactivated, events.TypeUserDeprovisioned:
		d, err := events.DataAs[events.UserStatusChanged](ev, ch.typ)
		if err != nil {
			return ch, err
		}
		u = d.User
	case events.TypeUserRoleChanged:
		d, err := events.DataAs[events.UserRoleChanged](ev, ch.typ)
		if err != nil {
			return ch, err
		}
		u = d.User
	case events.TypeUserIdentityUnlinked:
		d, err := events.DataAs[events.IdentityUnlinked](ev, ch.typ)
		if err != nil {
			return ch, err
		}
		u, ch.unlinked = d.User, &d.Identity
	default:
		return ch, fmt.Errorf("%w: %s is not an event that changes known identities", events.ErrInvalid, ch.typ)
	}
	ch.org, ch.userID = u.OrganizationID, u.ID
	if want, err := events.Subject(ch.typ, ch.org); err != nil || want != m.Subject {
		return ch, fmt.Errorf("%w: %s of organisation %q arrived on subject %q", events.ErrInvalid, ch.typ, ch.org, m.Subject)
	}
	if ch.userID == "" {
		return ch, fmt.Errorf("%w: %s names no user", events.ErrInvalid, ch.typ)
	}
	return ch, nil
}

// handle applies one admin event: acked once the records are written,
// handed back with a backoff delay when the store or the bucket failed,
// terminated when it breaks the event contract.
func (k *knownKeeper) handle(ctx context.Context, msg jetstream.Msg, maxDeliver int) {
	ctx, cancel := context.WithTimeout(ctx, knownTimeout)
	defer cancel()
	if k.tracer != nil {
		// In the trace of the decision or admin action that wrote the event.
		var span trace.Span
		ctx, span = bus.StartConsume(ctx, k.tracer, "update known identity", bus.ConsumerKnown, msg)
		defer span.End()
	}
	ch, err := decodeUserChange(&nats.Msg{Subject: msg.Subject(), Header: msg.Headers(), Data: msg.Data()})
	if err != nil {
		k.log.ErrorContext(ctx, "user event breaks the event contract; terminated, it will not be retried",
			"subject", msg.Subject(), "ce_id", events.HeaderValue(msg.Headers(), "ce-id"), "err", err)
		if err := msg.TermWithReason("invalid event: " + truncate(err.Error(), 1000)); err != nil {
			k.log.WarnContext(ctx, "term failed", "err", err)
		}
		return
	}
	log := k.log.With("event", ch.typ.Short(), "org", ch.org, "user_id", ch.userID, "ce_id", events.HeaderValue(msg.Headers(), "ce-id"))
	n, err := k.apply(ctx, ch)
	if errors.Is(err, store.ErrInvalidData) {
		log.ErrorContext(ctx, "user event names what the store cannot hold; terminated, it will not be retried", "err", err)
		if err := msg.TermWithReason("invalid event: " + truncate(err.Error(), 1000)); err != nil {
			log.WarnContext(ctx, "term failed", "err", err)
		}
		return
	}
	if err == nil {
		if err := msg.Ack(); err != nil {
			log.WarnContext(ctx, "ack failed; the records are written again on redelivery", "err", err)
		}
		log.InfoContext(ctx, "known identities rewritten after an admin's change", "records", n)
		return
	}
	delivered := uint64(1)
	if md, err := msg.Metadata(); err == nil {
		delivered = md.NumDelivered
	}
	if maxDeliver > 0 && delivered >= uint64(maxDeliver) {
		log.ErrorContext(ctx, "giving up on a user event: the user's known identities may stay fresh with an old status or role "+
			"until their next synchronous login or their expiry; suspend or change the user again to retry", "deliveries", delivered, "err", err)
		if err := msg.TermWithReason("still failing after " + fmt.Sprint(delivered) + " deliveries"); err != nil {
			log.WarnContext(ctx, "term failed", "err", err)
		}
		return
	}
	delay := backoff(delivered)
	log.WarnContext(ctx, "could not rewrite the known identities after an admin's change; will retry",
		"delivery", delivered, "retry_in", delay, "err", err)
	if err := msg.NakWithDelay(delay); err != nil {
		log.WarnContext(ctx, "nak failed; the event is redelivered after the ack wait", "err", err)
	}
}

// apply reads what ch is about from the store — the user and its
// identities, or the unlinked identity — and the user's newest decision,
// and writes the records (see the top of this file). It returns how many.
func (k *knownKeeper) apply(ctx context.Context, ch userChange) (int, error) {
	var recs []known.Record
	err := k.store.InTx(ctx, func(ctx context.Context, tx store.Tx) error {
		recs = recs[:0]
		now := k.now().UTC()
		if ch.unlinked != nil {
			// The user is unchanged; the identity is what moved.
			conn, ext := ch.unlinked.ConnectionID, ch.unlinked.ExternalID
			owner, err := tx.UserByIdentity(ctx, ch.org, conn, ext)
			if err != nil && !errors.Is(err, store.ErrNotFound) {
				return err
			}
			at, aerr := orderAfter(ctx, tx, ch.org, ch.userID, now)
			if aerr != nil {
				return aerr
			}
			if err == nil { // linked again since, to this user or another
				recs = append(recs, neverFresh(owner, conn, ext, at))
			} else {
				recs = append(recs, known.Record{UserID: ch.userID, OrganizationID: ch.org, ConnectionID: conn, ExternalID: ext,
					Status: known.StatusUnlinked, UpdatedAt: at})
			}
			return nil
		}
		u, err := tx.UserByID(ctx, ch.org, ch.userID)
		if errors.Is(err, store.ErrNotFound) {
			return nil // no such user (any more): no identity of theirs to rewrite
		} else if err != nil {
			return err
		}
		ids, err := tx.Identities(ctx, u.ID)
		if err != nil {
			return err
		}
		at, err := orderAfter(ctx, tx, ch.org, u.ID, now)
		if err != nil {
			return err
		}
		for _, id := range ids {
			recs = append(recs, neverFresh(u, id.ConnectionID, id.ExternalID, at))
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	for _, rec := range recs {
		if err := k.known.Put(ctx, rec); err != nil {
			return 0, err
		}
	}
	return len(recs), nil
}

// orderAfter is the UpdatedAt of the records written after an admin's
// change to userID: later than now and than the DecidedAt of every
// decision about the user committed so far (see the top of this file).
func orderAfter(ctx context.Context, tx store.Tx, org, userID string, now time.Time) (time.Time, error) {
	page, err := tx.ListDecisions(ctx, store.DecisionFilter{OrganizationID: org, UserID: userID,
		Since: now.Add(-knownLookBehind), Limit: 1})
	if err != nil {
		return time.Time{}, err
	}
	at := now
	for _, d := range page.Decisions {
		newest := d.DecidedAt
		// The exact DecidedAt the decision's record carries is in its
		// stored answer; the column may have lost a little precision.
		var res struct {
			DecidedAt time.Time `json:"decided_at"`
		}
		if json.Unmarshal(d.Result, &res) == nil && res.DecidedAt.After(newest) {
			newest = res.DecidedAt
		}
		if after := newest.Add(knownAfter); after.After(at) {
			at = after
		}
	}
	return at.UTC(), nil
}

// neverFresh is the record of identity conn/ext of u, with u's current
// status and role and no claims digest: the edge never signs anyone in
// from it.
func neverFresh(u store.User, conn, ext string, at time.Time) known.Record {
	return known.Record{UserID: u.ID, OrganizationID: u.OrganizationID, ConnectionID: conn, ExternalID: ext,
		Role: u.Role, Status: u.Status, Email: u.Email, UpdatedAt: at}
}
