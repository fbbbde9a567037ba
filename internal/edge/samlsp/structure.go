package samlsp

import (
	"bytes"
	"encoding/base64"
	"errors"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/beevik/etree"
)

// Namespaces and algorithm identifiers.
const (
	nsProtocol  = "urn:oasis:names:tc:SAML:2.0:protocol"
	nsAssertion = "urn:oasis:names:tc:SAML:2.0:assertion"
	nsDSig      = "http://www.w3.org/2000/09/xmldsig#"
	nsXEnc      = "http://www.w3.org/2001/04/xmlenc#"
	nsExcC14N   = "http://www.w3.org/2001/10/xml-exc-c14n#"

	bearerMethod = "urn:oasis:names:tc:SAML:2.0:cm:bearer"
)

// maxDepth bounds the nesting of the document. A real SAML response is
// about 8 deep (Response/Assertion/AttributeStatement/Attribute/
// AttributeValue/...); etree's own default is 1024.
const maxDepth = 32

var (
	signatureMethods = map[string]bool{
		"http://www.w3.org/2001/04/xmldsig-more#rsa-sha256":   true,
		"http://www.w3.org/2001/04/xmldsig-more#rsa-sha384":   true,
		"http://www.w3.org/2001/04/xmldsig-more#rsa-sha512":   true,
		"http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256": true,
		"http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha384": true,
		"http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha512": true,
	}
	sha1SignatureMethods = map[string]bool{
		"http://www.w3.org/2000/09/xmldsig#rsa-sha1":        true,
		"http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha1": true,
	}
	digestMethods = map[string]bool{
		"http://www.w3.org/2001/04/xmlenc#sha256":       true,
		"http://www.w3.org/2001/04/xmldsig-more#sha384": true,
		"http://www.w3.org/2001/04/xmlenc#sha512":       true,
	}
	sha1DigestMethods = map[string]bool{
		"http://www.w3.org/2000/09/xmldsig#sha1": true,
	}
	// transforms are those goxmldsig implements; the SAML profile needs
	// only the first two.
	transforms = map[string]bool{
		"http://www.w3.org/2000/09/xmldsig#enveloped-signature":        true,
		"http://www.w3.org/2001/10/xml-exc-c14n#":                      true,
		"http://www.w3.org/2001/10/xml-exc-c14n#WithComments":          true,
		"http://www.w3.org/TR/2001/REC-xml-c14n-20010315":              true,
		"http://www.w3.org/TR/2001/REC-xml-c14n-20010315#WithComments": true,
		"http://www.w3.org/2006/12/xml-c14n11":                         true,
		"http://www.w3.org/2006/12/xml-c14n11#WithComments":            true,
	}
)

// inspected is a response that passed the checks made before any
// cryptography.
type inspected struct {
	root           *etree.Element
	responseSigned bool           // the Response carries a ds:Signature
	assertion      *etree.Element // the plaintext Assertion, or nil
	encrypted      *etree.Element // the EncryptedAssertion, or nil
}

// decode checks the form value's size, then base64-decodes it.
func decode(b64 string, maxBytes int) ([]byte, error) {
	if len(b64) > maxBytes {
		return nil, reject(ReasonTooLarge, "SAMLResponse is %d bytes of base64, the limit is %d", len(b64), maxBytes)
	}
	// IdPs may wrap the base64 at 64 or 76 columns.
	compact := strings.Map(func(r rune) rune {
		switch r {
		case ' ', '\t', '\r', '\n':
			return -1
		}
		return r
	}, b64)
	raw, err := base64.StdEncoding.DecodeString(compact)
	if err != nil {
		return nil, &RejectError{Reason: ReasonMalformed, Detail: "SAMLResponse is not base64: " + err.Error(), Cause: err}
	}
	if len(raw) == 0 {
		return nil, reject(ReasonMalformed, "SAMLResponse is empty")
	}
	return raw, nil
}

