package samlsp

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/beevik/etree"
	"github.com/crewjam/saml"
	"github.com/crewjam/saml/xmlenc"
	dsig "github.com/russellhaering/goxmldsig"
)

// ParseResponse validates the base64 SAMLResponse form value posted to the
// ACS and returns the verified assertion. possibleRequestIDs are the
// AuthnRequest IDs bound to this browser; empty means the browser started
// no login (IdP-initiated). Every refusal is a *RejectError (errors.Is
// ErrInvalid); a cancelled ctx returns ctx.Err(). ParseResponse does no
// I/O and does not remember assertion IDs: replay protection is the
// caller's (see Assertion.ReplayUntil).
func (sp *SP) ParseResponse(ctx context.Context, samlResponseB64 string, possibleRequestIDs []string) (*Assertion, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	now := sp.s.now()

	// Before any cryptography: size, encoding, markup, round-trip
	// stability, structure, algorithms — on the one parse of the document.
	raw, err := decode(samlResponseB64, sp.s.maxResponseBytes)
	if err != nil {
		return nil, err
	}
	doc, err := parseXML(raw)
	if err != nil {
		return nil, err
	}
	in, err := inspectResponse(doc, sp.s.allowSHA1)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}

	// The layers crewjam/saml calls, in its order: goxmldsig on the
	// Response, the Response's own fields, xmlenc on the
	// EncryptedAssertion, goxmldsig on the assertion.
	resp, err := sp.verifyResponse(in, now)
	if err != nil {
		return nil, err
	}
	checked, verified, err := sp.verifyAssertion(in, resp, now)
	if err != nil {
		return nil, err
	}

	// Everything else, read from the verified assertion.
	return sp.check(resp, checked, verified, possibleRequestIDs, now)
}

// verifyResponse verifies the Response's signature, when it has one, and
// checks the Response's own fields. It returns the Response to read them
// from: the element goxmldsig verified, or the document's Response when it
// is unsigned (the assertion's signature then covers all that is used).
func (sp *SP) verifyResponse(in *inspected, now time.Time) (*etree.Element, error) {
	resp := in.root
	if in.responseSigned {
		v, err := sp.validateSignature(in.root, now)
		if err != nil {
			return nil, err
		}
		resp = v
	}
	if dest := attrValue(resp, "Destination"); dest != sp.s.acsURL {
		return nil, reject(ReasonDestination, "Destination %q, want %q", dest, sp.s.acsURL)
	}
	issued, err := timeAttr(resp, "IssueInstant", "Response")
	if err != nil {
		return nil, err
	}
	if issued.IsZero() {
		// crewjam read a missing IssueInstant as the year 1: expired.
		return nil, reject(ReasonExpired, "Response has no IssueInstant")
	}
	if err := sp.checkIssueInstant("Response", issued, now); err != nil {
		return nil, err
	}
	issuer := oneChild(resp, nsAssertion, "Issuer")
	if iss, _ := textOf(issuer); issuer == nil || iss != sp.s.idpEntityID {
		return nil, reject(ReasonIssuer, "response issuer %q, want %q", iss, sp.s.idpEntityID)
	}
	status := ""
	if st := oneChild(resp, nsProtocol, "Status"); st != nil {
		if code := oneChild(st, nsProtocol, "StatusCode"); code != nil {
			status = attrValue(code, "Value")
		}
	}
	if status != saml.StatusSuccess {
		return nil, reject(ReasonStatus, "IdP status %q", status)
	}
	return resp, nil
}

