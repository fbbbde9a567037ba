package storetest

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/jitprov/jitprov/internal/store"
)

var crudTests = []subTest{
	{"Organizations", testOrganizations},
	{"ReapplyOrganizationsKeepsSeats", testReapplyOrganizations},
	{"ApplyOrganizationsIsAtomic", testApplyOrganizationsAtomic},
	{"CreateAndGetUser", testCreateAndGetUser},
	{"UsersWithoutIdentity", testUsersWithoutIdentity},
	{"UpdateUser", testUpdateUser},
	{"RoleSource", testRoleSource},
	{"RoleReviews", testRoleReviews},
	{"Decisions", testDecisions},
	{"AppendOutbox", testAppendOutbox},
	{"RecordLogin", testRecordLogin},
	{"RecordLoginsBatch", testRecordLoginsBatch},
	{"RecordLoginsRace", testRecordLoginsRace},
	{"Identities", testIdentities},
	{"ConnectionsByDomain", testConnectionsByDomain},
	{"OrganizationAdmins", testOrganizationAdmins},
	{"Connections", testConnections},
	{"ListOrganizations", testListOrganizations},
}

// Every organisation is listed, with its seats as used.
func testListOrganizations(t *testing.T, s store.Store) {
	seed(t, s, 3)
	inTx(t, s, func(ctx context.Context, tx store.Tx) error {
		_, err := tx.TakeSeat(ctx, orgB)
		return err
	})
	got, err := s.Organizations(t.Context())
	if err != nil {
		t.Fatalf("Organizations: %v", err)
	}
	want := []store.Organization{org(orgA, 3), org(orgB, 3)}
	want[1].SeatsUsed = 1
	if len(got) != len(want) {
		t.Fatalf("Organizations: got %d, want %d", len(got), len(want))
	}
	for i := range want {
		if !reflect.DeepEqual(normOrg(got[i]), normOrg(want[i])) {
			t.Errorf("Organizations()[%d] = %+v, want %+v", i, got[i], want[i])
		}
	}
}

// Every organisation's connections are listed, by protocol when asked.
func testConnections(t *testing.T, s store.Store) {
	seed(t, s, 1)
	key := func(cs []store.Connection) []string {
		var out []string
		for _, c := range cs {
			out = append(out, c.OrganizationID+"/"+c.ID+"/"+c.Protocol+"/"+c.DisplayName+"/"+c.Replaces)
		}
		return out
	}
	for _, tc := range []struct {
		protocol string
		want     []string
	}{
		{"", []string{"acme/google/oidc/Google Workspace/okta", "acme/okta/saml//", "globex/google/oidc/Google Workspace/okta", "globex/okta/saml//"}},
		{"saml", []string{"acme/okta/saml//", "globex/okta/saml//"}},
		{"oidc", []string{"acme/google/oidc/Google Workspace/okta", "globex/google/oidc/Google Workspace/okta"}},
		{"cas", nil},
	} {
		got, err := s.Connections(t.Context(), tc.protocol)
		if err != nil {
			t.Fatalf("Connections(%q): %v", tc.protocol, err)
		}
		if !reflect.DeepEqual(key(got), tc.want) {
			t.Errorf("Connections(%q) = %v, want %v", tc.protocol, key(got), tc.want)
		}
		for _, c := range got {
			if !json.Valid(c.Settings) {
				t.Errorf("connection %s/%s settings are not JSON: %s", c.OrganizationID, c.ID, c.Settings)
			}
		}
	}
}

// The notifier writes to an organisation's admins: its active users with
// the organisation's last (most privileged) role, and nobody else's.
func testOrganizationAdmins(t *testing.T, s store.Store) {
	seed(t, s, 10)
	admin := func(u person, status string) person {
		u.Role, u.Status = "admin", status
		return u
	}
	createUser(t, s, user(orgA, connS, "ext-member", "member@acme.example"))
	createUser(t, s, admin(user(orgA, connS, "ext-zed", "Zed@acme.example"), store.StatusActive))
	createUser(t, s, admin(user(orgA, connO, "ext-amy", "amy@acme.example"), store.StatusActive))
	createUser(t, s, admin(user(orgA, connO, "ext-gone", "gone@acme.example"), store.StatusSuspended))
	createUser(t, s, admin(user(orgB, connS, "ext-other", "boss@globex.example"), store.StatusActive))

	got, err := s.OrganizationAdmins(t.Context(), orgA)
	if err != nil {
		t.Fatalf("OrganizationAdmins: %v", err)
	}
	var emails []string
	for _, u := range got {
		emails = append(emails, u.Email)
	}
	if want := []string{"amy@acme.example", "Zed@acme.example"}; !reflect.DeepEqual(emails, want) {
		t.Errorf("OrganizationAdmins(%q): got %q, want %q (active admins, by email)", orgA, emails, want)
	}

	// Each organisation lists its own; an unknown organisation is an error.
	other, err := s.OrganizationAdmins(t.Context(), orgB)
	if err != nil || len(other) != 1 || other[0].Email != "boss@globex.example" {
		t.Errorf("OrganizationAdmins(%q): got %+v, err %v; want boss@globex.example alone", orgB, other, err)
	}
	_, err = s.OrganizationAdmins(t.Context(), "initech")
	wantErr(t, "OrganizationAdmins of an unknown organisation", err, store.ErrNotFound)
}

