package postgres_test

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jitprov/jitprov/internal/store"
	"github.com/jitprov/jitprov/internal/store/postgres"
	"github.com/jitprov/jitprov/internal/store/storetest"
	"github.com/jitprov/jitprov/internal/testenv"
)

func TestConformance(t *testing.T) {
	storetest.RunTests(t, func(t *testing.T) store.Store {
		s, _ := testenv.Store(t)
		return s
	})
}

// open opens a store on dbURL without migrating it, closed when t ends.
func open(t *testing.T, dbURL string) *postgres.Store {
	t.Helper()
	s, err := postgres.Open(t.Context(), dbURL, postgres.Options{MaxConns: 4, Logger: testenv.Logger(t)})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(s.Close)
	return s
}

type appliedMigration struct {
	Version int
	Name    string
}

func appliedMigrations(t *testing.T, s *postgres.Store) []appliedMigration {
	t.Helper()
	rows, err := s.Pool().Query(t.Context(), `SELECT version, name FROM schema_migrations ORDER BY version`)
	if err != nil {
		t.Fatalf("read schema_migrations: %v", err)
	}
	defer rows.Close()
	var out []appliedMigration
	for rows.Next() {
		var m appliedMigration
		if err := rows.Scan(&m.Version, &m.Name); err != nil {
			t.Fatalf("read schema_migrations: %v", err)
		}
		out = append(out, m)
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("read schema_migrations: %v", err)
	}
	return out
}

func wantApplied(all []postgres.Migration, upTo int) []appliedMigration {
	var out []appliedMigration
	for _, m := range all[:upTo] {
		out = append(out, appliedMigration{m.Version, m.Name})
	}
	return out
}