// parseXML parses a document after refusing what no SAML message needs:
// markup declarations (DOCTYPE, ENTITY...), encodings other than UTF-8,
// processing instructions other than the XML declaration, comments,
// duplicate attributes, ambiguous or duplicate IDs, and deep nesting.
func parseXML(raw []byte) (*etree.Document, error) {
	if at := declarationAt(raw); at >= 0 {
		return nil, reject(ReasonDoctype, "markup declaration %q at byte %d", excerpt(raw[at:]), at)
	}
	if !utf8.Valid(raw) {
		return nil, reject(ReasonMalformed, "not UTF-8")
	}
	doc := etree.NewDocument()
	doc.ReadSettings = etree.ReadSettings{PreserveDuplicateAttrs: true, MaxDepth: maxDepth}
	if err := doc.ReadFromBytes(raw); err != nil {
		if errors.Is(err, etree.ErrMaxDepth) {
			return nil, &RejectError{Reason: ReasonStructure, Detail: "XML nested deeper than the limit", Cause: err}
		}
		return nil, &RejectError{Reason: ReasonMalformed, Detail: "not well-formed XML: " + err.Error(), Cause: err}
	}

	var root *etree.Element
	for i, tok := range doc.Child {
		switch t := tok.(type) {
		case *etree.ProcInst:
			if t.Target != "xml" || i != 0 {
				return nil, reject(ReasonStructure, "processing instruction <?%s?>", t.Target)
			}
			if enc := declaredEncoding(t.Inst); enc != "" && !strings.EqualFold(enc, "utf-8") {
				return nil, reject(ReasonMalformed, "encoding %q, only UTF-8 is accepted", enc)
			}
		case *etree.Element:
			if root != nil {
				return nil, reject(ReasonStructure, "more than one root element")
			}
			root = t
		case *etree.CharData:
			if !t.IsWhitespace() {
				return nil, reject(ReasonMalformed, "text outside the root element")
			}
		default:
			if err := checkToken(tok); err != nil {
				return nil, err
			}
		}
	}
	if root == nil {
		return nil, reject(ReasonMalformed, "no root element")
	}
	ids := map[string]bool{}
	if err := checkTree(root, ids); err != nil {
		return nil, err
	}
	return doc, nil
}

// declarationAt returns the offset of the first "<!" that starts neither a
// comment nor a CDATA section, or -1. encoding/xml reads such markup as a
// Directive; refusing it on the bytes also covers entity references that
// would otherwise fail later as a mere syntax error.
func declarationAt(raw []byte) int {
	off := 0
	for {
		i := bytes.Index(raw[off:], []byte("<!"))
		if i < 0 {
			return -1
		}
		at := off + i
		rest := raw[at+2:]
		if !bytes.HasPrefix(rest, []byte("--")) && !bytes.HasPrefix(rest, []byte("[CDATA[")) {
			return at
		}
		off = at + 2
	}
}

func excerpt(b []byte) string {
	if len(b) > 24 {
		b = b[:24]
	}
	return string(b)
}

// declaredEncoding returns the encoding pseudo-attribute of an XML
// declaration's content, or "".
func declaredEncoding(inst string) string {
	i := strings.Index(inst, "encoding")
	if i < 0 {
		return ""
	}
	rest := strings.TrimLeft(inst[i+len("encoding"):], " \t\r\n")
	if !strings.HasPrefix(rest, "=") {
		return ""
	}
	rest = strings.TrimLeft(rest[1:], " \t\r\n")
	if rest == "" || (rest[0] != '"' && rest[0] != '\'') {
		return ""
	}
	end := strings.IndexByte(rest[1:], rest[0])
	if end < 0 {
		return ""
	}
	return rest[1 : 1+end]
}

func checkToken(tok etree.Token) error {
	switch t := tok.(type) {
	case *etree.Comment:
		return reject(ReasonComment, "comment %q inside <%s>", excerpt([]byte(t.Data)), parentTag(tok))
	case *etree.Directive:
		return reject(ReasonDoctype, "markup declaration <!%s>", excerpt([]byte(t.Data)))
	case *etree.ProcInst:
		return reject(ReasonStructure, "processing instruction <?%s?>", t.Target)
	}
	return nil
}

func parentTag(tok etree.Token) string {
	if p := tok.Parent(); p != nil {
		return p.FullTag()
	}
	return "document"
}

