package scim_test

import (
	"flag"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/jitprov/jitprov/events"
)

var (
	benchUsers   = flag.Int("scim.users", 10000, "BenchmarkSCIMImport: people imported by POST, and JIT first logins beside them")
	benchPatches = flag.Int("scim.patches", 1000, "BenchmarkSCIMImport: group-membership PATCHes")
	benchMembers = flag.Int("scim.members", 100, "BenchmarkSCIMImport: members each PATCH adds")
	benchClients = flag.Int("scim.clients", 8, "BenchmarkSCIMImport: requests in flight")
)

// run does n jobs with c in flight and returns their latencies and the
// wall time.
func run(n, c int, job func(i int) error) ([]time.Duration, time.Duration, error) {
	lat := make([]time.Duration, n)
	var next atomic.Int64
	var first error
	var once sync.Once
	var wg sync.WaitGroup
	start := time.Now()
	for range c {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				t0 := time.Now()
				if err := job(i); err != nil {
					once.Do(func() { first = err })
					return
				}
				lat[i] = time.Since(t0)
			}
		})
	}
	wg.Wait()
	return lat, time.Since(start), first
}

func p99(lat []time.Duration) time.Duration {
	s := slices.Clone(lat)
	slices.Sort(s)
	return s[min(len(s)-1, len(s)*99/100)]
}

// BenchmarkSCIMImport measures a bulk import through SCIM over HTTP —
// people by POST, then group memberships by PATCH — beside the same number
// of JIT first logins decided by the provisioner on the same database, in
// the same run, and reports the ratio. Run it once:
//
//	go test -run '^$' -bench SCIMImport -benchtime 1x ./internal/scim/
func BenchmarkSCIMImport(b *testing.B) {
	for range b.N {
		b.StopTimer()
		h := newHarness(b, *benchUsers*2+10)
		b.StartTimer()
		n, c := *benchUsers, *benchClients
		ids := make([]string, n)
		lat, wall, err := run(n, c, func(i int) error {
			name := fmt.Sprintf("scim-%d@acme.example", i)
			r := h.scim(b, http.MethodPost, "/Users", userBody(name, name, true))
			if r.status != http.StatusCreated {
				return fmt.Errorf("POST %s: %d %s", name, r.status, r.body)
			}
			ids[i] = r.json(b)["id"].(string)
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
		scimRate := float64(n) / wall.Seconds()
		scimP99 := p99(lat)

		groups := max(1, *benchPatches/10)
		gids := make([]string, groups)
		for g := range groups {
			r := h.scim(b, http.MethodPost, "/Groups", mustJSON(map[string]any{"schemas": []string{"urn:ietf:params:scim:schemas:core:2.0:Group"},
				"displayName": fmt.Sprintf("group-%d", g)}))
			if r.status != http.StatusCreated {
				b.Fatalf("POST group: %d %s", r.status, r.body)
			}
			gids[g] = r.json(b)["id"].(string)
		}
		m := *benchMembers
		plat, pwall, err := run(*benchPatches, c, func(i int) error {
			members := make([]any, 0, m)
			for k := range m {
				// consecutive PATCHes (of different groups, in flight together)
				// add different people, as an import does
				members = append(members, map[string]any{"value": ids[(i*m+k)%n]})
			}
			body := mustJSON(map[string]any{"schemas": []string{"urn:ietf:params:scim:api:messages:2.0:PatchOp"},
				"Operations": []any{map[string]any{"op": "add", "path": "members", "value": members}}})
			r := h.scim(b, http.MethodPatch, "/Groups/"+gids[i%groups], body)
			if r.status != http.StatusOK {
				return fmt.Errorf("PATCH group: %d %.300s", r.status, r.body)
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}

		jlat, jwall, err := run(n, c, func(i int) error {
			name := fmt.Sprintf("jit-%d@acme.example", i)
			res, err := h.dec.Decide(b.Context(), uuid.NewString(), events.Identity{OrganizationID: "acme", ConnectionID: "okta",
				Protocol: events.ProtocolSAML, ExternalID: name, Email: name, EmailVerified: true, AuthenticatedAt: time.Now().UTC()})
			if err == nil && res.Outcome != events.OutcomeCreated {
				err = fmt.Errorf("JIT login %s: %s %s", name, res.Outcome, res.Message)
			}
			return err
		})
		if err != nil {
			b.Fatal(err)
		}
		jitRate := float64(n) / jwall.Seconds()
		b.ReportMetric(scimRate, "scim-users/s")
		b.ReportMetric(float64(scimP99.Microseconds())/1000, "scim-p99-ms")
		b.ReportMetric(jitRate, "jit-logins/s")
		b.ReportMetric(float64(p99(jlat).Microseconds())/1000, "jit-p99-ms")
		b.ReportMetric(scimRate/jitRate, "scim/jit")
		b.ReportMetric(float64(*benchPatches)/pwall.Seconds(), "patches/s")
		b.ReportMetric(float64(*benchPatches*m)/pwall.Seconds(), "members/s")
		b.ReportMetric(float64(p99(plat).Microseconds())/1000, "patch-p99-ms")
		b.Logf("SCIM POST: %d people in %s (%.0f/s, p99 %s); JIT first logins: %d in %s (%.0f/s, p99 %s); ratio %.2f",
			n, wall.Round(time.Millisecond), scimRate, scimP99, n, jwall.Round(time.Millisecond), jitRate, p99(jlat), scimRate/jitRate)
		b.Logf("SCIM PATCH: %d of %d members in %s (%.1f/s, p99 %s)", *benchPatches, m, pwall.Round(time.Millisecond),
			float64(*benchPatches)/pwall.Seconds(), p99(plat))
	}
}