func TestMigrations(t *testing.T) {
	all, err := postgres.Migrations()
	if err != nil {
		t.Fatalf("Migrations: %v", err)
	}

	t.Run("NumberedWithoutGaps", func(t *testing.T) {
		if len(all) == 0 {
			t.Fatal("Migrations: got none")
		}
		files, err := filepath.Glob("migrations/*.sql")
		if err != nil {
			t.Fatal(err)
		}
		if len(files) != len(all) {
			t.Errorf("got %d migrations, want one per file in migrations/ (%d)", len(all), len(files))
		}
		for i, m := range all {
			if m.Version != i+1 {
				t.Errorf("migration %d: got version %d, want %d", i, m.Version, i+1)
			}
			if prefix := fmt.Sprintf("%04d_", m.Version); !strings.HasPrefix(m.Name, prefix) || !strings.HasSuffix(m.Name, ".sql") {
				t.Errorf("migration %d: got name %q, want %s<name>.sql", i, m.Name, prefix)
			}
			if strings.TrimSpace(m.SQL) == "" {
				t.Errorf("migration %s is empty", m.Name)
			}
		}
	})

	t.Run("PublishedUnchanged", func(t *testing.T) {
		raw, err := os.ReadFile(filepath.Join("testdata", "migrations.sum"))
		if err != nil {
			t.Fatal(err)
		}
		recorded := map[string]string{}
		for _, line := range strings.Split(string(raw), "\n") {
			if line = strings.TrimSpace(line); line == "" || strings.HasPrefix(line, "#") {
				continue
			}
			sum, name, ok := strings.Cut(line, "  ")
			if !ok {
				t.Fatalf("testdata/migrations.sum: malformed line %q", line)
			}
			recorded[name] = sum
		}
		for _, m := range all {
			sum := fmt.Sprintf("%x", sha256.Sum256([]byte(m.SQL)))
			want, ok := recorded[m.Name]
			switch {
			case !ok:
				t.Errorf("migration %s is not in testdata/migrations.sum; once it is final, add the line %q", m.Name, sum+"  "+m.Name)
			case sum != want:
				t.Errorf("published migration %s changed (sha256 %s, recorded %s): databases that applied it "+
					"will never see the change; revert it and add the change as the next migration", m.Name, sum, want)
			}
			delete(recorded, m.Name)
		}
		for name := range recorded {
			t.Errorf("testdata/migrations.sum records %s, which the binary no longer ships", name)
		}
	})

	// Each step on a fresh database, with the step's own test data from
	// testdata/migratest/NNNN.sql loaded after it (as in ory/kratos's
	// migratest), so later steps are proven against existing rows.
	t.Run("StepByStep", func(t *testing.T) {
		s := open(t, testenv.NewDatabase(t))
		ctx := t.Context()
		if v, err := s.SchemaVersion(ctx); v != 0 || err != nil {
			t.Errorf("SchemaVersion of a never-migrated database: got (%d, %v), want (0, nil)", v, err)
		}
		for i, m := range all {
			applied, err := s.MigrateTo(ctx, m.Version)
			if err != nil {
				t.Fatalf("MigrateTo(%d): %v", m.Version, err)
			}
			if !slices.Equal(applied, []int{m.Version}) {
				t.Errorf("MigrateTo(%d): got applied %v, want [%d]", m.Version, applied, m.Version)
			}
			if v, err := s.SchemaVersion(ctx); err != nil || v != m.Version {
				t.Errorf("SchemaVersion after MigrateTo(%d): got (%d, %v), want (%d, nil)", m.Version, v, err, m.Version)
			}
			if got, want := appliedMigrations(t, s), wantApplied(all, i+1); !slices.Equal(got, want) {
				t.Errorf("schema_migrations after MigrateTo(%d): got %v, want %v", m.Version, got, want)
			}
			// Asking for the same version again applies nothing.
			if again, err := s.MigrateTo(ctx, m.Version); err != nil || len(again) != 0 {
				t.Errorf("MigrateTo(%d) again: got (%v, %v), want nothing applied", m.Version, again, err)
			}
			data, err := os.ReadFile(filepath.Join("testdata", "migratest", fmt.Sprintf("%04d.sql", m.Version)))
			if errors.Is(err, os.ErrNotExist) {
				continue
			} else if err != nil {
				t.Fatal(err)
			}
			if _, err := s.Pool().Exec(ctx, string(data)); err != nil {
				t.Fatalf("test data for migration %s: %v", m.Name, err)
			}
		}
		// The data written at every step still reads through the store.
		checkMigratestData(t, s)
	})

	t.Run("MigrateTwice", func(t *testing.T) {
		s := open(t, testenv.NewDatabase(t))
		applied, err := s.Migrate(t.Context())
		if err != nil {
			t.Fatalf("first Migrate: %v", err)
		}
		var want []int
		for _, m := range all {
			want = append(want, m.Version)
		}
		if !slices.Equal(applied, want) {
			t.Errorf("first Migrate: got applied %v, want %v", applied, want)
		}
		applied, err = s.Migrate(t.Context())
		if err != nil || len(applied) != 0 {
			t.Errorf("second Migrate: got (%v, %v), want nothing applied", applied, err)
		}
		if got := appliedMigrations(t, s); !slices.Equal(got, wantApplied(all, len(all))) {
			t.Errorf("schema_migrations: got %v, want %v", got, wantApplied(all, len(all)))
		}
	})

	// Several replicas starting at once on a fresh database.
	t.Run("Concurrent", func(t *testing.T) {
		const replicas = 5
		dbURL := testenv.NewDatabase(t)
		stores := make([]*postgres.Store, replicas)
		for i := range stores {
			stores[i] = open(t, dbURL)
		}
		applied := make([][]int, replicas)
		errs := make([]error, replicas)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i := range replicas {
			wg.Go(func() {
				<-start
				applied[i], errs[i] = stores[i].Migrate(t.Context())
			})
		}
		close(start)
		wg.Wait()
		times := map[int]int{}
		for i := range replicas {
			if errs[i] != nil {
				t.Errorf("replica %d: Migrate: %v", i, errs[i])
			}
			for _, v := range applied[i] {
				times[v]++
			}
		}
		for _, m := range all {
			if times[m.Version] != 1 {
				t.Errorf("migration %s: applied %d times across the replicas, want once", m.Name, times[m.Version])
			}
		}
		if got := appliedMigrations(t, stores[0]); !slices.Equal(got, wantApplied(all, len(all))) {
			t.Errorf("schema_migrations: got %v, want %v", got, wantApplied(all, len(all)))
		}
	})

	t.Run("NewerSchemaRefused", func(t *testing.T) {
		s, _ := testenv.Store(t)
		future := len(all) + 1
		if _, err := s.Pool().Exec(t.Context(), `INSERT INTO schema_migrations (version, name) VALUES ($1, $2)`,
			future, fmt.Sprintf("%04d_from_the_future.sql", future)); err != nil {
			t.Fatal(err)
		}
		applied, err := s.Migrate(t.Context())
		if err == nil {
			t.Fatalf("Migrate on a schema at version %d with a binary knowing %d: got nil error (applied %v)", future, len(all), applied)
		}
		if len(applied) != 0 {
			t.Errorf("Migrate on a newer schema: got applied %v, want nothing", applied)
		}
		for _, want := range []string{"upgrade", fmt.Sprint(future), fmt.Sprint(len(all))} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("Migrate on a newer schema: got error %q, want it to mention %q", err, want)
			}
		}
		if _, err := s.MigrateTo(t.Context(), 1); err == nil {
			t.Errorf("MigrateTo(1) on a newer schema: got nil error, want the same refusal")
		}
	})

	t.Run("TargetOutOfRange", func(t *testing.T) {
		s := open(t, testenv.NewDatabase(t))
		for _, target := range []int{len(all) + 1, -1} {
			if applied, err := s.MigrateTo(t.Context(), target); err == nil {
				t.Errorf("MigrateTo(%d) with %d migrations: got (%v, nil), want an error", target, len(all), applied)
			}
		}
	})
}