// checkTree walks el's subtree: no comments, directives or processing
// instructions; no attribute twice; at most one ID attribute per element
// (etree's SelectAttr("ID"), which goxmldsig uses, matches any prefix) and
// no ID value twice in the document.
func checkTree(el *etree.Element, ids map[string]bool) error {
	if err := checkRoundTripName(el.Space, el.Tag, el); err != nil {
		return err
	}
	seen := map[[2]string]bool{} // {Space, Key}
	idAttrs := 0
	for _, a := range el.Attr {
		if err := checkRoundTripName(a.Space, a.Key, el); err != nil {
			return err
		}
		k := [2]string{a.Space, a.Key}
		if seen[k] {
			return reject(ReasonStructure, "attribute %s twice on <%s>", a.FullKey(), el.FullTag())
		}
		seen[k] = true
		if a.Key == "ID" {
			idAttrs++
			if idAttrs > 1 {
				return reject(ReasonStructure, "more than one ID attribute on <%s>", el.FullTag())
			}
			if ids[a.Value] {
				return reject(ReasonStructure, "ID %q used twice", a.Value)
			}
			ids[a.Value] = true
		}
	}
	for _, tok := range el.Child {
		if child, ok := tok.(*etree.Element); ok {
			if err := checkTree(child, ids); err != nil {
				return err
			}
			continue
		}
		if err := checkToken(tok); err != nil {
			return err
		}
	}
	return nil
}

// checkRoundTripName is this package's equivalent of
// github.com/mattermost/xml-roundtrip-validator, which crewjam/saml ran on
// every response (CVE-2020-29509, -29510, -29511: encoding/xml wrote some
// names back differently from how it read them, so a signed element could
// mean one thing to the signature check and another after a round trip).
// The validator re-encodes and re-decodes every token, allocating an
// encoder and a decoder per token; this checks the token property that
// made round trips unstable, on the names of the tree parseXML already
// built. encoding/xml (RawToken, as etree reads) splits a name at its
// colon into prefix and local name; a name with two colons is a syntax
// error since Go 1.17 (refused as malformed before we get here). A local
// name that still holds a colon (":a", "a:") or is empty is refused: such
// a name is not a QName, no SAML message has one, and it is exactly the
// shape the CVEs used. The other tokens cannot round-trip unstably once
// parseXML's rules hold: directives, comments and processing instructions
// other than the XML declaration are refused, and character data and
// attribute values are escaped and unescaped exactly by encoding/xml (the
// decoder already refuses characters outside XML's range). The library's
// own test vectors and a differential fuzz target against it
// (roundtrip_test.go) check this.
func checkRoundTripName(space, local string, el *etree.Element) error {
	if local == "" || strings.IndexByte(local, ':') >= 0 || strings.IndexByte(space, ':') >= 0 {
		return reject(ReasonMalformed, "name %q:%q in <%s> does not survive an encoding/xml round trip", space, local, el.FullTag())
	}
	return nil
}

// elementsNamed returns every element in el's subtree (el included) whose
// local name is local, whatever its namespace: counting by local name
// makes prefix games (a second assertion in a foreign or unbound
// namespace) visible.
func elementsNamed(el *etree.Element, local string) []*etree.Element {
	var out []*etree.Element
	var walk func(*etree.Element)
	walk = func(e *etree.Element) {
		if e.Tag == local {
			out = append(out, e)
		}
		for c := range e.ChildElementsSeq() {
			walk(c)
		}
	}
	walk(el)
	return out
}

// children returns el's child elements with local name local, split into
// those in namespace ns and those in any other namespace.
func children(el *etree.Element, ns, local string) (in, foreign []*etree.Element) {
	if el == nil {
		return nil, nil
	}
	for c := range el.ChildElementsSeq() {
		if c.Tag != local {
			continue
		}
		if c.NamespaceURI() == ns {
			in = append(in, c)
		} else {
			foreign = append(foreign, c)
		}
	}
	return in, foreign
}

func idOf(el *etree.Element) string {
	for _, a := range el.Attr {
		if a.Key == "ID" {
			return a.Value
		}
	}
	return ""
}

// textOf returns all character data directly inside el, and whether el has
// child elements; nothing for a nil el.
func textOf(el *etree.Element) (text string, hasChildren bool) {
	if el == nil {
		return "", false
	}
	var b strings.Builder
	for _, tok := range el.Child {
		switch t := tok.(type) {
		case *etree.CharData:
			b.WriteString(t.Data)
		case *etree.Element:
			hasChildren = true
		}
	}
	return b.String(), hasChildren
}

