package provisioner

import (
	"context"
	"log/slog"
	"sync"
)

// heldLog is a slog.Handler that holds what a transaction logs until it
// commits: flush hands the records to the handler they were meant for,
// drop forgets them (the transaction rolled back and will be decided
// again, logging again). Handlers derived by WithAttrs and WithGroup
// share the records, each keeping the derived handler it writes to.
type heldLog struct {
	next    slog.Handler
	records *heldRecords
}

type heldRecords struct {
	mu   sync.Mutex
	list []heldRecord
}

type heldRecord struct {
	h   slog.Handler
	ctx context.Context
	r   slog.Record
}

func newHeldLog(next slog.Handler) *heldLog {
	return &heldLog{next: next, records: &heldRecords{}}
}

func (h *heldLog) Enabled(ctx context.Context, l slog.Level) bool { return h.next.Enabled(ctx, l) }

func (h *heldLog) Handle(ctx context.Context, r slog.Record) error {
	h.records.mu.Lock()
	defer h.records.mu.Unlock()
	h.records.list = append(h.records.list, heldRecord{h: h.next, ctx: context.WithoutCancel(ctx), r: r.Clone()})
	return nil
}

func (h *heldLog) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &heldLog{next: h.next.WithAttrs(attrs), records: h.records}
}

func (h *heldLog) WithGroup(name string) slog.Handler {
	return &heldLog{next: h.next.WithGroup(name), records: h.records}
}

// flush writes what is held, in order, and forgets it.
func (h *heldLog) flush() {
	h.records.mu.Lock()
	list := h.records.list
	h.records.list = nil
	h.records.mu.Unlock()
	for _, e := range list {
		_ = e.h.Handle(e.ctx, e.r)
	}
}

// drop forgets what is held.
func (h *heldLog) drop() {
	h.records.mu.Lock()
	h.records.list = nil
	h.records.mu.Unlock()
}
