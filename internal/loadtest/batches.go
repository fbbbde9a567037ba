package loadtest

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// batchMetric is the provisioner's histogram of logins decided per
// transaction (docs/operations.md).
const batchMetric = "jitprov_provisioner_batch_logins"

// batchTotals reads the provisioner's batch histogram from its /metrics:
// transactions, and logins decided in them, since it started.
func batchTotals(ctx context.Context, url string) (transactions, logins float64, err error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, 0, fmt.Errorf("scrape %s: status %d", url, resp.StatusCode)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		return 0, 0, fmt.Errorf("scrape %s: %w", url, err)
	}
	f, ok := families[batchMetric]
	if !ok {
		return 0, 0, nil // nothing decided yet
	}
	for _, m := range f.GetMetric() {
		h := m.GetHistogram()
		transactions += float64(h.GetSampleCount())
		logins += h.GetSampleSum()
	}
	return transactions, logins, nil
}
