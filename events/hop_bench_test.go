package events_test

import (
	"context"
	"testing"
	"time"

	"github.com/jitprov/jitprov/events"
)

func benchIdentity() events.Identity {
	return events.Identity{
		OrganizationID: "acme", ConnectionID: "okta", Protocol: events.ProtocolSAML,
		ExternalID: "00u1abcdefghijklmnop", Email: "ada.lovelace@acme.example", EmailVerified: true,
		GivenName: "Ada", FamilyName: "Lovelace", DisplayName: "Ada Lovelace",
		Groups: []string{"engineering", "admins-eu"}, Attributes: map[string][]string{"department": {"R&D"}},
		AuthenticatedAt: time.Date(2026, 12, 7, 6, 0, 0, 0, time.UTC),
	}
}

// BenchmarkLoginHops is the event work of one first login on each side
// of the login's round trip: sso-edge builds and encodes the login and
// decodes the answer; the provisioner decodes the login and builds and
// encodes the answer. "validate-every-hop" is the former design (every
// build and every decode checks the JSON Schema), measured in the same
// run as the current one, where each event is validated once, where it
// enters (see docs/events.md, "Where events are validated"):
//
//	go test -run '^$' -bench BenchmarkLoginHops -benchmem ./events/
func BenchmarkLoginHops(b *testing.B) {
	ctx := context.Background()
	id := benchIdentity()
	res := events.ProvisioningResult{LoginID: "l", Outcome: events.OutcomeCreated, DecidedAt: id.AuthenticatedAt,
		User: &events.UserRef{ID: "0193a1b2-0000-7000-8000-000000000001", Role: "member", Status: "active", Email: id.Email}}
	loginMsg := func(b *testing.B, validate bool) {
		newEv := events.NewUnvalidated
		if validate {
			newEv = events.New
		}
		ev, err := newEv(events.TypeLoginFirstSeen, "/jitprov/sso-edge", "", id)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := events.Encode(ctx, ev, "jit.login.first-seen.acme"); err != nil {
			b.Fatal(err)
		}
	}
	answer, err := events.New(events.TypeProvisioningResult, "/jitprov/provisioner", "l", res)
	if err != nil {
		b.Fatal(err)
	}
	answerMsg, err := events.Encode(ctx, answer, "_INBOX.x")
	if err != nil {
		b.Fatal(err)
	}
	readAnswer := func(b *testing.B, validate bool) {
		decode := events.DecodeTrusted
		if validate {
			decode = events.Decode
		}
		ev, err := decode(answerMsg)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := events.ResultOf(ev); err != nil {
			b.Fatal(err)
		}
	}
	for _, design := range []struct {
		name     string
		validate bool
	}{{"validate-every-hop", true}, {"validate-where-it-enters", false}} {
		b.Run("sso-edge/"+design.name, func(b *testing.B) {
			for b.Loop() {
				loginMsg(b, design.validate)
				readAnswer(b, design.validate)
			}
		})
	}
}
