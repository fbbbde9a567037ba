package testenv

import (
	"bufio"
	"context"
	"net/http"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// Scrape is one read of a /metrics endpoint, by metric family name as
// Prometheus shows it (jitprov_edge_logins_total).
type Scrape map[string]*dto.MetricFamily

// ScrapeMetrics GETs url (a /metrics endpoint) and parses the Prometheus
// text it answers.
func ScrapeMetrics(t testing.TB, url string) Scrape {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		t.Fatalf("scrape %s: %v", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("scrape %s: status %d", url, resp.StatusCode)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("scrape %s: not the Prometheus text format: %v", url, err)
	}
	return fams
}

// Value is the value of the sample of family name whose labels include
// every pair of labels ("name", "value", ...; a value "" matches a label
// that is absent, as Prometheus reads it), summed over the samples that
// match (a counter or gauge; a histogram's count). ok is false when no
// sample matches.
func (s Scrape) Value(name string, labels ...string) (v float64, ok bool) {
	f := s[name]
	if f == nil {
		return 0, false
	}
	for _, m := range f.GetMetric() {
		if !hasLabels(m, labels) {
			continue
		}
		ok = true
		switch {
		case m.Counter != nil:
			v += m.GetCounter().GetValue()
		case m.Gauge != nil:
			v += m.GetGauge().GetValue()
		case m.Histogram != nil:
			v += float64(m.GetHistogram().GetSampleCount())
		case m.Untyped != nil:
			v += m.GetUntyped().GetValue()
		}
	}
	return v, ok
}

func hasLabels(m *dto.Metric, labels []string) bool {
	for i := 0; i+1 < len(labels); i += 2 {
		found := labels[i+1] == "" && !hasLabel(m, labels[i])
		for _, l := range m.GetLabel() {
			if l.GetName() == labels[i] && l.GetValue() == labels[i+1] {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}

func hasLabel(m *dto.Metric, name string) bool {
	for _, l := range m.GetLabel() {
		if l.GetName() == name && l.GetValue() != "" {
			return true
		}
	}
	return false
}

// Labels are the names of the labels the samples of family name carry
// (a histogram's le aside).
func (s Scrape) Labels(name string) map[string]bool {
	out := map[string]bool{}
	for _, m := range s[name].GetMetric() {
		for _, l := range m.GetLabel() {
			out[l.GetName()] = true
		}
	}
	return out
}

// DocumentedMetric is one row of the metric table of docs/operations.md.
type DocumentedMetric struct {
	Name   string   // as Prometheus shows it
	Type   string   // counter, gauge, histogram
	Labels []string // label names
}

// metricRow is a row of the table: | `name` | type | `l1`, `l2` | meaning |
var metricRow = regexp.MustCompile("^\\|\\s*`([a-z_:][a-z0-9_:]*)`\\s*\\|\\s*([a-z]+)\\s*\\|([^|]*)\\|")

// labelName finds the label names of a row's labels cell.
var labelName = regexp.MustCompile("`([a-z_][a-z0-9_]*)`")

// DocumentedMetrics reads the metric table of the ## Metrics section of
// the operations guide at path (docs/operations.md).
func DocumentedMetrics(t testing.TB, path string) []DocumentedMetric {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []DocumentedMetric
	in := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "## ") {
			in = strings.TrimSpace(line) == "## Metrics"
			continue
		}
		if !in {
			continue
		}
		m := metricRow.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		d := DocumentedMetric{Name: m[1], Type: m[2]}
		for _, l := range labelName.FindAllStringSubmatch(m[3], -1) {
			d.Labels = append(d.Labels, l[1])
		}
		out = append(out, d)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(out) == 0 {
		t.Fatalf("%s: no metric table under ## Metrics", path)
	}
	return out
}