// Home-realm discovery finds an organisation's connections by one of its
// verified domains, and nothing by any other domain.
func testConnectionsByDomain(t *testing.T, s store.Store) {
	seed(t, s, 5)
	a := org(orgA, 5)
	if len(a.VerifiedDomains) == 0 {
		t.Fatal("fixture organisation has no verified domain")
	}
	got, err := s.ConnectionsByDomain(t.Context(), strings.ToUpper(a.VerifiedDomains[0]))
	if err != nil {
		t.Fatalf("ConnectionsByDomain: %v", err)
	}
	if len(got) != len(connections(orgA)) {
		t.Fatalf("got %d connections, want %d: %+v", len(got), len(connections(orgA)), got)
	}
	for _, c := range got {
		if c.OrganizationID != orgA {
			t.Errorf("connection %s of organisation %s found by %s's domain", c.ID, c.OrganizationID, orgA)
		}
	}
	none, err := s.ConnectionsByDomain(t.Context(), "unverified.example")
	if err != nil || len(none) != 0 {
		t.Errorf("unverified domain: got %v, %v; want none", none, err)
	}
}

// RecordLogin keeps the latest login time, of the user and of the
// identity signed in through, and never goes back.
func testRecordLogin(t *testing.T, s store.Store) {
	seed(t, s, 5)
	u := createUser(t, s, user(orgA, connS, "ext-login", "login@acme.example"))
	inTx(t, s, func(ctx context.Context, tx store.Tx) error {
		_, err := tx.LinkIdentity(ctx, store.Identity{OrganizationID: orgA, ConnectionID: connO, ExternalID: "oidc-login",
			UserID: u.ID, LinkedBy: store.LinkedByEmail})
		return err
	})
	seen := func() (user time.Time, ids map[string]time.Time) {
		t.Helper()
		ids = map[string]time.Time{}
		inTx(t, s, func(ctx context.Context, tx store.Tx) error {
			got, err := tx.UserByIdentity(ctx, orgA, connS, "ext-login")
			if err != nil {
				return err
			}
			user = got.LastLoginAt
			list, err := tx.Identities(ctx, u.ID)
			for _, i := range list {
				ids[i.ConnectionID] = i.LastSeenAt
			}
			return err
		})
		return user, ids
	}
	_, before := seen()
	later := time.Now().Add(time.Hour).UTC().Truncate(time.Microsecond)
	login := store.Login{OrganizationID: orgA, ConnectionID: connO, ExternalID: "oidc-login", UserID: u.ID, At: later}
	if err := recordLogin(t, s, login); err != nil {
		t.Fatalf("RecordLogin: %v", err)
	}
	last, ids := seen()
	if !last.Equal(later) {
		t.Errorf("last login %s, want %s", last, later)
	}
	if !ids[connO].Equal(later) {
		t.Errorf("last sighting of the identity signed in through: %s, want %s", ids[connO], later)
	}
	if !ids[connS].Equal(before[connS]) {
		t.Errorf("last sighting of the other identity moved from %s to %s", before[connS], ids[connS])
	}
	older := login
	older.At = later.Add(-time.Minute)
	if err := recordLogin(t, s, older); err != nil {
		t.Fatalf("RecordLogin of an older login: %v", err)
	}
	if last, ids := seen(); !last.Equal(later) || !ids[connO].Equal(later) {
		t.Errorf("an older login moved the last login back to %s (identity %s)", last, ids[connO])
	}
	// An identity since linked to someone else is not this user's.
	stray := login
	stray.ExternalID = "not-theirs"
	if err := recordLogin(t, s, stray); err != nil {
		t.Errorf("RecordLogin through an identity the user no longer has: %v, want the user's login recorded", err)
	}
	other := login
	other.OrganizationID = orgB
	wantErr(t, "RecordLogin in another organisation", recordLogin(t, s, other), store.ErrNotFound)
	other = login
	other.UserID = uuid.NewString()
	wantErr(t, "RecordLogin of an unknown user", recordLogin(t, s, other), store.ErrNotFound)
	other.UserID = "not-a-uuid"
	wantErr(t, "RecordLogin of an id no store gives", recordLogin(t, s, other), store.ErrNotFound)
}

// recordLogin records one login; ErrNotFound when RecordLogins says its
// user is unknown.
func recordLogin(t *testing.T, s store.Store, l store.Login) error {
	unknown, err := s.RecordLogins(t.Context(), []store.Login{l})
	if err == nil && len(unknown) > 0 {
		if !slices.Equal(unknown, []int{0}) {
			t.Fatalf("RecordLogins of one login: unknown %v", unknown)
		}
		return store.ErrNotFound
	}
	return err
}

