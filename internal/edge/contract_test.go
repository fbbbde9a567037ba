package edge_test

import (
	"cmp"
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/crewjam/saml"
)

// A verified identity provider may say more than the login event carries
// (schemas/login.first-seen/v1.json). Found by FuzzOIDCCallback: such a
// login was answered with the outage page ("Sign-in is unavailable", 503)
// and logged as the pipeline failing, because the event the edge built
// for the provisioner was invalid. What can be dropped without giving the
// person more is dropped and the person signs in; what cannot (the
// external id, too many groups) is refused as a failed sign-in. The same
// for a NUL character, which the store cannot hold.

// storedUser is the stored email and given name of the user of external
// id ext, or ok false when there is none.
func storedUser(tb testing.TB, w *world, ext string) (email, given string, ok bool) {
	tb.Helper()
	err := w.store.Pool().QueryRow(context.Background(),
		`SELECT coalesce(u.email, ''), u.given_name FROM users u JOIN identities i ON i.user_id = u.id WHERE i.external_id = $1`, ext).Scan(&email, &given)
	return email, given, err == nil
}

func manyGroups(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("g%d", i)
	}
	return out
}

func TestOIDCClaimsBeyondTheLoginContract(t *testing.T) {
	e := newFuzzEdge(t)
	o := addFuzzOIDCConnection(t, e)
	long := strings.Repeat("x", 1025)
	tokenBody := []byte(`{"access_token":"at-1","token_type":"Bearer","id_token":"@id_token"}`)
	for _, tt := range []struct {
		name      string
		edit      func(m map[string]any)
		signsIn   bool
		page      string // when it does not sign in: default "Sign-in failed"
		wantEmail string
	}{
		{name: "external id longer than the contract", edit: func(m map[string]any) { m["sub"] = long }},
		{name: "more groups than the contract", edit: func(m map[string]any) { m["sub"], m["groups"] = "c-groups", manyGroups(1001) }},
		{name: "given name longer than the contract", edit: func(m map[string]any) { m["sub"], m["given_name"] = "c-name", long },
			signsIn: true, wantEmail: "c-name@acme.example"},
		// The email is dropped; without one the person cannot be matched
		// to an account through acme's other connections, so none is made.
		{name: "internationalised email", edit: func(m map[string]any) { m["sub"] = "c-email"; m["email"] = "dörte@acme.example" },
			page: "Account not linked"},
		// A NUL character (JSON \u0000; XML cannot carry one): PostgreSQL
		// refuses it, and the provisioner retried the login until it gave
		// up while the person waited.
		{name: "external id with a NUL", edit: func(m map[string]any) { m["sub"] = "c-nul\x00sub" }},
		{name: "names and a group with a NUL", edit: func(m map[string]any) {
			m["sub"], m["given_name"], m["family_name"], m["groups"] = "c-nul", "A\x00da", "L\x00", []string{"g\x00", "eng-leads"}
		}, signsIn: true, wantEmail: "c-nul@acme.example"},
		{name: "a group longer than the contract", edit: func(m map[string]any) {
			m["sub"], m["groups"] = "c-group", []string{long, "eng-leads"}
		}, signsIn: true, wantEmail: "c-group@acme.example"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			state, nonce, cookie := startFuzzOIDCLogin(t, e)
			claims := fuzzClaims(t, nonce, func(m map[string]any) {
				tt.edit(m)
				if m["email"] == "dora@acme.example" {
					m["email"] = m["sub"].(string) + "@acme.example"
				}
			})
			_, rec, _, _, _, _ := fuzzOIDCCallback(t, e, o, time.Now(), url.Values{"code": {"c"}, "state": {state}}.Encode(), cookie, claims, 200, tokenBody)
			sub := claimString(t, claims, "sub")
			email, given, stored := storedUser(t, e.w, sub)
			if !tt.signsIn {
				page := cmp.Or(tt.page, "Sign-in failed")
				if rec.Code != http.StatusForbidden || !strings.Contains(rec.Body.String(), page) || stored {
					t.Fatalf("got %d (user stored: %t), want 403 %q and no user\n%s\nlogs:\n%s", rec.Code, stored, page, rec.Body, e.logs)
				}
				return
			}
			if rec.Code != http.StatusSeeOther || !stored {
				t.Fatalf("got %d (user stored: %t), want 303 and a user\n%s\nlogs:\n%s", rec.Code, stored, rec.Body, e.logs)
			}
			if email != tt.wantEmail || given == long {
				t.Errorf("stored email %q, given name of %d bytes; want email %q and no oversized name", email, len(given), tt.wantEmail)
			}
		})
	}
}

func claimString(tb testing.TB, claims []byte, name string) string {
	tb.Helper()
	s := tokenField(claims, name)
	if s == "" {
		tb.Fatalf("no %s in %s", name, claims)
	}
	return s
}

func TestSAMLAttributesBeyondTheLoginContract(t *testing.T) {
	w := newWorld(t, 10, true)
	long := strings.Repeat("x", 1025)
	for _, tt := range []struct {
		name                     string
		nameID, email, givenName string
		signsIn                  bool
		page                     string // when it does not sign in: default "Sign-in failed"
		wantEmail                string
	}{
		{name: "external id longer than the contract", nameID: long, email: "s-long@acme.example"},
		{name: "given name longer than the contract", nameID: "s-name", email: "s-name@acme.example", givenName: long,
			signsIn: true, wantEmail: "s-name@acme.example"},
		// The email is dropped; without one the person cannot be matched
		// to an account through acme's other connections, so none is made.
		{name: "internationalised email", nameID: "s-email", email: "dörte@acme.example", page: "Account not linked"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p := person(tt.nameID, tt.email)
			if tt.givenName != "" {
				p.CustomAttributes[1] = saml.Attribute{Name: "givenName", Values: []saml.AttributeValue{{Type: "xs:string", Value: tt.givenName}}}
			}
			w.idp.signsIn(p)
			resp, _ := login(t, newBrowser(t), w.edgeURL, "/app")
			email, given, stored := storedUser(t, w, tt.nameID)
			if !tt.signsIn {
				page := cmp.Or(tt.page, "Sign-in failed")
				if resp.Status != http.StatusForbidden || !strings.Contains(resp.Body, page) || stored {
					t.Fatalf("got %d (user stored: %t), want 403 %q and no user\n%s", resp.Status, stored, page, resp.Body)
				}
				return
			}
			if resp.Status != http.StatusSeeOther || !stored {
				t.Fatalf("got %d (user stored: %t), want 303 and a user\n%s", resp.Status, stored, resp.Body)
			}
			if email != tt.wantEmail || given == long {
				t.Errorf("stored email %q, given name of %d bytes; want email %q and no oversized name", email, len(given), tt.wantEmail)
			}
		})
	}
}
