package samlsp

// The test harness: keys and certificates generated at test time, Response
// XML rendered from testdata/*.xml.tmpl, and signatures and encryption made
// by xmlsec1 — an implementation independent of crewjam/saml and
// goxmldsig. Nothing signed is committed, so nothing expires.

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"encoding/xml"
	"fmt"
	"math/big"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"text/template"
	"time"

	"github.com/crewjam/saml"
)

const (
	idpEntityID = "https://idp.example.com/metadata"
	idpSSOURL   = "https://idp.example.com/sso"
	spEntityID  = "https://sp.example.com/saml/metadata"
	spACSURL    = "https://sp.example.com/saml/acs"
	requestID   = "id-req-1"

	rsaSHA256 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
	rsaSHA1   = "http://www.w3.org/2000/09/xmldsig#rsa-sha1"
	sha256URI = "http://www.w3.org/2001/04/xmlenc#sha256"
	sha1URI   = "http://www.w3.org/2000/09/xmldsig#sha1"

	aes256CBC = "http://www.w3.org/2001/04/xmlenc#aes256-cbc"
	aes128GCM = "http://www.w3.org/2009/xmlenc11#aes128-gcm"
	rsaOAEP   = "http://www.w3.org/2001/04/xmlenc#rsa-oaep-mgf1p"
)

// keyPair is an RSA key and its self-signed certificate, also as PEM files
// for xmlsec1.
type keyPair struct {
	key              *rsa.PrivateKey
	cert             *x509.Certificate
	keyFile, crtFile string
}

// testKeys are made once by TestMain and only read afterwards.
var testKeys struct {
	idp, otherIdP, sp keyPair
}

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "samlsp-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	for _, k := range []struct {
		kp *keyPair
		cn string
	}{{&testKeys.idp, "idp"}, {&testKeys.otherIdP, "attacker"}, {&testKeys.sp, "sp"}} {
		if *k.kp, err = newKeyPair(dir, k.cn); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func newKeyPair(dir, cn string) (keyPair, error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return keyPair{}, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return keyPair{}, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return keyPair{}, err
	}
	kp := keyPair{key: key, cert: cert, keyFile: filepath.Join(dir, cn+".key"), crtFile: filepath.Join(dir, cn+".crt")}
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})
	crtPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	if err := os.WriteFile(kp.keyFile, keyPEM, 0o600); err != nil {
		return keyPair{}, err
	}
	return kp, os.WriteFile(kp.crtFile, crtPEM, 0o600)
}

func idpMetadata(wantSignedRequests bool) *saml.EntityDescriptor {
	return &saml.EntityDescriptor{
		EntityID: idpEntityID,
		IDPSSODescriptors: []saml.IDPSSODescriptor{{
			SSODescriptor: saml.SSODescriptor{RoleDescriptor: saml.RoleDescriptor{
				ProtocolSupportEnumeration: "urn:oasis:names:tc:SAML:2.0:protocol",
				KeyDescriptors: []saml.KeyDescriptor{{
					Use: "signing",
					KeyInfo: saml.KeyInfo{X509Data: saml.X509Data{X509Certificates: []saml.X509Certificate{
						{Data: base64.StdEncoding.EncodeToString(testKeys.idp.cert.Raw)},
					}}},
				}},
			}},
			WantAuthnRequestsSigned: &wantSignedRequests,
			SingleSignOnServices: []saml.Endpoint{
				{Binding: saml.HTTPPostBinding, Location: idpSSOURL + "/post"},
				{Binding: saml.HTTPRedirectBinding, Location: idpSSOURL},
			},
		}},
	}
}

func mustURL(s string) url.URL {
	u, err := url.Parse(s)
	if err != nil {
		panic(err)
	}
	return *u
}

func testConfig() Config {
	return Config{
		EntityID:    spEntityID,
		ACSURL:      mustURL(spACSURL),
		MetadataURL: mustURL(spEntityID),
		Key:         testKeys.sp.key,
		Certificate: testKeys.sp.cert,
		IDPMetadata: idpMetadata(false),
	}
}

func newSP(t testing.TB, edit ...func(*Config)) *SP {
	t.Helper()
	cfg := testConfig()
	for _, e := range edit {
		e(&cfg)
	}
	sp, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return sp
}

type attribute struct {
	Name, FriendlyName string
	Values             []string
}

