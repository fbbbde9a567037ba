package config

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Edge is sso-edge's configuration: an optional YAML file (unknown keys
// rejected, errors with file and line), then JITPROV_* environment
// variables, validated once by LoadEdge. Session keys come from a file or
// a variable, never from the configuration file itself.
type Edge struct {
	DatabaseURL     string `yaml:"database_url"`     // JITPROV_DATABASE_URL, required
	NATSURL         string `yaml:"nats_url"`         // JITPROV_NATS_URL, default nats://127.0.0.1:4222
	NATSCredentials string `yaml:"nats_credentials"` // JITPROV_NATS_CREDENTIALS
	// Addr is the listen address (JITPROV_EDGE_ADDR, default ":8080").
	Addr string `yaml:"addr"`
	// MetricsAddr is the internal listen address of /metrics (Prometheus),
	// /healthz and /readyz (JITPROV_EDGE_METRICS_ADDR, default ":8084";
	// "" in the file or "off" in the variable serves none). Never the
	// public Addr.
	MetricsAddr string `yaml:"metrics_addr"`
	// PublicURL is the edge's address as browsers and IdPs reach it
	// (JITPROV_EDGE_PUBLIC_URL, required).
	PublicURL string `yaml:"public_url"`
	// SessionKeysFile holds 32-byte secrets, hex or base64, one per line,
	// the first current and the rest previous (rotation):
	// JITPROV_SESSION_KEYS_FILE, or the keys themselves in
	// JITPROV_SESSION_KEYS (comma-separated).
	SessionKeysFile string `yaml:"session_keys_file"`
	// SessionKeys are the keys read from either source.
	SessionKeys []string `yaml:"-"`
	// InsecureCookies drops Secure from cookies, for plain-http development
	// only (JITPROV_EDGE_INSECURE_COOKIES=true).
	InsecureCookies bool `yaml:"insecure_cookies"`
	// CookieDomain sends the session cookie to every host of a domain, so
	// that applications on other hosts can use /auth/verify
	// (JITPROV_EDGE_COOKIE_DOMAIN, e.g. example.com). Default: the edge's
	// host only.
	CookieDomain string `yaml:"cookie_domain"`
	// ReturnOrigins are the origins a login may return to besides the
	// edge's own paths (JITPROV_EDGE_RETURN_ORIGINS, comma-separated).
	ReturnOrigins []string `yaml:"return_origins"`
	// LandingURL is where a login without a return URL lands when its
	// organisation names no landing_url of its own
	// (JITPROV_EDGE_LANDING_URL): a path on the edge or an absolute
	// http(s) URL. Default: the edge's landing page, "/".
	LandingURL string `yaml:"landing_url"`
	// ProvisionTimeout is how long a first login waits for its account
	// (JITPROV_EDGE_PROVISION_TIMEOUT, default 5s).
	ProvisionTimeout Duration `yaml:"provision_timeout"`
	// SessionRecheck is how long /auth/verify trusts what it last read of
	// a session's user before reading it again (JITPROV_EDGE_SESSION_RECHECK,
	// default 15s; "off" trusts a session until it expires).
	SessionRecheck Duration `yaml:"session_recheck"`
	// SPKeyFile and SPCertFile are the default SP key pair (PEM) for SAML
	// connections without their own (JITPROV_EDGE_SP_KEY_FILE,
	// JITPROV_EDGE_SP_CERT_FILE).
	SPKeyFile  string `yaml:"sp_key_file"`
	SPCertFile string `yaml:"sp_cert_file"`
	// CertCheckInterval is how often the SAML connections' IdP signing
	// certificates are checked for expiry (idp-certificate.expiring
	// alerts): a duration of at least a minute, or "off"
	// (JITPROV_EDGE_CERT_CHECK_INTERVAL, default 24h).
	CertCheckInterval DurationOrOff `yaml:"cert_check_interval"`
	// MetadataRefresh is how often each connection in use is loaded again:
	// its settings from the database and its IdP metadata (fetched from
	// idp_metadata_url, read from idp_metadata_file). SIGHUP reloads them
	// at once (JITPROV_EDGE_METADATA_REFRESH, default 5m, at least 10s).
	MetadataRefresh Duration `yaml:"metadata_refresh"`
	// RatePerClient and RatePerConnection bound the sign-in requests a
	// minute from one client address and to one connection
	// (JITPROV_EDGE_RATE_PER_CLIENT, default 600; JITPROV_EDGE_RATE_PER_CONNECTION,
	// default 6000; 0 turns a limit off).
	RatePerClient     int `yaml:"rate_per_client"`
	RatePerConnection int `yaml:"rate_per_connection"`
	// TrustedProxies are the addresses or CIDR ranges of the proxies in
	// front of the edge (ingress controllers, load balancers), whose
	// X-Forwarded-For names the client (JITPROV_EDGE_TRUSTED_PROXIES,
	// comma-separated; default none: the peer is the client).
	TrustedProxies []string `yaml:"trusted_proxies"`
	// Replicas of the edge's KV buckets (JITPROV_STREAM_REPLICAS, default 1).
	Replicas  int    `yaml:"replicas"`
	LogLevel  string `yaml:"log_level"`  // JITPROV_LOG_LEVEL, default info
	LogFormat string `yaml:"log_format"` // JITPROV_LOG_FORMAT, default json
}

