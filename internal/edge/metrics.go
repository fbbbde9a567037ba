package edge

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/felixge/httpsnoop"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/jitprov/jitprov/events"
	"github.com/jitprov/jitprov/internal/edge/certwatch"
)

// The edge's metrics (docs/operations.md#metrics lists them as Prometheus
// shows them). Every label has a bounded set of values, fixed by this
// code: nothing a browser or an IdP writes ever becomes a label value.
//
// Logins are counted once each, where the IdP's answer arrives (the ACS,
// the OIDC callback): by protocol, outcome and reason. The outcomes are
// the provisioner's (created, existing, held, rejected, refused, failed)
// and the edge's own: invalid (the IdP's answer was refused: reason is the
// validation reason), pending (no answer in time: the person was shown the
// waiting page) and unavailable (the edge could not go on: the store, NATS
// or a cookie could not be used).
const (
	outcomeInvalid     = "invalid"
	outcomePending     = "pending"
	outcomeUnavailable = "unavailable"
)

// requestBuckets are the bounds of the latency histograms, in seconds:
// from a forward-auth check (milliseconds) to a first login that waits
// for the provisioner (up to its 5 s deadline and over).
var requestBuckets = []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}

type edgeMetrics struct {
	logins   metric.Int64Counter
	invalid  metric.Int64Counter
	replays  metric.Int64Counter
	fastPath metric.Int64Counter
	limited  metric.Int64Counter
	waiting  metric.Int64UpDownCounter
	wait     metric.Float64Histogram
	requests metric.Float64Histogram
}

func newEdgeMetrics(m metric.Meter) (edgeMetrics, error) {
	var out edgeMetrics
	var errs [8]error
	out.logins, errs[0] = m.Int64Counter("jitprov.edge.logins",
		metric.WithDescription("Logins (IdP answers at the ACS or OIDC callback), by protocol, outcome and reason."))
	out.invalid, errs[1] = m.Int64Counter("jitprov.edge.validation_failures",
		metric.WithDescription("IdP answers refused by the edge's checks, by protocol and reason."))
	out.replays, errs[2] = m.Int64Counter("jitprov.edge.replay_refusals",
		metric.WithDescription("SAML assertions refused because their id was used already (on any replica)."))
	out.fastPath, errs[3] = m.Int64Counter("jitprov.edge.fast_path_hits",
		metric.WithDescription("Returning logins signed in from the known identities, without a round trip to the provisioner."))
	out.limited, errs[4] = m.Int64Counter("jitprov.edge.rate_limited",
		metric.WithDescription("Sign-in requests refused by a rate limit (per-client or per-connection)."))
	out.waiting, errs[5] = m.Int64UpDownCounter("jitprov.edge.provision.waiting",
		metric.WithDescription("Logins waiting now for the provisioner's answer."), metric.WithUnit("{login}"))
	out.wait, errs[6] = m.Float64Histogram("jitprov.edge.provision.wait.duration",
		metric.WithDescription("Time a login waited for the provisioner's answer, by result (answered, pending, unconfirmed, error)."),
		metric.WithUnit("s"), metric.WithExplicitBucketBoundaries(requestBuckets...))
	out.requests, errs[7] = m.Float64Histogram("jitprov.edge.request.duration",
		metric.WithDescription("Time to serve an HTTP request of the public listener, by route pattern, method and status."),
		metric.WithUnit("s"), metric.WithExplicitBucketBoundaries(requestBuckets...))
	return out, errors.Join(errs[:]...)
}

// countLogin counts one login. outcome and reason are bounded by the
// callers; a provisioner's answer goes through decidedLabels first.
func (s *Server) countLogin(ctx context.Context, protocol events.Protocol, outcome, reason string) {
	s.m.logins.Add(ctx, 1, metric.WithAttributes(attribute.String("protocol", protocolLabel(protocol)),
		attribute.String("outcome", outcome), attribute.String("reason", reason)))
}

// refusedLogin counts an IdP answer refused by the edge's checks: a
// validation failure and a login of outcome invalid, both with reason.
func (s *Server) refusedLogin(ctx context.Context, protocol events.Protocol, reason string) {
	if reason == "" {
		reason = "rejected"
	}
	s.m.invalid.Add(ctx, 1, metric.WithAttributes(attribute.String("protocol", protocolLabel(protocol)), attribute.String("reason", reason)))
	s.countLogin(ctx, protocol, outcomeInvalid, reason)
}

func protocolLabel(p events.Protocol) string {
	switch p {
	case events.ProtocolSAML, events.ProtocolOIDC:
		return string(p)
	}
	return "other"
}

