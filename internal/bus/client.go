package bus

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/trace"

	"github.com/jitprov/jitprov/events"
)

// Errors of Provision. Match with errors.Is.
var (
	// ErrNotAccepted: JetStream refused the login (NATS unreachable, no
	// LOGINS stream, stream or organisation full). Nothing will happen; the
	// caller may retry.
	ErrNotAccepted = errors.New("login not accepted by the pipeline")
	// ErrPending: no answer before the deadline. The login is durably
	// stored (or, when even the PubAck did not come in time, may be) and
	// the provisioner will decide it when it catches up.
	ErrPending = errors.New("login accepted, answer still pending")
	// ErrUnconfirmed (also ErrPending): no PubAck came before the
	// deadline: the login may have reached the stream, or the stream was
	// between leaders. Publishing it again (PublishLogin) stores it once.
	ErrUnconfirmed = fmt.Errorf("%w: no PubAck before the deadline; the login may not be stored", ErrPending)
)

// Client sends logins to the provisioners and waits for their answers:
// request-reply over JetStream. It is safe for concurrent use.
type Client struct {
	nc     *nats.Conn
	js     jetstream.JetStream
	source string
	prefix string // reply subjects are prefix + login id
	sub    *nats.Subscription

	mu      sync.Mutex
	waiting map[string]chan *nats.Msg
}

// NewClient subscribes to the client's reply inbox. source is the
// CloudEvents source of the logins it publishes, e.g. "/jitprov/sso-edge".
func NewClient(nc *nats.Conn, js jetstream.JetStream, source string) (*Client, error) {
	c := &Client{nc: nc, js: js, source: source, prefix: nc.NewRespInbox() + ".", waiting: map[string]chan *nats.Msg{}}
	sub, err := nc.Subscribe(c.prefix+"*", c.route)
	if err != nil {
		return nil, fmt.Errorf("bus: subscribe to the reply inbox: %w", err)
	}
	c.sub = sub
	return c, nil
}

// Close stops receiving answers.
func (c *Client) Close() error { return c.sub.Unsubscribe() }

func (c *Client) route(m *nats.Msg) {
	id := strings.TrimPrefix(m.Subject, c.prefix)
	c.mu.Lock()
	ch, ok := c.waiting[id]
	delete(c.waiting, id)
	c.mu.Unlock()
	if ok {
		ch <- m // buffered; each waiter gets at most one message
	}
}

// Provision publishes id as a login.first-seen event and waits for the
// provisioner's answer until ctx is done.
func (c *Client) Provision(ctx context.Context, id events.Identity) (events.ProvisioningResult, error) {
	ev, err := events.New(events.TypeLoginFirstSeen, c.source, "", id)
	if err != nil {
		return events.ProvisioningResult{}, fmt.Errorf("bus: %w", err)
	}
	return c.ProvisionEvent(ctx, ev)
}

// ProvisionEvent is Provision for an event already built, so that the
// caller knows the login's id (its Nats-Msg-Id, and the key of its
// decision) even when no answer comes.
//
// The publish is retried with backoff, under the same Nats-Msg-Id, until
// JetStream acknowledges it or ctx is done: a stream leader failing over,
// a NATS server restarting or a lost PubAck costs a retry, not the login,
// and JetStream stores a retried login once. A refusal by the stream (the
// organisation's or the stream's bound) is not retried: ErrNotAccepted.
// When ctx ends before any PubAck, the error is ErrUnconfirmed: the login
// may be stored, or may be once the stream has a leader again, and
// PublishLogin can go on trying; only when there is no LOGINS stream at
// all is it ErrNotAccepted.
//
// A duplicate is not answered a second time, so after ErrPending asking
// again with the same event does not bring the answer back: the decision
// is made all the same, and the edge reads it from the store.
func (c *Client) ProvisionEvent(ctx context.Context, ev events.Event) (events.ProvisioningResult, error) {
	var zero events.ProvisioningResult
	pctx, span := c.startPublish(ctx, ev)
	msg, err := c.loginMsg(pctx, ev)
	if err != nil {
		endPublish(span, err)
		return zero, err
	}
	ch := make(chan *nats.Msg, 1)
	c.mu.Lock()
	c.waiting[ev.ID()] = ch
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		delete(c.waiting, ev.ID())
		c.mu.Unlock()
	}()

	err = c.publishLogin(pctx, ev.ID(), msg)
	endPublish(span, err)
	if err != nil {
		select {
		case m := <-ch: // stored after all, and already answered
			return c.answer(ev, m)
		default:
		}
		return zero, err
	}
	select {
	case <-ctx.Done():
		return zero, fmt.Errorf("bus: login %s: %w: %w", ev.ID(), ErrPending, context.Cause(ctx))
	case m := <-ch:
		return c.answer(ev, m)
	}
}

