package session_test

import (
	"strings"
	"testing"

	"github.com/jitprov/jitprov/internal/edge/session"
)

func TestSafeReturnTo(t *testing.T) {
	allowed := []string{
		"https://app.acme.example",
		"https://admin.acme.example:8443",
		"HTTP://LOCALHOST:3000/", // normalised: lower case, trailing slash
		"https://xn--bcher-kva.example",
		"not an origin",                 // ignored
		"https://app.acme.example/path", // ignored: not an origin
	}
	const fallback = "/"
	for _, tc := range []struct {
		name, raw string
		safe      bool
	}{
		// Accepted.
		{"root", "/", true},
		{"path", "/projects/42", true},
		{"path with query and fragment", "/search?q=a%20b&next=//x#top", true},
		{"encoded slash inside a path", "/a%2Fb", true},
		{"allowed origin", "https://app.acme.example/dashboard", true},
		{"allowed origin, bare", "https://app.acme.example", true},
		{"allowed origin, upper-case host", "https://APP.ACME.EXAMPLE/x", true},
		{"allowed origin, upper-case scheme", "HTTPS://app.acme.example/x", true},
		{"allowed origin, explicit default port", "https://app.acme.example:443/x", true},
		{"allowed origin with port", "https://admin.acme.example:8443/", true},
		{"allowed http origin, normalised entry", "http://localhost:3000/cb", true},
		{"allowed punycode host", "https://xn--bcher-kva.example/", true},

		// Protocol-relative and slash tricks.
		{"protocol-relative", "//evil.com", false},
		{"protocol-relative with path", "//evil.com/x", false},
		{"triple slash", "///evil.com", false},
		{"slash backslash", `/\evil.com`, false},
		{"backslash slash", `\/evil.com`, false},
		{"double backslash", `\\evil.com`, false},
		{"backslash in path", `/a\b`, false},
		// Missing slashes: browsers read these as https://evil.com.
		{"scheme without slashes", "https:evil.com", false},
		{"scheme with one slash", "https:/evil.com", false},
		{"scheme with backslashes", `https:\\evil.com`, false},
		{"empty host", "https:///evil.com", false},
		// User info and look-alike hosts.
		{"userinfo naming the allowed host", "http://allowed.com@evil.com", false},
		{"userinfo before the allowed host", "https://app.acme.example@evil.com/", false},
		{"userinfo on the allowed host", "https://user@app.acme.example/", false},
		{"userinfo with port look-alike", "https://app.acme.example:443@evil.com/", false},
		{"allowed host as a prefix", "https://app.acme.example.evil.com/", false},
		{"allowed host as a suffix", "https://evilapp.acme.example/", false},
		{"subdomain of the allowed host", "https://x.app.acme.example/", false},
		{"trailing dot host", "https://app.acme.example./", false},
		{"evil host, allowed host in the path", "https://evil.com/app.acme.example", false},
		{"evil host, allowed host in the query", "https://evil.com/?https://app.acme.example", false},
		{"allowed host in fragment", "https://evil.com#app.acme.example", false},
		// Scheme and port.
		{"http for an https origin", "http://app.acme.example/", false},
		{"https for an http origin", "https://localhost:3000/", false},
		{"other port", "https://app.acme.example:8443/", false},
		{"missing port", "https://admin.acme.example/", false},
		{"zero-padded port", "https://admin.acme.example:08443/", false},
		{"javascript", "javascript:alert(1)", false},
		{"javascript upper case", "JaVaScRiPt:alert(1)", false},
		{"javascript after slashes", "javascript://app.acme.example/%0aalert(1)", false},
		{"data", "data:text/html,<script>alert(1)</script>", false},
		{"ftp", "ftp://app.acme.example/", false},
		{"bare host", "evil.com", false},
		{"bare host with path", "evil.com/x", false},
		{"relative path without slash", "dashboard", false},
		{"dot segment", "./x", false},
		// Control characters and whitespace, which browsers strip.
		{"empty", "", false},
		{"leading tab", "\t/evil", false},
		{"tab between slashes", "/\t/evil.com", false},
		{"newline between slashes", "/\n/evil.com", false},
		{"leading space", " /x", false},
		{"leading space before protocol-relative", " //evil.com", false},
		{"NUL", "/x\x00", false},
		{"DEL", "/x\x7f", false},
		{"tab in host", "https://app.acme\t.example/", false},
		// Percent-encoded variants.
		{"encoded double slash", "%2F%2Fevil.com", false},
		{"slash then encoded slash", "/%2Fevil.com", false},
		{"slash then encoded backslash", "/%5Cevil.com", false},
		{"slash then encoded lower-case backslash", "/%5cevil.com", false},
		{"double-encoded slash", "/%252Fevil.com", false},
		{"double-encoded backslash", "/%255Cevil.com", false},
		{"encoded tab", "/%09/evil.com", false},
		{"encoded newline", "/%0a/evil.com", false},
		{"encoded NUL", "/x%00", false},
		{"invalid escape", "/%zz", false},
		{"encoded host", "https://app%2eacme%2eexample/", false},
		{"encoded at sign", "https://evil.com%40app.acme.example/", false},
		// Non-ASCII: IDN and look-alike characters.
		{"IDN host, Unicode form of an allowed punycode host", "https://bücher.example/", false},
		{"fullwidth solidus", "/／evil.com", false},
		{"fullwidth dot", "https://app.acme．example/", false},
		{"Unicode path", "/café", false},
		{"too long", "/" + strings.Repeat("a", 3000), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := session.SafeReturnTo(tc.raw, allowed, fallback)
			want := fallback
			if tc.safe {
				want = tc.raw
			}
			if got != want {
				t.Fatalf("SafeReturnTo(%q) = %q, want %q", tc.raw, got, want)
			}
		})
	}
}

func TestSafeReturnToEmptyAllowList(t *testing.T) {
	for _, tc := range []struct{ raw, want string }{
		{"/x", "/x"},
		{"https://app.acme.example/", "/home"},
	} {
		if got := session.SafeReturnTo(tc.raw, nil, "/home"); got != tc.want {
			t.Errorf("SafeReturnTo(%q, nil) = %q, want %q", tc.raw, got, tc.want)
		}
	}
}
