package samlsp

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/crewjam/saml"
)

// Defaults and bounds of Config.
const (
	DefaultClockSkew        = 90 * time.Second
	MaxClockSkew            = 5 * time.Minute
	DefaultMaxResponseBytes = 256 << 10
	// MaxMaxResponseBytes bounds MaxResponseBytes: no sane IdP sends a
	// megabyte of SAML, and the whole form value is held in memory.
	MaxMaxResponseBytes = 1 << 20
	// MaxRelayStateBytes is the SAML bindings' limit on RelayState (§3.4.3).
	MaxRelayStateBytes = 80
	// NoClockSkew, as Config.ClockSkew, tolerates no skew at all (the zero
	// value means DefaultClockSkew).
	NoClockSkew time.Duration = -1
)

// Config describes one SAML connection: us (the SP) and the IdP. The zero
// value of every policy field is the strict default.
type Config struct {
	// EntityID is our SP entity id: the Issuer of our AuthnRequests and the
	// Audience every assertion must name.
	EntityID string
	// ACSURL is our Assertion Consumer Service (HTTP-POST binding). Every
	// response's Destination and bearer Recipient must equal it exactly.
	ACSURL url.URL
	// MetadataURL is where our metadata is served.
	MetadataURL url.URL

	// Key and Certificate are our key pair: they sign AuthnRequests (when
	// the IdP wants them signed) and decrypt encrypted assertions. Key must
	// be an *rsa.PrivateKey (needed for encrypted assertions) or an
	// *ecdsa.PrivateKey (signing only; crewjam encodes ECDSA request
	// signatures as ASN.1 DER where XML-DSig says r||s, so prefer RSA), and
	// match Certificate.
	Key         crypto.Signer
	Certificate *x509.Certificate

	// IDPMetadata is the IdP's metadata. Its entity id, signing
	// certificates (KeyDescriptors with use "signing" or no use) and
	// HTTP-Redirect SingleSignOnService are used.
	IDPMetadata *saml.EntityDescriptor

	// AllowIDPInitiated accepts responses that answer no request (IdP-
	// initiated login). Default false.
	AllowIDPInitiated bool
	// AllowUnsignedAssertion accepts an unsigned assertion inside a signed
	// Response. By default (false) the assertion itself must carry a valid
	// enveloped signature, whether or not the Response is signed; turn it
	// on only for an IdP that signs nothing but the Response.
	AllowUnsignedAssertion bool
	// AllowSHA1 accepts rsa-sha1/ecdsa-sha1 signatures and sha1 digests.
	// Default false.
	AllowSHA1 bool
	// ClockSkew is how far the IdP's clock may be from ours, either way:
	// the tolerance on NotBefore, NotOnOrAfter, AuthnInstant and
	// SessionNotOnOrAfter, and on IssueInstant (Response and Assertion),
	// which must also be no older than ClockSkew + DeliveryAllowance.
	// Default 90s (0), at most 5m; NoClockSkew for none. It holds both
	// ways: every time bound of ParseResponse is this package's (crewjam's
	// fixed bounds no longer apply to it).
	ClockSkew time.Duration
	// MaxResponseBytes bounds the length of the base64 SAMLResponse form
	// value. Default 256 KiB, at most 1 MiB.
	MaxResponseBytes int
	// NameIDFormat is the NameID format we ask for in AuthnRequests and
	// announce in metadata. Default persistent.
	NameIDFormat saml.NameIDFormat

	// Now is the clock of every time check of ParseResponse, including
	// goxmldsig's certificate validity; nil means time.Now. Meant for
	// tests.
	Now func() time.Time
}

// settings is Config after defaults, validation and parsing: what an SP
// keeps. Never mutated after New.
type settings struct {
	entityID               string
	acs                    url.URL
	acsURL                 string // acs.String()
	allowIDPInitiated      bool
	requireSignedAssertion bool
	allowSHA1              bool
	clockSkew              time.Duration
	maxResponseBytes       int
	nameIDFormat           saml.NameIDFormat
	now                    func() time.Time

	idpEntityID   string
	idpCerts      []*x509.Certificate
	idpSSOURL     string
	signRequests  bool
	requestSigAlg string
}

