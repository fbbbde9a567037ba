package notify

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/jitprov/jitprov/events"
	"github.com/jitprov/jitprov/internal/telemetry"
)

// A batch gathers alerts of one kind for one organisation into a single
// message: seats.exhausted (at most one message per cool-down, counting
// the people turned away) and role reviews in digest mode. Batches live
// in a KV bucket, one key per organisation and alert, updated with
// compare-and-set, so that any number of notifier replicas can add to
// them and flush them.
//
// A flush first closes the open batch (moves it to Sending, in one
// compare-and-set), then publishes its jobs, then clears Sending. Alerts
// arriving meanwhile open the next batch, so what is sent never changes
// after it was first published: a flush repeated after a crash publishes
// the same jobs under the same ids, which JetStream and the delivery
// records drop, and nothing that arrived in between is lost.

const (
	// maxBatchEvents bounds the alerts a batch keeps to show; Count goes on.
	maxBatchEvents = 50
	// maxRecent bounds the event ids a batch remembers to ignore a
	// redelivered alert.
	maxRecent = 512
	// maxPeople bounds the distinct people a batch tells apart; beyond
	// it, People stops growing while Count goes on.
	maxPeople = 1000
	casTries  = 50
)

type batchState struct {
	Org        string     `json:"organization_id"`
	Alert      string     `json:"alert"`
	LastSentAt time.Time  `json:"last_sent_at,omitzero"`
	Open       *openBatch `json:"open,omitempty"`
	// Sending is a closed batch whose jobs are being published.
	Sending *openBatch `json:"sending,omitempty"`
	// Interval is the organisation's cool-down or digest interval, kept
	// for the next batch.
	Interval time.Duration `json:"interval"`
	Recent   []string      `json:"recent,omitempty"`
}

type openBatch struct {
	ID     string            `json:"id"`
	Since  time.Time         `json:"since"`
	Due    time.Time         `json:"due"`
	Count  int               `json:"count"`
	Events []json.RawMessage `json:"events"`
	// People are hashes of the distinct people the alerts are about.
	People []string `json:"people,omitempty"`
	// Traceparent is the W3C trace context of the alert that opened the
	// batch: its message is sent in that alert's trace.
	Traceparent string `json:"traceparent,omitempty"`
}

func (o *openBatch) job(st batchState) Job {
	return Job{ID: o.ID, Org: st.Org, Alert: st.Alert, Events: o.Events, Count: o.Count, People: len(o.People), Since: o.Since}
}

func batchKey(alert, org string) string { return "b." + alert + "." + org }

// Batches adds alerts to batches and flushes those that are due.
type Batches struct {
	kv  jetstream.KeyValue
	now func() time.Time
	log *slog.Logger
	// tracer records the sending of a batch in the trace of the alert
	// that opened it; nil records nothing.
	tracer trace.Tracer
}

// add folds one alert (event id, structured JSON, time, and the person it
// is about, "" if none) into the batch of org and alert. A batch opened
// now falls due after delay, and not before interval has passed since the
// last message.
func (b *Batches) add(ctx context.Context, alert, org, id string, raw json.RawMessage, at time.Time, person string, delay, interval time.Duration) error {
	key := batchKey(alert, org)
	for range casTries {
		st, rev, err := b.get(ctx, key)
		if err != nil {
			return err
		}
		if slices.Contains(st.Recent, id) {
			return nil // a redelivered alert, already counted
		}
		now := b.now()
		st.Org, st.Alert, st.Interval = org, alert, interval
		if st.Open == nil {
			due := now.Add(delay)
			if next := st.LastSentAt.Add(interval); next.After(due) {
				due = next
			}
			h := nats.Header{}
			events.InjectTrace(ctx, h)
			st.Open = &openBatch{ID: fmt.Sprintf("%s.%s.%d", alert, org, now.UnixNano()), Since: at, Due: due,
				Traceparent: h.Get("traceparent")}
		}
		st.Open.Count++
		st.Open.Events = tail(append(st.Open.Events, raw), maxBatchEvents)
		if person != "" && len(st.Open.People) < maxPeople {
			sum := sha256.Sum256([]byte(person))
			if h := hex.EncodeToString(sum[:8]); !slices.Contains(st.Open.People, h) {
				st.Open.People = append(st.Open.People, h)
			}
		}
		st.Recent = tail(append(st.Recent, id), maxRecent)
		if _, err := b.put(ctx, key, st, rev); errors.Is(err, errStale) {
			continue
		} else if err != nil {
			return err
		}
		return nil
	}
	return fmt.Errorf("notify: batch %s: still contended after %d tries", key, casTries)
}

var errStale = errors.New("notify: batch changed meanwhile")

