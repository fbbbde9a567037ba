package devidp

import (
	"slices"
	"testing"
)

// TestPeople: the demo people show what dev mode needs to show.
func TestPeople(t *testing.T) {
	if err := checkPeople(People()); err != nil {
		t.Fatal(err)
	}
	ada, grace := personNamed(t, "ada"), personNamed(t, "grace")
	if ada.Email != "ada@demo.example" || slices.Contains(ada.Groups, AdminGroup) || ada.Organization != OrgDemo {
		t.Errorf("ada %+v: want an ordinary member of %s", ada, OrgDemo)
	}
	if grace.Email != "grace@demo.example" || !slices.Contains(grace.Groups, AdminGroup) || grace.Organization != OrgDemo {
		t.Errorf("grace %+v: want a member of %s in %s", grace, AdminGroup, OrgDemo)
	}
	if n := len(PeopleIn(OrgDemoSmall)); n < 4 {
		t.Errorf("%d people in %s, want at least 4 for its 3 seats", n, OrgDemoSmall)
	}
	// People returns a copy: a caller cannot change the next caller's.
	p := People()
	p[0].Groups[0] = "changed"
	if People()[0].Groups[0] == "changed" {
		t.Error("People shares its slices between calls")
	}
}
