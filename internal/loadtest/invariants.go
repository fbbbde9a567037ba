package loadtest

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// Invariants checked against the database after a run.
type Invariants struct {
	// RunUsers are the users with an identity of this run; CreatedAnswers
	// the first logins the edge answered with a session or the waiting
	// page (each a new person): they must be equal.
	RunUsers       int  `json:"run_users"`
	CreatedAnswers int  `json:"created_answers"`
	UsersOK        bool `json:"users_ok"`
	// Seats of every load-test organisation: seats_used = active users.
	Seats   []OrgSeats `json:"seats"`
	SeatsOK bool       `json:"seats_ok"`
}

// OrgSeats is one organisation's seat count and active users.
type OrgSeats struct {
	Org         string `json:"org"`
	SeatsUsed   int    `json:"seats_used"`
	ActiveUsers int    `json:"active_users"`
}

// settle is how long the check waits for logins still being decided (a
// waiting page's) to reach the database.
const settle = 15 * time.Second

func checkInvariants(ctx context.Context, dbURL string, orgs []string, prefix string, created int) (*Invariants, error) {
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		return nil, fmt.Errorf("invariants: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	inv := &Invariants{CreatedAnswers: created}
	like := strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(prefix) + "%"
	deadline := time.Now().Add(settle)
	for {
		if err := conn.QueryRow(ctx, `SELECT count(DISTINCT user_id) FROM identities
			WHERE org_id = ANY($1) AND external_id LIKE $2`, orgs, like).Scan(&inv.RunUsers); err != nil {
			return inv, fmt.Errorf("invariants: count users: %w", err)
		}
		if inv.RunUsers >= created || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	inv.UsersOK = inv.RunUsers == created
	rows, err := conn.Query(ctx, `SELECT o.id, o.seats_used,
			(SELECT count(*) FROM users u WHERE u.org_id = o.id AND u.status = 'active')
		FROM organizations o WHERE o.id = ANY($1) ORDER BY o.id`, orgs)
	if err != nil {
		return inv, fmt.Errorf("invariants: seats: %w", err)
	}
	seats, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (OrgSeats, error) {
		var s OrgSeats
		return s, r.Scan(&s.Org, &s.SeatsUsed, &s.ActiveUsers)
	})
	if err != nil {
		return inv, fmt.Errorf("invariants: seats: %w", err)
	}
	inv.Seats, inv.SeatsOK = seats, len(seats) == len(orgs)
	for _, s := range seats {
		if s.SeatsUsed != s.ActiveUsers {
			inv.SeatsOK = false
		}
	}
	var problems []string
	if !inv.UsersOK {
		problems = append(problems, fmt.Sprintf("%d users of this run, want %d (first logins answered with a session or the waiting page)", inv.RunUsers, created))
	}
	if !inv.SeatsOK {
		problems = append(problems, fmt.Sprintf("seats_used differs from the active users (or an organisation is missing): %+v", seats))
	}
	if len(problems) > 0 {
		return inv, fmt.Errorf("invariants failed: %s", strings.Join(problems, "; "))
	}
	return inv, nil
}
