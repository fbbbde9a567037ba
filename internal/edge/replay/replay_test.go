package replay_test

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/jitprov/jitprov/internal/edge/replay"
	"github.com/jitprov/jitprov/internal/testenv"
)

const (
	okta  = "http://www.okta.com/exk1a2b3c4"
	entra = "https://sts.windows.net/0000-tenant/"
)

func jetStream(t *testing.T, s *server.Server) jetstream.JetStream {
	t.Helper()
	js, err := jetstream.New(testenv.Connect(t, s))
	if err != nil {
		t.Fatal(err)
	}
	return js
}

func newCache(t *testing.T, s *server.Server, cfg replay.Config) *replay.Cache {
	t.Helper()
	c, err := replay.New(context.Background(), jetStream(t, s), cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return c
}

func TestClaim(t *testing.T) {
	s := testenv.NATS(t)
	c := newCache(t, s, replay.Config{})
	ctx := context.Background()
	later := time.Now().Add(5 * time.Minute)
	for _, tc := range []struct {
		name, issuer, id string
		notOnOrAfter     time.Time
		want             error
	}{
		{"first use", okta, "_a1", later, nil},
		{"second use", okta, "_a1", later, replay.ErrReplayed},
		{"second use, other expiry", okta, "_a1", later.Add(time.Minute), replay.ErrReplayed},
		{"same id from another issuer", entra, "_a1", later, nil},
		{"and again from that issuer", entra, "_a1", later, replay.ErrReplayed},
		{"id that is no valid KV key", okta, "id with spaces.*.>/\\ünï", later, nil},
		{"issuer and id split differently", okta + "_", "a1", later, nil},
		{"no NotOnOrAfter: kept for the max lifetime", okta, "_no-expiry", time.Time{}, nil},
		{"no NotOnOrAfter, again", okta, "_no-expiry", time.Time{}, replay.ErrReplayed},
		{"expired even with skew", okta, "_old", time.Now().Add(-replay.DefaultSkew - time.Second), replay.ErrExpired},
		{"valid longer than the bucket keeps it", okta, "_long", time.Now().Add(2 * time.Hour), replay.ErrTooLong},
		{"expired within the skew is still recorded", okta, "_skew", time.Now().Add(-time.Minute), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := c.Claim(ctx, tc.issuer, tc.id, tc.notOnOrAfter)
			if !errors.Is(err, tc.want) || (tc.want == nil && err != nil) {
				t.Fatalf("Claim error = %v, want %v", err, tc.want)
			}
		})
	}
	t.Run("empty id", func(t *testing.T) {
		if err := c.Claim(ctx, okta, "", later); err == nil {
			t.Fatal("Claim accepted an empty id")
		}
	})
}

// TestTwoReplicas: two edge replicas, each with its own connection and
// Cache on the same bucket, see each other's claims.
func TestTwoReplicas(t *testing.T) {
	s := testenv.NATS(t)
	a := newCache(t, s, replay.Config{})
	b := newCache(t, s, replay.Config{})
	ctx := context.Background()
	exp := time.Now().Add(5 * time.Minute)
	for i, step := range []struct {
		cache *replay.Cache
		id    string
		want  error
	}{
		{a, "_x", nil},
		{b, "_x", replay.ErrReplayed},
		{a, "_x", replay.ErrReplayed},
		{b, "_y", nil},
		{a, "_y", replay.ErrReplayed},
	} {
		if err := step.cache.Claim(ctx, okta, step.id, exp); !errors.Is(err, step.want) || (step.want == nil && err != nil) {
			t.Fatalf("step %d: Claim(%s) error = %v, want %v", i, step.id, err, step.want)
		}
	}
}

// TestConcurrentClaims: 100 claims of one assertion at once, spread over
// two replicas, succeed exactly once.
func TestConcurrentClaims(t *testing.T) {
	s := testenv.NATS(t)
	caches := []*replay.Cache{newCache(t, s, replay.Config{}), newCache(t, s, replay.Config{})}
	exp := time.Now().Add(5 * time.Minute)
	const n = 100
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			errs[i] = caches[i%2].Claim(context.Background(), okta, "_contended", exp)
		})
	}
	close(start)
	wg.Wait()
	var ok, replayed int
	for i, err := range errs {
		switch {
		case err == nil:
			ok++
		case errors.Is(err, replay.ErrReplayed):
			replayed++
		default:
			t.Errorf("claim %d: %v", i, err)
		}
	}
	if ok != 1 || replayed != n-1 {
		t.Fatalf("%d claims succeeded and %d were replays, want 1 and %d", ok, replayed, n-1)
	}
}

