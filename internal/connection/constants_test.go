package connection

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

// Constants are written flat: groups and roles, the three names, and any
// other name a custom attribute of one value or several.
func TestDecodeConstants(t *testing.T) {
	for _, tt := range []struct {
		name     string
		settings string
		want     Constants
	}{
		{"none", `{"idp_metadata_url":"https://idp.example/md"}`, Constants{}},
		{"null", `{"constants":null}`, Constants{}},
		{"groups and roles", `{"constants":{"groups":["contractors"],"roles":["member"]}}`,
			Constants{Groups: []string{"contractors"}, Roles: []string{"member"}}},
		// As the other settings' keys, and as before custom attributes.
		{"groups written differently", `{"constants":{"Groups":["contractors"],"ROLES":["member"]}}`,
			Constants{Groups: []string{"contractors"}, Roles: []string{"member"}}},
		{"names", `{"constants":{"given_name":"Temp","family_name":"Worker","display_name":"Temp Worker"}}`,
			Constants{GivenName: "Temp", FamilyName: "Worker", DisplayName: "Temp Worker"}},
		{"custom attributes", `{"constants":{"department":"Contractors","costCenters":["C-1","C-2"],"http://schemas.example/claims/site":"Remote"}}`,
			Constants{Attributes: map[string][]string{"department": {"Contractors"}, "costCenters": {"C-1", "C-2"},
				"http://schemas.example/claims/site": {"Remote"}}}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s, err := DecodeSAML([]byte(tt.settings))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(s.Constants, tt.want) {
				t.Errorf("got %+v, want %+v", s.Constants, tt.want)
			}
			// Written back as it was read.
			out, err := json.Marshal(s.Constants)
			if err != nil {
				t.Fatal(err)
			}
			var back Constants
			if err := json.Unmarshal(out, &back); err != nil {
				t.Fatalf("%s: %v", out, err)
			}
			if !reflect.DeepEqual(back, tt.want) {
				t.Errorf("round trip through %s: got %+v, want %+v", out, back, tt.want)
			}
		})
	}
}

// Each value of the wrong type is a problem of its own, at its path,
// saying what the key takes.
func TestConstantsTypeProblems(t *testing.T) {
	for _, tt := range []struct {
		name      string
		constants string
		want      []string // "field: message", each as a prefix of one problem in order
	}{
		{"not a mapping", `["Contractors"]`, []string{"constants: expected a mapping of constant values, e.g. constants: {department: Contractors, groups: [contractors]}, got a list"}},
		{"number", `{"department":42}`, []string{`constants.department: expected a string or a list of strings, got 42 (quote it, "42", if that text is meant)`}},
		{"boolean", `{"contractor":true}`, []string{`constants.contractor: expected a string or a list of strings, got true (quote it, "true", if that text is meant)`}},
		{"mapping", `{"department":{"name":"x"}}`, []string{"constants.department: expected a string or a list of strings, got a mapping"}},
		{"nested attributes", `{"attributes":{"department":"x"}}`,
			[]string{"constants.attributes: expected a string or a list of strings, got a mapping; custom attributes are written directly under constants, e.g. constants: {department: Contractors}"}},
		{"list item not a string", `{"sites":["A",3,null,""]}`, []string{
			"constants.sites[1]: expected a string, got 3", "constants.sites[2]: an empty value", "constants.sites[3]: an empty value"}},
		{"empty list", `{"sites":[]}`, []string{"constants.sites: an empty list: give at least one value, or remove the key"}},
		{"empty value", `{"department":""}`, []string{"constants.department: empty: give the value"}},
		{"null value", `{"department":null}`, []string{"constants.department: empty: give the value"}},
		{"name as a list", `{"given_name":["A","B"]}`, []string{"constants.given_name: expected a string, got a list; a name is one value"}},
		{"name as a number", `{"family_name":7}`, []string{`constants.family_name: expected a string, got 7 (quote it, "7", if that text is meant)`}},
		{"empty name", `{"display_name":""}`, []string{"constants.display_name: empty: a constant sets the value of every login; remove the key to keep what the IdP sends"}},
		{"groups as a string", `{"groups":"contractors"}`, []string{`constants.groups: expected a list of strings, got "contractors"`}},
		{"groups twice", `{"groups":["a"],"Groups":["b"]}`, []string{`constants.Groups: "Groups" is groups written differently, and groups is given too; keep one`}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, problems := CheckSAML([]byte(`{"idp_metadata_url":"https://idp.example/md","constants":`+tt.constants+`}`), []string{"viewer", "member", "admin"})
			if len(problems) != len(tt.want) {
				t.Fatalf("got %d problems %v, want %d", len(problems), problems, len(tt.want))
			}
			for i, w := range tt.want {
				if got := problems[i].Error(); !strings.HasPrefix(got, w) {
					t.Errorf("problem %d:\n got %s\nwant %s…", i, got, w)
				}
			}
		})
	}
}

