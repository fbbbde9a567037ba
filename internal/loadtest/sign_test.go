package loadtest

import (
	"context"
	"encoding/xml"
	"net/url"
	"testing"
	"time"

	"github.com/crewjam/saml"

	"github.com/jitprov/jitprov/internal/edge/samlsp"
)

// A response made at t0 is one the edge's SAML validation accepts
// throughout Window, as IdP-initiated, for its connection only, and
// refuses once the IssueInstant is older than the skew plus the delivery
// allowance.
func TestSignedResponsesAreValidThroughTheWindow(t *testing.T) {
	idp, err := NewIdP(time.Hour)
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
	spKey, err := NewIdP(time.Hour) // any key pair will do for the SP
	if err != nil {
		t.Fatal(err)
	}
	st := State{EdgeURL: "https://sso.example.com", Orgs: []string{"loadtest-0", "loadtest-1"}, Connection: ConnectionID}
	newSP := func(org string, now time.Time) *samlsp.SP {
		tg := st.target(org)
		acs, _ := url.Parse(tg.acs)
		mdURL, _ := url.Parse("https://sso.example.com/saml/" + org + "/idp/metadata")
		sp, err := samlsp.New(samlsp.Config{EntityID: tg.spEntityID, ACSURL: *acs, MetadataURL: *mdURL,
			Key: spKey.Key, Certificate: spKey.Cert, IDPMetadata: &md, AllowIDPInitiated: true, ClockSkew: ClockSkew,
			Now: func() time.Time { return now }})
		if err != nil {
			t.Fatal(err)
		}
		return sp
	}
	t0 := time.Now()
	who := Person{Org: "loadtest-0", ExternalID: "lt-x-first-0", Email: "lt-x-first-0@loadtest.example"}
	form, err := newSigner(idp, t0, nil).sign(st.target(who.Org), who)
	if err != nil {
		t.Fatal(err)
	}
	for _, at := range []time.Duration{0, time.Second, Window / 2, Window} {
		a, err := newSP(who.Org, t0.Add(at)).ParseResponse(context.Background(), form, nil)
		if err != nil {
			t.Fatalf("at t0+%s: %v", at, err)
		}
		if a.NameID != who.ExternalID || a.Attributes["email"][0] != who.Email || a.InResponseTo != "" {
			t.Errorf("at t0+%s: NameID %q, email %v, InResponseTo %q", at, a.NameID, a.Attributes["email"], a.InResponseTo)
		}
	}
	if _, err := newSP(who.Org, t0.Add(2*ClockSkew+samlsp.DeliveryAllowance+time.Second)).ParseResponse(context.Background(), form, nil); samlsp.ReasonOf(err) != samlsp.ReasonExpired {
		t.Errorf("after the window: %v, want reason %s", err, samlsp.ReasonExpired)
	}
	if _, err := newSP("loadtest-1", t0).ParseResponse(context.Background(), form, nil); err == nil {
		t.Error("another organisation's connection accepted the response")
	}
}