// TestExpiryFreesKey: an entry lives until NotOnOrAfter + skew, then the
// key can be claimed again (by then the assertion itself is refused by the
// validator). The bucket's own age limit is an hour, so this is the
// per-key TTL at work.
func TestExpiryFreesKey(t *testing.T) {
	s := testenv.NATS(t)
	c := newCache(t, s, replay.Config{Skew: 500 * time.Millisecond})
	ctx := context.Background()
	claimed := time.Now()
	notOnOrAfter := claimed.Add(time.Second)
	if err := c.Claim(ctx, okta, "_short", notOnOrAfter); err != nil {
		t.Fatal(err)
	}
	if err := c.Claim(ctx, okta, "_short", notOnOrAfter); !errors.Is(err, replay.ErrReplayed) {
		t.Fatalf("immediate second claim: %v, want ErrReplayed", err)
	}
	// Claim again with a later NotOnOrAfter (as a fresh assertion with the
	// same id would have) until the key is free.
	deadline := time.Now().Add(15 * time.Second)
	for {
		err := c.Claim(ctx, okta, "_short", time.Now().Add(time.Minute))
		if err == nil {
			break
		}
		if !errors.Is(err, replay.ErrReplayed) {
			t.Fatalf("Claim: %v", err)
		}
		if time.Now().After(deadline) {
			t.Fatal("the entry did not expire")
		}
		time.Sleep(100 * time.Millisecond)
	}
	if lived, min := time.Since(claimed), notOnOrAfter.Add(500*time.Millisecond).Sub(claimed); lived < min {
		t.Fatalf("entry freed after %s, before NotOnOrAfter+skew (%s)", lived, min)
	}
	if err := c.Claim(ctx, okta, "_short", time.Now().Add(time.Minute)); !errors.Is(err, replay.ErrReplayed) {
		t.Fatalf("claim after the re-claim: %v, want ErrReplayed", err)
	}
}