// A batch of logins is recorded together: the latest of one user's logins
// counts whatever their order, and the logins naming nobody of their
// organisation are reported by index without holding up the others.
func testRecordLoginsBatch(t *testing.T, s store.Store) {
	seed(t, s, 10)
	a := createUser(t, s, user(orgA, connS, "a", "a@acme.example"))
	b := createUser(t, s, user(orgA, connS, "b", "b@acme.example"))
	base := time.Now().Add(time.Hour).UTC().Truncate(time.Microsecond)
	at := func(m int) time.Time { return base.Add(time.Duration(m) * time.Minute) }
	login := func(u store.User, ext string, m int) store.Login {
		return store.Login{OrganizationID: u.OrganizationID, ConnectionID: connS, ExternalID: ext, UserID: u.ID, At: at(m)}
	}
	inOrgB := login(a, "a", 9)
	inOrgB.OrganizationID = orgB
	notAnID := login(a, "a", 9)
	notAnID.UserID = "not-a-uuid"
	unknown, err := s.RecordLogins(t.Context(), []store.Login{
		login(a, "a", 5),
		login(store.User{ID: uuid.NewString(), OrganizationID: orgA}, "ghost", 1),
		login(a, "a", 7), // a's latest
		inOrgB,
		notAnID,
		login(a, "a", 6),
		login(b, "b", 2),
	})
	if err != nil {
		t.Fatalf("RecordLogins: %v", err)
	}
	if want := []int{1, 3, 4}; !slices.Equal(unknown, want) {
		t.Errorf("unknown logins %v, want %v", unknown, want)
	}
	for _, c := range []struct {
		u    store.User
		want time.Time
	}{{a, at(7)}, {b, at(2)}} {
		got, err := read(t, s, func(ctx context.Context, tx store.Tx) (store.User, error) { return tx.UserByID(ctx, orgA, c.u.ID) })
		if err != nil || !got.LastLoginAt.Equal(c.want) {
			t.Errorf("%s: last login %s (%v), want %s", c.u.Email, got.LastLoginAt, err, c.want)
		}
		ids, err := read(t, s, func(ctx context.Context, tx store.Tx) ([]store.Identity, error) { return tx.Identities(ctx, c.u.ID) })
		if err != nil || len(ids) != 1 || !ids[0].LastSeenAt.Equal(c.want) {
			t.Errorf("%s: identities %+v (%v), want one last seen at %s", c.u.Email, ids, err, c.want)
		}
	}
	if unknown, err := s.RecordLogins(t.Context(), nil); err != nil || len(unknown) != 0 {
		t.Errorf("RecordLogins of nothing: %v, %v", unknown, err)
	}
}

// Batches recording the same people in different orders at once — two
// provisioner replicas' login.seen consumers — neither fail nor deadlock,
// and each person ends at their latest login.
func testRecordLoginsRace(t *testing.T, s store.Store) {
	seed(t, s, 100)
	var people []store.User
	for i := range 20 {
		people = append(people, createUser(t, s, user(orgA, connS, fmt.Sprintf("r%d", i), fmt.Sprintf("r%d@acme.example", i))))
	}
	base := time.Now().Add(time.Hour).UTC().Truncate(time.Microsecond)
	const writers, rounds = 4, 10
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for r := range rounds {
				batch := make([]store.Login, len(people))
				for i, u := range people {
					batch[i] = store.Login{OrganizationID: orgA, ConnectionID: connS, ExternalID: fmt.Sprintf("r%d", i), UserID: u.ID,
						At: base.Add(time.Duration(r*writers+w) * time.Second)}
				}
				if w%2 == 1 {
					slices.Reverse(batch)
				}
				if unknown, err := s.RecordLogins(t.Context(), batch); err != nil || len(unknown) != 0 {
					t.Errorf("writer %d round %d: unknown %v, %v", w, r, unknown, err)
					return
				}
			}
		})
	}
	wg.Wait()
	latest := base.Add(time.Duration((rounds-1)*writers+writers-1) * time.Second)
	for _, u := range people {
		got, err := read(t, s, func(ctx context.Context, tx store.Tx) (store.User, error) { return tx.UserByID(ctx, orgA, u.ID) })
		if err != nil || !got.LastLoginAt.Equal(latest) {
			t.Errorf("%s: last login %s (%v), want the latest, %s", u.Email, got.LastLoginAt, err, latest)
		}
	}
}

