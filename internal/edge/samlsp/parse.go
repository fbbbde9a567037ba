package samlsp

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/beevik/etree"
	"github.com/crewjam/saml"
	"github.com/crewjam/saml/xmlenc"
	dsig "github.com/russellhaering/goxmldsig"
	"github.com/russellhaering/goxmldsig/etreeutils"
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

	// Before crewjam: size, encoding, markup, structure, algorithms.
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

	// crewjam: signatures, decryption, status, issuer, destination,
	// recipient and its own time bounds.
	verified, err := sp.parseWithCrewjam(raw)
	if err != nil {
		return nil, err
	}

	// After crewjam: what it leaves to the caller, on the verified
	// assertion.
	return sp.check(in, verified, possibleRequestIDs, now)
}

// parseWithCrewjam runs crewjam's ParseXMLResponse, turning its errors and
// panics into RejectErrors.
func (sp *SP) parseWithCrewjam(raw []byte) (a *saml.Assertion, err error) {
	defer func() {
		if r := recover(); r != nil {
			a, err = nil, reject(ReasonMalformed, "crewjam/saml panicked: %v", r)
		}
	}()
	a, err = sp.crewjam.ParseXMLResponse(raw, nil, sp.s.acs)
	if err != nil {
		return nil, classifyCrewjam(err)
	}
	return a, nil
}

// crewjamMessages maps fragments of crewjam/saml v0.5.1's (and goxmldsig
// v1.6.1's) error messages to reasons, first match wins; an unknown message
// is ReasonRejected. The messages are not API: TestReject's cases marked
// byCrewjam pin the ones real inputs reach, so an upgrade that rewords one
// fails there rather than in production metrics. (The last four are for
// inputs the checks before crewjam already refuse.)
var crewjamMessages = []struct {
	fragment string
	reason   Reason
}{
	// A decrypted assertion that uses a prefix declared only outside it
	// (on the Response): see the package documentation.
	{"undeclared namespace prefix", ReasonDecrypt},
	{"cannot validate signature", ReasonSignature},
	{"signature element not present", ReasonSignature},
	{"failed to decrypt", ReasonDecrypt},
	{"`Destination` does not match", ReasonDestination},
	{"Issuer does not match", ReasonIssuer},
	{"issuer is not", ReasonIssuer},
	{"Recipient is not", ReasonRecipient},
	{"IssueInstant expired", ReasonExpired},
	{"expired on", ReasonExpired},
	{"is expired", ReasonExpired},
	{"not yet valid", ReasonNotYetValid},
	{"invalid xml", ReasonMalformed},
	{"cannot unmarshal", ReasonMalformed},
	{"XML syntax error", ReasonMalformed},
	{"expected at least one valid Assertion", ReasonStructure},
}

func classifyCrewjam(err error) *RejectError {
	cause := err
	var ire *saml.InvalidResponseError
	if errors.As(err, &ire) && ire.PrivateErr != nil {
		cause = ire.PrivateErr // never ire.Response: it is the whole document
	}
	var status saml.ErrBadStatus
	if errors.As(cause, &status) {
		return &RejectError{Reason: ReasonStatus, Detail: "crewjam: IdP status " + status.Status, Cause: cause}
	}
	msg := cause.Error()
	for _, m := range crewjamMessages {
		if strings.Contains(msg, m.fragment) {
			return &RejectError{Reason: m.reason, Detail: "crewjam: " + msg, Cause: cause}
		}
	}
	return &RejectError{Reason: ReasonRejected, Detail: "crewjam: " + msg, Cause: cause}
}

