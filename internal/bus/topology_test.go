package bus_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/jitprov/jitprov/events"
	"github.com/jitprov/jitprov/internal/bus"
	"github.com/jitprov/jitprov/internal/testenv"
)

// newJetStream starts an embedded JetStream server for t and returns a
// connection and a JetStream context on it.
func newJetStream(t *testing.T) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	nc := testenv.Connect(t, testenv.NATS(t))
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return nc, js
}

func testContext(t *testing.T, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func TestDefaultTopologyIsValid(t *testing.T) {
	if err := bus.DefaultTopology().Validate(); err != nil {
		t.Fatalf("DefaultTopology().Validate() = %v, want nil", err)
	}
	for _, replicas := range []int{1, 3, 5} {
		topo := bus.DefaultTopology()
		topo.Replicas = replicas
		if err := topo.Validate(); err != nil {
			t.Errorf("Replicas %d: Validate() = %v, want nil", replicas, err)
		}
	}
}

func TestTopologyValidate(t *testing.T) {
	tests := []struct {
		name   string
		change func(*bus.Topology)
		want   []string // substrings of the error
	}{
		{"replicas 2", func(t *bus.Topology) { t.Replicas = 2 }, []string{"replicas", "1, 3 or 5", "got 2"}},
		{"replicas 0", func(t *bus.Topology) { t.Replicas = 0 }, []string{"replicas", "got 0"}},
		{"replicas 4", func(t *bus.Topology) { t.Replicas = 4 }, []string{"replicas", "got 4"}},
		{"zero logins max age", func(t *bus.Topology) { t.LoginsMaxAge = 0 }, []string{"max age", "positive"}},
		{"zero events max age", func(t *bus.Topology) { t.EventsMaxAge = 0 }, []string{"max age", "positive"}},
		{"negative logins max age", func(t *bus.Topology) { t.LoginsMaxAge = -time.Hour }, []string{"max age", "positive"}},
		{"zero logins max per organisation", func(t *bus.Topology) { t.LoginsMaxPerOrg = 0 }, []string{"logins max per organisation", "positive", "got 0"}},
		{"negative logins max per organisation", func(t *bus.Topology) { t.LoginsMaxPerOrg = -1 }, []string{"logins max per organisation", "got -1"}},
		{"zero logins max bytes", func(t *bus.Topology) { t.LoginsMaxBytes = 0 }, []string{"logins max bytes", "positive", "got 0"}},
		{"negative logins max bytes", func(t *bus.Topology) { t.LoginsMaxBytes = -1 }, []string{"logins max bytes", "positive", "got -1"}},
		{"zero duplicate window", func(t *bus.Topology) { t.DuplicateWindow = 0 }, []string{"duplicate window", "positive"}},
		{"duplicate window longer than logins max age", func(t *bus.Topology) {
			t.LoginsMaxAge = time.Hour
			t.DuplicateWindow = 2 * time.Hour
		}, []string{"duplicate window 2h0m0s", "no longer than", "max age"}},
		{"duplicate window longer than events max age", func(t *bus.Topology) {
			t.EventsMaxAge = 30 * time.Minute
			t.DuplicateWindow = time.Hour
		}, []string{"duplicate window 1h0m0s", "no longer than", "max age"}},
		{"ack wait below 1s", func(t *bus.Topology) { t.AckWait = 999 * time.Millisecond }, []string{"ack wait 999ms", "one second"}},
		{"zero ack wait", func(t *bus.Topology) { t.AckWait = 0 }, []string{"ack wait", "one second"}},
		{"max deliver 1", func(t *bus.Topology) { t.MaxDeliver = 1 }, []string{"max deliver", "at least 2", "got 1"}},
		{"max deliver 0", func(t *bus.Topology) { t.MaxDeliver = 0 }, []string{"max deliver", "got 0"}},
		{"max deliver unlimited", func(t *bus.Topology) { t.MaxDeliver = -1 }, []string{"max deliver", "got -1"}},
		{"zero max ack pending", func(t *bus.Topology) { t.MaxAckPending = 0 }, []string{"max ack pending", "positive", "got 0"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			topo := bus.DefaultTopology()
			tc.change(&topo)
			err := topo.Validate()
			if err == nil {
				t.Fatalf("Validate() = nil, want an error containing %q", tc.want)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Validate() = %q, want it to contain %q", err, w)
				}
			}
		})
	}
}

