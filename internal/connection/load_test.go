package connection

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// keys are TEST keys, generated once per test run.
type keys struct {
	sp, other, ed, rsa1024, p384 crypto.Signer
	spCert, otherCert, edCert    []byte // DER
}

var genKeys = sync.OnceValues(func() (*keys, error) {
	var k keys
	var err error
	if k.sp, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
		return nil, err
	}
	if k.other, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
		return nil, err
	}
	if k.rsa1024, err = rsa.GenerateKey(rand.Reader, 1024); err != nil {
		return nil, err
	}
	if k.p384, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader); err != nil {
		return nil, err
	}
	if _, k.ed, err = ed25519.GenerateKey(rand.Reader); err != nil {
		return nil, err
	}
	cert := func(key crypto.Signer) []byte {
		if err != nil {
			return nil
		}
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "jitprov test"},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour)}
		var der []byte
		der, err = x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
		return der
	}
	k.spCert, k.otherCert, k.edCert = cert(k.sp), cert(k.other), cert(k.ed)
	return &k, err
})

func testKeys(t *testing.T) *keys {
	t.Helper()
	k, err := genKeys()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// keyFiles writes the test keys as PEM files into a temporary folder:
// sp.key and sp.crt (a pair), other.crt, ed25519.key and ed25519.crt,
// rsa1024.key, p384.key, empty.txt and secret.txt.
func keyFiles(t *testing.T) string {
	t.Helper()
	k := testKeys(t)
	dir := t.TempDir()
	write := func(name, typ string, der []byte) {
		var data []byte
		if typ != "" {
			data = pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
		} else {
			data = der
		}
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	pkcs8 := func(key crypto.Signer) []byte {
		der, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			t.Fatal(err)
		}
		return der
	}
	write("sp.key", "PRIVATE KEY", pkcs8(k.sp))
	write("sp.crt", "CERTIFICATE", k.spCert)
	write("other.crt", "CERTIFICATE", k.otherCert)
	write("ed25519.key", "PRIVATE KEY", pkcs8(k.ed))
	write("ed25519.crt", "CERTIFICATE", k.edCert)
	write("rsa1024.key", "PRIVATE KEY", pkcs8(k.rsa1024))
	write("p384.key", "PRIVATE KEY", pkcs8(k.p384))
	write("empty.txt", "", []byte(" \n"))
	write("secret.txt", "", []byte("s3cret\n"))
	return dir
}

// expand replaces, in the settings' string values, "{keys}" with the
// folder of keyFiles and "@FILE" (a whole value) with the content of FILE,
// for inline metadata.
func expand(t *testing.T, settings map[string]any, keys string) []byte {
	t.Helper()
	out := map[string]any{}
	for k, v := range settings {
		if s, ok := v.(string); ok {
			if file, ok := strings.CutPrefix(s, "@"); ok {
				b, err := os.ReadFile(file)
				if err != nil {
					t.Fatal(err)
				}
				s = string(b)
			}
			v = strings.ReplaceAll(s, "{keys}", keys)
		}
		out[k] = v
	}
	b, err := json.Marshal(out)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Every reason sso-edge refuses to load a connection that can be known
// without the network is found by CheckSAML/CheckOIDC (no files read) or
// FileProblems (the files the settings name), the functions the edge
// loads connections with.
func TestOfflineRefusals(t *testing.T) {
	roles := []string{"member", "admin"}
	saml := func(more map[string]any) map[string]any {
		s := map[string]any{"idp_metadata_file": "testdata/idp.xml"}
		for k, v := range more {
			s[k] = v
		}
		return s
	}
	oidc := func(more map[string]any) map[string]any {
		s := map[string]any{"issuer": "https://idp.example", "client_id": "c", "client_secret_file": "{keys}/secret.txt"}
		for k, v := range more {
			s[k] = v
		}
		return s
	}
	tests := []struct {
		name     string
		protocol string
		settings map[string]any
		field    string // "" : no problem
		want     string
	}{
		// SAML: the IdP's metadata.
		{"metadata file", "saml", saml(nil), "", ""},
		{"metadata file missing", "saml", saml(map[string]any{"idp_metadata_file": "testdata/nope.xml"}),
			"idp_metadata_file", `cannot read the IdP's metadata from "testdata/nope.xml": no such file or directory`},
		{"metadata file unreadable (a folder)", "saml", saml(map[string]any{"idp_metadata_file": "testdata"}),
			"idp_metadata_file", `cannot read the IdP's metadata from "testdata": is a directory`},
		{"metadata file not metadata", "saml", saml(map[string]any{"idp_metadata_file": "testdata/not-metadata.xml"}),
			"idp_metadata_file", `"testdata/not-metadata.xml": not SAML metadata (an EntityDescriptor)`},
		{"metadata file of an SP", "saml", saml(map[string]any{"idp_metadata_file": "testdata/sp-metadata.xml"}),
			"idp_metadata_file", `no IDPSSODescriptor`},
		{"inline metadata", "saml", map[string]any{"idp_metadata_xml": "@testdata/idp.xml"}, "", ""},
		{"inline metadata not XML", "saml", map[string]any{"idp_metadata_xml": "https://idp.example/metadata"},
			"idp_metadata_xml", `not SAML metadata (an EntityDescriptor): EOF`},
		{"inline metadata without signing certificate", "saml", map[string]any{"idp_metadata_xml": "@testdata/idp-encryption-only.xml"},
			"idp_metadata_xml", `no signing certificate`},
		{"inline metadata with a broken certificate", "saml", map[string]any{"idp_metadata_xml": "@testdata/idp-bad-certificate.xml"},
			"idp_metadata_xml", `signing certificate: x509`},
		{"inline metadata without HTTP-Redirect SSO", "saml", map[string]any{"idp_metadata_xml": "@testdata/idp-post-only.xml"},
			"idp_metadata_xml", `no SingleSignOnService with the HTTP-Redirect binding`},
		{"inline metadata without entity id", "saml", map[string]any{"idp_metadata_xml": "@testdata/idp-no-entity-id.xml"},
			"idp_metadata_xml", `no entityID`},
		{"metadata URL is not fetched", "saml", map[string]any{"idp_metadata_url": "https://idp.invalid/metadata"}, "", ""},

		// SAML: the SP.
		{"SP entity id with spaces", "saml", saml(map[string]any{"sp_entity_id": "https://sp.example/ "}),
			"sp_entity_id", `has leading or trailing spaces`},
		{"SP key pair", "saml", saml(map[string]any{"sp_key_file": "{keys}/sp.key", "sp_cert_file": "{keys}/sp.crt"}), "", ""},
		{"SP key file missing", "saml", saml(map[string]any{"sp_key_file": "{keys}/nope.key", "sp_cert_file": "{keys}/sp.crt"}),
			"sp_key_file", `cannot read the SP's key from`},
		{"SP certificate file missing", "saml", saml(map[string]any{"sp_key_file": "{keys}/sp.key", "sp_cert_file": "{keys}/nope.crt"}),
			"sp_cert_file", `cannot read the SP's certificate from`},
		{"SP key and certificate do not match", "saml", saml(map[string]any{"sp_key_file": "{keys}/sp.key", "sp_cert_file": "{keys}/other.crt"}),
			"sp_key_file", `is not a key pair the SP can use: private key does not match public key`},
		{"SP key and certificate swapped", "saml", saml(map[string]any{"sp_key_file": "{keys}/sp.crt", "sp_cert_file": "{keys}/sp.key"}),
			"sp_key_file", `is not a key pair the SP can use`},
		{"SP key Ed25519", "saml", saml(map[string]any{"sp_key_file": "{keys}/ed25519.key", "sp_cert_file": "{keys}/ed25519.crt"}),
			"sp_key_file", `ed25519.PrivateKey is not supported`},

		// OIDC: the issuer.
		{"issuer", "oidc", oidc(nil), "", ""},
		{"issuer with a trailing slash (the edge takes the provider's spelling)", "oidc", oidc(map[string]any{"issuer": "https://idp.example/"}), "", ""},
		{"issuer http on loopback", "oidc", oidc(map[string]any{"issuer": "http://127.0.0.1:5556/dex"}), "", ""},
		{"issuer http", "oidc", oidc(map[string]any{"issuer": "http://idp.example"}), "issuer", `must be an https:// URL (http:// only for localhost)`},
		{"issuer without host", "oidc", oidc(map[string]any{"issuer": "idp.example"}), "issuer", `must be an https:// URL`},
		{"issuer with a fragment", "oidc", oidc(map[string]any{"issuer": "https://idp.example/#x"}), "issuer", `without a user, query or fragment`},
		{"issuer with a user", "oidc", oidc(map[string]any{"issuer": "https://me@idp.example"}), "issuer", `without a user, query or fragment`},
		{"issuer with a query", "oidc", oidc(map[string]any{"issuer": "https://idp.example/?tenant=a"}), "issuer", `without a user, query or fragment`},

		// OIDC: the client's credentials.
		{"client secret file missing", "oidc", oidc(map[string]any{"client_secret_file": "{keys}/nope.txt"}),
			"client_secret_file", `cannot read the client secret from`},
		{"client secret file empty", "oidc", oidc(map[string]any{"client_secret_file": "{keys}/empty.txt"}),
			"client_secret_file", `is empty`},
		{"client secret variable is the edge's", "oidc", map[string]any{"issuer": "https://idp.example", "client_id": "c", "client_secret_env": "JITPROV_TEST_UNSET"}, "", ""},
		{"private key", "oidc", map[string]any{"issuer": "https://idp.example", "client_id": "c", "token_endpoint_auth": "private_key_jwt",
			"private_key_file": "{keys}/sp.key"}, "", ""},
		{"private key missing", "oidc", map[string]any{"issuer": "https://idp.example", "client_id": "c", "token_endpoint_auth": "private_key_jwt",
			"private_key_file": "{keys}/nope.key"}, "private_key_file", `cannot read the private key from`},
		{"private key too small", "oidc", map[string]any{"issuer": "https://idp.example", "client_id": "c", "token_endpoint_auth": "private_key_jwt",
			"private_key_file": "{keys}/rsa1024.key"}, "private_key_file", `RSA key has 1024 bits, at least 2048 are required`},
		{"private key on P-384", "oidc", map[string]any{"issuer": "https://idp.example", "client_id": "c", "token_endpoint_auth": "private_key_jwt",
			"private_key_file": "{keys}/p384.key"}, "private_key_file", `must be on P-256`},
		{"private key is a certificate", "oidc", map[string]any{"issuer": "https://idp.example", "client_id": "c", "token_endpoint_auth": "private_key_jwt",
			"private_key_file": "{keys}/sp.crt"}, "private_key_file", `PEM block "CERTIFICATE" is not a private key`},
		{"private key Ed25519", "oidc", map[string]any{"issuer": "https://idp.example", "client_id": "c", "token_endpoint_auth": "private_key_jwt",
			"private_key_file": "{keys}/ed25519.key"}, "private_key_file", `is not supported (RSA or ECDSA P-256)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("JITPROV_TEST_UNSET", "")
			settings := expand(t, tt.settings, keyFiles(t))
			var got []Problem
			switch tt.protocol {
			case "saml":
				s, ps := CheckSAML(settings, roles)
				got = append(ps, s.FileProblems()...)
			case "oidc":
				s, ps := CheckOIDC(settings, roles)
				got = append(ps, s.FileProblems()...)
			}
			if tt.field == "" {
				if len(got) > 0 {
					t.Fatalf("got problems %v, want none", got)
				}
				return
			}
			if len(got) != 1 || got[0].Field != tt.field || !strings.Contains(got[0].Msg, tt.want) {
				t.Fatalf("got %d problems:\n%v\nwant one on %s containing %q", len(got), ProblemList(got), tt.field, tt.want)
			}
		})
	}
}

// Every mistake of a connection's settings is reported at once: unknown
// keys at any depth and values of the wrong type, and the checks of the
// rest, without reporting a value of the wrong type a second time.
func TestCheckReportsEveryProblem(t *testing.T) {
	settings := `{
		"idp_metadata_file": "testdata/nope.xml",
		"alow_sha1": true,
		"allow_idp_initiated": "yes",
		"clock_skew": "1h",
		"attributes": {"mail": "email"},
		"group_roles": [{"group": "g", "role": "owner"}, {"group": "h", "role": "member", "prio": 1}],
		"external_id": "employeeNumber"
	}`
	s, got := CheckSAML([]byte(settings), []string{"member", "admin"})
	got = append(got, s.FileProblems()...)
	want := []string{
		`allow_idp_initiated: expected true or false, got "yes"`,
		`alow_sha1: unknown setting (known settings: idp_metadata_url, idp_metadata_file, idp_metadata_xml,`,
		`attributes.mail: unknown setting (known settings: email, given_name, family_name, display_name, groups, roles)`,
		`external_id: expected a mapping, got "employeeNumber"`,
		`group_roles[1].prio: unknown setting (known settings: group, role)`,
		`clock_skew: 1h0m0s is out of range: 0 to 5m0s (default 1m30s)`,
		`group_roles[0].role: "owner" is not one of the organisation's roles (member, admin)`,
		`idp_metadata_file: cannot read the IdP's metadata from "testdata/nope.xml": no such file or directory`,
	}
	if len(got) != len(want) {
		t.Fatalf("got %d problems, want %d:\n%v", len(got), len(want), ProblemList(got))
	}
	for i, w := range want {
		if !strings.HasPrefix(got[i].Error(), w) {
			t.Errorf("problem %d:\n got %s\nwant %s…", i, got[i], w)
		}
	}
}

// Keys match as encoding/json matches them, so that settings stored before
// keep loading.
func TestDecodeIgnoresCaseLikeEncodingJSON(t *testing.T) {
	s, err := DecodeOIDC([]byte(`{"Issuer":"https://idp.example","CLIENT_ID":"c"}`))
	if err != nil || s.Issuer != "https://idp.example" || s.ClientID != "c" {
		t.Errorf("got %+v, %v", s, err)
	}
}