// TestUnavailable: with NATS gone, Claim fails closed with ErrUnavailable
// and in bounded time.
func TestUnavailable(t *testing.T) {
	for _, tc := range []struct {
		name string
		stop func(s *server.Server, nc *nats.Conn)
	}{
		{"server shut down", func(s *server.Server, _ *nats.Conn) { s.Shutdown(); s.WaitForShutdown() }},
		{"connection closed", func(_ *server.Server, nc *nats.Conn) { nc.Close() }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := testenv.NATS(t)
			nc := testenv.Connect(t, s)
			js, err := jetstream.New(nc)
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			// The bucket and the first claim through a patient cache: on a
			// busy machine creating the bucket can take longer than the
			// short timeout under test, which is for the failing calls.
			setup, err := replay.New(ctx, js, replay.Config{Timeout: 30 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			if err := setup.Claim(ctx, okta, "_before", time.Now().Add(time.Minute)); err != nil {
				t.Fatal(err)
			}
			var c *replay.Cache
			for deadline := time.Now().Add(30 * time.Second); c == nil; {
				if c, err = replay.New(ctx, js, replay.Config{Timeout: 500 * time.Millisecond}); err != nil && time.Now().After(deadline) {
					t.Fatalf("New with the bucket in place: %v", err)
				}
			}
			tc.stop(s, nc)
			started := time.Now()
			for _, id := range []string{"_before", "_after"} {
				err := c.Claim(ctx, okta, id, time.Now().Add(time.Minute))
				if !errors.Is(err, replay.ErrUnavailable) {
					t.Fatalf("Claim(%s) error = %v, want ErrUnavailable", id, err)
				}
			}
			if d := time.Since(started); d > 5*time.Second {
				t.Errorf("failing took %s", d)
			}
		})
	}
}

func TestNewUnavailable(t *testing.T) {
	s := testenv.NATS(t)
	js := jetStream(t, s)
	s.Shutdown()
	s.WaitForShutdown()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if _, err := replay.New(ctx, js, replay.Config{Timeout: 500 * time.Millisecond}); !errors.Is(err, replay.ErrUnavailable) {
		t.Fatalf("New error = %v, want ErrUnavailable", err)
	}
}

func TestNewBucket(t *testing.T) {
	for _, tc := range []struct {
		name    string
		before  func(t *testing.T, js jetstream.JetStream) // an existing bucket
		cfg     replay.Config
		bucket  string
		wantErr bool
	}{
		{"defaults", nil, replay.Config{}, replay.DefaultBucket, false},
		{"named", nil, replay.Config{Bucket: "EDGE_REPLAY"}, "EDGE_REPLAY", false},
		{"idempotent", func(t *testing.T, js jetstream.JetStream) {
			if _, err := replay.New(context.Background(), js, replay.Config{}); err != nil {
				t.Fatal(err)
			}
		}, replay.Config{}, replay.DefaultBucket, false},
		{"updates another lifetime", func(t *testing.T, js jetstream.JetStream) {
			if _, err := replay.New(context.Background(), js, replay.Config{MaxLifetime: 10 * time.Minute}); err != nil {
				t.Fatal(err)
			}
		}, replay.Config{}, replay.DefaultBucket, false},
		{"upgrades a bucket without per-key TTL", func(t *testing.T, js jetstream.JetStream) {
			if _, err := js.CreateKeyValue(context.Background(), jetstream.KeyValueConfig{Bucket: replay.DefaultBucket}); err != nil {
				t.Fatal(err)
			}
		}, replay.Config{}, replay.DefaultBucket, false},
		{"replicas 2", nil, replay.Config{Replicas: 2}, "", true},
		{"replicas 3 on a single server", nil, replay.Config{Replicas: 3}, "", true},
		{"invalid bucket name", nil, replay.Config{Bucket: "a.b"}, "", true},
		{"negative skew", nil, replay.Config{Skew: -time.Second}, "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := testenv.NATS(t)
			js := jetStream(t, s)
			if tc.before != nil {
				tc.before(t, js)
			}
			c, err := replay.New(context.Background(), js, tc.cfg)
			if tc.wantErr {
				if err == nil {
					t.Fatal("New accepted the configuration")
				}
				if errors.Is(err, replay.ErrUnavailable) {
					t.Errorf("configuration error reported as unavailability: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			kv, err := js.KeyValue(context.Background(), tc.bucket)
			if err != nil {
				t.Fatal(err)
			}
			st, err := kv.Status(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if want := replay.DefaultMaxLifetime + replay.DefaultSkew; st.TTL() != want {
				t.Errorf("bucket TTL = %s, want %s", st.TTL(), want)
			}
			if st.LimitMarkerTTL() <= 0 {
				t.Errorf("bucket has no limit markers: per-key TTL unavailable")
			}
			if st.History() != 1 {
				t.Errorf("history = %d, want 1", st.History())
			}
			if err := c.Claim(context.Background(), okta, "_z", time.Now().Add(time.Minute)); err != nil {
				t.Errorf("Claim: %v", err)
			}
		})
	}
}

func TestKey(t *testing.T) {
	hex64 := regexp.MustCompile(`^[0-9a-f]{64}$`)
	seen := map[string]string{}
	for _, tc := range []struct{ issuer, id string }{
		{okta, "_a1"},
		{entra, "_a1"},
		{okta + "_", "a1"},
		{okta, "_a1 "},
		{"", okta + "\x00_a1"},
		{okta, "*.>"},
		{okta, ""},
	} {
		k := replay.Key(tc.issuer, tc.id)
		if !hex64.MatchString(k) {
			t.Errorf("Key(%q, %q) = %q, want 64 hex digits", tc.issuer, tc.id, k)
		}
		if k != replay.Key(tc.issuer, tc.id) {
			t.Errorf("Key(%q, %q) is not deterministic", tc.issuer, tc.id)
		}
		in := fmt.Sprintf("%q/%q", tc.issuer, tc.id)
		if prev, dup := seen[k]; dup {
			t.Errorf("Key(%s) = Key(%s)", in, prev)
		}
		seen[k] = in
	}
}