// check applies what crewjam leaves to the caller. Identity is read from
// crewjam's struct of the verified assertion; the element it was read from
// (the document's only Assertion, or the decrypted EncryptedAssertion)
// serves for the structure crewjam's struct loses.
func (sp *SP) check(in *inspected, ca *saml.Assertion, possibleRequestIDs []string, now time.Time) (*Assertion, error) {
	el := in.assertion
	if in.encrypted != nil {
		var err error
		if el, err = sp.decryptedAssertion(in.encrypted); err != nil {
			return nil, err
		}
	}
	if ca.ID == "" || ca.ID != idOf(el) {
		return nil, reject(ReasonStructure, "crewjam verified assertion %q, the document's assertion is %q", ca.ID, idOf(el))
	}
	if err := sp.checkAssertionSignature(in, el, now); err != nil {
		return nil, err
	}
	if err := sp.checkIssuerAndDestination(in, ca); err != nil {
		return nil, err
	}
	if err := sp.checkResponseIssueInstant(in, now); err != nil {
		return nil, err
	}
	if err := sp.checkConditions(ca, el, now); err != nil {
		return nil, err
	}
	authn, err := sp.checkAuthnStatement(ca, now)
	if err != nil {
		return nil, err
	}
	nameID, err := checkNameID(ca, el)
	if err != nil {
		return nil, err
	}
	if err := sp.checkSPNameQualifiers(ca, el); err != nil {
		return nil, err
	}
	notOnOrAfter, err := sp.checkSubjectConfirmation(ca.Subject.SubjectConfirmations, now)
	if err != nil {
		return nil, err
	}
	notOnOrAfter = minTime(notOnOrAfter, ca.Conditions.NotOnOrAfter)
	inResponseTo, err := sp.checkInResponseTo(in.root.SelectAttrValue("InResponseTo", ""), ca.Subject.SubjectConfirmations, possibleRequestIDs)
	if err != nil {
		return nil, err
	}
	attrs, friendly, err := attributes(ca)
	if err != nil {
		return nil, err
	}
	return &Assertion{
		ID:            ca.ID,
		Issuer:        ca.Issuer.Value,
		NameID:        nameID.Value,
		NameIDFormat:  nameID.Format,
		SessionIndex:  authn.SessionIndex,
		AuthnInstant:  authn.AuthnInstant,
		NotOnOrAfter:  notOnOrAfter,
		ReplayUntil:   notOnOrAfter.Add(sp.s.clockSkew),
		Attributes:    attrs,
		FriendlyNames: friendly,
		InResponseTo:  inResponseTo,
	}, nil
}

// checkAssertionSignature requires, unless unsigned assertions are
// allowed, the assertion's own signature. crewjam verifies it only when the
// Response is unsigned, so with a signed Response it is verified here.
func (sp *SP) checkAssertionSignature(in *inspected, el *etree.Element, now time.Time) error {
	if !sp.s.requireSignedAssertion {
		return nil
	}
	if len(mustChildren(el, nsDSig, "Signature")) == 0 {
		return reject(ReasonUnsignedAssertion, "assertion %q is not signed (only the Response is)", idOf(el))
	}
	if in.responseSigned {
		return sp.verifySignature(el, now)
	}
	return nil
}

func (sp *SP) checkIssuerAndDestination(in *inspected, ca *saml.Assertion) error {
	if ca.Issuer.Value != sp.s.idpEntityID {
		return reject(ReasonIssuer, "assertion issuer %q, want %q", ca.Issuer.Value, sp.s.idpEntityID)
	}
	if iss, _ := textOf(mustChildren(in.root, nsAssertion, "Issuer")[0]); iss != sp.s.idpEntityID {
		return reject(ReasonIssuer, "response issuer %q, want %q", iss, sp.s.idpEntityID)
	}
	if dest := in.root.SelectAttrValue("Destination", ""); dest != sp.s.acsURL {
		return reject(ReasonDestination, "Destination %q, want %q", dest, sp.s.acsURL)
	}
	return nil
}

// checkResponseIssueInstant applies checkIssueInstant to the Response's
// IssueInstant, which crewjam has read already (it refuses a Response
// without one, or with one that is not a dateTime).
func (sp *SP) checkResponseIssueInstant(in *inspected, now time.Time) error {
	v := in.root.SelectAttrValue("IssueInstant", "")
	t, err := time.Parse(time.RFC3339, v)
	if err != nil {
		return reject(ReasonStructure, "Response IssueInstant %q is not a dateTime", v)
	}
	return sp.checkIssueInstant("Response", t, now)
}

// checkIssueInstant bounds when the IdP says it issued the Response or the
// Assertion, with the connection's clock skew both ways: not after now +
// skew (an IdP clock ahead of ours), and not before now - skew -
// DeliveryAllowance (an IdP clock behind ours, plus the browser's trip).
// crewjam's own, fixed bound is relaxed to the widest skew allowed (see
// clock.go), so this is the check that decides.
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

