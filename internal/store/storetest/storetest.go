// Package storetest is the conformance suite every store.Store backend must
// pass, in the manner of Dex's storage/conformance: a backend's own test
// calls RunTests with a constructor for an empty store, and the suite runs
// its tiers — CRUD, constraints, transactions, seats, concurrency and the
// outbox relay — against it.
//
// The suite speaks only the store.Store and store.Tx interfaces (no SQL), so
// that the Postgres store and the embedded store are held to the same
// behaviour. Where a check needs state the interface does not expose
// directly (seats used, for example), it reads it through tx.Organization.
package storetest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"maps"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/jitprov/jitprov/internal/store"
)

// RunTests runs the whole conformance suite. newStore must return a ready
// (migrated), empty store for each call and arrange its own cleanup (for
// example with t.Cleanup); every subtest gets a store of its own.
func RunTests(t *testing.T, newStore func(t *testing.T) store.Store) {
	for _, tier := range []struct {
		name  string
		tests []subTest
	}{
		{"CRUD", crudTests},
		{"Constraints", constraintTests},
		{"Transactions", transactionTests},
		{"Seats", seatTests},
		{"Concurrency", concurrencyTests},
		{"Outbox", outboxTests},
		{"Admin", adminTests},
		{"Batch", batchTests},
		{"Inactive", inactiveTests},
		{"Directory", directoryTests},
		{"Conflicts", conflictTests},
	} {
		t.Run(tier.name, func(t *testing.T) {
			for _, st := range tier.tests {
				t.Run(st.name, func(t *testing.T) {
					st.run(t, newStore(t))
				})
			}
		})
	}
}

// errRollback is what tests return from fn to roll a transaction back.
var errRollback = errors.New("storetest: roll back")

type subTest struct {
	name string
	run  func(t *testing.T, s store.Store)
}

// Fixture identifiers. Organisation and connection ids satisfy the
// strictest backend rules ([a-z0-9][a-z0-9_-]*).
const (
	orgA  = "acme"
	orgB  = "globex"
	connS = "okta"   // SAML
	connO = "google" // OIDC
)

// org returns a valid organisation: roles viewer < editor < admin, JIT
// ceiling editor.
func org(id string, maxSeats int) store.Organization {
	return store.Organization{
		ID:              id,
		Name:            "Organisation " + id,
		MaxSeats:        maxSeats,
		Roles:           []string{"viewer", "editor", "admin"},
		DefaultRole:     "viewer",
		JITRoleCeiling:  "editor",
		UpdatePolicy:    store.PreferIdP,
		LinkByEmail:     store.LinkVerifiedDomains,
		VerifiedDomains: []string{id + ".example", "mail." + id + ".example"},

		SeatWarningPercent: 80,
		LandingURL:         "https://app." + id + ".example/home",
		InitialAdmins:      []string{"founder@" + id + ".example"},
		NewPeople:          store.NewPeopleHold,
		WhenFull:           store.WhenFullHold,
	}
}

func connections(orgID string) []store.Connection {
	return []store.Connection{
		{OrganizationID: orgID, ID: connS, Protocol: "saml",
			Settings: []byte(`{"metadata_url": "https://idp.` + orgID + `.example/metadata", "allow_idp_initiated": false}`)},
		{OrganizationID: orgID, ID: connO, Protocol: "oidc", DisplayName: "Google Workspace", Replaces: connS,
			Settings: []byte(`{"issuer": "https://accounts.` + orgID + `.example", "client_id": "jitprov"}`)},
	}
}

// seed applies orgA and orgB, each with maxSeats seats and both
// connections.
func seed(t *testing.T, s store.Store, maxSeats int) {
	t.Helper()
	conns := append(connections(orgA), connections(orgB)...)
	if err := s.ApplyOrganizations(t.Context(), []store.Organization{org(orgA, maxSeats), org(orgB, maxSeats)}, conns); err != nil {
		t.Fatalf("ApplyOrganizations: %v", err)
	}
}