// checkCrewjamView refuses el if crewjam would read it with other
// namespaces than the document gives it. crewjam does not unmarshal the
// element it verified but a re-serialised copy on which it declares every
// element prefix used anywhere in the document with the namespace last
// seen for it (saml.elementToBytes). When a prefix stands for two
// namespaces, that copy moves elements into another namespace than the one
// the signature covered: a parser differential. Its "xmlns:" declaration
// for the default namespace is not one to encoding/xml, so a default
// namespace declared above the element is lost. ParseResponse no longer
// lets crewjam read anything, but keeps refusing such documents: a
// response we accept is one crewjam would read as we do (and the
// refusals are pinned by TestAssertionNamespaces). It resolves, element
// by element, the namespace that copy would give, without building it.
func checkCrewjamView(el *etree.Element) error {
	top := el
	for !isRoot(top) {
		top = top.Parent()
	}
	last := map[string]string{}
	var collect func(*etree.Element) // the whole document, as crewjam
	collect = func(e *etree.Element) {
		if e.Space != "" {
			if ns := e.NamespaceURI(); ns != "" {
				last[e.Space] = ns
			}
		}
		for c := range e.ChildElementsSeq() {
			collect(c)
		}
	}
	collect(top)
	var compare func(e *etree.Element) error
	compare = func(e *etree.Element) error {
		if want, got := e.NamespaceURI(), crewjamNamespace(e, el, last); want != got {
			return reject(ReasonStructure, "crewjam/saml would read <%s> in namespace %q instead of %q (it re-declares each prefix once for the whole document and drops default namespaces declared above the element it reads)", e.FullTag(), got, want)
		}
		for c := range e.ChildElementsSeq() {
			if err := compare(c); err != nil {
				return err
			}
		}
		return nil
	}
	return compare(el)
}

// crewjamNamespace is the namespace of e (in el's subtree) in crewjam's
// copy of el: el detached, with an xmlns:prefix declaration for every
// prefix in last replacing el's own. It reads the tree without copying it.
func crewjamNamespace(e, el *etree.Element, last map[string]string) string {
	for x := e; ; x = x.Parent() {
		if x == el && e.Space != "" {
			if ns, ok := last[e.Space]; ok {
				return ns
			}
		}
		for _, a := range x.Attr {
			if (e.Space != "" && a.Space == "xmlns" && a.Key == e.Space) || (e.Space == "" && a.Space == "" && a.Key == "xmlns") {
				return a.Value
			}
		}
		if x == el {
			return ""
		}
	}
}

// inspectResponse checks the document's shape before any cryptography.
func inspectResponse(doc *etree.Document, allowSHA1 bool) (*inspected, error) {
	root := doc.Root()
	if root.Tag != "Response" || root.NamespaceURI() != nsProtocol {
		return nil, reject(ReasonStructure, "root element is {%s}%s, want {%s}Response", root.NamespaceURI(), root.Tag, nsProtocol)
	}
	if idOf(root) == "" {
		return nil, reject(ReasonStructure, "Response has no ID")
	}
	if err := checkCrewjamView(root); err != nil {
		return nil, err
	}
	if v := root.SelectAttrValue("Version", ""); v != "2.0" {
		return nil, reject(ReasonStructure, "Response Version %q, want 2.0", v)
	}
	if iss, _ := children(root, nsAssertion, "Issuer"); len(iss) != 1 {
		return nil, reject(ReasonIssuer, "Response has %d saml:Issuer elements, want 1", len(iss))
	}

	// Exactly one assertion, plaintext or encrypted, anywhere in the
	// document: a second one — beside the signed one, inside it, or under
	// Extensions or a ds:Object — is the signature-wrapping pattern.
	plain := elementsNamed(root, "Assertion")
	enc := elementsNamed(root, "EncryptedAssertion")
	if n := len(plain) + len(enc); n != 1 {
		return nil, reject(ReasonStructure, "%d Assertion and %d EncryptedAssertion elements in the document, want exactly one", len(plain), len(enc))
	}
	in := &inspected{root: root}
	if len(plain) == 1 {
		in.assertion = plain[0]
	} else {
		in.encrypted = enc[0]
	}
	a := in.assertion
	if a == nil {
		a = in.encrypted
	}
	if a.Parent() != root || a.NamespaceURI() != nsAssertion {
		return nil, reject(ReasonStructure, "<%s> is not a child of the Response in the SAML assertion namespace", a.FullTag())
	}

	if err := checkSignaturePlacement(root, root, in.assertion); err != nil {
		return nil, err
	}
	sigs, _ := children(root, nsDSig, "Signature")
	if len(sigs) > 1 {
		return nil, reject(ReasonStructure, "Response has %d signatures", len(sigs))
	}
	if len(sigs) == 1 {
		in.responseSigned = true
		if err := checkSignature(sigs[0], idOf(root), allowSHA1); err != nil {
			return nil, err
		}
	}

	if in.encrypted != nil {
		data, _ := children(in.encrypted, nsXEnc, "EncryptedData")
		if len(data) != 1 {
			return nil, reject(ReasonStructure, "EncryptedAssertion has %d xenc:EncryptedData elements, want 1", len(data))
		}
		if err := checkEncryptionAlgorithms(in.encrypted); err != nil {
			return nil, err
		}
		return in, nil
	}
	if err := checkCrewjamView(in.assertion); err != nil {
		return nil, err
	}
	if err := inspectAssertion(in.assertion, allowSHA1); err != nil {
		return nil, err
	}
	return in, nil
}