// response is the data of testdata/response.xml.tmpl plus how to sign and
// encrypt it. validResponse fills in a response the SP accepts.
type response struct {
	ResponseID, AssertionID             string
	IssueInstant, AssertionIssueInstant string
	Destination, InResponseTo           string
	ResponseIssuer, Issuer              string
	StatusCode                          string

	NameID, NameIDFormat string
	NameIDTag            string // element name, "saml:NameID" by default
	NameIDNSDecl         string // raw namespace declaration(s) on NameID
	OmitNameID           bool
	// SPNameQualifier, when set, is the NameID's SPNameQualifier attribute.
	SPNameQualifier string

	SCDInResponseTo, SCDNotOnOrAfter, Recipient string

	OmitConditions          bool
	NotBefore, NotOnOrAfter string
	Audiences               []string

	OmitAuthnStatement         bool
	AuthnInstant, SessionIndex string

	Attributes []attribute

	SignResponse, SignAssertion bool
	SigAlg, DigestAlg           string
	// ReferenceURI overrides "#ID" in the signature templates;
	// WholeDocumentReference makes it "" (the whole document).
	ReferenceURI           string
	WholeDocumentReference bool
	// Signer signs; testKeys.idp when nil.
	Signer *keyPair

	// Encrypt wraps the assertion in EncryptedAssertion and encrypts it
	// with xmlsec1 for the SP's certificate (after signing the assertion,
	// before signing the response).
	Encrypt            bool
	DataAlg, KeyAlg    string
	InheritAssertionNS bool // leave xmlns:saml to the Response only
	// EncryptFor is the certificate to encrypt for; testKeys.sp when nil.
	EncryptFor *keyPair

	// BeforeSign and BeforeEncrypt edit the XML between the steps.
	BeforeSign, BeforeEncrypt func(t testing.TB, xml string) string

	// Now is the time the times above are relative to: edits that move
	// them start from it, not from when the test began, which on a busy
	// machine can be longer ago than the clock skew allowed.
	Now time.Time
}

func ts(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05Z") }

func validResponse() response { return validResponseAt(time.Now()) }

// validResponseAt is validResponse as issued by an IdP whose clock reads
// now: every time in it is relative to now.
func validResponseAt(now time.Time) response {
	return response{
		Now:                   now,
		ResponseID:            "_resp-" + randomHex(),
		AssertionID:           "_assert-" + randomHex(),
		IssueInstant:          ts(now.Add(-2 * time.Second)),
		AssertionIssueInstant: ts(now.Add(-2 * time.Second)),
		Destination:           spACSURL,
		InResponseTo:          requestID,
		ResponseIssuer:        idpEntityID,
		Issuer:                idpEntityID,
		StatusCode:            "urn:oasis:names:tc:SAML:2.0:status:Success",
		NameID:                "alice@corp.example",
		NameIDFormat:          string(saml.PersistentNameIDFormat),
		NameIDTag:             "saml:NameID",
		SCDInResponseTo:       requestID,
		SCDNotOnOrAfter:       ts(now.Add(5 * time.Minute)),
		Recipient:             spACSURL,
		NotBefore:             ts(now.Add(-time.Minute)),
		NotOnOrAfter:          ts(now.Add(5 * time.Minute)),
		Audiences:             []string{spEntityID},
		AuthnInstant:          ts(now.Add(-10 * time.Second)),
		SessionIndex:          "_session-1",
		Attributes: []attribute{
			{Name: "urn:oid:0.9.2342.19200300.100.1.3", FriendlyName: "mail", Values: []string{"alice@corp.example"}},
			{Name: "employeeNumber", Values: []string{"E-1001"}},
			{Name: "groups", Values: []string{"engineering", "admins"}},
		},
		SignAssertion: true,
		SigAlg:        rsaSHA256,
		DigestAlg:     sha256URI,
		DataAlg:       aes256CBC,
		KeyAlg:        rsaOAEP,
	}
}

func randomHex() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return fmt.Sprintf("%x", b)
}

var templates = template.Must(template.New("").Funcs(template.FuncMap{
	"x": func(s string) (string, error) {
		var b strings.Builder
		err := xml.EscapeText(&b, []byte(s))
		return b.String(), err
	},
	"sig": func(id string, r response) map[string]string {
		uri := "#" + id
		if r.ReferenceURI != "" {
			uri = r.ReferenceURI
		}
		if r.WholeDocumentReference {
			uri = ""
		}
		return map[string]string{"URI": uri, "SigAlg": r.SigAlg, "DigestAlg": r.DigestAlg}
	},
}).ParseGlob("testdata/*.xml.tmpl"))

func render(t testing.TB, name string, data any) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := templates.ExecuteTemplate(&b, name, data); err != nil {
		t.Fatalf("render %s: %v", name, err)
	}
	return b.Bytes()
}

