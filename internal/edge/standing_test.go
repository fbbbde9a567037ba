package edge

import (
	"context"
	"testing"
	"time"

	"github.com/jitprov/jitprov/internal/store"
)

// countingUsers is the store as standings reads it: a user whose standing
// the test sets, and the number of reads.
type countingUsers struct {
	Decisions
	user  store.User
	reads int
}

func (c *countingUsers) User(context.Context, string, string) (store.User, error) {
	c.reads++
	return c.user, nil
}

// A session issued with the provisioner's fresh answer is not checked
// against the store again on its first request; anything else is, as
// before: a standing older than the session, one past the recheck
// interval, one read from the store before the session was issued.
func TestStandingIssuedWithTheSession(t *testing.T) {
	t0 := time.Date(2026, 12, 7, 9, 0, 0, 400_000_000, time.UTC)
	for _, tt := range []struct {
		name string
		// issueAt: when the provisioner's answer was remembered (zero:
		// never); sessionAt: the session's IssuedAt as its cookie
		// carries it (to the second); checkAt: the request.
		issueAt, sessionAt, checkAt time.Time
		wantReads                   int
		wantRole                    string
	}{
		{"its own session, at once", t0, t0.Truncate(time.Second), t0.Add(30 * time.Millisecond), 0, "member"},
		{"its own session, a second on", t0, t0.Truncate(time.Second), t0.Add(time.Second), 0, "member"},
		{"past the recheck interval", t0, t0.Truncate(time.Second), t0.Add(16 * time.Second), 1, "manager"},
		{"a session issued later", t0, t0.Add(2 * time.Second).Truncate(time.Second), t0.Add(2 * time.Second), 1, "manager"},
		{"nothing remembered", time.Time{}, t0.Truncate(time.Second), t0.Add(30 * time.Millisecond), 1, "manager"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			users := &countingUsers{user: store.User{Status: store.StatusActive, Role: "manager"}}
			s := newStandings(users, DefaultSessionRecheck)
			if !tt.issueAt.IsZero() {
				s.now = func() time.Time { return tt.issueAt }
				s.issue("acme", "u1", standing{status: store.StatusActive, role: "member"})
			}
			s.now = func() time.Time { return tt.checkAt }
			st, ok, err := s.of(t.Context(), "acme", "u1", tt.sessionAt)
			if !ok || err != nil {
				t.Fatalf("of: %v, %v", ok, err)
			}
			if users.reads != tt.wantReads || st.role != tt.wantRole {
				t.Errorf("%d store reads, role %q; want %d, %q", users.reads, st.role, tt.wantReads, tt.wantRole)
			}
		})
	}
}

// A standing read from the store in the same second as a session was
// issued, but before it, is not taken for the session's own: only the
// provisioner's answer to that login is.
func TestStandingReadBeforeTheSessionIsReadAgain(t *testing.T) {
	t0 := time.Date(2026, 12, 7, 9, 0, 0, 100_000_000, time.UTC)
	users := &countingUsers{user: store.User{Status: store.StatusActive, Role: "member"}}
	s := newStandings(users, DefaultSessionRecheck)
	s.now = func() time.Time { return t0 }
	if _, _, err := s.of(t.Context(), "acme", "u1", t0.Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	users.user.Role = "manager" // then promoted, and a session issued with it
	s.now = func() time.Time { return t0.Add(500 * time.Millisecond) }
	st, _, _ := s.of(t.Context(), "acme", "u1", t0.Truncate(time.Second))
	if users.reads != 2 || st.role != "manager" {
		t.Errorf("%d store reads, role %q; want the store read again and manager", users.reads, st.role)
	}
}
