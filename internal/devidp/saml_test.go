package devidp

import (
	"context"
	"encoding/base64"
	"encoding/xml"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/crewjam/saml"

	"github.com/jitprov/jitprov/internal/edge/samlsp"
	"github.com/jitprov/jitprov/internal/testenv"
)

// testSP is a SAML service provider as sso-edge runs one: the edge's
// guard layer (samlsp) over crewjam/saml, serving its metadata and ACS on
// an httptest server.
type testSP struct {
	t        testing.TB
	sp       *samlsp.SP
	srv      *httptest.Server
	base     string
	entityID string

	mu         sync.Mutex
	requestIDs []string
	accepted   []*samlsp.Assertion
	rawForms   []url.Values
}

// newUnstartedSP reserves the SP's address; build it with build once the
// IdP is up.
func newUnstartedSP(t testing.TB) *testSP {
	srv := httptest.NewUnstartedServer(nil)
	base := "http://" + srv.Listener.Addr().String()
	return &testSP{t: t, srv: srv, base: base, entityID: base + "/saml/metadata"}
}

func (s *testSP) metadataURL() string { return s.base + "/saml/metadata" }
func (s *testSP) acsURL() string      { return s.base + "/saml/acs" }

// build makes the SP from the IdP's metadata and starts serving.
func (s *testSP) build(idp *IdP) {
	t := s.t
	t.Helper()
	raw, err := idp.SAMLMetadata()
	if err != nil {
		t.Fatal(err)
	}
	var md saml.EntityDescriptor
	if err := xml.Unmarshal(raw, &md); err != nil {
		t.Fatal(err)
	}
	key, cert := newSPKeyPair(t)
	acs, _ := url.Parse(s.acsURL())
	mdURL, _ := url.Parse(s.metadataURL())
	s.sp, err = samlsp.New(samlsp.Config{
		EntityID: s.entityID, ACSURL: *acs, MetadataURL: *mdURL,
		Key: key, Certificate: cert, IDPMetadata: &md,
	})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /saml/metadata", func(w http.ResponseWriter, _ *http.Request) {
		out, err := xml.Marshal(s.sp.Metadata())
		if err != nil {
			t.Error(err)
		}
		_, _ = w.Write(out)
	})
	mux.HandleFunc("POST /saml/acs", func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseForm(); err != nil {
			t.Error(err)
		}
		s.mu.Lock()
		ids := slices.Clone(s.requestIDs)
		s.rawForms = append(s.rawForms, r.PostForm)
		s.mu.Unlock()
		a, err := s.sp.ParseResponse(r.Context(), r.PostForm.Get("SAMLResponse"), ids)
		if err != nil {
			http.Error(w, fmt.Sprintf("refused: %v", err), http.StatusForbidden)
			return
		}
		s.mu.Lock()
		s.accepted = append(s.accepted, a)
		s.mu.Unlock()
		_, _ = w.Write([]byte("accepted"))
	})
	s.srv.Config.Handler = mux
	s.srv.Start()
	t.Cleanup(s.srv.Close)
}

// start begins an SP-initiated login and returns the IdP URL to visit.
func (s *testSP) start(relayState string) (string, string) {
	s.t.Helper()
	u, id, err := s.sp.AuthnRequestURL(relayState)
	if err != nil {
		s.t.Fatal(err)
	}
	s.mu.Lock()
	s.requestIDs = append(s.requestIDs, id)
	s.mu.Unlock()
	return u.String(), id
}

func (s *testSP) lastAccepted() *samlsp.Assertion {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.accepted) == 0 {
		s.t.Fatal("the SP accepted no assertion")
	}
	return s.accepted[len(s.accepted)-1]
}

func (s *testSP) lastForm() url.Values {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rawForms[len(s.rawForms)-1]
}

// newSAMLPair is an IdP serving one SP, which fetches the SP's metadata
// lazily from its URL (the SP is not serving yet when New runs).
func newSAMLPair(t testing.TB, org string) (*testServer, *testSP) {
	t.Helper()
	sp := newUnstartedSP(t)
	idp := newTestIdP(t, func(c *Config) {
		c.SAMLServiceProviders = []ServiceProvider{{MetadataURL: sp.metadataURL(), Organization: org}}
	})
	sp.build(idp.IdP)
	return idp, sp
}