// person is a user to create and its first identity (none when conn is
// "").
type person struct {
	store.User
	conn, ext string
}

// user returns a valid JIT user with a fresh id, to be created with the
// identity (connID, externalID).
func user(orgID, connID, externalID, email string) person {
	return person{conn: connID, ext: externalID, User: store.User{
		ID:             uuid.NewString(),
		OrganizationID: orgID,
		Email:          email,
		EmailVerified:  true,
		GivenName:      "Ada",
		FamilyName:     "Lovelace",
		DisplayName:    "Ada Lovelace",
		Groups:         []string{"engineering", "ops"},
		Role:           "viewer",
		Status:         store.StatusActive,
		Attributes:     map[string][]string{"department": {"R&D"}, "cost_center": {"42", "43"}},
		CreatedBy:      store.CreatedByJIT,
	}}
}

// create creates p's user and links its identity, as a first login does.
func create(ctx context.Context, tx store.Tx, p person) (store.User, error) {
	u, err := tx.CreateUser(ctx, p.User)
	if err != nil || p.conn == "" {
		return u, err
	}
	_, err = tx.LinkIdentity(ctx, store.Identity{OrganizationID: p.OrganizationID, ConnectionID: p.conn,
		ExternalID: p.ext, UserID: u.ID, LinkedBy: store.LinkedByCreated})
	return u, err
}

// inTx runs fn in a transaction and fails the test if it does not commit.
func inTx(t *testing.T, s store.Store, fn func(ctx context.Context, tx store.Tx) error) {
	t.Helper()
	if err := s.InTx(t.Context(), fn); err != nil {
		t.Fatalf("InTx: %v", err)
	}
}

// read runs fn in its own transaction and returns its result.
func read[T any](t *testing.T, s store.Store, fn func(ctx context.Context, tx store.Tx) (T, error)) (T, error) {
	t.Helper()
	var out T
	err := s.InTx(t.Context(), func(ctx context.Context, tx store.Tx) error {
		var err error
		out, err = fn(ctx, tx)
		return err
	})
	return out, err
}

func getOrg(t *testing.T, s store.Store, id string) store.Organization {
	t.Helper()
	o, err := read(t, s, func(ctx context.Context, tx store.Tx) (store.Organization, error) {
		return tx.Organization(ctx, id)
	})
	if err != nil {
		t.Fatalf("Organization(%q): %v", id, err)
	}
	return o
}

func createUser(t *testing.T, s store.Store, u person) store.User {
	t.Helper()
	got, err := read(t, s, func(ctx context.Context, tx store.Tx) (store.User, error) {
		return create(ctx, tx, u)
	})
	if err != nil {
		t.Fatalf("CreateUser(%s/%s/%s): %v", u.OrganizationID, u.conn, u.ext, err)
	}
	return got
}

// seatsUsed reads the organisation's seat counter through the interface.
func seatsUsed(t *testing.T, s store.Store, orgID string) int {
	t.Helper()
	return getOrg(t, s, orgID).SeatsUsed
}

// wantErr fails unless errors.Is(err, want).
func wantErr(t *testing.T, what string, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Errorf("%s: got error %v, want one matching %v", what, err, want)
	}
}

