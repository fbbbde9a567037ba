package devidp

import (
	"context"
	"encoding/base64"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func newIdPIn(t *testing.T, dir string) *IdP {
	t.Helper()
	idp, err := New(context.Background(), Config{BaseURL: "http://localhost:8080/dev-idp", DataDir: dir, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	return idp
}

// TestKeysPersist: a restart on the same data directory serves the same
// SAML certificate (so the edge's cached metadata stays valid) and the
// same OIDC key id; without one, every start has new keys.
func TestKeysPersist(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data") // made by New
	first, second := newIdPIn(t, dir), newIdPIn(t, dir)
	if !first.SAMLCertificate().Equal(second.SAMLCertificate()) {
		t.Error("the SAML certificate changed across a restart")
	}
	if first.OIDCKeyID() == "" || first.OIDCKeyID() != second.OIDCKeyID() {
		t.Errorf("OIDC key ids %q and %q, want the same", first.OIDCKeyID(), second.OIDCKeyID())
	}
	// What each serves: the certificate in the SAML metadata, the kid in
	// the JWKS.
	cert := base64.StdEncoding.EncodeToString(first.SAMLCertificate().Raw)
	for i, idp := range []*IdP{first, second} {
		srv := httptest.NewServer(idp.Handler())
		b := newBrowser(t)
		if md := b.Get(srv.URL + "/dev-idp/saml/metadata").Body; !strings.Contains(md, cert) {
			t.Errorf("start %d: the SAML metadata does not carry the persisted certificate", i+1)
		}
		if jwks := b.Get(srv.URL + "/dev-idp/oidc/keys").Body; !strings.Contains(jwks, `"kid":"`+first.OIDCKeyID()+`"`) {
			t.Errorf("start %d: JWKS %s does not carry kid %q", i+1, jwks, first.OIDCKeyID())
		}
		srv.Close()
	}
	for _, name := range []string{samlKeyFile, samlCertFile, oidcKeyFile} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v, want 0600", name, fi.Mode().Perm())
		}
	}

	a, b := newIdPIn(t, ""), newIdPIn(t, "")
	if a.SAMLCertificate().Equal(b.SAMLCertificate()) || a.OIDCKeyID() == b.OIDCKeyID() {
		t.Error("two IdPs without a data directory share keys")
	}
}

// TestCertRenewal: a certificate near its end is replaced, for the same
// key; a foreign or corrupt file is reported.
func TestCertRenewal(t *testing.T) {
	dir := t.TempDir()
	k, err := loadKeys(dir, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	later := k.samlCert.NotAfter.Add(-certRenewBefore / 2)
	renewed, err := loadKeys(dir, later)
	if err != nil {
		t.Fatal(err)
	}
	if renewed.samlCert.Equal(k.samlCert) || !renewed.saml.Equal(k.saml) || !renewed.samlCert.NotAfter.After(later.Add(certRenewBefore)) {
		t.Error("the certificate was not renewed for the same key")
	}

	tests := []struct {
		name, file, content string
	}{
		{"key not PEM", samlKeyFile, "garbage"},
		{"certificate not PEM", samlCertFile, "garbage"},
		{"OIDC key of another type", oidcKeyFile, "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := t.TempDir()
			if _, err := loadKeys(d, time.Now()); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(d, tt.file), []byte(tt.content), 0o600); err != nil {
				t.Fatal(err)
			}
			if _, err := loadKeys(d, time.Now()); err == nil {
				t.Errorf("a broken %s was accepted", tt.file)
			}
		})
	}
}
