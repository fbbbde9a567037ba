package devidp

import (
	"context"
	"fmt"
	"net/http"
	"testing"

	"github.com/jitprov/jitprov/internal/edge/oidcrp"
)

// TestConcurrentSignIns: SAML and OIDC sign-ins at once, on one IdP (run
// with -race).
func TestConcurrentSignIns(t *testing.T) {
	sp := newUnstartedSP(t)
	idp := newTestIdP(t, func(c *Config) {
		c.SAMLServiceProviders = []ServiceProvider{{MetadataURL: sp.metadataURL()}}
		c.OIDCClients = []Client{{ID: testClientID, Secret: testClientSecret, RedirectURIs: []string{testRedirect}}}
	})
	sp.build(idp.IdP)
	rp, err := oidcrp.New(context.Background(), oidcrp.Config{
		Issuer: idp.Issuer(), ClientID: testClientID, ClientSecret: testClientSecret,
		RedirectURL: testRedirect, HTTPClient: &http.Client{}, AllowInsecure: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	people := People()
	for i := range 16 {
		p := people[i%len(people)]
		t.Run(fmt.Sprintf("saml-%d", i), func(t *testing.T) {
			t.Parallel()
			b := newBrowser(t)
			authn, _ := sp.start("")
			f := b.Get(authn).Click("Sign in as " + p.Name).Forms()[0]
			if acs := b.Post(f.Action, f.Fields); acs.Status != http.StatusOK {
				t.Errorf("ACS: %d %s", acs.Status, acs.Body)
			}
		})
		t.Run(fmt.Sprintf("oidc-%d", i), func(t *testing.T) {
			t.Parallel()
			start, err := rp.Begin()
			if err != nil {
				t.Fatal(err)
			}
			q := signIn(t, newBrowser(t, rpHost), start.URL, p.Name)
			c, err := rp.Finish(context.Background(), start.Pending, q)
			if err != nil || c.Subject != p.ID {
				t.Errorf("Finish: %v, subject %v; want %q", err, c, p.ID)
			}
		})
	}
}
