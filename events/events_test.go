package events_test

import (
	"encoding/json"
	"errors"
	"io/fs"
	"reflect"
	"strings"
	"testing"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/google/uuid"

	"github.com/jitprov/jitprov/events"
	"github.com/jitprov/jitprov/schemas"
)

const source = "/jitprov/provisioner"

// sample is valid and invalid data of one event type.
type sample struct {
	typ     events.Type
	subject string // the CloudEvents subject
	data    any    // data matching the type's schema
	invalid any    // data breaking the type's schema
	// checkData asserts that DataAs returns data.
	checkData func(t *testing.T, ev events.Event)
}

func samples() []sample {
	// A zone other than UTC and nanoseconds: times must survive the trip as
	// the same instant.
	at := time.Date(2025, 3, 4, 6, 6, 7, 123456789, time.FixedZone("CET", 3600))
	identity := events.Identity{
		OrganizationID:  "acme",
		ConnectionID:    "okta-main",
		Protocol:        events.ProtocolOIDC,
		ExternalID:      "00u1a2b3c4d5e6f7g8h9",
		Email:           "ada@acme.example",
		EmailVerified:   true,
		GivenName:       "Ada",
		FamilyName:      "Lovelace",
		DisplayName:     "Ada Lovelace",
		Groups:          []string{"engineering", "admins"},
		Roles:           []string{"member", "admin"},
		Attributes:      map[string][]string{"department": {"R&D"}, "costCenter": {"4711", "4712"}},
		AuthenticatedAt: at,
	}
	noExternalID := identity
	noExternalID.ExternalID = ""

	user := events.User{
		ID:             "0192f3a4-5b6c-7d8e-9f01-23456789abcd",
		OrganizationID: "acme",
		ConnectionID:   "okta-main",
		ExternalID:     "00u1a2b3c4d5e6f7g8h9",
		Email:          "ada@acme.example",
		GivenName:      "Ada",
		FamilyName:     "Lovelace",
		DisplayName:    "Ada Lovelace",
		Groups:         []string{"engineering"},
		Role:           "member",
		Status:         "active",
		Attributes:     map[string][]string{"department": {"R&D"}},
		CreatedBy:      "jit",
		CreatedAt:      at,
		UpdatedAt:      at.Add(time.Hour),
	}
	badOrgUser := user
	badOrgUser.OrganizationID = "Acme"
	userTimes := func(u *events.User) []*time.Time { return []*time.Time{&u.CreatedAt, &u.UpdatedAt} }

	result := events.ProvisioningResult{
		LoginID:    "0192f3a4-0000-7000-8000-000000000001",
		Outcome:    events.OutcomeCreated,
		Message:    "created; role admin awaits review",
		User:       &events.UserRef{ID: user.ID, Role: "member", Status: "active", Email: user.Email},
		RoleReview: &events.RoleReviewRef{ID: "0192f3a4-5b6c-7d8e-9f01-23456789abce", RequestedRole: "admin"},
		DecidedAt:  at,
	}
	held := events.ProvisioningResult{
		LoginID: result.LoginID, Outcome: events.OutcomeHeld, Reason: events.ReasonSeatsExhausted,
		Message:   "no seat free; held for an admin's approval",
		User:      &events.UserRef{ID: user.ID, Role: "member", Status: events.UserStatusHeld, Email: user.Email},
		DecidedAt: at,
	}
	signup := events.SignupHeld{OrganizationID: "acme", UserID: user.ID, Email: user.Email, DisplayName: "Ada Lovelace",
		ConnectionID: "okta-main", ExternalID: "00u1a2b3c4d5e6f7g8h9", Reason: events.ReasonSeatsExhausted,
		MaxSeats: 10, SeatsUsed: 10, LoginID: result.LoginID}
	inactive := events.InactiveUsersSuspended{OrganizationID: "acme", InactiveAfterSeconds: 90 * 86400, Count: 1,
		Users:    []events.InactiveUserSummary{{UserID: user.ID, Email: user.Email, DisplayName: "Ada Lovelace", LastSeenAt: at}},
		MaxSeats: 10, SeatsUsed: 9, SweptAt: at}
	created := events.UserCreated{User: user, LoginID: result.LoginID}
	updated := events.UserUpdated{User: user, Changed: []string{"email", "role"}, PreviousRole: "viewer", LoginID: result.LoginID}
	linked := events.IdentityLinked{User: user, Identity: events.LinkedIdentity{ConnectionID: "entra", ExternalID: "9f2c1d4e"},
		LinkedBy: events.LinkedByReplaces, ReplacedConnectionID: "okta-main", LoginID: result.LoginID}
	admin := events.Actor{Type: events.ActorUser, ID: "0192f3a4-1111-7222-8333-444455556666", Name: "grace@acme.example"}
	unlinked := events.IdentityUnlinked{User: user, Identity: events.LinkedIdentity{ConnectionID: "entra", ExternalID: "9f2c1d4e"}, Actor: admin}
	statusUser := func(status string) events.User {
		u := user
		u.ConnectionID, u.ExternalID, u.Status = "", "", status
		return u
	}
	suspended := events.UserStatusChanged{User: statusUser("suspended"), PreviousStatus: events.PreviousStatusActive, Actor: admin, Reason: "on leave"}
	reactivated := events.UserStatusChanged{User: statusUser("active"), PreviousStatus: events.PreviousStatusHeld,
		Actor: events.Actor{Type: events.ActorToken, ID: "tok_01HZX3K9Q", Name: "terraform"}}
	deprovisioned := events.UserStatusChanged{User: statusUser("deprovisioned"), PreviousStatus: events.PreviousStatusSuspended, Actor: admin}
	adminUser := statusUser("active")
	adminUser.Role = "admin"
	roleChanged := events.UserRoleChanged{User: adminUser, PreviousRole: "member", Actor: admin, ReviewID: "0192f3a4-5b6c-7d8e-9f01-23456789abce"}
	decided := events.RoleReviewDecided{ReviewID: "0192f3a4-5b6c-7d8e-9f01-23456789abce", OrganizationID: "acme", UserID: user.ID,
		RequestedRole: "admin", Decision: events.ReviewDenied, Reason: "use the IT request form", Actor: admin, DecidedAt: at}
	seats := events.SeatsExhausted{
		OrganizationID: "acme", MaxSeats: 10, SeatsUsed: 10, ConnectionID: "okta-main",
		ExternalID: "00u1a2b3c4d5e6f7g8h9", Email: "ada@acme.example", LoginID: result.LoginID,
	}
	review := events.RoleReviewRequested{
		ReviewID: "0192f3a4-5b6c-7d8e-9f01-23456789abce", OrganizationID: "acme", UserID: user.ID,
		Email: "ada@acme.example", CurrentRole: "member", RequestedRole: "admin", LoginID: result.LoginID,
	}
	threshold := events.SeatsThresholdReached{OrganizationID: "acme", MaxSeats: 10, SeatsUsed: 9, ThresholdPercent: 90,
		UserID: user.ID, LoginID: result.LoginID}
	cert := events.IdPCertificateExpiring{OrganizationID: "acme", ConnectionID: "okta-main", Subject: "CN=acme.okta.com",
		FingerprintSHA256: strings.Repeat("ab", 32), NotAfter: at.Add(6 * 24 * time.Hour), DaysLeft: 6, ThresholdDays: 7}
	failed := events.ProvisioningFailed{LoginID: result.LoginID, OrganizationID: "acme", ConnectionID: "okta-main",
		ExternalID: "00u1a2b3c4d5e6f7g8h9", Email: "ada@acme.example", Reason: "failed 8 times", Deliveries: 8, FailedAt: at}

	scimUser := user
	scimUser.CreatedBy = "scim"
	scimToken := &events.Actor{Type: events.ActorToken, ID: "0192f3a4-0000-7000-8000-00000000000a", Name: "okta-scim"}
	scimCreated := events.UserCreated{User: scimUser, Actor: scimToken}
	scimUpdated := events.UserUpdated{User: scimUser, Changed: []string{"groups"}, Actor: scimToken}

	seen := events.LoginSeen{OrganizationID: "acme", ConnectionID: "okta-main", ExternalID: "00u1a2b3c4d5e6f7g8h9",
		UserID: user.ID, AuthenticatedAt: at}

	return []sample{
		{
			typ: events.TypeLoginFirstSeen, subject: "okta-main/00u1a2b3c4d5e6f7g8h9",
			data: identity, invalid: noExternalID,
			checkData: dataIs(events.TypeLoginFirstSeen, identity, func(v *events.Identity) []*time.Time {
				return []*time.Time{&v.AuthenticatedAt}
			}),
		},
		{
			typ: events.TypeLoginSeen, subject: user.ID,
			data: seen, invalid: events.LoginSeen{OrganizationID: "acme", ConnectionID: "c", ExternalID: "e", UserID: "not-a-uuid", AuthenticatedAt: at},
			checkData: dataIs(events.TypeLoginSeen, seen, func(v *events.LoginSeen) []*time.Time {
				return []*time.Time{&v.AuthenticatedAt}
			}),
		},
		{
			typ: events.TypeProvisioningResult, subject: result.LoginID,
			data: result, invalid: events.ProvisioningResult{LoginID: result.LoginID, Outcome: events.OutcomeCreated, DecidedAt: at},
			checkData: dataIs(events.TypeProvisioningResult, result, func(v *events.ProvisioningResult) []*time.Time {
				return []*time.Time{&v.DecidedAt}
			}),
		},
		{
			typ: events.TypeProvisioningResultV2, subject: held.LoginID,
			// v2's held: v1 cannot say it; v2 requires a held user.
			data: held, invalid: events.ProvisioningResult{LoginID: held.LoginID, Outcome: events.OutcomeHeld, Reason: events.ReasonApprovalRequired, DecidedAt: at},
			checkData: dataIs(events.TypeProvisioningResultV2, held, func(v *events.ProvisioningResult) []*time.Time {
				return []*time.Time{&v.DecidedAt}
			}),
		},
		{
			typ: events.TypeUserCreated, subject: user.ID,
			data: created, invalid: events.UserCreated{User: badOrgUser, LoginID: result.LoginID},
			checkData: dataIs(events.TypeUserCreated, created, func(v *events.UserCreated) []*time.Time {
				return userTimes(&v.User)
			}),
		},
		{
			typ: events.TypeUserUpdated, subject: user.ID,
			data: updated, invalid: events.UserUpdated{User: user, LoginID: result.LoginID}, // changed: null
			checkData: dataIs(events.TypeUserUpdated, updated, func(v *events.UserUpdated) []*time.Time {
				return userTimes(&v.User)
			}),
		},
		{
			// v2: a SCIM client's creation, no login; v2 wants an actor then.
			typ: events.TypeUserCreatedV2, subject: user.ID,
			data: scimCreated, invalid: events.UserCreated{User: scimUser},
			checkData: dataIs(events.TypeUserCreatedV2, scimCreated, func(v *events.UserCreated) []*time.Time {
				return userTimes(&v.User)
			}),
		},
		{
			typ: events.TypeUserUpdatedV2, subject: user.ID,
			data: scimUpdated, invalid: events.UserUpdated{User: scimUser, Changed: []string{"groups"}},
			checkData: dataIs(events.TypeUserUpdatedV2, scimUpdated, func(v *events.UserUpdated) []*time.Time {
				return userTimes(&v.User)
			}),
		},
		{
			typ: events.TypeUserIdentityLinked, subject: user.ID,
			data: linked, invalid: events.IdentityLinked{User: user, Identity: events.LinkedIdentity{ConnectionID: "entra"}, LinkedBy: events.LinkedByEmail},
			checkData: dataIs(events.TypeUserIdentityLinked, linked, func(v *events.IdentityLinked) []*time.Time {
				return userTimes(&v.User)
			}),
		},
		{
			typ: events.TypeUserIdentityUnlinked, subject: user.ID,
			data: unlinked, invalid: events.IdentityUnlinked{User: user, Identity: unlinked.Identity}, // actor: empty type and id
			checkData: dataIs(events.TypeUserIdentityUnlinked, unlinked, func(v *events.IdentityUnlinked) []*time.Time {
				return userTimes(&v.User)
			}),
		},
		{
			typ: events.TypeUserSuspended, subject: user.ID,
			// A status change to the status the user had is no change.
			data: suspended, invalid: events.UserStatusChanged{User: statusUser("suspended"), PreviousStatus: events.PreviousStatusSuspended, Actor: admin},
			checkData: dataIs(events.TypeUserSuspended, suspended, func(v *events.UserStatusChanged) []*time.Time {
				return userTimes(&v.User)
			}),
		},
		{
			typ: events.TypeUserReactivated, subject: user.ID,
			// user.status is the status after the change.
			data: reactivated, invalid: events.UserStatusChanged{User: statusUser("suspended"), PreviousStatus: events.PreviousStatusSuspended, Actor: admin},
			checkData: dataIs(events.TypeUserReactivated, reactivated, func(v *events.UserStatusChanged) []*time.Time {
				return userTimes(&v.User)
			}),
		},
		{
			typ: events.TypeUserDeprovisioned, subject: user.ID,
			data: deprovisioned, invalid: events.UserStatusChanged{User: statusUser("deprovisioned"), PreviousStatus: "gone", Actor: admin},
			checkData: dataIs(events.TypeUserDeprovisioned, deprovisioned, func(v *events.UserStatusChanged) []*time.Time {
				return userTimes(&v.User)
			}),
		},
		{
			typ: events.TypeUserRoleChanged, subject: user.ID,
			data: roleChanged, invalid: events.UserRoleChanged{User: adminUser, PreviousRole: "member", Actor: events.Actor{Type: "admin", ID: "x"}},
			checkData: dataIs(events.TypeUserRoleChanged, roleChanged, func(v *events.UserRoleChanged) []*time.Time {
				return userTimes(&v.User)
			}),
		},
		{
			typ: events.TypeSeatsExhausted, subject: "acme",
			data: seats, invalid: events.SeatsExhausted{OrganizationID: "acme", MaxSeats: -1, ConnectionID: "c", ExternalID: "e", LoginID: "l"},
			checkData: dataIs(events.TypeSeatsExhausted, seats, func(*events.SeatsExhausted) []*time.Time { return nil }),
		},
		{
			typ: events.TypeRoleReviewRequested, subject: review.ReviewID,
			data: review, invalid: events.RoleReviewRequested{ReviewID: "review-1", OrganizationID: "acme", UserID: user.ID, CurrentRole: "member", RequestedRole: "admin", LoginID: "l"},
			checkData: dataIs(events.TypeRoleReviewRequested, review, func(*events.RoleReviewRequested) []*time.Time { return nil }),
		},
		{
			typ: events.TypeRoleReviewDecided, subject: decided.ReviewID,
			data: decided, invalid: events.RoleReviewDecided{ReviewID: decided.ReviewID, OrganizationID: "acme", UserID: user.ID, RequestedRole: "admin", Decision: "pending", Actor: admin, DecidedAt: at},
			checkData: dataIs(events.TypeRoleReviewDecided, decided, func(v *events.RoleReviewDecided) []*time.Time {
				return []*time.Time{&v.DecidedAt}
			}),
		},
		{
			typ: events.TypeSeatsThresholdReached, subject: "acme",
			data:      threshold,
			invalid:   events.SeatsThresholdReached{OrganizationID: "acme", MaxSeats: 10, SeatsUsed: 9, ThresholdPercent: 0, UserID: user.ID, LoginID: "l"},
			checkData: dataIs(events.TypeSeatsThresholdReached, threshold, func(*events.SeatsThresholdReached) []*time.Time { return nil }),
		},
		{
			typ: events.TypeIdPCertificateExpiring, subject: "okta",
			data:      cert,
			invalid:   events.IdPCertificateExpiring{OrganizationID: "acme", ConnectionID: "okta", FingerprintSHA256: "not hex", NotAfter: at, ThresholdDays: 7},
			checkData: dataIs(events.TypeIdPCertificateExpiring, cert, func(c *events.IdPCertificateExpiring) []*time.Time { return []*time.Time{&c.NotAfter} }),
		},
		{
			typ: events.TypeProvisioningFailed, subject: "login-1",
			data:      failed,
			invalid:   events.ProvisioningFailed{LoginID: "login-1", OrganizationID: "acme", ConnectionID: "okta", ExternalID: "00u1", Reason: "", Deliveries: 8, FailedAt: at},
			checkData: dataIs(events.TypeProvisioningFailed, failed, func(f *events.ProvisioningFailed) []*time.Time { return []*time.Time{&f.FailedAt} }),
		},
		{
			typ: events.TypeSignupHeld, subject: signup.UserID,
			data:      signup,
			invalid:   events.SignupHeld{OrganizationID: "acme", UserID: user.ID, ConnectionID: "okta", ExternalID: "00u1", Reason: events.ReasonSuspended, MaxSeats: 10, SeatsUsed: 10, LoginID: "l"},
			checkData: dataIs(events.TypeSignupHeld, signup, func(*events.SignupHeld) []*time.Time { return nil }),
		},
		{
			typ: events.TypeInactiveUsersSuspended, subject: "acme",
			data:    inactive,
			invalid: events.InactiveUsersSuspended{OrganizationID: "acme", InactiveAfterSeconds: 90 * 86400, Count: 0, Users: []events.InactiveUserSummary{}, SweptAt: at},
			checkData: dataIs(events.TypeInactiveUsersSuspended, inactive, func(d *events.InactiveUsersSuspended) []*time.Time {
				out := []*time.Time{&d.SweptAt}
				for i := range d.Users {
					out = append(out, &d.Users[i].LastSeenAt)
				}
				return out
			}),
		},
	}
}

