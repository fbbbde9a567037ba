package known_test

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/jitprov/jitprov/events"
	"github.com/jitprov/jitprov/internal/known"
	"github.com/jitprov/jitprov/internal/testenv"
)

func jetStream(t *testing.T, s *server.Server) jetstream.JetStream {
	t.Helper()
	js, err := jetstream.New(testenv.Connect(t, s))
	if err != nil {
		t.Fatal(err)
	}
	return js
}

func newCache(t *testing.T, s *server.Server) *known.Cache {
	t.Helper()
	c, err := known.New(context.Background(), jetStream(t, s), known.Config{})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return c
}

var t0 = time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)

func record(id events.Identity, role, status string, at time.Time) known.Record {
	return known.Record{
		UserID: "usr_ada", OrganizationID: id.OrganizationID, ConnectionID: id.ConnectionID,
		ExternalID: id.ExternalID, Role: role, Status: status, ClaimsDigest: known.Digest(id), UpdatedAt: at,
	}
}

func TestPutGet(t *testing.T) {
	s := testenv.NATS(t)
	provisioner := newCache(t, s)
	edge, err := known.Open(context.Background(), jetStream(t, s), "", 0)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	ctx := context.Background()
	id := ada()
	other := edit(func(i *events.Identity) { i.ExternalID = "someone-else" })

	for i, step := range []struct {
		name string
		put  *known.Record
		get  events.Identity
		want *known.Record // nil: ErrNotFound
	}{
		{"unknown before any put", nil, id, nil},
		{"round trip", ptr(record(id, "member", known.StatusActive, t0)), id, ptr(record(id, "member", known.StatusActive, t0))},
		{"another identity stays unknown", nil, other, nil},
		{"newer decision replaces", ptr(record(id, "admin", known.StatusActive, t0.Add(time.Minute))), id,
			ptr(record(id, "admin", known.StatusActive, t0.Add(time.Minute)))},
		{"older decision finishing late is dropped", ptr(record(id, "viewer", known.StatusActive, t0.Add(30*time.Second))), id,
			ptr(record(id, "admin", known.StatusActive, t0.Add(time.Minute)))},
		{"suspension recorded", ptr(record(id, "admin", "suspended", t0.Add(2*time.Minute))), id,
			ptr(record(id, "admin", "suspended", t0.Add(2*time.Minute)))},
	} {
		if step.put != nil {
			if err := provisioner.Put(ctx, *step.put); err != nil {
				t.Fatalf("step %d (%s): Put: %v", i, step.name, err)
			}
		}
		got, err := edge.Get(ctx, step.get.OrganizationID, step.get.ConnectionID, step.get.ExternalID)
		if step.want == nil {
			if !errors.Is(err, known.ErrNotFound) {
				t.Fatalf("step %d (%s): Get = %+v, %v; want ErrNotFound", i, step.name, got, err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("step %d (%s): Get: %v", i, step.name, err)
		}
		if got != *step.want {
			t.Fatalf("step %d (%s): Get = %+v, want %+v", i, step.name, got, *step.want)
		}
	}

	if err := provisioner.Delete(ctx, id.OrganizationID, id.ConnectionID, id.ExternalID); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if _, err := edge.Get(ctx, id.OrganizationID, id.ConnectionID, id.ExternalID); !errors.Is(err, known.ErrNotFound) {
		t.Fatalf("Get after Delete: %v, want ErrNotFound", err)
	}
	again := record(id, "member", known.StatusActive, t0.Add(3*time.Minute))
	if err := provisioner.Put(ctx, again); err != nil {
		t.Fatalf("Put after Delete: %v", err)
	}
	if got, err := edge.Get(ctx, id.OrganizationID, id.ConnectionID, id.ExternalID); err != nil || got != again {
		t.Fatalf("Get after re-Put = %+v, %v; want %+v", got, err, again)
	}
}

func ptr[T any](v T) *T { return &v }

// TestStoredForm checks the JSON record the edge and the provisioner share
// and that the key hides the external id.
func TestStoredForm(t *testing.T) {
	s := testenv.NATS(t)
	js := jetStream(t, s)
	c, err := known.New(context.Background(), js, known.Config{})
	if err != nil {
		t.Fatal(err)
	}
	id := ada()
	if err := c.Put(context.Background(), record(id, "member", known.StatusActive, t0)); err != nil {
		t.Fatal(err)
	}
	kv, err := js.KeyValue(context.Background(), known.DefaultBucket)
	if err != nil {
		t.Fatal(err)
	}
	key := known.Key(id.OrganizationID, id.ConnectionID, id.ExternalID)
	if !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(key) {
		t.Fatalf("Key = %q, want 64 hex digits", key)
	}
	e, err := kv.Get(context.Background(), key)
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf(`{"user_id":"usr_ada","org":"acme","connection":"okta-main","external_id":"00u1a2b3c4d5e6f7g8h9",`+
		`"role":"member","status":"active","claims_digest":"%s","updated_at":"2026-03-01T09:00:00Z"}`, known.Digest(id))
	if got := string(e.Value()); got != want {
		t.Fatalf("stored %s\nwant   %s", got, want)
	}
}

func TestKeySeparation(t *testing.T) {
	keys := map[string]string{}
	for _, k := range [][3]string{
		{"acme", "okta", "ada"},
		{"acme", "okta", "Ada"},
		{"acme", "entra", "ada"},
		{"globex", "okta", "ada"},
		{"acme", "okt", "aada"},
		{"acme", "okta\x00ada", ""},
		{"acme", "okta", "ada with spaces.*>"},
	} {
		key := known.Key(k[0], k[1], k[2])
		if prev, dup := keys[key]; dup {
			t.Errorf("Key(%q) = Key(%s)", k, prev)
		}
		keys[key] = fmt.Sprintf("%q", k)
	}
}

// TestConcurrentPuts: provisioner replicas racing on one identity leave
// the newest decision.
func TestConcurrentPuts(t *testing.T) {
	s := testenv.NATS(t)
	caches := []*known.Cache{newCache(t, s), newCache(t, s)}
	id := ada()
	const n = 20
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			errs[i] = caches[i%2].Put(context.Background(), record(id, fmt.Sprint("role-", i), known.StatusActive, t0.Add(time.Duration(i)*time.Second)))
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("Put %d: %v", i, err)
		}
	}
	got, err := caches[0].Get(context.Background(), id.OrganizationID, id.ConnectionID, id.ExternalID)
	if err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprint("role-", n-1); got.Role != want {
		t.Fatalf("role = %q, want the newest %q", got.Role, want)
	}
}

