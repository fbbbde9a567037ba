package config

import (
	"strings"
	"testing"
)

// A syntax error at the very end of a file without a final newline is on
// the file's last line, not the one after it (yaml.v3 names the line
// after). Found by FuzzParseOrgFile.
func TestSyntaxErrorAtTheEndNamesTheLastLine(t *testing.T) {
	for _, data := range []string{
		"organizations:\n  - id: acme\n    name: Acme\n    max_seats: 5\n    roles: [viewer,",
		"organizations:\n  - id: acme\n    name: Acme\n    max_seats: 5\n    roles: [viewer,\n",
	} {
		_, err := ParseOrgFile("orgs.yaml", []byte(data))
		if err == nil || !strings.HasPrefix(err.Error(), "orgs.yaml:5: invalid YAML: ") {
			t.Errorf("%q: got %v, want an invalid YAML error on line 5", data, err)
		}
	}
}