// Encryption algorithms accepted for encrypted assertions: those crewjam
// decrypts, minus RSA PKCS#1 v1.5 key transport (a padding oracle, refused
// by XML Encryption 1.1 and by Shibboleth) and 3DES.
var (
	dataEncryptionMethods = map[string]bool{
		"http://www.w3.org/2001/04/xmlenc#aes128-cbc": true,
		"http://www.w3.org/2001/04/xmlenc#aes192-cbc": true,
		"http://www.w3.org/2001/04/xmlenc#aes256-cbc": true,
		"http://www.w3.org/2009/xmlenc11#aes128-gcm":  true,
	}
	keyTransportMethods = map[string]bool{
		"http://www.w3.org/2001/04/xmlenc#rsa-oaep-mgf1p": true,
	}
)

// Namespaces an EncryptedAssertion's content may use: XML Encryption
// (1.0 and 1.1) and XML-DSig (KeyInfo and what it holds).
var encryptedAssertionNamespaces = map[string]bool{
	nsXEnc:                              true,
	"http://www.w3.org/2009/xmlenc11#":  true,
	nsDSig:                              true,
	"http://www.w3.org/2009/xmldsig11#": true,
}

// checkEncryptionAlgorithms refuses, before any decryption, an
// EncryptedAssertion whose data or key algorithm is not accepted.
//
// xmlenc finds each element it acts on by local name, whatever its
// namespace (the first EncryptionMethod child, the DigestMethod inside
// it, …): an algorithm read from xenc:EncryptionMethod alone could be
// a decoy after a foreign EncryptionMethod that xmlenc would use instead
// (RSA PKCS#1 v1.5 run on unauthenticated input). So every element of the
// EncryptedAssertion must be in an XML Encryption or XML-DSig namespace,
// and each EncryptedData and EncryptedKey must have exactly one
// EncryptionMethod child by local name — the one xmlenc will use.
func checkEncryptionAlgorithms(enc *etree.Element) error {
	var foreign *etree.Element
	var walk func(*etree.Element)
	walk = func(e *etree.Element) {
		for c := range e.ChildElementsSeq() {
			if foreign == nil && !encryptedAssertionNamespaces[c.NamespaceURI()] {
				foreign = c
			}
			walk(c)
		}
	}
	walk(enc)
	if foreign != nil {
		return reject(ReasonDecrypt, "<%s> in namespace %q inside the EncryptedAssertion: only XML Encryption and XML-DSig elements are allowed there",
			foreign.FullTag(), foreign.NamespaceURI())
	}
	for _, el := range append(elementsNamed(enc, "EncryptedData"), elementsNamed(enc, "EncryptedKey")...) {
		allowed := dataEncryptionMethods
		if el.Tag == "EncryptedKey" {
			allowed = keyTransportMethods
		}
		methods, others := children(el, nsXEnc, "EncryptionMethod")
		if len(methods) != 1 || len(others) != 0 {
			return reject(ReasonDecrypt, "<%s> has %d EncryptionMethod elements, want 1", el.FullTag(), len(methods)+len(others))
		}
		if alg := methods[0].SelectAttrValue("Algorithm", ""); !allowed[alg] {
			return reject(ReasonDecrypt, "<%s> algorithm %q is not accepted", el.FullTag(), alg)
		}
	}
	return nil
}