func TestPutRefuses(t *testing.T) {
	s := testenv.NATS(t)
	c := newCache(t, s)
	full := record(ada(), "member", known.StatusActive, t0)
	for _, tc := range []struct {
		name   string
		mutate func(*known.Record)
	}{
		{"no user", func(r *known.Record) { r.UserID = "" }},
		{"no organisation", func(r *known.Record) { r.OrganizationID = "" }},
		{"no connection", func(r *known.Record) { r.ConnectionID = "" }},
		{"no external id", func(r *known.Record) { r.ExternalID = "" }},
		{"no status", func(r *known.Record) { r.Status = "" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := full
			tc.mutate(&r)
			if err := c.Put(context.Background(), r); err == nil {
				t.Fatal("Put accepted it")
			}
		})
	}
}

func TestFresh(t *testing.T) {
	id := ada()
	active := record(id, "member", known.StatusActive, t0)
	for _, tc := range []struct {
		name string
		rec  known.Record
		id   events.Identity
		want bool
	}{
		{"known, active, same claims", active, id, true},
		{"claims in another order", active, edit(func(i *events.Identity) { i.Groups = []string{"all-staff", "analytical-engines", "engineering"} }), true},
		{"new login time", active, edit(func(i *events.Identity) { i.AuthenticatedAt = time.Now() }), true},
		{"role removed at the IdP", active, edit(func(i *events.Identity) { i.Roles = []string{"member"} }), false},
		{"group added at the IdP", active, edit(func(i *events.Identity) { i.Groups = append(i.Groups, "admins") }), false},
		{"email changed", active, edit(func(i *events.Identity) { i.Email = "ada@globex.example" }), false},
		{"suspended", record(id, "member", "suspended", t0), id, false},
		{"held for an admin's approval", record(id, "member", "held", t0), id, false},
		{"deprovisioned", record(id, "member", "deprovisioned", t0), id, false},
		{"no digest", func() known.Record { r := active; r.ClaimsDigest = ""; return r }(), id, false},
		{"no user", func() known.Record { r := active; r.UserID = ""; return r }(), id, false},
		{"record of another identity", active, edit(func(i *events.Identity) { i.ExternalID = "mallory" }), false},
		{"record of another connection", active, edit(func(i *events.Identity) { i.ConnectionID = "entra" }), false},
		{"zero record", known.Record{}, id, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := known.Fresh(tc.rec, tc.id); got != tc.want {
				t.Fatalf("Fresh = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestUnavailable(t *testing.T) {
	s := testenv.NATS(t)
	js := jetStream(t, s)
	c, err := known.New(context.Background(), js, known.Config{Timeout: 500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	s.Shutdown()
	s.WaitForShutdown()
	ctx := context.Background()
	id := ada()
	if _, err := c.Get(ctx, id.OrganizationID, id.ConnectionID, id.ExternalID); !errors.Is(err, known.ErrUnavailable) {
		t.Errorf("Get error = %v, want ErrUnavailable", err)
	}
	if err := c.Put(ctx, record(id, "member", known.StatusActive, t0)); !errors.Is(err, known.ErrUnavailable) {
		t.Errorf("Put error = %v, want ErrUnavailable", err)
	}
	if _, err := known.Open(ctx, js, "", 500*time.Millisecond); !errors.Is(err, known.ErrUnavailable) {
		t.Errorf("Open error = %v, want ErrUnavailable", err)
	}
}

func TestNewAndOpen(t *testing.T) {
	for _, tc := range []struct {
		name    string
		run     func(ctx context.Context, js jetstream.JetStream) error
		wantErr bool
	}{
		{"new twice is idempotent", func(ctx context.Context, js jetstream.JetStream) error {
			if _, err := known.New(ctx, js, known.Config{}); err != nil {
				return err
			}
			_, err := known.New(ctx, js, known.Config{})
			return err
		}, false},
		{"new updates the TTL", func(ctx context.Context, js jetstream.JetStream) error {
			if _, err := known.New(ctx, js, known.Config{}); err != nil {
				return err
			}
			if _, err := known.New(ctx, js, known.Config{TTL: 24 * time.Hour}); err != nil {
				return err
			}
			kv, err := js.KeyValue(ctx, known.DefaultBucket)
			if err != nil {
				return err
			}
			st, err := kv.Status(ctx)
			if err != nil {
				return err
			}
			if st.TTL() != 24*time.Hour {
				return fmt.Errorf("TTL = %s, want 24h", st.TTL())
			}
			return nil
		}, false},
		{"open before the provisioner created it", func(ctx context.Context, js jetstream.JetStream) error {
			_, err := known.Open(ctx, js, "", 0)
			return err
		}, true},
		{"replicas 2", func(ctx context.Context, js jetstream.JetStream) error {
			_, err := known.New(ctx, js, known.Config{Replicas: 2})
			return err
		}, true},
		{"invalid bucket name", func(ctx context.Context, js jetstream.JetStream) error {
			_, err := known.New(ctx, js, known.Config{Bucket: "a.b"})
			return err
		}, true},
		{"tiny TTL", func(ctx context.Context, js jetstream.JetStream) error {
			_, err := known.New(ctx, js, known.Config{TTL: time.Second})
			return err
		}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := testenv.NATS(t)
			err := tc.run(context.Background(), jetStream(t, s))
			if (err != nil) != tc.wantErr {
				t.Fatalf("error = %v, want error: %v", err, tc.wantErr)
			}
		})
	}
}
