package main

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
)

// idpMetadataFile is valid IdP metadata (internal/connection's fixture).
func idpMetadataFile(t *testing.T) string {
	t.Helper()
	path, err := filepath.Abs("../../internal/connection/testdata/idp.xml")
	if err != nil {
		t.Fatal(err)
	}
	return path
}

// Four mistakes in one connection are reported by one run of check, under
// a line counting them, each on a line of its own in line order; with
// -files=false, the three that need no file.
func TestCheckReportsEveryProblemAtOnce(t *testing.T) {
	clearEnv(t)
	const file = "../../internal/config/testdata/organizations-four-mistakes.yaml"
	line := func(n int, rest string) string {
		return fmt.Sprintf("%s:%d: organizations[0].connections[0].settings.%s", file, n, rest)
	}
	problems := []string{
		line(14, `idp_metadata_file: cannot read the IdP's metadata from "testdata/acme-okta-metadata.xml": no such file or directory; sso-edge reads it there when it loads the connection`),
		line(15, `allow_idp_initated: unknown setting; did you mean "allow_idp_initiated"? (known settings: idp_metadata_url, idp_metadata_file, idp_metadata_xml, sp_entity_id, sp_key_file, sp_cert_file, allow_idp_initiated, require_signed_assertion, allow_sha1, clock_skew, external_id, attributes, email_verified, group_roles, constants, groups_missing, scim_identity)`),
		line(16, `require_signed_assertion: expected true or false, got "yes"`),
		line(17, `clock_skew: 10m0s is out of range: 0 to 5m0s (default 1m30s)`),
	}
	tests := []struct {
		name string
		args []string
		want []string
	}{
		{"check", []string{"check", "-f", file}, append([]string{file + ": 4 problems:"}, problems...)},
		{"check without reading files", []string{"check", "-f", file, "-files=false"}, append([]string{file + ": 3 problems:"}, problems[1:]...)},
		{"apply", []string{"apply", "-f", file}, append([]string{file + ": 3 problems; nothing was applied:"}, problems[1:]...)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.args[0] == "apply" {
				// apply validates the file before it opens the database.
				t.Setenv("JITPROV_DATABASE_URL", "postgres://nobody@127.0.0.1:1/none")
			}
			stdout, _, err := runCmd(t, tt.args...)
			if err == nil {
				t.Fatalf("%s = nil (stdout %q), want the problems", tt.args, stdout)
			}
			if got := strings.Split(err.Error(), "\n"); strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("%s:\n%s\nwant:\n%s", tt.args, err, strings.Join(tt.want, "\n"))
			}
		})
	}
}

func TestCheckValidSaysWhatWasNotChecked(t *testing.T) {
	clearEnv(t)
	path := writeFile(t, "orgs.yaml", strings.Replace(validOrgs, "/etc/jitprov/initech-idp.xml", idpMetadataFile(t), 1))
	stdout, _, err := runCmd(t, "check", "-f", path)
	if err != nil {
		t.Fatal(err)
	}
	want := path + ": 2 organisations, 3 connections: valid\n" +
		"IdP metadata URLs and OIDC issuers were not fetched: sso-edge fetches them when it loads a connection.\n"
	if stdout != want {
		t.Errorf("stdout:\n%s\nwant:\n%s", stdout, want)
	}
	stdout, _, err = runCmd(t, "check", "-files=false", "-f", writeFile(t, "orgs.yaml", validOrgs))
	if err != nil || !strings.Contains(stdout, "valid; the files connections name were not read (-files=false)") {
		t.Errorf("check -files=false = %q, %v", stdout, err)
	}
	// What sso-edge refuses to serve needs no file: -files=false reports it.
	unpinned := strings.Replace(validOrgs, "          sp_entity_id: https://sso.acme.com/saml/initech/idp\n", "", 1)
	if _, _, err := runCmd(t, "check", "-files=false", "-f", writeFile(t, "orgs.yaml", unpinned)); err == nil ||
		!strings.Contains(err.Error(), "organizations[1].connections[0].settings.sp_entity_id: required") {
		t.Errorf("check -files=false of a SAML connection without sp_entity_id = %v, want the problem", err)
	}
	if _, _, err := runCmd(t, "apply", "-files=false", "-f", path); err == nil || !strings.Contains(err.Error(), "-files is a flag of check") {
		t.Errorf("apply -files=false = %v, want it refused", err)
	}
}
