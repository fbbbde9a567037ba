package devidp

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"html"
	"io"
	"log/slog"
	"math/big"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"
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

// browser is a scripted browser: a cookie jar, and redirects followed
// except to the hosts in stopAt (where the test takes over).
type browser struct {
	t      testing.TB
	client *http.Client
}

func newBrowser(t testing.TB, stopAt ...string) *browser {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &browser{t: t, client: &http.Client{
		Jar:     jar,
		Timeout: 10 * time.Second,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			for _, h := range stopAt {
				if req.URL.Host == h {
					return http.ErrUseLastResponse
				}
			}
			if len(via) > 10 {
				return http.ErrUseLastResponse
			}
			return nil
		},
	}}
}

// page is a response as the browser saw it.
type page struct {
	status int
	url    *url.URL // after redirects
	header http.Header
	body   string
}

func (b *browser) do(req *http.Request) page {
	b.t.Helper()
	resp, err := b.client.Do(req)
	if err != nil {
		b.t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		b.t.Fatal(err)
	}
	return page{status: resp.StatusCode, url: resp.Request.URL, header: resp.Header, body: string(body)}
}

func (b *browser) get(u string) page {
	b.t.Helper()
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		b.t.Fatal(err)
	}
	return b.do(req)
}

func (b *browser) post(u string, form url.Values) page {
	b.t.Helper()
	req, err := http.NewRequest(http.MethodPost, u, strings.NewReader(form.Encode()))
	if err != nil {
		b.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return b.do(req)
}

// form is an HTML form of a page: its action (resolved), hidden inputs
// and submit buttons.
type form struct {
	action  string
	inputs  url.Values
	buttons []button
}

type button struct{ name, value, label string }

var (
	formRE   = regexp.MustCompile(`(?s)<form\b([^>]*)>(.*?)</form>`)
	attrRE   = regexp.MustCompile(`([a-zA-Z-]+)="([^"]*)"`)
	inputRE  = regexp.MustCompile(`<input\b([^>]*)>`)
	buttonRE = regexp.MustCompile(`(?s)<button\b([^>]*)>(.*?)</button>`)
)

func attrs(s string) map[string]string {
	m := map[string]string{}
	for _, a := range attrRE.FindAllStringSubmatch(s, -1) {
		m[a[1]] = html.UnescapeString(a[2])
	}
	return m
}

// forms parses the page's forms (the IdP's own simple markup).
func (p page) forms(t testing.TB) []form {
	t.Helper()
	var out []form
	for _, m := range formRE.FindAllStringSubmatch(p.body, -1) {
		fa := attrs(m[1])
		action, err := p.url.Parse(fa["action"])
		if err != nil {
			t.Fatal(err)
		}
		f := form{action: action.String(), inputs: url.Values{}}
		for _, in := range inputRE.FindAllStringSubmatch(m[2], -1) {
			a := attrs(in[1])
			f.inputs.Add(a["name"], a["value"])
		}
		for _, bt := range buttonRE.FindAllStringSubmatch(m[2], -1) {
			a := attrs(bt[1])
			f.buttons = append(f.buttons, button{name: a["name"], value: a["value"], label: html.UnescapeString(bt[2])})
		}
		out = append(out, f)
	}
	return out
}

// click submits the form whose button reads label, as a browser does.
func (b *browser) click(p page, label string) page {
	b.t.Helper()
	for _, f := range p.forms(b.t) {
		for _, bt := range f.buttons {
			if bt.label == label {
				vals := url.Values{}
				for k, v := range f.inputs {
					vals[k] = v
				}
				if bt.name != "" {
					vals.Set(bt.name, bt.value)
				}
				return b.post(f.action, vals)
			}
		}
	}
	b.t.Fatalf("no button %q on the page %s:\n%s", label, p.url, p.body)
	return page{}
}

// buttonLabels lists the page's button labels.
func (p page) buttonLabels(t testing.TB) []string {
	var out []string
	for _, f := range p.forms(t) {
		for _, b := range f.buttons {
			out = append(out, b.label)
		}
	}
	return out
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
