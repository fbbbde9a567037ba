package samlsp

import (
	"encoding/xml"
	"errors"
	"strings"

	"github.com/beevik/etree"
	"github.com/crewjam/saml"
)

// MaxUnverifiedBytes bounds what ReadUnverified reads.
const MaxUnverifiedBytes = 1 << 20

// ErrEncrypted: ReadUnverified was given an EncryptedAssertion, which only
// the SP's private key (the edge's) can read.
var ErrEncrypted = errors.New("the assertion is encrypted: only the edge holds the key to read it; paste the decrypted assertion (or the identity as JSON) instead")

// ReadUnverified reads the person out of a SAML Response — base64 as
// posted to the ACS, or its XML — or out of a bare Assertion, WITHOUT
// verifying anything: no signature, issuer, audience, destination, time or
// replay check. It is for showing what a response would map to (an admin's
// dry run), never for signing anyone in: use ParseResponse for that. The
// markup checks made before verification (size, DOCTYPE, comments,
// encoding, nesting) still apply. An EncryptedAssertion is refused with
// ErrEncrypted.
func ReadUnverified(response string) (*Assertion, error) {
	response = strings.TrimSpace(response)
	if response == "" {
		return nil, reject(ReasonMalformed, "empty")
	}
	var raw []byte
	if strings.HasPrefix(response, "<") {
		if len(response) > MaxUnverifiedBytes {
			return nil, reject(ReasonTooLarge, "%d bytes of XML, the limit is %d", len(response), MaxUnverifiedBytes)
		}
		raw = []byte(response)
	} else {
		var err error
		if raw, err = decode(response, MaxUnverifiedBytes*4/3+4); err != nil {
			return nil, err
		}
	}
	doc, err := parseXML(raw)
	if err != nil {
		return nil, err
	}
	root := doc.Root()
	if root == nil {
		return nil, reject(ReasonMalformed, "no root element")
	}
	var el *etree.Element
	switch {
	case root.Tag == "Assertion" && root.NamespaceURI() == nsAssertion:
		el = root
	case root.Tag == "EncryptedAssertion" && root.NamespaceURI() == nsAssertion:
		return nil, ErrEncrypted
	case root.Tag == "Response" && root.NamespaceURI() == nsProtocol:
		plain, _ := children(root, nsAssertion, "Assertion")
		enc, _ := children(root, nsAssertion, "EncryptedAssertion")
		switch {
		case len(plain) == 0 && len(enc) > 0:
			return nil, ErrEncrypted
		case len(plain) != 1 || len(enc) != 0:
			return nil, reject(ReasonStructure, "the Response has %d assertions and %d encrypted ones, want exactly one assertion", len(plain), len(enc))
		}
		el = plain[0]
	default:
		return nil, reject(ReasonStructure, "root element is {%s}%s, want a SAML Response or Assertion", root.NamespaceURI(), root.Tag)
	}
	// The assertion alone, with the namespaces declared above it.
	sub := etree.NewDocument()
	copied := el.Copy()
	for p := el.Parent(); p != nil; p = p.Parent() {
		for _, a := range p.Attr {
			if (a.Space == "xmlns" || (a.Space == "" && a.Key == "xmlns")) && copied.SelectAttr(a.FullKey()) == nil {
				copied.CreateAttr(a.FullKey(), a.Value)
			}
		}
	}
	sub.SetRoot(copied)
	b, err := sub.WriteToBytes()
	if err != nil {
		return nil, reject(ReasonMalformed, "%v", err)
	}
	var ca saml.Assertion
	if err := xml.Unmarshal(b, &ca); err != nil {
		return nil, &RejectError{Reason: ReasonMalformed, Detail: "assertion: " + err.Error(), Cause: err}
	}
	if ca.Subject == nil || ca.Subject.NameID == nil || strings.TrimSpace(ca.Subject.NameID.Value) == "" {
		return nil, reject(ReasonNameID, "no NameID value")
	}
	attrs, friendly, err := attributes(&ca)
	if err != nil {
		return nil, err
	}
	a := &Assertion{
		ID: ca.ID, NameID: ca.Subject.NameID.Value, NameIDFormat: ca.Subject.NameID.Format,
		Attributes: attrs, FriendlyNames: friendly,
	}
	if ca.Issuer.Value != "" {
		a.Issuer = ca.Issuer.Value
	}
	if len(ca.AuthnStatements) > 0 {
		a.SessionIndex, a.AuthnInstant = ca.AuthnStatements[0].SessionIndex, ca.AuthnStatements[0].AuthnInstant
	}
	if ca.Conditions != nil {
		a.NotOnOrAfter = ca.Conditions.NotOnOrAfter
	}
	return a, nil
}