// A user has any number of identities, one per (organisation, connection,
// external id); each finds the user, and they move between users only by
// unlinking and linking, with the user and its seat untouched.
func testIdentities(t *testing.T, s store.Store) {
	seed(t, s, 5)
	ada := createUser(t, s, user(orgA, connS, "ada-saml", "ada@acme.example"))
	bob := createUser(t, s, user(orgA, connS, "bob-saml", "bob@acme.example"))
	seats := seatsUsed(t, s, orgA)

	linked, err := read(t, s, func(ctx context.Context, tx store.Tx) (store.Identity, error) {
		return tx.LinkIdentity(ctx, store.Identity{OrganizationID: orgA, ConnectionID: connO, ExternalID: "ada-oidc",
			UserID: ada.ID, LinkedBy: store.LinkedByEmail})
	})
	if err != nil {
		t.Fatalf("LinkIdentity of a second identity: %v", err)
	}
	if linked.UserID != ada.ID || linked.LinkedBy != store.LinkedByEmail || linked.FirstSeenAt.IsZero() ||
		!linked.LastSeenAt.Equal(linked.FirstSeenAt) {
		t.Errorf("LinkIdentity: got %+v", linked)
	}
	for _, id := range [][2]string{{connS, "ada-saml"}, {connO, "ada-oidc"}} {
		got, err := read(t, s, func(ctx context.Context, tx store.Tx) (store.User, error) {
			return tx.UserByIdentity(ctx, orgA, id[0], id[1])
		})
		if err != nil || got.ID != ada.ID {
			t.Errorf("UserByIdentity(%s, %s): got (%s, %v), want Ada %s", id[0], id[1], got.ID, err, ada.ID)
		}
	}
	identities := func(userID string) []string {
		t.Helper()
		list, err := read(t, s, func(ctx context.Context, tx store.Tx) ([]store.Identity, error) {
			return tx.Identities(ctx, userID)
		})
		if err != nil {
			t.Fatalf("Identities: %v", err)
		}
		var out []string
		for _, i := range list {
			if i.OrganizationID != orgA || i.UserID != userID {
				t.Errorf("Identities(%s): got %+v", userID, i)
			}
			out = append(out, i.ConnectionID+"/"+i.ExternalID+"/"+i.LinkedBy)
		}
		return out
	}
	if got, want := identities(ada.ID), []string{connS + "/ada-saml/created", connO + "/ada-oidc/email"}; !slices.Equal(got, want) {
		t.Errorf("Identities of Ada, oldest first: got %v, want %v", got, want)
	}

	// Move Ada's OIDC identity to Bob: unlink, then link, in one
	// transaction, as an admin does.
	inTx(t, s, func(ctx context.Context, tx store.Tx) error {
		old, err := tx.UnlinkIdentity(ctx, orgA, connO, "ada-oidc")
		if err != nil {
			return err
		}
		if old.UserID != ada.ID {
			t.Errorf("UnlinkIdentity: got user %s, want Ada %s", old.UserID, ada.ID)
		}
		_, err = tx.LinkIdentity(ctx, store.Identity{OrganizationID: orgA, ConnectionID: connO, ExternalID: "ada-oidc",
			UserID: bob.ID, LinkedBy: store.LinkedByAdmin})
		return err
	})
	if got, want := identities(ada.ID), []string{connS + "/ada-saml/created"}; !slices.Equal(got, want) {
		t.Errorf("Identities of Ada after the move: got %v, want %v", got, want)
	}
	if got, want := identities(bob.ID), []string{connS + "/bob-saml/created", connO + "/ada-oidc/admin"}; !slices.Equal(got, want) {
		t.Errorf("Identities of Bob after the move: got %v, want %v", got, want)
	}
	// A user with no identity left stays, with its seat.
	inTx(t, s, func(ctx context.Context, tx store.Tx) error {
		_, err := tx.UnlinkIdentity(ctx, orgA, connS, "ada-saml")
		return err
	})
	if got := identities(ada.ID); len(got) != 0 {
		t.Errorf("Identities of Ada after unlinking both: got %v, want none", got)
	}
	if _, err := read(t, s, func(ctx context.Context, tx store.Tx) (store.User, error) {
		return tx.UserByEmail(ctx, orgA, "ada@acme.example")
	}); err != nil {
		t.Errorf("Ada without identities: %v, want the user kept", err)
	}
	if got := seatsUsed(t, s, orgA); got != seats {
		t.Errorf("seats used after linking and unlinking: got %d, want %d (unchanged)", got, seats)
	}

	// SeeIdentity moves the last sighting, never the first, and never
	// moves the user's last login back.
	later := time.Now().Add(time.Hour).UTC().Truncate(time.Microsecond)
	if _, err := s.RecordLogins(t.Context(), []store.Login{{OrganizationID: orgA, ConnectionID: connS, ExternalID: "bob-saml", UserID: bob.ID, At: later}}); err != nil {
		t.Fatal(err)
	}
	inTx(t, s, func(ctx context.Context, tx store.Tx) error { return tx.SeeIdentity(ctx, orgA, connS, "bob-saml") })
	if got, err := read(t, s, func(ctx context.Context, tx store.Tx) (store.User, error) { return tx.UserByID(ctx, orgA, bob.ID) }); err != nil || !got.LastLoginAt.Equal(later) {
		t.Errorf("SeeIdentity after a later login: last login %s (%v), want it kept at %s", got.LastLoginAt, err, later)
	}
	list, err := read(t, s, func(ctx context.Context, tx store.Tx) ([]store.Identity, error) { return tx.Identities(ctx, bob.ID) })
	if err != nil || len(list) == 0 {
		t.Fatalf("Identities of Bob: %v, %v", list, err)
	}
	if list[0].LastSeenAt.Before(list[0].FirstSeenAt) {
		t.Errorf("SeeIdentity: last seen %s before first seen %s", list[0].LastSeenAt, list[0].FirstSeenAt)
	}
}