// dataIs returns a check that DataAs[T] gives want: times (listed by times)
// must be the same instant to the microsecond (events.TimeLayout),
// everything else deeply equal.
func dataIs[T any](typ events.Type, want T, times func(*T) []*time.Time) func(*testing.T, events.Event) {
	return func(t *testing.T, ev events.Event) {
		t.Helper()
		got, err := events.DataAs[T](ev, typ)
		if err != nil {
			t.Fatalf("DataAs[%T]: %v", want, err)
		}
		w := want // a copy: its times are cleared below
		gotTimes, wantTimes := times(&got), times(&w)
		for i := range wantTimes {
			if !gotTimes[i].Equal(wantTimes[i].Truncate(time.Microsecond)) {
				t.Errorf("DataAs[%T]: time #%d = %v, want %v", want, i, *gotTimes[i], *wantTimes[i])
			}
			*gotTimes[i], *wantTimes[i] = time.Time{}, time.Time{}
		}
		if !reflect.DeepEqual(got, w) {
			t.Errorf("DataAs[%T] =\n%+v\nwant\n%+v", want, got, w)
		}
	}
}

func TestSamplesCoverEveryType(t *testing.T) {
	var got []events.Type
	for _, s := range samples() {
		got = append(got, s.typ)
	}
	if !reflect.DeepEqual(got, events.Types()) {
		t.Fatalf("samples cover %v, want every type of events.Types() %v", got, events.Types())
	}
}

