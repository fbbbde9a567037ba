package config

import (
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"os"
	"strings"
	"time"
)

// Admin is the admin service's configuration (cmd/admin: the admin API,
// and the console): an optional YAML file, then JITPROV_* variables, which
// win, validated once by LoadAdmin. Session keys come from a file or a
// variable, never from the configuration file itself.
type Admin struct {
	DatabaseURL string `yaml:"database_url"` // JITPROV_DATABASE_URL, required
	// Addr is the listen address of the API and the console
	// (JITPROV_ADMIN_ADDR, default ":8090").
	Addr string `yaml:"addr"`
	// HealthAddr serves /healthz and /readyz (JITPROV_HEALTH_ADDR, default
	// ":8083"; "" serves none).
	HealthAddr string `yaml:"health_addr"`
	// SessionKeysFile and SessionKeys are sso-edge's session keys, read as
	// sso-edge reads them (JITPROV_SESSION_KEYS_FILE, or
	// JITPROV_SESSION_KEYS): the admin service opens the edge's session
	// cookie with them. Without them only API tokens are accepted.
	SessionKeysFile string   `yaml:"session_keys_file"`
	SessionKeys     []string `yaml:"-"`
	// InsecureCookies and CookieDomain must be sso-edge's
	// (JITPROV_EDGE_INSECURE_COOKIES, JITPROV_EDGE_COOKIE_DOMAIN): they
	// choose the session cookie's name.
	InsecureCookies bool   `yaml:"insecure_cookies"`
	CookieDomain    string `yaml:"cookie_domain"`
	// EdgePublicURL is sso-edge's public URL (JITPROV_EDGE_PUBLIC_URL),
	// on whose host the console is served (/admin/, routed here by the
	// ingress): its sign-in page is <EdgePublicURL>/login. With the session
	// keys, it turns the console on.
	EdgePublicURL string `yaml:"edge_public_url"`
	// TokenFailures is how many failed token attempts one client may make
	// a minute (JITPROV_ADMIN_TOKEN_FAILURES, default 10).
	TokenFailures int `yaml:"token_failures"`
	// TokenRate is how many requests one token may make a minute
	// (JITPROV_ADMIN_TOKEN_RATE, default 600; 0 for no limit).
	TokenRate int `yaml:"token_rate"`
	// TrustedProxies are the proxies whose X-Forwarded-For names the
	// client (JITPROV_ADMIN_TRUSTED_PROXIES, comma-separated addresses or
	// CIDR ranges; default none).
	TrustedProxies []string `yaml:"trusted_proxies"`
	// ShutdownTimeout bounds the requests in flight at shutdown
	// (JITPROV_ADMIN_SHUTDOWN_TIMEOUT, default 10s).
	ShutdownTimeout Duration `yaml:"shutdown_timeout"`
	// ReviewExpiry is how long a role review may wait unanswered before it
	// expires (JITPROV_ADMIN_REVIEW_EXPIRY, default 720h = 30 days; "off"
	// or 0 keeps reviews until answered). Checked every hour.
	ReviewExpiry Duration `yaml:"review_expiry"`
	LogLevel     string   `yaml:"log_level"`  // JITPROV_LOG_LEVEL, default info
	LogFormat    string   `yaml:"log_format"` // JITPROV_LOG_FORMAT, default json
}

// LoadAdmin reads the optional YAML file at path ("" for none), then the
// variables through getenv, which win, and validates the result.
func LoadAdmin(path string, getenv func(string) string) (Admin, error) {
	a := Admin{Addr: ":8090", HealthAddr: ":8083", TokenFailures: 10, TokenRate: 600,
		ShutdownTimeout: Duration(10 * time.Second), ReviewExpiry: Duration(30 * 24 * time.Hour), LogLevel: "info", LogFormat: "json"}
	if path != "" {
		data, err := os.ReadFile(path)
		if err != nil {
			return a, fmt.Errorf("read the admin service configuration: %w", err)
		}
		d, err := parseDocument(path, data)
		if err != nil {
			return a, err
		}
		if d.root != nil {
			d.decode(data, &a)
			d.requireInt("token_failures")
			d.requireInt("token_rate")
			if err := joinSorted(d.errs); err != nil {
				return a, err
			}
		}
	}
	env := newEnvReader(getenv)
	env.str("JITPROV_DATABASE_URL", &a.DatabaseURL)
	env.str("JITPROV_ADMIN_ADDR", &a.Addr)
	env.str("JITPROV_HEALTH_ADDR", &a.HealthAddr)
	env.bool("JITPROV_EDGE_INSECURE_COOKIES", &a.InsecureCookies)
	env.str("JITPROV_EDGE_COOKIE_DOMAIN", &a.CookieDomain)
	env.str("JITPROV_EDGE_PUBLIC_URL", &a.EdgePublicURL)
	env.int("JITPROV_ADMIN_TOKEN_FAILURES", &a.TokenFailures)
	env.int("JITPROV_ADMIN_TOKEN_RATE", &a.TokenRate)
	env.list("JITPROV_ADMIN_TRUSTED_PROXIES", &a.TrustedProxies)
	env.duration("JITPROV_ADMIN_SHUTDOWN_TIMEOUT", "10s", &a.ShutdownTimeout)
	if v := env.get("JITPROV_ADMIN_REVIEW_EXPIRY"); strings.EqualFold(v, "off") {
		a.ReviewExpiry = 0
	} else {
		env.duration("JITPROV_ADMIN_REVIEW_EXPIRY", "720h", &a.ReviewExpiry)
	}
	env.str("JITPROV_LOG_LEVEL", &a.LogLevel)
	env.str("JITPROV_LOG_FORMAT", &a.LogFormat)
	env.str("JITPROV_SESSION_KEYS_FILE", &a.SessionKeysFile)
	errs := env.errs
	switch file, inline := a.SessionKeysFile, env.get("JITPROV_SESSION_KEYS"); {
	case file != "" && inline != "":
		errs = append(errs, errors.New("a session keys file (session_keys_file, JITPROV_SESSION_KEYS_FILE) and JITPROV_SESSION_KEYS are both set; use one"))
	case file != "":
		raw, err := os.ReadFile(file)
		if err != nil {
			errs = append(errs, fmt.Errorf("session keys file: %w", err))
		}
		for _, line := range strings.Split(string(raw), "\n") {
			if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
				a.SessionKeys = append(a.SessionKeys, line)
			}
		}
	case inline != "":
		a.SessionKeys = list(inline)
	}
	if len(errs) > 0 {
		return a, errors.Join(errs...)
	}
	return a, a.Validate()
}

