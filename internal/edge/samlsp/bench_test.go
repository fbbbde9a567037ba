package samlsp

import (
	"context"
	"encoding/base64"
	"testing"
)

// The two benchmarks validate the same signed responses: ours (size,
// markup and structure checks, crewjam, then the checks after it) and
// crewjam's bare ParseXMLResponse on the decoded XML. The ratio of their
// ns/op is the guard layer's overhead. Run them together:
//
//	go test -run='^$' -bench=. -benchtime=2s ./internal/edge/samlsp/
var benchResponses = []struct {
	name string
	edit func(*response)
}{
	{"signed_assertion", func(*response) {}},
	// We also verify the assertion's own signature here; crewjam does not.
	{"signed_response_and_assertion", func(r *response) { r.SignResponse = true }},
	// We decrypt a second time (crewjam does not return what it decrypted).
	{"encrypted_signed_assertion", func(r *response) { r.Encrypt = true }},
}

func BenchmarkParseResponse(b *testing.B) {
	for _, bb := range benchResponses {
		b.Run(bb.name, func(b *testing.B) {
			r := validResponse()
			bb.edit(&r)
			form := b64(build(b, r))
			sp := newSP(b)
			ctx := context.Background()
			ids := []string{requestID}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := sp.ParseResponse(ctx, form, ids); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkCrewjamParseXMLResponse(b *testing.B) {
	for _, bb := range benchResponses {
		b.Run(bb.name, func(b *testing.B) {
			r := validResponse()
			bb.edit(&r)
			doc, err := base64.StdEncoding.DecodeString(b64(build(b, r)))
			if err != nil {
				b.Fatal(err)
			}
			sp := bareCrewjam()
			acs := mustURL(spACSURL)
			ids := []string{requestID}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := sp.ParseXMLResponse(doc, ids, acs); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
