package samlsp

import (
	"context"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
)

// FuzzParseResponse feeds decoded Response XML to ParseResponse. No panic
// may escape (xmlenc's are recovered; any other would crash the fuzzer), every
// refusal is a *RejectError with a Reason, and an accepted response has an
// ID and a NameID. The seeds are signed by xmlsec1 when the target starts
// (valid ones stay valid for the 110s IssueInstant window, so a long
// fuzzing run explores mostly the refusal paths after that), and run in
// plain `go test`.
func FuzzParseResponse(f *testing.F) {
	sp := newSP(f)
	valid := build(f, validResponse())
	if _, err := sp.ParseResponse(context.Background(), b64(valid), []string{requestID}); err != nil {
		f.Fatalf("the valid seed is refused: %v", err)
	}
	f.Add([]byte(valid))
	for _, edit := range []func(*response){
		func(r *response) { r.SignResponse = true },
		func(r *response) { r.Encrypt = true },
		func(r *response) { r.Encrypt, r.SignResponse, r.DataAlg = true, true, aes128GCM },
		func(r *response) { r.SignAssertion = false },
		func(r *response) { r.SigAlg, r.DigestAlg = rsaSHA1, sha1URI },
		func(r *response) { r.OmitConditions = true },
		func(r *response) { r.Encrypt, r.OmitConditions = true, true },
		func(r *response) { r.NameIDTag, r.NameIDNSDecl = "evil:NameID", ` xmlns:evil="urn:evil"` },
		func(r *response) {
			r.Attributes = append(r.Attributes, attribute{Name: "groups", Values: []string{"superusers"}})
		},
	} {
		r := validResponse()
		edit(&r)
		f.Add([]byte(build(f, r)))
	}
	signed, evil := evilCopy(f, valid)
	f.Add([]byte(strings.Replace(valid, signed, evil+signed, 1)))
	f.Add([]byte(strings.Replace(valid, ">alice@corp.example<", ">alice@corp.example<!---->.evil<", 1)))
	f.Add([]byte(strings.Replace(valid, "?>", "?><!DOCTYPE r [<!ENTITY e \"x\">]>", 1)))
	enc := build(f, func() response { r := validResponse(); r.Encrypt = true; return r }())
	f.Add([]byte(lastCipherValue(f, enc, base64.StdEncoding.EncodeToString(make([]byte, 21)))))
	f.Add([]byte(`<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol"/>`))
	f.Add([]byte{})

	f.Fuzz(func(t *testing.T, doc []byte) {
		a, err := sp.ParseResponse(context.Background(), base64.StdEncoding.EncodeToString(doc), []string{requestID})
		if err != nil {
			var re *RejectError
			if !errors.As(err, &re) || re.Reason == "" {
				t.Fatalf("refusal without a reason: %T %v", err, err)
			}
			return
		}
		if a.ID == "" || strings.TrimSpace(a.NameID) == "" {
			t.Fatalf("accepted an assertion without ID or NameID: %+v", a)
		}
	})
}