func (c *Config) settings() (settings, error) {
	var errs []error
	fail := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }

	s := settings{
		entityID:               strings.TrimSpace(c.EntityID),
		acs:                    c.ACSURL,
		acsURL:                 c.ACSURL.String(),
		allowIDPInitiated:      c.AllowIDPInitiated,
		requireSignedAssertion: !c.AllowUnsignedAssertion,
		allowSHA1:              c.AllowSHA1,
		clockSkew:              c.ClockSkew,
		maxResponseBytes:       c.MaxResponseBytes,
		nameIDFormat:           c.NameIDFormat,
		now:                    c.Now,
	}
	if s.entityID == "" || s.entityID != c.EntityID {
		fail("entity id %q: must be non-empty, without surrounding spaces", c.EntityID)
	}
	if err := absoluteURL(c.ACSURL); err != nil {
		fail("ACS URL: %w", err)
	}
	if err := absoluteURL(c.MetadataURL); err != nil {
		fail("metadata URL: %w", err)
	}
	switch {
	case s.clockSkew == 0:
		s.clockSkew = DefaultClockSkew
	case s.clockSkew == NoClockSkew:
		s.clockSkew = 0
	case s.clockSkew < 0 || s.clockSkew > MaxClockSkew:
		fail("clock skew %s: must be between 0 and %s", s.clockSkew, MaxClockSkew)
	}
	switch {
	case s.maxResponseBytes == 0:
		s.maxResponseBytes = DefaultMaxResponseBytes
	case s.maxResponseBytes < 0 || s.maxResponseBytes > MaxMaxResponseBytes:
		fail("max response bytes %d: must be between 1 and %d", s.maxResponseBytes, MaxMaxResponseBytes)
	}
	if s.nameIDFormat == "" {
		s.nameIDFormat = saml.PersistentNameIDFormat
	}
	if s.now == nil {
		s.now = time.Now
	}

	alg, err := checkKeyPair(c.Key, c.Certificate)
	if err != nil {
		errs = append(errs, err)
	}
	s.requestSigAlg = alg

	idp, idpErrs := idpOf(c.IDPMetadata)
	errs = append(errs, idpErrs...)
	s.idpEntityID, s.idpCerts, s.idpSSOURL, s.signRequests = idp.entityID, idp.certs, idp.ssoURL, idp.signRequests
	return s, errors.Join(errs...)
}

// CheckKeyPair says why New refuses key and cert as the SP's key pair, or
// nil when it accepts them: the key must be RSA or ECDSA and match the
// certificate.
func CheckKeyPair(key crypto.Signer, cert *x509.Certificate) error {
	_, err := checkKeyPair(key, cert)
	return err
}

// checkKeyPair checks the SP's key pair and returns the algorithm signing
// AuthnRequests with it.
func checkKeyPair(key crypto.Signer, cert *x509.Certificate) (string, error) {
	var errs []error
	alg := ""
	switch k := key.(type) {
	case nil:
		errs = append(errs, errors.New("SP key: missing"))
	case *rsa.PrivateKey, *ecdsa.PrivateKey:
		if cert == nil {
			errs = append(errs, errors.New("SP certificate: missing"))
		} else if pub, ok := k.Public().(interface{ Equal(crypto.PublicKey) bool }); !ok || !pub.Equal(cert.PublicKey) {
			errs = append(errs, errors.New("SP certificate does not match the SP key"))
		}
		alg = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
		if _, ok := k.(*ecdsa.PrivateKey); ok {
			alg = "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256"
		}
	default:
		errs = append(errs, fmt.Errorf("SP key: %T is not supported (want *rsa.PrivateKey or *ecdsa.PrivateKey)", key))
	}
	return alg, errors.Join(errs...)
}

