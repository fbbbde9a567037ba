package provisioner

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/jitprov/jitprov/events"
	"github.com/jitprov/jitprov/internal/store"
	"github.com/jitprov/jitprov/internal/store/postgres"
	"github.com/jitprov/jitprov/internal/testenv"
)

// seed is a user made before the login, with its identities
// ("connection/external id"), linked as a first login links them.
type seed struct {
	store.User
	ids []string
}

// twoConnections are a SAML and an OIDC connection; the OIDC one replaces
// the one named (none: "").
func twoConnections(replaces string) []store.Connection {
	return []store.Connection{{OrganizationID: "acme", ID: "okta", Protocol: "saml"},
		{OrganizationID: "acme", ID: "google", Protocol: "oidc", Replaces: replaces}}
}

// seedUser creates a user directly, as an admin or the app would, and
// links the identities ids ("connection/external id").
func seedUser(t *testing.T, s store.Store, u store.User, ids ...string) store.User {
	t.Helper()
	if u.ID == "" {
		u.ID = uuid.NewString()
	}
	if u.Status == "" {
		u.Status = store.StatusActive
	}
	if u.CreatedBy == "" {
		u.CreatedBy = store.CreatedByAdmin
	}
	if u.Role == "" {
		u.Role = "member"
	}
	var out store.User
	err := s.InTx(context.Background(), func(ctx context.Context, tx store.Tx) error {
		if _, err := tx.TakeSeat(ctx, u.OrganizationID); err != nil {
			return err
		}
		var err error
		out, err = tx.CreateUser(ctx, u)
		for _, id := range ids {
			if err != nil {
				break
			}
			conn, ext, _ := strings.Cut(id, "/")
			_, err = tx.LinkIdentity(ctx, store.Identity{OrganizationID: u.OrganizationID, ConnectionID: conn, ExternalID: ext,
				UserID: out.ID, LinkedBy: store.LinkedByCreated})
		}
		return err
	})
	if err != nil {
		t.Fatalf("seed user: %v", err)
	}
	return out
}

// outboxTypes lists the ce-type of every outbox row, in order.
func outboxTypes(t *testing.T, s *postgres.Store) []string {
	t.Helper()
	rows, err := s.Pool().Query(context.Background(), `SELECT header->'ce-type'->>0 FROM outbox ORDER BY seq`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		out = append(out, s)
	}
	return out
}

func baseOrg() store.Organization {
	return store.Organization{
		ID: "acme", Name: "Acme", MaxSeats: 10,
		Roles: []string{"viewer", "member", "manager", "admin"}, DefaultRole: "member", JITRoleCeiling: "manager",
		UpdatePolicy: store.PreferIdP, LinkByEmail: store.LinkVerifiedDomains, VerifiedDomains: []string{"acme.com"},
	}
}

func login(ext, email string) events.Identity {
	return events.Identity{OrganizationID: "acme", ConnectionID: "okta", Protocol: events.ProtocolSAML,
		ExternalID: ext, Email: email, EmailVerified: true, GivenName: "Given", AuthenticatedAt: time.Now().UTC()}
}

