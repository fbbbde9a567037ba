package edge

import (
	"bytes"
	"encoding/base64"
	"log/slog"
	"net"
	"net/http"
	"strings"

	"github.com/jitprov/jitprov/internal/edge/samlsp"
)

// The pending-login cookie binds a login to the browser that started it.
// A browser keeps it for the host name it was set on: a login started at
// another host name than the public URL's (127.0.0.1 while the public URL
// says localhost, in plain-http development) sends the person back, from
// the IdP, to the public URL's host, where the browser has no such cookie.
// The edge says so — at the start, and when the answer arrives without
// the cookie — rather than blaming IdP-initiated settings.

// canonicalHost is host (a URL's or a Host header's) lower-cased, without
// the scheme's default port.
func canonicalHost(host, scheme string) string {
	host = strings.ToLower(host)
	if h, port, err := net.SplitHostPort(host); err == nil &&
		((scheme == "http" && port == "80") || (scheme == "https" && port == "443")) {
		return h
	}
	return host
}

// otherHost is the request's host name when it differs from the public
// URL's, or "".
func (s *Server) otherHost(r *http.Request) string {
	scheme := s.cfg.PublicURL.Scheme
	if got := canonicalHost(r.Host, scheme); got != "" && got != canonicalHost(s.cfg.PublicURL.Host, scheme) {
		return got
	}
	return ""
}

// warnOtherHost warns, at a login's start, that the login will fail for
// want of its cookie when the request came to another host name than the
// public URL's.
func (s *Server) warnOtherHost(r *http.Request, org, conn string) {
	if host := s.otherHost(r); host != "" {
		s.failures.log(r.Context(), slog.LevelWarn, "login started at another host|"+host,
			"sign-in started at another host name than the public URL's: the browser keeps the pending-login cookie for the one it used, "+
				"and the IdP sends it back to the public URL, where the cookie is missing and the sign-in fails; "+
				"open the edge at its public URL, or set JITPROV_EDGE_PUBLIC_URL to the address people use",
			"request_host", host, "public_url", s.cfg.PublicURL.String(), "org", org, "connection", conn)
	}
}

// cookieCause is what the log says of a pending-login cookie that did
// not come back.
const cookieCause = "the login was started at another host name than the public URL's (e.g. 127.0.0.1 instead of localhost, or http instead of https), " +
	"or the browser refused or dropped the cookie (blocked, expired after 10 minutes, or a plain-http cookie on a cross-site POST from an IdP on another site)"

// cookieLost shows why a login's answer cannot be matched to this
// browser when it brought back no pending-login cookie, and logs msg with
// the likely causes for the operator.
func (s *Server) cookieLost(w http.ResponseWriter, r *http.Request, msg string, args ...any) {
	s.fail(w, r, pageCookieLost(s.cfg.PublicURL.JoinPath("login").String()), msg,
		append(args, "pending_cookie", "missing", "cause", cookieCause, "public_url", s.cfg.PublicURL.String(), "request_host", r.Host)...)
}

// answersARequest reports whether a SAML response names the request it
// answers (InResponseTo): an SP-initiated login, not an IdP-initiated
// one. It reads the raw form value only to choose what to say; the
// response was refused by samlsp already.
func answersARequest(form string) bool {
	if len(form) > samlsp.MaxMaxResponseBytes*4/3+4 {
		return false
	}
	raw, err := base64.StdEncoding.DecodeString(form)
	return err == nil && bytes.Contains(raw, []byte("InResponseTo="))
}