// TestSAMLLogin runs the SP-initiated flow for each demo person: the
// AuthnRequest, the login page, "Sign in as …", the auto-POST form to the
// ACS, where the edge's SP accepts the assertion.
func TestSAMLLogin(t *testing.T) {
	idp, sp := newSAMLPair(t, "")
	for _, p := range People() {
		t.Run(p.ID, func(t *testing.T) {
			b := newBrowser(t)
			authn, requestID := sp.start("rs-" + p.ID)

			login := b.Get(authn)
			if login.Status != http.StatusOK || !strings.Contains(login.Body, DevLabel) {
				t.Fatalf("login page: status %d, want 200 with the development label:\n%s", login.Status, login.Body)
			}
			resp := login.Click("Sign in as " + p.Name)
			forms := resp.Forms()
			if resp.Status != http.StatusOK || len(forms) != 1 {
				t.Fatalf("response page: status %d, %d forms, want 200 and one form:\n%s", resp.Status, len(forms), resp.Body)
			}
			f := forms[0]
			if f.Action != sp.acsURL() {
				t.Errorf("form action %s, want the ACS %s", f.Action, sp.acsURL())
			}
			if got := f.Fields.Get("RelayState"); got != "rs-"+p.ID {
				t.Errorf("RelayState %q, want %q", got, "rs-"+p.ID)
			}
			if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'nonce-") {
				t.Errorf("response page CSP %q: want a nonce for the auto-submit script", csp)
			}

			acs := b.Post(f.Action, f.Fields)
			if acs.Status != http.StatusOK {
				t.Fatalf("ACS: %d %s", acs.Status, acs.Body)
			}
			a := sp.lastAccepted()
			if a.InResponseTo != requestID || a.Issuer != idp.SAMLMetadataURL() {
				t.Errorf("InResponseTo %q, Issuer %q; want %q, %q", a.InResponseTo, a.Issuer, requestID, idp.SAMLMetadataURL())
			}
			ext, err := samlsp.ExternalID(a, samlsp.ExternalIDRule{})
			if err != nil || ext != p.ID {
				t.Errorf("external id %q (%v), want the persistent NameID %q", ext, err, p.ID)
			}
			want := map[string][]string{
				AttrEmail: {p.Email}, AttrGivenName: {p.GivenName}, AttrFamilyName: {p.FamilyName},
				AttrDisplayName: {p.Name}, AttrGroups: p.Groups,
			}
			for name, vals := range want {
				if got := a.Attributes[name]; !slices.Equal(got, vals) {
					t.Errorf("attribute %s = %q, want %q", name, got, vals)
				}
			}
			if len(a.Attributes) != len(want) {
				t.Errorf("attributes %v, want exactly %v", a.Attributes, want)
			}
			if !a.NotOnOrAfter.After(time.Now()) {
				t.Errorf("assertion already expired at %s", a.NotOnOrAfter)
			}
			// The edge's SP metadata has an encryption key: the assertion
			// travels encrypted.
			raw, _ := base64.StdEncoding.DecodeString(sp.lastForm().Get("SAMLResponse"))
			if !strings.Contains(string(raw), "EncryptedAssertion") {
				t.Error("the assertion was not encrypted for the SP")
			}
		})
	}
}

// TestSAMLMetadataXML: an SP given by its metadata XML instead of a URL.
func TestSAMLMetadataXML(t *testing.T) {
	sp := newUnstartedSP(t)
	srv := httptest.NewUnstartedServer(nil)
	cfg := Config{
		BaseURL: "http://" + srv.Listener.Addr().String() + "/dev-idp",
		DataDir: sharedDataDir(t),
		Logger:  slog.New(slog.DiscardHandler),
	}
	// The SP is built from the IdP's metadata and the IdP from the SP's:
	// a first IdP on the same base URL and data directory has the same
	// metadata.
	probe, err := New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	sp.build(probe)
	out, err := xml.Marshal(sp.sp.Metadata())
	if err != nil {
		t.Fatal(err)
	}
	cfg.SAMLServiceProviders = []ServiceProvider{{MetadataXML: out}}
	idp, err := New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv.Config.Handler = idp.Handler()
	srv.Start()
	t.Cleanup(srv.Close)

	b := newBrowser(t)
	authn, _ := sp.start("")
	resp := b.Get(authn).Click("Sign in as Ada Lovelace")
	f := resp.Forms()[0]
	if acs := b.Post(f.Action, f.Fields); acs.Status != http.StatusOK {
		t.Fatalf("ACS: %d %s", acs.Status, acs.Body)
	}
	if got := sp.lastAccepted().NameID; got != "ada" {
		t.Errorf("NameID %q, want ada", got)
	}
}

// TestSAMLOrganization: an SP for one demo organisation offers only its
// people.
func TestSAMLOrganization(t *testing.T) {
	_, sp := newSAMLPair(t, OrgDemoSmall)
	b := newBrowser(t)
	authn, _ := sp.start("")
	login := b.Get(authn)
	var want []string
	for _, p := range PeopleIn(OrgDemoSmall) {
		want = append(want, "Sign in as "+p.Name)
	}
	if got := login.ButtonLabels(); !slices.Equal(got, want) {
		t.Errorf("buttons %q, want %q", got, want)
	}
	if len(want) < 4 {
		t.Errorf("%d people in %s, want at least 4 (3 seats and one turned away)", len(want), OrgDemoSmall)
	}
}

