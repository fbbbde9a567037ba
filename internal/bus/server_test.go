package bus

import "testing"

func TestVersionAtLeast(t *testing.T) {
	for _, tc := range []struct {
		v    string
		want bool
	}{
		{"2.9.10", false},
		{"2.9.25", false},
		{"1.4.1", false},
		{"2.10.0", true},
		{"2.10.0-beta.1", true},
		{"2.12.15", true},
		{"3.0.0", true},
		{"2.11", true},
		{"nonsense", true},
	} {
		if got := versionAtLeast(tc.v, MinServerVersion); got != tc.want {
			t.Errorf("versionAtLeast(%q, %q) = %v, want %v", tc.v, MinServerVersion, got, tc.want)
		}
	}
}