// checkSignaturePlacement allows ds:Signature elements in top's subtree
// only as children of the given parents: goxmldsig searches the whole
// subtree of the element it verifies for a Signature that references it, so
// a Signature anywhere else makes "which signature was checked" ambiguous.
func checkSignaturePlacement(top *etree.Element, parents ...*etree.Element) error {
	for _, sig := range elementsNamed(top, "Signature") {
		p := sig.Parent()
		if sig.NamespaceURI() == nsDSig && p != nil && slices.Contains(parents, p) {
			continue
		}
		where := "document"
		if p != nil {
			where = p.FullTag()
		}
		return reject(ReasonStructure, "<%s> inside <%s>: signatures are allowed only on the Response and the Assertion", sig.FullTag(), where)
	}
	return nil
}

// checkSignature checks an enveloped ds:Signature's shape and algorithms
// before any cryptography runs: SignedInfo with exactly one Reference to
// its parent's ID (SAML core §5.4.2), no ds:Object, only the transforms
// goxmldsig implements, and no SHA-1 unless allowed.
func checkSignature(sig *etree.Element, parentID string, allowSHA1 bool) error {
	counts := map[string]int{}
	for c := range sig.ChildElementsSeq() {
		switch {
		case c.NamespaceURI() != nsDSig:
			return reject(ReasonStructure, "Signature contains <%s> outside the xmldsig namespace", c.FullTag())
		case c.Tag != "SignedInfo" && c.Tag != "SignatureValue" && c.Tag != "KeyInfo":
			return reject(ReasonStructure, "Signature contains <%s>: only SignedInfo, SignatureValue and KeyInfo are accepted", c.FullTag())
		}
		counts[c.Tag]++
	}
	if counts["SignedInfo"] != 1 || counts["SignatureValue"] != 1 || counts["KeyInfo"] > 1 {
		return reject(ReasonStructure, "Signature must hold one SignedInfo, one SignatureValue and at most one KeyInfo")
	}
	si, _ := children(sig, nsDSig, "SignedInfo")
	methods, _ := children(si[0], nsDSig, "SignatureMethod")
	refs, _ := children(si[0], nsDSig, "Reference")
	c14n, _ := children(si[0], nsDSig, "CanonicalizationMethod")
	if len(methods) != 1 || len(refs) != 1 || len(c14n) != 1 || len(si[0].ChildElements()) != 3 {
		return reject(ReasonStructure, "SignedInfo must hold one CanonicalizationMethod, one SignatureMethod and one Reference")
	}
	if err := checkAlgorithm(methods[0].SelectAttrValue("Algorithm", ""), "signature", signatureMethods, sha1SignatureMethods, allowSHA1); err != nil {
		return err
	}
	ref := refs[0]
	if uri := ref.SelectAttrValue("URI", ""); parentID == "" || uri != "#"+parentID {
		return reject(ReasonSignature, "signature Reference URI %q does not name its parent element's ID %q", uri, parentID)
	}
	digests, _ := children(ref, nsDSig, "DigestMethod")
	if len(digests) != 1 {
		return reject(ReasonStructure, "Reference has %d DigestMethod elements", len(digests))
	}
	if err := checkAlgorithm(digests[0].SelectAttrValue("Algorithm", ""), "digest", digestMethods, sha1DigestMethods, allowSHA1); err != nil {
		return err
	}
	ts, _ := children(ref, nsDSig, "Transforms")
	for _, t := range ts {
		for tr := range t.ChildElementsSeq() {
			alg := tr.SelectAttrValue("Algorithm", "")
			if tr.Tag != "Transform" || tr.NamespaceURI() != nsDSig || !transforms[alg] {
				return reject(ReasonSignature, "transform %q is not accepted", alg)
			}
			for c := range tr.ChildElementsSeq() {
				if c.Tag != "InclusiveNamespaces" || c.NamespaceURI() != nsExcC14N {
					return reject(ReasonStructure, "Transform contains <%s>", c.FullTag())
				}
			}
		}
	}
	return nil
}

func checkAlgorithm(alg, what string, allowed, sha1 map[string]bool, allowSHA1 bool) error {
	switch {
	case allowed[alg]:
		return nil
	case sha1[alg] && allowSHA1:
		return nil
	case sha1[alg]:
		return reject(ReasonSHA1, "%s algorithm %s is SHA-1, which is not allowed", what, alg)
	}
	return reject(ReasonSignature, "%s algorithm %q is not accepted", what, alg)
}