func TestTypes(t *testing.T) {
	if events.SchemaBaseURL != schemas.BaseURL {
		t.Errorf("events.SchemaBaseURL = %q, schemas.BaseURL = %q: dataschema would not be a schema $id", events.SchemaBaseURL, schemas.BaseURL)
	}
	seen := map[events.Type]bool{}
	schemaOf := map[string]events.Type{}
	for _, typ := range events.Types() {
		t.Run(string(typ), func(t *testing.T) {
			if seen[typ] {
				t.Fatal("listed twice by Types()")
			}
			seen[typ] = true
			if !typ.Known() {
				t.Error("Known() = false")
			}
			// io.jitprov.<short>.v<N> has its schema at <short>/v<N>.json.
			short, version, ok := cutLast(strings.TrimPrefix(string(typ), "io.jitprov."), ".")
			if !ok || !strings.HasPrefix(string(typ), "io.jitprov.") {
				t.Fatalf("type %q is not io.jitprov.<name>.v<N>", typ)
			}
			if want := short + "/" + version + ".json"; typ.SchemaPath() != want {
				t.Errorf("SchemaPath() = %q, want %q", typ.SchemaPath(), want)
			}
			if _, err := fs.Stat(schemas.FS(), typ.SchemaPath()); err != nil {
				t.Errorf("schema %s is not embedded: %v", typ.SchemaPath(), err)
			}
			if want := schemas.BaseURL + typ.SchemaPath(); typ.SchemaURL() != want {
				t.Errorf("SchemaURL() = %q, want %q", typ.SchemaURL(), want)
			}
			if other, dup := schemaOf[typ.SchemaPath()]; dup {
				t.Errorf("shares schema %s with %s", typ.SchemaPath(), other)
			}
			schemaOf[typ.SchemaPath()] = typ
		})
	}
	// Every embedded schema belongs to a type.
	paths, err := fs.Glob(schemas.FS(), "*/*.json")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range paths {
		if _, ok := schemaOf[p]; !ok {
			t.Errorf("schema %s belongs to no type of events.Types()", p)
		}
	}
}