// decidedLabels bounds a provisioner's answer to the outcomes and reasons
// of the contract: the answer comes over the wire, and anything else is
// "other".
func decidedLabels(res events.ProvisioningResult) (outcome, reason string) {
	switch res.Outcome {
	case events.OutcomeCreated, events.OutcomeExisting, events.OutcomeRejected, events.OutcomeRefused,
		events.OutcomeFailed, events.OutcomeHeld:
		outcome = string(res.Outcome)
	default:
		outcome = "other"
	}
	switch res.Reason {
	case "", events.ReasonSeatsExhausted, events.ReasonSuspended, events.ReasonDeprovisioned, events.ReasonEmailInUse,
		events.ReasonIdentityConflict, events.ReasonUnknownOrganization, events.ReasonUnknownConnection,
		events.ReasonInternalError, events.ReasonApprovalRequired:
		reason = string(res.Reason)
	default:
		reason = "other"
	}
	return outcome, reason
}

// provisionWait measures one wait for the provisioner's answer: the
// gauge of logins waiting goes up now and down when the returned func is
// called with the result.
func (s *Server) provisionWait(ctx context.Context) func(result string) {
	start := time.Now()
	s.m.waiting.Add(ctx, 1)
	return func(result string) {
		s.m.waiting.Add(ctx, -1)
		s.m.wait.Record(ctx, time.Since(start).Seconds(), metric.WithAttributes(attribute.String("result", result)))
	}
}

// measured records each request's latency by the route pattern the mux
// matched ("/saml/{org}/{conn}/acs", never the raw path), the method and
// the status. It must sit right around the mux, which writes the pattern
// into the very request it is given.
func (s *Server) measured(mux http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		m := httpsnoop.CaptureMetrics(mux, w, r)
		s.m.requests.Record(r.Context(), m.Duration.Seconds(), metric.WithAttributes(
			attribute.String("route", routeLabel(r.Pattern)), attribute.String("method", methodLabel(r.Method)),
			attribute.Int("status", m.Code)))
	})
}

// routeLabel is the path of a mux pattern such as "POST /login", or
// "unmatched".
func routeLabel(pattern string) string {
	if pattern == "" {
		return "unmatched"
	}
	if i := strings.IndexByte(pattern, ' '); i >= 0 {
		pattern = pattern[i+1:]
	}
	return pattern
}

// methodLabel is the method, or "other" for a method no route serves.
func methodLabel(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete, http.MethodOptions:
		return m
	}
	return "other"
}

// certExpiry is one certificate the edge relies on: an IdP's signing
// certificate (kind idp) or the SP's own (kind sp) of a SAML connection.
type certExpiry struct {
	kind, org, conn string
	notAfter        time.Time
}

// certExpiries holds what the last certificate check saw, for the gauge
// of seconds left: the soonest expiry per kind and connection.
type certExpiries struct {
	mu   sync.Mutex
	list []certExpiry
}

func (c *certExpiries) set(list []certExpiry) {
	soonest := map[[3]string]int{}
	var out []certExpiry
	for _, e := range list {
		k := [3]string{e.kind, e.org, e.conn}
		if i, ok := soonest[k]; ok {
			if e.notAfter.Before(out[i].notAfter) {
				out[i] = e
			}
			continue
		}
		soonest[k] = len(out)
		out = append(out, e)
	}
	c.mu.Lock()
	c.list = out
	c.mu.Unlock()
}

func (c *certExpiries) get() []certExpiry {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.list
}

// registerCertGauge reports the seconds until each certificate the last
// check saw expires (negative once expired), by kind, organisation and
// connection: ids from the organisations file, never user input.
func registerCertGauge(m metric.Meter, certs *certExpiries, now func() time.Time) error {
	g, err := m.Float64ObservableGauge("jitprov.edge.certificate.expiry",
		metric.WithDescription("Seconds until a SAML connection's certificate expires (negative once expired), by kind (idp: the IdP's signing certificate; sp: the SP's own), as of the last certificate check."),
		metric.WithUnit("s"))
	if err != nil {
		return err
	}
	_, err = m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		t := now()
		for _, c := range certs.get() {
			o.ObserveFloat64(g, c.notAfter.Sub(t).Seconds(), metric.WithAttributes(attribute.String("kind", c.kind),
				attribute.String("jitprov.org", c.org), attribute.String("jitprov.connection", c.conn)))
		}
		return nil
	}, g)
	return err
}

// idpExpiries are the expiries of the IdP certificates certwatch checks.
func idpExpiries(certs []certwatch.Cert) []certExpiry {
	out := make([]certExpiry, 0, len(certs))
	for _, c := range certs {
		if c.Cert != nil {
			out = append(out, certExpiry{kind: "idp", org: c.OrganizationID, conn: c.ConnectionID, notAfter: c.Cert.NotAfter})
		}
	}
	return out
}