// verifyAssertion finds the assertion (decrypting it, once, when it is
// encrypted) and verifies its signature. It returns the element the
// structure checks examined (the document's Assertion, or the decrypted
// one) and the element to read from: the one goxmldsig verified, or, for
// an assertion only the Response's signature covers, that assertion
// within the verified Response.
func (sp *SP) verifyAssertion(in *inspected, resp *etree.Element, now time.Time) (checked, verified *etree.Element, err error) {
	if in.encrypted != nil {
		enc := oneChild(resp, nsAssertion, "EncryptedAssertion")
		if enc == nil {
			return nil, nil, reject(ReasonStructure, "the verified Response holds no single EncryptedAssertion")
		}
		plain, err := sp.decrypt(enc)
		if err != nil {
			return nil, nil, err
		}
		if checked, err = sp.parseDecrypted(plain); err != nil {
			return nil, nil, err
		}
		verified = checked // what the Response's signature covers, through the ciphertext
	} else {
		checked = in.assertion
		if verified = oneChild(resp, nsAssertion, "Assertion"); verified == nil {
			return nil, nil, reject(ReasonStructure, "the verified Response holds no single Assertion")
		}
	}

	signed := len(mustChildren(checked, nsDSig, "Signature")) > 0
	switch {
	case !signed && !in.responseSigned:
		return nil, nil, reject(ReasonSignature, "neither the Response nor the assertion is signed")
	case !signed && sp.s.requireSignedAssertion:
		return nil, nil, reject(ReasonUnsignedAssertion, "assertion %q is not signed (only the Response is)", idOf(checked))
	case signed && (!in.responseSigned || sp.s.requireSignedAssertion):
		// The assertion's signature is verified on the document's
		// element (or the decrypted one), as crewjam does, not on its
		// copy inside the verified Response: the Response's
		// canonicalisation may have dropped namespace declarations the
		// assertion's InclusiveNamespaces need.
		if verified, err = sp.validateSignature(checked, now); err != nil {
			return nil, nil, err
		}
	}
	if id := idOf(verified); id == "" || id != idOf(checked) {
		return nil, nil, reject(ReasonStructure, "verified assertion %q, the document's assertion is %q", id, idOf(checked))
	}
	if in.encrypted != nil {
		// The structure checks a plaintext assertion had before any
		// cryptography, now that the signature is known to be good.
		if err := checkDecrypted(checked, sp.s.allowSHA1); err != nil {
			return nil, nil, err
		}
	}
	return checked, verified, nil
}

// validateSignature verifies el's enveloped signature with goxmldsig
// against the IdP's signing certificates and returns the element goxmldsig
// verified (parsed from the canonical bytes it digested). goxmldsig copies
// the element it is given and reads the copy without its ancestors; crewjam
// first makes a detached copy carrying the namespaces in scope
// (etreeutils.NSDetatch). Here those declarations are added to el itself
// for the call and removed after it, so that goxmldsig's copy is the only
// one. el's tree is this request's own.
func (sp *SP) validateSignature(el *etree.Element, now time.Time) (verified *etree.Element, err error) {
	defer func() {
		// crewjam's ParseXMLResponse, goxmldsig included, ran under
		// recover(); so does goxmldsig alone.
		if r := recover(); r != nil {
			verified, err = nil, reject(ReasonMalformed, "goxmldsig: panicked: %v", r)
		}
	}()
	defer declareInheritedNamespaces(el)()
	store := &sp.certs
	if sig := oneChild(el, nsDSig, "Signature"); sig != nil {
		switch ki := sig.FindElement("KeyInfo"); {
		case ki == nil:
		case el.FindElement("./Signature/KeyInfo/X509Data/X509Certificate") == nil:
			// Like crewjam: a KeyInfo without a certificate (e.g. a
			// bare RSAKeyValue) is dropped so that the IdP's
			// certificate is used.
			sig.RemoveChild(ki)
		default:
			// goxmldsig would parse the KeyInfo's certificate and look
			// for an IdP certificate with the same bytes. The bytes are
			// compared here instead, and goxmldsig gets that one
			// certificate without the KeyInfo: the same certificate,
			// checked the same way, without an x509 parse per request.
			// A certificate that is not the IdP's is left to goxmldsig.
			if i := sp.keyInfoCert(ki); i >= 0 {
				sig.RemoveChild(ki)
				store = &sp.oneCert[i]
			}
		}
	}
	// A ValidationContext is a few words: one per call, so that its
	// Clock is this request's now; the certificate stores are the SP's.
	vc := dsig.ValidationContext{CertificateStore: store, IdAttribute: "ID", Clock: dsig.NewFakeClockAt(now)}
	verified, err = vc.Validate(el)
	if err != nil {
		return nil, &RejectError{Reason: ReasonSignature, Detail: fmt.Sprintf("goxmldsig: signature of <%s>: %v", el.FullTag(), err), Cause: err}
	}
	return verified, nil
}