// answer reads the provisioner's answer m to login ev.
func (c *Client) answer(ev events.Event, m *nats.Msg) (events.ProvisioningResult, error) {
	var zero events.ProvisioningResult
	// The provisioner validated its answer as it built it (Reply).
	reply, err := events.DecodeTrusted(m)
	if err != nil {
		return zero, fmt.Errorf("bus: answer to login %s: %w", ev.ID(), err)
	}
	// Either version: v2 answers a held sign-up, v1 everything else.
	res, err := events.ResultOf(reply)
	if err != nil {
		return zero, fmt.Errorf("bus: answer to login %s: %w", ev.ID(), err)
	}
	if res.LoginID != ev.ID() {
		return zero, fmt.Errorf("bus: answer for login %s arrived on the inbox of login %s", res.LoginID, ev.ID())
	}
	return res, nil
}

// PublishLogin stores login ev in stream LOGINS without waiting for its
// answer, retrying as ProvisionEvent does until JetStream acknowledges it
// or ctx is done. It is for a login ProvisionEvent left unconfirmed: the
// caller keeps trying in the background while the person waits. Publishing
// a login already stored is a no-op (same Nats-Msg-Id).
func (c *Client) PublishLogin(ctx context.Context, ev events.Event) (err error) {
	ctx, span := c.startPublish(ctx, ev)
	defer func() { endPublish(span, err) }()
	msg, err := c.loginMsg(ctx, ev)
	if err != nil {
		return err
	}
	return c.publishLogin(ctx, ev.ID(), msg)
}

// startPublish starts the producer span of login ev (StartPublish), which
// covers every attempt: the login carries its trace context, so that the
// provisioner's span is its child.
func (c *Client) startPublish(ctx context.Context, ev events.Event) (context.Context, trace.Span) {
	subject := ""
	if id, err := events.DataAs[events.Identity](ev, events.TypeLoginFirstSeen); err == nil {
		subject, _ = events.Subject(events.TypeLoginFirstSeen, id.OrganizationID)
	}
	return StartPublish(ctx, nil, eventName(ev.Type()), subject, ev.ID())
}

// loginMsg renders login ev for its organisation's subject, with this
// client's inbox for the answer.
func (c *Client) loginMsg(ctx context.Context, ev events.Event) (*nats.Msg, error) {
	id, err := events.DataAs[events.Identity](ev, events.TypeLoginFirstSeen)
	if err != nil {
		return nil, fmt.Errorf("bus: %w", err)
	}
	if strings.ContainsAny(ev.ID(), ". \t\r\n*>") || len(ev.ID()) > 256 {
		return nil, fmt.Errorf("bus: login id %q must be one NATS subject token of at most 256 characters (use events.New)", ev.ID())
	}
	subject, err := events.Subject(events.TypeLoginFirstSeen, id.OrganizationID)
	if err != nil {
		return nil, fmt.Errorf("bus: %w", err)
	}
	msg, err := events.Encode(ctx, ev, subject)
	if err != nil {
		return nil, fmt.Errorf("bus: %w", err)
	}
	msg.Header.Set(events.HeaderReplyTo, c.prefix+ev.ID())
	return msg, nil
}

// publishAttemptTimeout bounds one publish attempt, so that an attempt
// sent to a stream leader that just died is retried (on its successor)
// inside the caller's deadline rather than using all of it.
const publishAttemptTimeout = 2 * time.Second

