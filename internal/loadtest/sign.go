package loadtest

import (
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net/http"
	"time"

	"github.com/beevik/etree"
	"github.com/crewjam/saml"
)

// ClockSkew is the load-test connections' clock_skew, the widest the edge
// allows. Responses are issued (IssueInstant) ClockSkew after the moment
// they are made, so that one made before the timed phase is accepted from
// then until 2×ClockSkew + samlsp.DeliveryAllowance (20s) later: a
// scenario, with its signing, must fit in Window.
const ClockSkew = 5 * time.Minute

// Window is how long after signing starts a scenario's responses are
// accepted (kept a little short of the edge's bound).
const Window = 2*ClockSkew - 10*time.Second

// Person is a synthetic person of a load-test organisation.
type Person struct {
	Org        string
	ExternalID string // the persistent NameID
	Email      string
}

// target is where a response goes: the connection's ACS and SP entity id.
type target struct {
	acs, spEntityID string
}

// signer makes signed IdP-initiated responses for one scenario; made at t0
// (just before signing starts).
type signer struct {
	idp *saml.IdentityProvider
	t0  time.Time
	// spsso carries the SP's encryption certificate when the assertions
	// are to be encrypted (crewjam encrypts to it: AES-128-CBC, RSA-OAEP).
	spsso *saml.SPSSODescriptor
}

func newSigner(p *IdP, t0 time.Time, encryptTo *x509.Certificate) *signer {
	s := &signer{idp: p.provider(), t0: t0, spsso: &saml.SPSSODescriptor{}}
	if encryptTo != nil {
		s.spsso.KeyDescriptors = []saml.KeyDescriptor{{Use: "encryption", KeyInfo: saml.KeyInfo{X509Data: saml.X509Data{
			X509Certificates: []saml.X509Certificate{{Data: base64.StdEncoding.EncodeToString(encryptTo.Raw)}}}}}}
	}
	return s
}

// sign returns the base64 SAMLResponse form value of person signing in at
// tg: an unsolicited (IdP-initiated) response, the Response and the
// Assertion each signed (RSA-SHA256), the assertion encrypted to the SP
// when the signer has its certificate.
func (s *signer) sign(tg target, who Person) (string, error) {
	issued := s.t0.Add(ClockSkew) // see ClockSkew
	until := s.t0.Add(2*ClockSkew + time.Minute)
	sp := &saml.EntityDescriptor{EntityID: tg.spEntityID}
	acs := &saml.IndexedEndpoint{Binding: saml.HTTPPostBinding, Location: tg.acs}
	req := &saml.IdpAuthnRequest{IDP: s.idp, HTTPRequest: &http.Request{RemoteAddr: "127.0.0.1"},
		ServiceProviderMetadata: sp, SPSSODescriptor: s.spsso, ACSEndpoint: acs, Now: issued}
	str := func(name, v string) saml.Attribute {
		return saml.Attribute{Name: name, NameFormat: "urn:oasis:names:tc:SAML:2.0:attrname-format:basic",
			Values: []saml.AttributeValue{{Type: "xs:string", Value: v}}}
	}
	req.Assertion = &saml.Assertion{
		ID: randomID(), IssueInstant: issued, Version: "2.0",
		Issuer: saml.Issuer{Format: "urn:oasis:names:tc:SAML:2.0:nameid-format:entity", Value: IdPEntityID},
		Subject: &saml.Subject{
			NameID: &saml.NameID{Format: string(saml.PersistentNameIDFormat), NameQualifier: IdPEntityID,
				SPNameQualifier: tg.spEntityID, Value: who.ExternalID},
			SubjectConfirmations: []saml.SubjectConfirmation{{Method: "urn:oasis:names:tc:SAML:2.0:cm:bearer",
				SubjectConfirmationData: &saml.SubjectConfirmationData{NotOnOrAfter: until, Recipient: tg.acs}}},
		},
		Conditions: &saml.Conditions{NotBefore: s.t0.Add(-time.Minute), NotOnOrAfter: until,
			AudienceRestrictions: []saml.AudienceRestriction{{Audience: saml.Audience{Value: tg.spEntityID}}}},
		AuthnStatements: []saml.AuthnStatement{{AuthnInstant: s.t0, SessionIndex: randomID(),
			AuthnContext: saml.AuthnContext{AuthnContextClassRef: &saml.AuthnContextClassRef{
				Value: "urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport"}}}},
		AttributeStatements: []saml.AttributeStatement{{Attributes: []saml.Attribute{
			str("email", who.Email), str("givenName", "Load"), str("familyName", "Test"),
		}}},
	}
	if err := req.MakeResponse(); err != nil {
		return "", fmt.Errorf("sign a response: %w", err)
	}
	doc := etree.NewDocument()
	doc.SetRoot(req.ResponseEl)
	raw, err := doc.WriteToBytes()
	if err != nil {
		return "", err
	}
	return base64.StdEncoding.EncodeToString(raw), nil
}

func randomID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return "id-" + hex.EncodeToString(b)
}

// SignResponse is one signed IdP-initiated response (the base64
// SAMLResponse form value) of who at st's connection of who.Org, made
// as the runs make theirs (valid from t0 for Window); with encryptTo (the
// SP's certificate) the assertion is encrypted to it.
func (p *IdP) SignResponse(st State, who Person, t0 time.Time, encryptTo *x509.Certificate) (string, error) {
	return newSigner(p, t0, encryptTo).sign(st.target(who.Org), who)
}
