package samlsp

import (
	"bytes"
	"compress/flate"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/xml"
	"io"
	"math/big"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/crewjam/saml"
)

func TestNewRejectsBadConfig(t *testing.T) {
	t.Parallel()
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		edit func(*Config)
		want string
	}{
		{"no_entity_id", func(c *Config) { c.EntityID = "" }, "entity id"},
		{"relative_acs", func(c *Config) { c.ACSURL = mustURL("/saml/acs") }, "ACS URL"},
		{"acs_with_fragment", func(c *Config) { c.ACSURL = mustURL(spACSURL + "#x") }, "fragment"},
		{"no_key", func(c *Config) { c.Key = nil }, "SP key: missing"},
		{"no_certificate", func(c *Config) { c.Certificate = nil }, "SP certificate: missing"},
		{"key_not_matching_certificate", func(c *Config) { c.Certificate = testKeys.idp.cert }, "does not match"},
		{"ecdsa_key_with_rsa_certificate", func(c *Config) { c.Key = ecKey }, "does not match"},
		{"skew_too_large", func(c *Config) { c.ClockSkew = 10 * time.Minute }, "clock skew"},
		{"negative_skew", func(c *Config) { c.ClockSkew = -time.Second }, "clock skew"},
		{"size_limit_too_large", func(c *Config) { c.MaxResponseBytes = 16 << 20 }, "max response bytes"},
		{"no_idp_metadata", func(c *Config) { c.IDPMetadata = nil }, "IdP metadata: missing"},
		{"idp_without_entity_id", func(c *Config) { c.IDPMetadata.EntityID = "" }, "no entityID"},
		{"idp_without_signing_certificate", func(c *Config) {
			c.IDPMetadata.IDPSSODescriptors[0].KeyDescriptors[0].Use = "encryption"
		}, "no signing certificate"},
		{"idp_with_garbage_certificate", func(c *Config) {
			c.IDPMetadata.IDPSSODescriptors[0].KeyDescriptors[0].KeyInfo.X509Data.X509Certificates[0].Data = "bm90IGEgY2VydA=="
		}, "signing certificate"},
		{"idp_without_redirect_binding", func(c *Config) {
			c.IDPMetadata.IDPSSODescriptors[0].SingleSignOnServices = c.IDPMetadata.IDPSSODescriptors[0].SingleSignOnServices[:1]
		}, "HTTP-Redirect"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg := testConfig()
			tt.edit(&cfg)
			_, err := New(cfg)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("New: got %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

func TestMetadata(t *testing.T) {
	t.Parallel()
	for _, allowUnsigned := range []bool{false, true} {
		md := newSP(t, func(c *Config) { c.AllowUnsignedAssertion = allowUnsigned }).Metadata()
		if md.EntityID != spEntityID || len(md.SPSSODescriptors) != 1 {
			t.Fatalf("got %+v", md)
		}
		d := md.SPSSODescriptors[0]
		if len(d.AssertionConsumerServices) != 1 || d.AssertionConsumerServices[0].Binding != saml.HTTPPostBinding ||
			d.AssertionConsumerServices[0].Location != spACSURL {
			t.Errorf("ACS: got %+v, want only HTTP-POST at %s", d.AssertionConsumerServices, spACSURL)
		}
		if len(d.NameIDFormats) != 1 || d.NameIDFormats[0] != saml.PersistentNameIDFormat {
			t.Errorf("NameID formats: got %v, want persistent", d.NameIDFormats)
		}
		if *d.WantAssertionsSigned == allowUnsigned {
			t.Errorf("WantAssertionsSigned: got %v with AllowUnsignedAssertion %v", *d.WantAssertionsSigned, allowUnsigned)
		}
		if *d.AuthnRequestsSigned {
			t.Error("AuthnRequestsSigned: got true for an IdP that does not want signed requests")
		}
		if len(d.KeyDescriptors) == 0 || d.KeyDescriptors[0].Use != "encryption" ||
			d.KeyDescriptors[0].KeyInfo.X509Data.X509Certificates[0].Data != base64.StdEncoding.EncodeToString(testKeys.sp.cert.Raw) {
			t.Errorf("key descriptors: got %+v, want our certificate for encryption", d.KeyDescriptors)
		}
	}
}

// The SP metadata an IdP imports once, as a file, does not expire: no
// validUntil anywhere (crewjam's default is now + 48h), a cacheDuration
// for IdPs that fetch it, and it reads back as the same descriptor.
func TestMetadataDoesNotExpire(t *testing.T) {
	t.Parallel()
	md := newSP(t).Metadata()
	raw, err := MarshalMetadata(md)
	if err != nil {
		t.Fatal(err)
	}
	doc := string(raw)
	if !strings.HasPrefix(doc, xml.Header) {
		t.Errorf("no XML declaration:\n%s", doc)
	}
	if strings.Contains(doc, "validUntil") {
		t.Errorf("the metadata has a validUntil:\n%s", doc)
	}
	if !strings.Contains(doc, `cacheDuration="PT24H"`) {
		t.Errorf("the metadata has no cacheDuration of a day:\n%s", doc)
	}
	var back saml.EntityDescriptor
	if err := xml.Unmarshal(raw, &back); err != nil {
		t.Fatal(err)
	}
	if back.EntityID != spEntityID || !back.ValidUntil.IsZero() || back.CacheDuration != MetadataCacheDuration ||
		len(back.SPSSODescriptors) != 1 || back.SPSSODescriptors[0].ValidUntil != nil ||
		back.SPSSODescriptors[0].AssertionConsumerServices[0].Location != spACSURL {
		t.Errorf("read back: %+v", back)
	}
}

// authnRequest starts a login and decodes the AuthnRequest from the URL.
func authnRequest(t testing.TB, sp *SP) *saml.AuthnRequest {
	t.Helper()
	u, id, err := sp.AuthnRequestURL("")
	if err != nil {
		t.Fatal(err)
	}
	req := decodeAuthnRequest(t, u)
	if req.ID != id {
		t.Errorf("request ID: got %q in the request, %q returned", req.ID, id)
	}
	return req
}

func decodeAuthnRequest(t testing.TB, u *url.URL) *saml.AuthnRequest {
	t.Helper()
	deflated, err := base64.StdEncoding.DecodeString(u.Query().Get("SAMLRequest"))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := io.ReadAll(flate.NewReader(bytes.NewReader(deflated)))
	if err != nil {
		t.Fatal(err)
	}
	var req saml.AuthnRequest
	if err := xml.Unmarshal(raw, &req); err != nil {
		t.Fatal(err)
	}
	return &req
}

func TestAuthnRequestURL(t *testing.T) {
	t.Parallel()
	const relayState = "r/a&b=c d%é?" // needs escaping
	for _, signed := range []bool{false, true} {
		sp := newSP(t, func(c *Config) { c.IDPMetadata = idpMetadata(signed) })
		u, id, err := sp.AuthnRequestURL(relayState)
		if err != nil {
			t.Fatal(err)
		}
		if got := u.Scheme + "://" + u.Host + u.Path; got != idpSSOURL {
			t.Errorf("redirect to %q, want the IdP's HTTP-Redirect endpoint %q", got, idpSSOURL)
		}
		q := u.Query()
		if q.Get("RelayState") != relayState {
			t.Errorf("RelayState: got %q, want %q", q.Get("RelayState"), relayState)
		}
		req := decodeAuthnRequest(t, u)
		if req.ID != id || !strings.HasPrefix(id, "id-") {
			t.Errorf("ID: got %q in the request, %q returned", req.ID, id)
		}
		if req.AssertionConsumerServiceURL != spACSURL || req.Destination != idpSSOURL ||
			req.Issuer.Value != spEntityID || req.ProtocolBinding != saml.HTTPPostBinding {
			t.Errorf("got %+v", req)
		}
		if req.NameIDPolicy == nil || *req.NameIDPolicy.Format != string(saml.PersistentNameIDFormat) {
			t.Errorf("NameIDPolicy: got %+v, want persistent", req.NameIDPolicy)
		}

		if !signed {
			if q.Has("Signature") || q.Has("SigAlg") {
				t.Errorf("signed a request the IdP does not want signed: %s", u)
			}
			continue
		}
		if q.Get("SigAlg") != rsaSHA256 {
			t.Fatalf("SigAlg: got %q, want %q", q.Get("SigAlg"), rsaSHA256)
		}
		// HTTP-Redirect binding (§3.4.4.1): the signature covers the
		// URL-encoded SAMLRequest, RelayState and SigAlg, in that order.
		raw := u.RawQuery[:strings.Index(u.RawQuery, "&Signature=")]
		sig, err := base64.StdEncoding.DecodeString(q.Get("Signature"))
		if err != nil {
			t.Fatal(err)
		}
		digest := sha256.Sum256([]byte(raw))
		if err := rsa.VerifyPKCS1v15(&testKeys.sp.key.PublicKey, crypto.SHA256, digest[:], sig); err != nil {
			t.Errorf("request signature does not verify: %v", err)
		}
	}
}

func TestAuthnRequestURLIDsAreUnique(t *testing.T) {
	t.Parallel()
	sp := newSP(t)
	seen := map[string]bool{}
	for range 100 {
		_, id, err := sp.AuthnRequestURL("")
		if err != nil {
			t.Fatal(err)
		}
		if seen[id] {
			t.Fatalf("request ID %q twice", id)
		}
		seen[id] = true
	}
}

func TestAuthnRequestURLRefusesLongRelayState(t *testing.T) {
	t.Parallel()
	if _, _, err := newSP(t).AuthnRequestURL(strings.Repeat("x", MaxRelayStateBytes+1)); err == nil {
		t.Fatal("accepted a relay state over 80 bytes")
	}
}

func TestExternalID(t *testing.T) {
	t.Parallel()
	base := Assertion{
		NameID:       "opaque-42",
		NameIDFormat: string(saml.PersistentNameIDFormat),
		Attributes: map[string][]string{
			"employeeNumber": {"E-1001"},
			"groups":         {"a", "b"},
			"blank":          {" "},
		},
	}
	tests := []struct {
		name   string
		format string
		rule   ExternalIDRule
		want   string // "" = error
	}{
		{"persistent_nameid", string(saml.PersistentNameIDFormat), ExternalIDRule{}, "opaque-42"},
		{"transient_nameid", string(saml.TransientNameIDFormat), ExternalIDRule{}, ""},
		{"email_nameid", string(saml.EmailAddressNameIDFormat), ExternalIDRule{}, ""},
		{"unspecified_nameid", string(saml.UnspecifiedNameIDFormat), ExternalIDRule{}, ""},
		{"absent_format", "", ExternalIDRule{}, ""},
		{"unspecified_nameid_allowed", string(saml.UnspecifiedNameIDFormat), ExternalIDRule{AllowUnspecifiedNameID: true}, "opaque-42"},
		{"absent_format_allowed", "", ExternalIDRule{AllowUnspecifiedNameID: true}, "opaque-42"},
		{"transient_nameid_even_if_unspecified_allowed", string(saml.TransientNameIDFormat), ExternalIDRule{AllowUnspecifiedNameID: true}, ""},
		{"attribute", string(saml.TransientNameIDFormat), ExternalIDRule{Attribute: "employeeNumber"}, "E-1001"},
		{"missing_attribute_never_falls_back", string(saml.PersistentNameIDFormat), ExternalIDRule{Attribute: "objectGUID"}, ""},
		{"multi_valued_attribute", string(saml.PersistentNameIDFormat), ExternalIDRule{Attribute: "groups"}, ""},
		{"blank_attribute", string(saml.PersistentNameIDFormat), ExternalIDRule{Attribute: "blank"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			a := base
			a.NameIDFormat = tt.format
			got, err := ExternalID(&a, tt.rule)
			if tt.want == "" {
				if err == nil {
					t.Fatalf("got %q, want an error", got)
				}
				assertReject(t, err, ReasonExternalID)
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("got %q, %v, want %q", got, err, tt.want)
			}
		})
	}
}

func TestExternalIDOfATransientLogin(t *testing.T) {
	t.Parallel()
	r := validResponse()
	r.NameIDFormat, r.NameID = string(saml.TransientNameIDFormat), "_"+randomHex()
	a, err := newSP(t).ParseResponse(t.Context(), b64(build(t, r)), []string{requestID})
	if err != nil {
		t.Fatal(err)
	}
	if a.NameIDFormat != string(saml.TransientNameIDFormat) {
		t.Errorf("NameIDFormat: got %q", a.NameIDFormat)
	}
	if _, err := ExternalID(a, ExternalIDRule{}); ReasonOf(err) != ReasonExternalID {
		t.Errorf("keyed a user on a transient NameID: %v", err)
	}
	if id, err := ExternalID(a, ExternalIDRule{Attribute: "employeeNumber"}); err != nil || id != "E-1001" {
		t.Errorf("from the attribute: got %q, %v", id, err)
	}
}

// TestAuthnRequestURLSignedWithECDSAKey pins that crewjam (goxmldsig)
// encodes ECDSA request signatures as ASN.1 DER; XML-DSig (RFC 4051)
// specifies r||s, so conformant IdPs may refuse them. RSA SP keys are the
// interoperable choice (see Config.Key).
func TestAuthnRequestURLSignedWithECDSAKey(t *testing.T) {
	t.Parallel()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	sp := newSP(t, func(c *Config) { c.Key, c.Certificate, c.IDPMetadata = key, cert, idpMetadata(true) })
	u, _, err := sp.AuthnRequestURL("")
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	if q.Get("SigAlg") != "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256" {
		t.Fatalf("SigAlg: got %q", q.Get("SigAlg"))
	}
	sig, err := base64.StdEncoding.DecodeString(q.Get("Signature"))
	if err != nil {
		t.Fatal(err)
	}
	digest := sha256.Sum256([]byte(u.RawQuery[:strings.Index(u.RawQuery, "&Signature=")]))
	if !ecdsa.VerifyASN1(&key.PublicKey, digest[:], sig) {
		t.Error("request signature does not verify")
	}
}
