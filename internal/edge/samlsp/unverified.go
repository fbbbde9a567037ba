package samlsp

import (
	"errors"
	"strings"

	"github.com/beevik/etree"
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
	// Read from the element itself, as ParseResponse reads the verified
	// one (without its checks).
	subject := oneChild(el, nsAssertion, "Subject")
	nameIDEl := oneChild(subject, nsAssertion, "NameID")
	nameID, _ := textOf(nameIDEl)
	if nameIDEl == nil || strings.TrimSpace(nameID) == "" {
		return nil, reject(ReasonNameID, "no NameID value")
	}
	attrs, friendly, err := readAttributes(el)
	if err != nil {
		return nil, err
	}
	a := &Assertion{
		ID: idOf(el), NameID: nameID, NameIDFormat: attrValue(nameIDEl, "Format"),
		Attributes: attrs, FriendlyNames: friendly,
	}
	a.Issuer, _ = textOf(oneChild(el, nsAssertion, "Issuer"))
	if st := oneChild(el, nsAssertion, "AuthnStatement"); st != nil {
		a.SessionIndex = attrValue(st, "SessionIndex")
		a.AuthnInstant, _ = timeAttr(st, "AuthnInstant", "AuthnStatement")
	}
	if c := oneChild(el, nsAssertion, "Conditions"); c != nil {
		a.NotOnOrAfter, _ = timeAttr(c, "NotOnOrAfter", "Conditions")
	}
	return a, nil
}