func TestTopologyValidateBoundaries(t *testing.T) {
	tests := []struct {
		name   string
		change func(*bus.Topology)
	}{
		{"ack wait exactly 1s", func(t *bus.Topology) { t.AckWait = time.Second }},
		{"max deliver exactly 2", func(t *bus.Topology) { t.MaxDeliver = 2 }},
		{"duplicate window equal to both max ages", func(t *bus.Topology) {
			t.LoginsMaxAge, t.EventsMaxAge, t.DuplicateWindow = time.Hour, time.Hour, time.Hour
		}},
		{"one byte", func(t *bus.Topology) { t.LoginsMaxBytes = 1 }},
		{"one login per organisation", func(t *bus.Topology) { t.LoginsMaxPerOrg = 1 }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			topo := bus.DefaultTopology()
			tc.change(&topo)
			if err := topo.Validate(); err != nil {
				t.Fatalf("Validate() = %v, want nil", err)
			}
		})
	}
}

func TestEnsureRejectsInvalidTopologyBeforeTouchingTheServer(t *testing.T) {
	_, js := newJetStream(t)
	ctx := testContext(t, 10*time.Second)
	topo := bus.DefaultTopology()
	topo.MaxDeliver = 1
	err := bus.Ensure(ctx, js, topo)
	if err == nil || !strings.Contains(err.Error(), "max deliver") {
		t.Fatalf("Ensure = %v, want the validation error", err)
	}
	for name := range js.StreamNames(ctx).Name() {
		t.Errorf("stream %s was created by an Ensure that should have refused", name)
	}
}

// wantStream is what the stream settings read back from the server must be.
type wantStream struct {
	name       string
	subjects   []string
	retention  jetstream.RetentionPolicy
	maxAge     time.Duration
	maxBytes   int64
	discard    jetstream.DiscardPolicy
	duplicates time.Duration
	// perSubject bounds the messages of one subject (one organisation's
	// logins), refusing new ones beyond it; -1: unbounded.
	perSubject int64
}

func wantStreams(topo bus.Topology) []wantStream {
	return []wantStream{
		{bus.StreamLogins, events.LoginSubjects(), jetstream.WorkQueuePolicy, topo.LoginsMaxAge, topo.LoginsMaxBytes, jetstream.DiscardNew, topo.DuplicateWindow, topo.LoginsMaxPerOrg},
		{bus.StreamUsers, []string{events.SubjectUsers}, jetstream.LimitsPolicy, topo.EventsMaxAge, -1, jetstream.DiscardOld, topo.DuplicateWindow, -1},
		{bus.StreamAlerts, []string{events.SubjectAlerts}, jetstream.LimitsPolicy, topo.EventsMaxAge, -1, jetstream.DiscardOld, topo.DuplicateWindow, -1},
	}
}

func checkStreams(t *testing.T, ctx context.Context, js jetstream.JetStream, topo bus.Topology) {
	t.Helper()
	for _, w := range wantStreams(topo) {
		s, err := js.Stream(ctx, w.name)
		if err != nil {
			t.Errorf("stream %s: %v", w.name, err)
			continue
		}
		info, err := s.Info(ctx)
		if err != nil {
			t.Errorf("stream %s info: %v", w.name, err)
			continue
		}
		c := info.Config
		if !slices.Equal(c.Subjects, w.subjects) {
			t.Errorf("%s subjects = %v, want %v", w.name, c.Subjects, w.subjects)
		}
		if c.Retention != w.retention {
			t.Errorf("%s retention = %v, want %v", w.name, c.Retention, w.retention)
		}
		if c.Storage != jetstream.FileStorage {
			t.Errorf("%s storage = %v, want file", w.name, c.Storage)
		}
		if c.Replicas != topo.Replicas {
			t.Errorf("%s replicas = %d, want %d", w.name, c.Replicas, topo.Replicas)
		}
		if c.MaxAge != w.maxAge {
			t.Errorf("%s max age = %v, want %v", w.name, c.MaxAge, w.maxAge)
		}
		if c.MaxBytes != w.maxBytes {
			t.Errorf("%s max bytes = %d, want %d", w.name, c.MaxBytes, w.maxBytes)
		}
		if c.Discard != w.discard {
			t.Errorf("%s discard = %v, want %v", w.name, c.Discard, w.discard)
		}
		if c.Duplicates != w.duplicates {
			t.Errorf("%s duplicate window = %v, want %v", w.name, c.Duplicates, w.duplicates)
		}
		if c.MaxMsgsPerSubject != w.perSubject {
			t.Errorf("%s max messages per subject = %d, want %d", w.name, c.MaxMsgsPerSubject, w.perSubject)
		}
		if want := w.perSubject > 0; c.DiscardNewPerSubject != want {
			t.Errorf("%s discard new per subject = %v, want %v", w.name, c.DiscardNewPerSubject, want)
		}
	}
}