func TestDecidePolicy(t *testing.T) {
	tests := []struct {
		name        string
		org         func(*store.Organization)
		seed        []seed
		conns       []store.Connection // default: okta (SAML) only
		login       func(*events.Identity)
		wantOutcome events.Outcome
		wantReason  events.Reason
		wantUser    func(t *testing.T, u store.User) // the user after the decision, looked up by the login's identity
		// wantIdentities are the identities ("connection/external id/linked by") of that user.
		wantIdentities []string
		wantEvents     []events.Type
		wantSeats      int
	}{
		{
			name:        "new person is created with the default role",
			wantOutcome: events.OutcomeCreated,
			wantEvents:  []events.Type{events.TypeUserCreated},
			wantSeats:   1,
			wantUser: func(t *testing.T, u store.User) {
				if u.Role != "member" || u.RoleSource != store.RoleSourceIdP || u.CreatedBy != store.CreatedByJIT || u.Status != store.StatusActive {
					t.Errorf("got %+v", u)
				}
			},
		},
		{
			name:        "existing identity found by external id first, even with another email",
			seed:        []seed{{ids: []string{"okta/ext-1"}, User: store.User{Email: "old@acme.com"}}},
			login:       func(id *events.Identity) { id.Email = "new@acme.com" },
			wantOutcome: events.OutcomeExisting,
			wantEvents:  []events.Type{events.TypeUserUpdated},
			wantSeats:   1,
			wantUser: func(t *testing.T, u store.User) {
				if u.Email != "new@acme.com" {
					t.Errorf("prefer-idp: email = %q, want the IdP's new@acme.com", u.Email)
				}
			},
		},
		{
			name: "an IdP email that belongs to another user is not taken, nor its verification",
			seed: []seed{
				{ids: []string{"okta/ext-1"}, User: store.User{Email: "mine@acme.com", GivenName: "Given"}},
				{User: store.User{Email: "taken@acme.com"}},
			},
			login:       func(id *events.Identity) { id.Email = "taken@acme.com" },
			wantOutcome: events.OutcomeExisting,
			wantSeats:   2,
			wantUser: func(t *testing.T, u store.User) {
				if u.Email != "mine@acme.com" || u.EmailVerified {
					t.Errorf("got email %q verified %t, want mine@acme.com unverified", u.Email, u.EmailVerified)
				}
			},
		},
		{
			name:           "link by verified email on a verified domain",
			seed:           []seed{{User: store.User{Email: "ann@acme.com", GivenName: "Ann"}}},
			login:          func(id *events.Identity) { id.Email = "Ann@acme.com" },
			wantOutcome:    events.OutcomeExisting,
			wantEvents:     []events.Type{events.TypeUserUpdated, events.TypeUserIdentityLinked},
			wantSeats:      1,
			wantIdentities: []string{"okta/ext-1/email"},
			wantUser: func(t *testing.T, u store.User) {
				if u.CreatedBy != store.CreatedByAdmin || u.GivenName != "Given" {
					t.Errorf("the admin-made user was not linked and updated: %+v", u)
				}
			},
		},
		{
			name:           "a second connection links by verified email on a verified domain: one user, two identities, one seat",
			conns:          twoConnections(""),
			seed:           []seed{{ids: []string{"okta/ann-saml"}, User: store.User{Email: "ann@acme.com", EmailVerified: true, GivenName: "Given", Role: "manager"}}},
			login:          func(id *events.Identity) { id.ConnectionID, id.Email = "google", "ann@acme.com" },
			wantOutcome:    events.OutcomeExisting,
			wantEvents:     []events.Type{events.TypeUserIdentityLinked},
			wantSeats:      1,
			wantIdentities: []string{"okta/ann-saml/created", "google/ext-1/email"},
			wantUser:       func(t *testing.T, u store.User) { assertRole(t, u, "manager") },
		},
		{
			name:  "a second connection does not link with an unverified email",
			conns: twoConnections(""),
			seed:  []seed{{ids: []string{"okta/ann-saml"}, User: store.User{Email: "ann@acme.com"}}},
			login: func(id *events.Identity) {
				id.ConnectionID, id.Email, id.EmailVerified = "google", "ann@acme.com", false
			},
			wantOutcome: events.OutcomeRefused, wantReason: events.ReasonEmailInUse, wantSeats: 1,
		},
		{
			name:        "a second connection does not link on an unverified domain",
			org:         func(o *store.Organization) { o.VerifiedDomains = []string{"acme.org"} },
			conns:       twoConnections(""),
			seed:        []seed{{ids: []string{"okta/ann-saml"}, User: store.User{Email: "ann@acme.com"}}},
			login:       func(id *events.Identity) { id.ConnectionID, id.Email = "google", "ann@acme.com" },
			wantOutcome: events.OutcomeRefused, wantReason: events.ReasonEmailInUse, wantSeats: 1,
		},
		{
			name:        "a second connection never links onto an admin by email",
			conns:       twoConnections(""),
			seed:        []seed{{ids: []string{"okta/boss-saml"}, User: store.User{Email: "boss@acme.com", Role: "admin"}}},
			login:       func(id *events.Identity) { id.ConnectionID, id.Email = "google", "boss@acme.com" },
			wantOutcome: events.OutcomeRefused, wantReason: events.ReasonEmailInUse, wantSeats: 1,
		},
		{
			name:           "a replacing connection links by email whatever the policy, and the old identity stays",
			org:            func(o *store.Organization) { o.LinkByEmail = store.LinkNever },
			conns:          twoConnections("okta"),
			seed:           []seed{{ids: []string{"okta/ann-saml"}, User: store.User{Email: "ann@acme.com", EmailVerified: true, GivenName: "Given"}}},
			login:          func(id *events.Identity) { id.ConnectionID, id.Email = "google", "ann@acme.com" },
			wantOutcome:    events.OutcomeExisting,
			wantEvents:     []events.Type{events.TypeUserIdentityLinked},
			wantSeats:      1,
			wantIdentities: []string{"okta/ann-saml/created", "google/ext-1/replaces"},
		},
		{
			name:  "a replacing connection needs the IdP to vouch for the email",
			org:   func(o *store.Organization) { o.LinkByEmail = store.LinkNever },
			conns: twoConnections("okta"),
			seed:  []seed{{ids: []string{"okta/ann-saml"}, User: store.User{Email: "ann@acme.com"}}},
			login: func(id *events.Identity) {
				id.ConnectionID, id.Email, id.EmailVerified = "google", "ann@acme.com", false
			},
			wantOutcome: events.OutcomeRefused, wantReason: events.ReasonEmailInUse, wantSeats: 1,
		},
		{
			name:        "a replacing connection links only emails of the organisation's verified domains",
			org:         func(o *store.Organization) { o.LinkByEmail, o.VerifiedDomains = store.LinkNever, []string{"acme.org"} },
			conns:       twoConnections("okta"),
			seed:        []seed{{ids: []string{"okta/ann-saml"}, User: store.User{Email: "ann@acme.com", EmailVerified: true}}},
			login:       func(id *events.Identity) { id.ConnectionID, id.Email = "google", "ann@acme.com" },
			wantOutcome: events.OutcomeRefused, wantReason: events.ReasonEmailInUse, wantSeats: 1,
		},
		{
			// Mallory signed in through a connection that does not vouch
			// for emails with Ann's address; Ann's own verified login must
			// not land in Mallory's account.
			name:        "no link onto a user whose IdP never vouched for the email",
			conns:       twoConnections(""),
			seed:        []seed{{ids: []string{"okta/mallory"}, User: store.User{Email: "ann@acme.com", EmailVerified: false, CreatedBy: store.CreatedByJIT}}},
			login:       func(id *events.Identity) { id.ConnectionID, id.Email = "google", "ann@acme.com" },
			wantOutcome: events.OutcomeRefused, wantReason: events.ReasonEmailInUse, wantSeats: 1,
		},
		{
			name:        "a replacing connection does not link onto a user whose IdP never vouched for the email",
			conns:       twoConnections("okta"),
			seed:        []seed{{ids: []string{"okta/mallory"}, User: store.User{Email: "ann@acme.com", EmailVerified: false, CreatedBy: store.CreatedByJIT}}},
			login:       func(id *events.Identity) { id.ConnectionID, id.Email = "google", "ann@acme.com" },
			wantOutcome: events.OutcomeRefused, wantReason: events.ReasonEmailInUse, wantSeats: 1,
		},
		{
			name:        "no link onto a user whose role is no longer one of the organisation's",
			conns:       twoConnections(""),
			seed:        []seed{{ids: []string{"okta/owner"}, User: store.User{Email: "owner@acme.com", EmailVerified: true, Role: "owner"}}},
			login:       func(id *events.Identity) { id.ConnectionID, id.Email = "google", "owner@acme.com" },
			wantOutcome: events.OutcomeRefused, wantReason: events.ReasonEmailInUse, wantSeats: 1,
		},
		{
			name:        "a replacing connection takes over only the replaced connection's people",
			org:         func(o *store.Organization) { o.LinkByEmail = store.LinkNever },
			conns:       twoConnections("okta"),
			seed:        []seed{{User: store.User{Email: "ann@acme.com"}}},
			login:       func(id *events.Identity) { id.ConnectionID, id.Email = "google", "ann@acme.com" },
			wantOutcome: events.OutcomeRefused, wantReason: events.ReasonEmailInUse, wantSeats: 1,
		},
		{
			name:        "a replacing connection never links onto an admin",
			org:         func(o *store.Organization) { o.LinkByEmail = store.LinkNever },
			conns:       twoConnections("okta"),
			seed:        []seed{{ids: []string{"okta/boss-saml"}, User: store.User{Email: "boss@acme.com", Role: "admin"}}},
			login:       func(id *events.Identity) { id.ConnectionID, id.Email = "google", "boss@acme.com" },
			wantOutcome: events.OutcomeRefused, wantReason: events.ReasonEmailInUse, wantSeats: 1,
		},
		{
			name:        "without an email, a new identity of an organisation with several connections takes no second seat",
			conns:       twoConnections(""),
			seed:        []seed{{ids: []string{"okta/ann-saml"}, User: store.User{Email: "ann@acme.com"}}},
			login:       func(id *events.Identity) { id.ConnectionID, id.Email, id.EmailVerified = "google", "", false },
			wantOutcome: events.OutcomeRefused, wantReason: events.ReasonIdentityConflict, wantSeats: 1,
		},
		{
			name:           "without an email, a known identity signs in as before",
			conns:          twoConnections(""),
			seed:           []seed{{ids: []string{"google/ext-1"}, User: store.User{Email: "ann@acme.com", EmailVerified: true, GivenName: "Given"}}},
			login:          func(id *events.Identity) { id.ConnectionID, id.Email, id.EmailVerified = "google", "", false },
			wantOutcome:    events.OutcomeExisting,
			wantSeats:      1,
			wantIdentities: []string{"google/ext-1/created"},
		},
		{
			name:        "without an email, the only connection of an organisation creates the person",
			login:       func(id *events.Identity) { id.Email, id.EmailVerified = "", false },
			wantOutcome: events.OutcomeCreated,
			wantEvents:  []events.Type{events.TypeUserCreated},
			wantSeats:   1,
		},
		{
			name:        "no link to a user whose role is above the JIT ceiling",
			seed:        []seed{{User: store.User{Email: "boss@acme.com", Role: "admin"}}},
			login:       func(id *events.Identity) { id.Email = "boss@acme.com" },
			wantOutcome: events.OutcomeRefused, wantReason: events.ReasonEmailInUse, wantSeats: 1,
		},
		{
			name:        "no link when the org's policy is never",
			org:         func(o *store.Organization) { o.LinkByEmail = store.LinkNever },
			seed:        []seed{{User: store.User{Email: "ann@acme.com"}}},
			login:       func(id *events.Identity) { id.Email = "ann@acme.com" },
			wantOutcome: events.OutcomeRefused, wantReason: events.ReasonEmailInUse, wantSeats: 1,
		},
		{
			name:        "no link when the IdP does not verify the email",
			seed:        []seed{{User: store.User{Email: "ann@acme.com"}}},
			login:       func(id *events.Identity) { id.Email, id.EmailVerified = "ann@acme.com", false },
			wantOutcome: events.OutcomeRefused, wantReason: events.ReasonEmailInUse, wantSeats: 1,
		},
		{
			name:        "no link when the domain is not verified for the org",
			org:         func(o *store.Organization) { o.VerifiedDomains = []string{"acme.org"} },
			seed:        []seed{{User: store.User{Email: "ann@acme.com"}}},
			login:       func(id *events.Identity) { id.Email = "ann@acme.com" },
			wantOutcome: events.OutcomeRefused, wantReason: events.ReasonEmailInUse, wantSeats: 1,
		},
		{
			name:        "no link to a user who signs in through the same connection as another identity",
			seed:        []seed{{ids: []string{"okta/someone-else"}, User: store.User{Email: "ann@acme.com"}}},
			login:       func(id *events.Identity) { id.Email = "ann@acme.com" },
			wantOutcome: events.OutcomeRefused, wantReason: events.ReasonIdentityConflict, wantSeats: 1,
		},
		{
			name:        "prefer-app keeps the app's data and fills only empty fields",
			org:         func(o *store.Organization) { o.UpdatePolicy = store.PreferApp },
			seed:        []seed{{ids: []string{"okta/ext-1"}, User: store.User{Email: "app@acme.com", GivenName: "App"}}},
			login:       func(id *events.Identity) { id.Email, id.GivenName, id.FamilyName = "idp@acme.com", "IdP", "Family" },
			wantOutcome: events.OutcomeExisting,
			wantEvents:  []events.Type{events.TypeUserUpdated},
			wantSeats:   1,
			wantUser: func(t *testing.T, u store.User) {
				if u.Email != "app@acme.com" || u.GivenName != "App" || u.FamilyName != "Family" {
					t.Errorf("got %+v", u)
				}
			},
		},
		{
			name:        "unchanged claims emit nothing",
			seed:        []seed{{ids: []string{"okta/ext-1"}, User: store.User{Email: "e@acme.com", EmailVerified: true, GivenName: "Given"}}},
			wantOutcome: events.OutcomeExisting,
			wantSeats:   1,
		},
		{
			name:        "role claim within the ceiling is granted",
			login:       func(id *events.Identity) { id.Roles = []string{"manager"} },
			wantOutcome: events.OutcomeCreated,
			wantEvents:  []events.Type{events.TypeUserCreated},
			wantSeats:   1,
			wantUser:    func(t *testing.T, u store.User) { assertRole(t, u, "manager") },
		},
		{
			name:        "org admin claim is never granted: review",
			login:       func(id *events.Identity) { id.Roles = []string{"admin"} },
			wantOutcome: events.OutcomeCreated,
			wantEvents:  []events.Type{events.TypeUserCreated, events.TypeRoleReviewRequested},
			wantSeats:   1,
			wantUser:    func(t *testing.T, u store.User) { assertRole(t, u, "member") },
		},
		{
			name:        "claim above a lower ceiling becomes a review",
			org:         func(o *store.Organization) { o.JITRoleCeiling = "member" },
			login:       func(id *events.Identity) { id.Roles = []string{"manager"} },
			wantOutcome: events.OutcomeCreated,
			wantEvents:  []events.Type{events.TypeUserCreated, events.TypeRoleReviewRequested},
			wantSeats:   1,
			wantUser:    func(t *testing.T, u store.User) { assertRole(t, u, "member") },
		},
		{
			name:        "suspended user is refused and not re-created",
			seed:        []seed{{ids: []string{"okta/ext-1"}, User: store.User{Email: "e@acme.com", Status: store.StatusSuspended}}},
			wantOutcome: events.OutcomeRefused, wantReason: events.ReasonSuspended, wantSeats: 1,
		},
		{
			name:        "deprovisioned user is refused and not re-created",
			seed:        []seed{{ids: []string{"okta/ext-1"}, User: store.User{Email: "e@acme.com", Status: store.StatusDeprovisioned}}},
			wantOutcome: events.OutcomeRefused, wantReason: events.ReasonDeprovisioned, wantSeats: 1,
		},
		{
			name:        "no seat left: rejected, nothing created, seats.exhausted emitted",
			org:         func(o *store.Organization) { o.MaxSeats = 1 },
			seed:        []seed{{User: store.User{Email: "first@acme.com"}}},
			wantOutcome: events.OutcomeRejected, wantReason: events.ReasonSeatsExhausted,
			wantEvents: []events.Type{events.TypeSeatsExhausted},
			wantSeats:  1,
		},
		{
			name:        "a returning person needs no seat",
			org:         func(o *store.Organization) { o.MaxSeats = 1 },
			seed:        []seed{{ids: []string{"okta/ext-1"}, User: store.User{Email: "e@acme.com", EmailVerified: true, GivenName: "Given"}}},
			wantOutcome: events.OutcomeExisting, wantSeats: 1,
		},
		{
			name:        "an initial admin's first sign-in gets the admin role",
			org:         func(o *store.Organization) { o.InitialAdmins = []string{"boss@acme.com"} },
			login:       func(id *events.Identity) { id.Email = "Boss@acme.com" },
			wantOutcome: events.OutcomeCreated,
			wantEvents:  []events.Type{events.TypeUserCreated},
			wantSeats:   1,
			wantUser: func(t *testing.T, u store.User) {
				assertRole(t, u, "admin")
				if u.RoleSource != store.RoleSourceAdmin {
					t.Errorf("an initial admin's role source %q, want admin: the organisations file granted it", u.RoleSource)
				}
			},
		},
		{
			name:        "an initial admin's email the IdP does not vouch for gets no admin role",
			org:         func(o *store.Organization) { o.InitialAdmins = []string{"boss@acme.com"} },
			login:       func(id *events.Identity) { id.Email, id.EmailVerified = "boss@acme.com", false },
			wantOutcome: events.OutcomeCreated,
			wantEvents:  []events.Type{events.TypeUserCreated},
			wantSeats:   1,
			wantUser:    func(t *testing.T, u store.User) { assertRole(t, u, "member") },
		},
		{
			name:        "an initial admin who exists already is not promoted by signing in",
			org:         func(o *store.Organization) { o.InitialAdmins = []string{"e@acme.com"} },
			seed:        []seed{{ids: []string{"okta/ext-1"}, User: store.User{Email: "e@acme.com", EmailVerified: true, GivenName: "Given"}}},
			wantOutcome: events.OutcomeExisting,
			wantSeats:   1,
			wantUser:    func(t *testing.T, u store.User) { assertRole(t, u, "member") },
		},
		{
			name:        "unknown organisation is refused",
			login:       func(id *events.Identity) { id.OrganizationID = "nope" },
			wantOutcome: events.OutcomeRefused, wantReason: events.ReasonUnknownOrganization,
		},
		{
			name:        "unknown connection is refused",
			login:       func(id *events.Identity) { id.ConnectionID = "other" },
			wantOutcome: events.OutcomeRefused, wantReason: events.ReasonUnknownConnection,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, _ := testenv.Store(t)
			ctx := context.Background()
			o := baseOrg()
			if tt.org != nil {
				tt.org(&o)
			}
			conns := tt.conns
			if conns == nil {
				conns = []store.Connection{{OrganizationID: "acme", ID: "okta", Protocol: "saml"}}
			}
			if err := s.ApplyOrganizations(ctx, []store.Organization{o}, conns); err != nil {
				t.Fatal(err)
			}
			for _, u := range tt.seed {
				u.OrganizationID = "acme"
				seedUser(t, s, u.User, u.ids...)
			}
			id := login("ext-1", "e@acme.com")
			if tt.login != nil {
				tt.login(&id)
			}
			d := NewDecider(s, testenv.Logger(t))
			loginID := uuid.NewString()
			res, err := d.Decide(ctx, loginID, id)
			if err != nil {
				t.Fatalf("Decide: %v", err)
			}
			if res.Outcome != tt.wantOutcome || res.Reason != tt.wantReason {
				t.Fatalf("got %s/%s (%s), want %s/%s", res.Outcome, res.Reason, res.Message, tt.wantOutcome, tt.wantReason)
			}
			if res.LoginID != loginID {
				t.Errorf("login id %q, want %q", res.LoginID, loginID)
			}
			var want []string
			for _, ty := range tt.wantEvents {
				want = append(want, string(ty))
			}
			if got := outboxTypes(t, s); !slices.Equal(got, want) {
				t.Errorf("outbox = %v, want %v", got, want)
			}
			var seats, users int
			_ = s.Pool().QueryRow(ctx, `SELECT coalesce((SELECT seats_used FROM organizations WHERE id='acme'),0),
				(SELECT count(*) FROM users)`).Scan(&seats, &users)
			if seats != tt.wantSeats || users != tt.wantSeats {
				t.Errorf("seats_used = %d, users = %d, want %d", seats, users, tt.wantSeats)
			}
			var decisions int
			_ = s.Pool().QueryRow(ctx, `SELECT count(*) FROM provisioning_decisions WHERE login_id = $1 AND outcome = $2`,
				loginID, string(res.Outcome)).Scan(&decisions)
			if decisions != 1 {
				t.Errorf("audit log has %d decisions for the login, want 1", decisions)
			}
			if tt.wantUser != nil || tt.wantIdentities != nil {
				err := s.InTx(ctx, func(ctx context.Context, tx store.Tx) error {
					u, err := tx.UserByIdentity(ctx, "acme", id.ConnectionID, id.ExternalID)
					if err != nil {
						return err
					}
					if tt.wantUser != nil {
						tt.wantUser(t, u)
					}
					ids, err := tx.Identities(ctx, u.ID)
					var got []string
					for _, i := range ids {
						got = append(got, i.ConnectionID+"/"+i.ExternalID+"/"+i.LinkedBy)
					}
					if tt.wantIdentities != nil && !slices.Equal(got, tt.wantIdentities) {
						t.Errorf("identities of the user: got %v, want %v", got, tt.wantIdentities)
					}
					return err
				})
				if err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}

func assertRole(t *testing.T, u store.User, want string) {
	t.Helper()
	if u.Role != want {
		t.Errorf("role = %q, want %q", u.Role, want)
	}
}

// The same person signs in five times at once for an organisation's last
// seat: one is created, the others are told "existing", none "rejected".
func TestDecideLastSeatSamePerson(t *testing.T) {
	s, _ := testenv.Store(t)
	ctx := context.Background()
	o := baseOrg()
	o.MaxSeats = 1
	if err := s.ApplyOrganizations(ctx, []store.Organization{o},
		[]store.Connection{{OrganizationID: "acme", ID: "okta", Protocol: "saml"}}); err != nil {
		t.Fatal(err)
	}
	d := NewDecider(s, testenv.Logger(t))
	var wg sync.WaitGroup
	results := make([]events.ProvisioningResult, 5)
	errs := make([]error, 5)
	for i := range 5 {
		wg.Go(func() { results[i], errs[i] = d.Decide(ctx, uuid.NewString(), login("ext-1", "e@acme.com")) })
	}
	wg.Wait()
	got := map[events.Outcome]int{}
	for i := range 5 {
		if errs[i] != nil {
			t.Fatalf("decision %d: %v", i, errs[i])
		}
		got[results[i].Outcome]++
	}
	if got[events.OutcomeCreated] != 1 || got[events.OutcomeExisting] != 4 {
		t.Errorf("outcomes %v, want 1 created and 4 existing", got)
	}
	if types := outboxTypes(t, s); slices.Contains(types, string(events.TypeSeatsExhausted)) {
		t.Errorf("a false seats.exhausted alert was emitted: %v", types)
	}
}

func TestDecideIsIdempotentPerLogin(t *testing.T) {
	s, _ := testenv.Store(t)
	ctx := context.Background()
	if err := s.ApplyOrganizations(ctx, []store.Organization{baseOrg()},
		[]store.Connection{{OrganizationID: "acme", ID: "okta", Protocol: "saml"}}); err != nil {
		t.Fatal(err)
	}
	d := NewDecider(s, testenv.Logger(t))
	loginID := uuid.NewString()
	id := login("ext-1", "e@acme.com")
	id.Roles = []string{"admin"}

	// The same login decided five times at once, as redeliveries racing
	// each other would.
	var wg sync.WaitGroup
	results := make([]events.ProvisioningResult, 5)
	errs := make([]error, 5)
	for i := range 5 {
		wg.Go(func() { results[i], errs[i] = d.Decide(ctx, loginID, id) })
	}
	wg.Wait()
	for i := range 5 {
		if errs[i] != nil {
			t.Fatalf("decision %d: %v", i, errs[i])
		}
		a, _ := json.Marshal(results[i])
		b, _ := json.Marshal(results[0])
		if string(a) != string(b) {
			t.Errorf("decision %d = %s, want the first decision %s", i, a, b)
		}
	}
	if results[0].Outcome != events.OutcomeCreated || results[0].RoleReview == nil {
		t.Fatalf("got %+v, want created with a role review", results[0])
	}
	got := outboxTypes(t, s)
	want := []string{string(events.TypeUserCreated), string(events.TypeRoleReviewRequested)}
	if !slices.Equal(got, want) {
		t.Errorf("outbox = %v, want one of each: %v", got, want)
	}
	var seats int
	_ = s.Pool().QueryRow(ctx, `SELECT seats_used FROM organizations`).Scan(&seats)
	if seats != 1 {
		t.Errorf("seats_used = %d, want 1", seats)
	}
}

// A person's next login decided by the provisioner — their known identity
// stale or gone, nothing of theirs to change — is their last login, and
// one through another connection linked by email too, on both stores.
func TestDecideRecordsTheLastLogin(t *testing.T) {
	for name, open := range batchStores(t) {
		t.Run(name, func(t *testing.T) {
			s := open(t)
			ctx := t.Context()
			o := baseOrg()
			conns := []store.Connection{{OrganizationID: "acme", ID: "okta", Protocol: "saml"}, {OrganizationID: "acme", ID: "google", Protocol: "oidc"}}
			if err := s.ApplyOrganizations(ctx, []store.Organization{o}, conns); err != nil {
				t.Fatal(err)
			}
			d := NewDecider(s, testenv.Logger(t))
			lastLogin := func(userID string) (last, updated time.Time) {
				t.Helper()
				err := s.InTx(ctx, func(ctx context.Context, tx store.Tx) error {
					u, err := tx.UserByID(ctx, "acme", userID)
					last, updated = u.LastLoginAt, u.UpdatedAt
					return err
				})
				if err != nil {
					t.Fatal(err)
				}
				return last, updated
			}
			id := login("ada", "ada@acme.com")
			first, err := d.Decide(ctx, uuid.NewString(), id)
			if err != nil || first.Outcome != events.OutcomeCreated {
				t.Fatalf("first login: %+v, %v", first, err)
			}
			created, updated := lastLogin(first.User.ID)
			again, err := d.Decide(ctx, uuid.NewString(), id)
			if err != nil || again.Outcome != events.OutcomeExisting {
				t.Fatalf("second login: %+v, %v", again, err)
			}
			second, stillUpdated := lastLogin(first.User.ID)
			if !second.After(created) || !stillUpdated.Equal(updated) {
				t.Errorf("after the second login: last login %s (first %s), updated %s (was %s); want a later last login and nothing updated",
					second, created, stillUpdated, updated)
			}
			other := login("ada-google", "ada@acme.com")
			other.ConnectionID, other.Protocol = "google", events.ProtocolOIDC
			linked, err := d.Decide(ctx, uuid.NewString(), other)
			if err != nil || linked.Outcome != events.OutcomeExisting || linked.User.ID != first.User.ID {
				t.Fatalf("login through google: %+v, %v; want Ada, linked by email", linked, err)
			}
			if third, _ := lastLogin(first.User.ID); !third.After(second) {
				t.Errorf("after the linked login: last login %s, want later than %s", third, second)
			}
		})
	}
}

// The seat warning fires once, on the login that takes the seat reaching
// seat_warning_percent of max_seats (rounded up), however many logins race.
func TestSeatWarningOncePerCrossing(t *testing.T) {
	tests := []struct {
		name     string
		maxSeats int
		percent  int
		logins   int
		wantAt   int // the seats_used the warning reports; 0 for none
	}{
		{"90% of 10 at the 9th", 10, 90, 20, 9},
		{"90% of 3 rounds up to the 3rd", 3, 90, 5, 3},
		{"1% of 10 at the first", 10, 1, 3, 1},
		{"off", 10, 0, 12, 0},
		{"not reached", 10, 90, 8, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _ := testenv.Store(t)
			ctx := context.Background()
			o := baseOrg()
			o.MaxSeats, o.SeatWarningPercent = tt.maxSeats, tt.percent
			if err := s.ApplyOrganizations(ctx, []store.Organization{o},
				[]store.Connection{{OrganizationID: "acme", ID: "okta", Protocol: "saml"}}); err != nil {
				t.Fatal(err)
			}
			d := NewDecider(s, testenv.Logger(t))
			var wg sync.WaitGroup
			for i := range tt.logins {
				wg.Go(func() {
					if _, err := d.Decide(ctx, uuid.NewString(), login(fmt.Sprintf("ext-%d", i), fmt.Sprintf("p%d@acme.com", i))); err != nil {
						t.Error(err)
					}
				})
			}
			wg.Wait()
			rows, err := s.Pool().Query(ctx, `SELECT data FROM outbox WHERE header->'ce-type'->>0 = $1`, string(events.TypeSeatsThresholdReached))
			if err != nil {
				t.Fatal(err)
			}
			var got []events.SeatsThresholdReached
			for rows.Next() {
				var raw []byte
				var w events.SeatsThresholdReached
				if err := rows.Scan(&raw); err != nil {
					t.Fatal(err)
				}
				if err := json.Unmarshal(raw, &w); err != nil {
					t.Fatal(err)
				}
				got = append(got, w)
			}
			if tt.wantAt == 0 {
				if len(got) != 0 {
					t.Fatalf("got warnings %+v, want none", got)
				}
				return
			}
			if len(got) != 1 {
				t.Fatalf("got %d warnings (%+v), want exactly 1", len(got), got)
			}
			if w := got[0]; w.SeatsUsed != tt.wantAt || w.MaxSeats != tt.maxSeats || w.ThresholdPercent != tt.percent || w.UserID == "" {
				t.Errorf("warning %+v, want seats_used %d of %d at %d%%", w, tt.wantAt, tt.maxSeats, tt.percent)
			}
		})
	}
}

// The same people sign in through SAML and OIDC at the same moment, for
// the first time: each is one user with two identities and one seat,
// whichever login commits first (the other conflicts, retries, and links),
// even when the seats left are exactly enough.
func TestDecideSamePersonThroughTwoConnectionsAtOnce(t *testing.T) {
	const people = 20
	s, _ := testenv.Store(t)
	ctx := context.Background()
	o := baseOrg()
	o.MaxSeats = people // exactly enough: a second seat for anyone would turn someone away
	if err := s.ApplyOrganizations(ctx, []store.Organization{o}, twoConnections("")); err != nil {
		t.Fatal(err)
	}
	d := NewDecider(s, testenv.Logger(t))
	var wg sync.WaitGroup
	errs := make([]error, 2*people)
	results := make([]events.ProvisioningResult, 2*people)
	for p := range people {
		for c, conn := range []string{"okta", "google"} {
			wg.Go(func() {
				id := login(fmt.Sprintf("%s-%d", conn, p), fmt.Sprintf("person-%d@acme.com", p))
				id.ConnectionID = conn
				results[2*p+c], errs[2*p+c] = d.Decide(ctx, uuid.NewString(), id)
			})
		}
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("decision %d: %v", i, err)
		}
	}
	for p := range people {
		a, b := results[2*p], results[2*p+1]
		if a.User == nil || b.User == nil || a.User.ID != b.User.ID {
			t.Errorf("person %d: SAML %+v and OIDC %+v, want one user", p, a, b)
			continue
		}
		outcomes := []events.Outcome{a.Outcome, b.Outcome}
		slices.Sort(outcomes)
		if !slices.Equal(outcomes, []events.Outcome{events.OutcomeCreated, events.OutcomeExisting}) {
			t.Errorf("person %d: outcomes %v, want one created and one existing", p, outcomes)
		}
	}
	var seats, users, identities int
	_ = s.Pool().QueryRow(ctx, `SELECT (SELECT seats_used FROM organizations WHERE id = 'acme'),
		(SELECT count(*) FROM users), (SELECT count(*) FROM identities)`).Scan(&seats, &users, &identities)
	if seats != people || users != people || identities != 2*people {
		t.Errorf("seats %d, users %d, identities %d; want %d, %d, %d", seats, users, identities, people, people, 2*people)
	}
	types := outboxTypes(t, s)
	count := map[string]int{}
	for _, ty := range types {
		count[ty]++
	}
	if count[string(events.TypeUserCreated)] != people || count[string(events.TypeUserIdentityLinked)] != people {
		t.Errorf("events %v, want %d user.created and %d user.identity-linked", count, people, people)
	}
}

// A prediction writes nothing and tells what the login then gets, for
// every outcome.
func TestPredictWritesNothingAndPredicts(t *testing.T) {
	s, _ := testenv.Store(t)
	ctx := context.Background()
	o := baseOrg()
	o.MaxSeats = 2
	o.JITRoleCeiling = "member"
	if err := s.ApplyOrganizations(ctx, []store.Organization{o}, twoConnections("")); err != nil {
		t.Fatal(err)
	}
	seedUser(t, s, store.User{OrganizationID: "acme", Email: "sus@acme.com", EmailVerified: true, Status: store.StatusSuspended}, "okta/sus")
	d := NewDecider(s, testenv.Logger(t))
	counts := func() string {
		var c [5]int
		_ = s.Pool().QueryRow(ctx, `SELECT (SELECT count(*) FROM users), (SELECT count(*) FROM identities), (SELECT count(*) FROM outbox),
			(SELECT count(*) FROM provisioning_decisions), (SELECT seats_used FROM organizations)`).Scan(&c[0], &c[1], &c[2], &c[3], &c[4])
		return fmt.Sprint(c)
	}
	for _, c := range []struct {
		name    string
		id      events.Identity
		outcome events.Outcome
		reason  events.Reason
		review  bool
	}{
		{"create, with a review", func() events.Identity { i := login("new-1", "new1@acme.com"); i.Roles = []string{"manager"}; return i }(),
			events.OutcomeCreated, "", true},
		{"refused: suspended", login("sus", "sus@acme.com"), events.OutcomeRefused, events.ReasonSuspended, false},
		{"refused: no email, other connections", func() events.Identity { i := login("x", ""); i.EmailVerified = false; return i }(),
			events.OutcomeRefused, events.ReasonIdentityConflict, false},
		{"link through the other connection", func() events.Identity {
			i := login("new-1-oidc", "new1@acme.com")
			i.ConnectionID = "google"
			return i
		}(), events.OutcomeExisting, "", false},
		{"rejected: no seat", login("new-3", "new3@acme.com"), events.OutcomeRejected, events.ReasonSeatsExhausted, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			before := counts()
			p, err := d.Predict(ctx, c.id)
			if err != nil {
				t.Fatal(err)
			}
			if after := counts(); after != before {
				t.Errorf("the prediction wrote: counts %s, then %s", before, after)
			}
			if p.Outcome != c.outcome || p.Reason != c.reason || (p.RoleReview != nil) != c.review {
				t.Errorf("predicted %s/%s (review %v), want %s/%s", p.Outcome, p.Reason, p.RoleReview, c.outcome, c.reason)
			}
			real, err := d.Decide(ctx, uuid.NewString(), c.id)
			if err != nil {
				t.Fatal(err)
			}
			if real.Outcome != p.Outcome || real.Reason != p.Reason || (real.User == nil) != (p.User == nil) ||
				(real.RoleReview == nil) != (p.RoleReview == nil) || (p.User != nil && p.Outcome == events.OutcomeExisting && real.User.ID != p.User.ID) {
				t.Errorf("the login got %+v, the prediction said %+v", real, p)
			}
		})
	}
}