// TestSAMLRefusals: what the IdP refuses, and the page it shows.
func TestSAMLRefusals(t *testing.T) {
	idp, sp := newSAMLPair(t, OrgDemo)
	tests := []struct {
		name   string
		run    func(b *testenv.Browser) *testenv.Page
		status int
		text   string
	}{
		{"unknown SP", func(b *testenv.Browser) *testenv.Page {
			other := newUnstartedSP(t)
			other.build(idp.IdP)
			authn, _ := other.start("")
			return b.Get(authn)
		}, http.StatusBadRequest, "unknown service provider"},
		{"person of another organisation", func(b *testenv.Browser) *testenv.Page {
			authn, _ := sp.start("")
			f := b.Get(authn).Forms()[0]
			f.Fields.Set("person", "alan")
			return b.Post(f.Action, f.Fields)
		}, http.StatusBadRequest, "not offered"},
		{"login form posted twice", func(b *testenv.Browser) *testenv.Page {
			authn, _ := sp.start("")
			login := b.Get(authn)
			login.Click("Sign in as Ada Lovelace")
			return login.Click("Sign in as Ada Lovelace")
		}, http.StatusBadRequest, "expired or was already used"},
		{"unknown login", func(b *testenv.Browser) *testenv.Page {
			return b.Post(idp.BaseURL()+"/saml/login", url.Values{"request": {"nope"}, "person": {"ada"}})
		}, http.StatusBadRequest, "expired or was already used"},
		{"no AuthnRequest", func(b *testenv.Browser) *testenv.Page {
			return b.Get(idp.BaseURL() + "/saml/sso")
		}, http.StatusBadRequest, "AuthnRequest was refused"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := tt.run(newBrowser(t))
			if p.Status != tt.status || !strings.Contains(p.Body, tt.text) {
				t.Errorf("got %d %q, want %d with %q", p.Status, p.Body, tt.status, tt.text)
			}
		})
	}
}

// TestSAMLMetadata: the IdP's metadata, as the edge reads it.
func TestSAMLMetadata(t *testing.T) {
	idp := newTestIdP(t, nil)
	b := newBrowser(t)
	p := b.Get(idp.SAMLMetadataURL())
	if p.Status != http.StatusOK || p.Header.Get("Content-Type") != "application/samlmetadata+xml" {
		t.Fatalf("GET metadata: %d %s", p.Status, p.Header.Get("Content-Type"))
	}
	var md saml.EntityDescriptor
	if err := xml.Unmarshal([]byte(p.Body), &md); err != nil {
		t.Fatal(err)
	}
	if md.EntityID != idp.SAMLMetadataURL() || len(md.IDPSSODescriptors) != 1 {
		t.Fatalf("entity %q with %d IDPSSODescriptors", md.EntityID, len(md.IDPSSODescriptors))
	}
	d := md.IDPSSODescriptors[0]
	if !slices.Equal(d.NameIDFormats, []saml.NameIDFormat{saml.PersistentNameIDFormat}) {
		t.Errorf("NameID formats %v, want persistent", d.NameIDFormats)
	}
	var redirect string
	for _, s := range d.SingleSignOnServices {
		if s.Binding == saml.HTTPRedirectBinding {
			redirect = s.Location
		}
	}
	if redirect != idp.BaseURL()+"/saml/sso" {
		t.Errorf("HTTP-Redirect SSO %q, want %q", redirect, idp.BaseURL()+"/saml/sso")
	}
	if got := d.KeyDescriptors[0].KeyInfo.X509Data.X509Certificates[0].Data; got != base64.StdEncoding.EncodeToString(idp.SAMLCertificate().Raw) {
		t.Error("the metadata's signing certificate is not SAMLCertificate()")
	}
}

// TestAssertionWindow: the assertion's validity counts from when the
// person was picked, not from the AuthnRequest, which may be minutes
// older when someone reads the login page slowly.
func TestAssertionWindow(t *testing.T) {
	idp := newTestIdP(t, nil)
	now := time.Now()
	req := &saml.IdpAuthnRequest{
		IDP:                     idp.saml.idp,
		HTTPRequest:             httptestRequest(),
		Request:                 saml.AuthnRequest{ID: "id-1", IssueInstant: now.Add(-2 * time.Minute)},
		ServiceProviderMetadata: &saml.EntityDescriptor{EntityID: "http://sp.test/md"},
		SPSSODescriptor:         &saml.SPSSODescriptor{},
		ACSEndpoint:             &saml.IndexedEndpoint{Location: "http://sp.test/acs"},
		Now:                     now,
	}
	if err := (assertionMaker{}).MakeAssertion(req, samlSession(personNamed(t, "ada"), now, "s1")); err != nil {
		t.Fatal(err)
	}
	c := req.Assertion.Conditions
	if c.NotBefore.After(now) || !c.NotOnOrAfter.After(now.Add(time.Minute)) {
		t.Errorf("conditions %s to %s, want a window around %s", c.NotBefore, c.NotOnOrAfter, now)
	}
}
