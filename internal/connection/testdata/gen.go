//go:build ignore

// gen writes the IdP metadata fixtures of this folder, on the certificate
// of a TEST key it throws away (the SP's keys of the tests are generated
// by the tests themselves). Run from internal/connection:
//
//	go run testdata/gen.go
package main

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"fmt"
	"log"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"time"
)

func main() {
	dir := "testdata"
	write := func(name, content string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			log.Fatal(err)
		}
	}
	idpKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		log.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "jitprov test IdP"},
		NotBefore: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC), NotAfter: time.Date(2125, 1, 1, 0, 0, 0, 0, time.UTC)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, idpKey.Public(), idpKey)
	if err != nil {
		log.Fatal(err)
	}
	idpCert := base64.StdEncoding.EncodeToString(der)
	metadata := func(entityID, use, cert, bindings string) string {
		var sso strings.Builder
		for _, b := range strings.Fields(bindings) {
			fmt.Fprintf(&sso, "    <SingleSignOnService Binding=\"urn:oasis:names:tc:SAML:2.0:bindings:%s\" Location=\"https://idp.example/sso\"/>\n", b)
		}
		useAttr := ""
		if use != "" {
			useAttr = fmt.Sprintf(" use=%q", use)
		}
		return fmt.Sprintf(`<?xml version="1.0"?>
<EntityDescriptor xmlns="urn:oasis:names:tc:SAML:2.0:metadata" xmlns:ds="http://www.w3.org/2000/09/xmldsig#" entityID=%q>
  <IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">
    <KeyDescriptor%s>
      <ds:KeyInfo><ds:X509Data><ds:X509Certificate>%s</ds:X509Certificate></ds:X509Data></ds:KeyInfo>
    </KeyDescriptor>
%s  </IDPSSODescriptor>
</EntityDescriptor>
`, entityID, useAttr, cert, sso.String())
	}
	write("idp.xml", metadata("https://idp.example/", "signing", idpCert, "HTTP-Redirect HTTP-POST"))
	write("idp-encryption-only.xml", metadata("https://idp.example/", "encryption", idpCert, "HTTP-Redirect"))
	write("idp-post-only.xml", metadata("https://idp.example/", "", idpCert, "HTTP-POST"))
	write("idp-bad-certificate.xml", metadata("https://idp.example/", "signing", base64.StdEncoding.EncodeToString([]byte("not a certificate")), "HTTP-Redirect"))
	write("idp-no-entity-id.xml", metadata("", "signing", idpCert, "HTTP-Redirect"))
	write("sp-metadata.xml", `<?xml version="1.0"?>
<EntityDescriptor xmlns="urn:oasis:names:tc:SAML:2.0:metadata" entityID="https://sp.example/">
  <SPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">
    <AssertionConsumerService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST" Location="https://sp.example/acs" index="1"/>
  </SPSSODescriptor>
</EntityDescriptor>
`)
	write("not-metadata.xml", "<html><body>Sign in to continue</body></html>\n")
}
