package loadtest

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"encoding/xml"
	"errors"
	"fmt"
	"math/big"
	"net/url"
	"os"
	"path/filepath"
	"time"

	"github.com/crewjam/saml"
	dsig "github.com/russellhaering/goxmldsig"
)

// IdPEntityID is the load-test IdP's entity id (and the Issuer of its
// responses). It names no server: the IdP exists only inside this tool.
const IdPEntityID = "https://loadtest-idp.invalid/metadata"

// Files in the state folder written by Setup.
const (
	keyFile   = "idp-key.pem"
	certFile  = "idp-cert.pem"
	orgsFile  = "organizations.yaml"
	stateFile = "loadtest.json"
)

// IdP is the load-test identity provider: an RSA-2048 key and its
// self-signed certificate, which the load-test connections trust.
type IdP struct {
	Key  *rsa.PrivateKey
	Cert *x509.Certificate
}

// NewIdP makes a key and a certificate valid for validFor.
func NewIdP(validFor time.Duration) (*IdP, error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:   pkix.Name{CommonName: "jitprov load-test IdP"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(validFor),
		KeyUsage: x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &IdP{Key: key, Cert: cert}, nil
}

// Save writes the key (0600) and the certificate into dir.
func (p *IdP) Save(dir string) error {
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(p.Key)})
	if err := os.WriteFile(filepath.Join(dir, keyFile), keyPEM, 0o600); err != nil {
		return err
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: p.Cert.Raw})
	return os.WriteFile(filepath.Join(dir, certFile), certPEM, 0o644)
}

// LoadIdP reads what Save wrote.
func LoadIdP(dir string) (*IdP, error) {
	read := func(name, typ string) ([]byte, error) {
		raw, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			return nil, fmt.Errorf("%w (run `jitprov loadtest setup` first)", err)
		}
		b, _ := pem.Decode(raw)
		if b == nil || b.Type != typ {
			return nil, fmt.Errorf("%s: no %s PEM block", filepath.Join(dir, name), typ)
		}
		return b.Bytes, nil
	}
	kb, err := read(keyFile, "RSA PRIVATE KEY")
	if err != nil {
		return nil, err
	}
	key, err := x509.ParsePKCS1PrivateKey(kb)
	if err != nil {
		return nil, err
	}
	cb, err := read(certFile, "CERTIFICATE")
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(cb)
	if err != nil {
		return nil, err
	}
	if time.Now().After(cert.NotAfter) {
		return nil, errors.New("the load-test IdP certificate has expired: run `jitprov loadtest setup` again")
	}
	return &IdP{Key: key, Cert: cert}, nil
}

// provider is crewjam/saml's IdP on the load-test key: it signs the
// responses (RSA-SHA256, exclusive c14n), as a real IdP built on it would.
func (p *IdP) provider() *saml.IdentityProvider {
	md, _ := url.Parse(IdPEntityID)
	sso, _ := url.Parse("https://loadtest-idp.invalid/sso")
	return &saml.IdentityProvider{Key: p.Key, Certificate: p.Cert, SignatureMethod: dsig.RSASHA256SignatureMethod,
		MetadataURL: *md, SSOURL: *sso}
}

// MetadataXML is the IdP's metadata, with its signing certificate.
func (p *IdP) MetadataXML() (string, error) {
	md := p.provider().Metadata()
	md.ValidUntil = p.Cert.NotAfter
	out, err := xml.MarshalIndent(md, "", "  ")
	return string(out), err
}
