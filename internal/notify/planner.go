package notify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/jitprov/jitprov/events"
	"github.com/jitprov/jitprov/internal/bus"
	"github.com/jitprov/jitprov/internal/store"
	"github.com/jitprov/jitprov/internal/telemetry"
)

// Admins lists an organisation's admins (the store).
type Admins interface {
	OrganizationAdmins(ctx context.Context, orgID string) ([]store.User, error)
}

// planner turns alerts into jobs or batches.
type planner struct {
	js      jetstream.JetStream
	dir     *Directory
	admins  Admins
	batches *Batches
	log     *slog.Logger
}

// errInvalidAlert marks an alert that can never be planned.
var errInvalidAlert = errors.New("notify: invalid alert")

// errNoRecipient marks an alert nobody is set to receive: it is acked,
// logged and counted, as there is no one to deliver it to.
var errNoRecipient = errors.New("notify: nobody to tell")

// errNotAnAlert marks an event on ALERTS that is not an alert
// (events.AlertTypes), such as role-review.decided: it is acked and
// nobody is told.
var errNotAnAlert = errors.New("notify: not an alert")

// plan handles one alert. An error wrapping errInvalidAlert means the
// message must be terminated; one wrapping errNotAnAlert or
// errNoRecipient that it is acked without a message; any other error is
// worth another try.
func (p *planner) plan(ctx context.Context, m *nats.Msg) error {
	// Alerts are built and validated by jitprov's services (events.New).
	ev, err := events.DecodeTrusted(m)
	if err != nil {
		return fmt.Errorf("%w: %w", errInvalidAlert, err)
	}
	t := events.Type(ev.Type())
	org := m.Subject[strings.LastIndexByte(m.Subject, '.')+1:]
	if want, err := events.Subject(t, org); err != nil || want != m.Subject {
		return fmt.Errorf("%w: %s event arrived on subject %q", errInvalidAlert, t, m.Subject)
	}
	// A valid event of the contract that the notifier does not tell
	// admins about: planning it would queue jobs that no message renders.
	if !slices.Contains(events.AlertTypes(), t) {
		return fmt.Errorf("%w: %s %s", errNotAnAlert, t.Short(), ev.ID())
	}
	raw, err := json.Marshal(ev)
	if err != nil {
		return fmt.Errorf("%w: %w", errInvalidAlert, err)
	}
	settings, _ := p.dir.Settings(org)
	alert := t.Short()
	switch {
	case t == events.TypeSeatsExhausted:
		d, err := events.DataAs[events.SeatsExhausted](ev, t)
		if err != nil {
			return fmt.Errorf("%w: %w", errInvalidAlert, err)
		}
		person := d.ConnectionID + "\x00" + d.ExternalID
		return p.batches.add(ctx, alert, org, ev.ID(), raw, ev.Time(), person, settings.SeatDelay, settings.SeatCooldown)
	case t == events.TypeRoleReviewRequested && settings.RoleReviews == ReviewsDigest:
		return p.batches.add(ctx, alert, org, ev.ID(), raw, ev.Time(), "", 0, settings.DigestInterval)
	}
	return p.send(ctx, Job{ID: ev.ID(), Org: org, Alert: alert, Events: []json.RawMessage{raw}, Count: 1, Since: ev.Time()})
}

// send publishes one job per recipient of the message j (its Recipient
// unset), each with a Nats-Msg-Id of its own, so that sending the same
// message again within the duplicate window stores each job once.
func (p *planner) send(ctx context.Context, j Job) error {
	recipients, err := p.recipients(ctx, j.Org, j.Alert)
	if err != nil {
		return err
	}
	if len(recipients) == 0 {
		return fmt.Errorf("%w about %s %s: organisation %s has no active admin with an email, and its notifications name no address or webhook for this alert",
			errNoRecipient, j.Alert, j.ID, j.Org)
	}
	for _, r := range recipients {
		job := j
		job.Recipient = r
		if err := p.publish(ctx, job); err != nil {
			return err
		}
	}
	return nil
}

// publish queues job j in a producer span of the provider of ctx's span
// (the alert's, or the batch's): the job carries the trace on to its
// delivery.
func (p *planner) publish(ctx context.Context, j Job) (err error) {
	data, err := json.Marshal(j)
	if err != nil {
		return err
	}
	subject := subjectJobs + "." + j.Org
	ctx, span := bus.StartPublish(ctx, nil, "notification job", subject, j.MsgID())
	defer func() {
		if err != nil {
			telemetry.RecordFailure(span, err, "not queued")
		}
		span.End()
	}()
	h := nats.Header{}
	events.InjectTrace(ctx, h)
	if _, err := p.js.PublishMsg(ctx, &nats.Msg{Subject: subject, Header: h, Data: data}, jetstream.WithMsgID(j.MsgID())); err != nil {
		return fmt.Errorf("notify: queue job %s: %w", j.MsgID(), err)
	}
	return nil
}

// recipients are the organisation's admins (when its settings say so),
// its extra addresses, and the webhooks that take this alert; each once.
func (p *planner) recipients(ctx context.Context, org, alert string) ([]Recipient, error) {
	settings, _ := p.dir.Settings(org)
	var out []Recipient
	seen := map[string]bool{}
	add := func(r Recipient) {
		if !seen[r.Key()] {
			seen[r.Key()] = true
			out = append(out, r)
		}
	}
	if settings.Admins {
		admins, err := p.admins.OrganizationAdmins(ctx, org)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return nil, fmt.Errorf("notify: admins of %s: %w", org, err)
		}
		for _, a := range admins {
			if a.Email != "" {
				add(Recipient{Kind: KindEmail, Address: a.Email})
			}
		}
	}
	for _, e := range settings.Emails {
		add(Recipient{Kind: KindEmail, Address: e})
	}
	for _, w := range settings.Webhooks {
		if w.Wants(alert) {
			add(Recipient{Kind: KindWebhook, Address: w.ID})
		}
	}
	return out, nil
}
