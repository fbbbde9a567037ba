package sqlite_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/jitprov/jitprov/internal/store"
	"github.com/jitprov/jitprov/internal/store/sqlite"
	"github.com/jitprov/jitprov/internal/store/storetest"
)

// open opens the database file at path, closed when t ends.
func open(t *testing.T, path string) *sqlite.Store {
	t.Helper()
	s, err := sqlite.Open(t.Context(), path, sqlite.WithLogger(slog.New(slog.NewTextHandler(t.Output(), nil))))
	if err != nil {
		t.Fatalf("Open(%s): %v", path, err)
	}
	t.Cleanup(s.Close)
	return s
}

// newStore opens a fresh database file in a directory of t's own.
func newStore(t *testing.T) *sqlite.Store {
	return open(t, filepath.Join(t.TempDir(), "jitprov.db"))
}

func TestConformance(t *testing.T) {
	storetest.RunTests(t, func(t *testing.T) store.Store { return newStore(t) })
}

// rawDB opens the file with the bare driver, for what the store does not
// expose: old or foreign schemas, backdated rows.
func rawDB(t *testing.T, path string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

func testOrg(id string, seats int) store.Organization {
	return store.Organization{ID: id, Name: "Organisation " + id, MaxSeats: seats,
		Roles: []string{"viewer", "editor", "admin"}, DefaultRole: "viewer", JITRoleCeiling: "editor",
		UpdatePolicy: store.PreferIdP, LinkByEmail: store.LinkVerifiedDomains,
		VerifiedDomains: []string{id + ".example"}, SeatWarningPercent: 80}
}

func testUser(orgID, externalID string) store.User {
	return store.User{ID: uuid.NewString(), OrganizationID: orgID,
		Email: externalID + "@" + orgID + ".example", EmailVerified: true, Role: "viewer",
		Status: store.StatusActive, CreatedBy: store.CreatedByJIT}
}

func seedOrg(t *testing.T, s store.Store, id string, seats int) {
	t.Helper()
	conns := []store.Connection{{OrganizationID: id, ID: "okta", Protocol: "saml", Settings: []byte(`{"a": 1}`)}}
	if err := s.ApplyOrganizations(t.Context(), []store.Organization{testOrg(id, seats)}, conns); err != nil {
		t.Fatalf("ApplyOrganizations: %v", err)
	}
}

// firstLogins races people first logins against seats (each TakeSeat then
// CreateUser in its own transaction) across the given stores, and checks
// that exactly seats got in.
func firstLogins(t *testing.T, stores []store.Store, people, seats int) time.Duration {
	t.Helper()
	s := stores[0]
	seedOrg(t, s, "acme", seats)
	errs := make([]error, people)
	start := make(chan struct{})
	done := make(chan struct{}, people)
	for i := range people {
		go func() {
			defer func() { done <- struct{}{} }()
			<-start
			u := testUser("acme", fmt.Sprintf("person-%04d", i))
			errs[i] = stores[i%len(stores)].InTx(t.Context(), func(ctx context.Context, tx store.Tx) error {
				if _, err := tx.TakeSeat(ctx, "acme"); err != nil {
					return err
				}
				_, err := tx.CreateUser(ctx, u)
				return err
			})
		}()
	}
	began := time.Now()
	close(start)
	for range people {
		<-done
	}
	took := time.Since(began)
	admitted := 0
	for i, err := range errs {
		switch {
		case err == nil:
			admitted++
		case errors.Is(err, store.ErrSeatsExhausted):
		default:
			t.Errorf("login %d: got error %v, want nil or ErrSeatsExhausted", i, err)
		}
	}
	if admitted != seats {
		t.Errorf("got %d of %d logins admitted, want exactly %d", admitted, people, seats)
	}
	err := s.InTx(t.Context(), func(ctx context.Context, tx store.Tx) error {
		o, err := tx.Organization(ctx, "acme")
		if err == nil && o.SeatsUsed != seats {
			t.Errorf("seats used: got %d, want %d", o.SeatsUsed, seats)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return took
}

// Two stores on one file stand for two processes: their writers contend in
// SQLite's locks (BEGIN IMMEDIATE and the busy timeout), not in one pool,
// and still admit exactly the seats.
func TestTwoStoresOnOneFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "jitprov.db")
	a, b := open(t, path), open(t, path)
	took := firstLogins(t, []store.Store{a, b}, 200, 20)
	t.Logf("200 first logins against 20 seats through two stores took %v", took)
}

func TestReopenKeepsData(t *testing.T) {
	// The directory is created; its name holds what a URI would misread.
	path := filepath.Join(t.TempDir(), "my data ?#%20", "jitprov.db")
	ctx := t.Context()
	s, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	seedOrg(t, s, "acme", 5)
	u := testUser("acme", "ada")
	err = s.InTx(ctx, func(ctx context.Context, tx store.Tx) error {
		if _, err := tx.TakeSeat(ctx, "acme"); err != nil {
			return err
		}
		if _, err := tx.CreateUser(ctx, u); err != nil {
			return err
		}
		if _, err := tx.LinkIdentity(ctx, store.Identity{OrganizationID: "acme", ConnectionID: "okta", ExternalID: "ada",
			UserID: u.ID, LinkedBy: store.LinkedByCreated}); err != nil {
			return err
		}
		return tx.AppendOutbox(ctx, store.OutboxMessage{EventID: "evt-1", Subject: "s", Data: []byte("x")})
	})
	if err != nil {
		t.Fatalf("InTx: %v", err)
	}
	s.Close()

	for _, p := range []string{filepath.Dir(path), path} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if want := map[bool]os.FileMode{true: 0o700, false: 0o600}[fi.IsDir()]; fi.Mode().Perm() != want {
			t.Errorf("%s: got mode %v, want %v", p, fi.Mode().Perm(), want)
		}
	}

	s = open(t, path)
	all, err := sqlite.Migrations()
	if err != nil {
		t.Fatal(err)
	}
	if v, err := s.SchemaVersion(ctx); v != len(all) || err != nil {
		t.Errorf("SchemaVersion after reopening: got (%d, %v), want (%d, nil)", v, err, len(all))
	}
	err = s.InTx(ctx, func(ctx context.Context, tx store.Tx) error {
		o, err := tx.Organization(ctx, "acme")
		if err != nil {
			return err
		}
		if o.SeatsUsed != 1 || o.MaxSeats != 5 {
			t.Errorf("organisation after reopening: got %d/%d seats, want 1/5", o.SeatsUsed, o.MaxSeats)
		}
		got, err := tx.UserByIdentity(ctx, "acme", "okta", "ada")
		if err != nil {
			return err
		}
		if got.ID != u.ID || got.Email != u.Email || got.CreatedAt.IsZero() || got.CreatedAt.Location() != time.UTC {
			t.Errorf("user after reopening: got %+v, want %s <%s> created at a UTC time", got, u.ID, u.Email)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("read after reopening: %v", err)
	}
	n, err := s.RelayOutbox(ctx, 10, func(_ context.Context, msgs []store.OutboxMessage) (int, error) {
		if len(msgs) != 1 || msgs[0].EventID != "evt-1" {
			t.Errorf("outbox after reopening: got %+v, want evt-1", msgs)
		}
		return len(msgs), nil
	})
	if n != 1 || err != nil {
		t.Errorf("RelayOutbox after reopening: got (%d, %v), want (1, nil)", n, err)
	}
}

func TestNewerSchemaRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "jitprov.db")
	s, err := sqlite.Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	all, err := sqlite.Migrations()
	if err != nil {
		t.Fatal(err)
	}
	future := len(all) + 1
	db := rawDB(t, path)
	if _, err := db.ExecContext(t.Context(), `INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)`,
		future, fmt.Sprintf("%04d_from_the_future.sql", future), "2099-01-01T00:00:00.000000Z"); err != nil {
		t.Fatal(err)
	}
	_ = db.Close()

	s, err = sqlite.Open(t.Context(), path)
	if err == nil {
		s.Close()
		t.Fatalf("Open of a database at schema version %d with a binary knowing %d: got nil error", future, len(all))
	}
	for _, want := range []string{path, "upgrade", fmt.Sprint(future), fmt.Sprint(len(all))} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Open of a newer schema: got error %q, want it to mention %q", err, want)
		}
	}
	if errors.Is(err, store.ErrUnavailable) {
		t.Errorf("Open of a newer schema: got %q matching ErrUnavailable; it will not get better by waiting", err)
	}
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	notDir := filepath.Join(dir, "plain-file")
	if err := os.WriteFile(notDir, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	garbage := filepath.Join(dir, "garbage.db")
	if err := os.WriteFile(garbage, []byte(strings.Repeat("not a database ", 512)), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, path  string
		mention     []string
		unavailable bool
	}{
		{"ParentIsAFile", filepath.Join(notDir, "jitprov.db"), []string{"sqlite: open " + filepath.Join(notDir, "jitprov.db"), "not a directory"}, true},
		{"Directory", dir, []string{"sqlite: open " + dir, "directory"}, false},
		{"NotADatabase", garbage, []string{"sqlite: open " + garbage, "not a database"}, false},
		{"Empty", "", []string{"sqlite: open", "path of a database file"}, false},
		{"Memory", ":memory:", []string{"sqlite: open", "path of a database file"}, false},
	}
	if os.Geteuid() != 0 { // root writes anywhere
		ro := filepath.Join(dir, "read-only")
		if err := os.Mkdir(ro, 0o500); err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(ro, "jitprov.db")
		cases = append(cases, struct {
			name, path  string
			mention     []string
			unavailable bool
		}{"ReadOnlyDirectory", p, []string{"sqlite: open " + p, "permission denied"}, true})
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s, err := sqlite.Open(t.Context(), c.path)
			if err == nil {
				s.Close()
				t.Fatalf("Open(%q): got nil error", c.path)
			}
			t.Logf("Open(%q): %v", c.path, err)
			for _, want := range c.mention {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("Open(%q): got error %q, want it to mention %q", c.path, err, want)
				}
			}
			if got := errors.Is(err, store.ErrUnavailable); got != c.unavailable {
				t.Errorf("Open(%q): got error %q; matches ErrUnavailable: %v, want %v", c.path, err, got, c.unavailable)
			}
		})
	}
}

