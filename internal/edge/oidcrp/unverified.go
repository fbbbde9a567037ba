package oidcrp

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
)

// UnverifiedClaims decodes the claims of a compact ID token WITHOUT
// verifying anything: no signature, issuer, audience, nonce or time check.
// It is for showing what a token would map to (an admin's dry run), never
// for signing anyone in: use Finish or Verify for that. userinfo, when not
// empty, is a userinfo response (a JSON object) merged as Finish merges
// one: its claims fill those the ID token lacks, and its sub must be the
// token's.
func UnverifiedClaims(idToken string, userinfo []byte) (*Claims, error) {
	idToken = strings.TrimSpace(idToken)
	if len(idToken) > MaxIDTokenBytes {
		return nil, reject(ReasonMalformed, "ID token larger than %d bytes", MaxIDTokenBytes)
	}
	parts := strings.Split(idToken, ".")
	if len(parts) != 3 {
		return nil, reject(ReasonMalformed, "not a compact JWS (%d parts); an encrypted (JWE) token cannot be read here", len(parts))
	}
	payload, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[1], "="))
	if err != nil {
		return nil, reject(ReasonMalformed, "payload is not base64url")
	}
	raw, err := object(payload)
	if err != nil {
		return nil, reject(ReasonMalformed, "payload is not a JSON object")
	}
	c := &Claims{Raw: raw}
	c.Issuer, _ = raw["iss"].(string)
	c.Subject, _ = raw["sub"].(string)
	if c.Subject == "" {
		return nil, reject(ReasonNoSub, "sub is missing or empty")
	}
	c.Email, _ = raw["email"].(string)
	c.EmailVerified, _ = raw["email_verified"].(bool)
	if len(bytes.TrimSpace(userinfo)) == 0 {
		return c, nil
	}
	extra, err := object(userinfo)
	if err != nil {
		return nil, reject(ReasonUserinfo, "userinfo is not a JSON object")
	}
	if sub, _ := extra["sub"].(string); sub != c.Subject {
		return nil, reject(ReasonUserinfoSub, "userinfo sub %q is not the ID token's", truncate(sub, 128))
	}
	_, hadEmail := c.Raw["email"]
	for k, v := range extra {
		if _, ok := c.Raw[k]; !ok {
			c.Raw[k] = v
		}
	}
	if !hadEmail {
		c.Email, _ = c.Raw["email"].(string)
		c.EmailVerified, _ = c.Raw["email_verified"].(bool)
	}
	return c, nil
}

// object decodes a JSON object, numbers as json.Number.
func object(b []byte) (map[string]any, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		return nil, err
	}
	if m == nil {
		return nil, errors.New("null")
	}
	return m, nil
}