// declareInheritedNamespaces declares on el the namespaces in scope above
// it that el does not declare itself (the declarations NSDetatch puts on
// its copy; the reserved xml and xmlns prefixes need none), and returns
// the function that removes them again.
func declareInheritedNamespaces(el *etree.Element) (undo func()) {
	n := len(el.Attr)
	var declared map[string]bool // prefixes declared at or below this level; "" is the default namespace
	for x := el; x != nil; x = x.Parent() {
		for _, a := range x.Attr {
			prefix, ok := declaredPrefix(a)
			if !ok || declared[prefix] {
				continue
			}
			if declared == nil {
				declared = map[string]bool{}
			}
			declared[prefix] = true
			if x == el || prefix == "xml" || prefix == "xmlns" {
				continue
			}
			if prefix == "" {
				el.CreateAttr("xmlns", a.Value)
			} else {
				el.CreateAttr("xmlns:"+prefix, a.Value)
			}
		}
	}
	return func() { el.Attr = el.Attr[:n] }
}

// declaredPrefix returns the prefix a declares ("" for the default
// namespace), if a is a namespace declaration.
func declaredPrefix(a etree.Attr) (string, bool) {
	switch {
	case a.Space == "xmlns":
		return a.Key, true
	case a.Space == "" && a.Key == "xmlns":
		return "", true
	}
	return "", false
}

// keyInfoCert returns the index of the IdP certificate whose DER bytes
// are those of the KeyInfo's first certificate as goxmldsig reads it
// (ds:X509Data/ds:X509Certificate, whitespace removed, standard base64),
// or -1 (also for a KeyInfo of another shape, left to goxmldsig).
func (sp *SP) keyInfoCert(ki *etree.Element) int {
	certs := mustChildren(oneChild(ki, nsDSig, "X509Data"), nsDSig, "X509Certificate")
	if len(certs) == 0 {
		return -1
	}
	cert := certs[0]
	text := strings.Map(func(r rune) rune {
		switch r {
		case ' ', '\t', '\n', '\f', '\r':
			return -1
		}
		return r
	}, cert.Text())
	der, err := base64.StdEncoding.DecodeString(text)
	if err != nil {
		return -1
	}
	for i, c := range sp.certs.Roots {
		if bytes.Equal(c.Raw, der) {
			return i
		}
	}
	return -1
}

// isRoot says whether el is its document's root element.
func isRoot(el *etree.Element) bool {
	p := el.Parent()
	return p == nil || (p.Tag == "" && p.Parent() == nil)
}

// decrypt decrypts the EncryptedAssertion with crewjam's xmlenc, with one
// RSA-OAEP decryption: the EncryptedKey (in EncryptedData's KeyInfo or
// beside EncryptedData) is unwrapped with the SP's key, and EncryptedData
// is then handed to xmlenc with that session key and without the
// EncryptedKey, so xmlenc cannot unwrap it again. Every call to xmlenc
// goes through sp.xmlencDecrypt, and only one gets the RSA key.
func (sp *SP) decrypt(enc *etree.Element) (plain []byte, err error) {
	defer func() {
		if r := recover(); r != nil {
			plain, err = nil, reject(ReasonMalformed, "xmlenc: panicked: %v", r)
		}
	}()
	data := oneChild(enc, nsXEnc, "EncryptedData")
	if data == nil {
		return nil, reject(ReasonStructure, "EncryptedAssertion must hold one xenc:EncryptedData")
	}
	keys := elementsNamed(enc, "EncryptedKey")
	if len(keys) != 1 {
		return nil, reject(ReasonDecrypt, "EncryptedAssertion holds %d EncryptedKey elements, want 1", len(keys))
	}
	keyEl := keys[0]
	keyInfo := keyEl.Parent()
	switch {
	case keyInfo == enc:
	case keyInfo.Tag == "KeyInfo" && keyInfo.NamespaceURI() == nsDSig && keyInfo.Parent() == data:
	default:
		return nil, reject(ReasonDecrypt, "EncryptedKey inside <%s>: want it in EncryptedData's KeyInfo or beside EncryptedData", keyInfo.FullTag())
	}
	if sp.rsaKey == nil {
		return nil, reject(ReasonDecrypt, "the SP key is not an RSA key: it cannot decrypt")
	}
	sessionKey, err := sp.xmlencDecrypt(sp.rsaKey, keyEl)
	if err != nil {
		return nil, &RejectError{Reason: ReasonDecrypt, Detail: "xmlenc: session key: " + err.Error(), Cause: err}
	}
	if keyInfo != enc {
		data.RemoveChild(keyInfo) // the tree is this request's own
	}
	plain, err = sp.xmlencDecrypt(sessionKey, data)
	if err != nil {
		return nil, &RejectError{Reason: ReasonDecrypt, Detail: "xmlenc: " + err.Error(), Cause: err}
	}
	return plain, nil
}

