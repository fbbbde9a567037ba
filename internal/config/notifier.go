package config

import (
	"errors"
	"fmt"
	"net"
	"net/mail"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/jitprov/jitprov/internal/notify"
)

// Notifier is the notifier's configuration: an optional YAML file, then
// JITPROV_* variables, which win, validated once by LoadNotifier.
type Notifier struct {
	DatabaseURL     string `yaml:"database_url"`     // JITPROV_DATABASE_URL, required: the organisations' admins
	NATSURL         string `yaml:"nats_url"`         // JITPROV_NATS_URL, default nats://127.0.0.1:4222
	NATSCredentials string `yaml:"nats_credentials"` // JITPROV_NATS_CREDENTIALS
	// OrganizationsFile is the organisations file (the one `provisioner
	// apply` applies), read for each organisation's notification settings
	// (JITPROV_ORGANIZATIONS_FILE, required).
	OrganizationsFile string `yaml:"organizations_file"`
	// Workers (JITPROV_NOTIFIER_WORKERS, default 16) deliver at once;
	// PerOrg (default 4) of them at most for one organisation.
	Workers int `yaml:"workers"`
	PerOrg  int `yaml:"per_org"`
	// MaxAttempts tries of one delivery before it is parked (default 8),
	// the first retry after BackoffMin (default 5s), doubling up to
	// BackoffMax (default 10m).
	MaxAttempts int      `yaml:"max_attempts"`
	BackoffMin  Duration `yaml:"backoff_min"`
	BackoffMax  Duration `yaml:"backoff_max"`
	// WebhookTimeout (default 10s) and MailTimeout (default 30s) bound
	// one delivery.
	WebhookTimeout Duration `yaml:"webhook_timeout"`
	MailTimeout    Duration `yaml:"mail_timeout"`
	SMTP           SMTP     `yaml:"smtp"`
	Links          Links    `yaml:"links"`
	// Replicas of the notifier's streams and buckets
	// (JITPROV_STREAM_REPLICAS, default 1).
	Replicas     int      `yaml:"replicas"`
	DrainTimeout Duration `yaml:"drain_timeout"`
	HealthAddr   string   `yaml:"health_addr"` // JITPROV_HEALTH_ADDR, default ":8082"
	LogLevel     string   `yaml:"log_level"`   // JITPROV_LOG_LEVEL, default info
	LogFormat    string   `yaml:"log_format"`  // JITPROV_LOG_FORMAT, default json
}

// SMTP is the mail server. Without Addr no mail is sent (email
// recipients are parked with a clear error).
type SMTP struct {
	Addr     string `yaml:"addr"`     // JITPROV_SMTP_ADDR, host:port
	TLS      string `yaml:"tls"`      // JITPROV_SMTP_TLS: starttls (default), tls or none
	Username string `yaml:"username"` // JITPROV_SMTP_USERNAME
	// The password comes from a file (JITPROV_SMTP_PASSWORD_FILE) or the
	// variable JITPROV_SMTP_PASSWORD, never from the configuration file.
	PasswordFile string `yaml:"password_file"`
	Password     string `yaml:"-"`
	From         string `yaml:"from"` // JITPROV_SMTP_FROM, e.g. "jitprov <noreply@example.com>"
	HeloName     string `yaml:"helo_name"`
}

// Links are where admins act, "{org}" standing for the organisation id
// (JITPROV_LINK_SEATS, JITPROV_LINK_ROLE_REVIEWS, JITPROV_LINK_CONNECTIONS,
// JITPROV_LINK_LOGINS, JITPROV_LINK_SIGNUPS).
type Links struct {
	Seats       string `yaml:"seats"`
	RoleReviews string `yaml:"role_reviews"`
	Connections string `yaml:"connections"`
	Logins      string `yaml:"logins"`
	// Signups is where held sign-ups are approved or denied; "{user}"
	// stands for the held user's id. Empty: Seats.
	Signups string `yaml:"signups"`
}

