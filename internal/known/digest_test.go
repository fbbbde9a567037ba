package known_test

import (
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/jitprov/jitprov/events"
	"github.com/jitprov/jitprov/internal/known"
)

func ada() events.Identity {
	return events.Identity{
		OrganizationID: "acme",
		ConnectionID:   "okta-main",
		Protocol:       events.ProtocolSAML,
		ExternalID:     "00u1a2b3c4d5e6f7g8h9",
		Email:          "ada@acme.example",
		EmailVerified:  true,
		GivenName:      "Ada",
		FamilyName:     "Lovelace",
		DisplayName:    "Ada Lovelace",
		Groups:         []string{"engineering", "analytical-engines", "all-staff"},
		Roles:          []string{"member", "billing"},
		Attributes: map[string][]string{
			"department":  {"R&D"},
			"cost_center": {"42", "7"},
			"employee_id": {"E-1815"},
		},
		AuthenticatedAt: time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC),
	}
}

func edit(f func(*events.Identity)) events.Identity {
	id := ada()
	id.Attributes = maps.Clone(id.Attributes)
	f(&id)
	return id
}

// TestDigestStable: the same claims in another order, or differing only in
// what does not matter, give the same digest.
func TestDigestStable(t *testing.T) {
	want := known.Digest(ada())
	for _, tc := range []struct {
		name string
		id   events.Identity
	}{
		{"identical", ada()},
		{"groups reordered", edit(func(id *events.Identity) { id.Groups = []string{"all-staff", "engineering", "analytical-engines"} })},
		{"roles reordered", edit(func(id *events.Identity) { id.Roles = []string{"billing", "member"} })},
		{"attribute values reordered", edit(func(id *events.Identity) { id.Attributes["cost_center"] = []string{"7", "42"} })},
		{"attributes rebuilt in another insertion order", edit(func(id *events.Identity) {
			m := map[string][]string{}
			for _, k := range slices.Backward(slices.Sorted(maps.Keys(id.Attributes))) {
				m[k] = id.Attributes[k]
			}
			id.Attributes = m
		})},
		{"authenticated at another time", edit(func(id *events.Identity) { id.AuthenticatedAt = id.AuthenticatedAt.Add(72 * time.Hour) })},
		{"other protocol", edit(func(id *events.Identity) { id.Protocol = events.ProtocolOIDC })},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := known.Digest(tc.id); got != want {
				t.Fatalf("Digest = %s, want %s", got, want)
			}
		})
	}
	t.Run("input not modified", func(t *testing.T) {
		id := ada()
		known.Digest(id)
		if !slices.Equal(id.Groups, ada().Groups) || !slices.Equal(id.Attributes["cost_center"], []string{"42", "7"}) {
			t.Fatal("Digest sorted the caller's slices")
		}
	})
	t.Run("nil and empty lists", func(t *testing.T) {
		a, b := ada(), ada()
		a.Groups, a.Roles, a.Attributes = nil, nil, nil
		b.Groups, b.Roles, b.Attributes = []string{}, []string{}, map[string][]string{}
		if known.Digest(a) != known.Digest(b) {
			t.Fatal("nil and empty lists differ")
		}
	})
}

// TestDigestSensitive: every claim that matters changes the digest,
// including values moved across field boundaries.
func TestDigestSensitive(t *testing.T) {
	base := known.Digest(ada())
	seen := map[string]string{base: "base"}
	for _, tc := range []struct {
		name string
		id   events.Identity
	}{
		{"organisation", edit(func(id *events.Identity) { id.OrganizationID = "globex" })},
		{"connection", edit(func(id *events.Identity) { id.ConnectionID = "entra" })},
		{"external id", edit(func(id *events.Identity) { id.ExternalID = "00u1a2b3c4d5e6f7g8h0" })},
		{"email", edit(func(id *events.Identity) { id.Email = "ada.lovelace@acme.example" })},
		{"email case", edit(func(id *events.Identity) { id.Email = "Ada@acme.example" })},
		{"email verified", edit(func(id *events.Identity) { id.EmailVerified = false })},
		{"given name", edit(func(id *events.Identity) { id.GivenName = "Augusta" })},
		{"family name", edit(func(id *events.Identity) { id.FamilyName = "King" })},
		{"display name", edit(func(id *events.Identity) { id.DisplayName = "Countess of Lovelace" })},
		{"group removed", edit(func(id *events.Identity) { id.Groups = []string{"engineering", "all-staff"} })},
		{"group added", edit(func(id *events.Identity) { id.Groups = append(slices.Clone(id.Groups), "admins") })},
		{"group renamed", edit(func(id *events.Identity) { id.Groups = []string{"engineering", "analytical-engines", "all-staf"} })},
		{"group duplicated", edit(func(id *events.Identity) { id.Groups = append(slices.Clone(id.Groups), "all-staff") })},
		{"groups joined", edit(func(id *events.Identity) { id.Groups = []string{"engineering,analytical-engines", "all-staff"} })},
		{"role removed", edit(func(id *events.Identity) { id.Roles = []string{"member"} })},
		{"role added", edit(func(id *events.Identity) { id.Roles = []string{"member", "billing", "admin"} })},
		{"role moved to groups", edit(func(id *events.Identity) {
			id.Roles = []string{"member"}
			id.Groups = append(slices.Clone(id.Groups), "billing")
		})},
		{"attribute value changed", edit(func(id *events.Identity) { id.Attributes["department"] = []string{"Sales"} })},
		{"attribute value added", edit(func(id *events.Identity) { id.Attributes["cost_center"] = []string{"42", "7", "9"} })},
		{"attribute removed", edit(func(id *events.Identity) { delete(id.Attributes, "employee_id") })},
		{"attribute renamed", edit(func(id *events.Identity) {
			id.Attributes["employee_number"] = id.Attributes["employee_id"]
			delete(id.Attributes, "employee_id")
		})},
		{"attribute with an empty value", edit(func(id *events.Identity) { id.Attributes["extra"] = nil })},
		{"attribute value moved to another attribute", edit(func(id *events.Identity) {
			id.Attributes["cost_center"] = []string{"42"}
			id.Attributes["department"] = []string{"R&D", "7"}
		})},
		{"text moved between names", edit(func(id *events.Identity) { id.GivenName, id.FamilyName = "AdaL", "ovelace" })},
		{"text moved between name and email", edit(func(id *events.Identity) { id.Email, id.GivenName = "ada@acme.exampleAda", "" })},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := known.Digest(tc.id)
			if prev, dup := seen[got]; dup {
				t.Fatalf("Digest equals that of %q", prev)
			}
			seen[got] = tc.name
		})
	}
}

// TestDigestGolden pins the canonical form: records written by one version
// stay fresh under the next. Change it only with a new digestDomain. The
// value was cross-checked with an independent (Python) implementation of
// the form documented on Digest.
func TestDigestGolden(t *testing.T) {
	const want = "d7c622f1699e89397aa734bf34e554a53c6d5949bfc3d98a5923682dc058e5a5"
	if got := known.Digest(ada()); got != want {
		t.Fatalf("Digest(ada) = %s, want %s", got, want)
	}
}
