package samlsp

import (
	"crypto/rsa"
	"crypto/x509"
	"encoding/xml"
	"fmt"
	"net/url"
	"time"

	"github.com/beevik/etree"
	"github.com/crewjam/saml"
	dsig "github.com/russellhaering/goxmldsig"
)

// SP is the service provider of one SAML connection. It is immutable after
// New and safe for concurrent use.
type SP struct {
	s settings
	// certs holds the IdP's signing certificates, parsed once in New:
	// goxmldsig only reads it.
	certs dsig.MemoryX509CertificateStore
	// oneCert[i] holds only certs.Roots[i].
	oneCert []dsig.MemoryX509CertificateStore
	// rsaKey decrypts encrypted assertions; nil for an ECDSA SP key.
	rsaKey *rsa.PrivateKey
	// xmlencDecrypt is xmlenc.Decrypt; every decryption goes through it
	// (tests count the calls given the RSA key).
	xmlencDecrypt func(key any, el *etree.Element) ([]byte, error)
	// crewjam builds our metadata and AuthnRequests; it no longer
	// validates responses (see the package documentation).
	crewjam *saml.ServiceProvider
}

// New validates cfg and returns the SP. cfg.IDPMetadata is kept by
// reference and must not be modified afterwards: build a new SP when the
// IdP's metadata changes.
func New(cfg Config) (*SP, error) {
	s, err := cfg.settings()
	if err != nil {
		return nil, fmt.Errorf("samlsp: invalid configuration: %w", err)
	}
	sp := &SP{
		s:             s,
		certs:         dsig.MemoryX509CertificateStore{Roots: s.idpCerts},
		xmlencDecrypt: xmlencDecrypt,
	}
	for _, c := range s.idpCerts {
		sp.oneCert = append(sp.oneCert, dsig.MemoryX509CertificateStore{Roots: []*x509.Certificate{c}})
	}
	sp.rsaKey, _ = cfg.Key.(*rsa.PrivateKey)
	sp.crewjam = &saml.ServiceProvider{
		EntityID:          s.entityID,
		Key:               cfg.Key,
		Certificate:       cfg.Certificate,
		MetadataURL:       cfg.MetadataURL,
		AcsURL:            cfg.ACSURL,
		IDPMetadata:       cfg.IDPMetadata,
		AuthnNameIDFormat: s.nameIDFormat,
	}
	if s.signRequests {
		sp.crewjam.SignatureMethod = s.requestSigAlg
	}
	return sp, nil
}

// MetadataCacheDuration is the cacheDuration of our SP metadata: how long
// an IdP that fetches it from its URL may keep it before fetching it
// again (a new SP certificate reaches it within a day). It is a caching
// hint, not an expiry: the metadata has no validUntil.
const MetadataCacheDuration = 24 * time.Hour

// Metadata returns our SP metadata: one ACS with the HTTP-POST binding (we
// do not support the artifact binding crewjam also announces), our
// certificate for signing (when we sign requests) and encryption, the
// NameID format we want, and WantAssertionsSigned per the configuration.
//
// It has no validUntil, where crewjam puts now + 48h on the
// EntityDescriptor and the SPSSODescriptor: an IdP that imports the
// metadata once, as a file, and honours validUntil (Shibboleth,
// SimpleSAMLphp) would stop serving the SP two days later, though
// nothing in it changed. It carries cacheDuration (MetadataCacheDuration)
// instead. Marshal it with MarshalMetadata: encoding/xml writes a zero
// validUntil as year 1, which is long expired.
//
// The result is a fresh value on each call.
func (sp *SP) Metadata() *saml.EntityDescriptor {
	md := sp.crewjam.Metadata()
	md.ValidUntil = time.Time{}
	md.CacheDuration = MetadataCacheDuration
	for i := range md.SPSSODescriptors {
		d := &md.SPSSODescriptors[i]
		d.ValidUntil = nil
		var acs []saml.IndexedEndpoint
		for _, e := range d.AssertionConsumerServices {
			if e.Binding == saml.HTTPPostBinding {
				e.Index = 1
				acs = append(acs, e)
			}
		}
		d.AssertionConsumerServices = acs
		want := sp.s.requireSignedAssertion
		d.WantAssertionsSigned = &want
	}
	return md
}

// AuthnRequestURL starts an SP-initiated login: it returns the IdP URL to
// redirect the browser to (HTTP-Redirect binding, signed when the IdP's
// metadata says WantAuthnRequestsSigned) and the request's ID, which the
// caller must bind to this browser (for example in a SameSite=None; Secure
// tracking cookie) and pass back to ParseResponse in possibleRequestIDs.
//
// relayState is sent as is (URL-escaped) and must be at most 80 bytes, as
// the SAML bindings require: pass an opaque handle, not a return URL.
func (sp *SP) AuthnRequestURL(relayState string) (redirect *url.URL, requestID string, err error) {
	if len(relayState) > MaxRelayStateBytes {
		return nil, "", fmt.Errorf("samlsp: relay state is %d bytes, more than the %d the SAML bindings allow", len(relayState), MaxRelayStateBytes)
	}
	req, err := sp.crewjam.MakeAuthenticationRequest(sp.s.idpSSOURL, saml.HTTPRedirectBinding, saml.HTTPPostBinding)
	if err != nil {
		return nil, "", fmt.Errorf("samlsp: building AuthnRequest: %w", err)
	}
	// crewjam appends RelayState to the query without escaping it; escape
	// it here so that the signed query string is well-formed.
	u, err := req.Redirect(url.QueryEscape(relayState), sp.crewjam)
	if err != nil {
		return nil, "", fmt.Errorf("samlsp: encoding AuthnRequest: %w", err)
	}
	return u, req.ID, nil
}

// MarshalMetadata writes md (from Metadata) as an indented XML document
// without any validUntil attribute: crewjam's marshalling would write the
// zero validUntil of Metadata as 0001-01-01T00:00:00Z, long expired.
func MarshalMetadata(md *saml.EntityDescriptor) ([]byte, error) {
	raw, err := xml.Marshal(md)
	if err != nil {
		return nil, fmt.Errorf("samlsp: marshal SP metadata: %w", err)
	}
	doc := etree.NewDocument()
	if err := doc.ReadFromBytes(raw); err != nil {
		return nil, fmt.Errorf("samlsp: marshal SP metadata: %w", err)
	}
	for _, el := range append([]*etree.Element{doc.Root()}, doc.FindElements("//*")...) {
		el.RemoveAttr("validUntil")
	}
	doc.Indent(2)
	out, err := doc.WriteToBytes()
	if err != nil {
		return nil, fmt.Errorf("samlsp: marshal SP metadata: %w", err)
	}
	return append([]byte(xml.Header), out...), nil
}
