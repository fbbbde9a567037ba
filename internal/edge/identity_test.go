package edge

import (
	"fmt"
	"log/slog"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/crewjam/saml"

	"github.com/jitprov/jitprov/internal/connection"
	"github.com/jitprov/jitprov/internal/edge/oidcrp"
	"github.com/jitprov/jitprov/internal/edge/samlsp"
	"github.com/jitprov/jitprov/internal/store"
)

func TestSAMLIdentityMapping(t *testing.T) {
	c := &conn{org: store.Organization{ID: "acme"}, id: "okta", saml: &samlSide{settings: connection.SAML{
		Attributes: connection.Attributes{Email: connection.NameIDSource, GivenName: "givenName", Groups: "groups", Roles: "role"},
		ExternalID: connection.ExternalID{Attribute: "employeeNumber"}, EmailVerified: true,
		GroupRoles: []connection.GroupRole{{Group: "leads", Role: "manager"}},
		Constants:  connection.Constants{Groups: []string{"from-okta"}, Roles: []string{"member"}},
	}}}
	a := &samlsp.Assertion{NameID: "ann@acme.example", NameIDFormat: string(saml.EmailAddressNameIDFormat), AuthnInstant: time.Now(),
		Attributes: map[string][]string{
			"employeeNumber": {"E-1"}, "givenName": {"Ann"}, "groups": {"leads", "eng"}, "role": {"viewer"},
			"huge": {strings.Repeat("x", maxValueLen+1)},
		}}
	id, err := samlIdentity(c, a, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if id.ExternalID != "E-1" || id.Email != "ann@acme.example" || !id.EmailVerified || id.GivenName != "Ann" {
		t.Errorf("got %+v", id)
	}
	if !slices.Equal(id.Groups, []string{"leads", "eng", "from-okta"}) {
		t.Errorf("groups %v", id.Groups)
	}
	if !slices.Equal(id.Roles, []string{"viewer", "member", "manager"}) {
		t.Errorf("roles %v, want the attribute's, the constant and the group rule's", id.Roles)
	}
	if _, ok := id.Attributes["huge"]; ok {
		t.Error("an attribute too large for the login event was kept")
	}

	// An email that is not an address is dropped, not passed on.
	c.saml.settings.Attributes.Email = "givenName"
	if id, _ := samlIdentity(c, a, slog.New(slog.DiscardHandler)); id.Email != "" || id.EmailVerified {
		t.Errorf("email %q verified %t from a non-address", id.Email, id.EmailVerified)
	}
	// Without the configured id attribute there is no identity.
	delete(a.Attributes, "employeeNumber")
	if _, err := samlIdentity(c, a, slog.New(slog.DiscardHandler)); err == nil {
		t.Error("mapped an assertion without its external id attribute")
	}
}

func TestOIDCIdentityMapping(t *testing.T) {
	c := &conn{org: store.Organization{ID: "acme"}, id: "kc", oidc: &oidcSide{settings: connection.OIDC{
		Claims:     connection.Claims{Roles: "realm_access.roles", Groups: "groups", DisplayName: "preferred_username"},
		GroupRoles: []connection.GroupRole{{Group: "leads", Role: "manager"}},
		Constants:  connection.Constants{Roles: []string{"member"}},
	}}}
	cl := &oidcrp.Claims{Subject: "sub-1", Email: "ann@acme.example", EmailVerified: true, Raw: map[string]any{
		"given_name": "Ann", "preferred_username": "ann", "groups": []any{"leads", "eng"},
		"realm_access": map[string]any{"roles": []any{"viewer"}},
	}}
	id, err := oidcIdentity(c, cl, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if id.ExternalID != "sub-1" || id.Protocol != "oidc" || id.Email != "ann@acme.example" || !id.EmailVerified ||
		id.GivenName != "Ann" || id.DisplayName != "ann" {
		t.Errorf("got %+v", id)
	}
	if !slices.Equal(id.Roles, []string{"viewer", "member", "manager"}) || !slices.Equal(id.Groups, []string{"leads", "eng"}) {
		t.Errorf("roles %v groups %v", id.Roles, id.Groups)
	}
	// An email_verified claim mapped elsewhere, and a provider calling a
	// non-address an email.
	c.oidc.settings.Claims.EmailVerified = "mail_ok"
	cl.Raw["mail_ok"] = false
	if id, _ := oidcIdentity(c, cl, slog.New(slog.DiscardHandler)); id.EmailVerified {
		t.Error("email_verified did not follow the mapped claim")
	}
	cl.Email = "not an address"
	if id, _ := oidcIdentity(c, cl, slog.New(slog.DiscardHandler)); id.Email != "" {
		t.Errorf("kept email %q", id.Email)
	}
}

// The standard email_verified speaks of the standard email claim only: a
// connection that maps its email from another claim (a username a person
// may set to someone else's address) gets it verified only from a mapped
// email_verified, or where the two claims are the same address.
func TestOIDCMappedEmailVerification(t *testing.T) {
	for _, tt := range []struct {
		name         string
		claims       connection.Claims
		raw          map[string]any
		wantEmail    string
		wantVerified bool
	}{
		{"standard email, verified", connection.Claims{},
			map[string]any{"email": "ann@acme.example", "email_verified": true}, "ann@acme.example", true},
		{"mapped username that is someone else's address", connection.Claims{Email: "preferred_username"},
			map[string]any{"email": "mallory@acme.example", "email_verified": true, "preferred_username": "ceo@acme.example"}, "ceo@acme.example", false},
		{"mapped claim equal to the verified email", connection.Claims{Email: "upn"},
			map[string]any{"email": "ann@acme.example", "email_verified": true, "upn": "ann@acme.example"}, "ann@acme.example", true},
		{"mapped claim with its own verification", connection.Claims{Email: "upn", EmailVerified: "upn_verified"},
			map[string]any{"upn": "ann@acme.example", "upn_verified": true}, "ann@acme.example", true},
		{"mapped claim, no email claim at all", connection.Claims{Email: "upn"},
			map[string]any{"email_verified": true, "upn": "ann@acme.example"}, "ann@acme.example", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := &conn{org: store.Organization{ID: "acme"}, id: "oidc", oidc: &oidcSide{settings: connection.OIDC{Claims: tt.claims}}}
			cl := &oidcrp.Claims{Subject: "sub-1", Raw: tt.raw}
			cl.Email, _ = tt.raw["email"].(string)
			cl.EmailVerified, _ = tt.raw["email_verified"].(bool)
			id, err := oidcIdentity(c, cl, slog.New(slog.DiscardHandler))
			if err != nil {
				t.Fatal(err)
			}
			if id.Email != tt.wantEmail || id.EmailVerified != tt.wantVerified {
				t.Errorf("got email %q verified %t, want %q verified %t", id.Email, id.EmailVerified, tt.wantEmail, tt.wantVerified)
			}
		})
	}
}

// A connection's constants reach the identity as mapped values do: the
// constant names and custom attributes replace what the IdP sent for
// them (the constant is the value), the IdP's other attributes are kept,
// and constant groups and roles are added to the IdP's.
func TestConstantsInTheIdentity(t *testing.T) {
	constants := connection.Constants{
		GivenName: "Temp", DisplayName: "Contractor", Groups: []string{"contractors"},
		Attributes: map[string][]string{"department": {"Contractors"}, "sites": {"Remote", "Berlin"}},
	}
	t.Run("saml", func(t *testing.T) {
		c := &conn{org: store.Organization{ID: "acme"}, id: "okta", saml: &samlSide{settings: connection.SAML{
			Attributes: connection.Attributes{Email: "mail", GivenName: "givenName", FamilyName: "sn", Groups: "groups"},
			Constants:  constants,
		}}}
		a := &samlsp.Assertion{NameID: "p-1", NameIDFormat: string(saml.PersistentNameIDFormat), AuthnInstant: time.Now(),
			Attributes: map[string][]string{
				"mail": {"ann@acme.example"}, "givenName": {"Ann"}, "sn": {"Smith"}, "groups": {"eng"},
				"department": {"Research"}, "title": {"Engineer"},
			}}
		id, err := samlIdentity(c, a, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		if id.GivenName != "Temp" || id.FamilyName != "Smith" || id.DisplayName != "Contractor" || id.Email != "ann@acme.example" {
			t.Errorf("names %q %q %q email %q, want the constants Temp and Contractor, the IdP's Smith and email", id.GivenName, id.FamilyName, id.DisplayName, id.Email)
		}
		want := map[string][]string{
			"department": {"Contractors"}, "sites": {"Remote", "Berlin"},
			"mail": {"ann@acme.example"}, "givenName": {"Ann"}, "sn": {"Smith"}, "groups": {"eng"}, "title": {"Engineer"},
		}
		if !reflect.DeepEqual(id.Attributes, want) {
			t.Errorf("attributes %v, want %v", id.Attributes, want)
		}
		if !slices.Equal(id.Groups, []string{"eng", "contractors"}) {
			t.Errorf("groups %v, want the IdP's and the constant", id.Groups)
		}
		// The constants are the connection's: another login's identity
		// does not share their slices.
		id.Attributes["sites"][0] = "changed"
		if constants.Attributes["sites"][0] != "Remote" {
			t.Error("the identity shares the connection's constant values")
		}
	})
	t.Run("oidc", func(t *testing.T) {
		c := &oidcSide{settings: connection.OIDC{Claims: connection.Claims{Groups: "groups"}, Constants: constants}}
		cl := &oidcrp.Claims{Subject: "sub-1", Email: "ann@acme.example", EmailVerified: true, Raw: map[string]any{
			"given_name": "Ann", "family_name": "Smith", "name": "Ann Smith", "groups": []any{"eng"}, "department": "Research",
		}}
		id, err := oidcIdentity(&conn{org: store.Organization{ID: "acme"}, id: "kc", oidc: c}, cl, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		if id.GivenName != "Temp" || id.FamilyName != "Smith" || id.DisplayName != "Contractor" || id.Email != "ann@acme.example" || !id.EmailVerified {
			t.Errorf("got %+v, want the constant given and display names, the provider's family name and email", id)
		}
		if want := constants.Attributes; !reflect.DeepEqual(id.Attributes, want) {
			t.Errorf("attributes %v, want the constants %v", id.Attributes, want)
		}
		if !slices.Equal(id.Groups, []string{"eng", "contractors"}) {
			t.Errorf("groups %v", id.Groups)
		}
	})
}

// The login contract carries 200 attributes: a connection's constant
// attributes always fit, the IdP's fill the rest.
func TestConstantAttributesKeepTheirRoom(t *testing.T) {
	raw := map[string][]string{}
	for i := range maxAttributes {
		raw[fmt.Sprintf("idp-%03d", i)] = []string{"v"}
	}
	constants := connection.Constants{Attributes: map[string][]string{"department": {"Contractors"}, "idp-000": {"constant"}}}
	c := &conn{org: store.Organization{ID: "acme"}, id: "okta", saml: &samlSide{settings: connection.SAML{Constants: constants}}}
	raw["id"] = []string{"E-1"}
	c.saml.settings.ExternalID.Attribute = "id"
	a := &samlsp.Assertion{NameID: "p-1", NameIDFormat: string(saml.PersistentNameIDFormat), AuthnInstant: time.Now(), Attributes: raw}
	id, err := samlIdentity(c, a, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("a login with constants and as many IdP attributes as the contract carries: %v", err)
	}
	if len(id.Attributes) != maxAttributes || id.Attributes["department"][0] != "Contractors" || id.Attributes["idp-000"][0] != "constant" {
		t.Errorf("%d attributes, department %v, idp-000 %v; want %d with the constants", len(id.Attributes), id.Attributes["department"], id.Attributes["idp-000"], maxAttributes)
	}
}

// A field a constant fills is not warned of as unmapped.
func TestConstantFieldsAreNotUnmapped(t *testing.T) {
	s := connection.SAML{Constants: connection.Constants{GivenName: "Temp", DisplayName: "Contractor"}}
	for _, f := range samlFields(s, &samlsp.Assertion{}) {
		if f.field == "given_name" || f.field == "display_name" {
			t.Errorf("SAML: %s is filled by a constant, but is checked for a mapping", f.field)
		}
	}
	o := connection.OIDC{Constants: connection.Constants{FamilyName: "Worker"}}
	var fields []string
	for _, f := range oidcFields(o, &oidcrp.Claims{}) {
		fields = append(fields, f.field)
	}
	if !slices.Equal(fields, []string{"email", "given_name", "display_name", "groups"}) {
		t.Errorf("OIDC fields checked for a mapping: %v, want all but family_name", fields)
	}
}
