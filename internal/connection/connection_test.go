package connection

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestDecodeSAML(t *testing.T) {
	s, err := DecodeSAML([]byte(`{"idp_metadata_url":"https://idp.example/md","clock_skew":"2m","require_signed_assertion":false}`))
	if err != nil {
		t.Fatal(err)
	}
	if s.Skew() != 2*time.Minute || s.SignedAssertionRequired() {
		t.Errorf("got skew %s, signed assertion required %t", s.Skew(), s.SignedAssertionRequired())
	}
	d, err := DecodeSAML([]byte(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	if d.Skew() != DefaultClockSkew || !d.SignedAssertionRequired() || d.AllowIDPInitiated || d.AllowSHA1 {
		t.Errorf("defaults are not the strict ones: %+v", d)
	}
	var p Problem
	if _, err := DecodeSAML([]byte(`{"alow_sha1":true}`)); !errors.As(err, &p) || p.Field != "alow_sha1" {
		t.Errorf("unknown key: got %v, want a problem naming alow_sha1", err)
	}
	if _, err := DecodeSAML([]byte(`{"allow_sha1":"yes"}`)); !errors.As(err, &p) || p.Field != "allow_sha1" {
		t.Errorf("wrong type: got %v, want a problem naming allow_sha1", err)
	}
}

func TestSAMLProblems(t *testing.T) {
	roles := []string{"viewer", "member", "admin"}
	ok := SAML{IDPMetadataURL: "https://idp.example/md"}
	tests := []struct {
		name  string
		edit  func(*SAML)
		field string // "" means valid
	}{
		{"valid", func(*SAML) {}, ""},
		{"localhost http metadata", func(s *SAML) { s.IDPMetadataURL = "http://localhost:8080/md" }, ""},
		{"no metadata", func(s *SAML) { s.IDPMetadataURL = "" }, "idp_metadata_url"},
		{"two sources", func(s *SAML) { s.IDPMetadataXML = "<md/>" }, "idp_metadata_url"},
		{"http metadata", func(s *SAML) { s.IDPMetadataURL = "http://idp.example/md" }, "idp_metadata_url"},
		{"relative metadata URL", func(s *SAML) { s.IDPMetadataURL = "/md" }, "idp_metadata_url"},
		{"cert without key", func(s *SAML) { s.SPCertFile = "c.pem" }, "sp_key_file"},
		{"negative skew", func(s *SAML) { s.ClockSkew = "-1s" }, "clock_skew"},
		{"skew too large", func(s *SAML) { s.ClockSkew = "6m" }, "clock_skew"},
		{"attribute with spaces", func(s *SAML) { s.Attributes.Email = " mail" }, "attributes.email"},
		{"group role unknown", func(s *SAML) { s.GroupRoles = []GroupRole{{Group: "g", Role: "root"}} }, "group_roles[0].role"},
		{"group role without group", func(s *SAML) { s.GroupRoles = []GroupRole{{Role: "member"}} }, "group_roles[0].group"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := ok
			tt.edit(&s)
			got := s.Problems(roles)
			if tt.field == "" {
				if len(got) != 0 {
					t.Errorf("got problems %v, want none", got)
				}
				return
			}
			if len(got) != 1 || got[0].Field != tt.field || strings.TrimSpace(got[0].Msg) == "" {
				t.Errorf("got %v, want one problem on %s", got, tt.field)
			}
		})
	}
}

func TestSAMLConstantRoles(t *testing.T) {
	s := SAML{IDPMetadataURL: "https://idp.example/md", Constants: Constants{Roles: []string{"member", "root"}}}
	got := s.Problems([]string{"viewer", "member", "admin"})
	if len(got) != 1 || got[0].Field != "constants.roles[1]" {
		t.Errorf("got %v, want one problem on constants.roles[1]", got)
	}
}
