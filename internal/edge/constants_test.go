package edge_test

import (
	"context"
	"net/http"
	"reflect"
	"slices"
	"testing"

	"github.com/crewjam/saml"
)

// A connection's constants reach the provisioner in the login's identity,
// as mapped values do: the user created at a first login through a SAML
// and an OIDC connection with constants {department: Contractors,
// given_name: Temp, groups: [contractors]} is stored with them. The
// constant is the value: the department and given name the IdP sends are
// ignored; its other attributes are kept.
func TestConstantsReachTheStoredUser(t *testing.T) {
	constants := map[string]any{"department": "Contractors", "given_name": "Temp", "groups": []string{"contractors"}}
	w := newWorld(t, 10, true, withSAMLSettings(func(s map[string]any) { s["constants"] = constants }))
	o := addOIDCConnection(t, w, zitOPConfig{constants: constants})

	ada := person("00u-ada", "ada@acme.example", "eng")
	ada.CustomAttributes = append(ada.CustomAttributes,
		saml.Attribute{Name: "department", Values: values([]string{"Research"})},
		saml.Attribute{Name: "title", Values: values([]string{"Engineer"})})
	w.idp.signsIn(ada)
	b := newBrowser(t)
	if resp, _ := login(t, b, w.edgeURL, "/"); resp.Status != http.StatusSeeOther {
		t.Fatalf("SAML login: %d %s", resp.Status, resp.Body)
	}
	_, samlUser := verify(t, b, w.edgeURL)

	b = newBrowser(t)
	if resp := b.Get(oidcStartLogin(t, b, w, o, "/")); resp.Status != http.StatusSeeOther {
		t.Fatalf("OIDC login: %d %s", resp.Status, resp.Body)
	}
	_, oidcUser := verify(t, b, w.edgeURL)

	for _, tt := range []struct {
		protocol, userID string
		family           string
		attributes       map[string][]string
	}{
		{"saml", samlUser, "", map[string][]string{
			"department": {"Contractors"}, "title": {"Engineer"},
			"email": {"ada@acme.example"}, "givenName": {"Given"}, "groups": {"eng"},
		}},
		{"oidc", oidcUser, "Zitadel", map[string][]string{"department": {"Contractors"}}},
	} {
		if tt.userID == "" {
			t.Errorf("%s: nobody signed in", tt.protocol)
			continue
		}
		u, err := w.store.User(context.Background(), "acme", tt.userID)
		if err != nil {
			t.Fatalf("%s: %v", tt.protocol, err)
		}
		if u.GivenName != "Temp" || u.FamilyName != tt.family {
			t.Errorf("%s: stored names %q %q, want the constant given name Temp and the IdP's family name %q", tt.protocol, u.GivenName, u.FamilyName, tt.family)
		}
		if !reflect.DeepEqual(u.Attributes, tt.attributes) {
			t.Errorf("%s: stored attributes %v, want %v", tt.protocol, u.Attributes, tt.attributes)
		}
		if !slices.Contains(u.Groups, "contractors") {
			t.Errorf("%s: stored groups %v lack the constant group", tt.protocol, u.Groups)
		}
	}
}
