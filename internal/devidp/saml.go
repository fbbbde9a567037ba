package devidp

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/crewjam/saml"
	dsig "github.com/russellhaering/goxmldsig"
)

// The SAML attributes of an assertion (NameFormat basic, one value each
// but AttrGroups). The NameID is Person.ID, format persistent.
const (
	AttrEmail       = "email"
	AttrGivenName   = "given_name"
	AttrFamilyName  = "family_name"
	AttrDisplayName = "name"
	AttrGroups      = "groups"
)

const (
	// loginTTL is how long a sign-in may wait on the login page (the
	// edge's pending login lasts 10 minutes).
	loginTTL = 10 * time.Minute
	// maxLogins bounds the sign-ins under way, per protocol.
	maxLogins = 1000
	// maxMetadataBytes bounds an SP's metadata document.
	maxMetadataBytes = 1 << 20
	// maxFormBytes bounds the login form.
	maxFormBytes = 64 << 10
	// assertionSkew backdates NotBefore for SPs whose clock is a little
	// ahead.
	assertionSkew = time.Minute
)

// samlIdP is the SAML side: crewjam/saml's IdentityProvider, with the
// login page as its SessionProvider and the configured SPs as its
// ServiceProviderProvider.
type samlIdP struct {
	idp      *saml.IdentityProvider
	sps      *spRegistry
	people   []Person
	pending  *expiring[samlLogin]
	loginURL string
	log      *slog.Logger
}

// samlLogin is an AuthnRequest crewjam validated, waiting on the login
// page for a person to be picked.
type samlLogin struct {
	request    saml.AuthnRequest
	relayState string
	sp         *saml.EntityDescriptor
	spsso      saml.SPSSODescriptor
	acs        saml.IndexedEndpoint
	people     []Person
}

func newSAMLIdP(cfg *Config, k *keys, people []Person, log *slog.Logger) (*samlIdP, error) {
	sps, err := newSPRegistry(cfg.SAMLServiceProviders, cfg.HTTPClient, cfg.SPMetadataTTL)
	if err != nil {
		return nil, err
	}
	s := &samlIdP{
		sps:      sps,
		people:   people,
		pending:  newExpiring[samlLogin](loginTTL, maxLogins, time.Now),
		loginURL: cfg.BaseURL + "/saml/login",
		log:      log,
	}
	metadataURL, err := url.Parse(cfg.BaseURL + "/saml/metadata")
	if err != nil {
		return nil, err
	}
	ssoURL, err := url.Parse(cfg.BaseURL + "/saml/sso")
	if err != nil {
		return nil, err
	}
	s.idp = &saml.IdentityProvider{
		Key:                     k.saml,
		Certificate:             k.samlCert,
		Logger:                  crewjamLogger{log},
		MetadataURL:             *metadataURL,
		SSOURL:                  *ssoURL,
		ServiceProviderProvider: s,
		SessionProvider:         s,
		AssertionMaker:          assertionMaker{},
		// crewjam signs with RSA-SHA1 unless told otherwise; the edge
		// refuses SHA-1.
		SignatureMethod: dsig.RSASHA256SignatureMethod,
	}
	return s, nil
}

// metadata is crewjam's IdP metadata, announcing the persistent NameIDs
// it sends (crewjam announces transient ones).
func (s *samlIdP) metadata() *saml.EntityDescriptor {
	md := s.idp.Metadata()
	for i := range md.IDPSSODescriptors {
		md.IDPSSODescriptors[i].NameIDFormats = []saml.NameIDFormat{saml.PersistentNameIDFormat}
	}
	return md
}

