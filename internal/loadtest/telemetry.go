package loadtest

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"sync/atomic"
	"time"

	"google.golang.org/protobuf/proto"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
)

// pipeline is the edge and provisioner processes of compare, and what
// they are started with.
type pipeline struct {
	dbURL, natsURL, replicas  string
	edgeAddr, sessionKey      string
	spKey, spCert, oidcSecret string

	edge, provisioner *proc
	// metrics are the URLs of the services' /metrics.
	metrics []string
}

// startPipeline starts the provisioner and the edge with env added to
// their environment, stopping those pl ran before.
func (c *comparer) startPipeline(ctx context.Context, pl *pipeline, env []string) error {
	c.stop(pl.edge)
	c.stop(pl.provisioner)
	healthAddr, err := freeAddr()
	if err != nil {
		return err
	}
	metricsAddr, err := freeAddr()
	if err != nil {
		return err
	}
	pl.provisioner, err = c.start(ctx, ProcProvisioner, "provisioner", []string{"serve"}, append([]string{
		"JITPROV_DATABASE_URL=" + pl.dbURL, "JITPROV_NATS_URL=" + pl.natsURL, pl.replicas, "JITPROV_HEALTH_ADDR=" + healthAddr,
		"JITPROV_WORKERS=" + strconv.Itoa(c.o.Workers), "JITPROV_LOG_LEVEL=warn"}, env...), "http://"+healthAddr+"/readyz")
	if err != nil {
		return err
	}
	edgeURL := "http://" + pl.edgeAddr
	pl.edge, err = c.start(ctx, ProcEdge, "sso-edge", nil, append([]string{"JITPROV_DATABASE_URL=" + pl.dbURL,
		"JITPROV_NATS_URL=" + pl.natsURL, pl.replicas, "JITPROV_EDGE_ADDR=" + pl.edgeAddr, "JITPROV_EDGE_PUBLIC_URL=" + edgeURL,
		"JITPROV_EDGE_METRICS_ADDR=" + metricsAddr, "JITPROV_SESSION_KEYS=" + pl.sessionKey,
		"JITPROV_EDGE_INSECURE_COOKIES=true", "JITPROV_EDGE_RATE_PER_CLIENT=0", "JITPROV_EDGE_RATE_PER_CONNECTION=0",
		"JITPROV_EDGE_SP_KEY_FILE=" + pl.spKey, "JITPROV_EDGE_SP_CERT_FILE=" + pl.spCert, "JITPROV_LOG_LEVEL=warn",
		OIDCSecretEnv + "=" + pl.oidcSecret}, env...), edgeURL+"/readyz")
	if err != nil {
		return err
	}
	pl.metrics = []string{"http://" + healthAddr + "/metrics", "http://" + metricsAddr + "/metrics"}
	c.mu.Lock()
	c.provMetrics = "http://" + healthAddr + "/metrics"
	c.mu.Unlock()
	return nil
}

// Ratio and scenario names of compare -telemetry.
const (
	CmpTelemetryOff        = "saml-first-telemetry-off"
	CmpTelemetryOn         = "saml-first-telemetry-on"
	RatioTelemetryRate     = "telemetry_on_rate_vs_off"
	RatioTelemetryP99      = "telemetry_on_p99_vs_off"
	TargetTelemetryRateMin = 0.9
)