// Bounds of Edge.MetadataRefresh: an IdP metadata change is picked up
// within DefaultMetadataRefresh; more often than MinMetadataRefresh would
// fetch every IdP's metadata for nothing (SIGHUP reloads at once).
const (
	DefaultMetadataRefresh = 5 * time.Minute
	MinMetadataRefresh     = 10 * time.Second
)

// DefaultEdgeMetricsAddr is Edge.MetricsAddr's default: the edge's
// internal listener for Prometheus.
const DefaultEdgeMetricsAddr = ":8084"

// LoadEdge reads the optional YAML file at path ("" for none), then the
// variables through getenv, which win, and validates the result.
func LoadEdge(path string, getenv func(string) string) (Edge, error) {
	e := Edge{NATSURL: "nats://127.0.0.1:4222", Addr: ":8080", MetricsAddr: DefaultEdgeMetricsAddr, ProvisionTimeout: Duration(5 * time.Second),
		CertCheckInterval: DurationOrOff(24 * time.Hour), MetadataRefresh: Duration(DefaultMetadataRefresh), Replicas: 1, LogLevel: "info", LogFormat: "json",
		RatePerClient: 600, RatePerConnection: 6000}
	if path != "" {
		data, err := os.ReadFile(path)
		if err != nil {
			return e, fmt.Errorf("read the sso-edge configuration: %w", err)
		}
		d, err := parseDocument(path, data)
		if err != nil {
			return e, err
		}
		if d.root != nil {
			d.decode(data, &e)
			d.requireInt("replicas")
			d.requireInt("rate_per_client")
			d.requireInt("rate_per_connection")
			if err := joinSorted(d.errs); err != nil {
				return e, err
			}
		}
	}
	env := newEnvReader(getenv)
	env.str("JITPROV_DATABASE_URL", &e.DatabaseURL)
	env.str("JITPROV_NATS_URL", &e.NATSURL)
	env.str("JITPROV_NATS_CREDENTIALS", &e.NATSCredentials)
	env.str("JITPROV_EDGE_ADDR", &e.Addr)
	if v := env.get("JITPROV_EDGE_METRICS_ADDR"); strings.EqualFold(v, "off") {
		e.MetricsAddr = ""
	} else {
		env.str("JITPROV_EDGE_METRICS_ADDR", &e.MetricsAddr)
	}
	env.str("JITPROV_EDGE_PUBLIC_URL", &e.PublicURL)
	env.str("JITPROV_EDGE_SP_KEY_FILE", &e.SPKeyFile)
	env.str("JITPROV_EDGE_COOKIE_DOMAIN", &e.CookieDomain)
	env.str("JITPROV_EDGE_SP_CERT_FILE", &e.SPCertFile)
	env.str("JITPROV_LOG_LEVEL", &e.LogLevel)
	env.str("JITPROV_LOG_FORMAT", &e.LogFormat)
	env.list("JITPROV_EDGE_RETURN_ORIGINS", &e.ReturnOrigins)
	env.str("JITPROV_EDGE_LANDING_URL", &e.LandingURL)
	env.bool("JITPROV_EDGE_INSECURE_COOKIES", &e.InsecureCookies)
	env.duration("JITPROV_EDGE_PROVISION_TIMEOUT", "5s", &e.ProvisionTimeout)
	if v := env.get("JITPROV_EDGE_SESSION_RECHECK"); strings.EqualFold(v, "off") {
		e.SessionRecheck = -1
	} else {
		env.duration("JITPROV_EDGE_SESSION_RECHECK", "15s", &e.SessionRecheck)
	}
	env.duration("JITPROV_EDGE_METADATA_REFRESH", "5m", &e.MetadataRefresh)
	if v := env.get("JITPROV_EDGE_CERT_CHECK_INTERVAL"); v != "" {
		d, err := parseDurationOrOff(v)
		if err != nil {
			env.errs = append(env.errs, fmt.Errorf("JITPROV_EDGE_CERT_CHECK_INTERVAL=%q: want a duration such as 24h or 6h, or off", v))
		}
		e.CertCheckInterval = d
	}
	env.int("JITPROV_STREAM_REPLICAS", &e.Replicas)
	env.int("JITPROV_EDGE_RATE_PER_CLIENT", &e.RatePerClient)
	env.int("JITPROV_EDGE_RATE_PER_CONNECTION", &e.RatePerConnection)
	env.list("JITPROV_EDGE_TRUSTED_PROXIES", &e.TrustedProxies)
	var errs []error
	env.str("JITPROV_SESSION_KEYS_FILE", &e.SessionKeysFile)
	switch file, inline := e.SessionKeysFile, env.get("JITPROV_SESSION_KEYS"); {
	case file != "" && inline != "":
		errs = append(errs, errors.New("a session keys file (session_keys_file, JITPROV_SESSION_KEYS_FILE) and JITPROV_SESSION_KEYS are both set; use one"))
	case file != "":
		raw, err := os.ReadFile(file)
		if err != nil {
			errs = append(errs, fmt.Errorf("session keys file: %w", err))
		}
		for _, line := range strings.Split(string(raw), "\n") {
			if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
				e.SessionKeys = append(e.SessionKeys, line)
			}
		}
	case inline != "":
		e.SessionKeys = list(inline)
	}
	if err := errors.Join(env.err(), errors.Join(errs...)); err != nil {
		return e, err
	}
	return e, e.Validate()
}