func (s *samlIdP) serveMetadata(w http.ResponseWriter, r *http.Request) {
	out, err := marshalMetadata(s.metadata())
	if err != nil {
		s.log.ErrorContext(r.Context(), "dev IdP: render SAML metadata", "err", err)
		http.Error(w, http.StatusText(http.StatusInternalServerError), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/samlmetadata+xml")
	_, _ = w.Write(out)
}

func marshalMetadata(md *saml.EntityDescriptor) ([]byte, error) {
	out, err := xml.MarshalIndent(md, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("SAML metadata: %w", err)
	}
	return append([]byte(xml.Header), out...), nil
}

// GetServiceProvider implements saml.ServiceProviderProvider.
func (s *samlIdP) GetServiceProvider(r *http.Request, entityID string) (*saml.EntityDescriptor, error) {
	md, _, err := s.sps.find(r.Context(), entityID)
	return md, err
}

// serveSSO is the SingleSignOnService: crewjam parses and validates the
// AuthnRequest (known SP, ACS from its metadata, Destination, age), then
// the login page is shown. It replaces crewjam's ServeSSO to tell the
// developer, on the page, why a request is refused.
func (s *samlIdP) serveSSO(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	req, err := saml.NewIdpAuthnRequest(s.idp, r)
	if err == nil {
		err = req.Validate()
	}
	if err != nil {
		s.log.WarnContext(r.Context(), "dev IdP: AuthnRequest refused", "err", err)
		writeMessage(w, r, s.log, http.StatusBadRequest, "Sign-in request refused",
			"The SAML AuthnRequest was refused: "+err.Error()+". The service provider must be one of the dev IdP's SAMLServiceProviders.")
		return
	}
	s.GetSession(w, r, req)
}

// GetSession implements saml.SessionProvider: there are no IdP sessions,
// every AuthnRequest shows the login page, so a person can be picked for
// each sign-in.
func (s *samlIdP) GetSession(w http.ResponseWriter, r *http.Request, req *saml.IdpAuthnRequest) *saml.Session {
	_, org, err := s.sps.find(r.Context(), req.ServiceProviderMetadata.EntityID)
	if err != nil { // crewjam found it a moment ago
		s.log.ErrorContext(r.Context(), "dev IdP: SAML service provider vanished", "sp", req.ServiceProviderMetadata.EntityID, "err", err)
		writeMessage(w, r, s.log, http.StatusInternalServerError, "Sign-in failed", "The service provider's metadata could not be read.")
		return nil
	}
	login := samlLogin{
		request: req.Request, relayState: req.RelayState, sp: req.ServiceProviderMetadata,
		spsso: *req.SPSSODescriptor, acs: *req.ACSEndpoint, people: offered(s.people, org),
	}
	id, err := s.pending.add(login)
	if err != nil {
		writeMessage(w, r, s.log, http.StatusServiceUnavailable, "Sign-in unavailable", err.Error())
		return nil
	}
	writePage(w, r, s.log, http.StatusOK, "login", loginPage{
		Title: "Sign in", For: "The SAML service provider " + req.ServiceProviderMetadata.EntityID,
		Action: s.loginURL, IDField: "request", ID: id, People: login.people,
	}, "")
	return nil
}

// finish signs the picked person in: the assertion, signed (and
// encrypted when the SP's metadata has an encryption key) by crewjam,
// posted to the SP's ACS by the browser.
func (s *samlIdP) finish(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		writeMessage(w, r, s.log, http.StatusBadRequest, "Sign-in failed", "The form could not be read.")
		return
	}
	login, ok := s.pending.take(r.PostForm.Get("request"))
	if !ok {
		writeMessage(w, r, s.log, http.StatusBadRequest, "Sign-in expired",
			"This sign-in has expired or was already used. Start again from the application.")
		return
	}
	p, ok := find(login.people, r.PostForm.Get("person"))
	if !ok {
		writeMessage(w, r, s.log, http.StatusBadRequest, "Unknown person",
			"That person is not offered to this application. Start again from the application.")
		return
	}
	now := saml.TimeNow()
	req := &saml.IdpAuthnRequest{
		IDP: s.idp, HTTPRequest: r, RelayState: login.relayState, Request: login.request,
		ServiceProviderMetadata: login.sp, SPSSODescriptor: &login.spsso, ACSEndpoint: &login.acs, Now: now,
	}
	sessionIndex, err := randomID()
	if err != nil {
		s.fail(w, r, "session index", err)
		return
	}
	if err := s.idp.AssertionMaker.MakeAssertion(req, samlSession(p, now, sessionIndex)); err != nil {
		s.fail(w, r, "make the assertion", err)
		return
	}
	form, err := req.PostBinding()
	if err != nil {
		s.fail(w, r, "sign the response", err)
		return
	}
	nonce, err := randomID()
	if err != nil {
		s.fail(w, r, "nonce", err)
		return
	}
	s.log.InfoContext(r.Context(), "dev IdP: SAML sign-in", "person", p.ID, "email", p.Email, "sp", login.sp.EntityID, "acs", form.URL)
	writePage(w, r, s.log, http.StatusOK, "response", responsePage{
		Title: "Signing you in", For: login.sp.EntityID, Person: p.Name,
		URL: form.URL, SAMLResponse: form.SAMLResponse, RelayState: form.RelayState, Nonce: nonce,
	}, nonce)
}

func (s *samlIdP) fail(w http.ResponseWriter, r *http.Request, what string, err error) {
	s.log.ErrorContext(r.Context(), "dev IdP: SAML sign-in failed", "step", what, "err", err)
	writeMessage(w, r, s.log, http.StatusInternalServerError, "Sign-in failed", "The SAML response could not be made; see the log.")
}

// samlSession is what crewjam puts in the assertion about p: the NameID,
// and our attributes only (the session's other fields would add
// crewjam's eduPerson attributes).
func samlSession(p Person, now time.Time, index string) *saml.Session {
	attr := func(name string, values ...string) saml.Attribute {
		a := saml.Attribute{Name: name, NameFormat: "urn:oasis:names:tc:SAML:2.0:attrname-format:basic"}
		for _, v := range values {
			a.Values = append(a.Values, saml.AttributeValue{Type: "xs:string", Value: v})
		}
		return a
	}
	attrs := []saml.Attribute{
		attr(AttrEmail, p.Email),
		attr(AttrGivenName, p.GivenName),
		attr(AttrFamilyName, p.FamilyName),
		attr(AttrDisplayName, p.Name),
	}
	if len(p.Groups) > 0 {
		attrs = append(attrs, attr(AttrGroups, p.Groups...))
	}
	return &saml.Session{
		ID: index, Index: index, CreateTime: now, ExpireTime: now.Add(8 * time.Hour),
		NameID: p.ID, NameIDFormat: string(saml.PersistentNameIDFormat),
		CustomAttributes: attrs,
	}
}

// assertionMaker is crewjam's, with a validity window counted from when
// the person was picked: crewjam counts it from the AuthnRequest's
// IssueInstant (90 seconds), which a person reading the login page may
// well outlast.
type assertionMaker struct{}

func (assertionMaker) MakeAssertion(req *saml.IdpAuthnRequest, session *saml.Session) error {
	if err := (saml.DefaultAssertionMaker{}).MakeAssertion(req, session); err != nil {
		return err
	}
	req.Assertion.Conditions.NotBefore = req.Now.Add(-assertionSkew)
	req.Assertion.Conditions.NotOnOrAfter = req.Now.Add(saml.MaxIssueDelay)
	return nil
}

// crewjamLogger sends crewjam's log lines to slog.
type crewjamLogger struct{ log *slog.Logger }

func (l crewjamLogger) Printf(format string, v ...any) {
	l.log.Warn("dev IdP: crewjam/saml", "detail", fmt.Sprintf(format, v...))
}
func (l crewjamLogger) Print(v ...any) {
	l.log.Warn("dev IdP: crewjam/saml", "detail", fmt.Sprint(v...))
}
func (l crewjamLogger) Println(v ...any) { l.Print(v...) }

// Fatal* and Panic* are never called by crewjam's IdP; a library must not
// exit the process, so all of them panic.
func (l crewjamLogger) Fatal(v ...any)                 { l.Panic(v...) }
func (l crewjamLogger) Fatalf(format string, v ...any) { l.Panicf(format, v...) }
func (l crewjamLogger) Fatalln(v ...any)               { l.Panic(v...) }
func (l crewjamLogger) Panic(v ...any)                 { panic(fmt.Sprint(v...)) }
func (l crewjamLogger) Panicf(format string, v ...any) { panic(fmt.Sprintf(format, v...)) }
func (l crewjamLogger) Panicln(v ...any)               { l.Panic(v...) }

// ServiceProvider is one SAML service provider the IdP serves, known by
// its metadata. Give MetadataXML, or MetadataURL to fetch it lazily: on
// the first AuthnRequest, so the SP may start after the IdP, and again
// when the copy is older than Config.SPMetadataTTL or an unknown SP asks.
type ServiceProvider struct {
	MetadataURL string
	MetadataXML []byte
	// Organization, when set, offers only the people of that demo
	// organisation (Person.Organization) on this SP's login page.
	Organization string
}

// spRegistry holds the SPs' metadata.
type spRegistry struct {
	sps    []ServiceProvider
	client *http.Client
	ttl    time.Duration

	mu    sync.Mutex
	cache []spEntry // parallel to sps
}

type spEntry struct {
	md      *saml.EntityDescriptor // nil until fetched
	fetched time.Time
}

func newSPRegistry(sps []ServiceProvider, client *http.Client, ttl time.Duration) (*spRegistry, error) {
	reg := &spRegistry{sps: slices.Clone(sps), client: client, ttl: ttl, cache: make([]spEntry, len(sps))}
	for i, sp := range sps {
		switch {
		case (sp.MetadataURL == "") == (len(sp.MetadataXML) == 0):
			return nil, fmt.Errorf("SAML service provider %d: give MetadataURL or MetadataXML, one of them", i)
		case sp.MetadataURL != "":
			u, err := url.Parse(sp.MetadataURL)
			if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				return nil, fmt.Errorf("SAML service provider %d: metadata URL %q is not an absolute http(s) URL", i, sp.MetadataURL)
			}
		default:
			md, err := parseSPMetadata(sp.MetadataXML)
			if err != nil {
				return nil, fmt.Errorf("SAML service provider %d: %w", i, err)
			}
			reg.cache[i] = spEntry{md: md}
		}
	}
	return reg, nil
}

