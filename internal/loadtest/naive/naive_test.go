package naive_test

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/xml"
	"fmt"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/crewjam/saml"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/jitprov/jitprov/internal/loadtest"
	"github.com/jitprov/jitprov/internal/loadtest/naive"
	"github.com/jitprov/jitprov/internal/testenv"
)

type fixture struct {
	srv   *httptest.Server
	pool  *pgxpool.Pool
	idp   *loadtest.IdP
	sp    *loadtest.IdP // the SP's key pair
	state loadtest.State
}

// setup serves the naive handler over real HTTP on a fresh database with
// two load-test organisations, as compare runs it.
func setup(t *testing.T) fixture {
	t.Helper()
	_, dbURL := testenv.Store(t)
	var h http.Handler
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { h.ServeHTTP(w, r) }))
	t.Cleanup(srv.Close)
	ctx := context.Background()
	dir := t.TempDir()
	idp, err := loadtest.NewIdP(time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := loadtest.Setup(ctx, loadtest.SetupConfig{Dir: dir, EdgeURL: srv.URL, Orgs: 2, Prefix: "naive", DatabaseURL: dbURL, IdP: idp}); err != nil {
		t.Fatal(err)
	}
	st, err := loadtest.LoadState(dir)
	if err != nil {
		t.Fatal(err)
	}
	mdXML, err := idp.MetadataXML()
	if err != nil {
		t.Fatal(err)
	}
	var md saml.EntityDescriptor
	if err := xml.Unmarshal([]byte(mdXML), &md); err != nil {
		t.Fatal(err)
	}
	sp, err := loadtest.NewIdP(time.Hour) // a key pair for the SP
	if err != nil {
		t.Fatal(err)
	}
	pool, err := pgxpool.New(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	pub, _ := url.Parse(srv.URL)
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	s, err := naive.New(ctx, naive.Config{PublicURL: *pub, Orgs: st.Orgs, SAMLConnection: st.Connection, SPEntityID: loadtest.SPEntityID,
		IDPMetadata: &md, ClockSkew: loadtest.ClockSkew, SPKey: sp.Key, SPCert: sp.Cert, Pool: pool, CookieKey: key})
	if err != nil {
		t.Fatal(err)
	}
	h = s
	return fixture{srv: srv, pool: pool, idp: idp, sp: sp, state: st}
}

// post sends one response to its ACS as a new browser and returns the
// status and, after a 303, the user /auth/verify names.
func (f fixture) post(t *testing.T, who loadtest.Person, form string) (int, string) {
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	acs := f.srv.URL + "/saml/" + who.Org + "/" + f.state.Connection + "/acs"
	resp, err := c.PostForm(acs, url.Values{"SAMLResponse": {form}, "RelayState": {"/auth/verify"}})
	if err != nil {
		t.Error(err)
		return 0, ""
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther {
		return resp.StatusCode, ""
	}
	v, err := c.Get(f.srv.URL + resp.Header.Get("Location"))
	if err != nil {
		t.Error(err)
		return 0, ""
	}
	v.Body.Close()
	return resp.StatusCode, v.Header.Get("X-Jitprov-User-Id")
}

// Under concurrency every person gets exactly one user and one seat: each
// of 12 people signs in 5 times at once (5 browsers, 5 responses).
func TestNaiveProvisionsOneUserPerPerson(t *testing.T) {
	f := setup(t)
	const people, times = 12, 5
	type login struct {
		who  loadtest.Person
		form string
	}
	var logins []login
	t0 := time.Now()
	for i := range people {
		id := fmt.Sprintf("n-%d", i)
		who := loadtest.Person{Org: f.state.Orgs[i%2], ExternalID: id, Email: id + "@loadtest.example"}
		for range times {
			form, err := f.idp.SignResponse(f.state, who, t0, nil)
			if err != nil {
				t.Fatal(err)
			}
			logins = append(logins, login{who, form})
		}
	}
	users := make([]string, len(logins))
	var wg sync.WaitGroup
	for i, l := range logins {
		wg.Go(func() {
			status, uid := f.post(t, l.who, l.form)
			if status != http.StatusSeeOther || uid == "" {
				t.Errorf("%s: status %d, user %q; want 303 and a session", l.who.ExternalID, status, uid)
			}
			users[i] = uid
		})
	}
	wg.Wait()
	for i := 0; i < len(users); i += times {
		for j := i + 1; j < i+times; j++ {
			if users[j] != users[i] {
				t.Errorf("%s signed in as %s and %s", logins[i].who.ExternalID, users[i], users[j])
			}
		}
	}
	ctx := context.Background()
	var n, idents int
	if err := f.pool.QueryRow(ctx, `SELECT count(*) FROM users WHERE org_id = ANY($1)`, f.state.Orgs).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if err := f.pool.QueryRow(ctx, `SELECT count(*) FROM identities WHERE org_id = ANY($1)`, f.state.Orgs).Scan(&idents); err != nil {
		t.Fatal(err)
	}
	if n != people || idents != people {
		t.Errorf("%d users, %d identities; want %d of each", n, idents, people)
	}
	rows, err := f.pool.Query(ctx, `SELECT o.id, o.seats_used, (SELECT count(*) FROM users u WHERE u.org_id = o.id)
		FROM organizations o WHERE o.id = ANY($1)`, f.state.Orgs)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var org string
		var seats, active int
		if err := rows.Scan(&org, &seats, &active); err != nil {
			t.Fatal(err)
		}
		if seats != active || seats != people/2 {
			t.Errorf("%s: seats_used %d, users %d; want %d", org, seats, active, people/2)
		}
	}
	var created int
	if err := f.pool.QueryRow(ctx, `SELECT count(*) FROM outbox WHERE subject LIKE 'jit.user.created.naive-%'`).Scan(&created); err != nil {
		t.Fatal(err)
	}
	if created != people {
		t.Errorf("%d user.created rows in the outbox, want %d", created, people)
	}
}

// A response changed after signing is refused, and so is a response used
// twice; neither creates anyone.
func TestNaiveRefusesTamperedAndReplayedResponses(t *testing.T) {
	f := setup(t)
	who := loadtest.Person{Org: f.state.Orgs[0], ExternalID: "mallory", Email: "mallory@loadtest.example"}
	form, err := f.idp.SignResponse(f.state, who, time.Now(), nil)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := base64.StdEncoding.DecodeString(form)
	if err != nil {
		t.Fatal(err)
	}
	tampered := strings.ReplaceAll(string(raw), "mallory@loadtest.example", "admin@loadtest.example")
	if tampered == string(raw) {
		t.Fatal("the response does not carry the email")
	}
	if status, _ := f.post(t, who, base64.StdEncoding.EncodeToString([]byte(tampered))); status != http.StatusForbidden {
		t.Errorf("tampered response: status %d, want 403", status)
	}
	var n int
	if err := f.pool.QueryRow(context.Background(), `SELECT count(*) FROM users WHERE org_id = ANY($1)`, f.state.Orgs).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Errorf("%d users after a tampered response, want 0", n)
	}
	if status, uid := f.post(t, who, form); status != http.StatusSeeOther || uid == "" {
		t.Fatalf("the genuine response: status %d, user %q", status, uid)
	}
	if status, _ := f.post(t, who, form); status != http.StatusForbidden {
		t.Errorf("the same response again: status %d, want 403", status)
	}
}