// xmlencDecrypt is xmlenc.Decrypt, the default of SP.xmlencDecrypt.
func xmlencDecrypt(key any, el *etree.Element) ([]byte, error) { return xmlenc.Decrypt(key, el) }

// parseDecrypted parses the decrypted assertion (with every check
// parseXML makes) and refuses one that uses a namespace prefix it does not
// declare itself: it must be self-contained (crewjam/saml refused it too,
// and goxmldsig would canonicalise it without the namespace).
func (sp *SP) parseDecrypted(plain []byte) (*etree.Element, error) {
	doc, err := parseXML(plain)
	if err != nil {
		return nil, err
	}
	root := doc.Root()
	if err := checkPrefixesDeclared(root); err != nil {
		return nil, err
	}
	// The signature's shape and algorithms before goxmldsig runs, as for
	// a plaintext assertion (the rest of the structure after).
	sigs := mustChildren(root, nsDSig, "Signature")
	if len(sigs) > 1 {
		return nil, reject(ReasonStructure, "Assertion has %d signatures", len(sigs))
	}
	if len(sigs) == 1 {
		if err := checkSignature(sigs[0], idOf(root), sp.s.allowSHA1); err != nil {
			return nil, err
		}
	}
	return root, nil
}

// checkPrefixesDeclared refuses an element or attribute prefix that is not
// declared in el's subtree or above it.
func checkPrefixesDeclared(el *etree.Element) error {
	if el.Space != "" && el.NamespaceURI() == "" {
		return reject(ReasonDecrypt, "undeclared namespace prefix %q on <%s>: the decrypted assertion must declare its namespaces itself", el.Space, el.FullTag())
	}
	for _, a := range el.Attr {
		if a.Space != "" && a.Space != "xmlns" && a.Space != "xml" && a.NamespaceURI() == "" {
			return reject(ReasonDecrypt, "undeclared namespace prefix %q on attribute %s of <%s>", a.Space, a.FullKey(), el.FullTag())
		}
	}
	for c := range el.ChildElementsSeq() {
		if err := checkPrefixesDeclared(c); err != nil {
			return err
		}
	}
	return nil
}

// checkDecrypted applies to a decrypted assertion the structure checks a
// plaintext one had before any cryptography.
func checkDecrypted(root *etree.Element, allowSHA1 bool) error {
	if root.Tag != "Assertion" || root.NamespaceURI() != nsAssertion {
		return reject(ReasonStructure, "EncryptedAssertion holds {%s}%s", root.NamespaceURI(), root.Tag)
	}
	if n := len(elementsNamed(root, "Assertion")) + len(elementsNamed(root, "EncryptedAssertion")); n != 1 {
		return reject(ReasonStructure, "decrypted assertion contains %d assertions", n)
	}
	if err := checkCrewjamView(root); err != nil {
		return err
	}
	if err := checkSignaturePlacement(root, root); err != nil {
		return err
	}
	return inspectAssertion(root, allowSHA1)
}

