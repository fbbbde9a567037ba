package notify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/jitprov/jitprov/events"
	"github.com/jitprov/jitprov/internal/bus"
	"github.com/jitprov/jitprov/internal/telemetry"
)

// Delivery record statuses.
const (
	RecordDelivered = "delivered"
	RecordFailing   = "failing"
	RecordParked    = "parked"
)

// Record is what the notifier knows of one job's delivery to its
// recipient.
type Record struct {
	MsgID       string    `json:"msg_id"`
	Org         string    `json:"organization_id"`
	Alert       string    `json:"alert"`
	Recipient   string    `json:"recipient"`
	Status      string    `json:"status"`
	Attempts    int       `json:"attempts"`
	LastError   string    `json:"last_error,omitempty"`
	UpdatedAt   time.Time `json:"updated_at"`
	DeliveredAt time.Time `json:"delivered_at,omitzero"`
}

// Headers of a parked job.
const (
	HeaderError    = "Jitprov-Error"
	HeaderAttempts = "Jitprov-Attempts"
)

// senderOptions shape deliveries.
type senderOptions struct {
	MaxAttempts    int
	BackoffMin     time.Duration
	BackoffMax     time.Duration
	PerOrg         int
	WebhookTimeout time.Duration
	MailTimeout    time.Duration
}

// sender delivers jobs.
type sender struct {
	js      jetstream.JetStream
	dir     *Directory
	records jetstream.KeyValue
	webhook *WebhookSender
	mailer  *Mailer // nil: no SMTP server configured
	links   Links
	opts    senderOptions
	log     *slog.Logger
	m       senderMetrics
	tracer  trace.Tracer

	mu       sync.Mutex
	inflight map[string]int // organisation → deliveries in progress
}

type senderMetrics struct {
	deliveries metric.Int64Counter
	parked     metric.Int64Counter
	duplicates metric.Int64Counter
}

func newSenderMetrics(m metric.Meter) (senderMetrics, error) {
	var out senderMetrics
	var errs [3]error
	out.deliveries, errs[0] = m.Int64Counter("jitprov.notifier.deliveries",
		metric.WithDescription("Delivery attempts, by channel and result (delivered, retry, parked)."))
	out.parked, errs[1] = m.Int64Counter("jitprov.notifier.parked",
		metric.WithDescription("Jobs parked in the dead-letter stream NOTIFY_DEAD after their last try."))
	out.duplicates, errs[2] = m.Int64Counter("jitprov.notifier.duplicates_skipped",
		metric.WithDescription("Redelivered jobs not sent again because their recipient had them already."))
	return out, errors.Join(errs[:]...)
}

// handle delivers one job, in a consumer span that continues the trace of
// the alert (the planner's producer span is its parent), so that its logs
// carry the alert's trace_id and the webhook request its traceparent.
func (s *sender) handle(ctx context.Context, msg jetstream.Msg) {
	ctx, span := bus.StartConsume(ctx, s.tracer, "deliver notification", ConsumerSender, msg)
	defer span.End()
	var j Job
	err := json.Unmarshal(msg.Data(), &j)
	if err == nil {
		err = j.validate()
	}
	if err != nil {
		span.SetStatus(codes.Error, "invalid job")
		s.log.ErrorContext(ctx, "invalid notification job; terminated", "subject", msg.Subject(), "err", err)
		_ = msg.Term()
		return
	}
	span.SetAttributes(attribute.String("jitprov.org", j.Org), attribute.String("jitprov.alert", j.Alert),
		attribute.String("jitprov.channel", j.Recipient.Kind), attribute.String("jitprov.message", j.ID))
	log := s.log.With("org", j.Org, "alert", j.Alert, "recipient", j.Recipient.Key(), "message", j.ID)
	key := recordKey(j.MsgID())
	rec, err := s.record(ctx, key)
	if err != nil {
		log.WarnContext(ctx, "cannot read the delivery record; retrying later", "err", err)
		_ = msg.NakWithDelay(s.opts.BackoffMin)
		return
	}
	if rec.Status == RecordDelivered {
		// A redelivery of a job the recipient has: the earlier try was
		// delivered but its ack was lost (a crash, a restart).
		s.m.duplicates.Add(ctx, 1)
		log.InfoContext(ctx, "job already delivered to this recipient; not sending again")
		_ = msg.Ack()
		return
	}
	if !s.acquire(j.Org) {
		// The organisation's receivers are busy (or hanging): leave this
		// job for later and keep the workers for other organisations.
		// This wait is not a try.
		_ = msg.NakWithDelay(s.opts.BackoffMin + rand.N(s.opts.BackoffMin))
		return
	}
	defer s.release(j.Org)

	rec.MsgID, rec.Org, rec.Alert, rec.Recipient = j.MsgID(), j.Org, j.Alert, j.Recipient.Key()
	rec.Attempts++
	rec.UpdatedAt = time.Now().UTC()
	err = s.deliver(ctx, j)
	channel := metric.WithAttributes(attribute.String("channel", j.Recipient.Kind))
	if err == nil {
		rec.Status, rec.DeliveredAt, rec.LastError = RecordDelivered, rec.UpdatedAt, ""
		if err := s.putRecord(ctx, key, rec); err != nil {
			log.WarnContext(ctx, "delivered, but the delivery record was not written; a redelivery would send it again", "err", err)
		}
		if err := msg.DoubleAck(ctx); err != nil {
			log.WarnContext(ctx, "delivered, but the ack failed; the redelivery will find the delivery record", "err", err)
		}
		s.m.deliveries.Add(ctx, 1, channel, metric.WithAttributes(attribute.String("result", "delivered")))
		log.InfoContext(ctx, "alert delivered", "attempt", rec.Attempts)
		return
	}
	telemetry.RecordFailure(span, err, "not delivered")
	rec.LastError = truncate(err.Error(), 1000)
	if isPermanent(err) || rec.Attempts >= s.opts.MaxAttempts {
		s.park(ctx, log, msg, j, key, rec, err)
		s.m.deliveries.Add(ctx, 1, channel, metric.WithAttributes(attribute.String("result", "parked")))
		return
	}
	rec.Status = RecordFailing
	if err := s.putRecord(ctx, key, rec); err != nil {
		log.WarnContext(ctx, "cannot write the delivery record", "err", err)
	}
	delay := bus.NakDelay(rec.Attempts, s.opts.BackoffMin, s.opts.BackoffMax)
	s.m.deliveries.Add(ctx, 1, channel, metric.WithAttributes(attribute.String("result", "retry")))
	log.WarnContext(ctx, "delivery failed; will retry", "attempt", rec.Attempts, "of", s.opts.MaxAttempts, "retry_in", delay, "err", err)
	if err := msg.NakWithDelay(delay); err != nil {
		log.WarnContext(ctx, "nak failed; the job is redelivered after the ack wait", "err", err)
	}
}