// CheckIDPMetadata lists every reason New refuses md as the IdP's
// metadata: none at all, no entityID, no IDPSSODescriptor, a signing
// certificate that does not parse, no signing certificate, no
// SingleSignOnService with the HTTP-Redirect binding (the one
// AuthnRequestURL uses) or one whose location is not an absolute URL.
// None means New accepts it.
func CheckIDPMetadata(md *saml.EntityDescriptor) []error {
	_, errs := idpOf(md)
	return errs
}

// idp is what an SP uses of its IdP's metadata.
type idp struct {
	entityID     string
	certs        []*x509.Certificate
	ssoURL       string
	signRequests bool
}

// idpOf reads and checks the IdP's metadata.
func idpOf(md *saml.EntityDescriptor) (idp, []error) {
	var errs []error
	fail := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	var out idp
	if md == nil {
		fail("IdP metadata: missing")
		return out, errs
	}
	out.entityID = md.EntityID
	if out.entityID == "" {
		fail("IdP metadata: no entityID")
	}
	if len(md.IDPSSODescriptors) == 0 {
		fail("IdP metadata %q: no IDPSSODescriptor", md.EntityID)
	}
	certs, err := SigningCertificates(md)
	if err != nil {
		fail("IdP metadata %q: %w", md.EntityID, err)
	}
	out.certs = certs
	for _, d := range md.IDPSSODescriptors {
		if d.WantAuthnRequestsSigned != nil && *d.WantAuthnRequestsSigned {
			out.signRequests = true
		}
		for _, sso := range d.SingleSignOnServices {
			if sso.Binding == saml.HTTPRedirectBinding && out.ssoURL == "" {
				out.ssoURL = sso.Location
			}
		}
	}
	if len(md.IDPSSODescriptors) > 0 {
		if len(out.certs) == 0 && err == nil { // else said above
			fail("IdP metadata %q: no signing certificate", md.EntityID)
		}
		if out.ssoURL == "" {
			fail("IdP metadata %q: no SingleSignOnService with the HTTP-Redirect binding", md.EntityID)
		} else if u, err := url.Parse(out.ssoURL); err != nil || absoluteURL(*u) != nil {
			fail("IdP metadata %q: SingleSignOnService location %q is not an absolute URL", md.EntityID, out.ssoURL)
		}
	}
	return out, errs
}

func absoluteURL(u url.URL) error {
	if u.Scheme != "https" && u.Scheme != "http" {
		return fmt.Errorf("%q: scheme must be https or http", u.String())
	}
	if u.Host == "" {
		return fmt.Errorf("%q: no host", u.String())
	}
	if u.Fragment != "" {
		return fmt.Errorf("%q: must not have a fragment", u.String())
	}
	return nil
}

// SigningCertificates are the certificates the IdP of md signs with: those
// of its IDPSSODescriptors' KeyDescriptors with use "signing" or none,
// each once. Certificates that do not parse are reported, the others
// returned.
func SigningCertificates(md *saml.EntityDescriptor) ([]*x509.Certificate, error) {
	if md == nil {
		return nil, nil
	}
	var out []*x509.Certificate
	var errs []error
	seen := map[string]bool{}
	for _, d := range md.IDPSSODescriptors {
		for _, kd := range d.KeyDescriptors {
			if kd.Use != "" && kd.Use != "signing" {
				continue
			}
			for _, xc := range kd.KeyInfo.X509Data.X509Certificates {
				der, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(xc.Data), ""))
				if err != nil {
					errs = append(errs, fmt.Errorf("signing certificate: %w", err))
					continue
				}
				if seen[string(der)] {
					continue
				}
				seen[string(der)] = true
				cert, err := x509.ParseCertificate(der)
				if err != nil {
					errs = append(errs, fmt.Errorf("signing certificate: %w", err))
					continue
				}
				out = append(out, cert)
			}
		}
	}
	return out, errors.Join(errs...)
}
