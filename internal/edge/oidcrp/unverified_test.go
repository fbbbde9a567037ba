package oidcrp

import (
	"encoding/base64"
	"testing"
)

// UnverifiedClaims reads an ID token's claims as Finish would, merging a
// userinfo response the same way.
func TestUnverifiedClaims(t *testing.T) {
	tok := func(payload string) string {
		return "e30." + base64.RawURLEncoding.EncodeToString([]byte(payload)) + ".c2ln"
	}
	c, err := UnverifiedClaims(tok(`{"sub":"s1","iss":"https://i","email":"a@b.example","email_verified":true,"n":12345678901234567890}`), nil)
	if err != nil || c.Subject != "s1" || c.Issuer != "https://i" || c.Email != "a@b.example" || !c.EmailVerified || c.Raw["n"] == nil {
		t.Fatalf("%+v, %v", c, err)
	}
	c, err = UnverifiedClaims(tok(`{"sub":"s1"}`), []byte(`{"sub":"s1","email":"u@b.example","email_verified":true,"name":"U"}`))
	if err != nil || c.Email != "u@b.example" || !c.EmailVerified || c.Raw["name"] != "U" {
		t.Fatalf("with userinfo: %+v, %v", c, err)
	}
	for name, tc := range map[string]struct {
		token, userinfo string
		reason          Reason
	}{
		"two parts":        {token: "a.b", reason: ReasonMalformed},
		"no sub":           {token: tok(`{"iss":"x"}`), reason: ReasonNoSub},
		"not an object":    {token: tok(`[1]`), reason: ReasonMalformed},
		"userinfo of eve":  {token: tok(`{"sub":"s1"}`), userinfo: `{"sub":"eve"}`, reason: ReasonUserinfoSub},
		"userinfo garbage": {token: tok(`{"sub":"s1"}`), userinfo: `nope`, reason: ReasonUserinfo},
	} {
		if _, err := UnverifiedClaims(tc.token, []byte(tc.userinfo)); ReasonOf(err) != tc.reason {
			t.Errorf("%s: %v, want %s", name, err, tc.reason)
		}
	}
}
