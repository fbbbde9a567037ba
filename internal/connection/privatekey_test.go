package connection

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"testing"
)

// The private_key_jwt key file may be PKCS#8, PKCS#1 or SEC1 PEM; anything
// else is refused clearly. Keys are TEST keys, generated now.
func TestPrivateKey(t *testing.T) {
	keys := testKeys(t)
	pkcs8, _ := x509.MarshalPKCS8PrivateKey(keys.sp)
	ecKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	sec1, _ := x509.MarshalECPrivateKey(ecKey)
	tests := []struct {
		name  string
		block *pem.Block
		ok    bool
	}{
		{"pkcs8", &pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8}, true},
		{"pkcs1", &pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(keys.sp.(*rsa.PrivateKey))}, true},
		{"sec1", &pem.Block{Type: "EC PRIVATE KEY", Bytes: sec1}, true},
		{"certificate", &pem.Block{Type: "CERTIFICATE", Bytes: keys.spCert}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "key.pem")
			if err := os.WriteFile(path, pem.EncodeToMemory(tt.block), 0o600); err != nil {
				t.Fatal(err)
			}
			key, err := OIDC{PrivateKeyFile: path}.PrivateKey()
			if tt.ok && (err != nil || key == nil) {
				t.Errorf("got %v, %v; want a key", key, err)
			}
			if !tt.ok && err == nil {
				t.Error("accepted a file that holds no private key")
			}
		})
	}
	if _, err := (OIDC{PrivateKeyFile: filepath.Join(t.TempDir(), "missing.pem")}).PrivateKey(); err == nil {
		t.Error("accepted a missing file")
	}
}
