package postgres_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/jitprov/jitprov/internal/store"
	"github.com/jitprov/jitprov/internal/testenv"
)

// A new deployment's first morning: the users table was analysed while
// small and has grown since. The batch's email lookup still finds people
// by the unique (org_id, lower(email)) index, not by reading every person
// of the organisation or the whole table — which is what the generic plan
// PostgreSQL made of the prepared statement after five executions did
// (2.8 ms a lookup at 1,300 people during loadtest compare, and growing
// with them). Without the fix this test sees a sequential scan.
func TestEmailLookupUsesTheEmailIndexOnAGrowingTable(t *testing.T) {
	ctx := context.Background()
	_, dbURL := testenv.Store(t)
	s := open(t, dbURL+"&pool_max_conns=1") // one connection: one prepared statement, reused
	org := store.Organization{ID: "acme", Name: "Acme", MaxSeats: 100_000, Roles: []string{"member", "admin"},
		DefaultRole: "member", JITRoleCeiling: "member", UpdatePolicy: store.PreferIdP, LinkByEmail: store.LinkNever}
	others := org
	others.ID, others.Name = "globex", "Globex"
	if err := s.ApplyOrganizations(ctx, []store.Organization{org, others}, []store.Connection{{OrganizationID: "acme", ID: "okta", Protocol: "saml"}}); err != nil {
		t.Fatal(err)
	}
	addUsers := func(orgID string, from, n int) {
		t.Helper()
		if _, err := s.Pool().Exec(ctx, `INSERT INTO users (id, org_id, email, role, status, created_by)
			SELECT gen_random_uuid(), $1, $1 || '-' || i || '@example.com', 'member', 'active', 'jit'
			FROM generate_series($2::int, $3::int) AS i`, orgID, from, from+n-1); err != nil {
			t.Fatal(err)
		}
	}
	addUsers("acme", 0, 25)
	addUsers("globex", 0, 25)
	if _, err := s.Pool().Exec(ctx, `ANALYZE users`); err != nil {
		t.Fatal(err)
	}
	scans := func() (email, other int64) {
		t.Helper()
		// This connection's counters reach the statistics when it goes
		// idle after the flush is asked for; the snapshot is read fresh.
		if _, err := s.Pool().Exec(ctx, `SELECT pg_stat_force_next_flush()`); err != nil {
			t.Fatal(err)
		}
		err := s.Pool().QueryRow(ctx, `SELECT pg_stat_clear_snapshot() IS NULL,
			coalesce(sum(idx_scan) FILTER (WHERE indexrelname = 'users_email_key'), 0),
			coalesce(sum(idx_scan) FILTER (WHERE indexrelname <> 'users_email_key' AND indexrelname <> 'users_pkey'), 0)
			FROM pg_stat_user_indexes WHERE relname = 'users'`).Scan(new(bool), &email, &other)
		if err != nil {
			t.Fatal(err)
		}
		return email, other
	}
	lookup := func(i int) {
		t.Helper()
		err := s.InTx(ctx, func(ctx context.Context, tx store.Tx) error {
			g, err := tx.LookupLogins(ctx, "acme", false, []store.LoginKey{
				{LoginID: fmt.Sprintf("l%d", i), ConnectionID: "okta", ExternalID: fmt.Sprintf("e%d", i), Email: fmt.Sprintf("ACME-%d@example.com", i%25)},
				{LoginID: fmt.Sprintf("m%d", i), ConnectionID: "okta", ExternalID: fmt.Sprintf("f%d", i), Email: "nobody@example.com"},
			})
			if err == nil && g.Logins[0].EmailUserID == "" {
				err = fmt.Errorf("lookup %d did not find acme-%d@example.com", i, i%25)
			}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	// The statement is prepared, and planned, while the table is small:
	// more than five executions, after which PostgreSQL may keep a
	// generic plan for the connection's life (until the next ANALYZE).
	for i := range 8 {
		lookup(i)
	}
	addUsers("acme", 25, 5000) // since the last ANALYZE
	email0, other0 := scans()
	const lookups = 8
	for i := range lookups {
		lookup(i)
	}
	email1, other1 := scans()
	if email1-email0 < lookups || other1 != other0 {
		t.Errorf("%d lookups scanned users_email_key %d times and the organisation's other indexes %d times; want every lookup by email "+
			"(a lookup by neither read the whole table)",
			lookups, email1-email0, other1-other0)
	}
}