func TestMigrationsNumbered(t *testing.T) {
	all, err := sqlite.Migrations()
	if err != nil {
		t.Fatalf("Migrations: %v", err)
	}
	files, err := filepath.Glob("migrations/*.sql")
	if err != nil {
		t.Fatal(err)
	}
	if len(all) == 0 || len(files) != len(all) {
		t.Errorf("got %d migrations, want one per file in migrations/ (%d)", len(all), len(files))
	}
	for i, m := range all {
		if prefix := fmt.Sprintf("%04d_", i+1); m.Version != i+1 || !strings.HasPrefix(m.Name, prefix) {
			t.Errorf("migration %d: got version %d named %q, want %d named %s<name>.sql", i, m.Version, m.Name, i+1, prefix)
		}
	}
}

// Like a Postgres transaction, one whose statement failed commits nothing,
// even if fn carries on and returns nil.
func TestFailedStatementAbortsTheTransaction(t *testing.T) {
	s := newStore(t)
	seedOrg(t, s, "acme", 10)
	first := testUser("acme", "ada")
	if err := s.InTx(t.Context(), func(ctx context.Context, tx store.Tx) error {
		_, err := tx.CreateUser(ctx, first)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	err := s.InTx(t.Context(), func(ctx context.Context, tx store.Tx) error {
		if _, err := tx.TakeSeat(ctx, "acme"); err != nil {
			return err
		}
		_, err := tx.CreateUser(ctx, testUser("acme", "ada"))
		if !errors.Is(err, store.ErrConflict) {
			t.Errorf("CreateUser of a taken identity: got %v, want ErrConflict", err)
		}
		if _, err := tx.Organization(ctx, "acme"); err == nil {
			t.Errorf("Organization after a failed statement: got nil error, want the transaction aborted")
		}
		return nil // ignores the conflict
	})
	if err == nil {
		t.Errorf("InTx whose fn ignored a failed statement: got nil error, want the commit refused")
	}
	err = s.InTx(t.Context(), func(ctx context.Context, tx store.Tx) error {
		o, err := tx.Organization(ctx, "acme")
		if err == nil && o.SeatsUsed != 0 {
			t.Errorf("seats used after the aborted transaction: got %d, want 0", o.SeatsUsed)
		}
		// Not finding a row is no failure.
		if _, err := tx.UserByEmail(ctx, "acme", "nobody@acme.example"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("UserByEmail(nobody): got %v, want ErrNotFound", err)
		}
		_, err = tx.Organization(ctx, "acme")
		return err
	})
	if err != nil {
		t.Errorf("InTx after ErrNotFound: %v", err)
	}
}

// The lease of a relay that died blocks other relays until it expires.
func TestRelayLeaseExpires(t *testing.T) {
	path := filepath.Join(t.TempDir(), "jitprov.db")
	s := open(t, path)
	ctx := t.Context()
	if err := s.InTx(ctx, func(ctx context.Context, tx store.Tx) error {
		return tx.AppendOutbox(ctx, store.OutboxMessage{EventID: "evt-1", Subject: "s", Data: []byte("x")})
	}); err != nil {
		t.Fatal(err)
	}
	db := rawDB(t, path)
	relay := func() int {
		n, err := s.RelayOutbox(ctx, 10, func(_ context.Context, msgs []store.OutboxMessage) (int, error) {
			return len(msgs), nil
		})
		if err != nil {
			t.Fatalf("RelayOutbox: %v", err)
		}
		return n
	}
	for _, step := range []struct {
		expires string
		want    int
	}{
		{time.Now().Add(time.Minute).UTC().Format("2006-01-02T15:04:05.000000Z"), 0},
		{time.Now().Add(-time.Second).UTC().Format("2006-01-02T15:04:05.000000Z"), 1},
	} {
		if _, err := db.ExecContext(ctx, `UPDATE outbox_relay SET holder = 'dead-relay', expires_at = ?`, step.expires); err != nil {
			t.Fatal(err)
		}
		if got := relay(); got != step.want {
			t.Errorf("relay with a dead relay's lease expiring at %s: got %d sent, want %d", step.expires, got, step.want)
		}
	}
	var holder sql.NullString
	if err := db.QueryRowContext(ctx, `SELECT holder FROM outbox_relay`).Scan(&holder); err != nil {
		t.Fatal(err)
	}
	if holder.Valid {
		t.Errorf("after a relay round: the lease is held by %q, want it given back", holder.String)
	}
}

// PruneOutbox respects the age to the row: sent_at is backdated directly.
func TestPruneOutboxAge(t *testing.T) {
	path := filepath.Join(t.TempDir(), "jitprov.db")
	s := open(t, path)
	ctx := t.Context()
	var msgs []store.OutboxMessage
	for _, id := range []string{"sent-2h", "sent-10m", "sent-now", "unsent"} {
		msgs = append(msgs, store.OutboxMessage{EventID: id, Subject: "s", Data: []byte("x")})
	}
	if err := s.InTx(ctx, func(ctx context.Context, tx store.Tx) error { return tx.AppendOutbox(ctx, msgs...) }); err != nil {
		t.Fatal(err)
	}
	db := rawDB(t, path)
	ago := func(d time.Duration) string { return time.Now().Add(-d).UTC().Format("2006-01-02T15:04:05.000000Z") }
	for id, sent := range map[string]string{"sent-2h": ago(2 * time.Hour), "sent-10m": ago(10 * time.Minute), "sent-now": ago(0)} {
		if _, err := db.ExecContext(ctx, `UPDATE outbox SET sent_at = ? WHERE event_id = ?`, sent, id); err != nil {
			t.Fatal(err)
		}
	}
	remaining := func() []string {
		rows, err := db.QueryContext(ctx, `SELECT event_id FROM outbox ORDER BY seq`)
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
		left    string
	}{
		{3 * time.Hour, 0, "sent-2h sent-10m sent-now unsent"},
		{time.Hour, 1, "sent-10m sent-now unsent"},
		{5 * time.Minute, 1, "sent-now unsent"},
		{5 * time.Minute, 0, "sent-now unsent"},
	} {
		n, err := s.PruneOutbox(ctx, step.age)
		if err != nil || n != step.deleted {
			t.Errorf("PruneOutbox(%v): got (%d, %v), want (%d, nil)", step.age, n, err, step.deleted)
		}
		if got := strings.Join(remaining(), " "); got != step.left {
			t.Errorf("after PruneOutbox(%v): got %q left, want %q", step.age, got, step.left)
		}
	}
}

// A publish that panics gives the lease back: the next relay hands the
// messages out at once.
func TestRelayPanicGivesLeaseBack(t *testing.T) {
	s := newStore(t)
	ctx := t.Context()
	if err := s.InTx(ctx, func(ctx context.Context, tx store.Tx) error {
		return tx.AppendOutbox(ctx, store.OutboxMessage{EventID: "evt-1", Subject: "s", Data: []byte("x")})
	}); err != nil {
		t.Fatal(err)
	}
	func() {
		defer func() { _ = recover() }()
		_, _ = s.RelayOutbox(ctx, 10, func(context.Context, []store.OutboxMessage) (int, error) { panic("publish") })
	}()
	n, err := s.RelayOutbox(ctx, 10, func(_ context.Context, msgs []store.OutboxMessage) (int, error) { return len(msgs), nil })
	if n != 1 || err != nil {
		t.Errorf("relay after one whose publish panicked: got (%d, %v), want (1, nil)", n, err)
	}
}

// A writer that waits beyond the busy timeout for another process's lock
// fails with ErrUnavailable.
func TestBusyBeyondTimeoutIsUnavailable(t *testing.T) {
	path := filepath.Join(t.TempDir(), "jitprov.db")
	holder := open(t, path)
	other, err := sqlite.Open(t.Context(), path, sqlite.WithBusyTimeout(200*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(other.Close)

	locked, release := make(chan struct{}), make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- holder.InTx(t.Context(), func(context.Context, store.Tx) error {
			close(locked)
			<-release
			return nil
		})
	}()
	<-locked
	began := time.Now()
	err = other.InTx(t.Context(), func(context.Context, store.Tx) error { return nil })
	waited := time.Since(began)
	close(release)
	if err := <-done; err != nil {
		t.Fatalf("the lock holder's InTx: %v", err)
	}
	if !errors.Is(err, store.ErrUnavailable) {
		t.Errorf("InTx while another process writes, beyond the busy timeout: got %v, want ErrUnavailable", err)
	}
	if waited < 150*time.Millisecond {
		t.Errorf("InTx gave up after %v, want it to wait the busy timeout (200ms)", waited)
	}
	t.Logf("after %v: %v", waited, err)
}

// The schema refuses what the Postgres schema refuses, and the apply
// leaves nothing behind.
func TestSchemaChecks(t *testing.T) {
	s := newStore(t)
	for _, c := range []struct {
		name   string
		change func(*store.Organization, *store.Connection)
	}{
		{"IDWithUpperCase", func(o *store.Organization, c *store.Connection) { o.ID, c.OrganizationID = "Acme", "Acme" }},
		{"IDWithSlash", func(o *store.Organization, c *store.Connection) { o.ID, c.OrganizationID = "ac/me", "ac/me" }},
		{"IDStartingWithDash", func(o *store.Organization, c *store.Connection) { o.ID, c.OrganizationID = "-acme", "-acme" }},
		{"NegativeMaxSeats", func(o *store.Organization, _ *store.Connection) { o.MaxSeats = -1 }},
		{"OneRole", func(o *store.Organization, _ *store.Connection) {
			o.Roles, o.DefaultRole, o.JITRoleCeiling = []string{"viewer"}, "viewer", "viewer"
		}},
		{"DefaultRoleUnknown", func(o *store.Organization, _ *store.Connection) { o.DefaultRole = "owner" }},
		{"CeilingUnknown", func(o *store.Organization, _ *store.Connection) { o.JITRoleCeiling = "owner" }},
		{"CeilingIsAdmin", func(o *store.Organization, _ *store.Connection) { o.JITRoleCeiling = "admin" }},
		{"DefaultIsAdmin", func(o *store.Organization, _ *store.Connection) { o.DefaultRole = "admin" }},
		{"UpdatePolicyUnknown", func(o *store.Organization, _ *store.Connection) { o.UpdatePolicy = "prefer-me" }},
		{"LinkPolicyUnknown", func(o *store.Organization, _ *store.Connection) { o.LinkByEmail = "always" }},
		{"WarningAbove100", func(o *store.Organization, _ *store.Connection) { o.SeatWarningPercent = 101 }},
		{"ProtocolUnknown", func(_ *store.Organization, c *store.Connection) { c.Protocol = "ldap" }},
		{"SettingsNotJSON", func(_ *store.Organization, c *store.Connection) { c.Settings = []byte("{not json") }},
	} {
		t.Run(c.name, func(t *testing.T) {
			o := testOrg("acme", 5)
			conn := store.Connection{OrganizationID: "acme", ID: "okta", Protocol: "saml"}
			c.change(&o, &conn)
			err := s.ApplyOrganizations(t.Context(), []store.Organization{o}, []store.Connection{conn})
			if err == nil {
				t.Fatalf("ApplyOrganizations(%+v, %+v): got nil error", o, conn)
			}
			t.Logf("%v", err)
			if errors.Is(err, store.ErrConflict) || errors.Is(err, store.ErrUnavailable) {
				t.Errorf("ApplyOrganizations: got %v, want neither a conflict nor unavailability", err)
			}
			if _, err := s.OrganizationAdmins(t.Context(), o.ID); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("organisation of a refused apply: got %v, want ErrNotFound", err)
			}
		})
	}

	// An update is checked as an insert is.
	seedOrg(t, s, "acme", 5)
	bad := testOrg("acme", 5)
	bad.DefaultRole = "owner"
	if err := s.ApplyOrganizations(t.Context(), []store.Organization{bad}, nil); err == nil {
		t.Errorf("ApplyOrganizations updating the default role to one not among the roles: got nil error")
	}
}

// Emails are unique whatever their case by Unicode rules, as Postgres's
// lower() has them, not only ASCII as SQLite's lower().
func TestEmailCaseIsUnicode(t *testing.T) {
	s := newStore(t)
	seedOrg(t, s, "acme", 10)
	first := testUser("acme", "juergen")
	first.Email = "JÜRGEN.ÉTÉ@acme.example"
	second := testUser("acme", "jurgen")
	second.Email = "jürgen.été@ACME.example"
	for i, u := range []store.User{first, second} {
		err := s.InTx(t.Context(), func(ctx context.Context, tx store.Tx) error {
			_, err := tx.CreateUser(ctx, u)
			return err
		})
		if want := map[int]error{0: nil, 1: store.ErrConflict}[i]; !errors.Is(err, want) {
			t.Errorf("CreateUser(%s): got %v, want %v", u.Email, err, want)
		}
	}
	err := s.InTx(t.Context(), func(ctx context.Context, tx store.Tx) error {
		got, err := tx.UserByEmail(ctx, "acme", "Jürgen.Été@acme.example")
		if err == nil && (got.ID != first.ID || got.Email != first.Email) {
			t.Errorf("UserByEmail: got %s <%s>, want %s <%s>", got.ID, got.Email, first.ID, first.Email)
		}
		return err
	})
	if err != nil {
		t.Errorf("UserByEmail in another case: %v", err)
	}
}

// A database written by an earlier jitprov (testdata/migratest/0001.sql, in
// schema version 1) keeps every user and identity through the later
// migrations, which rebuild the users table with foreign keys off.
func TestMigrationsKeepData(t *testing.T) {
	path := filepath.Join(t.TempDir(), "jitprov.db")
	all, err := sqlite.Migrations()
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join("testdata", "migratest", "0001.sql"))
	if err != nil {
		t.Fatal(err)
	}
	db := rawDB(t, path)
	for _, stmt := range []string{
		`PRAGMA foreign_keys = ON`,
		all[0].SQL,
		`CREATE TABLE schema_migrations (version INTEGER NOT NULL PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL) STRICT`,
		`INSERT INTO schema_migrations VALUES (1, '` + all[0].Name + `', '2026-01-01T00:00:00.000000Z')`,
		string(data),
	} {
		if _, err := db.ExecContext(t.Context(), stmt); err != nil {
			t.Fatalf("write a version 1 database: %v", err)
		}
	}
	_ = db.Close()

	s := open(t, path)
	if v, err := s.SchemaVersion(t.Context()); v != len(all) || err != nil {
		t.Fatalf("SchemaVersion after migrating: got (%d, %v), want (%d, nil)", v, err, len(all))
	}
	const ada, bob, carol = "6f0d1a52-8f4e-4c55-9a57-3c1f0e2b7d10", "9a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d", "c0ffee00-0000-4000-8000-000000000001"
	day := func(d int) time.Time { return time.Date(2026, 1, d, 0, 0, 0, 0, time.UTC) }
	err = s.InTx(t.Context(), func(ctx context.Context, tx store.Tx) error {
		for _, c := range []struct {
			ext, user, linkedBy string
			first, last         time.Time
		}{
			{"ada@idp", ada, store.LinkedByCreated, day(2), day(4)},
			{"bob@idp", bob, store.LinkedByEmail, day(2), day(2)},
		} {
			u, err := tx.UserByIdentity(ctx, "migratest", "okta", c.ext)
			if err != nil {
				return err
			}
			ids, err := tx.Identities(ctx, u.ID)
			if err != nil {
				return err
			}
			if u.ID != c.user || len(ids) != 1 || ids[0].LinkedBy != c.linkedBy || !ids[0].FirstSeenAt.Equal(c.first) || !ids[0].LastSeenAt.Equal(c.last) {
				t.Errorf("%s after migrating: user %s, identities %+v; want user %s linked by %s, seen %s to %s", c.ext, u.ID, ids, c.user, c.linkedBy, c.first, c.last)
			}
		}
		u, err := tx.UserByEmail(ctx, "migratest", "ADA@migratest.example")
		if err != nil {
			return err
		}
		if u.ID != ada || u.GivenName != "Ada" || u.Attributes["department"][0] != "R&D" || !u.LastLoginAt.Equal(day(4)) || u.Groups[0] != "engineering" {
			t.Errorf("Ada after migrating: got %+v", u)
		}
		// 0008: nobody is suspended for inactivity nor managed by SCIM.
		if u.SuspendedReason != "" || u.SCIM.Managed {
			t.Errorf("Ada after 0008: reason %q, SCIM %v; want none, false", u.SuspendedReason, u.SCIM.Managed)
		}
		c, err := tx.UserByEmail(ctx, "migratest", "carol@migratest.example")
		if err != nil {
			return err
		}
		if ids, err := tx.Identities(ctx, carol); err != nil || len(ids) != 0 || c.CreatedBy != store.CreatedByApp {
			t.Errorf("Carol after migrating: %+v, identities %v (%v); want created by the app, no identity", c, ids, err)
		}
		if _, err := tx.PendingRoleReview(ctx, ada, "editor"); err != nil {
			return err
		}
		if o, err := tx.Organization(ctx, "migratest"); err != nil || o.SeatsUsed != 2 || o.LandingURL != "" || o.InactiveAfter != 0 || len(o.FieldOwners) != 0 {
			t.Errorf("organisation after migrating: %+v, %v", o, err)
		}
		if d, err := tx.Decision(ctx, "migratest-login-1"); err != nil || d.UserID != ada {
			t.Errorf("decision after migrating: %+v, %v", d, err)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("read the migrated data: %v", err)
	}
	// Foreign keys are back on for the writer: an identity of an unknown
	// connection is refused.
	err = s.InTx(t.Context(), func(ctx context.Context, tx store.Tx) error {
		_, err := tx.LinkIdentity(ctx, store.Identity{OrganizationID: "migratest", ConnectionID: "no-such-connection",
			ExternalID: "x", UserID: carol, LinkedBy: store.LinkedByAdmin})
		return err
	})
	if !errors.Is(err, store.ErrNotFound) {
		t.Errorf("LinkIdentity of an unknown connection after migrating: got %v, want ErrNotFound (foreign keys on)", err)
	}
}

// Migration 0007 gives every existing user the source of their role: a
// role an admin granted (testdata/migratest/0006.sql, written in schema
// version 6) is the admin's, so that no upgrade lets a login take it away.
func TestRoleSourceMigration(t *testing.T) {
	path := filepath.Join(t.TempDir(), "jitprov.db")
	all, err := sqlite.Migrations()
	if err != nil {
		t.Fatal(err)
	}
	const version = 6
	data, err := os.ReadFile(filepath.Join("testdata", "migratest", fmt.Sprintf("%04d.sql", version)))
	if err != nil {
		t.Fatal(err)
	}
	db := rawDB(t, path)
	db.SetMaxOpenConns(1) // one connection: its foreign keys stay off
	stmts := []string{`PRAGMA foreign_keys = OFF`,
		`CREATE TABLE schema_migrations (version INTEGER NOT NULL PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL) STRICT`}
	for _, m := range all[:version] {
		stmts = append(stmts, m.SQL, fmt.Sprintf(`INSERT INTO schema_migrations VALUES (%d, '%s', '2026-01-01T00:00:00.000000Z')`, m.Version, m.Name))
	}
	for _, stmt := range append(stmts, string(data)) {
		if _, err := db.ExecContext(t.Context(), stmt); err != nil {
			t.Fatalf("write a version %d database: %v", version, err)
		}
	}
	_ = db.Close()

	s := open(t, path)
	for _, c := range []struct{ id, want, why string }{
		{"00000006-0000-4000-8000-000000000000", store.RoleSourceIdP, "JIT, a pending review"},
		{"00000006-0000-4000-8000-000000000001", store.RoleSourceAdmin, "created by an admin"},
		{"00000006-0000-4000-8000-000000000002", store.RoleSourceAdmin, "created by the application"},
		{"00000006-0000-4000-8000-000000000003", store.RoleSourceAdmin, "an admin set the role"},
		{"00000006-0000-4000-8000-000000000004", store.RoleSourceIdP, "an admin set another role, a sign-in changed it since"},
		{"00000006-0000-4000-8000-000000000005", store.RoleSourceAdmin, "an approved review"},
		{"00000006-0000-4000-8000-000000000006", store.RoleSourceIdP, "a denied review"},
		{"00000006-0000-4000-8000-000000000007", store.RoleSourceAdmin, "above the JIT ceiling"},
		{"00000006-0000-4000-8000-000000000008", store.RoleSourceAdmin, "an initial admin"},
		{"00000006-0000-4000-8000-000000000009", store.RoleSourceIdP, "the ceiling role by JIT; another organisation's audit entry"},
	} {
		u, err := s.User(t.Context(), "migratest", c.id)
		if err != nil {
			t.Fatalf("User(%s): %v", c.id, err)
		}
		if u.RoleSource != c.want {
			t.Errorf("user %s (%s): role source %q, want %q", u.Email, c.why, u.RoleSource, c.want)
		}
	}
}
