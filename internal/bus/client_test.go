package bus_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/jitprov/jitprov/events"
	"github.com/jitprov/jitprov/internal/bus"
)

func identity(org, ext string) events.Identity {
	return events.Identity{
		OrganizationID: org, ConnectionID: "idp", Protocol: events.ProtocolSAML, ExternalID: ext,
		Email: ext + "@" + org + ".example", EmailVerified: true, GivenName: "Given " + ext,
		AuthenticatedAt: time.Now().UTC().Truncate(time.Second),
	}
}

func newClient(t *testing.T, nc *nats.Conn, js jetstream.JetStream) *bus.Client {
	t.Helper()
	c, err := bus.NewClient(nc, js, "/jitprov/test-edge")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func ensure(t *testing.T, js jetstream.JetStream) {
	t.Helper()
	if err := bus.Ensure(testContext(t, 30*time.Second), js, bus.DefaultTopology()); err != nil {
		t.Fatal(err)
	}
}

func loginEvent(t *testing.T, id events.Identity) events.Event {
	t.Helper()
	ev, err := events.New(events.TypeLoginFirstSeen, "/jitprov/test-edge", "", id)
	if err != nil {
		t.Fatal(err)
	}
	return ev
}

func TestProvisionWithoutStreamIsNotAccepted(t *testing.T) {
	nc, js := newJetStream(t)
	c := newClient(t, nc, js)
	// No stream ever answers: retried until the deadline, then refused.
	ctx := testContext(t, time.Second)
	_, err := c.Provision(ctx, identity("acme", "alice"))
	if !errors.Is(err, bus.ErrNotAccepted) {
		t.Fatalf("Provision = %v, want ErrNotAccepted", err)
	}
	if errors.Is(err, bus.ErrPending) {
		t.Errorf("Provision = %v: a login never stored must not be reported pending", err)
	}
}

func TestProvisionRejectsABadIdentity(t *testing.T) {
	nc, js := newJetStream(t)
	ensure(t, js)
	c := newClient(t, nc, js)
	tests := []struct {
		name   string
		change func(*events.Identity)
	}{
		{"organisation id not a subject token", func(id *events.Identity) { id.OrganizationID = "Acme Corp" }},
		{"organisation id with a wildcard", func(id *events.Identity) { id.OrganizationID = "acme.>" }},
		{"no external id", func(id *events.Identity) { id.ExternalID = "" }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			id := identity("acme", "alice")
			tc.change(&id)
			_, err := c.Provision(testContext(t, 5*time.Second), id)
			if err == nil {
				t.Fatal("Provision succeeded")
			}
			if errors.Is(err, bus.ErrPending) {
				t.Errorf("Provision = %v, want an error that is not ErrPending", err)
			}
		})
	}
	s, err := js.Stream(testContext(t, 5*time.Second), bus.StreamLogins)
	if err != nil {
		t.Fatal(err)
	}
	if n := s.CachedInfo().State.Msgs; n != 0 {
		t.Errorf("LOGINS holds %d messages, want 0", n)
	}
}

func TestProvisionWithoutProvisionerIsPending(t *testing.T) {
	nc, js := newJetStream(t)
	ensure(t, js)
	c := newClient(t, nc, js)
	ev := loginEvent(t, identity("acme", "alice"))

	// Twice: the second publish of the same event is dropped as a duplicate.
	for i := range 2 {
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		_, err := c.ProvisionEvent(ctx, ev)
		cancel()
		if !errors.Is(err, bus.ErrPending) {
			t.Fatalf("attempt %d: ProvisionEvent = %v, want ErrPending", i+1, err)
		}
		if errors.Is(err, bus.ErrNotAccepted) {
			t.Errorf("attempt %d: ProvisionEvent = %v: a stored login must not be reported not accepted", i+1, err)
		}
		if !strings.Contains(err.Error(), ev.ID()) {
			t.Errorf("attempt %d: ProvisionEvent = %q, want it to name the login %s", i+1, err, ev.ID())
		}
	}

	ctx := testContext(t, 10*time.Second)
	s, err := js.Stream(ctx, bus.StreamLogins)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != 1 {
		t.Fatalf("LOGINS holds %d messages, want exactly 1", info.State.Msgs)
	}
	raw, err := s.GetLastMsgForSubject(ctx, "jit.login.first-seen.acme")
	if err != nil {
		t.Fatal(err)
	}
	if got := raw.Header.Get(jetstream.MsgIDHeader); got != ev.ID() {
		t.Errorf("Nats-Msg-Id = %q, want the event id %q", got, ev.ID())
	}
	if got := raw.Header.Get(events.HeaderReplyTo); !strings.HasPrefix(got, nats.InboxPrefix) {
		t.Errorf("%s = %q, want an inbox", events.HeaderReplyTo, got)
	}
	stored, err := events.Decode(&nats.Msg{Subject: raw.Subject, Header: raw.Header, Data: raw.Data})
	if err != nil {
		t.Fatalf("the stored login does not decode: %v", err)
	}
	if stored.ID() != ev.ID() {
		t.Errorf("stored login id = %s, want %s", stored.ID(), ev.ID())
	}
	got, err := events.DataAs[events.Identity](stored, events.TypeLoginFirstSeen)
	if err != nil {
		t.Fatal(err)
	}
	if got.ExternalID != "alice" || got.OrganizationID != "acme" {
		t.Errorf("stored identity = %+v", got)
	}
}

