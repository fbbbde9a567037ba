package edge

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"time"

	"github.com/jitprov/jitprov/events"
	"github.com/jitprov/jitprov/internal/edge/certwatch"
	"github.com/jitprov/jitprov/internal/edge/samlsp"
)

var _ certwatch.Source = (*Server)(nil)

// Certificates lists the IdP signing certificates of every SAML
// connection in the store, for the certificate check (certwatch). Each
// connection is loaded (or refreshed when due) as for a login, so a
// rolled-over IdP certificate is seen as soon as the IdP publishes it.
//
// OIDC connections are skipped: their signing keys are JWKS keys, which
// carry no expiry in general and rotate under the provider's control.
//
// The certificates it finds, and the SP certificates of the same
// connections, are what the gauge jitprov.edge.certificate.expiry reports
// until the next check.
func (s *Server) Certificates(ctx context.Context) ([]certwatch.Cert, error) {
	idp, sp, err := s.reg.certificates(ctx)
	if ctx.Err() == nil {
		s.certExp.set(append(idpExpiries(idp), sp...))
	}
	return idp, err
}

func (r *registry) certificates(ctx context.Context) ([]certwatch.Cert, []certExpiry, error) {
	all, err := r.store.Connections(ctx, string(events.ProtocolSAML))
	if err != nil {
		return nil, nil, fmt.Errorf("edge: list the SAML connections: %w", err)
	}
	var out []certwatch.Cert
	var sp []certExpiry
	var errs []error
	for _, sc := range all {
		if err := ctx.Err(); err != nil {
			return out, sp, err
		}
		c, err := r.get(ctx, sc.OrganizationID, sc.ID)
		switch {
		case errors.Is(err, errUnknownConnection):
			continue // removed from the store since
		case err != nil:
			errs = append(errs, err)
			continue
		case c.saml == nil:
			continue
		}
		if c.saml.spCert != nil {
			sp = append(sp, certExpiry{kind: "sp", org: c.org.ID, conn: c.id, notAfter: c.saml.spCert.NotAfter})
		}
		certs, err := samlsp.SigningCertificates(c.saml.idp)
		if err != nil {
			errs = append(errs, fmt.Errorf("connection %s/%s: IdP metadata: %w", c.org.ID, c.id, err))
		}
		for _, cert := range certs {
			if superseded(cert, certs, time.Now()) {
				continue // a rollover in progress: the IdP already publishes its successor
			}
			out = append(out, certwatch.Cert{OrganizationID: c.org.ID, ConnectionID: c.id, Cert: cert})
		}
	}
	return out, sp, errors.Join(errs...)
}

// superseded reports whether another of the connection's signing
// certificates is valid now and outlives cert: the IdP is rolling over,
// signatures by the new certificate are accepted already, and cert's
// expiry is no reason to warn anyone.
func superseded(cert *x509.Certificate, all []*x509.Certificate, now time.Time) bool {
	for _, other := range all {
		if other != cert && !now.Before(other.NotBefore) && now.Before(other.NotAfter) && other.NotAfter.After(cert.NotAfter) {
			return true
		}
	}
	return false
}