func cutLast(s, sep string) (before, after string, ok bool) {
	i := strings.LastIndex(s, sep)
	if i < 0 {
		return s, "", false
	}
	return s[:i], s[i+len(sep):], true
}

func TestUnknownType(t *testing.T) {
	for _, typ := range []events.Type{"", "io.jitprov.login.first-seen.v2", "io.jitprov.login.first-seen", "IO.JITPROV.LOGIN.FIRST-SEEN.V1", "com.example.thing.v1"} {
		t.Run(string(typ), func(t *testing.T) {
			if typ.Known() {
				t.Error("Known() = true")
			}
			if p := typ.SchemaPath(); p != "" {
				t.Errorf("SchemaPath() = %q, want \"\"", p)
			}
		})
	}
}

func TestNew(t *testing.T) {
	for _, s := range samples() {
		t.Run(string(s.typ), func(t *testing.T) {
			before := time.Now()
			ev, err := events.New(s.typ, source, s.subject, s.data)
			after := time.Now()
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			attrs := []struct{ name, got, want string }{
				{"specversion", ev.SpecVersion(), cloudevents.VersionV1},
				{"type", ev.Type(), string(s.typ)},
				{"source", ev.Source(), source},
				{"subject", ev.Subject(), s.subject},
				{"dataschema", ev.DataSchema(), s.typ.SchemaURL()},
				{"datacontenttype", ev.DataContentType(), "application/json"},
			}
			for _, a := range attrs {
				if a.got != a.want {
					t.Errorf("%s = %q, want %q", a.name, a.got, a.want)
				}
			}
			id, err := uuid.Parse(ev.ID())
			if err != nil {
				t.Fatalf("id %q is not a UUID: %v", ev.ID(), err)
			}
			if id.Version() != 7 || id.Variant() != uuid.RFC4122 {
				t.Errorf("id %s is version %d variant %v, want an RFC 4122 version 7 UUID", id, id.Version(), id.Variant())
			}
			if id.String() != ev.ID() {
				t.Errorf("id %q is not in canonical form %q", ev.ID(), id)
			}
			// Wall clocks have a coarser resolution on some systems.
			if ev.Time().Before(before.Add(-time.Second)) || ev.Time().After(after.Add(time.Second)) {
				t.Errorf("time = %v, want between %v and %v", ev.Time(), before, after)
			}
			assertJSONEqual(t, ev.Data(), s.data)
			if err := ev.Validate(); err != nil {
				t.Errorf("event is not a valid CloudEvent: %v", err)
			}
			s.checkData(t, ev)
		})
	}
}

