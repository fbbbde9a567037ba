package devmode

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/jitprov/jitprov/internal/admin"
	"github.com/jitprov/jitprov/internal/admin/token"
	"github.com/jitprov/jitprov/internal/store"
)

// secretFile returns the hex secret of n random bytes kept in path, made
// on first use. Development secrets only: they live in the data folder.
func secretFile(path string, n int) (string, error) {
	b, err := os.ReadFile(path)
	if err == nil && len(strings.TrimSpace(string(b))) >= 2*n {
		return strings.TrimSpace(string(b)), nil
	} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("devmode: %w", err)
	}
	raw := make([]byte, n)
	if _, err := rand.Read(raw); err != nil {
		return "", err
	}
	s := hex.EncodeToString(raw)
	if err := os.WriteFile(path, []byte(s+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("devmode: %w", err)
	}
	return s, nil
}

// spKeyPair returns the edge's SAML SP key pair kept in dir (sp.key,
// sp.crt), made on first use: RSA 2048, self-signed for ten years.
func spKeyPair(dir string) (*tls.Certificate, error) {
	keyPath, certPath := filepath.Join(dir, "sp.key"), filepath.Join(dir, "sp.crt")
	if pair, err := tls.LoadX509KeyPair(certPath, keyPath); err == nil {
		return &pair, nil
	}
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 64))
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{SerialNumber: serial, Subject: pkix.Name{CommonName: "jitprov dev SP"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().AddDate(10, 0, 0),
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	if err := os.WriteFile(keyPath, keyPEM, 0o600); err != nil {
		return nil, fmt.Errorf("devmode: %w", err)
	}
	if err := os.WriteFile(certPath, certPEM, 0o644); err != nil {
		return nil, fmt.Errorf("devmode: %w", err)
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, err
	}
	return &pair, nil
}

// adminTokenFile is where jitprov dev keeps a global admin API token for
// the CLI (`JITPROV_TOKEN=$(cat …)`), in its data folder.
const adminTokenFile = "admin-token"

// adminToken returns the dev admin token kept in dir, making a new one —
// global, read-write, for a year — when there is none or it no longer
// works (revoked, expired, another database).
func adminToken(ctx context.Context, dir string, s token.Store, core *admin.Core) (string, error) {
	path := filepath.Join(dir, adminTokenFile)
	if raw, err := os.ReadFile(path); err == nil {
		secret := strings.TrimSpace(string(raw))
		if _, err := token.NewAuthenticator(s, nil).Authenticate(ctx, secret); err == nil {
			return path, nil
		}
	}
	c, err := core.CreateToken(ctx, admin.Operator("jitprov dev"), admin.NewToken{Name: "jitprov dev", Scope: store.ScopeWrite,
		ExpiresAt: time.Now().Add(365 * 24 * time.Hour)})
	if err != nil {
		return "", fmt.Errorf("make the dev admin token: %w", err)
	}
	if err := os.WriteFile(path, []byte(c.Secret+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("keep the dev admin token: %w", err)
	}
	return path, nil
}