// park moves a job that failed for good to the dead-letter stream, then
// removes it from the queue. If parking fails the job stays queued.
func (s *sender) park(ctx context.Context, log *slog.Logger, msg jetstream.Msg, j Job, key string, rec Record, cause error) {
	h := nats.Header{}
	h.Set(HeaderError, rec.LastError)
	h.Set(HeaderAttempts, strconv.Itoa(rec.Attempts))
	events.InjectTrace(ctx, h)
	_, err := s.js.PublishMsg(ctx, &nats.Msg{Subject: subjectDead + "." + j.Org, Header: h, Data: msg.Data()},
		jetstream.WithMsgID("dead/"+j.MsgID()))
	if err != nil {
		log.ErrorContext(ctx, "cannot park the failed job in the dead-letter stream; it stays queued", "err", err, "cause", cause)
		_ = msg.NakWithDelay(s.opts.BackoffMax)
		return
	}
	rec.Status = RecordParked
	if err := s.putRecord(ctx, key, rec); err != nil {
		log.WarnContext(ctx, "cannot write the delivery record", "err", err)
	}
	if err := msg.DoubleAck(ctx); err != nil {
		log.WarnContext(ctx, "parked, but the ack failed; the job may be parked twice", "err", err)
	}
	s.m.parked.Add(ctx, 1, metric.WithAttributes(attribute.String("channel", j.Recipient.Kind)))
	log.ErrorContext(ctx, "delivery failed for good; job parked in "+StreamDead+" (see `notifier dead list`)",
		"attempts", rec.Attempts, "err", cause)
}

// deliver sends j to its recipient, within the channel's timeout.
func (s *sender) deliver(ctx context.Context, j Job) error {
	_, name := s.dir.Settings(j.Org)
	msg, err := Render(j, name, s.links)
	if err != nil {
		return &PermanentError{Err: err}
	}
	switch j.Recipient.Kind {
	case KindWebhook:
		w, secret, ok := s.dir.webhook(j.Org, j.Recipient.Address)
		if !ok {
			return permanent("webhook %q is no longer configured for organisation %s", j.Recipient.Address, j.Org)
		}
		body, contentType, err := s.webhook.Body(j, w, msg)
		if err != nil {
			return &PermanentError{Err: err}
		}
		ctx, cancel := context.WithTimeout(ctx, s.opts.WebhookTimeout)
		defer cancel()
		return s.webhook.Send(ctx, w, secret, j.MsgID(), body, contentType)
	case KindEmail:
		if s.mailer == nil {
			return permanent("no SMTP server is configured (JITPROV_SMTP_ADDR): cannot mail %s", j.Recipient.Address)
		}
		ctx, cancel := context.WithTimeout(ctx, s.opts.MailTimeout)
		defer cancel()
		// The recipient's address stays out of the span: it is personal data.
		ctx, span := s.tracer.Start(ctx, "SMTP send", trace.WithSpanKind(trace.SpanKindClient),
			trace.WithAttributes(attribute.String("network.protocol.name", "smtp")))
		defer span.End()
		err := s.mailer.Send(ctx, j.Recipient.Address, j.MsgID(), msg)
		if err != nil {
			telemetry.RecordFailure(span, err, "not accepted")
		}
		return err
	}
	return permanent("unknown recipient kind %q", j.Recipient.Kind)
}

func (s *sender) acquire(org string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.inflight[org] >= s.opts.PerOrg {
		return false
	}
	s.inflight[org]++
	return true
}

func (s *sender) release(org string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.inflight[org]--; s.inflight[org] <= 0 {
		delete(s.inflight, org)
	}
}

func (s *sender) record(ctx context.Context, key string) (Record, error) {
	e, err := s.records.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return Record{}, nil
	} else if err != nil {
		return Record{}, err
	}
	var r Record
	if err := json.Unmarshal(e.Value(), &r); err != nil {
		return Record{}, fmt.Errorf("delivery record %s is unreadable: %w", key, err)
	}
	return r, nil
}

func (s *sender) putRecord(ctx context.Context, key string, r Record) error {
	data, err := json.Marshal(r)
	if err != nil {
		return err
	}
	_, err = s.records.Put(ctx, key, data)
	return err
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
