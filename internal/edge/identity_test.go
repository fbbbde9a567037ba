package edge

import (
	"log/slog"
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