// assertJSONEqual checks that raw is the JSON encoding of v, up to
// formatting.
func assertJSONEqual(t *testing.T, raw []byte, v any) {
	t.Helper()
	want, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var g, w any
	if err := json.Unmarshal(raw, &g); err != nil {
		t.Fatalf("data %q is not JSON: %v", raw, err)
	}
	if err := json.Unmarshal(want, &w); err != nil {
		t.Fatal(err)
	}
	// Times are written in events.TimeLayout, not as encoding/json writes
	// time.Time.
	w = wireTimes(t, w, false)
	g = wireTimes(t, g, true)
	if !reflect.DeepEqual(g, w) {
		t.Errorf("data = %s, want %s", raw, want)
	}
}

// wireTimes returns v (decoded JSON) with every string that is an RFC 3339
// time rewritten in events.TimeLayout; with strict, it reports those not
// already written so.
func wireTimes(t *testing.T, v any, strict bool) any {
	t.Helper()
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			x[k] = wireTimes(t, e, strict)
		}
	case []any:
		for i, e := range x {
			x[i] = wireTimes(t, e, strict)
		}
	case string:
		at, err := time.Parse(time.RFC3339Nano, x)
		if err != nil {
			return x
		}
		fixed := at.UTC().Format(events.TimeLayout)
		if strict && fixed != x {
			t.Errorf("time %q in data, want fixed-width %q", x, fixed)
		}
		return fixed
	}
	return v
}

func TestNewRejectsDataBreakingTheSchema(t *testing.T) {
	for _, s := range samples() {
		t.Run(string(s.typ), func(t *testing.T) {
			_, err := events.New(s.typ, source, s.subject, s.invalid)
			if !errors.Is(err, events.ErrInvalid) {
				t.Fatalf("New = %v, want an error wrapping ErrInvalid", err)
			}
		})
	}
}

