//go:build chaos

package chaos

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"encoding/xml"
	"fmt"
	"io"
	"log"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/crewjam/saml"
	dsig "github.com/russellhaering/goxmldsig"

	"github.com/jitprov/jitprov/internal/testenv"
)

// personHeader names who signs in at the IdP: "<org>/<external id>". The
// suite's browsers set it on their request to the IdP, in place of the
// password a person would type.
const personHeader = "X-Chaos-Person"

// idp is the organisations' SAML identity provider: crewjam/saml's, with a
// key pair made at test time, served by httptest in the test process, as
// the edge's own tests do.
type idp struct {
	idp  *saml.IdentityProvider
	srv  *httptest.Server
	spMu sync.Mutex
	sps  map[string]*saml.EntityDescriptor // SP metadata by metadata URL
}

func newIdP(t *testing.T) *idp {
	t.Helper()
	key, cert := newKeyPair(t, "chaos-idp")
	p := &idp{sps: map[string]*saml.EntityDescriptor{}}
	p.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { p.idp.ServeSSO(w, r) }))
	t.Cleanup(p.srv.Close)
	base, _ := url.Parse(p.srv.URL)
	p.idp = &saml.IdentityProvider{
		Key: key, Certificate: cert, SignatureMethod: dsig.RSASHA256SignatureMethod,
		MetadataURL: *base.JoinPath("metadata"), SSOURL: *base.JoinPath("sso"),
		ServiceProviderProvider: p, SessionProvider: p,
		Logger: log.New(io.Discard, "", 0),
	}
	return p
}

// GetSession signs in the person the browser names.
func (p *idp) GetSession(w http.ResponseWriter, r *http.Request, _ *saml.IdpAuthnRequest) *saml.Session {
	org, ext, ok := strings.Cut(r.Header.Get(personHeader), "/")
	if !ok {
		http.Error(w, "who are you?", http.StatusForbidden)
		return nil
	}
	now := time.Now()
	return &saml.Session{
		ID: ext + "-" + fmt.Sprint(now.UnixNano()), CreateTime: now, ExpireTime: now.Add(time.Hour), Index: "1",
		NameID: ext, NameIDFormat: string(saml.PersistentNameIDFormat),
		CustomAttributes: []saml.Attribute{
			{Name: "email", Values: []saml.AttributeValue{{Type: "xs:string", Value: emailOf(org, ext)}}},
			{Name: "givenName", Values: []saml.AttributeValue{{Type: "xs:string", Value: "Person " + ext}}},
		},
	}
}

func emailOf(org, ext string) string { return ext + "@" + org + ".example" }

// GetServiceProvider fetches an SP's metadata from the sso-edge that sent
// the request (testenv.SPMetadataURL: every edge serves the connection's
// one entity id, each with its own ACS), once per edge and connection.
func (p *idp) GetServiceProvider(r *http.Request, id string) (*saml.EntityDescriptor, error) {
	p.spMu.Lock()
	defer p.spMu.Unlock()
	mdURL := testenv.SPMetadataURL(r, id)
	if md, ok := p.sps[mdURL]; ok {
		return md, nil
	}
	client := &http.Client{Timeout: 10 * time.Second}
	resp, err := client.Get(mdURL)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("SP metadata %s: %s", mdURL, resp.Status)
	}
	var md saml.EntityDescriptor
	if err := xml.NewDecoder(resp.Body).Decode(&md); err != nil {
		return nil, err
	}
	p.sps[mdURL] = &md
	return &md, nil
}

func (p *idp) metadataXML(t *testing.T) string {
	t.Helper()
	out, err := xml.Marshal(p.idp.Metadata())
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

// newKeyPair makes an RSA key and a self-signed certificate valid for a
// year (the edge warns of IdP certificates within 30 days of expiry).
func newKeyPair(t *testing.T, cn string) (*rsa.PrivateKey, *x509.Certificate) {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(365 * 24 * time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return key, cert
}

// writeKeyPair writes a key pair as PEM files, for the edge's SP key.
func writeKeyPair(t *testing.T, keyPath, certPath, cn string) {
	t.Helper()
	key, cert := newKeyPair(t, cn)
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw})
	if err := os.WriteFile(keyPath, keyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(certPath, certPEM, 0o644); err != nil {
		t.Fatal(err)
	}
}
