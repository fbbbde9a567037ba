package edge

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"
)

func TestClientAddr(t *testing.T) {
	proxies := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("192.0.2.1/32")}
	for _, tc := range []struct {
		name, remote string
		xff          []string
		trusted      []netip.Prefix
		want         string
	}{
		{"no proxy trusted: the peer", "203.0.113.7:5000", []string{"198.51.100.1"}, nil, "203.0.113.7"},
		{"peer not trusted: its header is not believed", "203.0.113.7:5000", []string{"198.51.100.1"}, proxies, "203.0.113.7"},
		{"trusted proxy: the client it names", "10.1.2.3:5000", []string{"198.51.100.1"}, proxies, "198.51.100.1"},
		{"a client's own header is left of what the proxy appends", "10.1.2.3:5000", []string{"1.2.3.4, 198.51.100.1"}, proxies, "198.51.100.1"},
		{"chained trusted proxies are skipped", "10.1.2.3:5000", []string{"198.51.100.1, 192.0.2.1", "10.9.9.9"}, proxies, "198.51.100.1"},
		{"only proxies: the first, as the outermost saw it", "10.1.2.3:5000", []string{"10.7.7.7, 10.4.4.4"}, proxies, "10.7.7.7"},
		{"an unreadable hop the proxy wrote is kept as it is", "10.1.2.3:5000", []string{"198.51.100.1, unknown"}, proxies, "unknown"},
		{"nothing further left of an unreadable hop is believed", "10.1.2.3:5000", []string{"1.2.3.4, unknown, 10.4.4.4"}, proxies, "10.4.4.4"},
		{"a hop with a port", "10.1.2.3:5000", []string{"198.51.100.1:51234"}, proxies, "198.51.100.1"},
		{"an IPv6 hop in brackets", "10.1.2.3:5000", []string{"[2001:db8::7]"}, proxies, "2001:db8::7"},
		{"an IPv6 hop with a port", "10.1.2.3:5000", []string{"[2001:db8::7]:443"}, proxies, "2001:db8::7"},
		{"no header: the peer", "10.1.2.3:5000", nil, proxies, "10.1.2.3"},
		{"IPv4-mapped client", "10.1.2.3:5000", []string{"::ffff:198.51.100.1"}, proxies, "198.51.100.1"},
		{"IPv6 peer", "[2001:db8::1]:5000", nil, proxies, "2001:db8::1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("POST", "/saml/acme/idp/acs", nil)
			r.RemoteAddr = tc.remote
			for _, v := range tc.xff {
				r.Header.Add("X-Forwarded-For", v)
			}
			if got := clientAddr(r, tc.trusted); got != tc.want {
				t.Errorf("clientAddr = %q, want %q", got, tc.want)
			}
		})
	}
}

// A flood of one kind logs one line an interval, and the next line says
// how many it held back; other kinds log on their own.
func TestSamplerLogsAFloodWithACount(t *testing.T) {
	var buf bytes.Buffer
	s := newSampler(slog.New(slog.NewTextHandler(&buf, nil)), 10*time.Second)
	now := time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC)
	s.now = func() time.Time { return now }
	ctx := context.Background()
	for range 100 {
		s.log(ctx, slog.LevelWarn, "rejected|acme", "SAML response rejected")
	}
	s.log(ctx, slog.LevelWarn, "rejected|initech", "SAML response rejected")
	now = now.Add(10 * time.Second)
	s.log(ctx, slog.LevelWarn, "rejected|acme", "SAML response rejected")

	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 3 {
		t.Fatalf("%d lines, want 3 (acme's first, initech's, acme's next with a count):\n%s", len(lines), buf.String())
	}
	if !strings.Contains(lines[2], "and 99 more like it") || !strings.Contains(lines[2], "suppressed=99") {
		t.Errorf("the line after the interval = %q, want the 99 held back counted", lines[2])
	}
	if strings.Contains(lines[0], "more like it") || strings.Contains(lines[1], "more like it") {
		t.Errorf("the first lines of a kind carry a count:\n%s", buf.String())
	}
}

// More kinds at once than the sampler remembers are sampled together, not
// each logged.
func TestSamplerBoundsItsKinds(t *testing.T) {
	var buf bytes.Buffer
	s := newSampler(slog.New(slog.NewTextHandler(&buf, nil)), 10*time.Second)
	now := time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC)
	s.now = func() time.Time { return now }
	for i := range maxSampledKinds + 500 {
		s.log(context.Background(), slog.LevelWarn, fmt.Sprintf("kind-%d", i), "refused")
	}
	if got := strings.Count(buf.String(), "\n"); got != maxSampledKinds+1 {
		t.Errorf("%d lines for %d kinds at once, want %d: one per remembered kind, one for the rest", got, maxSampledKinds+500, maxSampledKinds+1)
	}
	if len(s.kinds) > maxSampledKinds+1 {
		t.Errorf("the sampler remembers %d kinds, want at most %d", len(s.kinds), maxSampledKinds+1)
	}
}

// A flood that stops is counted too: a flush after the interval logs what
// was held back, once.
func TestSamplerFlushCountsTheEndOfAFlood(t *testing.T) {
	var buf bytes.Buffer
	s := newSampler(slog.New(slog.NewTextHandler(&buf, nil)), 10*time.Second)
	now := time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC)
	s.now = func() time.Time { return now }
	ctx := context.Background()
	for range 60 {
		s.log(ctx, slog.LevelWarn, "per-client", "sign-in requests refused", "client", "203.0.113.66")
	}
	s.flush(ctx) // within the interval: nothing yet
	now = now.Add(10 * time.Second)
	s.flush(ctx)
	s.flush(ctx) // nothing held since
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 || !strings.Contains(lines[1], "59 more like it") || !strings.Contains(lines[1], "suppressed=59") ||
		!strings.Contains(lines[1], "client=203.0.113.66") {
		t.Errorf("lines after the flood and two flushes:\n%s\nwant the first event and one line counting the other 59", buf.String())
	}
}
