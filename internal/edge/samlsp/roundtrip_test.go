package samlsp

import (
	"bytes"
	"context"
	"strings"
	"testing"

	xrv "github.com/mattermost/xml-roundtrip-validator"
)

// roundTripVectors are the test inputs of
// github.com/mattermost/xml-roundtrip-validator v0.1.0 (validator_test.go:
// TestValidXML, TestColonsInLocalNames, TestEmptyNames,
// TestEmptyAttributes, TestDirectives, TestUnparseableXML,
// TestValidateAll), reproduced as fixtures, plus names of the shapes its
// CVEs used that Go's encoding/xml still reads.
var roundTripVectors = []string{
	// TestValidXML
	`<Root></Root>`,
	`<x:Root></x:Root>`,
	`<x:Root xmlns:x="http://example.com/"></x:Root>`,
	`<x:Root xmlns="http://example.com/"></x:Root>`,
	`<Root xmlns="http://example.com/1" xmlns="http://example.com/2"></Root>`,
	`<?xml version="1.0" encoding="EUC-JP"?><Root></Root>`,
	`<Root>text &quot;hello&quot;</Root>`,
	`<Root><![CDATA[text "hello"]]></Root>`,
	`<!-- comment --><Root/>`,
	`<Root xmlns="http://example.com/1" x:attr="y"/>`,
	`<x:Root xmlns="http://example.com/1" x:attr="y" x:attr2="z"/>`,
	`<x:Root xmlns:x="http://example.com/"><Element xmlns:x="http://example.com/"/></x:Root>`,
	`&reference;`,
	// TestColonsInLocalNames
	`<x::Root/>`,
	`<Root><x::Element></::Element></Root>`,
	`<Root><Element ::attr="foo"></Element></Root>`,
	`<Root></x::Element></Root>`,
	// TestEmptyNames
	`<x:>`,
	`</x:>`,
	// TestEmptyAttributes
	`<Root :="value"/>`,
	`<Root x:="value"/>`,
	`<Root xmlns="x" xmlns:="y"></Root>`,
	`<Root xmlns="http://example.com/"/>`,
	// TestDirectives
	"<Root>\n\t\t\t<! <<!-- -->!-->\"--> \" >\n\t\t\t<! \">\" <X/>>\n\t\t</Root>",
	`<Root><! <<!-- -->!-- x --> y></Root>`,
	`<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0 Transitional//EN" "http://www.w3.org/TR/xhtml1/DTD/xhtml1-transitional.dtd">`,
	`<! ">" <X/>>`,
	`<!name <!-- comment --><nesting <more nesting>>>`,
	// TestUnparseableXML, TestValidateAll
	`<Root><!--`,
	`<Root>]]></Root>`,
	`<Root ::attr="x">]]><x::Element/></Root>`,
	"<Root>\r\n    <! <<!-- -->!-- x --> y>\r\n    <Element ::attr=\"foo\"></x::Element>\r\n</Root>",
	// Names with a colon that encoding/xml reads whole as a local name.
	`<:Root/>`,
	`<Root:/>`,
	`<Root :attr="x"/>`,
	`<Root attr:="x"/>`,
	`<Root xmlns:="x"/>`,
	`<Root><:Element/></Root>`,
}

// TestRoundTripGuard: every input the round-trip validator refuses,
// parseXML refuses too (it may refuse more: comments, directives, names
// with a stray colon), and the guard's refusals carry ReasonMalformed.
func TestRoundTripGuard(t *testing.T) {
	t.Parallel()
	for _, v := range roundTripVectors {
		theirs := xrv.Validate(strings.NewReader(v))
		_, ours := parseXML([]byte(v))
		if theirs != nil && ours == nil {
			t.Errorf("%q: the validator refuses (%v), parseXML accepts", v, theirs)
		}
		t.Logf("%q: validator %v; parseXML %v", v, theirs, ours)
	}
	for _, v := range []string{`<:Root/>`, `<Root:/>`, `<Root :attr="x"/>`, `<Root attr:="x"/>`, `<Root xmlns:="x"/>`, `<Root><:Element/></Root>`} {
		_, err := parseXML([]byte(v))
		assertReject(t, err, ReasonMalformed)
	}
}

// TestRoundTripGuardOnResponses puts the validator's shapes into a signed
// response, where they would have to survive goxmldsig's
// canonicalisation and our reading of the verified element.
func TestRoundTripGuardOnResponses(t *testing.T) {
	t.Parallel()
	valid := build(t, validResponse())
	for name, edit := range map[string][2]string{
		"colon_before_local_name": {"saml:NameID", ":NameID"},
		"colon_after_local_name":  {"</saml:Subject>", "<Subject:/></saml:Subject>"},
		"attribute_empty_local":   {"<saml:NameID ", `<saml:NameID saml:="x" `},
		"attribute_leading_colon": {"<saml:NameID ", `<saml:NameID :Format="x" `},
		"xmlns_without_prefix":    {"<saml:NameID ", `<saml:NameID xmlns:="urn:evil" `},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			doc := strings.ReplaceAll(valid, edit[0], edit[1])
			if doc == valid {
				t.Fatalf("%q not found", edit[0])
			}
			_, err := newSP(t).ParseResponse(context.Background(), b64(doc), []string{requestID})
			assertReject(t, err, ReasonMalformed)
			if !strings.Contains(err.Error(), "round trip") {
				t.Errorf("refused, but not by the round-trip guard: %v", err)
			}
		})
	}
}

// FuzzRoundTripGuard is a differential check against the library the
// guard replaces: whatever parseXML accepts, the round-trip validator
// accepts too. `go test -run Fuzz` runs the seeds; `go test -fuzz
// FuzzRoundTripGuard` explores.
func FuzzRoundTripGuard(f *testing.F) {
	for _, v := range roundTripVectors {
		f.Add([]byte(v))
	}
	f.Add([]byte(build(f, validResponse())))
	f.Add([]byte(`<a:b xmlns:a="u" c="&#xD;&#xA;&#x9;"><![CDATA[]]]]><![CDATA[>]]>&#x10FFFF;&#xD800;]]&gt;</a:b>`))
	f.Fuzz(func(t *testing.T, doc []byte) {
		if _, err := parseXML(doc); err != nil {
			return
		}
		if err := xrv.Validate(bytes.NewReader(doc)); err != nil {
			t.Fatalf("parseXML accepts what the round-trip validator refuses: %v", err)
		}
	})
}