// check applies every check on the assertion itself. Values are read from
// verified, the element the signature check verified; checked, the
// element the structure checks examined, serves only to compare.
func (sp *SP) check(resp, checked, va *etree.Element, possibleRequestIDs []string, now time.Time) (*Assertion, error) {
	// crewjam's order first: IssueInstant, Issuer, SubjectConfirmation
	// Recipient and times, Conditions.
	issued, err := timeAttr(va, "IssueInstant", "assertion")
	if err != nil {
		return nil, err
	}
	if issued.IsZero() {
		return nil, reject(ReasonExpired, "assertion has no IssueInstant")
	}
	if err := sp.checkIssueInstant("assertion", issued, now); err != nil {
		return nil, err
	}
	issuer := oneChild(va, nsAssertion, "Issuer")
	if iss, _ := textOf(issuer); issuer == nil || iss != sp.s.idpEntityID {
		return nil, reject(ReasonIssuer, "assertion issuer %q, want %q", iss, sp.s.idpEntityID)
	}
	subject := oneChild(va, nsAssertion, "Subject")
	if subject == nil {
		return nil, reject(ReasonNameID, "assertion has no single saml:Subject")
	}
	scs, err := readSubjectConfirmations(subject)
	if err != nil {
		return nil, err
	}
	notOnOrAfter, err := sp.checkSubjectConfirmation(scs, now)
	if err != nil {
		return nil, err
	}
	conditions, err := sp.checkConditions(va, now)
	if err != nil {
		return nil, err
	}
	notOnOrAfter = minTime(notOnOrAfter, conditions)
	authnInstant, sessionIndex, err := sp.checkAuthnStatement(va, now)
	if err != nil {
		return nil, err
	}
	nameID, err := checkNameID(subject, checked)
	if err != nil {
		return nil, err
	}
	// On the verified element, and on the document's, which still has
	// the namespace declarations canonicalisation drops.
	for _, a := range []*etree.Element{va, checked} {
		if err := sp.checkSPNameQualifiers(a); err != nil {
			return nil, err
		}
	}
	inResponseTo, err := sp.checkInResponseTo(attrValue(resp, "InResponseTo"), scs, possibleRequestIDs)
	if err != nil {
		return nil, err
	}
	attrs, friendly, err := readAttributes(va)
	if err != nil {
		return nil, err
	}
	return &Assertion{
		ID:            idOf(va),
		Issuer:        sp.s.idpEntityID,
		NameID:        nameID.value,
		NameIDFormat:  nameID.format,
		SessionIndex:  sessionIndex,
		AuthnInstant:  authnInstant,
		NotOnOrAfter:  notOnOrAfter,
		ReplayUntil:   notOnOrAfter.Add(sp.s.clockSkew),
		Attributes:    attrs,
		FriendlyNames: friendly,
		InResponseTo:  inResponseTo,
	}, nil
}

// checkIssueInstant bounds when the IdP says it issued the Response or the
// Assertion, with the connection's clock skew both ways: not after now +
// skew (an IdP clock ahead of ours), and not before now - skew -
// DeliveryAllowance (an IdP clock behind ours, plus the browser's trip).
func (sp *SP) checkIssueInstant(what string, issued, now time.Time) error {
	skew := sp.s.clockSkew
	if now.Add(skew).Before(issued) {
		return reject(ReasonNotYetValid, "%s IssueInstant %s is in the future: after now %s (skew %s)", what, issued.UTC(), now.UTC(), skew)
	}
	if oldest := now.Add(-skew - DeliveryAllowance); issued.Before(oldest) {
		return reject(ReasonExpired, "%s IssueInstant %s is too old: before now %s less the skew %s and %s for delivery", what, issued.UTC(), now.UTC(), skew, DeliveryAllowance)
	}
	return nil
}

// checkConditions checks the assertion's validity window and audience,
// and returns NotOnOrAfter.
func (sp *SP) checkConditions(va *etree.Element, now time.Time) (time.Time, error) {
	skew := sp.s.clockSkew
	c := oneChild(va, nsAssertion, "Conditions")
	if c == nil {
		return time.Time{}, reject(ReasonNoConditions, "assertion has no single Conditions")
	}
	notBefore, err := timeAttr(c, "NotBefore", "Conditions")
	if err != nil {
		return time.Time{}, err
	}
	notOnOrAfter, err := timeAttr(c, "NotOnOrAfter", "Conditions")
	if err != nil {
		return time.Time{}, err
	}
	switch {
	case notBefore.IsZero() || notOnOrAfter.IsZero():
		return time.Time{}, reject(ReasonNoConditions, "Conditions must have NotBefore and NotOnOrAfter")
	case now.Add(skew).Before(notBefore):
		return time.Time{}, reject(ReasonNotYetValid, "Conditions NotBefore %s is after now %s (skew %s)", notBefore.UTC(), now.UTC(), skew)
	case !now.Add(-skew).Before(notOnOrAfter):
		return time.Time{}, reject(ReasonExpired, "Conditions NotOnOrAfter %s is before now %s (skew %s)", notOnOrAfter.UTC(), now.UTC(), skew)
	}

	// Restrictions are ANDed, the Audiences inside one ORed (SAML core
	// §2.5.1.4).
	restrictions := mustChildren(c, nsAssertion, "AudienceRestriction")
	if len(restrictions) == 0 {
		return time.Time{}, reject(ReasonAudience, "no AudienceRestriction")
	}
	for _, r := range restrictions {
		var audiences []string
		for _, a := range mustChildren(r, nsAssertion, "Audience") {
			text, _ := textOf(a)
			audiences = append(audiences, strings.TrimSpace(text))
		}
		if !slices.Contains(audiences, sp.s.entityID) {
			return time.Time{}, reject(ReasonAudience, "AudienceRestriction %q does not name %q", audiences, sp.s.entityID)
		}
	}
	return notOnOrAfter, nil
}

