package loadtest

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// The scraper GETs every URL each round, counts what failed, and reports
// the bytes of a round.
func TestScraping(t *testing.T) {
	const body = "# HELP x\nx 1\n"
	hits := make(chan string, 100)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits <- r.URL.Path
		if r.URL.Path != "/metrics" {
			http.NotFound(w, r)
			return
		}
		_, _ = w.Write([]byte(body))
	}))
	defer srv.Close()
	stop := startScraping(context.Background(), []string{srv.URL + "/metrics", srv.URL + "/missing"}, 10*time.Millisecond, 5*time.Second)
	// One URL after the other: once /metrics is asked a fourth time, each
	// URL's first three scrapes are counted.
	seen := map[string]int{}
	for seen["/metrics"] < 4 {
		select {
		case p := <-hits:
			seen[p]++
		case <-time.After(30 * time.Second):
			t.Fatalf("scraped %v in 30s, want /metrics 4 times", seen)
		}
	}
	st := stop()
	if st.Count < 6 || st.Errors < 3 || st.Count-st.Errors < 3 {
		t.Errorf("scrapes %d, errors %d; want at least 6, of which the /missing ones failed", st.Count, st.Errors)
	}
	if st.Bytes != int64(len(body)) {
		t.Errorf("bytes a round %d, want %d", st.Bytes, len(body))
	}
	if st.MeanMs <= 0 || st.MaxMs < st.MeanMs || st.Every != 0.01 {
		t.Errorf("stats %+v", st)
	}
}