// xmlsec1 runs xmlsec1 with args followed by "--output OUT IN", IN holding
// input, and returns OUT's content.
func xmlsec1(t testing.TB, input []byte, args ...string) []byte {
	t.Helper()
	bin, err := exec.LookPath("xmlsec1")
	if err != nil {
		t.Fatalf("xmlsec1 not found (%v): the SAML tests sign with it; run scripts/test-deps.sh, which installs Debian's xmlsec1 package", err)
	}
	dir := t.TempDir()
	in, out := filepath.Join(dir, "in.xml"), filepath.Join(dir, "out.xml")
	if err := os.WriteFile(in, input, 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, append(args, "--output", out, in)...)
	if msg, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("xmlsec1 %s: %v\n%s", strings.Join(args, " "), err, msg)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

var idAttrs = []string{
	"--id-attr:ID", "urn:oasis:names:tc:SAML:2.0:assertion:Assertion",
	"--id-attr:ID", "urn:oasis:names:tc:SAML:2.0:protocol:Response",
	"--id-attr:ID", "urn:oasis:names:tc:SAML:2.0:protocol:Status",
}

const (
	assertionSignatureXPath = "//*[local-name()='Assertion']/*[local-name()='Signature']"
	responseSignatureXPath  = "/*/*[local-name()='Signature']"
)

// sign signs the ds:Signature template selected by xpath.
func sign(t testing.TB, doc []byte, signer *keyPair, xpath string) []byte {
	t.Helper()
	args := append([]string{"--sign", "--privkey-pem", signer.keyFile + "," + signer.crtFile}, idAttrs...)
	return xmlsec1(t, doc, append(args, "--node-xpath", xpath)...)
}

// encrypt replaces the Assertion by an xenc:EncryptedData for the SP.
func encrypt(t testing.TB, doc []byte, recipient *keyPair, dataAlg, keyAlg string) []byte {
	t.Helper()
	tmpl := render(t, "encrypted-data.xml.tmpl", map[string]string{"DataAlg": dataAlg, "KeyAlg": keyAlg})
	dir := t.TempDir()
	data := filepath.Join(dir, "data.xml")
	if err := os.WriteFile(data, doc, 0o600); err != nil {
		t.Fatal(err)
	}
	session := map[string]string{
		"http://www.w3.org/2001/04/xmlenc#aes128-cbc":    "aes-128",
		"http://www.w3.org/2001/04/xmlenc#aes192-cbc":    "aes-192",
		"http://www.w3.org/2001/04/xmlenc#tripledes-cbc": "des-192",
		"http://www.w3.org/2009/xmlenc11#aes128-gcm":     "aes-128",
		"http://www.w3.org/2009/xmlenc11#aes256-gcm":     "aes-256",
		"http://www.w3.org/2001/04/xmlenc#aes256-cbc":    "aes-256",
	}[dataAlg]
	return xmlsec1(t, tmpl, "--encrypt", "--pubkey-cert-pem", recipient.crtFile, "--session-key", session,
		"--xml-data", data, "--node-xpath", "(//*[local-name()='Assertion'])[1]")
}

// build renders, signs and encrypts r as it says, and returns the XML.
func build(t testing.TB, r response) string {
	t.Helper()
	signer := r.Signer
	if signer == nil {
		signer = &testKeys.idp
	}
	doc := render(t, "response.xml.tmpl", r)
	if r.BeforeSign != nil {
		doc = []byte(r.BeforeSign(t, string(doc)))
	}
	if r.SignAssertion {
		doc = sign(t, doc, signer, assertionSignatureXPath)
	}
	if r.BeforeEncrypt != nil {
		doc = []byte(r.BeforeEncrypt(t, string(doc)))
	}
	if r.Encrypt {
		recipient := r.EncryptFor
		if recipient == nil {
			recipient = &testKeys.sp
		}
		doc = encrypt(t, doc, recipient, r.DataAlg, r.KeyAlg)
	}
	if r.SignResponse {
		doc = sign(t, doc, signer, responseSignatureXPath)
	}
	return string(doc)
}

func b64(xml string) string { return base64.StdEncoding.EncodeToString([]byte(xml)) }

// replace replaces the first old in s by new and fails if there is none.
func replace(t testing.TB, s, old, new string) string {
	t.Helper()
	if !strings.Contains(s, old) {
		t.Fatalf("replace: %q not found in\n%s", old, s)
	}
	return strings.Replace(s, old, new, 1)
}

// between returns the first substring of s from start through end.
func between(t testing.TB, s, start, end string) string {
	t.Helper()
	i := strings.Index(s, start)
	if i < 0 {
		t.Fatalf("between: %q not found", start)
	}
	j := strings.Index(s[i:], end)
	if j < 0 {
		t.Fatalf("between: %q not found after %q", end, start)
	}
	return s[i : i+j+len(end)]
}