func checkConsumer(t *testing.T, ctx context.Context, js jetstream.JetStream, topo bus.Topology) *jetstream.ConsumerInfo {
	t.Helper()
	cons, err := js.Consumer(ctx, bus.StreamLogins, bus.ConsumerProvisioner)
	if err != nil {
		t.Fatalf("consumer %s on %s: %v", bus.ConsumerProvisioner, bus.StreamLogins, err)
	}
	info, err := cons.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	c := info.Config
	if c.Durable != bus.ConsumerProvisioner {
		t.Errorf("durable = %q, want %q", c.Durable, bus.ConsumerProvisioner)
	}
	if c.FilterSubject != events.SubjectLoginFirstSeenAll {
		t.Errorf("filter subject = %q, want %q", c.FilterSubject, events.SubjectLoginFirstSeenAll)
	}
	if c.AckPolicy != jetstream.AckExplicitPolicy {
		t.Errorf("ack policy = %v, want explicit", c.AckPolicy)
	}
	if c.DeliverPolicy != jetstream.DeliverAllPolicy {
		t.Errorf("deliver policy = %v, want all", c.DeliverPolicy)
	}
	if c.AckWait != topo.AckWait {
		t.Errorf("ack wait = %v, want %v", c.AckWait, topo.AckWait)
	}
	if c.MaxDeliver != topo.MaxDeliver {
		t.Errorf("max deliver = %d, want %d", c.MaxDeliver, topo.MaxDeliver)
	}
	if c.MaxAckPending != topo.MaxAckPending {
		t.Errorf("max ack pending = %d, want %d", c.MaxAckPending, topo.MaxAckPending)
	}
	if len(c.BackOff) != 0 {
		t.Errorf("backoff = %v, want none (the provisioner chooses its own Nak delays)", c.BackOff)
	}
	return info
}

func TestEnsureCreatesTheTopology(t *testing.T) {
	custom := bus.DefaultTopology()
	custom.LoginsMaxAge = 3 * time.Hour
	custom.LoginsMaxBytes = 64 << 20
	custom.LoginsMaxPerOrg = 500
	custom.EventsMaxAge = 48 * time.Hour
	custom.DuplicateWindow = 10 * time.Minute
	custom.AckWait = 7 * time.Second
	custom.MaxDeliver = 3
	custom.MaxAckPending = 100
	tests := []struct {
		name string
		topo bus.Topology
	}{
		{"default", bus.DefaultTopology()},
		{"custom", custom},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, js := newJetStream(t)
			ctx := testContext(t, 30*time.Second)
			if err := bus.Ensure(ctx, js, tc.topo); err != nil {
				t.Fatalf("Ensure: %v", err)
			}
			var names []string
			for name := range js.StreamNames(ctx).Name() {
				names = append(names, name)
			}
			slices.Sort(names)
			if want := []string{bus.StreamAlerts, bus.StreamLogins, bus.StreamUsers}; !slices.Equal(names, want) {
				t.Errorf("streams = %v, want %v", names, want)
			}
			checkStreams(t, ctx, js, tc.topo)
			checkConsumer(t, ctx, js, tc.topo)
			checkKnownConsumer(t, ctx, js, tc.topo)
		})
	}
}