func TestNewRejects(t *testing.T) {
	login := samples()[0].data
	at := time.Date(2025, 3, 4, 5, 6, 7, 0, time.UTC)
	for _, tc := range []struct {
		name    string
		id      string
		typ     events.Type
		source  string
		data    any
		invalid bool // the error wraps ErrInvalid
	}{
		{"unknown type", "id-1", "io.jitprov.login.first-seen.v9", source, login, true},
		{"empty type", "id-1", "", source, login, true},
		{"data of another type", "id-1", events.TypeUserCreated, source, login, true},
		{"nil data", "id-1", events.TypeLoginFirstSeen, source, nil, true},
		{"data not an object", "id-1", events.TypeLoginFirstSeen, source, "acme", true},
		{"empty id", "", events.TypeLoginFirstSeen, source, login, true},
		{"empty source", "id-1", events.TypeLoginFirstSeen, "", login, true},
		{"data not encodable", "id-1", events.TypeLoginFirstSeen, source, map[string]any{"f": func() {}}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := events.NewWithID(tc.id, tc.typ, tc.source, "", at, tc.data)
			if err == nil {
				t.Fatal("NewWithID succeeded")
			}
			if tc.invalid && !errors.Is(err, events.ErrInvalid) {
				t.Fatalf("NewWithID = %v, want an error wrapping ErrInvalid", err)
			}
		})
	}
}

func TestNewWithID(t *testing.T) {
	at := time.Date(2025, 3, 4, 5, 6, 7, 890, time.UTC)
	ev, err := events.NewWithID("reply-to-0192f3a4", events.TypeLoginFirstSeen, source, "", at, samples()[0].data)
	if err != nil {
		t.Fatal(err)
	}
	if ev.ID() != "reply-to-0192f3a4" {
		t.Errorf("id = %q, want the given id", ev.ID())
	}
	if !ev.Time().Equal(at) {
		t.Errorf("time = %v, want %v", ev.Time(), at)
	}
	if ev.Subject() != "" {
		t.Errorf("subject = %q, want none", ev.Subject())
	}
	if ev.DataSchema() != events.TypeLoginFirstSeen.SchemaURL() {
		t.Errorf("dataschema = %q", ev.DataSchema())
	}
}

// TestNewIDsSortByTime checks the documented promise that ids sort by time.
func TestNewIDsSortByTime(t *testing.T) {
	data := samples()[0].data
	prev := ""
	for i := range 200 {
		ev, err := events.New(events.TypeLoginFirstSeen, source, "", data)
		if err != nil {
			t.Fatal(err)
		}
		if ev.ID() <= prev {
			t.Fatalf("id #%d %q does not sort after %q", i, ev.ID(), prev)
		}
		prev = ev.ID()
	}
}

func TestSubject(t *testing.T) {
	for _, tc := range []struct {
		typ  events.Type
		org  string
		want string
	}{
		{events.TypeLoginFirstSeen, "acme", "jit.login.first-seen.acme"},
		{events.TypeLoginSeen, "acme", "jit.login.seen.acme"},
		{events.TypeUserCreated, "acme", "jit.user.created.acme"},
		{events.TypeUserUpdated, "acme", "jit.user.updated.acme"},
		{events.TypeUserIdentityLinked, "acme", "jit.user.identity-linked.acme"},
		{events.TypeUserIdentityUnlinked, "acme", "jit.user.identity-unlinked.acme"},
		{events.TypeUserSuspended, "acme", "jit.user.suspended.acme"},
		{events.TypeUserReactivated, "acme", "jit.user.reactivated.acme"},
		{events.TypeUserDeprovisioned, "acme", "jit.user.deprovisioned.acme"},
		{events.TypeUserRoleChanged, "acme", "jit.user.role-changed.acme"},
		{events.TypeSeatsExhausted, "acme", "jit.alert.seats.exhausted.acme"},
		{events.TypeRoleReviewRequested, "acme", "jit.alert.role-review.requested.acme"},
		{events.TypeRoleReviewDecided, "acme", "jit.alert.role-review.decided.acme"},
		{events.TypeSeatsThresholdReached, "acme", "jit.alert.seats.threshold-reached.acme"},
		{events.TypeIdPCertificateExpiring, "acme", "jit.alert.idp-certificate.expiring.acme"},
		{events.TypeProvisioningFailed, "acme", "jit.alert.provisioning.failed.acme"},
		{events.TypeLoginFirstSeen, "a", "jit.login.first-seen.a"},
		{events.TypeLoginFirstSeen, "0", "jit.login.first-seen.0"},
		{events.TypeLoginFirstSeen, "acme-corp_2", "jit.login.first-seen.acme-corp_2"},
		{events.TypeLoginFirstSeen, strings.Repeat("a", 63), "jit.login.first-seen." + strings.Repeat("a", 63)},
	} {
		t.Run(string(tc.typ)+"/"+tc.org, func(t *testing.T) {
			got, err := events.Subject(tc.typ, tc.org)
			if err != nil {
				t.Fatalf("Subject: %v", err)
			}
			if got != tc.want {
				t.Errorf("Subject = %q, want %q", got, tc.want)
			}
		})
	}
}