// An assertion encrypted to the SP (as compare -encrypt sends them) is
// decrypted and signs the person in; encrypted to another key, refused.
func TestNaiveDecryptsEncryptedAssertions(t *testing.T) {
	f := setup(t)
	who := loadtest.Person{Org: f.state.Orgs[1], ExternalID: "enc", Email: "enc@loadtest.example"}
	form, err := f.idp.SignResponse(f.state, who, time.Now(), f.sp.Cert)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := base64.StdEncoding.DecodeString(form)
	if !strings.Contains(string(raw), "EncryptedAssertion") || strings.Contains(string(raw), "enc@loadtest.example") {
		t.Fatal("the assertion is not encrypted")
	}
	if status, uid := f.post(t, who, form); status != http.StatusSeeOther || uid == "" {
		t.Errorf("encrypted to the SP: status %d, user %q; want 303 and a session", status, uid)
	}
	other, err := loadtest.NewIdP(time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	who.ExternalID, who.Email = "enc2", "enc2@loadtest.example"
	form, err = f.idp.SignResponse(f.state, who, time.Now(), other.Cert)
	if err != nil {
		t.Fatal(err)
	}
	if status, _ := f.post(t, who, form); status != http.StatusForbidden {
		t.Errorf("encrypted to another key: status %d, want 403", status)
	}
}