func testOrganizations(t *testing.T, s store.Store) {
	a := org(orgA, 5)
	b := org(orgB, 0)
	b.UpdatePolicy, b.LinkByEmail, b.VerifiedDomains = store.PreferApp, store.LinkNever, nil
	b.Roles = []string{"member", "owner"}
	b.DefaultRole, b.JITRoleCeiling = "member", "member"
	conns := append(connections(orgA), store.Connection{OrganizationID: orgB, ID: connS, Protocol: "saml"})
	if err := s.ApplyOrganizations(t.Context(), []store.Organization{a, b}, conns); err != nil {
		t.Fatalf("ApplyOrganizations: %v", err)
	}

	for _, want := range []store.Organization{a, b} {
		got := getOrg(t, s, want.ID)
		if !reflect.DeepEqual(normOrg(got), normOrg(want)) {
			t.Errorf("Organization(%q): got %+v, want %+v", want.ID, got, want)
		}
	}
	for _, want := range connections(orgA) {
		got, err := read(t, s, func(ctx context.Context, tx store.Tx) (store.Connection, error) {
			return tx.Connection(ctx, want.OrganizationID, want.ID)
		})
		if err != nil {
			t.Fatalf("Connection(%q, %q): %v", want.OrganizationID, want.ID, err)
		}
		if got.OrganizationID != want.OrganizationID || got.ID != want.ID || got.Protocol != want.Protocol ||
			got.DisplayName != want.DisplayName || got.Replaces != want.Replaces || !jsonEqual(t, got.Settings, want.Settings) {
			t.Errorf("Connection(%q, %q): got %+v (settings %s), want %+v (settings %s)",
				want.OrganizationID, want.ID, got, got.Settings, want, want.Settings)
		}
	}
	// One organisation's connections, in a decision's transaction.
	list, err := read(t, s, func(ctx context.Context, tx store.Tx) ([]store.Connection, error) {
		return tx.Connections(ctx, orgA)
	})
	if err != nil {
		t.Fatalf("Tx.Connections(%q): %v", orgA, err)
	}
	if len(list) != 2 || list[0].ID != connO || list[1].ID != connS || list[0].Replaces != connS || list[0].OrganizationID != orgA {
		t.Errorf("Tx.Connections(%q): got %+v, want %s then %s", orgA, list, connO, connS)
	}
	if none, err := read(t, s, func(ctx context.Context, tx store.Tx) ([]store.Connection, error) {
		return tx.Connections(ctx, "no-such-org")
	}); err != nil || len(none) != 0 {
		t.Errorf("Tx.Connections of an unknown organisation: got (%v, %v), want none", none, err)
	}
	// A connection applied without settings reads back as an empty object.
	got, err := read(t, s, func(ctx context.Context, tx store.Tx) (store.Connection, error) {
		return tx.Connection(ctx, orgB, connS)
	})
	if err != nil {
		t.Fatalf("Connection(%q, %q): %v", orgB, connS, err)
	}
	if len(got.Settings) != 0 && !jsonEqual(t, got.Settings, []byte(`{}`)) {
		t.Errorf("Connection(%q, %q) applied without settings: got settings %s, want {} or none", orgB, connS, got.Settings)
	}
	// Connections are per organisation.
	_, err = read(t, s, func(ctx context.Context, tx store.Tx) (store.Connection, error) {
		return tx.Connection(ctx, orgB, connO)
	})
	wantErr(t, "Connection of another organisation", err, store.ErrNotFound)
}

func testReapplyOrganizations(t *testing.T, s store.Store) {
	seed(t, s, 5)
	inTx(t, s, func(ctx context.Context, tx store.Tx) error {
		for range 2 {
			if _, err := tx.TakeSeat(ctx, orgA); err != nil {
				return err
			}
		}
		return nil
	})

	// The same file again changes nothing, seats included.
	seed(t, s, 5)
	want := org(orgA, 5)
	want.SeatsUsed = 2
	if got := getOrg(t, s, orgA); !reflect.DeepEqual(normOrg(got), normOrg(want)) {
		t.Errorf("after re-applying the same organisations: got %+v, want %+v", got, want)
	}

	// A changed file updates the organisation and its connections, and
	// still keeps the seats used.
	changed := org(orgA, 3)
	changed.Name = "Acme Corporation"
	changed.Roles = []string{"guest", "viewer", "editor", "admin"}
	changed.DefaultRole, changed.JITRoleCeiling = "guest", "viewer"
	changed.UpdatePolicy, changed.LinkByEmail = store.PreferApp, store.LinkNever
	changed.VerifiedDomains = []string{"acme.example"}
	conn := store.Connection{OrganizationID: orgA, ID: connS, Protocol: "oidc", Settings: []byte(`{"issuer":"https://new.example"}`)}
	if err := s.ApplyOrganizations(t.Context(), []store.Organization{changed}, []store.Connection{conn}); err != nil {
		t.Fatalf("ApplyOrganizations (changed): %v", err)
	}
	want = changed
	want.SeatsUsed = 2
	if got := getOrg(t, s, orgA); !reflect.DeepEqual(normOrg(got), normOrg(want)) {
		t.Errorf("after applying a changed organisation: got %+v, want %+v", got, want)
	}
	gotConn, err := read(t, s, func(ctx context.Context, tx store.Tx) (store.Connection, error) {
		return tx.Connection(ctx, orgA, connS)
	})
	if err != nil {
		t.Fatalf("Connection: %v", err)
	}
	if gotConn.Protocol != conn.Protocol || !jsonEqual(t, gotConn.Settings, conn.Settings) {
		t.Errorf("after applying a changed connection: got %+v (settings %s), want %+v (settings %s)",
			gotConn, gotConn.Settings, conn, conn.Settings)
	}
	// Other organisations are untouched.
	if got := getOrg(t, s, orgB); !reflect.DeepEqual(normOrg(got), normOrg(org(orgB, 5))) {
		t.Errorf("organisation %q not in the second apply: got %+v, want it unchanged", orgB, got)
	}

	// Lowering max_seats below the seats used keeps them and stops new
	// seats.
	if err := s.ApplyOrganizations(t.Context(), []store.Organization{org(orgA, 1)}, nil); err != nil {
		t.Fatalf("ApplyOrganizations (max_seats 1): %v", err)
	}
	o, err := read(t, s, func(ctx context.Context, tx store.Tx) (store.Organization, error) {
		return tx.TakeSeat(ctx, orgA)
	})
	wantErr(t, "TakeSeat with max_seats lowered below seats used", err, store.ErrSeatsExhausted)
	if o.SeatsUsed != 2 || o.MaxSeats != 1 {
		t.Errorf("TakeSeat with max_seats lowered: got seats %d/%d, want 2/1", o.SeatsUsed, o.MaxSeats)
	}
}