// SubjectFilter matches every organisation's subject of a type, and no
// other type's.
func TestSubjectFilter(t *testing.T) {
	for _, typ := range events.Types() {
		want, err := events.Subject(typ, "acme")
		got, ferr := events.SubjectFilter(typ)
		if err != nil {
			if ferr == nil {
				t.Errorf("SubjectFilter(%s) = %q, want an error as Subject gives", typ, got)
			}
			continue
		}
		if ferr != nil || got != strings.TrimSuffix(want, ".acme")+".*" {
			t.Errorf("SubjectFilter(%s) = %q, %v; want the subject of acme with '*' for the organisation", typ, got, ferr)
		}
	}
	if got, err := events.SubjectFilter("io.jitprov.nothing.v1"); err == nil {
		t.Errorf("SubjectFilter of an unknown type = %q, want an error", got)
	}
}

func TestSubjectErrors(t *testing.T) {
	type tc struct {
		name string
		typ  events.Type
		org  string
	}
	cases := []tc{
		{"provisioning result goes to a reply inbox", events.TypeProvisioningResult, "acme"},
		{"provisioning result v2 goes to a reply inbox", events.TypeProvisioningResultV2, "acme"},
		{"unknown type", "io.jitprov.login.first-seen.v2", "acme"},
		{"empty type", "", "acme"},
	}
	for _, org := range invalidOrgIDs {
		cases = append(cases, tc{"org " + org.why, events.TypeLoginFirstSeen, org.id})
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := events.Subject(c.typ, c.org)
			if err == nil {
				t.Fatalf("Subject(%q, %q) = %q, want an error", c.typ, c.org, got)
			}
			if got != "" {
				t.Errorf("Subject returned %q along with its error", got)
			}
		})
	}
}

var validOrgIDs = []string{"a", "0", "acme", "acme-corp", "acme_corp", "a-", "a_", "9lives", strings.Repeat("a", 63)}

var invalidOrgIDs = []struct{ why, id string }{
	{"empty", ""},
	{"upper case", "Acme"},
	{"dot splits the subject", "a.b"},
	{"wildcard *", "a*"},
	{"wildcard >", "a>"},
	{"bare wildcard", ">"},
	{"64 characters", strings.Repeat("a", 64)},
	{"leading dash", "-acme"},
	{"leading underscore", "_acme"},
	{"space", "ac me"},
	{"trailing newline", "acme\n"},
	{"leading newline", "\nacme"},
	{"tab", "ac\tme"},
	{"slash", "a/b"},
	{"non-ASCII", "acmé"},
	{"NUL", "acme\x00"},
}

// TestOrganizationIDAgreesWithSchemas checks that ValidOrganizationID and the
// organization_id pattern of the schemas accept the same ids: an event whose
// subject can be built must have data that validates, and vice versa.
func TestOrganizationIDAgreesWithSchemas(t *testing.T) {
	check := func(t *testing.T, id string, want bool) {
		if got := events.ValidOrganizationID(id); got != want {
			t.Errorf("ValidOrganizationID(%q) = %v, want %v", id, got, want)
		}
		data, err := json.Marshal(map[string]any{
			"organization_id": id, "connection_id": "c", "protocol": "saml",
			"external_id": "e", "email_verified": false, "authenticated_at": "2025-03-04T05:06:07Z",
		})
		if err != nil {
			t.Fatal(err)
		}
		err = schemas.Validate(events.TypeLoginFirstSeen.SchemaPath(), data)
		if got := err == nil; got != want {
			t.Errorf("schema accepts organization_id %q = %v, want %v (%v)", id, got, want, err)
		}
	}
	for _, id := range validOrgIDs {
		t.Run("valid/"+id, func(t *testing.T) { check(t, id, true) })
	}
	for _, org := range invalidOrgIDs {
		t.Run("invalid/"+org.why, func(t *testing.T) { check(t, org.id, false) })
	}
}

// TestSubjectsFallInStreams checks that every published subject is captured
// by the filter of its stream, and by no other stream's.
func TestSubjectsFallInStreams(t *testing.T) {
	streams := append(events.LoginSubjects(), events.SubjectUsers, events.SubjectAlerts)
	for _, tc := range []struct {
		typ     events.Type
		filters []string
	}{
		{events.TypeLoginFirstSeen, []string{events.SubjectLoginFirstSeenAll}},
		{events.TypeLoginSeen, []string{events.SubjectLoginSeenAll}},
		{events.TypeUserCreated, []string{events.SubjectUsers}},
		{events.TypeUserUpdated, []string{events.SubjectUsers}},
		{events.TypeUserIdentityLinked, []string{events.SubjectUsers}},
		{events.TypeUserIdentityUnlinked, []string{events.SubjectUsers}},
		{events.TypeUserSuspended, []string{events.SubjectUsers}},
		{events.TypeUserReactivated, []string{events.SubjectUsers}},
		{events.TypeUserDeprovisioned, []string{events.SubjectUsers}},
		{events.TypeUserRoleChanged, []string{events.SubjectUsers}},
		{events.TypeSeatsExhausted, []string{events.SubjectAlerts}},
		{events.TypeRoleReviewRequested, []string{events.SubjectAlerts}},
		{events.TypeRoleReviewDecided, []string{events.SubjectAlerts}},
		{events.TypeSeatsThresholdReached, []string{events.SubjectAlerts}},
		{events.TypeIdPCertificateExpiring, []string{events.SubjectAlerts}},
		{events.TypeProvisioningFailed, []string{events.SubjectAlerts}},
		{events.TypeSignupHeld, []string{events.SubjectAlerts}},
		{events.TypeInactiveUsersSuspended, []string{events.SubjectAlerts}},
	} {
		t.Run(string(tc.typ), func(t *testing.T) {
			subj, err := events.Subject(tc.typ, "acme")
			if err != nil {
				t.Fatal(err)
			}
			for _, f := range tc.filters {
				if !subjectMatches(f, subj) {
					t.Errorf("%s does not match filter %s", subj, f)
				}
			}
			n := 0
			for _, f := range streams {
				if subjectMatches(f, subj) {
					n++
				}
			}
			if n != 1 {
				t.Errorf("%s matches %d stream filters of %v, want 1", subj, n, streams)
			}
		})
	}
}

