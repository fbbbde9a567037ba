// Package notify is jitprov's notifier: it turns alert events from stream
// ALERTS into messages an organisation's admins get — signed webhooks and
// email — without spamming them and without losing one.
//
// Two stages, both JetStream consumers:
//
//   - the planner reads ALERTS. For an alert sent at once it publishes one
//     delivery job per recipient to the work-queue stream NOTIFY; an alert
//     that is throttled (seats.exhausted) or gathered into a digest
//     (role reviews, when configured) is folded into a batch in a KV
//     bucket, which the flusher turns into jobs when it falls due.
//   - the sender takes jobs from NOTIFY, one recipient each, and delivers
//     them: ack only after the recipient accepted, retries with
//     exponential backoff, and after the last try the job is parked in
//     stream NOTIFY_DEAD, listable and replayable (`notifier dead`).
//
// A delivery record per job and recipient (KV bucket notifier_deliveries)
// keeps a redelivered job from reaching a recipient twice.
package notify

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// Recipient kinds.
const (
	KindEmail   = "email"
	KindWebhook = "webhook"
)

// Recipient is who gets a job: an email address or one of the
// organisation's webhooks (by id, so that its URL and secret are read
// when it is delivered).
type Recipient struct {
	Kind    string `json:"kind"`
	Address string `json:"address"` // email address, or webhook id
}

// Key names the recipient in delivery records, e.g. "email:ada@acme.com".
func (r Recipient) Key() string { return r.Kind + ":" + strings.ToLower(r.Address) }

func (r Recipient) String() string { return r.Key() }

// Job is one message to one recipient.
type Job struct {
	// ID names the message: the alert's event id, or a batch's id. With
	// the recipient it makes the job's Nats-Msg-Id and delivery record.
	ID        string    `json:"id"`
	Org       string    `json:"organization_id"`
	Alert     string    `json:"alert"` // short alert name, e.g. "seats.exhausted"
	Recipient Recipient `json:"recipient"`
	// Events are the alerts the message tells of, as structured-mode
	// CloudEvents JSON: one, or several for a digest.
	Events []json.RawMessage `json:"events"`
	// Count is how many alerts the message stands for (people turned away
	// since the last seat message, reviews in a digest); at least
	// len(Events), which holds only the latest ones of a large batch.
	Count int `json:"count"`
	// People is how many distinct people the alerts are about, where the
	// alert names one (seats.exhausted); 0 otherwise.
	People int `json:"people,omitempty"`
	// Since is when the first of them happened.
	Since time.Time `json:"since"`
	// Replay counts how often an operator replayed the job from the
	// dead-letter stream; each replay is a delivery of its own.
	Replay int `json:"replay,omitempty"`
}

// MsgID is the job's Nats-Msg-Id and names its delivery record:
// publishing the same job twice within the stream's duplicate window
// stores it once, and a job delivered to its recipient is not delivered
// again.
func (j Job) MsgID() string {
	id := j.ID + "/" + j.Recipient.Key()
	if j.Replay > 0 {
		id += fmt.Sprintf("#replay-%d", j.Replay)
	}
	return id
}

// recordKey is the job's delivery-record key in the KV bucket: a hash, as
// KV keys take only a few characters.
func recordKey(msgID string) string {
	sum := sha256.Sum256([]byte(msgID))
	return hex.EncodeToString(sum[:])
}

func (j Job) validate() error {
	switch {
	case j.ID == "" || j.Org == "" || j.Alert == "":
		return fmt.Errorf("notify: job without id, organisation or alert")
	case j.Recipient.Kind != KindEmail && j.Recipient.Kind != KindWebhook:
		return fmt.Errorf("notify: job %s: unknown recipient kind %q", j.ID, j.Recipient.Kind)
	case j.Recipient.Address == "":
		return fmt.Errorf("notify: job %s: recipient without an address", j.ID)
	case len(j.Events) == 0:
		return fmt.Errorf("notify: job %s carries no event", j.ID)
	}
	return nil
}