func TestProvisionRefusesLoginsBeyondTheOrganisationsBound(t *testing.T) {
	nc, js := newJetStream(t)
	topo := bus.DefaultTopology()
	topo.LoginsMaxPerOrg = 2
	if err := bus.Ensure(testContext(t, 30*time.Second), js, topo); err != nil {
		t.Fatal(err)
	}
	c := newClient(t, nc, js)
	steps := []struct {
		org, ext string
		want     error
	}{
		{"acme", "a1", bus.ErrPending},
		{"acme", "a2", bus.ErrPending},
		{"acme", "a3", bus.ErrNotAccepted}, // acme is full
		{"initech", "i1", bus.ErrPending},  // the others go on
		{"acme", "a4", bus.ErrNotAccepted},
	}
	for _, s := range steps {
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		_, err := c.Provision(ctx, identity(s.org, s.ext))
		cancel()
		if !errors.Is(err, s.want) {
			t.Errorf("%s/%s: Provision = %v, want %v", s.org, s.ext, err, s.want)
		}
	}
	st, err := js.Stream(testContext(t, 5*time.Second), bus.StreamLogins)
	if err != nil {
		t.Fatal(err)
	}
	if n := st.CachedInfo().State.Msgs; n != 3 {
		t.Errorf("LOGINS holds %d logins, want 3 (none already accepted dropped)", n)
	}
}

