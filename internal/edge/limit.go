package edge

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/go-chi/httprate"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// Rate limits on the sign-in endpoints, so that a flood of forged or
// replayed responses from one client (or aimed at one connection) is
// refused before it costs signature checks, and health checks and other
// people's sign-ins stay responsive. Counted per minute, in a sliding
// window (go-chi/httprate).
const (
	DefaultRatePerClient     = 600  // requests a minute from one client address
	DefaultRatePerConnection = 6000 // requests a minute to one connection
)

// limits wraps the sign-in handlers in their rate limits.
type limits struct {
	perClient, perConnection *httprate.RateLimiter // nil: no limit
	trusted                  []netip.Prefix
	refused                  *sampler
}

func newLimits(cfg Config, s *Server) *limits {
	l := &limits{trusted: cfg.TrustedProxies, refused: newSampler(s.log, 10*time.Second)}
	refuse := func(what string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			// One kind per limit: what a client writes (its address, the
			// path) never multiplies the log lines of a flood.
			s.m.limited.Add(r.Context(), 1, metric.WithAttributes(attribute.String("limit", what)))
			l.refused.log(r.Context(), slog.LevelWarn, what,
				"sign-in requests refused: over the "+what+" rate limit", "client", l.client(r), "path", r.URL.Path)
			s.render(w, r, pageTooMany)
		}
	}
	if cfg.RatePerClient > 0 {
		l.perClient = httprate.NewRateLimiter(cfg.RatePerClient, time.Minute,
			httprate.WithKeyFuncs(func(r *http.Request) (string, error) { return httprate.CanonicalizeIP(l.client(r)), nil }),
			httprate.WithLimitHandler(refuse("per-client")))
	}
	if cfg.RatePerConnection > 0 {
		l.perConnection = httprate.NewRateLimiter(cfg.RatePerConnection, time.Minute,
			httprate.WithKeyFuncs(func(r *http.Request) (string, error) { return r.PathValue("org") + "/" + r.PathValue("conn"), nil }),
			httprate.WithLimitHandler(refuse("per-connection")))
	}
	return l
}

// client is the address r came from (clientAddr).
func (l *limits) client(r *http.Request) string { return clientAddr(r, l.trusted) }

// byClient limits h per client address.
func (l *limits) byClient(h http.Handler) http.Handler {
	if l.perClient == nil {
		return h
	}
	return l.perClient.Handler(h)
}

// byConnection limits h per client address and per connection (the
// route's {org} and {conn}): for the endpoints that validate an IdP's
// answer, the expensive ones. The count is per edge replica.
func (l *limits) byConnection(h http.Handler) http.Handler {
	if l.perConnection != nil {
		h = l.perConnection.Handler(h)
	}
	return l.byClient(h)
}

// clientAddr is the address of the client that sent r: the peer, or —
// when the peer is a trusted proxy — the last address in X-Forwarded-For
// that is not a trusted proxy (or, when all are, the first: the original
// client as the outermost proxy saw it). Addresses a client writes into
// the header itself sit to the left of what its proxies append, so they
// are never believed. A hop may carry a port or brackets
// ("203.0.113.7:51234", "[2001:db8::7]:443"), as some proxies write it.
func clientAddr(r *http.Request, trusted []netip.Prefix) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	peer, err := netip.ParseAddr(host)
	if err != nil || !isTrusted(peer, trusted) {
		return host
	}
	hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
	client := ""
	for i := len(hops) - 1; i >= 0; i-- {
		hop, ok := parseHop(hops[i])
		if !ok {
			// Written by a trusted proxy yet unreadable: keep it as it is,
			// rather than count everyone behind the proxy as one client.
			if raw := strings.TrimSpace(hops[i]); raw != "" && client == "" {
				return raw
			}
			break
		}
		client = hop.String()
		if !isTrusted(hop, trusted) {
			return client
		}
	}
	if client != "" {
		return client
	}
	return host
}