// compareTelemetry runs SAML first logins with telemetry off and on, in
// rounds (off, on, then on, off, …, so that a drift of the machine weighs
// on both alike), restarting the edge and the provisioner for each, and
// sets the ratios of the medians. run runs one scenario of that name.
func (c *comparer) compareTelemetry(ctx context.Context, rep *CompareReport, pl *pipeline, run func(name string, scrape []string) error, failed *[]error) error {
	rounds := max(c.o.TelemetryRounds, 1)
	rep.Settings["telemetry_rounds"] = rounds
	recv, err := startOTLPReceiver()
	if err != nil {
		return err
	}
	defer recv.close()
	on := []string{"OTEL_EXPORTER_OTLP_ENDPOINT=http://" + recv.addr, "OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf",
		"OTEL_TRACES_SAMPLER=always_on", "OTEL_METRIC_EXPORT_INTERVAL=1000"}
	var offNames, onNames []string
	for i := range rounds {
		order := []bool{false, true}
		if i%2 == 1 {
			order = []bool{true, false}
		}
		for _, tel := range order {
			name := fmt.Sprintf("%s-%d", CmpTelemetryOff, i+1)
			var env []string
			if tel {
				name, env = fmt.Sprintf("%s-%d", CmpTelemetryOn, i+1), on
			}
			if err := c.startPipeline(ctx, pl, env); err != nil {
				return err
			}
			var scrape []string
			if tel {
				scrape = pl.metrics
				onNames = append(onNames, name)
			} else {
				offNames = append(offNames, name)
			}
			if err := run(name, scrape); err != nil {
				return err
			}
		}
	}
	c.stop(pl.edge)
	c.stop(pl.provisioner)
	rep.Settings["telemetry_spans_received"] = recv.spans.Load()
	rep.Settings["telemetry_metric_pushes"] = recv.metricPushes.Load()
	var scraped, scrapeFailed int
	for _, n := range onNames {
		if s := rep.Scenario(n); s != nil && s.Scrapes != nil {
			scraped += s.Scrapes.Count
			scrapeFailed += s.Scrapes.Errors
		}
	}
	rep.Settings["telemetry_scrapes"] = scraped
	rep.Settings["telemetry_scrapes_failed"] = scrapeFailed
	median := func(names []string, f func(*CompareScenario) float64) float64 {
		var v []float64
		for _, n := range names {
			if s := rep.Scenario(n); s != nil {
				v = append(v, f(s))
			}
		}
		if len(v) == 0 {
			return 0
		}
		slices.Sort(v)
		if len(v)%2 == 1 {
			return v[len(v)/2]
		}
		return (v[len(v)/2-1] + v[len(v)/2]) / 2
	}
	rate := func(s *CompareScenario) float64 { return s.Rate }
	p99 := func(s *CompareScenario) float64 { return s.P99 }
	if off := median(offNames, rate); off > 0 {
		rep.Ratios[RatioTelemetryRate] = round3(median(onNames, rate) / off)
	}
	if off := median(offNames, p99); off > 0 {
		rep.Ratios[RatioTelemetryP99] = round3(median(onNames, p99) / off)
	}
	r := rep.Ratios[RatioTelemetryRate]
	rep.Targets = append(rep.Targets, TargetCheck{Name: RatioTelemetryRate, Value: r,
		Want: ">= " + strconv.FormatFloat(TargetTelemetryRateMin, 'f', -1, 64), Met: r >= TargetTelemetryRateMin})
	var problems []error
	if recv.spans.Load() == 0 {
		problems = append(problems, fmt.Errorf("telemetry on: the OTLP receiver got no span: the services did not export"))
	}
	if scraped == 0 || scrapeFailed > 0 {
		problems = append(problems, fmt.Errorf("telemetry on: %d scrapes of /metrics, %d failed (%v)",
			scraped, scrapeFailed, pl.metrics))
	}
	*failed = append(*failed, problems...)
	return nil
}

func round3(f float64) float64 { return float64(int(f*1000+0.5)) / 1000 }

// otlpReceiver takes OTLP/HTTP exports as a collector would — it decodes
// every trace export, counting its spans — and keeps nothing.
type otlpReceiver struct {
	addr         string
	srv          *http.Server
	spans        atomic.Int64
	metricPushes atomic.Int64
}

func startOTLPReceiver() (*otlpReceiver, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("OTLP receiver: %w", err)
	}
	r := &otlpReceiver{addr: ln.Addr().String()}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/traces", func(w http.ResponseWriter, req *http.Request) {
		body, err := io.ReadAll(req.Body)
		var msg coltracepb.ExportTraceServiceRequest
		if err == nil {
			err = proto.Unmarshal(body, &msg)
		}
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		for _, rs := range msg.ResourceSpans {
			for _, ss := range rs.ScopeSpans {
				r.spans.Add(int64(len(ss.Spans)))
			}
		}
		w.Header().Set("Content-Type", "application/x-protobuf")
		out, _ := proto.Marshal(&coltracepb.ExportTraceServiceResponse{})
		_, _ = w.Write(out)
	})
	mux.HandleFunc("POST /v1/metrics", func(w http.ResponseWriter, req *http.Request) {
		_, _ = io.Copy(io.Discard, req.Body)
		r.metricPushes.Add(1)
		w.Header().Set("Content-Type", "application/x-protobuf")
	})
	r.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = r.srv.Serve(ln) }()
	return r, nil
}

func (r *otlpReceiver) close() { _ = r.srv.Close() }