// What a constant cannot set, and names that read as a misspelt standard
// field, are refused with the reason; custom attributes are kept within
// what a login carries.
func TestConstantsProblems(t *testing.T) {
	roles := []string{"viewer", "member", "admin"}
	attrs := func(kv ...string) Constants {
		c := Constants{Attributes: map[string][]string{}}
		for i := 0; i+1 < len(kv); i += 2 {
			c.Attributes[kv[i]] = []string{kv[i+1]}
		}
		return c
	}
	many := Constants{Attributes: map[string][]string{}}
	for i := range MaxConstantAttributes + 1 {
		many.Attributes[strings.Repeat("a", i+1)] = []string{"x"}
	}
	for _, tt := range []struct {
		name  string
		c     Constants
		field string // "" means valid
		msg   string // part of the message
	}{
		{"custom attributes and names", Constants{GivenName: "Temp", FamilyName: "Worker", DisplayName: "Temp Worker", Groups: []string{"contractors"},
			Roles: []string{"member"}, Attributes: map[string][]string{"department": {"Contractors"}, "rules": {"strict"}, "sn": {"x"},
				"organization": {"Agency Inc"}, "external": {"yes"}, "connection": {"vpn"}, "given": {"x"}}}, "", ""},
		{"email", attrs("email", "all@acme.example"), "constants.email", "the email cannot be a constant: it is the key that links a login to an existing account"},
		{"email differently written", attrs("Email", "all@acme.example"), "constants.Email", `"Email" reads as email, and the email cannot be a constant`},
		{"mail", attrs("mail", "all@acme.example"), "constants.mail", `"mail" reads as email, and the email cannot be a constant`},
		{"email_verified", attrs("email_verified", "true"), "constants.email_verified", "whether the IdP vouches for the email cannot be a constant"},
		{"external id", attrs("external_id", "x"), "constants.external_id", "the external id cannot be a constant"},
		{"organisation id", attrs("organization_id", "x"), "constants.organization_id", "sso-edge sets it from the connection"},
		{"misspelt given name", attrs("given_nme", "x"), "constants.given_nme", `"given_nme" is not a standard field; did you mean given_name?`},
		{"camel case given name", attrs("givenName", "x"), "constants.givenName", "did you mean given_name?"},
		{"first name", attrs("first_name", "x"), "constants.first_name", "did you mean given_name?"},
		{"surname", attrs("surname", "x"), "constants.surname", "did you mean family_name?"},
		{"displayname", attrs("DisplayName", "x"), "constants.DisplayName", "did you mean display_name?"},
		{"role", attrs("role", "admin"), "constants.role", "did you mean roles?"},
		{"empty name", attrs("", "x"), "constants.", "an empty name"},
		{"name with spaces", attrs(" department", "x"), "constants. department", "leading or trailing spaces"},
		{"value with a NUL", attrs("department", "a\x00b"), "constants.department[0]", "NUL"},
		{"value too long", attrs("department", strings.Repeat("x", 8193)), "constants.department[0]", "more than 8192 bytes"},
		{"given name too long", Constants{GivenName: strings.Repeat("x", 1025)}, "constants.given_name", "1025 characters is more than the 1024"},
		{"too many attributes", many, "constants", "201 custom attributes is more than the 200"},
		{"unknown role", Constants{Roles: []string{"root"}}, "constants.roles[0]", `"root" is not one of the organisation's roles`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			for _, got := range [][]Problem{
				SAML{IDPMetadataURL: "https://idp.example/md", Constants: tt.c}.Problems(roles),
				OIDC{Issuer: "https://accounts.example.com", ClientID: "edge", ClientSecretFile: "/s", Constants: tt.c}.Problems(roles),
			} {
				if tt.field == "" {
					if len(got) != 0 {
						t.Errorf("got %v, want none", got)
					}
					continue
				}
				if len(got) != 1 || got[0].Field != tt.field || !strings.Contains(got[0].Msg, tt.msg) {
					t.Errorf("got %v, want one problem on %q containing %q", got, tt.field, tt.msg)
				}
			}
		})
	}
}