// checkKnownConsumer: the consumer keeping the known identities right
// takes exactly the five admin events that can make a record stale, of
// every organisation, from USERS, and gives up no sooner than the
// provisioner consumer.
func checkKnownConsumer(t *testing.T, ctx context.Context, js jetstream.JetStream, topo bus.Topology) {
	t.Helper()
	cons, err := js.Consumer(ctx, bus.StreamUsers, bus.ConsumerKnown)
	if err != nil {
		t.Fatalf("consumer %s on %s: %v", bus.ConsumerKnown, bus.StreamUsers, err)
	}
	c := cons.CachedInfo().Config
	want := []string{"jit.user.suspended.*", "jit.user.reactivated.*", "jit.user.deprovisioned.*",
		"jit.user.role-changed.*", "jit.user.identity-unlinked.*"}
	if !slices.Equal(c.FilterSubjects, want) || c.FilterSubject != "" {
		t.Errorf("filter subjects = %q (single %q), want %q", c.FilterSubjects, c.FilterSubject, want)
	}
	if c.AckPolicy != jetstream.AckExplicitPolicy || c.DeliverPolicy != jetstream.DeliverAllPolicy {
		t.Errorf("ack policy %v, deliver policy %v: want explicit acks of every event", c.AckPolicy, c.DeliverPolicy)
	}
	if c.AckWait != topo.AckWait || c.MaxDeliver != topo.MaxDeliver || c.MaxAckPending != topo.MaxAckPending {
		t.Errorf("ack wait %v, max deliver %d, max ack pending %d; want %v, %d, %d",
			c.AckWait, c.MaxDeliver, c.MaxAckPending, topo.AckWait, topo.MaxDeliver, topo.MaxAckPending)
	}
	if len(c.BackOff) != 0 {
		t.Errorf("backoff = %v, want none (the provisioner chooses its own Nak delays)", c.BackOff)
	}
}

// advisories counts the JetStream advisories that report a stream or
// consumer being created or updated.
func advisories(t *testing.T, nc *nats.Conn) func() []string {
	t.Helper()
	ch := make(chan *nats.Msg, 64)
	var subs []*nats.Subscription
	for _, subj := range []string{"$JS.EVENT.ADVISORY.STREAM.CREATED.>", "$JS.EVENT.ADVISORY.STREAM.UPDATED.>",
		"$JS.EVENT.ADVISORY.CONSUMER.CREATED.>"} {
		sub, err := nc.ChanSubscribe(subj, ch)
		if err != nil {
			t.Fatal(err)
		}
		subs = append(subs, sub)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	return func() []string {
		t.Helper()
		// Advisories are sent asynchronously by the server, in the order
		// it made the changes: creating a marker stream now, its advisory
		// comes after any of the changes before.
		js, err := jetstream.New(nc)
		if err != nil {
			t.Fatal(err)
		}
		ctx := testContext(t, 30*time.Second)
		const marker = "ADVISORY_MARKER"
		if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: marker, Subjects: []string{"test.advisory-marker"},
			Storage: jetstream.MemoryStorage}); err != nil {
			t.Fatal(err)
		}
		defer func() { _ = js.DeleteStream(ctx, marker) }()
		defer func() {
			for _, s := range subs {
				_ = s.Unsubscribe()
			}
		}()
		var out []string
		for {
			select {
			case m := <-ch:
				if m.Subject == "$JS.EVENT.ADVISORY.STREAM.CREATED."+marker {
					return out
				}
				out = append(out, m.Subject)
			case <-ctx.Done():
				t.Fatalf("no advisory for the marker stream; got %v", out)
			}
		}
	}
}

