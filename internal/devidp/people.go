package devidp

import (
	"fmt"
	"net/mail"
	"slices"
)

// The demo organisations the built-in people belong to, and the group
// whose members claim an administrator role (dev mode maps it to a role
// above the JIT ceiling, so such a login becomes a pending role review).
const (
	OrgDemo      = "demo"
	OrgDemoSmall = "demo-small"
	AdminGroup   = "demo-admins"
)

// Person is a demo person the development IdP can sign in as. The same
// person looks the same over SAML and OIDC.
type Person struct {
	// ID is the stable subject: the SAML NameID (format persistent) and
	// the OIDC sub claim.
	ID         string
	Email      string
	GivenName  string
	FamilyName string
	// Name is the display name (SAML attribute AttrDisplayName, OIDC claim
	// "name").
	Name   string
	Groups []string
	// Organization names the demo organisation the person is meant for;
	// a ServiceProvider or Client with Organization set offers only its
	// people.
	Organization string
	// Note says what signing in as the person shows, on the login page.
	Note string
}

// People returns the built-in demo people, a fresh copy on each call:
//   - demo: Ada (an ordinary member of engineering), Grace (also in
//     AdminGroup, so her login claims the admin role) and Olivia, whom
//     dev mode's organisations file names as demo's initial admin (the
//     one who signs in to the admin console);
//   - demo-small: four people for an organisation of three seats, so the
//     fourth to sign in is turned away.
func People() []Person {
	return []Person{
		{ID: "ada", Email: "ada@demo.example", GivenName: "Ada", FamilyName: "Lovelace", Name: "Ada Lovelace",
			Groups: []string{"engineering"}, Organization: OrgDemo,
			Note: "An ordinary member: gets the organisation's default role."},
		{ID: "grace", Email: "grace@demo.example", GivenName: "Grace", FamilyName: "Hopper", Name: "Grace Hopper",
			Groups: []string{"engineering", AdminGroup}, Organization: OrgDemo,
			Note: "In " + AdminGroup + ": claims the admin role, above the JIT ceiling, so an admin must review it."},
		{ID: "olivia", Email: "olivia@demo.example", GivenName: "Olivia", FamilyName: "Operator", Name: "Olivia Operator",
			Groups: []string{"operations"}, Organization: OrgDemo,
			Note: "Demo's initial admin (initial_admins in the organisations file): her first sign-in makes her admin, for the admin console."},
		{ID: "alan", Email: "alan@small.example", GivenName: "Alan", FamilyName: "Turing", Name: "Alan Turing",
			Groups: []string{"staff"}, Organization: OrgDemoSmall,
			Note: "demo-small has 3 seats: the first three people to sign in get one."},
		{ID: "barbara", Email: "barbara@small.example", GivenName: "Barbara", FamilyName: "Liskov", Name: "Barbara Liskov",
			Groups: []string{"staff"}, Organization: OrgDemoSmall,
			Note: "demo-small has 3 seats: the first three people to sign in get one."},
		{ID: "edsger", Email: "edsger@small.example", GivenName: "Edsger", FamilyName: "Dijkstra", Name: "Edsger Dijkstra",
			Groups: []string{"staff"}, Organization: OrgDemoSmall,
			Note: "demo-small has 3 seats: the first three people to sign in get one."},
		{ID: "katherine", Email: "katherine@small.example", GivenName: "Katherine", FamilyName: "Johnson", Name: "Katherine Johnson",
			Groups: []string{"staff"}, Organization: OrgDemoSmall,
			Note: "demo-small has 3 seats: whoever signs in fourth is turned away."},
	}
}

// PeopleIn returns the people of People() meant for the organisation org.
func PeopleIn(org string) []Person {
	return slices.DeleteFunc(People(), func(p Person) bool { return p.Organization != org })
}

// checkPeople validates a people list: ids and emails unique, emails
// valid, a name to show on the login page.
func checkPeople(people []Person) error {
	ids, emails := map[string]bool{}, map[string]bool{}
	for i, p := range people {
		switch {
		case p.ID == "":
			return fmt.Errorf("person %d: empty ID", i)
		case ids[p.ID]:
			return fmt.Errorf("person %q: ID listed twice", p.ID)
		case emails[p.Email]:
			return fmt.Errorf("person %q: email %q listed twice", p.ID, p.Email)
		case p.Name == "":
			return fmt.Errorf("person %q: empty Name", p.ID)
		}
		if a, err := mail.ParseAddress(p.Email); err != nil || a.Address != p.Email {
			return fmt.Errorf("person %q: %q is not an email address", p.ID, p.Email)
		}
		ids[p.ID], emails[p.Email] = true, true
	}
	return nil
}

// clonePeople copies people deeply.
func clonePeople(people []Person) []Person {
	out := slices.Clone(people)
	for i := range out {
		out[i].Groups = slices.Clone(out[i].Groups)
	}
	return out
}

// offered returns the people of all in org ("" means everyone).
func offered(all []Person, org string) []Person {
	if org == "" {
		return all
	}
	return slices.DeleteFunc(slices.Clone(all), func(p Person) bool { return p.Organization != org })
}

// find returns the person of list with id.
func find(list []Person, id string) (Person, bool) {
	i := slices.IndexFunc(list, func(p Person) bool { return p.ID == id })
	if i < 0 {
		return Person{}, false
	}
	return list[i], true
}