// checkAuthnStatement requires one AuthnStatement with an AuthnInstant,
// neither in the future nor past its SessionNotOnOrAfter.
func (sp *SP) checkAuthnStatement(va *etree.Element, now time.Time) (time.Time, string, error) {
	skew := sp.s.clockSkew
	st := oneChild(va, nsAssertion, "AuthnStatement")
	if st == nil {
		return time.Time{}, "", reject(ReasonNoAuthnStatement, "want one AuthnStatement with an AuthnInstant")
	}
	instant, err := timeAttr(st, "AuthnInstant", "AuthnStatement")
	if err != nil {
		return time.Time{}, "", err
	}
	if instant.IsZero() {
		return time.Time{}, "", reject(ReasonNoAuthnStatement, "want one AuthnStatement with an AuthnInstant")
	}
	if now.Add(skew).Before(instant) {
		return time.Time{}, "", reject(ReasonNotYetValid, "AuthnInstant %s is in the future", instant.UTC())
	}
	session, err := timeAttr(st, "SessionNotOnOrAfter", "AuthnStatement")
	if err != nil {
		return time.Time{}, "", err
	}
	if !session.IsZero() && !now.Add(-skew).Before(session) {
		return time.Time{}, "", reject(ReasonExpired, "SessionNotOnOrAfter %s has passed", session.UTC())
	}
	return instant, attrValue(st, "SessionIndex"), nil
}

type nameID struct{ value, format string }

// checkNameID reads the subject's NameID from the verified element, and
// refuses any difference with the element the structure checks examined:
// it would be a parser differential.
func checkNameID(subject, checked *etree.Element) (nameID, error) {
	el := oneChild(subject, nsAssertion, "NameID")
	if el == nil {
		return nameID{}, reject(ReasonNameID, "no single NameID")
	}
	text, hasChildren := textOf(el)
	if hasChildren || strings.TrimSpace(text) == "" {
		return nameID{}, reject(ReasonNameID, "NameID is empty or holds elements")
	}
	checkedSubject := oneChild(checked, nsAssertion, "Subject")
	if seen, _ := textOf(oneChild(checkedSubject, nsAssertion, "NameID")); seen != text {
		return nameID{}, reject(ReasonNameID, "NameID read as %q in the verified element and %q in the document", text, seen)
	}
	return nameID{value: text, format: attrValue(el, "Format")}, nil
}

