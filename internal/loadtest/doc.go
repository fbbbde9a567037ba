// Package loadtest is `jitprov loadtest`: a login storm against a running
// sso-edge, over real HTTP, as browsers would make it.
//
// Setup makes a load-test IdP key and M organisations whose SAML
// connection trusts it (IdP-initiated logins allowed, sp_entity_id
// pinned, clock_skew 5m) and applies them. Run signs one IdP-initiated
// response per login before each scenario's timed phase (so the IdP's
// signing is not measured), then sends them: each login a new HTTP client
// with a cookie jar POSTing the response to the connection's ACS, in a
// closed loop (N in flight) or an open loop (a fixed arrival rate, timed
// from each login's scheduled start). It reports the rate, latency
// percentiles and outcomes of each scenario (first logins, returning
// logins) and checks the invariants in the database: the run's users
// equal the first logins answered, seats_used equals the active users.
// With Options.Protocol OIDC a login is the browser flow through an OIDC
// connection and the load-test provider (OIDCProvider).
//
// Compare is `jitprov loadtest compare`, the pipeline against the naive design: it builds
// and starts sso-edge, the provisioner, nats-server (or, with
// CompareOptions.NATSCluster, a JetStream cluster of nats-servers and R3
// streams) and the OIDC provider as processes on a scratch database, runs the edge's scenarios, then the
// baselines — the naive synchronous handler (package naive, in
// jitprov-loadtest-peer), validation only, pgbench of the decision
// transaction — and reports rates, percentiles, CPU per login of each
// process, peak RSS, the ratios against the targets and the invariants.
// docs/loadtest.md is the manual.
package loadtest
