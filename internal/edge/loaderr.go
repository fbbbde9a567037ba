package edge

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"

	"github.com/jitprov/jitprov/internal/edge/oidcrp"
)

// loadError is why a connection could not be made ready to serve: a
// mistake in its configuration, which only an administrator can fix, or
// a failure that passes by itself (the IdP or the database unreachable).
// People see a different page for each, and operators a different log
// line.
type loadError struct {
	// protocol is the connection's ("saml", "oidc"), or "" when the store
	// did not say which it is.
	protocol string
	// transient: the IdP (or the store) could not be reached or answered
	// with a server error; trying again later may work.
	transient bool
	err       error
}

func (e *loadError) Error() string { return e.err.Error() }
func (e *loadError) Unwrap() error { return e.err }

// newLoadError classifies err, from loading a connection of protocol.
func newLoadError(protocol string, err error) *loadError {
	return &loadError{protocol: protocol, transient: unreachable(err), err: err}
}

// protocolName is how the log names a protocol.
func protocolName(p string) string {
	switch p {
	case "saml":
		return "SAML"
	case "oidc":
		return "OIDC"
	}
	return "unknown"
}

// errIdPUnavailable marks an IdP's answer that says it is unavailable for
// now (a server error, 429, 408) rather than that the address is wrong.
var errIdPUnavailable = errors.New("the identity provider is unavailable")

// statusError is an IdP metadata document fetched with another status
// than 200: unavailable (transient) for server errors, 408 and 429; a
// mistake in the configured URL otherwise (404, 403, …).
func statusError(u string, resp *http.Response) error {
	if transientStatus(resp.StatusCode) {
		return fmt.Errorf("GET %s: %s: %w", u, resp.Status, errIdPUnavailable)
	}
	return fmt.Errorf("GET %s: %s", u, resp.Status)
}

func transientStatus(code int) bool {
	return code >= 500 || code == http.StatusTooManyRequests || code == http.StatusRequestTimeout
}

// unreachable reports whether err says the IdP could not be reached (or
// answered that it is unavailable), as opposed to a configuration that
// can never work: a refused or reset connection, a timeout, a DNS server
// that did not answer, a 5xx. A host name that does not exist, a
// certificate that does not verify, an http:// URL where https is
// required, a document that is not what it should be, an issuer that
// differs from the provider's, a missing key or secret: configuration.
func unreachable(err error) bool {
	if errors.Is(err, errIdPUnavailable) || errors.Is(err, oidcrp.ErrUnavailable) {
		return true
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded) ||
		errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return true
	}
	var dns *net.DNSError
	if errors.As(err, &dns) {
		return !dns.IsNotFound // no such host: a wrong name, not an outage
	}
	var (
		verify    *tls.CertificateVerificationError
		authority x509.UnknownAuthorityError
		invalid   x509.CertificateInvalidError
		host      x509.HostnameError
	)
	if errors.As(err, &verify) || errors.As(err, &authority) || errors.As(err, &invalid) || errors.As(err, &host) {
		return false // a certificate that does not verify is not an outage
	}
	var op *net.OpError
	return errors.As(err, &op) // refused, reset, unreachable network
}