func list(s string) []string {
	var out []string
	for _, v := range strings.Split(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, v)
		}
	}
	return out
}

// Validate reports every setting that cannot work.
func (e Edge) Validate() error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if e.DatabaseURL == "" {
		add("JITPROV_DATABASE_URL: required: the Postgres connection URL, e.g. postgres://jitprov:PASSWORD@db:5432/jitprov")
	}
	if u, err := url.Parse(e.PublicURL); e.PublicURL == "" || err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		add("JITPROV_EDGE_PUBLIC_URL=%q: required: the edge's address as browsers and IdPs reach it, e.g. https://sso.example.com", e.PublicURL)
	} else if u.Scheme == "http" && !e.InsecureCookies {
		add("JITPROV_EDGE_PUBLIC_URL=%q is plain http, where browsers drop Secure cookies: use https, or set JITPROV_EDGE_INSECURE_COOKIES=true for development", e.PublicURL)
	}
	if len(e.SessionKeys) == 0 {
		add("JITPROV_SESSION_KEYS_FILE or JITPROV_SESSION_KEYS: required: at least one 32-byte session key (hex or base64), e.g. from `openssl rand -hex 32`")
	}
	if e.ProvisionTimeout <= 0 {
		add("provision_timeout: must be positive")
	}
	if d := time.Duration(e.MetadataRefresh); d < MinMetadataRefresh {
		add("JITPROV_EDGE_METADATA_REFRESH (metadata_refresh) is %s: want at least %s (send sso-edge SIGHUP to reload the connections at once)", d, MinMetadataRefresh)
	}
	if d := e.CertCheckInterval; !d.Off() && time.Duration(d) < time.Minute {
		add("JITPROV_EDGE_CERT_CHECK_INTERVAL (cert_check_interval) is %s: want at least 1m, or off", time.Duration(d))
	}
	if e.CookieDomain != "" {
		if u, err := url.Parse(e.PublicURL); err == nil && u.Host != "" {
			host, d := strings.ToLower(u.Hostname()), strings.TrimPrefix(strings.ToLower(e.CookieDomain), ".")
			if host != d && !strings.HasSuffix(host, "."+d) {
				add("JITPROV_EDGE_COOKIE_DOMAIN=%q: the edge's host %q is not in it, so browsers would refuse the cookie", e.CookieDomain, host)
			}
		}
	}
	if (e.SPKeyFile == "") != (e.SPCertFile == "") {
		add("JITPROV_EDGE_SP_KEY_FILE and JITPROV_EDGE_SP_CERT_FILE go together")
	}
	for _, o := range e.ReturnOrigins {
		if u, err := url.Parse(o); err != nil || u.Host == "" || u.Path != "" || (u.Scheme != "https" && u.Scheme != "http") {
			add("JITPROV_EDGE_RETURN_ORIGINS: %q is not an origin such as https://app.example.com", o)
		}
	}
	if e.LandingURL != "" {
		u, err := url.Parse(e.LandingURL)
		switch {
		case err != nil:
			add("JITPROV_EDGE_LANDING_URL (landing_url)=%q: %v", e.LandingURL, err)
		case u.Scheme == "" && u.Host == "" && strings.HasPrefix(u.Path, "/") && !strings.HasPrefix(e.LandingURL, "//"):
		case (u.Scheme == "https" || u.Scheme == "http") && u.Host != "" && u.User == nil:
		default:
			add("JITPROV_EDGE_LANDING_URL (landing_url)=%q: want a path on the edge such as /welcome, or an absolute URL such as https://app.example.com/", e.LandingURL)
		}
	}
	if e.MetricsAddr != "" {
		_, port, err := net.SplitHostPort(e.MetricsAddr)
		switch n, perr := strconv.Atoi(port); {
		case err != nil:
			add("JITPROV_EDGE_METRICS_ADDR (metrics_addr)=%q is not a listen address such as \":8084\"; \"off\" (or \"\" in the file) serves no metrics", e.MetricsAddr)
		case perr != nil || n < 0 || n > 65535:
			add("JITPROV_EDGE_METRICS_ADDR (metrics_addr)=%q: port %q is not a number from 0 to 65535", e.MetricsAddr, port)
		case e.MetricsAddr == e.Addr:
			add("JITPROV_EDGE_METRICS_ADDR (metrics_addr)=%q is the public listener's address (addr): metrics are served on an internal listener of their own", e.MetricsAddr)
		}
	}
	if e.Replicas != 1 && e.Replicas != 3 && e.Replicas != 5 {
		add("JITPROV_STREAM_REPLICAS=%d: want 1, 3 or 5", e.Replicas)
	}
	if e.RatePerClient < 0 {
		add("JITPROV_EDGE_RATE_PER_CLIENT (rate_per_client) is %d: want requests a minute, or 0 for no limit", e.RatePerClient)
	}
	if e.RatePerConnection < 0 {
		add("JITPROV_EDGE_RATE_PER_CONNECTION (rate_per_connection) is %d: want requests a minute, or 0 for no limit", e.RatePerConnection)
	}
	if _, err := e.Proxies(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// Proxies parses TrustedProxies: each an address (a single host) or a
// CIDR range.
func (e Edge) Proxies() ([]netip.Prefix, error) {
	var out []netip.Prefix
	var errs []error
	for _, p := range e.TrustedProxies {
		if pfx, err := netip.ParsePrefix(p); err == nil {
			out = append(out, pfx.Masked())
		} else if a, err := netip.ParseAddr(p); err == nil {
			out = append(out, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
		} else {
			errs = append(errs, fmt.Errorf("JITPROV_EDGE_TRUSTED_PROXIES (trusted_proxies): %q is neither an address nor a CIDR range such as 10.0.0.0/8", p))
		}
	}
	return out, errors.Join(errs...)
}

// Rate turns a configured limit (0: off) into edge.Config's (negative:
// off).
func Rate(perMinute int) int {
	if perMinute == 0 {
		return -1
	}
	return perMinute
}

// String is safe to log: no secrets.
func (e Edge) String() string {
	return fmt.Sprintf("database_url=%q nats_url=%q addr=%q metrics_addr=%q public_url=%q session_keys=%d insecure_cookies=%t cookie_domain=%q return_origins=%v landing_url=%q provision_timeout=%s sp_key_file=%q cert_check_interval=%s metadata_refresh=%s replicas=%d rate_per_client=%d rate_per_connection=%d trusted_proxies=%v",
		redactDatabaseURL(e.DatabaseURL), redactNATSList(e.NATSURL), e.Addr, e.MetricsAddr, e.PublicURL, len(e.SessionKeys), e.InsecureCookies, e.CookieDomain,
		e.ReturnOrigins, e.LandingURL, time.Duration(e.ProvisionTimeout), e.SPKeyFile, e.CertCheckInterval, time.Duration(e.MetadataRefresh), e.Replicas,
		e.RatePerClient, e.RatePerConnection, e.TrustedProxies)
}

// DurationOrOff is a Duration that may also be "off", which it stores as a
// negative value (the edge's convention for a check that never runs). It
// is a type of its own rather than a Duration because YAML must accept
// "off" too.
type DurationOrOff time.Duration

// Off reports whether d is "off".
func (d DurationOrOff) Off() bool { return d < 0 }

// String is "off" or the duration, e.g. "24h0m0s".
func (d DurationOrOff) String() string {
	if d.Off() {
		return "off"
	}
	return time.Duration(d).String()
}

// UnmarshalYAML reads "off" or a Go duration string such as "24h"; any
// other value is reported as Duration reports it.
func (d *DurationOrOff) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode && strings.EqualFold(strings.TrimSpace(n.Value), "off") {
		*d = -1
		return nil
	}
	var v Duration
	if err := v.UnmarshalYAML(n); err != nil {
		return err
	}
	if v < 0 {
		return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: expected a duration such as \"24h\", or off, got %q", n.Line, n.Value)}}
	}
	*d = DurationOrOff(v)
	return nil
}

// parseDurationOrOff reads "off" or a positive Go duration.
func parseDurationOrOff(s string) (DurationOrOff, error) {
	if strings.EqualFold(s, "off") {
		return -1, nil
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return 0, err
	}
	if v <= 0 {
		return 0, errors.New("not positive")
	}
	return DurationOrOff(v), nil
}