// inspectAssertion checks an Assertion element (plaintext, or decrypted
// and verified): its signature's shape, and that everything ParseResponse
// reads is where and in the namespace the schema says.
func inspectAssertion(a *etree.Element, allowSHA1 bool) error {
	id := idOf(a)
	if id == "" {
		return reject(ReasonStructure, "Assertion has no ID")
	}
	if v := a.SelectAttrValue("Version", ""); v != "2.0" {
		return reject(ReasonStructure, "Assertion Version %q, want 2.0", v)
	}
	if sigs, _ := children(a, nsDSig, "Signature"); len(sigs) > 1 {
		return reject(ReasonStructure, "Assertion has %d signatures", len(sigs))
	} else if len(sigs) == 1 {
		if err := checkSignature(sigs[0], id, allowSHA1); err != nil {
			return err
		}
	}
	if iss, _ := children(a, nsAssertion, "Issuer"); len(iss) != 1 {
		return reject(ReasonIssuer, "Assertion has %d saml:Issuer elements, want 1", len(iss))
	}

	subjects, _ := children(a, nsAssertion, "Subject")
	if len(subjects) != 1 {
		return reject(ReasonNameID, "Assertion has %d saml:Subject elements, want 1", len(subjects))
	}
	names, foreign := children(subjects[0], nsAssertion, "NameID")
	if len(foreign) > 0 {
		return reject(ReasonNameID, "NameID in namespace %q, want %s", foreign[0].NamespaceURI(), nsAssertion)
	}
	if len(names) != 1 {
		return reject(ReasonNameID, "Subject has %d saml:NameID elements, want 1 (BaseID and EncryptedID are not supported)", len(names))
	}
	text, hasChildren := textOf(names[0])
	if hasChildren {
		return reject(ReasonNameID, "NameID contains elements")
	}
	if strings.TrimSpace(text) == "" {
		return reject(ReasonNameID, "NameID is empty")
	}

	conds, _ := children(a, nsAssertion, "Conditions")
	switch {
	case len(conds) == 0:
		return reject(ReasonNoConditions, "Assertion has no Conditions")
	case len(conds) > 1:
		return reject(ReasonStructure, "Assertion has %d Conditions", len(conds))
	case conds[0].SelectAttrValue("NotBefore", "") == "" || conds[0].SelectAttrValue("NotOnOrAfter", "") == "":
		return reject(ReasonNoConditions, "Conditions must have NotBefore and NotOnOrAfter")
	}
	if stmts, _ := children(a, nsAssertion, "AuthnStatement"); len(stmts) == 0 {
		return reject(ReasonNoAuthnStatement, "Assertion has no AuthnStatement")
	} else if len(stmts) > 1 {
		return reject(ReasonStructure, "Assertion has %d AuthnStatements", len(stmts))
	}
	return checkNamespaces(a)
}

// checkNamespaces requires every element of the assertion to be in the
// SAML assertion namespace, except the Signature (checked on its own) and
// free-form content (AttributeValue, Advice, AuthnContextDecl,
// SubjectConfirmationData's KeyInfo). crewjam's structs match many elements
// (NameID, Attribute, AuthnStatement, SubjectConfirmation...) in any
// namespace; this closes that door for all of them, not only NameID.
// A NameID in a foreign namespace is refused even inside free-form content.
func checkNamespaces(el *etree.Element) error {
	for c := range el.ChildElementsSeq() {
		ns := c.NamespaceURI()
		if c.Tag == "Signature" && ns == nsDSig && el.Tag == "Assertion" {
			continue
		}
		if c.Tag == "NameID" && ns != nsAssertion {
			return reject(ReasonNameID, "NameID in namespace %q inside <%s>", ns, el.FullTag())
		}
		if ns != nsAssertion {
			return reject(ReasonStructure, "element {%s}%s inside <%s>: only the SAML assertion namespace is accepted there", ns, c.Tag, el.FullTag())
		}
		switch c.Tag {
		case "AttributeValue", "Advice", "AuthnContextDecl", "SubjectConfirmationData":
			if err := checkForeignNameIDs(c); err != nil {
				return err
			}
			continue
		}
		if err := checkNamespaces(c); err != nil {
			return err
		}
	}
	return nil
}

func checkForeignNameIDs(el *etree.Element) error {
	for _, n := range elementsNamed(el, "NameID") {
		if ns := n.NamespaceURI(); ns != nsAssertion {
			return reject(ReasonNameID, "NameID in namespace %q inside <%s>", ns, el.FullTag())
		}
	}
	return nil
}