// checkConditions checks the assertion's IssueInstant, validity window and
// audience.
func (sp *SP) checkConditions(ca *saml.Assertion, el *etree.Element, now time.Time) error {
	skew := sp.s.clockSkew
	if ca.IssueInstant.IsZero() {
		return reject(ReasonStructure, "assertion has no IssueInstant")
	}
	if err := sp.checkIssueInstant("assertion", ca.IssueInstant, now); err != nil {
		return err
	}
	c := ca.Conditions
	switch {
	case c == nil || c.NotBefore.IsZero() || c.NotOnOrAfter.IsZero():
		return reject(ReasonNoConditions, "Conditions must have NotBefore and NotOnOrAfter")
	case now.Add(skew).Before(c.NotBefore):
		return reject(ReasonNotYetValid, "Conditions NotBefore %s is after now %s (skew %s)", c.NotBefore.UTC(), now.UTC(), skew)
	case !now.Add(-skew).Before(c.NotOnOrAfter):
		return reject(ReasonExpired, "Conditions NotOnOrAfter %s is before now %s (skew %s)", c.NotOnOrAfter.UTC(), now.UTC(), skew)
	}

	// Audience, from the element: crewjam keeps one Audience per
	// restriction. Restrictions are ANDed, the Audiences inside one ORed
	// (SAML core §2.5.1.4).
	restrictions := mustChildren(mustChildren(el, nsAssertion, "Conditions")[0], nsAssertion, "AudienceRestriction")
	if len(restrictions) == 0 {
		return reject(ReasonAudience, "no AudienceRestriction")
	}
	for _, r := range restrictions {
		var audiences []string
		for _, a := range mustChildren(r, nsAssertion, "Audience") {
			text, _ := textOf(a)
			audiences = append(audiences, strings.TrimSpace(text))
		}
		if !slices.Contains(audiences, sp.s.entityID) {
			return reject(ReasonAudience, "AudienceRestriction %q does not name %q", audiences, sp.s.entityID)
		}
	}
	return nil
}

func (sp *SP) checkAuthnStatement(ca *saml.Assertion, now time.Time) (saml.AuthnStatement, error) {
	skew := sp.s.clockSkew
	if len(ca.AuthnStatements) != 1 || ca.AuthnStatements[0].AuthnInstant.IsZero() {
		return saml.AuthnStatement{}, reject(ReasonNoAuthnStatement, "want one AuthnStatement with an AuthnInstant")
	}
	authn := ca.AuthnStatements[0]
	if now.Add(skew).Before(authn.AuthnInstant) {
		return authn, reject(ReasonNotYetValid, "AuthnInstant %s is in the future", authn.AuthnInstant.UTC())
	}
	if authn.SessionNotOnOrAfter != nil && !now.Add(-skew).Before(*authn.SessionNotOnOrAfter) {
		return authn, reject(ReasonExpired, "SessionNotOnOrAfter %s has passed", authn.SessionNotOnOrAfter.UTC())
	}
	return authn, nil
}

// checkNameID reads the NameID from crewjam's struct and from the element,
// and refuses any difference: it would be a parser differential.
func checkNameID(ca *saml.Assertion, el *etree.Element) (*saml.NameID, error) {
	if ca.Subject == nil || ca.Subject.NameID == nil || strings.TrimSpace(ca.Subject.NameID.Value) == "" {
		return nil, reject(ReasonNameID, "no NameID value")
	}
	nameID := ca.Subject.NameID
	subject := mustChildren(el, nsAssertion, "Subject")[0]
	if text, _ := textOf(mustChildren(subject, nsAssertion, "NameID")[0]); text != nameID.Value {
		return nil, reject(ReasonNameID, "NameID read as %q by crewjam and %q by etree", nameID.Value, text)
	}
	return nameID, nil
}

