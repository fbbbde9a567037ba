package simplesamlphp_test

import (
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"text/template"
	"time"

	"github.com/crewjam/saml"

	"github.com/jitprov/jitprov/internal/testenv"
)

// installHint is what a machine without SimpleSAMLphp needs.
const installHint = "install them with `apt-get install simplesamlphp php-cli php-xml php-mbstring` " +
	"(Debian's packages; `make test` does it through scripts/test-deps.sh), or set JITPROV_PHP and " +
	"JITPROV_SIMPLESAMLPHP_DIR to a php binary and a SimpleSAMLphp 1.19 installation"

// phpExtensions are the PHP extensions SimpleSAMLphp's IdP cannot run
// without (XML signatures and encryption, sessions). Debian's simplesamlphp
// package does not depend on php-xml, which brings dom.
var phpExtensions = []string{"dom", "libxml", "openssl", "session", "SimpleXML"}

// requireSimpleSAMLphp returns the php binary and SimpleSAMLphp's folder,
// and fails the test (never skips it) when either cannot run.
func requireSimpleSAMLphp(t testing.TB) (php, root string) {
	t.Helper()
	php, err := exec.LookPath(cmp.Or(os.Getenv("JITPROV_PHP"), "php"))
	if err != nil {
		t.Fatalf("the SimpleSAMLphp interop tests need php (the CLI, for its built-in web server): %v; %s", err, installHint)
	}
	root = cmp.Or(os.Getenv("JITPROV_SIMPLESAMLPHP_DIR"), "/usr/share/simplesamlphp")
	for _, f := range []string{"www/saml2/idp/SSOService.php", "modules/exampleauth", "vendor/autoload.php"} {
		if _, err := os.Stat(filepath.Join(root, f)); err != nil {
			t.Fatalf("the SimpleSAMLphp interop tests need SimpleSAMLphp in %s: %v; %s", root, err, installHint)
		}
	}
	out, err := exec.Command(php, "-m").Output()
	if err != nil {
		t.Fatalf("the SimpleSAMLphp interop tests cannot run %s -m: %v; %s", php, err, installHint)
	}
	have := map[string]bool{}
	for _, m := range strings.Fields(string(out)) {
		have[strings.ToLower(m)] = true
	}
	var missing []string
	for _, m := range phpExtensions {
		if !have[strings.ToLower(m)] {
			missing = append(missing, m)
		}
	}
	if len(missing) > 0 {
		t.Fatalf("the SimpleSAMLphp interop tests need the PHP extensions %s, which %s lacks; %s",
			strings.Join(missing, ", "), php, installHint)
	}
	return php, root
}

// idpUser is a person SimpleSAMLphp's example-userpass source knows.
type idpUser struct {
	UID        string // also the persistent NameID
	Password   string
	Email      string
	GivenName  string
	FamilyName string
	Groups     []string // eduPersonAffiliation
}

// spRemote is a service provider for SimpleSAMLphp: its SAML metadata, and
// how the IdP is to sign and encrypt for it.
type spRemote struct {
	EntityID string
	Metadata string // its EntityDescriptor, as the SP serves it

	SignResponse     bool // saml20.sign.response
	SignAssertion    bool // saml20.sign.assertion
	EncryptAssertion bool // assertion.encryption
}

// simpleSAMLphp is a SimpleSAMLphp IdP served by `php -S` on loopback, with
// a configuration folder of its own.
type simpleSAMLphp struct {
	// BaseURL is where it answers, e.g. http://127.0.0.1:41234/.
	BaseURL string

	dir       string // its configuration folder
	php, root string // the php binary, SimpleSAMLphp's folder
}

// MetadataURL is the hosted IdP's metadata, and its entity id.
func (s *simpleSAMLphp) MetadataURL() string { return s.BaseURL + "saml2/idp/metadata.php" }

// IdPInitiatedURL starts an IdP-initiated login for the SP entityID.
func (s *simpleSAMLphp) IdPInitiatedURL(entityID, relayState string) string {
	return s.BaseURL + "saml2/idp/SSOService.php?spentityid=" + url.QueryEscape(entityID) + "&RelayState=" + url.QueryEscape(relayState)
}

