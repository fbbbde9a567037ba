package replay_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/jitprov/jitprov/internal/edge/replay"
	"github.com/jitprov/jitprov/internal/testenv"
)

// The bucket's leader failing over must not refuse a login (a claim that
// cannot be made is a refusal), nor make a claim whose answer was lost
// look like a replay when it is tried again.
func TestClaimsThroughAFailover(t *testing.T) {
	cluster := testenv.NATSCluster(t, 3)
	js, err := jetstream.New(cluster.Connect(t))
	if err != nil {
		t.Fatal(err)
	}
	c, err := replay.New(context.Background(), js, replay.Config{Replicas: 3})
	if err != nil {
		t.Fatal(err)
	}
	const n = 200
	later := time.Now().Add(5 * time.Minute)
	errs := make([]error, n)
	var next, done atomic.Int64
	var once sync.Once
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				errs[i] = c.Claim(context.Background(), okta, fmt.Sprintf("_f%03d", i), later)
				if done.Add(1) == n/2 {
					once.Do(func() { cluster.Stop(cluster.StreamLeader(js, "KV_"+replay.DefaultBucket)) })
				}
			}
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("claim %d during the failover: %v, want it made", i, err)
		}
	}
	// Each assertion was claimed, once: a second use is a replay.
	for i := range n {
		if err := c.Claim(context.Background(), okta, fmt.Sprintf("_f%03d", i), later); !errors.Is(err, replay.ErrReplayed) {
			t.Errorf("second claim %d: %v, want ErrReplayed", i, err)
		}
	}
}

// A claim is made while its assertion is valid or not at all: retried
// through an outage past the assertion's validity, it gives up as expired
// — it could otherwise find the first use's entry gone and take a replay
// for a first use.
func TestClaimNeverOutlivesItsAssertion(t *testing.T) {
	single := testenv.NATSCluster(t, 1)
	js, err := jetstream.New(single.Connect(t))
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	clock := time.Now()
	c, err := replay.New(context.Background(), js, replay.Config{Now: func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		clock = clock.Add(40 * time.Second) // every look at the clock, 40 s later
		return clock
	}})
	if err != nil {
		t.Fatal(err)
	}
	single.Stop(0)
	mu.Lock()
	notOnOrAfter := clock.Add(-replay.DefaultSkew + 90*time.Second) // valid for 90 s more, skew included
	mu.Unlock()
	err = c.Claim(context.Background(), okta, "_late", notOnOrAfter)
	if !errors.Is(err, replay.ErrExpired) {
		t.Errorf("claim retried past its assertion's validity = %v, want ErrExpired", err)
	}
}
