package devidp

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"log/slog"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"
	"time"

	"github.com/jitprov/jitprov/internal/testenv"
)

// testServer is a development IdP on an httptest server, mounted under
// /dev-idp of the server as dev mode mounts it.
type testServer struct {
	*IdP
	srv *httptest.Server
}

// newTestIdP starts an IdP; edit adjusts its Config (BaseURL is set).
func newTestIdP(t testing.TB, edit func(*Config)) *testServer {
	t.Helper()
	srv := httptest.NewUnstartedServer(nil)
	cfg := Config{
		BaseURL: "http://" + srv.Listener.Addr().String() + "/dev-idp",
		DataDir: sharedDataDir(t),
		Logger:  slog.New(slog.DiscardHandler),
	}
	if edit != nil {
		edit(&cfg)
	}
	idp, err := New(context.Background(), cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	mux := http.NewServeMux()
	mux.Handle(idp.PathPrefix()+"/", idp.Handler())
	srv.Config.Handler = mux
	srv.Start()
	t.Cleanup(srv.Close)
	return &testServer{IdP: idp, srv: srv}
}

// sharedDir: RSA key generation is slow under -race, so the tests that
// do not test key handling share one data directory, made by TestMain
// and only read afterwards.
var sharedDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "devidp-test-")
	if err == nil {
		_, err = loadKeys(dir, time.Now())
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	sharedDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func sharedDataDir(testing.TB) string { return sharedDir }

// newBrowser is a scripted browser that stops before following a
// redirect to the hosts in stopAt (where the test takes over).
func newBrowser(t testing.TB, stopAt ...string) *testenv.Browser {
	t.Helper()
	return testenv.NewBrowser(t, testenv.StopAt(stopAt...), testenv.Timeout(10*time.Second))
}

// newSPKeyPair is the test SP's RSA key and self-signed certificate.
func newSPKeyPair(t testing.TB) (*rsa.PrivateKey, *x509.Certificate) {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "test SP"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
	}
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

func personNamed(t testing.TB, id string) Person {
	t.Helper()
	p, ok := find(People(), id)
	if !ok {
		t.Fatalf("no demo person %q", id)
	}
	return p
}

func httptestRequest() *http.Request {
	return httptest.NewRequest(http.MethodPost, "http://idp.test/dev-idp/saml/login", nil)
}