// checkMigratestData reads the rows testdata/migratest put in, through the
// store interface.
func checkMigratestData(t *testing.T, s store.Store) {
	t.Helper()
	err := s.InTx(t.Context(), func(ctx context.Context, tx store.Tx) error {
		o, err := tx.Organization(ctx, "migratest")
		if err != nil {
			return err
		}
		if o.SeatsUsed != 1 || o.MaxSeats != 5 || o.LandingURL != "https://app.migratest.example/" {
			t.Errorf("migratest organisation: got %d/%d seats, landing %q; want 1/5, https://app.migratest.example/", o.SeatsUsed, o.MaxSeats, o.LandingURL)
		}
		if _, err := tx.Connection(ctx, "migratest", "okta"); err != nil {
			return err
		}
		if c, err := tx.Connection(ctx, "migratest", "entra"); err != nil {
			return err
		} else if c.DisplayName != "Entra ID" || c.Replaces != "okta" {
			t.Errorf("migratest connection entra: got %+v", c)
		}
		// The identity the user had before 0004 is its first, and finds it.
		u, err := tx.UserByIdentity(ctx, "migratest", "okta", "ada@idp")
		if err != nil {
			return err
		}
		ids, err := tx.Identities(ctx, u.ID)
		if err != nil {
			return err
		}
		var got []string
		for _, i := range ids {
			got = append(got, i.ConnectionID+"/"+i.ExternalID+"/"+i.LinkedBy)
		}
		if want := []string{"okta/ada@idp/created", "entra/ada-oid/replaces"}; !slices.Equal(got, want) {
			t.Errorf("migratest identities: got %v, want %v", got, want)
		}
		if ids[0].LastSeenAt.Before(ids[0].FirstSeenAt) {
			t.Errorf("migratest identity: last seen %s before first seen %s", ids[0].LastSeenAt, ids[0].FirstSeenAt)
		}
		if u.Email != "Ada@Migratest.Example" || u.Role != "viewer" || u.Attributes["department"][0] != "R&D" {
			t.Errorf("migratest user: got %+v", u)
		}
		// 0010: nobody is suspended for inactivity nor managed by SCIM, and
		// no organisation suspends anyone until its file says so.
		if u.SuspendedReason != "" || u.SCIM.Managed || o.InactiveAfter != 0 {
			t.Errorf("migratest after 0010: user reason %q, SCIM %v; organisation inactive_after %s; want none, false, 0",
				u.SuspendedReason, u.SCIM.Managed, o.InactiveAfter)
		}
		// 0012: no field has an owner: every field follows update_policy.
		if len(o.FieldOwners) != 0 {
			t.Errorf("migratest after 0012: field owners %v, want none", o.FieldOwners)
		}
		if _, err := tx.PendingRoleReview(ctx, u.ID, "editor"); err != nil {
			return err
		}
		if d, err := tx.Decision(ctx, "migratest-login-1"); err != nil {
			return err
		} else if d.UserID != u.ID {
			t.Errorf("migratest decision: got user %q, want %q", d.UserID, u.ID)
		}
		// Migration 0009: a role an admin granted is the admin's (0008.sql).
		for _, c := range roleSourceCases {
			got, err := tx.UserByID(ctx, "migratest", c.id)
			if err != nil {
				return err
			}
			if got.RoleSource != c.want {
				t.Errorf("migratest user %s (%s): role source %q, want %q", got.Email, c.why, got.RoleSource, c.want)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("read migratest data: %v", err)
	}
	var got []store.OutboxMessage
	if _, err := s.RelayOutbox(t.Context(), 10, func(_ context.Context, msgs []store.OutboxMessage) (int, error) {
		got = msgs
		return len(msgs), nil
	}); err != nil {
		t.Fatalf("RelayOutbox: %v", err)
	}
	if len(got) != 1 || got[0].EventID != "migratest-evt-1" || string(got[0].Data) != `{"hello":"world"}` ||
		!slices.Equal(got[0].Header["Nats-Msg-Id"], []string{"migratest-evt-1"}) {
		t.Errorf("migratest outbox: got %+v", got)
	}
}

// roleSourceCases are the users of testdata/migratest (0001.sql,
// 0008.sql) and the role source migration 0009 gives each.
var roleSourceCases = []struct{ id, want, why string }{
	{"6f0d1a52-8f4e-4c55-9a57-3c1f0e2b7d10", store.RoleSourceIdP, "JIT, a pending review"},
	{"00000008-0000-4000-8000-000000000001", store.RoleSourceAdmin, "created by an admin"},
	{"00000008-0000-4000-8000-000000000002", store.RoleSourceAdmin, "created by the application"},
	{"00000008-0000-4000-8000-000000000003", store.RoleSourceAdmin, "an admin set the role"},
	{"00000008-0000-4000-8000-000000000004", store.RoleSourceIdP, "an admin set another role, a sign-in changed it since"},
	{"00000008-0000-4000-8000-000000000005", store.RoleSourceAdmin, "an approved review"},
	{"00000008-0000-4000-8000-000000000006", store.RoleSourceIdP, "a denied review"},
	{"00000008-0000-4000-8000-000000000007", store.RoleSourceAdmin, "above the JIT ceiling"},
	{"00000008-0000-4000-8000-000000000008", store.RoleSourceAdmin, "an initial admin"},
	{"00000008-0000-4000-8000-000000000009", store.RoleSourceIdP, "the ceiling role by JIT; another organisation's audit entry"},
}

const secret = "hunter2-Sup3rSecret"

func TestOpenMalformedURL(t *testing.T) {
	for _, raw := range []string{
		"postgres://jitprov:" + secret + "@localhost:notaport/jitprov",
		"postgres://jitprov:" + secret + "@localhost:5432/jitprov?sslmode=sometimes",
		"postgres://jitprov:" + secret + "@[::1/jitprov",
		"host=localhost user=jitprov password=" + secret + " port=notaport",
		"host=localhost user=jitprov password=" + secret + " sslmode=sometimes",
	} {
		s, err := postgres.Open(t.Context(), raw, postgres.Options{})
		if err == nil {
			s.Close()
			t.Errorf("Open(malformed URL): got nil error")
			continue
		}
		msg := err.Error()
		if strings.Contains(msg, secret) {
			t.Errorf("Open(malformed URL): the error leaks the password: %q", msg)
		}
		if !strings.Contains(msg, "not valid") {
			t.Errorf("Open(malformed URL): got error %q, want it to say the URL is not valid", msg)
		}
		if errors.Is(err, store.ErrUnavailable) {
			t.Errorf("Open(malformed URL): got %q matching ErrUnavailable; a bad URL is not transient", msg)
		}
	}
}

func TestOpenUnreachable(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	raw := "postgres://jitprov:" + secret + "@127.0.0.1:1/jitprov?sslmode=disable&connect_timeout=2"
	s, err := postgres.Open(ctx, raw, postgres.Options{})
	if err == nil {
		s.Close()
		t.Fatalf("Open(127.0.0.1:1): got nil error")
	}
	msg := err.Error()
	if strings.Contains(msg, secret) {
		t.Errorf("Open(unreachable): the error leaks the password: %q", msg)
	}
	if !strings.Contains(msg, "127.0.0.1:1") {
		t.Errorf("Open(unreachable): got error %q, want it to name the server", msg)
	}
	if !errors.Is(err, store.ErrUnavailable) {
		t.Errorf("Open(unreachable): got %q, want it to match store.ErrUnavailable", msg)
	}
}

// A row whose (lower-seq) transaction commits after a higher seq was relayed
// must stay unsent and be relayed once it commits.
func TestRelayLeavesUncommittedLowerSeq(t *testing.T) {
	s, _ := testenv.Store(t)
	ctx := t.Context()

	raw, err := s.Pool().Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = raw.Rollback(context.WithoutCancel(ctx)) }()
	var earlySeq int64
	if err := raw.QueryRow(ctx, `INSERT INTO outbox (event_id, subject, header, data)
		VALUES ('evt-early', 'jit.users.user.created.acme', '{"Nats-Msg-Id":["evt-early"]}', '\x7b7d'::bytea)
		RETURNING seq`).Scan(&earlySeq); err != nil {
		t.Fatal(err)
	}

	late := store.OutboxMessage{EventID: "evt-late", Subject: "jit.users.user.created.acme",
		Header: map[string][]string{"Nats-Msg-Id": {"evt-late"}}, Data: []byte(`{}`)}
	if err := s.InTx(ctx, func(ctx context.Context, tx store.Tx) error { return tx.AppendOutbox(ctx, late) }); err != nil {
		t.Fatal(err)
	}

	relayOnce := func(what string, wantIDs ...string) []store.OutboxMessage {
		t.Helper()
		var got []store.OutboxMessage
		n, err := s.RelayOutbox(ctx, 10, func(_ context.Context, msgs []store.OutboxMessage) (int, error) {
			got = append(got, msgs...)
			return len(msgs), nil
		})
		var ids []string
		for _, m := range got {
			ids = append(ids, m.EventID)
		}
		if err != nil || n != len(wantIDs) || !slices.Equal(ids, wantIDs) {
			t.Errorf("%s: got (%d, %v) handing out %v, want (%d, nil) handing out %v", what, n, err, ids, len(wantIDs), wantIDs)
		}
		return got
	}
	first := relayOnce("relay with evt-early uncommitted", "evt-late")
	if len(first) == 1 && first[0].Seq <= earlySeq {
		t.Fatalf("evt-late got Seq %d, want more than evt-early's %d (the scenario needs it)", first[0].Seq, earlySeq)
	}
	relayOnce("relay again with evt-early uncommitted")

	if err := raw.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	second := relayOnce("relay after evt-early committed", "evt-early")
	if len(second) == 1 && (second[0].Seq != earlySeq || string(second[0].Data) != "{}") {
		t.Errorf("evt-early: got %+v, want Seq %d and data {}", second[0], earlySeq)
	}
	relayOnce("relay after both were sent")

	// The narrower race: the lower seq commits while publish runs, between
	// the relay reading the outbox and marking what it sent. Marking must
	// not sweep it up (as "seq <= the highest sent" would).
	raw2, err := s.Pool().Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = raw2.Rollback(context.WithoutCancel(ctx)) }()
	if _, err := raw2.Exec(ctx, `INSERT INTO outbox (event_id, subject, header, data)
		VALUES ('evt-early-2', 's', '{}', '\x7b7d'::bytea)`); err != nil {
		t.Fatal(err)
	}
	late2 := late
	late2.EventID = "evt-late-2"
	if err := s.InTx(ctx, func(ctx context.Context, tx store.Tx) error { return tx.AppendOutbox(ctx, late2) }); err != nil {
		t.Fatal(err)
	}
	var handed []string
	n, err := s.RelayOutbox(ctx, 10, func(ctx context.Context, msgs []store.OutboxMessage) (int, error) {
		for _, m := range msgs {
			handed = append(handed, m.EventID)
		}
		if err := raw2.Commit(ctx); err != nil {
			return 0, err
		}
		return len(msgs), nil
	})
	if n != 1 || err != nil || !slices.Equal(handed, []string{"evt-late-2"}) {
		t.Errorf("relay during which evt-early-2 commits: got (%d, %v) handing out %v, want (1, nil) handing out [evt-late-2]",
			n, err, handed)
	}
	relayOnce("relay after evt-early-2 committed mid-relay", "evt-early-2")
}

// PruneOutbox respects the age to the row: sent_at is backdated directly.
func TestPruneOutboxAge(t *testing.T) {
	s, _ := testenv.Store(t)
	ctx := t.Context()
	var msgs []store.OutboxMessage
	for _, id := range []string{"sent-2h", "sent-10m", "sent-now", "unsent-old"} {
		msgs = append(msgs, store.OutboxMessage{EventID: id, Subject: "s", Header: map[string][]string{}, Data: []byte("x")})
	}
	if err := s.InTx(ctx, func(ctx context.Context, tx store.Tx) error { return tx.AppendOutbox(ctx, msgs...) }); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Pool().Exec(ctx, `UPDATE outbox SET sent_at = CASE event_id
			WHEN 'sent-2h' THEN now() - interval '2 hours'
			WHEN 'sent-10m' THEN now() - interval '10 minutes'
			WHEN 'sent-now' THEN now() END,
		created_at = now() - interval '3 hours'`); err != nil {
		t.Fatal(err)
	}
	remaining := func() []string {
		rows, err := s.Pool().Query(ctx, `SELECT event_id FROM outbox ORDER BY seq`)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var ids []string
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				t.Fatal(err)
			}
			ids = append(ids, id)
		}
		return ids
	}
	for _, step := range []struct {
		age     time.Duration
		deleted int64
		left    []string
	}{
		{3 * time.Hour, 0, []string{"sent-2h", "sent-10m", "sent-now", "unsent-old"}},
		{time.Hour, 1, []string{"sent-10m", "sent-now", "unsent-old"}},
		{5 * time.Minute, 1, []string{"sent-now", "unsent-old"}},
		{5 * time.Minute, 0, []string{"sent-now", "unsent-old"}},
	} {
		n, err := s.PruneOutbox(ctx, step.age)
		if err != nil || n != step.deleted {
			t.Errorf("PruneOutbox(%v): got (%d, %v), want (%d, nil)", step.age, n, err, step.deleted)
		}
		if got := remaining(); !slices.Equal(got, step.left) {
			t.Errorf("after PruneOutbox(%v): got %v left, want %v", step.age, got, step.left)
		}
	}
}

// A connection the network drops (a Postgres restart, a failover, a cut
// link) is a transient failure: the services retry it rather than stop.
func TestDroppedConnectionIsUnavailable(t *testing.T) {
	_, dbURL := testenv.Store(t)
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	proxy := testenv.NewProxy(t, u.Host)
	u.Host = proxy.Addr()
	s, err := postgres.Open(t.Context(), u.String(), postgres.Options{MaxConns: 2})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	if err := s.Ping(t.Context()); err != nil {
		t.Fatalf("Ping through the proxy: %v", err)
	}
	proxy.Cut() // drops the pooled connection, refuses new ones
	for _, c := range []struct {
		name string
		op   func() error
	}{
		{"Ping", func() error { return s.Ping(t.Context()) }},
		{"InTx", func() error {
			return s.InTx(t.Context(), func(ctx context.Context, tx store.Tx) error { _, err := tx.Organization(ctx, "x"); return err })
		}},
	} {
		if err := c.op(); !errors.Is(err, store.ErrUnavailable) {
			t.Errorf("%s on a dropped connection: got %v, want ErrUnavailable", c.name, err)
		}
	}
}