// Validate reports every setting that cannot work.
func (a Admin) Validate() error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if a.DatabaseURL == "" {
		add("JITPROV_DATABASE_URL: required: the Postgres connection URL, e.g. postgres://jitprov:PASSWORD@db:5432/jitprov")
	}
	if a.Addr == "" {
		add("JITPROV_ADMIN_ADDR (addr): required: the API's listen address, e.g. :8090")
	}
	if a.Addr != "" && a.Addr == a.HealthAddr {
		add("JITPROV_ADMIN_ADDR and JITPROV_HEALTH_ADDR are both %q: give the health endpoints their own address", a.Addr)
	}
	if a.TokenFailures < 1 {
		add("JITPROV_ADMIN_TOKEN_FAILURES (token_failures) is %d: want failed attempts a minute per client, at least 1", a.TokenFailures)
	}
	if a.TokenRate < 0 {
		add("JITPROV_ADMIN_TOKEN_RATE (token_rate) is %d: want requests a minute per token, or 0 for no limit", a.TokenRate)
	}
	if a.ShutdownTimeout <= 0 {
		add("JITPROV_ADMIN_SHUTDOWN_TIMEOUT (shutdown_timeout): must be positive")
	}
	if a.ReviewExpiry < 0 || (a.ReviewExpiry > 0 && a.ReviewExpiry < Duration(time.Hour)) {
		add("JITPROV_ADMIN_REVIEW_EXPIRY (review_expiry) is %s: want an age of at least 1h, such as 720h, or off", time.Duration(a.ReviewExpiry))
	}
	if a.EdgePublicURL != "" {
		if u, err := url.Parse(a.EdgePublicURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || (u.Path != "" && u.Path != "/") {
			add("JITPROV_EDGE_PUBLIC_URL (edge_public_url) is %q: want sso-edge's public origin, such as https://sso.example.com", a.EdgePublicURL)
		}
	}
	if _, err := a.Proxies(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// Proxies parses TrustedProxies: each an address or a CIDR range.
func (a Admin) Proxies() ([]netip.Prefix, error) {
	var out []netip.Prefix
	var errs []error
	for _, p := range a.TrustedProxies {
		if pfx, err := netip.ParsePrefix(p); err == nil {
			out = append(out, pfx.Masked())
		} else if ad, err := netip.ParseAddr(p); err == nil {
			out = append(out, netip.PrefixFrom(ad.Unmap(), ad.Unmap().BitLen()))
		} else {
			errs = append(errs, fmt.Errorf("JITPROV_ADMIN_TRUSTED_PROXIES (trusted_proxies): %q is neither an address nor a CIDR range such as 10.0.0.0/8", p))
		}
	}
	return out, errors.Join(errs...)
}

// String is safe to log: no secrets.
func (a Admin) String() string {
	return fmt.Sprintf("database_url=%q addr=%q health_addr=%q session_keys=%d insecure_cookies=%t cookie_domain=%q token_failures=%d token_rate=%d trusted_proxies=%v shutdown_timeout=%s",
		redactDatabaseURL(a.DatabaseURL), a.Addr, a.HealthAddr, len(a.SessionKeys), a.InsecureCookies, a.CookieDomain,
		a.TokenFailures, a.TokenRate, a.TrustedProxies, time.Duration(a.ShutdownTimeout))
}
