package provisioner

import (
	"context"
	"errors"
	"testing"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/jitprov/jitprov/internal/store"
	"github.com/jitprov/jitprov/internal/testenv"
)

// The seat gauges report what the store holds, per organisation, at each
// collection; a store that fails costs one collection's figures, nothing
// else.
func TestSeatGauges(t *testing.T) {
	s, _ := testenv.Store(t)
	ctx := context.Background()
	small, big := baseOrg(), baseOrg()
	small.ID, small.MaxSeats = "small", 1
	big.ID, big.MaxSeats = "big", 50
	if err := s.ApplyOrganizations(ctx, []store.Organization{small, big},
		[]store.Connection{{OrganizationID: "small", ID: "okta", Protocol: "saml"}}); err != nil {
		t.Fatal(err)
	}
	fail := false
	list := func(ctx context.Context) ([]store.Organization, error) {
		if fail {
			return nil, errors.New("test: database down")
		}
		return s.Organizations(ctx)
	}
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	if err := registerSeatGauges(mp.Meter("test"), list, testenv.Logger(t)); err != nil {
		t.Fatal(err)
	}
	d := NewDecider(s, testenv.Logger(t))
	id := login("ext-1", "a@acme.com")
	id.OrganizationID = "small"
	if _, err := d.Decide(ctx, "login-1", id); err != nil {
		t.Fatal(err)
	}

	collect := func() map[string]map[string]int64 {
		var rm metricdata.ResourceMetrics
		if err := reader.Collect(ctx, &rm); err != nil {
			t.Fatal(err)
		}
		out := map[string]map[string]int64{}
		for _, sm := range rm.ScopeMetrics {
			for _, m := range sm.Metrics {
				g, ok := m.Data.(metricdata.Gauge[int64])
				if !ok {
					continue
				}
				for _, p := range g.DataPoints {
					org, _ := p.Attributes.Value("jitprov.org")
					if out[m.Name] == nil {
						out[m.Name] = map[string]int64{}
					}
					out[m.Name][org.AsString()] = p.Value
				}
			}
		}
		return out
	}
	got := collect()
	if got["jitprov.seats.used"]["small"] != 1 || got["jitprov.seats.used"]["big"] != 0 ||
		got["jitprov.seats.max"]["small"] != 1 || got["jitprov.seats.max"]["big"] != 50 {
		t.Errorf("gauges %v, want small 1/1 and big 0/50", got)
	}
	fail = true
	if got := collect(); len(got["jitprov.seats.used"]) != 0 {
		t.Errorf("gauges while the store fails: %v, want none", got)
	}
}