// parseHop reads one X-Forwarded-For entry: an address, with or without a
// port, IPv6 with or without brackets.
func parseHop(s string) (netip.Addr, bool) {
	s = strings.TrimSpace(s)
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap(), true
	}
	a, err := netip.ParseAddr(strings.TrimSuffix(strings.TrimPrefix(s, "["), "]"))
	return a.Unmap(), err == nil
}

func isTrusted(a netip.Addr, trusted []netip.Prefix) bool {
	a = a.Unmap()
	for _, p := range trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// sampler logs the first event of a kind at once and then, for a flood of
// the same kind, one line per interval with the count of those it held
// back: a flood of forged responses is visible without drowning the log.
type sampler struct {
	logger *slog.Logger
	every  time.Duration
	now    func() time.Time

	mu    sync.Mutex
	kinds map[string]*sampled
	swept time.Time // when expired kinds were last dropped
}

type sampled struct {
	since time.Time // start of the current interval
	held  int       // events not logged since
	// The line last logged, which a flush repeats with the count.
	level slog.Level
	msg   string
	args  []any
}

// maxSampledKinds bounds the kinds a sampler remembers; past it, kinds
// whose interval is over are forgotten (once an interval), and new kinds
// meanwhile are sampled together as one.
const maxSampledKinds = 10_000

func newSampler(log *slog.Logger, every time.Duration) *sampler {
	return &sampler{logger: log, every: every, now: time.Now, kinds: map[string]*sampled{}}
}

// log logs msg with args unless an event of kind was logged less than an
// interval ago; then it counts it, and the next line of that kind says how
// many were held back.
func (s *sampler) log(ctx context.Context, level slog.Level, kind, msg string, args ...any) {
	now := s.now()
	s.mu.Lock()
	k := s.kinds[kind]
	if k == nil && len(s.kinds) >= maxSampledKinds {
		if now.Sub(s.swept) >= s.every {
			for key, v := range s.kinds {
				if now.Sub(v.since) >= s.every && v.held == 0 {
					delete(s.kinds, key)
				}
			}
			s.swept = now
		}
		if len(s.kinds) >= maxSampledKinds {
			kind = "overflow" // too many kinds at once: sampled together
			k = s.kinds[kind]
		}
	}
	switch {
	case k != nil && now.Sub(k.since) < s.every:
		k.held++
		s.mu.Unlock()
		return
	case k == nil:
		k = &sampled{}
		s.kinds[kind] = k
	}
	held := k.held
	k.since, k.held, k.level, k.msg, k.args = now, 0, level, msg, args
	s.mu.Unlock()
	if held > 0 {
		msg = fmt.Sprintf("%s (and %d more like it since the last such line, not logged)", msg, held)
		args = append(args, "suppressed", held)
	}
	s.logger.Log(ctx, level, msg, args...)
}

// flush logs, for every kind whose interval is over with events held
// back, one line with their count, so that the end of a flood is counted
// too. The edge calls it every interval.
func (s *sampler) flush(ctx context.Context) {
	type line struct {
		level slog.Level
		msg   string
		args  []any
	}
	now := s.now()
	var out []line
	s.mu.Lock()
	for _, k := range s.kinds {
		if k.held > 0 && now.Sub(k.since) >= s.every {
			out = append(out, line{k.level, fmt.Sprintf("%s (%d more like it since the last such line, not logged)", k.msg, k.held),
				append(append([]any(nil), k.args...), "suppressed", k.held)})
			k.since, k.held = now, 0
		}
	}
	s.mu.Unlock()
	for _, l := range out {
		s.logger.Log(ctx, l.level, l.msg, l.args...)
	}
}

// flushSamples flushes the edge's samplers every interval until ctx is
// done.
func (s *Server) flushSamples(ctx context.Context) {
	t := time.NewTicker(s.failures.every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			s.failures.flush(context.WithoutCancel(ctx))
			s.limits.refused.flush(context.WithoutCancel(ctx))
			return
		case <-t.C:
			s.failures.flush(ctx)
			s.limits.refused.flush(ctx)
		}
	}
}