// subjectMatches reports whether a NATS subject matches filter, where "*"
// matches one token and a final ">" one or more.
func subjectMatches(filter, subject string) bool {
	f, s := strings.Split(filter, "."), strings.Split(subject, ".")
	for i, tok := range f {
		switch {
		case tok == ">" && i == len(f)-1:
			return len(s) > i
		case i >= len(s):
			return false
		case tok != "*" && tok != s[i]:
			return false
		}
	}
	return len(f) == len(s)
}

func TestSubjectMatches(t *testing.T) {
	for _, tc := range []struct {
		filter, subject string
		want            bool
	}{
		{"jit.login.>", "jit.login.first-seen.acme", true},
		{"jit.login.>", "jit.login", false},
		{"jit.login.>", "jit.user.created.acme", false},
		{"jit.*.created.acme", "jit.user.created.acme", true},
		{"jit.user.created.acme", "jit.user.created.acme", true},
		{"jit.user.created", "jit.user.created.acme", false},
	} {
		if got := subjectMatches(tc.filter, tc.subject); got != tc.want {
			t.Errorf("subjectMatches(%q, %q) = %v, want %v", tc.filter, tc.subject, got, tc.want)
		}
	}
}

// TestResultVersions: the provisioner answers v2 for held only, and
// consumers read either version.
func TestResultVersions(t *testing.T) {
	at := time.Date(2025, 3, 4, 5, 6, 7, 0, time.UTC)
	user := &events.UserRef{ID: "0192f3a4-5b6c-7d8e-9f01-23456789abcd", Role: "member", Status: "active"}
	held := &events.UserRef{ID: user.ID, Role: "member", Status: events.UserStatusHeld}
	for _, tc := range []struct {
		res  events.ProvisioningResult
		want events.Type
	}{
		{events.ProvisioningResult{LoginID: "l1", Outcome: events.OutcomeCreated, User: user, DecidedAt: at}, events.TypeProvisioningResult},
		{events.ProvisioningResult{LoginID: "l1", Outcome: events.OutcomeRejected, Reason: events.ReasonSeatsExhausted, DecidedAt: at}, events.TypeProvisioningResult},
		{events.ProvisioningResult{LoginID: "l1", Outcome: events.OutcomeHeld, Reason: events.ReasonSeatsExhausted, User: held, DecidedAt: at}, events.TypeProvisioningResultV2},
		{events.ProvisioningResult{LoginID: "l1", Outcome: events.OutcomeHeld, Reason: events.ReasonApprovalRequired, User: held, DecidedAt: at}, events.TypeProvisioningResultV2},
		// A held person's later login is refused... by v2, which can name the status.
		{events.ProvisioningResult{LoginID: "l1", Outcome: events.OutcomeExisting, User: held, DecidedAt: at}, events.TypeProvisioningResultV2},
	} {
		t.Run(string(tc.res.Outcome)+"/"+string(tc.res.Reason), func(t *testing.T) {
			typ := events.ResultType(tc.res)
			if typ != tc.want {
				t.Fatalf("ResultType = %s, want %s", typ, tc.want)
			}
			ev, err := events.New(typ, source, tc.res.LoginID, tc.res)
			if err != nil {
				t.Fatalf("New(%s): %v", typ, err)
			}
			got, err := events.ResultOf(ev)
			if err != nil {
				t.Fatalf("ResultOf: %v", err)
			}
			if got.Outcome != tc.res.Outcome || got.LoginID != tc.res.LoginID {
				t.Fatalf("ResultOf = %+v, want %+v", got, tc.res)
			}
			if typ == events.TypeProvisioningResultV2 {
				if _, err := events.New(events.TypeProvisioningResult, source, tc.res.LoginID, tc.res); err == nil {
					t.Error("v1 accepted an answer only v2 can say")
				}
			}
		})
	}
	other, err := events.New(events.TypeSeatsExhausted, source, "acme", events.SeatsExhausted{OrganizationID: "acme",
		ConnectionID: "c", ExternalID: "e", LoginID: "l"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := events.ResultOf(other); !errors.Is(err, events.ErrInvalid) {
		t.Errorf("ResultOf(seats.exhausted) = %v, want ErrInvalid", err)
	}
}
