package telemetry_test

import (
	"encoding/json"
	"os"
	"regexp"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/jitprov/jitprov/internal/testenv"
)

// The files the operators' monitoring is made of, and the guide that
// explains them.
const (
	ruleFile      = "../../deploy/k8s/monitoring/prometheusrule.yaml"
	dashboardFile = "../../deploy/k8s/monitoring/grafana-dashboard.json"
	operations    = "../../docs/operations.md"
)

// metricName finds the metric names in a PromQL expression (and, alas, its
// function names and labels, which are none of jitprov's or the few
// others').
var metricName = regexp.MustCompile(`[a-zA-Z_:][a-zA-Z0-9_:]*`)

// otherMetrics are the metrics not jitprov's own that the rules and the
// dashboard may use: Prometheus's and the Go client's process collector.
var otherMetrics = map[string]bool{"up": true, "process_resident_memory_bytes": true, "process_cpu_seconds_total": true}

// documented reads docs/operations.md's metric table: name → type.
func documented(t *testing.T) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, d := range testenv.DocumentedMetrics(t, operations) {
		out[d.Name] = d.Type
	}
	return out
}

// usedMetrics are the metrics expr names: jitprov_* ones, a histogram's
// _bucket/_sum/_count series counted as the histogram, and otherMetrics.
func usedMetrics(t *testing.T, where, expr string, docs map[string]string) []string {
	t.Helper()
	var out []string
	for _, tok := range metricName.FindAllString(expr, -1) {
		switch {
		case otherMetrics[tok]:
			out = append(out, tok)
		case strings.HasPrefix(tok, "jitprov_org") || strings.HasPrefix(tok, "jitprov_connection"):
			// labels
		case strings.HasPrefix(tok, "jitprov_"):
			name := tok
			for _, suffix := range []string{"_bucket", "_sum", "_count"} {
				if base, ok := strings.CutSuffix(tok, suffix); ok && docs[base] == "histogram" {
					name = base
				}
			}
			if _, ok := docs[name]; !ok {
				t.Errorf("%s uses %s, which docs/operations.md does not list", where, tok)
			}
			out = append(out, name)
		}
	}
	return out
}

type promRule struct {
	APIVersion string `yaml:"apiVersion"`
	Kind       string `yaml:"kind"`
	Metadata   struct {
		Name   string            `yaml:"name"`
		Labels map[string]string `yaml:"labels"`
	} `yaml:"metadata"`
	Spec struct {
		Groups []struct {
			Name  string `yaml:"name"`
			Rules []struct {
				Alert       string            `yaml:"alert"`
				Expr        string            `yaml:"expr"`
				For         string            `yaml:"for"`
				Labels      map[string]string `yaml:"labels"`
				Annotations map[string]string `yaml:"annotations"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	} `yaml:"spec"`
}

// Every alert of the PrometheusRule is explained in docs/operations.md's
// ## Alerts, uses documented metrics only, and says how bad it is; the
// dashboard uses documented metrics only, and shows every one of them.
func TestMonitoringUsesDocumentedMetrics(t *testing.T) {
	docs := documented(t)
	guide, err := os.ReadFile(operations)
	if err != nil {
		t.Fatal(err)
	}
	_, alerts, ok := strings.Cut(string(guide), "\n## Alerts\n")
	if !ok {
		t.Fatal("docs/operations.md has no ## Alerts section")
	}
	if i := strings.Index(alerts, "\n## "); i >= 0 {
		alerts = alerts[:i]
	}

	t.Run("rule", func(t *testing.T) {
		raw, err := os.ReadFile(ruleFile)
		if err != nil {
			t.Fatal(err)
		}
		var r promRule
		dec := yaml.NewDecoder(strings.NewReader(string(raw)))
		dec.KnownFields(true)
		if err := dec.Decode(&r); err != nil {
			t.Fatalf("%s: %v", ruleFile, err)
		}
		if r.APIVersion != "monitoring.coreos.com/v1" || r.Kind != "PrometheusRule" || r.Metadata.Name == "" {
			t.Errorf("%s: %s %s %q, want a monitoring.coreos.com/v1 PrometheusRule with a name", ruleFile, r.APIVersion, r.Kind, r.Metadata.Name)
		}
		n := 0
		for _, g := range r.Spec.Groups {
			for _, rule := range g.Rules {
				n++
				where := ruleFile + ": " + rule.Alert
				if rule.Alert == "" || strings.TrimSpace(rule.Expr) == "" {
					t.Errorf("%s: a rule of group %s lacks its alert name or expression", ruleFile, g.Name)
					continue
				}
				if s := rule.Labels["severity"]; s != "critical" && s != "warning" {
					t.Errorf("%s: severity %q, want critical or warning", where, s)
				}
				for _, a := range []string{"summary", "description", "runbook_url"} {
					if rule.Annotations[a] == "" {
						t.Errorf("%s: no %s annotation", where, a)
					}
				}
				if want := "docs/operations.md#" + strings.ToLower(rule.Alert); rule.Annotations["runbook_url"] != want {
					t.Errorf("%s: runbook_url %q, want %q", where, rule.Annotations["runbook_url"], want)
				}
				if !strings.Contains(alerts, "\n### "+rule.Alert+"\n") {
					t.Errorf("%s: docs/operations.md's ## Alerts has no ### %s explaining it", where, rule.Alert)
				}
				if len(usedMetrics(t, where, rule.Expr, docs)) == 0 {
					t.Errorf("%s: the expression names no metric", where)
				}
			}
		}
		if n == 0 {
			t.Fatalf("%s: no rules", ruleFile)
		}
	})

	t.Run("dashboard", func(t *testing.T) {
		raw, err := os.ReadFile(dashboardFile)
		if err != nil {
			t.Fatal(err)
		}
		var d struct {
			Title  string `json:"title"`
			UID    string `json:"uid"`
			Panels []struct {
				Title   string `json:"title"`
				Type    string `json:"type"`
				Targets []struct {
					Expr string `json:"expr"`
				} `json:"targets"`
			} `json:"panels"`
		}
		if err := json.Unmarshal(raw, &d); err != nil {
			t.Fatalf("%s: %v", dashboardFile, err)
		}
		if d.Title == "" || d.UID == "" {
			t.Errorf("%s: the dashboard needs a title and a uid", dashboardFile)
		}
		shown := map[string]bool{}
		for _, p := range d.Panels {
			if p.Type != "row" && len(p.Targets) == 0 {
				t.Errorf("%s: panel %q has no query", dashboardFile, p.Title)
			}
			for _, q := range p.Targets {
				for _, m := range usedMetrics(t, dashboardFile+": "+p.Title, q.Expr, docs) {
					shown[m] = true
				}
			}
		}
		for name := range docs {
			if !shown[name] {
				t.Errorf("%s shows nothing of %s", dashboardFile, name)
			}
		}
	})
}