// startSimpleSAMLphp configures a SimpleSAMLphp IdP in a temporary folder —
// a key pair generated now, the example-userpass source with users, a
// hosted SAML 2.0 IdP, no service providers yet — and serves it with
// `php -S` on a free loopback port until the test ends. It returns once the
// IdP's metadata answers.
func startSimpleSAMLphp(t testing.TB, users []idpUser) *simpleSAMLphp {
	t.Helper()
	php, root := requireSimpleSAMLphp(t)
	dir := t.TempDir()
	for _, sub := range []string{"config", "metadata", "cert", "log", "data", "tmp", "sessions"} {
		if err := os.Mkdir(filepath.Join(dir, sub), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	writeIdPKeyPair(t, filepath.Join(dir, "cert"))
	s := &simpleSAMLphp{dir: dir, php: php, root: root}
	s.render(t, "authsources.php.tmpl", filepath.Join(dir, "config", "authsources.php"), map[string]any{"Users": users})
	s.render(t, "saml20-idp-hosted.php.tmpl", filepath.Join(dir, "metadata", "saml20-idp-hosted.php"), nil)
	writeAtomically(t, filepath.Join(dir, "metadata", "saml20-sp-remote.php"), []byte("<?php\n"))

	// The port is picked now and bound by php a moment later: should
	// another process take it meanwhile, php exits and we try another.
	var lastErr error
	for range 5 {
		port := freePort(t)
		s.BaseURL = fmt.Sprintf("http://127.0.0.1:%d/", port)
		s.render(t, "config.php.tmpl", filepath.Join(dir, "config", "config.php"), map[string]any{
			"BaseURL":       s.BaseURL,
			"CertDir":       filepath.Join(dir, "cert") + "/",
			"LogDir":        filepath.Join(dir, "log") + "/",
			"DataDir":       filepath.Join(dir, "data") + "/",
			"TempDir":       filepath.Join(dir, "tmp"),
			"MetadataDir":   filepath.Join(dir, "metadata") + "/",
			"SessionDir":    filepath.Join(dir, "sessions"),
			"SecretSalt":    randomHex(t, 16),
			"AdminPassword": randomHex(t, 16),
		})
		lastErr = s.serve(t, php, root, port)
		if lastErr == nil {
			return s
		}
		if !errors.Is(lastErr, errPortTaken) {
			break
		}
	}
	t.Fatalf("SimpleSAMLphp did not start: %v", lastErr)
	return nil
}

var errPortTaken = errors.New("the port was taken")

// serve runs php -S on port and waits until the IdP's metadata answers, php
// exits, or a minute passes (a busy machine). The process is stopped when
// the test ends; what it wrote (the built-in server's request log and
// SimpleSAMLphp's own log) is shown if the test failed.
func (s *simpleSAMLphp) serve(t testing.TB, php, root string, port int) error {
	t.Helper()
	out := &testenv.Output{}
	cmd := exec.Command(php, "-S", fmt.Sprintf("127.0.0.1:%d", port), "-t", filepath.Join(root, "www"))
	cmd.Dir = s.dir
	cmd.Env = append(os.Environ(), "SIMPLESAMLPHP_CONFIG_DIR="+filepath.Join(s.dir, "config"))
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s -S: %w; %s", php, err, installHint)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	stop := func() {
		_ = cmd.Process.Kill()
		<-exited
	}

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	client := &http.Client{Timeout: 5 * time.Second}
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	var last string
	for {
		body, status, err := get(ctx, client, s.MetadataURL())
		switch {
		case err != nil:
			last = err.Error()
		case status == http.StatusOK && strings.Contains(body, "IDPSSODescriptor"):
			t.Cleanup(func() {
				stop()
				if t.Failed() {
					t.Logf("SimpleSAMLphp (%s) wrote:\n%s", s.BaseURL, out.String())
				}
			})
			return nil
		default:
			last = fmt.Sprintf("%d %s", status, body)
		}
		select {
		case err := <-exited:
			exited <- err
			if strings.Contains(out.String(), "Address already in use") {
				return fmt.Errorf("%w: %s", errPortTaken, out.String())
			}
			return fmt.Errorf("%s -S exited (%v) before its metadata answered:\n%s", php, err, out.String())
		case <-ctx.Done():
			stop()
			return fmt.Errorf("its metadata at %s did not answer within a minute (last: %s); php wrote:\n%s",
				s.MetadataURL(), last, out.String())
		case <-tick.C:
		}
	}
}

// SetServiceProviders writes the IdP's saml20-sp-remote metadata set,
// which SimpleSAMLphp reads at each request: no restart needed. Each SP's
// metadata is converted by SimpleSAMLphp's own parser (testdata/sp-remote.php),
// as its admin's metadata converter would.
func (s *simpleSAMLphp) SetServiceProviders(t testing.TB, sps []spRemote) {
	t.Helper()
	type input struct {
		Metadata string         `json:"metadata"`
		Options  map[string]any `json:"options"`
	}
	in := []input{}
	for _, sp := range sps {
		in = append(in, input{Metadata: sp.Metadata, Options: map[string]any{
			// The persistent NameID is the uid, so that tests know it.
			"simplesaml.nameidattribute": "uid",
			"signature.algorithm":        "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256",
			"saml20.sign.response":       sp.SignResponse,
			"saml20.sign.assertion":      sp.SignAssertion,
			"assertion.encryption":       sp.EncryptAssertion,
		}})
	}
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	spsFile := filepath.Join(s.dir, "sps.json")
	if err := os.WriteFile(spsFile, b, 0o600); err != nil {
		t.Fatal(err)
	}
	script, err := filepath.Abs(filepath.Join("testdata", "sp-remote.php"))
	if err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(s.php, script, s.root, spsFile)
	cmd.Env = append(os.Environ(), "SIMPLESAMLPHP_CONFIG_DIR="+filepath.Join(s.dir, "config"))
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("SimpleSAMLphp cannot convert the SP metadata: %v\n%s%s", err, stderr.String(), stdout.String())
	}
	writeAtomically(t, filepath.Join(s.dir, "metadata", "saml20-sp-remote.php"), stdout.Bytes())
}

