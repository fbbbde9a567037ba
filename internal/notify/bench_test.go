package notify_test

import (
	"slices"
	"testing"
	"time"

	"github.com/jitprov/jitprov/events"
	"github.com/jitprov/jitprov/events/webhooksig"
	"github.com/jitprov/jitprov/internal/notify"
)

// BenchmarkWebhookDelivery measures alerts through the whole notifier —
// ALERTS, the planner, a job on NOTIFY, the sender, a delivery record —
// to a local webhook: deliveries per second and the time from publishing
// an alert to its signed delivery (p50, p99). Alerts are published as
// fast as JetStream takes them, for 20 organisations.
//
//	go test -run '^$' -bench WebhookDelivery -benchtime 2000x ./internal/notify/
func BenchmarkWebhookDelivery(b *testing.B) {
	h := newHarness(b)
	hook := newHook(b, "test-secret", 0)
	orgs := make([]string, 20)
	for i := range orgs {
		orgs[i] = "org" + string(rune('a'+i))
		h.org(orgs[i], settings(func(s *notify.Settings) {
			s.Admins = false
			s.Webhooks = []notify.Webhook{hook.settings("ops", notify.FormatCloudEvents)}
		}))
	}
	h.cfg.Workers, h.cfg.PerOrg = 32, 4
	h.start()
	sent := map[string]time.Time{}
	b.ResetTimer()
	start := time.Now()
	for i := range b.N {
		org := orgs[i%len(orgs)]
		ev := h.publish(events.TypeRoleReviewRequested, org, roleReview(org, "p@example.com"))
		sent[ev.ID()] = time.Now()
	}
	deadline := time.Now().Add(5 * time.Minute)
	for len(hook.delivered()) < b.N && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	elapsed := time.Since(start)
	b.StopTimer()
	reqs := hook.delivered()
	if len(reqs) != b.N {
		b.Fatalf("%d of %d delivered", len(reqs), b.N)
	}
	lat := make([]time.Duration, 0, len(reqs))
	for _, r := range reqs {
		if r.SigErr != nil {
			b.Fatal(r.SigErr)
		}
		id := r.Header.Get(webhooksig.HeaderDelivery)
		evID := id[:len(id)-len("/webhook:ops")]
		lat = append(lat, r.At.Sub(sent[evID]))
	}
	slices.Sort(lat)
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "deliveries/s")
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
}

// BenchmarkWebhookDeliveryIdle measures one alert at a time, each waited
// for: the latency of a lone alert from publishing to its signed delivery
// (p50, p99) through an idle notifier.
//
//	go test -run '^$' -bench WebhookDeliveryIdle -benchtime 200x ./internal/notify/
func BenchmarkWebhookDeliveryIdle(b *testing.B) {
	h := newHarness(b)
	hook := newHook(b, "test-secret", 0)
	h.org("acme", settings(func(s *notify.Settings) {
		s.Admins = false
		s.Webhooks = []notify.Webhook{hook.settings("ops", notify.FormatCloudEvents)}
	}))
	h.start()
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := range b.N {
		start := time.Now()
		h.publish(events.TypeRoleReviewRequested, "acme", roleReview("acme", "p@example.com"))
		for len(hook.delivered()) < i+1 {
			time.Sleep(200 * time.Microsecond)
		}
		lat = append(lat, time.Since(start))
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
}
