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
		// Line breaks as YAML counts them: CRLF, and a bare CR.
		"organizations:\r\n  - id: acme\r\n    name: Acme\r\n    max_seats: 5\r\n    roles: [viewer,\r\n",
		"organizations:\r  - id: acme\r    name: Acme\r    max_seats: 5\r    roles: [viewer,",
	} {
		_, err := ParseOrgFile("orgs.yaml", []byte(data))
		if err == nil || !strings.HasPrefix(err.Error(), "orgs.yaml:5: invalid YAML: ") {
			t.Errorf("%q: got %v, want an invalid YAML error on line 5", data, err)
		}
	}
}

// A value yaml.v3 cannot decode that spans lines (a plain scalar folded
// over lines, here the whole file) is still located on its line, and
// every problem stays on one line of the error. Found by FuzzParseOrgFile:
// the problem named no line and broke over two.
func TestProblemWithAMultiLineValueNamesItsLine(t *testing.T) {
	for _, tt := range []struct{ data, want string }{
		{"0\n\n-", `orgs.yaml:1: expected a mapping with the key "organizations", got "0\n-"`},
		{"organizations:\n  - id: acme\n    name: Acme\n    max_seats: 5\n    roles: |\n      viewer\n      admin\n",
			`orgs.yaml:5: organizations[0].roles: expected a list of strings, got "viewer\nadmin\n"`},
	} {
		_, err := ParseOrgFile("orgs.yaml", []byte(tt.data))
		if err == nil {
			t.Fatalf("%q: no error", tt.data)
		}
		if first := strings.Split(err.Error(), "\n")[0]; first != tt.want {
			t.Errorf("%q: first problem\n%s\nwant\n%s\nall:\n%s", tt.data, first, tt.want, err)
		}
	}
}

// What yaml.v3 refuses while decoding without naming a line (invalid
// !!binary, a merge of a scalar) is
// located on the line of the node it is about. Found by FuzzParseOrgFile:
// the problem named no line.
func TestDecodeProblemsWithoutALineAreLocated(t *testing.T) {
	for _, tt := range []struct{ data, want string }{
		{"organizations:\n  - id: acme\n    name: Acme\n    max_seats: !!binary a\n", "orgs.yaml:4: "},
		{"organizations:\n  - id: acme\n    name: Acme\n    max_seats: 5\n    <<: 5\n", "orgs.yaml:5: "},
	} {
		_, err := ParseOrgFile("orgs.yaml", []byte(tt.data))
		if err == nil || !strings.HasPrefix(err.Error(), tt.want) {
			t.Errorf("%q: got %v, want a problem starting %q", tt.data, err, tt.want)
		}
	}
}