// spRemoteFromMetadata is the SP whose metadata sso-edge serves at
// metadataURL. The metadata must name an entity and an HTTP-POST ACS, and,
// when encrypt, hold a certificate to encrypt for.
func spRemoteFromMetadata(t testing.TB, metadataURL string, encrypt bool) spRemote {
	t.Helper()
	body, status, err := get(context.Background(), http.DefaultClient, metadataURL)
	if err != nil || status != http.StatusOK {
		t.Fatalf("the edge's SP metadata at %s: %d %v %s", metadataURL, status, err, body)
	}
	var md saml.EntityDescriptor
	if err := xml.Unmarshal([]byte(body), &md); err != nil {
		t.Fatalf("the edge's SP metadata at %s: %v:\n%s", metadataURL, err, body)
	}
	if len(md.SPSSODescriptors) != 1 {
		t.Fatalf("the edge's SP metadata at %s has %d SPSSODescriptors, want 1:\n%s", metadataURL, len(md.SPSSODescriptors), body)
	}
	d := md.SPSSODescriptors[0]
	if md.EntityID == "" || !slices.ContainsFunc(d.AssertionConsumerServices, func(e saml.IndexedEndpoint) bool {
		return e.Binding == saml.HTTPPostBinding
	}) {
		t.Fatalf("the edge's SP metadata at %s names no entity id or no HTTP-POST ACS:\n%s", metadataURL, body)
	}
	if encrypt && !slices.ContainsFunc(d.KeyDescriptors, func(k saml.KeyDescriptor) bool {
		return (k.Use == "" || k.Use == "encryption") && len(k.KeyInfo.X509Data.X509Certificates) > 0
	}) {
		t.Fatalf("the edge's SP metadata at %s has no certificate to encrypt assertions for:\n%s", metadataURL, body)
	}
	return spRemote{EntityID: md.EntityID, Metadata: body}
}

// render writes testdata/name, a text/template, executed with data, to
// path.
// Strings go into the PHP files through the template function php, which
// writes a single-quoted PHP literal.
func (s *simpleSAMLphp) render(t testing.TB, name, path string, data any) {
	t.Helper()
	tmpl, err := template.New(name).Funcs(template.FuncMap{"php": phpString}).ParseFiles(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := tmpl.Execute(&buf, data); err != nil {
		t.Fatalf("render %s: %v", name, err)
	}
	writeAtomically(t, path, buf.Bytes())
}

// writeAtomically writes data to path through a rename: SimpleSAMLphp may
// be reading the file meanwhile.
func writeAtomically(t testing.TB, path string, data []byte) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// phpString is s as a single-quoted PHP string literal.
func phpString(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
}

// writeIdPKeyPair generates the IdP's signing key and self-signed
// certificate into dir (idp.key, idp.crt). Never committed: made per run.
func writeIdPKeyPair(t testing.TB, dir string) {
	t.Helper()
	key, cert := newKeyPair(t, "SimpleSAMLphp interop IdP")
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "idp.key"), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "idp.crt"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
}

// newKeyPair generates an RSA key and a self-signed certificate for it,
// valid for a day.
func newKeyPair(t testing.TB, cn string) (*rsa.PrivateKey, *x509.Certificate) {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	serial, err := rand.Int(rand.Reader, big.NewInt(1<<62))
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: serial, Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour)}
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

func randomHex(t testing.TB, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// freePort is a loopback port nobody listened on a moment ago.
func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func get(ctx context.Context, client *http.Client, u string) (body string, status int, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return "", 0, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return "", 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", 0, fmt.Errorf("GET %s: reading the body: %w", u, err)
	}
	return string(b), resp.StatusCode, nil
}
