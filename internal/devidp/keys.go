package devidp

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"os"
	"path/filepath"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// Files in Config.DataDir.
const (
	samlKeyFile  = "devidp-saml.key" // PKCS#8 PEM
	samlCertFile = "devidp-saml.crt" // PEM, self-signed
	oidcKeyFile  = "devidp-oidc.key" // PKCS#8 PEM
)

const (
	rsaBits = 2048
	// certLifetime is long so that no "certificate expiring" alert ever
	// fires for the development IdP; certRenewBefore renews a loaded
	// certificate that is about to expire (same key).
	certLifetime    = 10 * 365 * 24 * time.Hour
	certRenewBefore = 30 * 24 * time.Hour
)

// keys are the IdP's signing keys.
type keys struct {
	saml     *rsa.PrivateKey
	samlCert *x509.Certificate
	oidc     *rsa.PrivateKey
	oidcKID  string
}

// loadKeys loads the keys from dir, creating the missing ones; with dir
// "" they are made in memory and last as long as the process.
func loadKeys(dir string, now time.Time) (*keys, error) {
	if dir != "" {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("data directory: %w", err)
		}
	}
	k := &keys{}
	var err error
	if k.saml, err = loadOrCreateKey(dir, samlKeyFile); err != nil {
		return nil, err
	}
	if k.samlCert, err = loadOrCreateCert(dir, k.saml, now); err != nil {
		return nil, err
	}
	if k.oidc, err = loadOrCreateKey(dir, oidcKeyFile); err != nil {
		return nil, err
	}
	// The key id is the key's RFC 7638 thumbprint: the same key keeps the
	// same id across restarts.
	tp, err := (&jose.JSONWebKey{Key: k.oidc.Public()}).Thumbprint(crypto.SHA256)
	if err != nil {
		return nil, fmt.Errorf("OIDC key id: %w", err)
	}
	k.oidcKID = fmt.Sprintf("%x", tp[:8])
	return k, nil
}

func loadOrCreateKey(dir, name string) (*rsa.PrivateKey, error) {
	if dir != "" {
		path := filepath.Join(dir, name)
		b, err := os.ReadFile(path)
		switch {
		case err == nil:
			return parseKey(path, b)
		case !errors.Is(err, fs.ErrNotExist):
			return nil, fmt.Errorf("read %s: %w", path, err)
		}
	}
	key, err := rsa.GenerateKey(rand.Reader, rsaBits)
	if err != nil {
		return nil, fmt.Errorf("generate %s: %w", name, err)
	}
	if dir == "" {
		return key, nil
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("encode %s: %w", name, err)
	}
	if err := writeFile(dir, name, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})); err != nil {
		return nil, err
	}
	return key, nil
}

func parseKey(path string, b []byte) (*rsa.PrivateKey, error) {
	block, _ := pem.Decode(b)
	if block == nil || block.Type != "PRIVATE KEY" {
		return nil, fmt.Errorf("%s: no PEM block \"PRIVATE KEY\" (delete the file to make a new key)", path)
	}
	key, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	rsaKey, ok := key.(*rsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("%s: %T is not an RSA key (delete the file to make a new key)", path, key)
	}
	return rsaKey, nil
}

// loadOrCreateCert loads the SAML certificate, or makes a self-signed one
// for key when there is none, it is not key's, or it is about to expire.
func loadOrCreateCert(dir string, key *rsa.PrivateKey, now time.Time) (*x509.Certificate, error) {
	if dir != "" {
		path := filepath.Join(dir, samlCertFile)
		b, err := os.ReadFile(path)
		switch {
		case err == nil:
			block, _ := pem.Decode(b)
			if block == nil || block.Type != "CERTIFICATE" {
				return nil, fmt.Errorf("%s: no PEM block \"CERTIFICATE\" (delete the file to make a new one)", path)
			}
			cert, err := x509.ParseCertificate(block.Bytes)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", path, err)
			}
			if key.PublicKey.Equal(cert.PublicKey) && now.Add(certRenewBefore).Before(cert.NotAfter) {
				return cert, nil
			}
		case !errors.Is(err, fs.ErrNotExist):
			return nil, fmt.Errorf("read %s: %w", path, err)
		}
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, fmt.Errorf("certificate serial: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "jitprov development IdP (not for production)"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(certLifetime),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("create the SAML certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("parse the SAML certificate: %w", err)
	}
	if dir != "" {
		if err := writeFile(dir, samlCertFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})); err != nil {
			return nil, err
		}
	}
	return cert, nil
}

// writeFile writes name in dir atomically (a temporary file renamed), mode
// 0600.
func writeFile(dir, name string, data []byte) error {
	f, err := os.CreateTemp(dir, "."+name+".*")
	if err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	defer os.Remove(f.Name()) // after a successful rename, a no-op
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", name, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	if err := os.Rename(f.Name(), filepath.Join(dir, name)); err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	return nil
}