// LoadNotifier reads the optional YAML file at path ("" for none), then
// the variables through getenv, which win, and validates the result.
func LoadNotifier(path string, getenv func(string) string) (Notifier, error) {
	n := Notifier{NATSURL: "nats://127.0.0.1:4222", Workers: 16, PerOrg: 4, MaxAttempts: 8,
		BackoffMin: Duration(5 * time.Second), BackoffMax: Duration(10 * time.Minute),
		WebhookTimeout: Duration(10 * time.Second), MailTimeout: Duration(30 * time.Second),
		Replicas: 1, DrainTimeout: Duration(25 * time.Second), HealthAddr: ":8082", LogLevel: "info", LogFormat: "json",
		SMTP: SMTP{TLS: notify.SMTPStartTLS}}
	if path != "" {
		data, err := os.ReadFile(path)
		if err != nil {
			return n, fmt.Errorf("read the notifier configuration: %w", err)
		}
		d, err := parseDocument(path, data)
		if err != nil {
			return n, err
		}
		if d.root != nil {
			d.decode(data, &n)
			for _, key := range []string{"workers", "per_org", "max_attempts", "replicas"} {
				d.requireInt(key)
			}
			if err := joinSorted(d.errs); err != nil {
				return n, err
			}
		}
	}
	env := newEnvReader(getenv)
	env.str("JITPROV_DATABASE_URL", &n.DatabaseURL)
	env.str("JITPROV_NATS_URL", &n.NATSURL)
	env.str("JITPROV_NATS_CREDENTIALS", &n.NATSCredentials)
	env.str("JITPROV_ORGANIZATIONS_FILE", &n.OrganizationsFile)
	env.int("JITPROV_NOTIFIER_WORKERS", &n.Workers)
	env.int("JITPROV_STREAM_REPLICAS", &n.Replicas)
	env.str("JITPROV_HEALTH_ADDR", &n.HealthAddr)
	env.str("JITPROV_LOG_LEVEL", &n.LogLevel)
	env.str("JITPROV_LOG_FORMAT", &n.LogFormat)
	env.str("JITPROV_SMTP_ADDR", &n.SMTP.Addr)
	env.str("JITPROV_SMTP_TLS", &n.SMTP.TLS)
	env.str("JITPROV_SMTP_USERNAME", &n.SMTP.Username)
	env.str("JITPROV_SMTP_PASSWORD_FILE", &n.SMTP.PasswordFile)
	env.str("JITPROV_SMTP_FROM", &n.SMTP.From)
	env.str("JITPROV_LINK_SEATS", &n.Links.Seats)
	env.str("JITPROV_LINK_ROLE_REVIEWS", &n.Links.RoleReviews)
	env.str("JITPROV_LINK_CONNECTIONS", &n.Links.Connections)
	env.str("JITPROV_LINK_LOGINS", &n.Links.Logins)
	env.str("JITPROV_LINK_SIGNUPS", &n.Links.Signups)
	errs := env.errs
	switch file, inline := n.SMTP.PasswordFile, env.get("JITPROV_SMTP_PASSWORD"); {
	case file != "" && inline != "":
		errs = append(errs, errors.New("JITPROV_SMTP_PASSWORD_FILE (smtp.password_file) and JITPROV_SMTP_PASSWORD are both set; use one"))
	case file != "":
		b, err := os.ReadFile(file)
		if err != nil {
			errs = append(errs, fmt.Errorf("smtp password file: %w", err))
		}
		n.SMTP.Password = strings.TrimSpace(string(b))
	default:
		n.SMTP.Password = inline
	}
	if len(errs) > 0 {
		return n, errors.Join(errs...)
	}
	return n, n.Validate()
}