// publishLogin publishes msg to LOGINS until JetStream acknowledges it,
// refuses it, or ctx is done.
func (c *Client) publishLogin(ctx context.Context, id string, msg *nats.Msg) error {
	var last error
	ambiguous := false // an attempt may have reached the stream
	_, err := backoff.Retry(ctx, func() (struct{}, error) {
		if err := ctx.Err(); err != nil {
			return struct{}{}, backoff.Permanent(err) // nothing sent
		}
		actx, cancel := context.WithTimeout(ctx, publishAttemptTimeout)
		defer cancel()
		// Retries on "no responders" are this loop's, with its backoff.
		_, err := c.js.PublishMsg(actx, msg, jetstream.WithMsgID(id), jetstream.WithExpectStream(StreamLogins), jetstream.WithRetryAttempts(0))
		if err == nil {
			return struct{}{}, nil
		}
		last = err
		switch ClassifyPublish(err) {
		case FailureRefused:
			return struct{}{}, backoff.Permanent(err)
		case FailureUnknown:
			ambiguous = true
		}
		return struct{}{}, err
	}, backoff.WithBackOff(RetryBackoff()), backoff.WithMaxElapsedTime(0))
	switch {
	case err == nil:
		return nil
	case last == nil: // ctx was done before the first attempt
		return fmt.Errorf("bus: login %s not sent: %w: %w", id, ErrNotAccepted, err)
	case ClassifyPublish(err) == FailureRefused && (!ambiguous || errors.As(err, new(*jetstream.APIError))):
		// The stream refused it: JetStream checks for a duplicate first, so
		// an earlier try that was stored would have been acknowledged.
		return fmt.Errorf("bus: publish login %s to %s: %w: %w", id, msg.Subject, ErrNotAccepted, err)
	case !ambiguous && !c.loginsExist(id):
		// Nothing was stored, and there is no stream to store it.
		return fmt.Errorf("bus: publish login %s to %s: %w (no stream %s: has a provisioner started?): %w",
			id, msg.Subject, ErrNotAccepted, StreamLogins, last)
	default:
		// Maybe stored, or not yet: the stream was between leaders until the
		// deadline. Publishing it again stores it once.
		return fmt.Errorf("bus: login %s: %w: %w", id, ErrUnconfirmed, last)
	}
}

// loginsExist reports whether stream LOGINS exists, or NATS cannot say:
// only a definite "no such stream" is false.
func (c *Client) loginsExist(id string) bool {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_, err := c.js.Stream(ctx, StreamLogins)
	return !errors.Is(err, jetstream.ErrStreamNotFound)
}

// Seen publishes a login.seen event: a known person signed in again with
// unchanged claims. It waits for the PubAck; nothing answers it.
//
// It is built without the schema check, like the edge's logins: its
// fields come from an identity the edge fitted to the contract and from
// the known-identities record, and the provisioner validates every
// login.seen it receives.
func (c *Client) Seen(ctx context.Context, seen events.LoginSeen) error {
	ev, err := events.NewUnvalidated(events.TypeLoginSeen, c.source, seen.UserID, seen)
	if err != nil {
		return fmt.Errorf("bus: %w", err)
	}
	return Publish(ctx, c.js, ev, seen.OrganizationID)
}

// Reply sends res to the inbox a login named in its Jitprov-Reply-To
// header, whatever the header's case (events.ReplyTo). Only subjects under
// _INBOX. are answered, so that a forged login cannot make the provisioner
// publish into arbitrary subjects.
func Reply(ctx context.Context, nc *nats.Conn, loginHeader nats.Header, res events.ProvisioningResult, source string) error {
	inbox, err := events.ReplyTo(loginHeader)
	if err != nil {
		return fmt.Errorf("bus: login %s not answered: %w", res.LoginID, err)
	}
	if inbox == "" {
		return nil
	}
	if !strings.HasPrefix(inbox, nats.InboxPrefix) || strings.ContainsAny(inbox, " \t\r\n*>") {
		return fmt.Errorf("bus: login %s names reply subject %q, which is not an inbox; not answered", res.LoginID, inbox)
	}
	// v2 only for what v1 cannot say (held), so that an edge that knows
	// v1 only keeps working for every other outcome.
	ev, err := events.New(events.ResultType(res), source, res.LoginID, res)
	if err != nil {
		return fmt.Errorf("bus: %w", err)
	}
	ctx, span := StartPublish(ctx, nil, eventName(ev.Type()), inbox, ev.ID())
	msg, err := events.Encode(ctx, ev, inbox)
	if err == nil {
		err = nc.PublishMsg(msg)
	}
	endPublish(span, err)
	if err != nil {
		return fmt.Errorf("bus: answer login %s: %w", res.LoginID, err)
	}
	return nil
}