// checkSPNameQualifiers refuses the assertion when a NameID this package
// reads — the subject's, or one given as an attribute value (such as
// eduPersonTargetedID) — carries an SPNameQualifier other than our entity
// id. Such a NameID is in another SP's name space: a pairwise persistent
// id names a different person there, or the same person under a value
// that is not theirs here. An empty SPNameQualifier names no SP and is
// taken as absent. Every SPNameQualifier attribute is checked, in any
// namespace and even as a namespace declaration (encoding/xml, which
// crewjam used, reads an attribute by its local name whatever its prefix).
func (sp *SP) checkSPNameQualifiers(a *etree.Element) error {
	nameIDs := mustChildren(oneChild(a, nsAssertion, "Subject"), nsAssertion, "NameID")
	for _, st := range mustChildren(a, nsAssertion, "AttributeStatement") {
		nameIDs = append(nameIDs, elementsNamed(st, "NameID")...)
	}
	for _, n := range nameIDs {
		for _, a := range n.Attr {
			if a.Key != "SPNameQualifier" || a.Value == "" || a.Value == sp.s.entityID {
				continue
			}
			return reject(ReasonSPNameQualifier, "<%s> has SPNameQualifier %q, want %q (our entity id) or none", n.FullTag(), a.Value, sp.s.entityID)
		}
	}
	return nil
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

// mustChildren returns el's children named local in namespace ns.
func mustChildren(el *etree.Element, ns, local string) []*etree.Element {
	in, _ := children(el, ns, local)
	return in
}

// oneChild returns el's only child named local in namespace ns, or nil
// when there is none or more than one (or el is nil).
func oneChild(el *etree.Element, ns, local string) *etree.Element {
	if el == nil {
		return nil
	}
	var found *etree.Element
	for c := range el.ChildElementsSeq() {
		if c.Tag == local && c.NamespaceURI() == ns {
			if found != nil {
				return nil
			}
			found = c
		}
	}
	return found
}

// attrValue returns the value of el's unqualified attribute key (SAML's
// attributes are all unqualified), or "".
func attrValue(el *etree.Element, key string) string {
	for _, a := range el.Attr {
		if a.Space == "" && a.Key == key {
			return a.Value
		}
	}
	return ""
}

// timeAttr parses el's attribute key as crewjam/saml does
// (saml.RelaxedTime: RFC 3339 with or without a zone, rounded to the
// millisecond); absent or empty is the zero time.
func timeAttr(el *etree.Element, key, what string) (time.Time, error) {
	v := attrValue(el, key)
	var t saml.RelaxedTime
	if err := t.UnmarshalText([]byte(v)); err != nil {
		return time.Time{}, &RejectError{Reason: ReasonMalformed, Detail: fmt.Sprintf("%s %s %q is not a dateTime", what, key, v), Cause: err}
	}
	return time.Time(t), nil
}

// subjectConfirmation is a saml:SubjectConfirmation as read from the
// verified element; data is false when it has no SubjectConfirmationData.
type subjectConfirmation struct {
	method                  string
	data                    bool
	recipient, inResponseTo string
	notBefore, notOnOrAfter time.Time
}

func readSubjectConfirmations(subject *etree.Element) ([]subjectConfirmation, error) {
	var out []subjectConfirmation
	for _, el := range mustChildren(subject, nsAssertion, "SubjectConfirmation") {
		sc := subjectConfirmation{method: attrValue(el, "Method")}
		datas := mustChildren(el, nsAssertion, "SubjectConfirmationData")
		if len(datas) > 1 {
			return nil, reject(ReasonSubjectConfirmation, "SubjectConfirmation with %d SubjectConfirmationData", len(datas))
		}
		if len(datas) == 1 {
			d := datas[0]
			sc.data, sc.recipient, sc.inResponseTo = true, attrValue(d, "Recipient"), attrValue(d, "InResponseTo")
			var err error
			if sc.notBefore, err = timeAttr(d, "NotBefore", "SubjectConfirmationData"); err != nil {
				return nil, err
			}
			if sc.notOnOrAfter, err = timeAttr(d, "NotOnOrAfter", "SubjectConfirmationData"); err != nil {
				return nil, err
			}
		}
		out = append(out, sc)
	}
	return out, nil
}

// checkSubjectConfirmation requires a bearer SubjectConfirmation, and
// each SubjectConfirmation — bearer or not, as crewjam required of all —
// to have data for our ACS that is current. It returns the earliest bearer
// NotOnOrAfter.
func (sp *SP) checkSubjectConfirmation(scs []subjectConfirmation, now time.Time) (time.Time, error) {
	var earliest time.Time
	skew := sp.s.clockSkew
	for _, d := range scs {
		switch {
		case !d.data:
			return time.Time{}, reject(ReasonSubjectConfirmation, "SubjectConfirmation (%s) without SubjectConfirmationData", d.method)
		case d.recipient != sp.s.acsURL:
			return time.Time{}, reject(ReasonRecipient, "Recipient %q, want %q", d.recipient, sp.s.acsURL)
		case d.notOnOrAfter.IsZero():
			return time.Time{}, reject(ReasonSubjectConfirmation, "SubjectConfirmationData without NotOnOrAfter")
		case !now.Add(-skew).Before(d.notOnOrAfter):
			return time.Time{}, reject(ReasonExpired, "SubjectConfirmationData NotOnOrAfter %s is before now %s (skew %s)", d.notOnOrAfter.UTC(), now.UTC(), skew)
		case !d.notBefore.IsZero() && now.Add(skew).Before(d.notBefore):
			return time.Time{}, reject(ReasonNotYetValid, "SubjectConfirmationData NotBefore %s is after now %s", d.notBefore.UTC(), now.UTC())
		}
		if d.method != bearerMethod {
			continue
		}
		if earliest.IsZero() || d.notOnOrAfter.Before(earliest) {
			earliest = d.notOnOrAfter
		}
	}
	if earliest.IsZero() {
		return time.Time{}, reject(ReasonSubjectConfirmation, "no bearer SubjectConfirmation")
	}
	return earliest, nil
}

// checkInResponseTo binds the response to the browser. The InResponseTo
// values present — on the Response and on each bearer
// SubjectConfirmationData — must be one and the same request ID, bound to
// this browser. With none present the login is IdP-initiated, refused
// unless allowed. With IdP-initiated login off, the ID must also be in the
// assertion's SubjectConfirmationData (which the verified signature
// covers), not only on a Response that may be unsigned.
func (sp *SP) checkInResponseTo(responseIRT string, scs []subjectConfirmation, possibleRequestIDs []string) (string, error) {
	ids := slices.DeleteFunc(slices.Clone(possibleRequestIDs), func(s string) bool { return s == "" })
	if len(ids) == 0 && !sp.s.allowIDPInitiated {
		return "", reject(ReasonUnsolicited, "this browser started no login and IdP-initiated login is off")
	}
	irt, inAssertion := responseIRT, true
	for _, sc := range scs {
		if sc.method != bearerMethod || !sc.data {
			continue
		}
		v := sc.inResponseTo
		switch {
		case v == "":
			inAssertion = false
		case irt == "":
			irt = v
		case v != irt:
			return "", reject(ReasonInResponseTo, "InResponseTo values disagree: %q and %q", irt, v)
		}
	}
	switch {
	case irt == "" && sp.s.allowIDPInitiated:
		return "", nil
	case irt == "":
		return "", reject(ReasonUnsolicited, "the response answers no request and IdP-initiated login is off")
	case !slices.Contains(ids, irt):
		return "", reject(ReasonInResponseTo, "InResponseTo %q is not a request of this browser", irt)
	case !inAssertion && !sp.s.allowIDPInitiated:
		return "", reject(ReasonUnsolicited, "InResponseTo %q is on the Response but not in the assertion's SubjectConfirmationData, and IdP-initiated login is off", irt)
	}
	return irt, nil
}

// readAttributes reads the assertion's Attributes: Name to values (a
// NameID value when the AttributeValue holds one, else its text), and Name
// to FriendlyName.
func readAttributes(a *etree.Element) (map[string][]string, map[string]string, error) {
	attrs := map[string][]string{}
	friendly := map[string]string{}
	for _, st := range mustChildren(a, nsAssertion, "AttributeStatement") {
		for _, at := range mustChildren(st, nsAssertion, "Attribute") {
			name := attrValue(at, "Name")
			if name == "" {
				return nil, nil, reject(ReasonStructure, "Attribute without Name")
			}
			if _, dup := attrs[name]; dup {
				return nil, nil, reject(ReasonDuplicateAttribute, "attribute %q appears twice", name)
			}
			values := mustChildren(at, nsAssertion, "AttributeValue")
			vals := make([]string, 0, len(values))
			for _, v := range values {
				ids := mustChildren(v, nsAssertion, "NameID")
				switch len(ids) {
				case 0:
					text, _ := textOf(v)
					vals = append(vals, text)
				case 1:
					text, _ := textOf(ids[0])
					vals = append(vals, text)
				default:
					return nil, nil, reject(ReasonNameID, "a value of attribute %q holds %d NameIDs", name, len(ids))
				}
			}
			attrs[name] = vals
			if f := attrValue(at, "FriendlyName"); f != "" {
				friendly[name] = f
			}
		}
	}
	return attrs, friendly, nil
}