// find returns the metadata of the SP entityID and the organisation whose
// people it is offered, or os.ErrNotExist (which crewjam expects) when no
// configured SP has that entity id.
func (reg *spRegistry) find(ctx context.Context, entityID string) (*saml.EntityDescriptor, string, error) {
	now := time.Now()
	fresh := func(i int) bool {
		return reg.sps[i].MetadataURL == "" || (reg.cache[i].md != nil && now.Sub(reg.cache[i].fetched) < reg.ttl)
	}
	var due []int
	reg.mu.Lock()
	for i, e := range reg.cache {
		if e.md != nil && e.md.EntityID == entityID && fresh(i) {
			reg.mu.Unlock()
			return e.md, reg.sps[i].Organization, nil
		}
		if !fresh(i) {
			due = append(due, i)
		}
	}
	reg.mu.Unlock()

	var errs []error
	for _, i := range due {
		md, err := reg.fetch(ctx, reg.sps[i].MetadataURL)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		reg.mu.Lock()
		reg.cache[i] = spEntry{md: md, fetched: time.Now()}
		reg.mu.Unlock()
	}

	// Again, with what was just fetched, or else a stale copy.
	reg.mu.Lock()
	defer reg.mu.Unlock()
	for i, e := range reg.cache {
		if e.md != nil && e.md.EntityID == entityID {
			return e.md, reg.sps[i].Organization, nil
		}
	}
	if len(errs) > 0 {
		return nil, "", fmt.Errorf("unknown service provider %q, and fetching SP metadata failed: %w", entityID, errors.Join(errs...))
	}
	return nil, "", os.ErrNotExist
}