// responder answers logins as a provisioner would, through the
// provisioner consumer, with answer(login event) as the result.
func responder(t *testing.T, nc *nats.Conn, js jetstream.JetStream, answer func(ev events.Event, seq uint64) events.ProvisioningResult) {
	t.Helper()
	ctx := testContext(t, 30*time.Second)
	cons, err := js.Consumer(ctx, bus.StreamLogins, bus.ConsumerProvisioner)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	cc, err := cons.Consume(func(m jetstream.Msg) {
		ev, err := events.Decode(&nats.Msg{Subject: m.Subject(), Header: m.Headers(), Data: m.Data()})
		if err != nil {
			mu.Lock()
			t.Errorf("responder: decode: %v", err)
			mu.Unlock()
			_ = m.Term()
			return
		}
		var seq uint64
		if md, err := m.Metadata(); err == nil {
			seq = md.Sequence.Stream
		}
		if err := bus.Reply(context.Background(), nc, m.Headers(), answer(ev, seq), "/jitprov/test-provisioner"); err != nil {
			mu.Lock()
			t.Errorf("responder: reply: %v", err)
			mu.Unlock()
		}
		_ = m.Ack()
	}, jetstream.PullExpiry(2*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cc.Stop)
}

func TestProvisionReturnsTheAnswer(t *testing.T) {
	nc, js := newJetStream(t)
	ensure(t, js)
	userID := uuid.NewString()
	decided := time.Now().UTC().Truncate(time.Millisecond)
	responder(t, nc, js, func(ev events.Event, _ uint64) events.ProvisioningResult {
		id, err := events.DataAs[events.Identity](ev, events.TypeLoginFirstSeen)
		if err != nil {
			return events.ProvisioningResult{LoginID: ev.ID(), Outcome: events.OutcomeFailed, Reason: events.ReasonInternalError, DecidedAt: decided}
		}
		return events.ProvisioningResult{
			LoginID: ev.ID(), Outcome: events.OutcomeCreated, Message: "hello " + id.ExternalID,
			User:      &events.UserRef{ID: userID, Role: "member", Status: "active", Email: id.Email},
			DecidedAt: decided,
		}
	})
	c := newClient(t, nc, js)

	tests := []struct{ org, ext string }{{"acme", "alice"}, {"initech", "bob"}, {"acme", "carol"}}
	for _, tc := range tests {
		t.Run(tc.org+"/"+tc.ext, func(t *testing.T) {
			ev := loginEvent(t, identity(tc.org, tc.ext))
			res, err := c.ProvisionEvent(testContext(t, 10*time.Second), ev)
			if err != nil {
				t.Fatalf("ProvisionEvent: %v", err)
			}
			if res.LoginID != ev.ID() || res.Outcome != events.OutcomeCreated || res.Message != "hello "+tc.ext {
				t.Errorf("result = %+v, want the responder's answer to login %s", res, ev.ID())
			}
			if res.User == nil || res.User.ID != userID || res.User.Email != tc.ext+"@"+tc.org+".example" {
				t.Errorf("result user = %+v", res.User)
			}
			if !res.DecidedAt.Equal(decided) {
				t.Errorf("decided at = %v, want %v", res.DecidedAt, decided)
			}
		})
	}

	// Concurrent logins each get their own answer.
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for i := range 20 {
		wg.Go(func() {
			ext := "user-" + string(rune('a'+i))
			ev, err := events.New(events.TypeLoginFirstSeen, "/jitprov/test-edge", "", identity("acme", ext))
			if err != nil {
				errs <- err
				return
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			res, err := c.ProvisionEvent(ctx, ev)
			switch {
			case err != nil:
				errs <- err
			case res.LoginID != ev.ID() || res.Message != "hello "+ext:
				errs <- errors.New("login " + ev.ID() + " got the answer " + res.LoginID + " " + res.Message)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestProvisionRejectsAnAnswerForAnotherLogin(t *testing.T) {
	nc, js := newJetStream(t)
	ensure(t, js)
	other := uuid.NewString()
	responder(t, nc, js, func(ev events.Event, _ uint64) events.ProvisioningResult {
		return events.ProvisioningResult{LoginID: other, Outcome: events.OutcomeRefused,
			Reason: events.ReasonSuspended, DecidedAt: time.Now().UTC()}
	})
	c := newClient(t, nc, js)
	ev := loginEvent(t, identity("acme", "mallory"))
	res, err := c.ProvisionEvent(testContext(t, 10*time.Second), ev)
	if err == nil {
		t.Fatalf("ProvisionEvent = %+v, nil; want the mismatched answer rejected", res)
	}
	if errors.Is(err, bus.ErrPending) || errors.Is(err, bus.ErrNotAccepted) {
		t.Errorf("ProvisionEvent = %v, want neither ErrPending nor ErrNotAccepted", err)
	}
	for _, w := range []string{ev.ID(), other} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("ProvisionEvent = %q, want it to name %s", err, w)
		}
	}
}

// catch subscribes to subject and returns a function that reports what
// arrived there from nc before it was called: it sends a marker on nc
// and collects until the marker arrives, as the server delivers one
// connection's messages in the order they were sent.
func catch(t *testing.T, nc *nats.Conn, subject string) func() []*nats.Msg {
	t.Helper()
	ch := make(chan *nats.Msg, 16)
	marker := "_TEST.catch-marker." + nats.NewInbox()[len(nats.InboxPrefix):]
	for _, subj := range []string{subject, marker} {
		sub, err := nc.ChanSubscribe(subj, ch)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = sub.Unsubscribe() })
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	return func() []*nats.Msg {
		t.Helper()
		if err := nc.Publish(marker, nil); err != nil {
			t.Fatal(err)
		}
		var out []*nats.Msg
		timeout := time.After(30 * time.Second)
		for {
			select {
			case m := <-ch:
				if m.Subject == marker {
					return out
				}
				out = append(out, m)
			case <-timeout:
				t.Fatalf("the marker sent after the messages on %s did not arrive within 30s", subject)
			}
		}
	}
}

func result(loginID string) events.ProvisioningResult {
	return events.ProvisioningResult{LoginID: loginID, Outcome: events.OutcomeRejected,
		Reason: events.ReasonSeatsExhausted, DecidedAt: time.Now().UTC()}
}

func TestReplyRefusesSubjectsThatAreNotInboxes(t *testing.T) {
	nc, _ := newJetStream(t)
	tests := []struct {
		name, replyTo, watch string
	}{
		{"stream subject", "jit.user.created.acme", "jit.>"},
		{"inbox with full wildcard", "_INBOX.a.>", "_INBOX.>"},
		{"inbox with token wildcard", "_INBOX.*", "_INBOX.>"},
		{"inbox with a space", "_INBOX.a b", "_INBOX.>"},
		{"inbox prefix without its dot", "_INBOXa.b", ">"},
		{"lower-case inbox", "_inbox.abc", ">"},
		{"system subject", "$JS.API.STREAM.DELETE.LOGINS", "$JS.API.>"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := catch(t, nc, tc.watch)
			h := nats.Header{}
			h.Set(events.HeaderReplyTo, tc.replyTo)
			err := bus.Reply(context.Background(), nc, h, result(uuid.NewString()), "/jitprov/test-provisioner")
			if err == nil {
				t.Fatalf("Reply to %q = nil, want a refusal", tc.replyTo)
			}
			if !strings.Contains(err.Error(), "not an inbox") || !strings.Contains(err.Error(), tc.replyTo) {
				t.Errorf("Reply = %q, want it to name %q as not an inbox", err, tc.replyTo)
			}
			if msgs := got(); len(msgs) != 0 {
				t.Errorf("Reply published %d messages (first on %s)", len(msgs), msgs[0].Subject)
			}
		})
	}
}

// A login's reply header is read in any case (a Node.js producer may
// write it lower-case); two spellings naming different subjects are not
// answered at all.
func TestReplyReadsTheHeaderInAnyCase(t *testing.T) {
	nc, _ := newJetStream(t)
	for _, tc := range []struct {
		name    string
		header  func(inbox string) nats.Header
		answers int
	}{
		{"lower case", func(inbox string) nats.Header { return nats.Header{"jitprov-reply-to": {inbox}} }, 1},
		{"upper case", func(inbox string) nats.Header { return nats.Header{"JITPROV-REPLY-TO": {inbox}} }, 1},
		{"two spellings, same subject", func(inbox string) nats.Header {
			return nats.Header{events.HeaderReplyTo: {inbox}, "jitprov-reply-to": {inbox}}
		}, 1},
		{"two spellings, different subjects", func(inbox string) nats.Header {
			return nats.Header{events.HeaderReplyTo: {inbox}, "jitprov-reply-to": {inbox + ".other"}}
		}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			inbox := nc.NewRespInbox()
			got := catch(t, nc, inbox+".>")
			direct := catch(t, nc, inbox)
			err := bus.Reply(context.Background(), nc, tc.header(inbox), result(uuid.NewString()), "/jitprov/test-provisioner")
			if tc.answers == 0 {
				if err == nil || !strings.Contains(err.Error(), "ambiguous") {
					t.Errorf("Reply = %v, want an ambiguity error", err)
				}
			} else if err != nil {
				t.Fatalf("Reply: %v", err)
			}
			if n := len(direct()) + len(got()); n != tc.answers {
				t.Errorf("%d answers, want %d", n, tc.answers)
			}
		})
	}
}

func TestReplyAnswersAnInbox(t *testing.T) {
	nc, _ := newJetStream(t)
	inbox := nc.NewRespInbox()
	got := catch(t, nc, inbox)
	h := nats.Header{}
	h.Set(events.HeaderReplyTo, inbox)
	login := uuid.NewString()
	if err := bus.Reply(context.Background(), nc, h, result(login), "/jitprov/test-provisioner"); err != nil {
		t.Fatalf("Reply: %v", err)
	}
	msgs := got()
	if len(msgs) != 1 {
		t.Fatalf("%d messages on the inbox, want 1", len(msgs))
	}
	ev, err := events.Decode(msgs[0])
	if err != nil {
		t.Fatal(err)
	}
	if ev.Type() != string(events.TypeProvisioningResult) || ev.Source() != "/jitprov/test-provisioner" || ev.Subject() != login {
		t.Errorf("reply event: type %q source %q subject %q", ev.Type(), ev.Source(), ev.Subject())
	}
	res, err := events.DataAs[events.ProvisioningResult](ev, events.TypeProvisioningResult)
	if err != nil {
		t.Fatal(err)
	}
	if res.LoginID != login || res.Reason != events.ReasonSeatsExhausted {
		t.Errorf("reply = %+v", res)
	}
}

func TestReplyWithoutReplyToDoesNothing(t *testing.T) {
	nc, _ := newJetStream(t)
	got := catch(t, nc, ">")
	tests := []struct {
		name string
		h    nats.Header
	}{
		{"nil header", nil},
		{"empty header", nats.Header{}},
		{"other headers only", nats.Header{"Nats-Msg-Id": []string{"x"}, "ce-id": []string{"y"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := bus.Reply(context.Background(), nc, tc.h, result(uuid.NewString()), "/jitprov/test-provisioner"); err != nil {
				t.Errorf("Reply = %v, want nil", err)
			}
		})
	}
	if msgs := got(); len(msgs) != 0 {
		t.Errorf("Reply published %d messages (first on %s), want none", len(msgs), msgs[0].Subject)
	}
}

func TestReplyRefusesAnInvalidResult(t *testing.T) {
	nc, _ := newJetStream(t)
	inbox := nc.NewRespInbox()
	got := catch(t, nc, inbox)
	h := nats.Header{}
	h.Set(events.HeaderReplyTo, inbox)
	// "created" requires a user.
	bad := events.ProvisioningResult{LoginID: uuid.NewString(), Outcome: events.OutcomeCreated, DecidedAt: time.Now().UTC()}
	err := bus.Reply(context.Background(), nc, h, bad, "/jitprov/test-provisioner")
	if !errors.Is(err, events.ErrInvalid) {
		t.Errorf("Reply = %v, want events.ErrInvalid", err)
	}
	if msgs := got(); len(msgs) != 0 {
		t.Errorf("an invalid answer was published")
	}
}

// TestProvisionAcceptsBothResultVersions: the consumer side of the
// provisioning.result contract accepts v1 and v2 (consumers are upgraded
// before producers), and Reply sends v2 only for held.
func TestProvisionAcceptsBothResultVersions(t *testing.T) {
	nc, js := newJetStream(t)
	ensure(t, js)
	userID := uuid.NewString()
	decided := time.Now().UTC().Truncate(time.Millisecond)
	responder(t, nc, js, func(ev events.Event, _ uint64) events.ProvisioningResult {
		id, _ := events.DataAs[events.Identity](ev, events.TypeLoginFirstSeen)
		if id.ExternalID == "held" {
			return events.ProvisioningResult{LoginID: ev.ID(), Outcome: events.OutcomeHeld, Reason: events.ReasonApprovalRequired,
				User: &events.UserRef{ID: userID, Role: "member", Status: events.UserStatusHeld}, DecidedAt: decided}
		}
		return events.ProvisioningResult{LoginID: ev.ID(), Outcome: events.OutcomeCreated,
			User: &events.UserRef{ID: userID, Role: "member", Status: "active"}, DecidedAt: decided}
	})
	c := newClient(t, nc, js)
	for _, tc := range []struct {
		ext  string
		want events.Outcome
	}{{"active", events.OutcomeCreated}, {"held", events.OutcomeHeld}} {
		t.Run(tc.ext, func(t *testing.T) {
			res, err := c.ProvisionEvent(testContext(t, 10*time.Second), loginEvent(t, identity("acme", tc.ext)))
			if err != nil {
				t.Fatalf("ProvisionEvent: %v", err)
			}
			if res.Outcome != tc.want || res.User == nil || res.User.ID != userID {
				t.Fatalf("result = %+v, want %s", res, tc.want)
			}
		})
	}

	// What goes on the wire: v1 for every outcome v1 can say, v2 for held.
	for _, tc := range []struct {
		res  events.ProvisioningResult
		want events.Type
	}{
		{result(uuid.NewString()), events.TypeProvisioningResult},
		{events.ProvisioningResult{LoginID: "l-held", Outcome: events.OutcomeHeld, Reason: events.ReasonSeatsExhausted,
			User: &events.UserRef{ID: userID, Role: "member", Status: events.UserStatusHeld}, DecidedAt: decided}, events.TypeProvisioningResultV2},
	} {
		inbox := nc.NewRespInbox()
		got := catch(t, nc, inbox)
		h := nats.Header{}
		h.Set(events.HeaderReplyTo, inbox)
		if err := bus.Reply(context.Background(), nc, h, tc.res, "/jitprov/test-provisioner"); err != nil {
			t.Fatalf("Reply: %v", err)
		}
		msgs := got()
		if len(msgs) != 1 {
			t.Fatalf("%d messages on the inbox, want 1", len(msgs))
		}
		ev, err := events.Decode(msgs[0])
		if err != nil {
			t.Fatal(err)
		}
		if events.Type(ev.Type()) != tc.want || ev.DataSchema() != tc.want.SchemaURL() {
			t.Errorf("%s answered as %s (%s), want %s", tc.res.Outcome, ev.Type(), ev.DataSchema(), tc.want)
		}
	}
}
