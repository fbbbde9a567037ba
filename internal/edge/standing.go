package edge

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/jitprov/jitprov/internal/store"
)

// DefaultSessionRecheck is how long /auth/verify trusts what it last read
// of a session's user (Config.SessionRecheck).
const DefaultSessionRecheck = 15 * time.Second

// maxStandings bounds the users whose standing is remembered; beyond it
// the memory starts afresh.
const maxStandings = 100_000

// standings remembers, per user, their status and role as the store last
// said, so that /auth/verify — asked on every request of every application
// behind the edge — refuses a session whose user was suspended,
// deprovisioned or demoted since it was issued, within a bounded time,
// without a database read per request.
type standings struct {
	users Decisions
	ttl   time.Duration
	now   func() time.Time

	mu   sync.Mutex
	seen map[string]standing // org + "\x00" + user id
}

type standing struct {
	status, role, email string
	at                  time.Time
}

func newStandings(users Decisions, ttl time.Duration) *standings {
	return &standings{users: users, ttl: ttl, now: time.Now, seen: map[string]standing{}}
}

// of returns the user's standing, read from the store when the one
// remembered is older than the ttl, or older than notBefore (the session's
// issue: a session issued since was decided on a fresher reading, and a
// standing read before it would take back, say, the role it carries).
// ok is false when the store cannot say
// (unreachable): the caller then trusts the session, rather than lock
// everyone out of every application while the database is down.
func (s *standings) of(ctx context.Context, org, userID string, notBefore time.Time) (st standing, ok bool, err error) {
	key := org + "\x00" + userID
	now := s.now()
	s.mu.Lock()
	st, found := s.seen[key]
	s.mu.Unlock()
	// A second of margin: a session's times may be kept to the second.
	if found && now.Sub(st.at) < s.ttl && !st.at.Before(notBefore.Add(time.Second)) {
		return st, true, nil
	}
	u, err := s.users.User(ctx, org, userID)
	switch {
	case errors.Is(err, store.ErrNotFound):
		st = standing{status: store.StatusDeprovisioned, at: now} // no such user any more
	case err != nil:
		return standing{}, false, err
	default:
		st = standing{status: u.Status, role: u.Role, email: u.Email, at: now}
	}
	s.mu.Lock()
	if len(s.seen) >= maxStandings {
		s.seen = map[string]standing{}
	}
	s.seen[key] = st
	s.mu.Unlock()
	return st, true, nil
}