// checkSPNameQualifiers refuses the assertion when a NameID this package
// reads — the subject's, or one given as an attribute value (such as
// eduPersonTargetedID) — carries an SPNameQualifier other than our entity
// id. Such a NameID is in another SP's name space: a pairwise persistent
// id names a different person there, or the same person under a value
// that is not theirs here. An empty SPNameQualifier names no SP and is
// taken as absent. Both views are checked: crewjam's struct (which reads
// the attribute by local name whatever its prefix, the last one winning)
// and every SPNameQualifier attribute on the elements, in any namespace.
func (sp *SP) checkSPNameQualifiers(ca *saml.Assertion, el *etree.Element) error {
	check := func(q, where string) error {
		if q != "" && q != sp.s.entityID {
			return reject(ReasonSPNameQualifier, "%s has SPNameQualifier %q, want %q (our entity id) or none", where, q, sp.s.entityID)
		}
		return nil
	}
	if err := check(ca.Subject.NameID.SPNameQualifier, "the subject's NameID"); err != nil {
		return err
	}
	for _, st := range ca.AttributeStatements {
		for _, at := range st.Attributes {
			for _, v := range at.Values {
				if v.NameID == nil {
					continue
				}
				if err := check(v.NameID.SPNameQualifier, fmt.Sprintf("the NameID in attribute %q", at.Name)); err != nil {
					return err
				}
			}
		}
	}
	subject := mustChildren(el, nsAssertion, "Subject")[0]
	nameIDs := mustChildren(subject, nsAssertion, "NameID")
	for _, st := range mustChildren(el, nsAssertion, "AttributeStatement") {
		nameIDs = append(nameIDs, elementsNamed(st, "NameID")...)
	}
	for _, n := range nameIDs {
		for _, a := range n.Attr {
			if a.Key != "SPNameQualifier" {
				continue
			}
			if err := check(a.Value, "<"+n.FullTag()+">"); err != nil {
				return err
			}
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

// mustChildren returns children that inspectAssertion/inspectResponse
// already proved to exist.
func mustChildren(el *etree.Element, ns, local string) []*etree.Element {
	in, _ := children(el, ns, local)
	return in
}

// checkSubjectConfirmation requires a bearer SubjectConfirmation, and each
// bearer one to be for our ACS and current. It returns the earliest
// NotOnOrAfter.
func (sp *SP) checkSubjectConfirmation(scs []saml.SubjectConfirmation, now time.Time) (time.Time, error) {
	var earliest time.Time
	skew := sp.s.clockSkew
	for _, sc := range scs {
		if sc.Method != bearerMethod {
			continue
		}
		d := sc.SubjectConfirmationData
		switch {
		case d == nil:
			return time.Time{}, reject(ReasonSubjectConfirmation, "bearer SubjectConfirmation without SubjectConfirmationData")
		case d.Recipient != sp.s.acsURL:
			return time.Time{}, reject(ReasonRecipient, "Recipient %q, want %q", d.Recipient, sp.s.acsURL)
		case d.NotOnOrAfter.IsZero():
			return time.Time{}, reject(ReasonSubjectConfirmation, "bearer SubjectConfirmationData without NotOnOrAfter")
		case !now.Add(-skew).Before(d.NotOnOrAfter):
			return time.Time{}, reject(ReasonExpired, "SubjectConfirmationData NotOnOrAfter %s is before now %s (skew %s)", d.NotOnOrAfter.UTC(), now.UTC(), skew)
		case !d.NotBefore.IsZero() && now.Add(skew).Before(d.NotBefore):
			return time.Time{}, reject(ReasonNotYetValid, "SubjectConfirmationData NotBefore %s is after now %s", d.NotBefore.UTC(), now.UTC())
		}
		if earliest.IsZero() || d.NotOnOrAfter.Before(earliest) {
			earliest = d.NotOnOrAfter
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
func (sp *SP) checkInResponseTo(responseIRT string, scs []saml.SubjectConfirmation, possibleRequestIDs []string) (string, error) {
	ids := slices.DeleteFunc(slices.Clone(possibleRequestIDs), func(s string) bool { return s == "" })
	if len(ids) == 0 && !sp.s.allowIDPInitiated {
		return "", reject(ReasonUnsolicited, "this browser started no login and IdP-initiated login is off")
	}
	irt, inAssertion := responseIRT, true
	for _, sc := range scs {
		if sc.Method != bearerMethod || sc.SubjectConfirmationData == nil {
			continue
		}
		v := sc.SubjectConfirmationData.InResponseTo
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

func attributes(ca *saml.Assertion) (map[string][]string, map[string]string, error) {
	attrs := map[string][]string{}
	friendly := map[string]string{}
	for _, st := range ca.AttributeStatements {
		for _, at := range st.Attributes {
			if at.Name == "" {
				return nil, nil, reject(ReasonStructure, "Attribute without Name")
			}
			if _, dup := attrs[at.Name]; dup {
				return nil, nil, reject(ReasonDuplicateAttribute, "attribute %q appears twice", at.Name)
			}
			vals := make([]string, 0, len(at.Values))
			for _, v := range at.Values {
				if v.NameID != nil {
					vals = append(vals, v.NameID.Value)
				} else {
					vals = append(vals, v.Value)
				}
			}
			attrs[at.Name] = vals
			if at.FriendlyName != "" {
				friendly[at.Name] = at.FriendlyName
			}
		}
	}
	return attrs, friendly, nil
}

// decryptedAssertion decrypts the EncryptedAssertion the way crewjam did
// (crewjam does not return the element it verified), then applies the
// structure checks the plaintext assertion would have had before crewjam.
// It runs only after crewjam accepted the response, so unauthenticated
// input never costs a second RSA decryption.
func (sp *SP) decryptedAssertion(enc *etree.Element) (el *etree.Element, err error) {
	defer func() {
		if r := recover(); r != nil {
			el, err = nil, reject(ReasonMalformed, "decrypting the assertion panicked: %v", r)
		}
	}()
	data := mustChildren(enc, nsXEnc, "EncryptedData")[0]
	key := sp.key
	if keyEl := enc.FindElement("./EncryptedKey"); keyEl != nil {
		if key, err = xmlenc.Decrypt(sp.key, keyEl); err != nil {
			return nil, &RejectError{Reason: ReasonDecrypt, Detail: "session key: " + err.Error(), Cause: err}
		}
	}
	plain, err := xmlenc.Decrypt(key, data)
	if err != nil {
		return nil, &RejectError{Reason: ReasonDecrypt, Detail: err.Error(), Cause: err}
	}
	doc, err := parseXML(plain)
	if err != nil {
		return nil, err
	}
	root := doc.Root()
	if root.Tag != "Assertion" || root.NamespaceURI() != nsAssertion {
		return nil, reject(ReasonStructure, "EncryptedAssertion holds {%s}%s", root.NamespaceURI(), root.Tag)
	}
	if n := len(elementsNamed(root, "Assertion")) + len(elementsNamed(root, "EncryptedAssertion")); n != 1 {
		return nil, reject(ReasonStructure, "decrypted assertion contains %d assertions", n)
	}
	if err := checkCrewjamView(root); err != nil {
		return nil, err
	}
	if err := checkSignaturePlacement(root, root); err != nil {
		return nil, err
	}
	if err := inspectAssertion(root, sp.s.allowSHA1); err != nil {
		return nil, err
	}
	return root, nil
}

// verifySignature verifies el's own enveloped signature with goxmldsig,
// exactly as crewjam does for an assertion in an unsigned Response.
func (sp *SP) verifySignature(el *etree.Element, now time.Time) error {
	nsCtx, err := etreeutils.NSBuildParentContext(el)
	if err == nil {
		nsCtx, err = nsCtx.SubContext(el)
	}
	var detached *etree.Element
	if err == nil {
		detached, err = etreeutils.NSDetatch(nsCtx, el)
	}
	if err != nil {
		return &RejectError{Reason: ReasonStructure, Detail: "namespaces of the assertion: " + err.Error(), Cause: err}
	}
	// Like crewjam: a KeyInfo without a certificate (e.g. a bare
	// RSAKeyValue) is dropped so that the IdP's certificate is used.
	if detached.FindElement("./Signature/KeyInfo/X509Data/X509Certificate") == nil {
		if sig := detached.FindElement("./Signature"); sig != nil {
			if ki := sig.FindElement("KeyInfo"); ki != nil {
				sig.RemoveChild(ki)
			}
		}
	}
	vc := dsig.NewDefaultValidationContext(&dsig.MemoryX509CertificateStore{Roots: sp.s.idpCerts})
	vc.IdAttribute = "ID"
	vc.Clock = dsig.NewFakeClockAt(now) // a fixed time: our clock, not a fake one
	if _, err := vc.Validate(detached); err != nil {
		return &RejectError{Reason: ReasonSignature, Detail: fmt.Sprintf("assertion signature: %v", err), Cause: err}
	}
	return nil
}
