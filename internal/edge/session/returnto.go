package session

import (
	"net"
	"net/url"
	"strings"
)

// maxReturnTo bounds a return URL; longer ones are refused (they also would
// not fit the pending-login cookie).
const maxReturnTo = 2048

// SafeReturnTo returns raw when it is a safe place to redirect to after a
// login, and fallback otherwise. Safe is:
//
//   - a path on this site: starts with exactly one "/" (not "//", whose
//     browsers read as another host), or
//   - an absolute http or https URL, written "scheme://host[:port]/...",
//     without user info, whose origin (scheme, host, port; lower-cased,
//     default port omitted) equals one of allowedOrigins exactly (no
//     subdomains, no suffix match).
//
// Whatever browsers or servers might read differently from Go is refused
// outright rather than interpreted: anything but printable ASCII (control
// characters, spaces, tab and newline, which browsers strip; raw Unicode,
// which they may map), backslashes (read as "/"), and paths that once or
// twice percent-decoded start with "//" or contain a backslash or control
// character (for a hop that decodes before redirecting). fallback itself
// is trusted and returned as is.
func SafeReturnTo(raw string, allowedOrigins []string, fallback string) string {
	if raw == "" || len(raw) > maxReturnTo || !printableASCII(raw) || strings.Contains(raw, `\`) {
		return fallback
	}
	if raw[0] == '/' {
		if safePath(raw) {
			return raw
		}
		return fallback
	}
	origin, ok := absoluteOrigin(raw)
	if !ok {
		return fallback
	}
	for _, allowed := range allowedOrigins {
		if a, ok := parseOrigin(allowed); ok && a == origin {
			return raw
		}
	}
	return fallback
}

// printableASCII reports whether s is only characters 0x21 to 0x7e.
func printableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] >= 0x7f {
			return false
		}
	}
	return true
}

// safePath checks a relative reference that starts with "/".
func safePath(raw string) bool {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil || u.Opaque != "" {
		return false
	}
	// Check the path as written and decoded once and twice.
	p := u.EscapedPath()
	for range 3 {
		if strings.HasPrefix(p, "//") || strings.Contains(p, `\`) || hasControl(p) {
			return false
		}
		next, err := url.PathUnescape(p)
		if err != nil {
			return false
		}
		if next == p {
			break
		}
		p = next
	}
	return true
}

func hasControl(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < ' ' || s[i] == 0x7f {
			return true
		}
	}
	return false
}

// absoluteOrigin returns the origin of an absolute http(s) URL written in
// the plain "scheme://host" form.
func absoluteOrigin(raw string) (string, bool) {
	i := strings.Index(raw, "://")
	if i <= 0 {
		// "https:evil.com", "https:/evil.com", "javascript:…", "evil.com/x"
		return "", false
	}
	u, err := url.Parse(raw)
	if err != nil || u.User != nil || u.Opaque != "" || u.Host == "" {
		return "", false
	}
	if strings.ToLower(raw[:i]) != u.Scheme {
		return "", false
	}
	return originOf(u)
}

// parseOrigin normalises an allow-list entry such as
// "https://app.example.com" or "http://localhost:8080". A path, query or
// user info makes it invalid (ignored).
func parseOrigin(s string) (string, bool) {
	u, err := url.Parse(strings.TrimSuffix(strings.TrimSpace(s), "/"))
	if err != nil || u.User != nil || u.Opaque != "" || u.Host == "" ||
		u.Path != "" || u.RawQuery != "" || u.Fragment != "" {
		return "", false
	}
	return originOf(u)
}

func originOf(u *url.URL) (string, bool) {
	scheme := strings.ToLower(u.Scheme)
	if scheme != "http" && scheme != "https" {
		return "", false
	}
	host := strings.ToLower(u.Hostname())
	port := u.Port()
	if host == "" || strings.ContainsAny(host, "%@\\") {
		return "", false
	}
	if (scheme == "https" && port == "443") || (scheme == "http" && port == "80") {
		port = ""
	}
	if port != "" {
		host = net.JoinHostPort(host, port)
	} else if strings.Contains(host, ":") {
		host = "[" + host + "]" // IPv6 literal
	}
	return scheme + "://" + host, true
}
