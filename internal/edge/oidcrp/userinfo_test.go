package oidcrp

import (
	"context"
	"testing"
)

// plainRP is an RP for the client whose ID token carries no email.
func plainRP(t *testing.T, o *testOP, userinfo bool) *RP {
	t.Helper()
	rp, _ := newRP(t, o, func(c *Config) {
		c.ClientID = testPlainClientID
		c.Userinfo = userinfo
	})
	return rp
}

func loginClaims(t *testing.T, o *testOP, rp *RP) (*Claims, error) {
	t.Helper()
	start, err := rp.Begin()
	if err != nil {
		t.Fatal(err)
	}
	return rp.Finish(context.Background(), start.Pending, o.login(t, start.URL))
}

func TestUserinfoMerge(t *testing.T) {
	o := newTestOP(t)

	// Without userinfo: the ID token has no email, so neither do the claims.
	c, err := loginClaims(t, o, plainRP(t, o, false))
	if err != nil {
		t.Fatal(err)
	}
	if c.Email != "" || c.EmailVerified {
		t.Fatalf("email without userinfo: %+v", c)
	}
	if _, ok := c.Raw["email"]; ok {
		t.Fatalf("raw email without userinfo: %v", c.Raw)
	}

	// With userinfo: email, email_verified and the profile claims merged.
	c, err = loginClaims(t, o, plainRP(t, o, true))
	if err != nil {
		t.Fatal(err)
	}
	if c.Subject != "id1" || c.Email != "test-user@example.com" || !c.EmailVerified {
		t.Fatalf("claims with userinfo: %+v", c)
	}
	if v, _ := Lookup(c.Raw, "given_name"); v != "Test" {
		t.Fatalf("given_name %v, raw %v", v, c.Raw)
	}
	if c.Raw["iss"] != o.issuer || c.Raw["aud"] == nil {
		t.Fatalf("ID token claims lost: %v", c.Raw)
	}
}

func TestUserinfoIDTokenWins(t *testing.T) {
	o := newTestOP(t)
	// The client with email in its ID token; the userinfo answer claims
	// another email and adds a claim.
	o.setUserinfoTamper(func(m map[string]any) {
		m["email"] = "attacker@example.com"
		m["email_verified"] = true
		m["extra"] = "from-userinfo"
	})
	rp, _ := newRP(t, o, func(c *Config) { c.Userinfo = true })
	c, err := loginClaims(t, o, rp)
	if err != nil {
		t.Fatal(err)
	}
	if c.Email != "test-user@example.com" || c.Raw["email"] != "test-user@example.com" {
		t.Fatalf("userinfo overrode the ID token's email: %+v", c)
	}
	if c.Raw["extra"] != "from-userinfo" {
		t.Fatalf("userinfo claim not merged: %v", c.Raw)
	}
}

func TestUserinfoSubMismatch(t *testing.T) {
	o := newTestOP(t)
	rp := plainRP(t, o, true)
	for _, tc := range []struct {
		name string
		edit func(map[string]any)
		want Reason
	}{
		{"other sub", func(m map[string]any) { m["sub"] = "admin" }, ReasonUserinfoSub},
		{"empty sub", func(m map[string]any) { m["sub"] = "" }, ReasonUserinfoSub},
		{"no sub", func(m map[string]any) { delete(m, "sub") }, ReasonUserinfoSub},
		// go-oidc's own decoding refuses a non-string sub.
		{"sub number", func(m map[string]any) { m["sub"] = 1 }, ReasonUserinfo},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o.setUserinfoTamper(tc.edit)
			defer o.setUserinfoTamper(nil)
			_, err := loginClaims(t, o, rp)
			wantReason(t, err, tc.want)
		})
	}
	// Untampered, the same RP succeeds.
	if _, err := loginClaims(t, o, rp); err != nil {
		t.Fatal(err)
	}
}

func TestUserinfoFailure(t *testing.T) {
	o := newTestOP(t)
	rp := plainRP(t, o, true)
	o.userinfoDown.Store(true)
	_, err := loginClaims(t, o, rp)
	wantReason(t, err, ReasonUserinfo)
	o.userinfoDown.Store(false)
	if _, err := loginClaims(t, o, rp); err != nil {
		t.Fatal(err)
	}
}
