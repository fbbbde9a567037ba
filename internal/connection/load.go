package connection

import (
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"encoding/xml"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"

	"github.com/crewjam/saml"

	"github.com/jitprov/jitprov/internal/edge/oidcrp"
	"github.com/jitprov/jitprov/internal/edge/samlsp"
)

// What a connection's settings point at — the IdP's metadata in a file or
// inline, the SP's key pair, the OIDC client's key and secret — is read
// and checked here, by sso-edge when it loads the connection and by
// `provisioner check` before the file is applied, so that the check
// refuses what the edge would. The checks of the metadata and the keys are
// those of samlsp.New and oidcrp.New themselves.

// LocalIDPMetadata reads the IdP's metadata from idp_metadata_file or
// idp_metadata_xml and checks it as the edge's service provider will
// (samlsp.CheckIDPMetadata). Settings with idp_metadata_url have none
// here: the edge fetches that one (see ParseIDPMetadata).
func (s SAML) LocalIDPMetadata() (*saml.EntityDescriptor, error) {
	md, ps := s.localMetadata()
	return md, asError(ps)
}

// ParseIDPMetadata parses an IdP's metadata document (a SAML
// EntityDescriptor, e.g. fetched from idp_metadata_url) and checks it as
// the edge's service provider will.
func ParseIDPMetadata(raw []byte) (*saml.EntityDescriptor, error) {
	md, ps := parseMetadata("idp_metadata_url", "", raw)
	return md, asError(ps)
}

func (s SAML) localMetadata() (*saml.EntityDescriptor, []Problem) {
	switch {
	case s.IDPMetadataFile != "":
		raw, err := os.ReadFile(s.IDPMetadataFile)
		if err != nil {
			return nil, []Problem{fileProblem("idp_metadata_file", "the IdP's metadata", s.IDPMetadataFile, err)}
		}
		return parseMetadata("idp_metadata_file", s.IDPMetadataFile, raw)
	case s.IDPMetadataXML != "":
		return parseMetadata("idp_metadata_xml", "", []byte(s.IDPMetadataXML))
	}
	return nil, nil
}

// parseMetadata parses raw as the IdP's metadata given in field (from
// file, when it is one) and lists every reason the edge would refuse it.
func parseMetadata(field, file string, raw []byte) (*saml.EntityDescriptor, []Problem) {
	where := ""
	if file != "" {
		where = fmt.Sprintf("%q: ", file)
	}
	var md saml.EntityDescriptor
	if err := xml.Unmarshal(raw, &md); err != nil {
		return nil, []Problem{{Field: field, Msg: fmt.Sprintf("%snot SAML metadata (an EntityDescriptor): %v; give the metadata document the IdP publishes for this application", where, err)}}
	}
	var out []Problem
	for _, err := range samlsp.CheckIDPMetadata(&md) {
		out = append(out, Problem{Field: field, Msg: where + err.Error()})
	}
	if len(out) > 0 {
		return nil, out
	}
	return &md, nil
}

// SPKeyPair reads sp_cert_file and sp_key_file and checks them as the
// edge's service provider will (samlsp.CheckKeyPair). Without them it
// returns nil: the edge's default key pair serves the connection.
func (s SAML) SPKeyPair() (*tls.Certificate, error) {
	pair, ps := s.spKeyPair()
	return pair, asError(ps)
}

