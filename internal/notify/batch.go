package notify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// A batch gathers alerts of one kind for one organisation into a single
// message: seats.exhausted (at most one message per cool-down, counting
// the people turned away) and role reviews in digest mode. Batches live
// in a KV bucket, one key per organisation and alert, updated with
// compare-and-set, so that any number of notifier replicas can add to
// them and flush them.

const (
	// maxBatchEvents bounds the alerts a batch keeps to show; Count goes on.
	maxBatchEvents = 50
	// maxRecent bounds the event ids a batch remembers to ignore a
	// redelivered alert.
	maxRecent = 512
	casTries  = 50
)

type batchState struct {
	Org        string     `json:"organization_id"`
	Alert      string     `json:"alert"`
	LastSentAt time.Time  `json:"last_sent_at,omitzero"`
	Open       *openBatch `json:"open,omitempty"`
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
}

func batchKey(alert, org string) string { return "b." + alert + "." + org }

// Batches adds alerts to batches and flushes those that are due.
type Batches struct {
	kv  jetstream.KeyValue
	now func() time.Time
	log *slog.Logger
}

// add folds one alert (event id, structured JSON, time) into the batch of
// org and alert. A batch opened now falls due after delay, and not before
// interval has passed since the last message.
func (b *Batches) add(ctx context.Context, alert, org, id string, raw json.RawMessage, at time.Time, delay, interval time.Duration) error {
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
			st.Open = &openBatch{ID: fmt.Sprintf("%s.%s.%d", alert, org, now.UnixNano()), Since: at, Due: due}
		}
		st.Open.Count++
		st.Open.Events = tail(append(st.Open.Events, raw), maxBatchEvents)
		st.Recent = tail(append(st.Recent, id), maxRecent)
		if err := b.put(ctx, key, st, rev); errors.Is(err, errStale) {
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

func (b *Batches) put(ctx context.Context, key string, st batchState, rev uint64) error {
	data, err := json.Marshal(st)
	if err != nil {
		return err
	}
	if rev == 0 {
		_, err = b.kv.Create(ctx, key, data)
	} else {
		_, err = b.kv.Update(ctx, key, data, rev)
	}
	var apiErr *jetstream.APIError
	if errors.Is(err, jetstream.ErrKeyExists) || (errors.As(err, &apiErr) && apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence) {
		return errStale
	}
	if err != nil {
		return fmt.Errorf("notify: write batch %s: %w", key, err)
	}
	return nil
}

// flush sends the batch at key if it is due: send publishes its jobs
// (idempotently: a repeated send after a crash publishes the same job
// ids). Alerts that joined the batch while it was being sent are kept
// for the next message.
func (b *Batches) flush(ctx context.Context, key string, send func(context.Context, Job) error) error {
	st, rev, err := b.get(ctx, key)
	if err != nil || st.Open == nil || b.now().Before(st.Open.Due) {
		return err
	}
	sent := *st.Open
	if err := send(ctx, Job{ID: sent.ID, Org: st.Org, Alert: st.Alert, Events: sent.Events, Count: sent.Count, Since: sent.Since}); err != nil {
		return err
	}
	for range casTries {
		now := b.now()
		next := st
		next.LastSentAt, next.Open = now, nil
		if st.Open != nil && st.Open.ID == sent.ID && st.Open.Count > sent.Count {
			rest := st.Open.Count - sent.Count
			next.Open = &openBatch{ID: fmt.Sprintf("%s.%s.%d", st.Alert, st.Org, now.UnixNano()), Since: now,
				Due: now.Add(st.Interval), Count: rest, Events: tail(st.Open.Events, min(rest, len(st.Open.Events)))}
		}
		err := b.put(ctx, key, next, rev)
		if !errors.Is(err, errStale) {
			return err
		}
		if st, rev, err = b.get(ctx, key); err != nil {
			return err
		}
		if st.Open == nil || st.Open.ID != sent.ID {
			return nil // another replica recorded this flush
		}
	}
	return fmt.Errorf("notify: batch %s: still contended after %d tries", key, casTries)
}

// watch keeps due up to date with the open batches until ctx ends, and
// calls wake when one changes.
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
				return nil
			}
			if e == nil {
				continue // the initial values are all in
			}
			var st batchState
			mu.Lock()
			if e.Operation() == jetstream.KeyValuePut && json.Unmarshal(e.Value(), &st) == nil && st.Open != nil {
				due[e.Key()] = st.Open.Due
			} else {
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
