package provisioner

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/jitprov/jitprov/internal/bus"
)

// inHand holds the logins delivered and not yet taken by a worker, by
// subject (one subject per organisation), in order of arrival. A worker
// takes the logins of the organisations waiting longest that no other
// worker is deciding, each organisation's together, up to a batch: what
// is in hand now, never waiting for more.
//
// One organisation is decided by one worker at a time: its logins that
// arrive meanwhile wait for that worker's transaction to end and are
// then decided together, so the busier an organisation, the larger its
// groups; and two workers never queue on its seat row (its reservation
// is the last statement of each transaction), which is what made a
// one-organisation storm slower than many organisations. Many quiet
// organisations share a batch, and with it a transaction.
type inHand struct {
	mu     sync.Mutex
	cond   *sync.Cond
	queues map[string][]jetstream.Msg
	order  []string        // subjects with logins waiting, oldest first
	busy   map[string]bool // subjects a worker is deciding
	n      int             // logins waiting
	limit  int             // logins held at most; the consumer's callback waits beyond
	batch  int
	// draining: no more deliveries come; workers return once it is empty.
	draining bool
	// closed: workers return at once, leaving what waits unacked.
	closed bool
}

func newInHand(limit, batch int) *inHand {
	h := &inHand{queues: map[string][]jetstream.Msg{}, busy: map[string]bool{}, limit: limit, batch: batch}
	h.cond = sync.NewCond(&h.mu)
	return h
}

// put adds a delivery, waiting while limit logins wait already; it reports
// false when closed.
func (h *inHand) put(msg jetstream.Msg) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	for h.n >= h.limit && !h.closed {
		h.cond.Wait()
	}
	if h.closed {
		return false
	}
	subj := msg.Subject()
	if len(h.queues[subj]) == 0 {
		h.order = append(h.order, subj)
	}
	h.queues[subj] = append(h.queues[subj], msg)
	h.n++
	h.cond.Broadcast()
	return true
}

// take waits for a login of an organisation no worker is deciding and
// returns it with the other logins in hand of the organisations no worker
// is deciding, oldest first, up to a batch, and their subjects, which the
// worker hands back to release once decided; nil when the worker should
// return.
func (h *inHand) take() ([]jetstream.Msg, []string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for {
		if h.closed {
			return nil, nil
		}
		if h.free() >= 0 {
			var msgs []jetstream.Msg
			var subjs []string
			for len(msgs) < h.batch {
				i := h.free()
				if i < 0 {
					break
				}
				m, subj := h.takeAt(i, h.batch-len(msgs))
				msgs, subjs = append(msgs, m...), append(subjs, subj)
			}
			h.cond.Broadcast()
			return msgs, subjs
		}
		if h.n == 0 && h.draining {
			return nil, nil
		}
		h.cond.Wait()
	}
}

// free is the index in order of the oldest subject no worker is
// deciding, or -1.
func (h *inHand) free() int {
	for i, subj := range h.order {
		if !h.busy[subj] {
			return i
		}
	}
	return -1
}

func (h *inHand) takeAt(i, most int) ([]jetstream.Msg, string) {
	subj := h.order[i]
	q := h.queues[subj]
	k := min(len(q), most)
	msgs := q[:k:k]
	h.order = append(h.order[:i], h.order[i+1:]...)
	if rest := q[k:]; len(rest) > 0 {
		h.queues[subj] = rest
		h.order = append(h.order, subj) // the others' turn first
	} else {
		delete(h.queues, subj)
	}
	h.busy[subj] = true
	h.n -= k
	return msgs, subj
}

// release ends a worker's decision of subjs: their next logins may be
// taken.
func (h *inHand) release(subjs []string) {
	h.mu.Lock()
	for _, subj := range subjs {
		delete(h.busy, subj)
	}
	h.mu.Unlock()
	h.cond.Broadcast()
}

func (h *inHand) drain() {
	h.mu.Lock()
	h.draining = true
	h.mu.Unlock()
	h.cond.Broadcast()
}

func (h *inHand) close() {
	h.mu.Lock()
	h.closed = true
	h.mu.Unlock()
	h.cond.Broadcast()
}

// consume runs workers over batches of the consumer's deliveries until ctx
// is done, then drains as bus.Workers does: no more pulls, the logins in
// hand finished within the drain timeout, the rest left to redelivery.
//
// handle decides a batch and hands each login's answer to answer, which
// runs it on a goroutine of its own; at most a worker's share of the
// logins in hand wait to be answered at once, beyond which answer waits.
func (s *Service) consume(ctx context.Context, handle func(ctx context.Context, msgs []jetstream.Msg, answer func(func()))) error {
	n, batch := s.opts.Workers, s.opts.MaxBatch
	h := newInHand(n*batch, batch)
	hctx, cancelHandlers := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelHandlers()
	var answering sync.WaitGroup
	answerSlots := make(chan struct{}, n*batch)
	answer := func(fn func()) {
		answerSlots <- struct{}{}
		answering.Go(func() {
			defer func() { <-answerSlots }()
			fn()
		})
	}
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			for {
				msgs, subjs := h.take()
				if msgs == nil {
					return
				}
				func() {
					// Released however the decision ends: a worker that
					// dies mid-decision must not keep its organisation
					// from the others.
					defer h.release(subjs)
					handle(hctx, msgs, answer)
				}()
			}
		})
	}
	stop := func() {
		h.close()
		wg.Wait()
		answering.Wait()
	}
	name := s.cons.CachedInfo().Name
	cc, err := s.cons.Consume(func(msg jetstream.Msg) { h.put(msg) },
		// Deliveries wait in hand for a worker (and run down their ack
		// wait meanwhile): pull what the workers take in a round.
		jetstream.PullMaxMessages(max(n, batch)),
		jetstream.PullExpiry(bus.PullExpiry),
		jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
			s.log.WarnContext(ctx, "consumer trouble; retrying", "consumer", name, "err", err)
		}))
	if err != nil {
		stop()
		return fmt.Errorf("consume %s: %w", name, err)
	}
	select {
	case <-ctx.Done():
	case <-cc.Closed():
		stop()
		return fmt.Errorf("consumer %q stopped while running (deleted or re-created?); "+
			"exiting so that the next start re-creates it", name)
	}
	deadline := time.NewTimer(s.opts.DrainTimeout)
	defer deadline.Stop()
	cc.Drain()
	select {
	case <-cc.Closed():
	case <-deadline.C:
		cc.Stop()
		cancelHandlers()
		s.log.WarnContext(ctx, "drain timed out; unfinished deliveries will be redelivered", "consumer", name)
		stop()
		return nil
	}
	h.drain()
	done := make(chan struct{})
	go func() { wg.Wait(); answering.Wait(); close(done) }()
	select {
	case <-done:
	case <-deadline.C:
		cancelHandlers()
		s.log.WarnContext(ctx, "drain timed out; unfinished deliveries will be redelivered", "consumer", name)
		stop()
	}
	return nil
}
