package samlsp

import (
	"context"
	"testing"
	"time"

	"github.com/crewjam/saml"
)

// A connection's clock skew holds both ways, whatever crewjam's own
// bounds were: an IdP clock further off than crewjam's 90s (IssueInstant)
// or 180s (NotBefore) is accepted with a wide enough skew, and one closer
// than those is refused with a narrow one. The SP's clock is the test's
// (Config.Now, fixed); the IdP's is that clock moved by offset, every
// time it writes (IssueInstant, NotBefore, NotOnOrAfter, AuthnInstant)
// following it.
func TestClockSkewBothWays(t *testing.T) {
	t.Parallel()
	now := time.Now().Truncate(time.Second)
	tests := []struct {
		name   string
		skew   time.Duration // 0: the default, 90s
		offset time.Duration // the IdP's clock: negative behind ours, positive ahead
		edit   func(r *response)
		want   Reason // "" accepted
	}{
		{name: "default_skew_idp_60s_behind", offset: -60 * time.Second},
		{name: "default_skew_idp_60s_ahead", offset: 60 * time.Second},
		// Widened beyond crewjam's fixed bounds.
		{name: "skew_5m_idp_150s_behind", skew: 5 * time.Minute, offset: -150 * time.Second},
		{name: "skew_5m_idp_270s_ahead", skew: 5 * time.Minute, offset: 270 * time.Second},
		// Narrowed within them.
		{name: "skew_30s_idp_60s_behind", skew: 30 * time.Second, offset: -60 * time.Second, want: ReasonExpired},
		{name: "skew_30s_idp_60s_ahead", skew: 30 * time.Second, offset: 60 * time.Second, want: ReasonNotYetValid},
		{name: "skew_30s_idp_10s_behind", skew: 30 * time.Second, offset: -10 * time.Second},
		{name: "no_skew_idp_in_time", skew: NoClockSkew},
		{name: "no_skew_idp_5s_ahead", skew: NoClockSkew, offset: 5 * time.Second, want: ReasonNotYetValid},
		// Beyond the widest skew.
		{name: "skew_5m_idp_6m_behind", skew: 5 * time.Minute, offset: -6 * time.Minute, want: ReasonExpired},
		{name: "skew_5m_idp_6m_ahead", skew: 5 * time.Minute, offset: 6 * time.Minute, want: ReasonNotYetValid},
		// The Response's own IssueInstant is held to the same bounds.
		{
			name: "skew_30s_response_issued_60s_ago", skew: 30 * time.Second,
			edit: func(r *response) { r.IssueInstant = ts(now.Add(-60 * time.Second)) },
			want: ReasonExpired,
		},
		{
			name: "skew_30s_response_issued_60s_ahead", skew: 30 * time.Second,
			edit: func(r *response) { r.IssueInstant = ts(now.Add(60 * time.Second)) },
			want: ReasonNotYetValid,
		},
		{
			name: "skew_5m_response_issued_150s_ago", skew: 5 * time.Minute,
			edit: func(r *response) { r.IssueInstant = ts(now.Add(-150 * time.Second)) },
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			sp := newSP(t, func(c *Config) {
				c.ClockSkew = tt.skew
				c.Now = func() time.Time { return now }
			})
			r := validResponseAt(now.Add(tt.offset))
			if tt.edit != nil {
				tt.edit(&r)
			}
			a, err := sp.ParseResponse(context.Background(), b64(build(t, r)), []string{requestID})
			if tt.want == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				skew := tt.skew
				switch skew {
				case 0:
					skew = DefaultClockSkew
				case NoClockSkew:
					skew = 0
				}
				if a.ReplayUntil != a.NotOnOrAfter.Add(skew) {
					t.Errorf("ReplayUntil %s, want NotOnOrAfter %s + the skew %s", a.ReplayUntil, a.NotOnOrAfter, skew)
				}
				return
			}
			if err == nil {
				t.Fatalf("accepted an IdP %s off with a skew of %s", tt.offset, tt.skew)
			}
			assertReject(t, err, tt.want)
		})
	}
}

// crewjam's package-level bounds are relaxed once, to the widest skew a
// connection may configure: were they not, TestClockSkewBothWays's
// widened cases would be refused by crewjam.
func TestCrewjamBoundsRelaxed(t *testing.T) {
	t.Parallel()
	if saml.MaxIssueDelay != MaxClockSkew+DeliveryAllowance || saml.MaxClockSkew != MaxClockSkew {
		t.Errorf("crewjam's bounds: MaxIssueDelay %s, MaxClockSkew %s; want %s and %s",
			saml.MaxIssueDelay, saml.MaxClockSkew, MaxClockSkew+DeliveryAllowance, MaxClockSkew)
	}
}
