package loadtest

import (
	"context"
	"io"
	"net/http"
	"sync"
	"time"
)

// ScrapeStats is what scraping /metrics during a scenario's timed phase
// cost (Options.Scrape): with it, the run measures the overhead of a
// Prometheus that scrapes every service every ScrapeEvery, against the
// same run without.
type ScrapeStats struct {
	URLs   []string `json:"urls"`
	Every  float64  `json:"every_seconds"`
	Count  int      `json:"scrapes"`
	Errors int      `json:"errors"`
	MeanMs float64  `json:"mean_ms"`
	MaxMs  float64  `json:"max_ms"`
	Bytes  int64    `json:"bytes"` // of the last scrape of each URL, added up
}

// DefaultScrapeEvery is how often Options.Scrape's URLs are scraped.
const DefaultScrapeEvery = time.Second

// scraper GETs each URL every interval until stopped, as Prometheus
// would, one URL after the other.
type scraper struct {
	client *http.Client
	urls   []string
	every  time.Duration

	mu    sync.Mutex
	count int
	errs  int
	total time.Duration
	max   time.Duration
	bytes map[string]int64
}

// startScraping scrapes urls every interval until the returned func is
// called; it returns the figures.
func startScraping(ctx context.Context, urls []string, every time.Duration, timeout time.Duration) func() *ScrapeStats {
	s := &scraper{client: &http.Client{Timeout: timeout}, urls: urls, every: every, bytes: map[string]int64{}}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			for _, u := range urls {
				s.scrape(ctx, u)
			}
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	return func() *ScrapeStats {
		cancel()
		<-done
		s.mu.Lock()
		defer s.mu.Unlock()
		st := &ScrapeStats{URLs: urls, Every: every.Seconds(), Count: s.count, Errors: s.errs, MaxMs: ms(s.max)}
		if s.count > 0 {
			st.MeanMs = ms(s.total / time.Duration(s.count))
		}
		for _, b := range s.bytes {
			st.Bytes += b
		}
		return st
	}
}

func (s *scraper) scrape(ctx context.Context, url string) {
	t := time.Now()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	var n int64
	if err == nil {
		var resp *http.Response
		if resp, err = s.client.Do(req); err == nil {
			n, err = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if err == nil && resp.StatusCode != http.StatusOK {
				err = errStatus(resp.StatusCode)
			}
		}
	}
	d := time.Since(t)
	if ctx.Err() != nil {
		return // stopped mid-scrape: not a figure
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.count++
	s.total += d
	s.max = max(s.max, d)
	if err != nil {
		s.errs++
		return
	}
	s.bytes[url] = n
}

type errStatus int

func (e errStatus) Error() string { return http.StatusText(int(e)) }