func (s SAML) spKeyPair() (*tls.Certificate, []Problem) {
	if s.SPKeyFile == "" || s.SPCertFile == "" {
		return nil, nil
	}
	var out []Problem
	certPEM, err := os.ReadFile(s.SPCertFile)
	if err != nil {
		out = append(out, fileProblem("sp_cert_file", "the SP's certificate", s.SPCertFile, err))
	}
	keyPEM, err := os.ReadFile(s.SPKeyFile)
	if err != nil {
		out = append(out, fileProblem("sp_key_file", "the SP's key", s.SPKeyFile, err))
	}
	if len(out) > 0 {
		return nil, out
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err == nil {
		signer, _ := pair.PrivateKey.(crypto.Signer)
		err = samlsp.CheckKeyPair(signer, pair.Leaf)
	}
	if err != nil {
		return nil, []Problem{{Field: "sp_key_file", Msg: fmt.Sprintf("%q with sp_cert_file %q is not a key pair the SP can use: %v; give a PEM RSA (or ECDSA) key and the certificate of its public key",
			s.SPKeyFile, s.SPCertFile, strings.TrimPrefix(err.Error(), "tls: "))}}
	}
	return &pair, nil
}

// FileProblems lists what is wrong with the files the settings name — the
// IdP's metadata file and the SP's key pair — read as sso-edge reads them
// when it loads the connection: at those paths, relative ones from the
// working directory. For settings that CheckSAML accepts.
func (s SAML) FileProblems() []Problem {
	var out []Problem
	if s.IDPMetadataFile != "" && s.IDPMetadataURL == "" && s.IDPMetadataXML == "" {
		_, ps := s.localMetadata()
		out = append(out, ps...)
	}
	_, ps := s.spKeyPair()
	return append(out, ps...)
}

// ClientSecret reads the client secret from client_secret_file, or from
// the environment variable client_secret_env names (through getenv).
// Surrounding spaces and newlines are trimmed; an empty secret is refused.
func (s OIDC) ClientSecret(getenv func(string) string) (string, error) {
	if s.ClientSecretFile != "" {
		secret, p := s.secretFromFile()
		if p != nil {
			return "", *p
		}
		return secret, nil
	}
	v := strings.TrimSpace(getenv(s.ClientSecretEnv))
	if v == "" {
		return "", Problem{Field: "client_secret_env", Msg: fmt.Sprintf("the variable %s is empty or unset", s.ClientSecretEnv)}
	}
	return v, nil
}

func (s OIDC) secretFromFile() (string, *Problem) {
	b, err := os.ReadFile(s.ClientSecretFile)
	if err != nil {
		p := fileProblem("client_secret_file", "the client secret", s.ClientSecretFile, err)
		return "", &p
	}
	secret := strings.TrimSpace(string(b))
	if secret == "" {
		return "", &Problem{Field: "client_secret_file", Msg: fmt.Sprintf("%q is empty; it must hold the client secret the provider issued", s.ClientSecretFile)}
	}
	return secret, nil
}

// PrivateKey reads private_key_file, the PEM key that signs private_key_jwt
// client assertions — PKCS#8 ("PRIVATE KEY"), PKCS#1 ("RSA PRIVATE KEY")
// or SEC 1 ("EC PRIVATE KEY") — and checks it as the edge's relying party
// will (oidcrp.CheckPrivateKey).
func (s OIDC) PrivateKey() (crypto.Signer, error) {
	key, p := s.privateKey()
	if p != nil {
		return nil, *p
	}
	return key, nil
}

func (s OIDC) privateKey() (crypto.Signer, *Problem) {
	const field = "private_key_file"
	path := s.PrivateKeyFile
	bad := func(format string, args ...any) (crypto.Signer, *Problem) {
		return nil, &Problem{Field: field, Msg: fmt.Sprintf("%q: ", path) + fmt.Sprintf(format, args...)}
	}
	b, err := os.ReadFile(path)
	if err != nil {
		p := fileProblem(field, "the private key", path, err)
		return nil, &p
	}
	block, _ := pem.Decode(b)
	if block == nil {
		return bad("no PEM block; give the key in PEM form (-----BEGIN PRIVATE KEY-----)")
	}
	var key any
	switch block.Type {
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(block.Bytes)
	default:
		return bad("PEM block %q is not a private key (PRIVATE KEY, RSA PRIVATE KEY or EC PRIVATE KEY)", block.Type)
	}
	if err != nil {
		return bad("%v", err)
	}
	signer, ok := key.(crypto.Signer)
	if !ok {
		return bad("unsupported key type %T", key)
	}
	if err := oidcrp.CheckPrivateKey(signer); err != nil {
		return bad("%s", strings.TrimPrefix(err.Error(), "oidcrp: "))
	}
	return signer, nil
}

// FileProblems lists what is wrong with the files the settings name — the
// private_key_jwt key or the client secret file — read as sso-edge reads
// them when it loads the connection. A client_secret_env variable is not
// looked at: it is the edge's environment, not this one's.
func (s OIDC) FileProblems() []Problem {
	var p *Problem
	switch {
	case s.TokenEndpointAuth == AuthPrivateKeyJWT && s.PrivateKeyFile != "":
		_, p = s.privateKey()
	case s.TokenEndpointAuth != AuthPrivateKeyJWT && s.ClientSecretFile != "" && s.ClientSecretEnv == "":
		_, p = s.secretFromFile()
	}
	if p == nil {
		return nil
	}
	return []Problem{*p}
}

// fileProblem says that the file at path, holding what, cannot be read.
func fileProblem(field, what, path string, err error) Problem {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		err = pe.Err
	}
	return Problem{Field: field, Msg: fmt.Sprintf("cannot read %s from %q: %v; sso-edge reads it there when it loads the connection", what, path, err)}
}