func (reg *spRegistry) fetch(ctx context.Context, u string) (*saml.EntityDescriptor, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, fmt.Errorf("SP metadata %s: %w", u, err)
	}
	resp, err := reg.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("SP metadata: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("SP metadata %s: %s", u, resp.Status)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxMetadataBytes+1))
	if err != nil {
		return nil, fmt.Errorf("SP metadata %s: %w", u, err)
	}
	if len(b) > maxMetadataBytes {
		return nil, fmt.Errorf("SP metadata %s: larger than %d bytes", u, maxMetadataBytes)
	}
	md, err := parseSPMetadata(b)
	if err != nil {
		return nil, fmt.Errorf("SP metadata %s: %w", u, err)
	}
	return md, nil
}

func parseSPMetadata(b []byte) (*saml.EntityDescriptor, error) {
	var md saml.EntityDescriptor
	if err := xml.Unmarshal(b, &md); err != nil {
		return nil, fmt.Errorf("not SAML metadata (an EntityDescriptor): %w", err)
	}
	if md.EntityID == "" {
		return nil, errors.New("the metadata has no entityID")
	}
	if len(md.SPSSODescriptors) == 0 {
		return nil, fmt.Errorf("the metadata of %q describes no service provider (no SPSSODescriptor)", md.EntityID)
	}
	return &md, nil
}
