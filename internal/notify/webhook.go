package notify

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/jitprov/jitprov/events"
	"github.com/jitprov/jitprov/events/webhooksig"
)

// PermanentError is a delivery failure that trying again cannot fix (the
// receiver refused the request as such, the recipient is gone): the job
// is parked at once.
type PermanentError struct{ Err error }

func (e *PermanentError) Error() string { return e.Err.Error() }
func (e *PermanentError) Unwrap() error { return e.Err }

func permanent(format string, args ...any) error {
	return &PermanentError{Err: fmt.Errorf(format, args...)}
}

// WebhookSender POSTs jobs to webhooks.
type WebhookSender struct {
	Client *http.Client // its Timeout bounds one delivery
	Now    func() time.Time
}

// Content types of webhook bodies.
const (
	contentTypeEvent = "application/cloudevents+json"
	contentTypeBatch = "application/cloudevents-batch+json"
)

// Extension attributes a batched message adds to its CloudEvent.
const (
	extCount  = "jitprovcount"  // alerts the message stands for
	extSince  = "jitprovsince"  // when the first of them happened
	extPeople = "jitprovpeople" // distinct people they are about
)

// Body renders the webhook request body of job j for w.
func (s *WebhookSender) Body(j Job, w Webhook, msg Message) ([]byte, string, error) {
	if w.Format == FormatSlack {
		b, err := msg.Slack()
		return b, "application/json", err
	}
	last := j.Events[len(j.Events)-1]
	if j.Alert == events.TypeSeatsExhausted.Short() && j.Count > 1 {
		// One message per cool-down: the latest turned-away login, with
		// the count since the last message as extension attributes.
		return withCount(last, j.Count, j.People, j.Since)
	}
	if len(j.Events) > 1 || j.Count > 1 {
		// A digest: the latest alerts (up to 50), each carrying how many
		// the digest stands for, so that a receiver sees when some were
		// left out.
		batch := make([]json.RawMessage, len(j.Events))
		for i, raw := range j.Events {
			b, _, err := withCount(raw, j.Count, 0, j.Since)
			if err != nil {
				return nil, "", err
			}
			batch[i] = b
		}
		b, err := json.Marshal(batch)
		return b, contentTypeBatch, err
	}
	return last, contentTypeEvent, nil
}

func withCount(raw json.RawMessage, count, people int, since time.Time) ([]byte, string, error) {
	var ev events.Event
	if err := json.Unmarshal(raw, &ev); err != nil {
		return nil, "", err
	}
	ev.SetExtension(extCount, count)
	if people > 0 {
		ev.SetExtension(extPeople, people)
	}
	ev.SetExtension(extSince, since.UTC())
	b, err := json.Marshal(ev)
	return b, contentTypeEvent, err
}

// Send delivers body to w, signed with secret. A 2xx answer is success;
// 408, 429 and 5xx and network failures are worth another try; any other
// answer, a redirect included, is permanent. Errors name the webhook by id
// and host only: a webhook URL can be a credential (Slack's are).
func (s *WebhookSender) Send(ctx context.Context, w Webhook, secret []byte, deliveryID string, body []byte, contentType string) error {
	u, err := url.Parse(w.URL)
	if err != nil {
		return permanent("webhook %s: the URL does not parse", w.ID)
	}
	where := fmt.Sprintf("webhook %s (%s)", w.ID, u.Host)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.URL, bytes.NewReader(body))
	if err != nil {
		return permanent("%s: cannot build the request", where)
	}
	now := time.Now
	if s.Now != nil {
		now = s.Now
	}
	req.Header.Set("Content-Type", contentType)
	req.Header.Set("User-Agent", "jitprov-notifier")
	req.Header.Set(webhooksig.HeaderDelivery, deliveryID)
	req.Header.Set(webhooksig.HeaderSignature, webhooksig.Sign(secret, deliveryID, body, now()))
	resp, err := s.Client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // the URL stays out of logs and records
		}
		return fmt.Errorf("%s: %w", where, err)
	}
	defer resp.Body.Close()
	snippet, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	switch c := resp.StatusCode; {
	case c >= 200 && c < 300:
		return nil
	case c >= 300 && c < 400:
		return permanent("%s answered %s, a redirect: configure the URL it redirects to (deliveries are never redirected)", where, resp.Status)
	case c == http.StatusRequestTimeout || c == http.StatusTooManyRequests || c >= 500:
		return fmt.Errorf("%s answered %s: %q", where, resp.Status, snippet)
	default:
		return permanent("%s answered %s (the receiver refuses the request; fix it, then replay): %q", where, resp.Status, snippet)
	}
}

// NewHTTPClient is the webhook client: it never follows redirects (a
// redirect would turn the POST into a GET, or send the signed body to
// another host), and bounds each delivery by timeout.
func NewHTTPClient(timeout time.Duration) *http.Client {
	return &http.Client{Timeout: timeout, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// isPermanent reports whether err should park the job at once.
func isPermanent(err error) bool {
	var p *PermanentError
	return errors.As(err, &p)
}