func testApplyOrganizationsAtomic(t *testing.T, s store.Store) {
	if err := s.ApplyOrganizations(t.Context(), nil, nil); err != nil {
		t.Errorf("ApplyOrganizations with nothing: %v", err)
	}
	// The connection names an organisation that does not exist: nothing of
	// the apply may remain.
	bad := store.Connection{OrganizationID: "no-such-org", ID: connS, Protocol: "saml"}
	err := s.ApplyOrganizations(t.Context(), []store.Organization{org(orgA, 5)}, []store.Connection{bad})
	if err == nil {
		t.Fatalf("ApplyOrganizations with a connection of an unknown organisation: got nil error, want one")
	}
	_, err = read(t, s, func(ctx context.Context, tx store.Tx) (store.Organization, error) {
		return tx.Organization(ctx, orgA)
	})
	wantErr(t, "organisation of a failed apply", err, store.ErrNotFound)
}

func testCreateAndGetUser(t *testing.T, s store.Store) {
	seed(t, s, 10)
	want := user(orgA, connS, "ada@idp", "Ada.Lovelace@Acme.Example")
	var created store.User
	inTx(t, s, func(ctx context.Context, tx store.Tx) error {
		var err error
		created, err = create(ctx, tx, want)
		if err != nil {
			return err
		}
		checkUser(t, "CreateUser", created, want.User)
		// A transaction reads its own writes.
		got, err := tx.UserByIdentity(ctx, orgA, connS, "ada@idp")
		if err != nil {
			return err
		}
		checkUser(t, "UserByIdentity in the creating transaction", got, want.User)
		return nil
	})

	got, err := read(t, s, func(ctx context.Context, tx store.Tx) (store.User, error) {
		return tx.UserByIdentity(ctx, orgA, connS, "ada@idp")
	})
	if err != nil {
		t.Fatalf("UserByIdentity: %v", err)
	}
	checkUser(t, "UserByIdentity", got, want.User)
	if !got.CreatedAt.Equal(created.CreatedAt) {
		t.Errorf("UserByIdentity: got CreatedAt %v, want %v as CreateUser returned", got.CreatedAt, created.CreatedAt)
	}

	for _, email := range []string{"Ada.Lovelace@Acme.Example", "ada.lovelace@acme.example", "ADA.LOVELACE@ACME.EXAMPLE"} {
		got, err := read(t, s, func(ctx context.Context, tx store.Tx) (store.User, error) {
			return tx.UserByEmail(ctx, orgA, email)
		})
		if err != nil {
			t.Errorf("UserByEmail(%q): %v", email, err)
			continue
		}
		// The email keeps the case it was stored with.
		checkUser(t, "UserByEmail("+email+")", got, want.User)
	}

	// Lookups are scoped to the organisation and the connection.
	_, err = read(t, s, func(ctx context.Context, tx store.Tx) (store.User, error) {
		return tx.UserByIdentity(ctx, orgA, connO, "ada@idp")
	})
	wantErr(t, "UserByIdentity on another connection", err, store.ErrNotFound)
	_, err = read(t, s, func(ctx context.Context, tx store.Tx) (store.User, error) {
		return tx.UserByIdentity(ctx, orgB, connS, "ada@idp")
	})
	wantErr(t, "UserByIdentity in another organisation", err, store.ErrNotFound)
	_, err = read(t, s, func(ctx context.Context, tx store.Tx) (store.User, error) {
		return tx.UserByEmail(ctx, orgB, "ada.lovelace@acme.example")
	})
	wantErr(t, "UserByEmail in another organisation", err, store.ErrNotFound)

	// Empty groups and attributes are fine.
	bare := user(orgA, connO, "bare", "bare@acme.example")
	bare.Groups, bare.Attributes, bare.GivenName, bare.FamilyName, bare.DisplayName = nil, nil, "", "", ""
	bare.EmailVerified = false
	checkUser(t, "CreateUser without groups or attributes", createUser(t, s, bare), bare.User)
}

func testUsersWithoutIdentity(t *testing.T, s store.Store) {
	seed(t, s, 10)
	// Users created by an admin are not linked to an IdP identity yet; any
	// number of them may exist.
	first := user(orgA, "", "", "first@acme.example")
	first.CreatedBy, first.EmailVerified = store.CreatedByAdmin, false
	second := user(orgA, "", "", "second@acme.example")
	second.CreatedBy = store.CreatedByApp
	checkUser(t, "CreateUser without identity", createUser(t, s, first), first.User)
	checkUser(t, "second CreateUser without identity", createUser(t, s, second), second.User)

	got, err := read(t, s, func(ctx context.Context, tx store.Tx) (store.User, error) {
		return tx.UserByEmail(ctx, orgA, "FIRST@acme.example")
	})
	if err != nil {
		t.Fatalf("UserByEmail: %v", err)
	}
	checkUser(t, "UserByEmail of an unlinked user", got, first.User)

	// Linking: the first login through an IdP links the identity, and the
	// IdP vouches for the email.
	got.EmailVerified = true
	inTx(t, s, func(ctx context.Context, tx store.Tx) error {
		if _, err := tx.UpdateUser(ctx, got); err != nil {
			return err
		}
		_, err := tx.LinkIdentity(ctx, store.Identity{OrganizationID: orgA, ConnectionID: connS, ExternalID: "first@idp",
			UserID: got.ID, LinkedBy: store.LinkedByEmail})
		return err
	})
	linked, err := read(t, s, func(ctx context.Context, tx store.Tx) (store.User, error) {
		return tx.UserByIdentity(ctx, orgA, connS, "first@idp")
	})
	if err != nil {
		t.Fatalf("UserByIdentity after linking: %v", err)
	}
	want := first.User
	want.EmailVerified = true
	checkUser(t, "UserByIdentity after linking", linked, want)
}