// Validate reports every setting that cannot work.
func (n Notifier) Validate() error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if n.DatabaseURL == "" {
		add("JITPROV_DATABASE_URL: required: the Postgres connection URL, where the organisations' admins are")
	}
	if n.OrganizationsFile == "" {
		add("JITPROV_ORGANIZATIONS_FILE: required: the organisations file, with each organisation's notifications settings")
	}
	if strings.TrimSpace(n.NATSURL) == "" {
		add("JITPROV_NATS_URL: required: the NATS server URL, e.g. nats://nats:4222")
	}
	positive := func(name string, v int, hi int) {
		if v < 1 || v > hi {
			add("%s: must be between 1 and %d, got %d", name, hi, v)
		}
	}
	positive("workers", n.Workers, 1024)
	positive("per_org", n.PerOrg, 1024)
	positive("max_attempts", n.MaxAttempts, 1000)
	for _, d := range []struct {
		name string
		v    Duration
	}{{"backoff_min", n.BackoffMin}, {"backoff_max", n.BackoffMax}, {"webhook_timeout", n.WebhookTimeout},
		{"mail_timeout", n.MailTimeout}, {"drain_timeout", n.DrainTimeout}} {
		if d.v <= 0 {
			add("%s: must be positive, got %s", d.name, time.Duration(d.v))
		}
	}
	if n.BackoffMax < n.BackoffMin {
		add("backoff_max (%s) is shorter than backoff_min (%s)", time.Duration(n.BackoffMax), time.Duration(n.BackoffMin))
	}
	if n.Workers > 1 && n.PerOrg >= n.Workers {
		add("per_org (%d) is not below workers (%d), so one organisation's hanging receivers could hold every worker", n.PerOrg, n.Workers)
	}
	if ack := notify.DefaultTopology().AckWait; n.WebhookTimeout >= Duration(ack) || n.MailTimeout >= Duration(ack) {
		add("webhook_timeout (%s) and mail_timeout (%s) must stay below %s, the time a job may be in hand before JetStream hands it to another replica",
			time.Duration(n.WebhookTimeout), time.Duration(n.MailTimeout), ack)
	}
	if n.MaxAttempts > 0 && n.BackoffMin > 0 && n.BackoffMax >= n.BackoffMin {
		var total time.Duration
		for try := 1; try < n.MaxAttempts && total < 7*24*time.Hour; try++ {
			total += min(time.Duration(n.BackoffMin)<<min(try-1, 30), time.Duration(n.BackoffMax))
		}
		if limit := notify.DefaultTopology().JobsMaxAge; total >= limit-24*time.Hour {
			add("max_attempts (%d) with backoff_max (%s) retries for about %s, too close to the %s a job is kept: it would expire instead of being parked",
				n.MaxAttempts, time.Duration(n.BackoffMax), total.Round(time.Hour), limit)
		}
	}
	if n.Replicas != 1 && n.Replicas != 3 && n.Replicas != 5 {
		add("JITPROV_STREAM_REPLICAS=%d: want 1, 3 or 5", n.Replicas)
	}
	if n.HealthAddr != "" {
		if _, _, err := net.SplitHostPort(n.HealthAddr); err != nil {
			add("JITPROV_HEALTH_ADDR=%q is not a listen address such as \":8082\"", n.HealthAddr)
		}
	}
	if !slices.Contains(logLevels, n.LogLevel) {
		add("JITPROV_LOG_LEVEL=%q is not one of debug, info, warn, error", n.LogLevel)
	}
	if !slices.Contains(logFormats, n.LogFormat) {
		add("JITPROV_LOG_FORMAT=%q is not one of json, text", n.LogFormat)
	}
	if s := n.SMTP; s.Addr != "" {
		host, _, err := net.SplitHostPort(s.Addr)
		if err != nil {
			add("JITPROV_SMTP_ADDR=%q is not host:port, e.g. smtp.example.com:587", s.Addr)
		}
		switch s.TLS {
		case notify.SMTPStartTLS, notify.SMTPTLS:
		case notify.SMTPPlain:
			if s.Username != "" && !isLoopback(host) {
				add("JITPROV_SMTP_TLS=none with a username would send the SMTP password in the clear to %s; use starttls or tls", host)
			}
		default:
			add("JITPROV_SMTP_TLS=%q is not starttls, tls or none", s.TLS)
		}
		if _, err := mail.ParseAddress(s.From); err != nil {
			add("JITPROV_SMTP_FROM=%q: required with an SMTP server: the sender, e.g. \"jitprov <noreply@example.com>\"", s.From)
		}
		if (s.Username == "") != (s.Password == "") {
			add("JITPROV_SMTP_USERNAME and the SMTP password (JITPROV_SMTP_PASSWORD or _FILE) go together")
		}
	}
	for _, link := range []struct{ name, l string }{{"links.seats", n.Links.Seats}, {"links.role_reviews", n.Links.RoleReviews},
		{"links.connections", n.Links.Connections}, {"links.logins", n.Links.Logins}, {"links.signups", n.Links.Signups}} {
		name, l := link.name, link.l
		if l == "" {
			continue
		}
		if u, err := url.Parse(strings.ReplaceAll(l, "{org}", "org")); err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
			add("%s=%q is not an http(s) URL (\"{org}\" stands for the organisation id)", name, l)
		}
	}
	return errors.Join(errs...)
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// NotifyConfig is the notify.Config of these settings.
func (n Notifier) NotifyConfig() notify.Config {
	topo := notify.DefaultTopology()
	topo.Replicas = n.Replicas
	var smtp *notify.SMTPConfig
	if n.SMTP.Addr != "" {
		smtp = &notify.SMTPConfig{Addr: n.SMTP.Addr, TLS: n.SMTP.TLS, Username: n.SMTP.Username, Password: n.SMTP.Password,
			From: n.SMTP.From, HeloName: n.SMTP.HeloName}
	}
	return notify.Config{Topology: topo, Workers: n.Workers, PerOrg: n.PerOrg, MaxAttempts: n.MaxAttempts,
		BackoffMin: time.Duration(n.BackoffMin), BackoffMax: time.Duration(n.BackoffMax),
		WebhookTimeout: time.Duration(n.WebhookTimeout), MailTimeout: time.Duration(n.MailTimeout), SMTP: smtp,
		Links: notify.Links{Seats: n.Links.Seats, RoleReviews: n.Links.RoleReviews, Connections: n.Links.Connections, Logins: n.Links.Logins,
			Signups: n.Links.Signups},
		DrainTimeout: time.Duration(n.DrainTimeout), HealthAddr: n.HealthAddr}
}

// String is safe to log: no secrets.
func (n Notifier) String() string {
	return fmt.Sprintf("database_url=%q nats_url=%q organizations_file=%q workers=%d per_org=%d max_attempts=%d backoff=%s..%s smtp_addr=%q smtp_tls=%q smtp_user=%q replicas=%d",
		redactDatabaseURL(n.DatabaseURL), redactNATSList(n.NATSURL), n.OrganizationsFile, n.Workers, n.PerOrg, n.MaxAttempts,
		time.Duration(n.BackoffMin), time.Duration(n.BackoffMax), n.SMTP.Addr, n.SMTP.TLS, n.SMTP.Username, n.Replicas)
}