func (b *Batches) get(ctx context.Context, key string) (batchState, uint64, error) {
	e, err := b.kv.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return batchState{}, 0, nil
	} else if err != nil {
		return batchState{}, 0, fmt.Errorf("notify: read batch %s: %w", key, err)
	}
	var st batchState
	if err := json.Unmarshal(e.Value(), &st); err != nil {
		return batchState{}, 0, fmt.Errorf("notify: batch %s is unreadable: %w", key, err)
	}
	return st, e.Revision(), nil
}

// put writes st if the key is still at rev (0: does not exist yet), and
// returns the new revision; errStale when it moved.
func (b *Batches) put(ctx context.Context, key string, st batchState, rev uint64) (uint64, error) {
	data, err := json.Marshal(st)
	if err != nil {
		return 0, err
	}
	var next uint64
	if rev == 0 {
		next, err = b.kv.Create(ctx, key, data)
	} else {
		next, err = b.kv.Update(ctx, key, data, rev)
	}
	var apiErr *jetstream.APIError
	if errors.Is(err, jetstream.ErrKeyExists) || (errors.As(err, &apiErr) && apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence) {
		return 0, errStale
	}
	if err != nil {
		return 0, fmt.Errorf("notify: write batch %s: %w", key, err)
	}
	return next, nil
}

// flush sends the batch at key if it is due, in three steps: close it
// (Open → Sending), publish its jobs with send, clear Sending. A flush
// interrupted after the first step is finished by the next one, which
// publishes the very same jobs.
func (b *Batches) flush(ctx context.Context, key string, send func(context.Context, Job) error) error {
	st, rev, err := b.get(ctx, key)
	if err != nil {
		return err
	}
	if st.Sending == nil {
		if st.Open == nil || b.now().Before(st.Open.Due) {
			return nil
		}
		closed := st
		closed.Sending, closed.Open, closed.LastSentAt = st.Open, nil, b.now()
		if rev, err = b.put(ctx, key, closed, rev); errors.Is(err, errStale) {
			return nil // an alert joined or another replica flushed: next tick
		} else if err != nil {
			return err
		}
		st = closed
	}
	sending := st.Sending
	if err := b.send(ctx, st, sending, send); err != nil {
		return err // Sending stays: the next flush publishes it again
	}
	for range casTries {
		if st.Sending == nil || st.Sending.ID != sending.ID {
			return nil // another replica finished this flush
		}
		done := st
		done.Sending = nil
		_, err := b.put(ctx, key, done, rev)
		if !errors.Is(err, errStale) {
			return err
		}
		if st, rev, err = b.get(ctx, key); err != nil {
			return err
		}
	}
	return fmt.Errorf("notify: batch %s: still contended after %d tries", key, casTries)
}

// send sends batch o of st with send, in a span that is a child of the
// alert that opened the batch.
func (b *Batches) send(ctx context.Context, st batchState, o *openBatch, send func(context.Context, Job) error) error {
	if b.tracer == nil {
		return send(ctx, o.job(st))
	}
	if o.Traceparent != "" {
		ctx = events.ExtractTrace(ctx, nats.Header{"traceparent": []string{o.Traceparent}})
	}
	ctx, span := b.tracer.Start(ctx, "send batch", trace.WithAttributes(attribute.String("jitprov.org", st.Org),
		attribute.String("jitprov.alert", st.Alert), attribute.String("jitprov.message", o.ID), attribute.Int("jitprov.count", o.Count)))
	defer span.End()
	err := send(ctx, o.job(st))
	if err != nil {
		telemetry.RecordFailure(span, err, "not sent")
	}
	return err
}

// watch keeps due up to date with the batches to send until ctx ends (a
// batch being sent is due at once), and calls wake when one changes.
func (b *Batches) watch(ctx context.Context, due map[string]time.Time, mu *sync.Mutex, wake func()) error {
	w, err := b.kv.WatchAll(ctx)
	if err != nil {
		return fmt.Errorf("notify: watch batches: %w", err)
	}
	defer func() { _ = w.Stop() }()
	for {
		select {
		case <-ctx.Done():
			return nil
		case e, ok := <-w.Updates():
			if !ok {
				if ctx.Err() != nil {
					return nil
				}
				return errors.New("notify: the batch watcher stopped; batches would no longer be sent")
			}
			if e == nil {
				continue // the initial values are all in
			}
			var st batchState
			mu.Lock()
			switch {
			case e.Operation() != jetstream.KeyValuePut || json.Unmarshal(e.Value(), &st) != nil:
				delete(due, e.Key())
			case st.Sending != nil:
				due[e.Key()] = time.Time{}
			case st.Open != nil:
				due[e.Key()] = st.Open.Due
			default:
				delete(due, e.Key())
			}
			mu.Unlock()
			if strings.HasPrefix(e.Key(), "b.") {
				wake()
			}
		}
	}
}

func tail[T any](s []T, n int) []T {
	if len(s) > n {
		return slices.Clone(s[len(s)-n:])
	}
	return s
}