// normOrg makes nil and empty slices compare equal.
func normOrg(o store.Organization) store.Organization {
	o.Roles = nonNil(o.Roles)
	o.VerifiedDomains = nonNil(o.VerifiedDomains)
	o.InitialAdmins = nonNil(o.InitialAdmins)
	o.NewPeople, o.WhenFull = o.HoldSettings()
	return o
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func nonNilMap(m map[string][]string) map[string][]string {
	if m == nil {
		return map[string][]string{}
	}
	return m
}

// checkUser compares the stored fields of got with want, ignoring the
// timestamps the store assigns.
func checkUser(t *testing.T, what string, got, want store.User) {
	t.Helper()
	type cmp struct {
		ID, Org, Email         string
		EmailVerified          bool
		Given, Family, Display string
		Groups                 []string
		Role, Status           string
		Attributes             map[string][]string
		CreatedBy              string
	}
	c := func(u store.User) cmp {
		return cmp{u.ID, u.OrganizationID, u.Email, u.EmailVerified, u.GivenName,
			u.FamilyName, u.DisplayName, nonNil(u.Groups), u.Role, u.Status, nonNilMap(u.Attributes), u.CreatedBy}
	}
	if g, w := c(got), c(want); !reflect.DeepEqual(g, w) {
		t.Errorf("%s: got user %+v, want %+v", what, g, w)
	}
	if got.CreatedAt.IsZero() || got.UpdatedAt.IsZero() {
		t.Errorf("%s: got CreatedAt %v, UpdatedAt %v; want both set by the store", what, got.CreatedAt, got.UpdatedAt)
	}
}

// jsonEqual reports whether a and b hold the same JSON value (backends may
// normalise whitespace and key order).
func jsonEqual(t *testing.T, a, b []byte) bool {
	t.Helper()
	var va, vb any
	if err := json.Unmarshal(a, &va); err != nil {
		t.Errorf("stored JSON %q does not parse: %v", a, err)
		return false
	}
	if err := json.Unmarshal(b, &vb); err != nil {
		t.Fatalf("fixture JSON %q does not parse: %v", b, err)
	}
	return reflect.DeepEqual(va, vb)
}

// msg returns an outbox message with a multi-valued header and binary data.
func msg(eventID string) store.OutboxMessage {
	return store.OutboxMessage{
		EventID: eventID,
		Subject: "jit.users.user.created." + orgA,
		Header: map[string][]string{
			"Nats-Msg-Id":    {eventID},
			"Ce-Specversion": {"1.0"},
			"Traceparent":    {"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"},
			"X-Multi":        {"one", "two"},
		},
		Data: append([]byte(`{"id":"`+eventID+`"}`), 0x00, 0xff, '\n'),
	}
}

func appendOutbox(t *testing.T, s store.Store, msgs ...store.OutboxMessage) {
	t.Helper()
	inTx(t, s, func(ctx context.Context, tx store.Tx) error { return tx.AppendOutbox(ctx, msgs...) })
}

// checkMessages compares what a relay handed out with what was appended,
// in order, and checks that Seq strictly increases.
func checkMessages(t *testing.T, what string, got, want []store.OutboxMessage) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s: got %d messages %v, want %d %v", what, len(got), eventIDs(got), len(want), eventIDs(want))
		return
	}
	for i := range got {
		g, w := got[i], want[i]
		if g.EventID != w.EventID || g.Subject != w.Subject || !bytes.Equal(g.Data, w.Data) ||
			!maps.EqualFunc(nonNilMap(g.Header), nonNilMap(w.Header), slices.Equal) {
			t.Errorf("%s: message %d: got %+v, want %+v", what, i, g, w)
		}
		if i > 0 && g.Seq <= got[i-1].Seq {
			t.Errorf("%s: message %d has Seq %d after Seq %d; want strictly increasing", what, i, g.Seq, got[i-1].Seq)
		}
	}
}

func eventIDs(msgs []store.OutboxMessage) []string {
	ids := make([]string, len(msgs))
	for i, m := range msgs {
		ids[i] = m.EventID
	}
	return ids
}

// relay runs one RelayOutbox round whose publish accepts everything, and
// returns what it was handed.
func relay(t *testing.T, s store.Store, limit int) []store.OutboxMessage {
	t.Helper()
	var got []store.OutboxMessage
	n, err := s.RelayOutbox(t.Context(), limit, func(_ context.Context, msgs []store.OutboxMessage) (int, error) {
		got = append(got, msgs...)
		return len(msgs), nil
	})
	if err != nil {
		t.Fatalf("RelayOutbox: %v", err)
	}
	if n != len(got) {
		t.Errorf("RelayOutbox: got %d marked sent, want %d (all it handed out)", n, len(got))
	}
	return got
}

// timestamp is a wall-clock time every backend stores exactly.
func timestamp() time.Time { return time.Now().UTC().Truncate(time.Millisecond) }