func TestEnsureTwiceIsANoOp(t *testing.T) {
	nc, js := newJetStream(t)
	ctx := testContext(t, 30*time.Second)
	topo := bus.DefaultTopology()
	if err := bus.Ensure(ctx, js, topo); err != nil {
		t.Fatalf("first Ensure: %v", err)
	}
	before := map[string]*jetstream.StreamInfo{}
	for _, w := range wantStreams(topo) {
		s, err := js.Stream(ctx, w.name)
		if err != nil {
			t.Fatal(err)
		}
		before[w.name] = s.CachedInfo()
	}
	consBefore := checkConsumer(t, ctx, js, topo)

	seen := advisories(t, nc)
	if err := bus.Ensure(ctx, js, topo); err != nil {
		t.Fatalf("second Ensure: %v", err)
	}
	if got := seen(); len(got) != 0 {
		t.Errorf("the second Ensure created or updated something: advisories %v", got)
	}

	for name, b := range before {
		s, err := js.Stream(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		a := s.CachedInfo()
		if !a.Created.Equal(b.Created) {
			t.Errorf("stream %s was re-created: created %v, then %v", name, b.Created, a.Created)
		}
		if a.Config.MaxAge != b.Config.MaxAge || a.Config.Duplicates != b.Config.Duplicates ||
			a.Config.MaxBytes != b.Config.MaxBytes || a.Config.Description != b.Config.Description {
			t.Errorf("stream %s config changed: %+v, then %+v", name, b.Config, a.Config)
		}
	}
	consAfter := checkConsumer(t, ctx, js, topo)
	if !consAfter.Created.Equal(consBefore.Created) {
		t.Errorf("consumer re-created: created %v, then %v", consBefore.Created, consAfter.Created)
	}
}

func TestEnsureUpdatesChangedSettings(t *testing.T) {
	tests := []struct {
		name   string
		change func(*bus.Topology)
	}{
		{"events max age", func(t *bus.Topology) { t.EventsMaxAge = 72 * time.Hour }},
		{"logins max age", func(t *bus.Topology) { t.LoginsMaxAge = 6 * time.Hour }},
		{"logins max bytes", func(t *bus.Topology) { t.LoginsMaxBytes = 128 << 20 }},
		{"logins max per organisation", func(t *bus.Topology) { t.LoginsMaxPerOrg = 7 }},
		{"duplicate window", func(t *bus.Topology) { t.DuplicateWindow = 30 * time.Minute }},
		{"ack wait", func(t *bus.Topology) { t.AckWait = 45 * time.Second }},
		{"max deliver", func(t *bus.Topology) { t.MaxDeliver = 4 }},
		{"max ack pending", func(t *bus.Topology) { t.MaxAckPending = 64 }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, js := newJetStream(t)
			ctx := testContext(t, 30*time.Second)
			topo := bus.DefaultTopology()
			if err := bus.Ensure(ctx, js, topo); err != nil {
				t.Fatalf("first Ensure: %v", err)
			}
			tc.change(&topo)
			if err := bus.Ensure(ctx, js, topo); err != nil {
				t.Fatalf("Ensure after the change: %v", err)
			}
			checkStreams(t, ctx, js, topo)
			checkConsumer(t, ctx, js, topo)
		})
	}
}

func TestEnsureKeepsMessagesWhenUpdating(t *testing.T) {
	_, js := newJetStream(t)
	ctx := testContext(t, 30*time.Second)
	topo := bus.DefaultTopology()
	if err := bus.Ensure(ctx, js, topo); err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(ctx, "jit.user.created.acme", []byte("{}")); err != nil {
		t.Fatal(err)
	}
	topo.EventsMaxAge = 96 * time.Hour
	if err := bus.Ensure(ctx, js, topo); err != nil {
		t.Fatal(err)
	}
	s, err := js.Stream(ctx, bus.StreamUsers)
	if err != nil {
		t.Fatal(err)
	}
	if n := s.CachedInfo().State.Msgs; n != 1 {
		t.Errorf("USERS holds %d messages after the update, want 1", n)
	}
}

func TestEnsureWithReplicasBeyondTheClusterFails(t *testing.T) {
	_, js := newJetStream(t)
	ctx := testContext(t, 30*time.Second)
	topo := bus.DefaultTopology()
	topo.Replicas = 3
	err := bus.Ensure(ctx, js, topo)
	if err == nil {
		t.Fatal("Ensure with 3 replicas on a single server succeeded")
	}
	for _, w := range []string{bus.StreamLogins, "3 replicas"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("Ensure = %q, want it to name %q", err, w)
		}
	}
}
