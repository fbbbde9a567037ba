package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/jitprov/jitprov/internal/bus"
	"github.com/jitprov/jitprov/internal/notify"
	"github.com/jitprov/jitprov/internal/testenv"
)

func TestUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"frobnicate"}, `unknown command "frobnicate"`},
		{[]string{"dead"}, "dead needs list or replay"},
		{[]string{"dead", "purge"}, "dead needs list or replay"},
		{[]string{"serve", "extra"}, `unexpected argument "extra"`},
		{[]string{"serve"}, "JITPROV_DATABASE_URL: required"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			var out, errOut bytes.Buffer
			err := run(context.Background(), tc.args, func(string) string { return "" }, &out, &errOut)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("run(%q) = %v, want an error containing %q", tc.args, err, tc.want)
			}
		})
	}
}

// An operator lists what was parked and replays it: the delivery is
// queued again and leaves the dead-letter stream.
func TestDeadListAndReplay(t *testing.T) {
	ns := testenv.NATS(t)
	nc := testenv.Connect(t, ns)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := bus.Ensure(ctx, js, bus.DefaultTopology()); err != nil {
		t.Fatal(err)
	}
	if _, _, err := notify.Ensure(ctx, js, notify.DefaultTopology(), nil); err != nil {
		t.Fatal(err)
	}
	job := notify.Job{ID: "evt-1", Org: "acme", Alert: "seats.exhausted", Count: 3,
		Recipient: notify.Recipient{Kind: notify.KindWebhook, Address: "ops"}, Events: []json.RawMessage{[]byte(`{}`)}}
	data, _ := json.Marshal(job)
	h := nats.Header{}
	h.Set(notify.HeaderError, "webhook ops: https://hooks.acme.example answered 503 Service Unavailable")
	h.Set(notify.HeaderAttempts, "8")
	if _, err := js.PublishMsg(ctx, &nats.Msg{Subject: "jit.notify.dead.acme", Header: h, Data: data}); err != nil {
		t.Fatal(err)
	}
	env := func(k string) string {
		if k == "JITPROV_NATS_URL" {
			return ns.ClientURL()
		}
		return ""
	}
	sh := func(args ...string) (string, error) {
		var out, errOut bytes.Buffer
		err := run(ctx, args, env, &out, &errOut)
		return out.String(), err
	}

	out, err := sh("dead", "list")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"SEQ", "acme", "seats.exhausted", "webhook:ops", "8", "answered 503", "1 parked"} {
		if !strings.Contains(out, want) {
			t.Errorf("dead list output lacks %q:\n%s", want, out)
		}
	}
	if out, _ := sh("dead", "list", "-org", "globex"); !strings.Contains(out, "no parked deliveries") {
		t.Errorf("dead list -org globex:\n%s", out)
	}
	if _, err := sh("dead", "replay", "-org", "acme", "1"); err == nil {
		t.Error("replay with -org and a sequence number was accepted")
	}
	if _, err := sh("dead", "replay", "x"); err == nil || !strings.Contains(err.Error(), "not a sequence number") {
		t.Errorf("replay x: %v", err)
	}
	out, err = sh("dead", "replay", "1")
	if err != nil || !strings.Contains(out, "replayed 1: seats.exhausted to webhook:ops") {
		t.Fatalf("replay 1: %v\n%s", err, out)
	}
	if out, _ := sh("dead", "list"); !strings.Contains(out, "no parked deliveries") {
		t.Errorf("after the replay:\n%s", out)
	}
	s, err := js.Stream(ctx, notify.StreamJobs)
	if err != nil {
		t.Fatal(err)
	}
	m, err := s.GetLastMsgForSubject(ctx, "jit.notify.job.acme")
	if err != nil {
		t.Fatalf("no job queued by the replay: %v", err)
	}
	var queued notify.Job
	if err := json.Unmarshal(m.Data, &queued); err != nil || queued.ID != "evt-1" || queued.Replay != 1 {
		t.Errorf("queued %+v (%v), want evt-1 as replay 1", queued, err)
	}
	if _, err := sh("dead", "replay", "1"); err == nil {
		t.Error("replaying the same parked delivery twice succeeded")
	}
}
