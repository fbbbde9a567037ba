package edge

import (
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/crewjam/saml"

	"github.com/jitprov/jitprov/internal/connection"
	"github.com/jitprov/jitprov/internal/edge/samlsp"
	"github.com/jitprov/jitprov/internal/store"
)

func TestSAMLIdentityMapping(t *testing.T) {
	conn := &samlConn{org: store.Organization{ID: "acme"}, id: "okta", settings: connection.SAML{
		Attributes: connection.Attributes{Email: connection.NameIDSource, GivenName: "givenName", Groups: "groups", Roles: "role"},
		ExternalID: connection.ExternalID{Attribute: "employeeNumber"}, EmailVerified: true,
		GroupRoles: []connection.GroupRole{{Group: "leads", Role: "manager"}},
		Constants:  connection.Constants{Groups: []string{"from-okta"}, Roles: []string{"member"}},
	}}
	a := &samlsp.Assertion{NameID: "ann@acme.example", NameIDFormat: string(saml.EmailAddressNameIDFormat), AuthnInstant: time.Now(),
		Attributes: map[string][]string{
			"employeeNumber": {"E-1"}, "givenName": {"Ann"}, "groups": {"leads", "eng"}, "role": {"viewer"},
			"huge": {strings.Repeat("x", maxValueLen+1)},
		}}
	id, err := samlIdentity(conn, a, slog.New(slog.DiscardHandler))
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
	conn.settings.Attributes.Email = "givenName"
	if id, _ := samlIdentity(conn, a, slog.New(slog.DiscardHandler)); id.Email != "" || id.EmailVerified {
		t.Errorf("email %q verified %t from a non-address", id.Email, id.EmailVerified)
	}
	// Without the configured id attribute there is no identity.
	delete(a.Attributes, "employeeNumber")
	if _, err := samlIdentity(conn, a, slog.New(slog.DiscardHandler)); err == nil {
		t.Error("mapped an assertion without its external id attribute")
	}
}