func testUpdateUser(t *testing.T, s store.Store) {
	seed(t, s, 10)
	created := createUser(t, s, user(orgA, connS, "grace@idp", "grace@acme.example"))

	changed := created
	changed.Email = "Grace.Hopper@Acme.Example"
	changed.EmailVerified = false
	changed.GivenName, changed.FamilyName, changed.DisplayName = "Grace", "Hopper", "Grace Hopper"
	changed.Groups = []string{"navy"}
	changed.Role = "editor"
	changed.Attributes = map[string][]string{"rank": {"rear admiral"}}
	var updated store.User
	inTx(t, s, func(ctx context.Context, tx store.Tx) error {
		if _, err := tx.UserByIdentity(ctx, orgA, connS, "grace@idp"); err != nil {
			return err
		}
		var err error
		updated, err = tx.UpdateUser(ctx, changed)
		return err
	})
	checkUser(t, "UpdateUser", updated, changed)
	if !updated.CreatedAt.Equal(created.CreatedAt) {
		t.Errorf("UpdateUser: got CreatedAt %v, want it unchanged (%v)", updated.CreatedAt, created.CreatedAt)
	}
	if updated.UpdatedAt.Before(created.UpdatedAt) {
		t.Errorf("UpdateUser: got UpdatedAt %v, before the previous %v", updated.UpdatedAt, created.UpdatedAt)
	}

	got, err := read(t, s, func(ctx context.Context, tx store.Tx) (store.User, error) {
		return tx.UserByIdentity(ctx, orgA, connS, "grace@idp")
	})
	if err != nil {
		t.Fatalf("UserByIdentity after update: %v", err)
	}
	checkUser(t, "UserByIdentity after update", got, changed)
	got, err = read(t, s, func(ctx context.Context, tx store.Tx) (store.User, error) {
		return tx.UserByEmail(ctx, orgA, "grace.hopper@acme.example")
	})
	if err != nil {
		t.Fatalf("UserByEmail(new email): %v", err)
	}
	checkUser(t, "UserByEmail(new email)", got, changed)
	_, err = read(t, s, func(ctx context.Context, tx store.Tx) (store.User, error) {
		return tx.UserByEmail(ctx, orgA, "grace@acme.example")
	})
	wantErr(t, "UserByEmail(old email)", err, store.ErrNotFound)

	// Changing only the case of one's own email is not a conflict.
	changed.Email = "grace.hopper@acme.example"
	inTx(t, s, func(ctx context.Context, tx store.Tx) error {
		_, err := tx.UpdateUser(ctx, changed)
		return err
	})
}

func testRoleReviews(t *testing.T, s store.Store) {
	seed(t, s, 10)
	u := createUser(t, s, user(orgA, connS, "linus@idp", "linus@acme.example"))

	_, err := read(t, s, func(ctx context.Context, tx store.Tx) (store.RoleReview, error) {
		return tx.PendingRoleReview(ctx, u.ID, "editor")
	})
	wantErr(t, "PendingRoleReview before any review", err, store.ErrNotFound)

	want := store.RoleReview{ID: uuid.NewString(), OrganizationID: orgA, UserID: u.ID,
		CurrentRole: "viewer", RequestedRole: "editor", LoginID: "login-1"}
	created, err := read(t, s, func(ctx context.Context, tx store.Tx) (store.RoleReview, error) {
		return tx.CreateRoleReview(ctx, want)
	})
	if err != nil {
		t.Fatalf("CreateRoleReview: %v", err)
	}
	want.Status = store.ReviewPending
	checkReview := func(what string, got store.RoleReview) {
		t.Helper()
		w := want
		w.CreatedAt = got.CreatedAt
		if got != w {
			t.Errorf("%s: got %+v, want %+v", what, got, w)
		}
		if got.CreatedAt.IsZero() {
			t.Errorf("%s: CreatedAt not set", what)
		}
	}
	checkReview("CreateRoleReview", created)

	got, err := read(t, s, func(ctx context.Context, tx store.Tx) (store.RoleReview, error) {
		return tx.PendingRoleReview(ctx, u.ID, "editor")
	})
	if err != nil {
		t.Fatalf("PendingRoleReview: %v", err)
	}
	checkReview("PendingRoleReview", got)
	if !got.CreatedAt.Equal(created.CreatedAt) {
		t.Errorf("PendingRoleReview: got CreatedAt %v, want %v", got.CreatedAt, created.CreatedAt)
	}
	_, err = read(t, s, func(ctx context.Context, tx store.Tx) (store.RoleReview, error) {
		return tx.PendingRoleReview(ctx, u.ID, "admin")
	})
	wantErr(t, "PendingRoleReview for another role", err, store.ErrNotFound)

	// One pending review per user and role.
	dup := store.RoleReview{ID: uuid.NewString(), OrganizationID: orgA, UserID: u.ID,
		CurrentRole: "viewer", RequestedRole: "editor", LoginID: "login-2"}
	_, err = read(t, s, func(ctx context.Context, tx store.Tx) (store.RoleReview, error) {
		return tx.CreateRoleReview(ctx, dup)
	})
	wantErr(t, "second pending review for the same user and role", err, store.ErrConflict)

	// Another role, or another user, is a review of its own.
	other := dup
	other.RequestedRole = "admin"
	if _, err := read(t, s, func(ctx context.Context, tx store.Tx) (store.RoleReview, error) {
		return tx.CreateRoleReview(ctx, other)
	}); err != nil {
		t.Errorf("CreateRoleReview for another role: %v", err)
	}
	v := createUser(t, s, user(orgA, connS, "ken@idp", "ken@acme.example"))
	forV := store.RoleReview{ID: uuid.NewString(), OrganizationID: orgA, UserID: v.ID,
		CurrentRole: "viewer", RequestedRole: "editor", LoginID: "login-3"}
	if _, err := read(t, s, func(ctx context.Context, tx store.Tx) (store.RoleReview, error) {
		return tx.CreateRoleReview(ctx, forV)
	}); err != nil {
		t.Errorf("CreateRoleReview for another user: %v", err)
	}
}

func testDecisions(t *testing.T, s store.Store) {
	seed(t, s, 10)
	u := createUser(t, s, user(orgA, connS, "alan@idp", "alan@acme.example"))
	result, _ := json.Marshal(map[string]any{"login_id": "login-1", "outcome": "created", "user": map[string]any{"id": u.ID}})
	created := store.Decision{LoginID: "login-1", OrganizationID: orgA, ConnectionID: connS, ExternalID: "alan@idp",
		Outcome: "created", UserID: u.ID, Result: result, DecidedAt: timestamp()}
	refused := store.Decision{LoginID: "login-2", OrganizationID: "unknown-org", ConnectionID: connS, ExternalID: "eve@idp",
		Outcome: "refused", Reason: "unknown-organization", Result: []byte(`{"login_id":"login-2","outcome":"refused"}`),
		DecidedAt: timestamp()}
	inTx(t, s, func(ctx context.Context, tx store.Tx) error {
		if err := tx.RecordDecision(ctx, created); err != nil {
			return err
		}
		return tx.RecordDecision(ctx, refused)
	})

	byStore := func(_ *testing.T, s store.Store, loginID string) (store.Decision, error) {
		return s.Decision(t.Context(), loginID)
	}
	byTx := func(t *testing.T, s store.Store, loginID string) (store.Decision, error) {
		return read(t, s, func(ctx context.Context, tx store.Tx) (store.Decision, error) { return tx.Decision(ctx, loginID) })
	}
	for _, want := range []store.Decision{created, refused} {
		for via, get := range map[string]func(*testing.T, store.Store, string) (store.Decision, error){"Tx": byTx, "Store": byStore} {
			got, err := get(t, s, want.LoginID)
			if err != nil {
				t.Errorf("%s.Decision(%q): %v", via, want.LoginID, err)
				continue
			}
			checkDecision(t, via, got, want)
		}
	}
	for via, get := range map[string]func(*testing.T, store.Store, string) (store.Decision, error){"Tx": byTx, "Store": byStore} {
		_, err := get(t, s, "login-never-decided")
		wantErr(t, via+".Decision of a login not decided", err, store.ErrNotFound)
	}

	// A login is decided once.
	again := created
	again.Outcome, again.Result = "updated", []byte(`{}`)
	err := s.InTx(t.Context(), func(ctx context.Context, tx store.Tx) error { return tx.RecordDecision(ctx, again) })
	wantErr(t, "RecordDecision for a decided login", err, store.ErrConflict)
	got, err := read(t, s, func(ctx context.Context, tx store.Tx) (store.Decision, error) {
		return tx.Decision(ctx, created.LoginID)
	})
	if err != nil {
		t.Fatalf("Decision after a refused duplicate: %v", err)
	}
	if got.Outcome != created.Outcome {
		t.Errorf("Decision after a refused duplicate: got outcome %q, want the first %q", got.Outcome, created.Outcome)
	}
}

func checkDecision(t *testing.T, via string, got, want store.Decision) {
	t.Helper()
	if !jsonEqual(t, got.Result, want.Result) {
		t.Errorf("%s.Decision(%q): got result %s, want %s", via, want.LoginID, got.Result, want.Result)
	}
	if !got.DecidedAt.Equal(want.DecidedAt) {
		t.Errorf("%s.Decision(%q): got DecidedAt %v, want %v", via, want.LoginID, got.DecidedAt, want.DecidedAt)
	}
	got.Result, want.Result = nil, nil
	got.DecidedAt, want.DecidedAt = time.Time{}, time.Time{}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s.Decision(%q): got %+v, want %+v", via, want.LoginID, got, want)
	}
}

func testAppendOutbox(t *testing.T, s store.Store) {
	if err := s.InTx(t.Context(), func(ctx context.Context, tx store.Tx) error { return tx.AppendOutbox(ctx) }); err != nil {
		t.Errorf("AppendOutbox with no messages: %v", err)
	}
	a, b, c := msg("evt-a"), msg("evt-b"), msg("evt-c")
	appendOutbox(t, s, a, b)
	appendOutbox(t, s, c)
	checkMessages(t, "relayed after AppendOutbox", relay(t, s, 100), []store.OutboxMessage{a, b, c})
}
