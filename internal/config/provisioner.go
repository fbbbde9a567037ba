package config

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/jitprov/jitprov/internal/bus"
)

// Provisioner is the provisioner service's configuration. LoadProvisioner
// reads it from an optional YAML file, then applies the JITPROV_*
// environment variables, fills defaults and validates it once.
type Provisioner struct {
	// DatabaseURL is the Postgres connection string (postgres:// URL or
	// key=value form). Env JITPROV_DATABASE_URL; required.
	DatabaseURL string `yaml:"database_url"`
	// NATSURL is the NATS server URL, or a comma-separated list of them.
	// Env JITPROV_NATS_URL; default nats://127.0.0.1:4222.
	NATSURL string `yaml:"nats_url"`
	// NATSCredentials is the path of a NATS .creds file (JWT and NKey
	// seed). Env JITPROV_NATS_CREDENTIALS; optional.
	NATSCredentials string `yaml:"nats_credentials"`
	// Workers is how many logins one replica decides at once. Env
	// JITPROV_WORKERS; default 16; 1 to 1024.
	Workers int `yaml:"workers"`
	// MaxBatch bounds the logins a worker decides together, in one
	// transaction, out of those in hand (it never waits for more). Env
	// JITPROV_MAX_BATCH; default 32; 1 (each login on its own) to 1024.
	MaxBatch int `yaml:"max_batch"`
	// DecisionTimeout bounds one decision, database included; default 10s.
	// It must be shorter than Streams.AckWait.
	DecisionTimeout Duration `yaml:"decision_timeout"`
	// DrainTimeout bounds shutdown; default 25s.
	DrainTimeout Duration `yaml:"drain_timeout"`
	// DBLockTimeout bounds a wait for a row lock (an organisation's seat
	// row): a login waiting longer is handed back and retried; default 2s.
	DBLockTimeout Duration `yaml:"db_lock_timeout"`
	// DBStatementTimeout bounds one SQL statement; default 5s.
	DBStatementTimeout Duration `yaml:"db_statement_timeout"`
	// DBIdleInTransactionTimeout ends the database session of a replica
	// that stops in the middle of a decision (frozen, partitioned), which
	// releases the locks it held; default 5s. All three are set on each
	// decision transaction (SET LOCAL); 0 keeps the session's setting.
	DBIdleInTransactionTimeout Duration `yaml:"db_idle_in_transaction_timeout"`
	// HealthAddr is the listen address of the health endpoints. Env
	// JITPROV_HEALTH_ADDR; default ":8081"; "" disables them.
	HealthAddr string `yaml:"health_addr"`
	// LogLevel is debug, info, warn or error. Env JITPROV_LOG_LEVEL;
	// default info.
	LogLevel string `yaml:"log_level"`
	// LogFormat is json or text. Env JITPROV_LOG_FORMAT; default json.
	LogFormat string `yaml:"log_format"`
	// InactiveSweep is how often the provisioner suspends the people who
	// did not sign in for their organisation's inactive_after (at most
	// provisioner.InactivePerSweep a run); "off" never. Env
	// JITPROV_PROVISIONER_INACTIVE_SWEEP; default 1h; at least 1m; 0
	// (left unset by a program building the configuration) is off.
	InactiveSweep DurationOrOff `yaml:"inactive_sweep"`
	Streams       Streams       `yaml:"streams"`
}

// Streams sizes the JetStream streams and the provisioner consumer (see
// bus.Topology). A zero field means bus.DefaultTopology's value.
type Streams struct {
	// Replicas per stream: 1, 3 or 5. Env JITPROV_STREAM_REPLICAS;
	// default 1.
	Replicas        int      `yaml:"replicas"`
	LoginsMaxAge    Duration `yaml:"logins_max_age"`
	LoginsMaxBytes  int64    `yaml:"logins_max_bytes"`
	LoginsMaxPerOrg int64    `yaml:"logins_max_per_org"`
	EventsMaxAge    Duration `yaml:"events_max_age"`
	DuplicateWindow Duration `yaml:"duplicate_window"`
	AckWait         Duration `yaml:"ack_wait"`
	MaxDeliver      int      `yaml:"max_deliver"`
	MaxAckPending   int      `yaml:"max_ack_pending"`
}

// Duration is a time.Duration that YAML reads from strings like "30s",
// "24h".
type Duration time.Duration

// UnmarshalYAML reads a Go duration string such as "1m30s".
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		if v, err := time.ParseDuration(strings.TrimSpace(n.Value)); err == nil {
			*d = Duration(v)
			return nil
		}
	}
	// In yaml.v3's own words, so that it is reported like any type error.
	value := ""
	if n.Kind == yaml.ScalarNode {
		value = n.Value
		if len(value) > 10 {
			value = value[:7] + "..."
		}
		value = " `" + value + "`"
	}
	return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: cannot unmarshal %s%s into config.Duration", n.Line, n.ShortTag(), value)}}
}

// Topology converts s to a bus.Topology; a zero field takes the value of
// bus.DefaultTopology.
func (s Streams) Topology() bus.Topology {
	t := bus.DefaultTopology()
	set := func(dst *time.Duration, v Duration) {
		if v != 0 {
			*dst = time.Duration(v)
		}
	}
	if s.Replicas != 0 {
		t.Replicas = s.Replicas
	}
	set(&t.LoginsMaxAge, s.LoginsMaxAge)
	if s.LoginsMaxBytes != 0 {
		t.LoginsMaxBytes = s.LoginsMaxBytes
	}
	if s.LoginsMaxPerOrg != 0 {
		t.LoginsMaxPerOrg = s.LoginsMaxPerOrg
	}
	set(&t.EventsMaxAge, s.EventsMaxAge)
	set(&t.DuplicateWindow, s.DuplicateWindow)
	set(&t.AckWait, s.AckWait)
	if s.MaxDeliver != 0 {
		t.MaxDeliver = s.MaxDeliver
	}
	if s.MaxAckPending != 0 {
		t.MaxAckPending = s.MaxAckPending
	}
	return t
}

func streamsOf(t bus.Topology) Streams {
	return Streams{
		Replicas:        t.Replicas,
		LoginsMaxAge:    Duration(t.LoginsMaxAge),
		LoginsMaxBytes:  t.LoginsMaxBytes,
		LoginsMaxPerOrg: t.LoginsMaxPerOrg,
		EventsMaxAge:    Duration(t.EventsMaxAge),
		DuplicateWindow: Duration(t.DuplicateWindow),
		AckWait:         Duration(t.AckWait),
		MaxDeliver:      t.MaxDeliver,
		MaxAckPending:   t.MaxAckPending,
	}
}

// InactiveSweepInterval is InactiveSweep as provisioner.Config takes it:
// 0 when off.
func (p Provisioner) InactiveSweepInterval() time.Duration {
	if p.InactiveSweep <= 0 {
		return 0
	}
	return time.Duration(p.InactiveSweep)
}

// Environment variables read by LoadProvisioner.
const (
	envDatabaseURL     = "JITPROV_DATABASE_URL"
	envNATSURL         = "JITPROV_NATS_URL"
	envNATSCredentials = "JITPROV_NATS_CREDENTIALS"
	envWorkers         = "JITPROV_WORKERS"
	envMaxBatch        = "JITPROV_MAX_BATCH"
	envHealthAddr      = "JITPROV_HEALTH_ADDR"
	envLogLevel        = "JITPROV_LOG_LEVEL"
	envLogFormat       = "JITPROV_LOG_FORMAT"
	envStreamReplicas  = "JITPROV_STREAM_REPLICAS"
	envInactiveSweep   = "JITPROV_PROVISIONER_INACTIVE_SWEEP"
)

// envOf names the variable overriding each setting.
var envOf = map[string]string{
	"database_url":     envDatabaseURL,
	"nats_url":         envNATSURL,
	"nats_credentials": envNATSCredentials,
	"workers":          envWorkers,
	"max_batch":        envMaxBatch,
	"health_addr":      envHealthAddr,
	"log_level":        envLogLevel,
	"log_format":       envLogFormat,
	"streams.replicas": envStreamReplicas,
	"inactive_sweep":   envInactiveSweep,
}

func defaultProvisioner() Provisioner {
	return Provisioner{
		NATSURL:         "nats://127.0.0.1:4222",
		Workers:         16,
		MaxBatch:        32,
		DecisionTimeout: Duration(10 * time.Second),
		DrainTimeout:    Duration(25 * time.Second),
		HealthAddr:      ":8081",
		// A healthy decision holds a lock for milliseconds and is never idle
		// in its transaction for longer; these bound what a stuck replica
		// costs the others.
		DBLockTimeout:              Duration(2 * time.Second),
		DBStatementTimeout:         Duration(5 * time.Second),
		DBIdleInTransactionTimeout: Duration(5 * time.Second),
		LogLevel:                   "info",
		LogFormat:                  "json",
		InactiveSweep:              DurationOrOff(time.Hour),
		Streams:                    streamsOf(bus.DefaultTopology()),
	}
}

// LoadProvisioner reads path ("" = no file, defaults only), applies env
// overrides read through getenv (pass os.Getenv in main, a map lookup in
// tests), fills defaults, and validates.
//
// A nil getenv reads no variables. An empty variable counts as unset, and
// surrounding spaces are trimmed. Settings the file leaves out keep
// their defaults; a stream setting of 0 means its default too. Errors name
// where the offending value came from: the file and line, or the variable.
func LoadProvisioner(path string, getenv func(string) string) (Provisioner, error) {
	p := defaultProvisioner()
	source := map[string]string{} // setting → where its value came from
	var errs []error
	d := &document{file: path}
	if path != "" {
		data, err := os.ReadFile(path)
		if err != nil {
			return Provisioner{}, fmt.Errorf("read the provisioner configuration: %w", err)
		}
		if d, err = parseDocument(path, data); err != nil {
			return Provisioner{}, err
		}
		if d.root != nil {
			d.decode(data, &p)
			for _, key := range []string{"workers", "max_batch", "streams.replicas", "streams.logins_max_bytes", "streams.logins_max_per_org", "streams.max_deliver", "streams.max_ack_pending"} {
				d.requireInt(key)
			}
			if err := joinSorted(d.errs); err != nil {
				errs = append(errs, err)
			}
			for _, e := range d.entries {
				source[e.path] = fmt.Sprintf("%s:%d", path, e.line)
			}
		}
	}
	if getenv == nil {
		getenv = func(string) string { return "" }
	}
	errs = append(errs, p.applyEnv(getenv, source)...)
	p.Streams = streamsOf(p.Streams.Topology())

	for _, pe := range p.problems() {
		if d.isBroken(pe.key) && !strings.Contains(source[pe.key], "JITPROV_") {
			continue // already reported: the file's value could not be read
		}
		if src, ok := source[pe.key]; ok {
			errs = append(errs, fmt.Errorf("%s: %w", src, pe))
		} else {
			errs = append(errs, pe)
		}
	}
	if len(errs) > 0 {
		return Provisioner{}, errors.Join(errs...)
	}
	return p, nil
}

// applyEnv overrides p with the set variables, recording their names in
// source. It returns the variables it could not read.
func (p *Provisioner) applyEnv(getenv func(string) string, source map[string]string) []error {
	var errs []error
	str := func(key string, dst *string) {
		name := envOf[key]
		if v := strings.TrimSpace(getenv(name)); v != "" {
			*dst = v
			source[key] = name
		}
	}
	num := func(key string, dst *int) {
		name := envOf[key]
		v := strings.TrimSpace(getenv(name))
		if v == "" {
			return
		}
		n, err := strconv.Atoi(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s=%q: not a whole number", name, v))
			return
		}
		*dst = n
		source[key] = name
	}
	str("database_url", &p.DatabaseURL)
	str("nats_url", &p.NATSURL)
	str("nats_credentials", &p.NATSCredentials)
	num("workers", &p.Workers)
	num("max_batch", &p.MaxBatch)
	str("health_addr", &p.HealthAddr)
	str("log_level", &p.LogLevel)
	str("log_format", &p.LogFormat)
	num("streams.replicas", &p.Streams.Replicas)
	if v := strings.TrimSpace(getenv(envInactiveSweep)); v != "" {
		d, err := parseDurationOrOff(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s=%q: not a duration such as 1h, or off", envInactiveSweep, v))
		} else {
			p.InactiveSweep = d
			source["inactive_sweep"] = envInactiveSweep
		}
	}
	return errs
}

// problem is a setting that cannot work.
type problem struct {
	key string // the YAML key, e.g. "streams.ack_wait"
	msg string
}

func (e *problem) Error() string { return e.key + ": " + e.msg }

// Validate reports every setting that cannot work, one per line.
func (p Provisioner) Validate() error {
	probs := p.problems()
	errs := make([]error, len(probs))
	for i, pe := range probs {
		errs[i] = pe
	}
	return errors.Join(errs...)
}

var (
	logLevels  = []string{"debug", "info", "warn", "error"}
	logFormats = []string{"json", "text"}
	natsScheme = []string{"nats", "tls", "ws", "wss"}
)

func (p Provisioner) problems() []*problem {
	var out []*problem
	add := func(key, format string, args ...any) {
		out = append(out, &problem{key: key, msg: fmt.Sprintf(format, args...)})
	}

	switch db := p.DatabaseURL; {
	case db == "":
		add("database_url", "required: the Postgres connection URL, e.g. postgres://jitprov:PASSWORD@db:5432/jitprov (or set %s)", envDatabaseURL)
	case strings.Contains(db, "://"):
		u, err := url.Parse(db)
		if err != nil {
			// The value is not shown: it may hold a password.
			var ue *url.Error
			if errors.As(err, &ue) {
				err = ue.Err
			}
			add("database_url", "not a valid URL (%v)", err)
		} else if u.Scheme != "postgres" && u.Scheme != "postgresql" {
			add("database_url", "scheme %q is not postgres:// or postgresql://", u.Scheme)
		}
	case !strings.Contains(db, "="):
		add("database_url", "neither a postgres:// URL nor a key=value connection string such as \"host=db user=jitprov dbname=jitprov\"")
	}

	if strings.TrimSpace(p.NATSURL) == "" {
		add("nats_url", "required: the NATS server URL, e.g. nats://nats:4222, or several separated by commas")
	} else {
		for s := range strings.SplitSeq(p.NATSURL, ",") {
			s = strings.TrimSpace(s)
			raw := s
			if !strings.Contains(s, "://") {
				s = "nats://" + s
			}
			u, err := url.Parse(s)
			switch {
			case raw == "":
				add("nats_url", "has an empty entry in its comma-separated list")
			case err != nil:
				var ue *url.Error
				if errors.As(err, &ue) {
					err = ue.Err
				}
				add("nats_url", "%q is not a valid URL (%v)", redactNATS(raw), err)
			case !slices.Contains(natsScheme, u.Scheme):
				add("nats_url", "scheme %q of %q is not one of nats, tls, ws, wss", u.Scheme, redactNATS(raw))
			case u.Hostname() == "":
				add("nats_url", "%q names no host", redactNATS(raw))
			}
		}
	}

	if p.NATSCredentials != "" {
		if fi, err := os.Stat(p.NATSCredentials); err != nil {
			add("nats_credentials", "cannot use the credentials file: %v", err)
		} else if fi.IsDir() {
			add("nats_credentials", "%s is a directory, not a .creds file", p.NATSCredentials)
		}
	}

	if p.Workers < 1 || p.Workers > 1024 {
		add("workers", "must be between 1 and 1024, got %d", p.Workers)
	}
	if p.MaxBatch < 1 || p.MaxBatch > 1024 {
		add("max_batch", "must be between 1 and 1024, got %d", p.MaxBatch)
	}
	if p.DecisionTimeout <= 0 {
		add("decision_timeout", "must be positive, got %s", time.Duration(p.DecisionTimeout))
	}
	if p.DrainTimeout <= 0 {
		add("drain_timeout", "must be positive, got %s", time.Duration(p.DrainTimeout))
	}
	for _, d := range []struct {
		key string
		v   Duration
	}{{"db_lock_timeout", p.DBLockTimeout}, {"db_statement_timeout", p.DBStatementTimeout}, {"db_idle_in_transaction_timeout", p.DBIdleInTransactionTimeout}} {
		switch {
		case d.v < 0:
			add(d.key, "must be positive (or 0 for the server's setting), got %s", time.Duration(d.v))
		case d.v > 0 && d.v < Duration(100*time.Millisecond):
			add(d.key, "%s is too short for a healthy decision; use at least 100ms", time.Duration(d.v))
		}
	}
	if p.DBLockTimeout > 0 && p.DBStatementTimeout > 0 && p.DBLockTimeout > p.DBStatementTimeout {
		add("db_lock_timeout", "%s is longer than db_statement_timeout (%s), which would end the wait first; make it shorter",
			time.Duration(p.DBLockTimeout), time.Duration(p.DBStatementTimeout))
	}
	if p.DBStatementTimeout > 0 && p.DecisionTimeout > 0 && p.DBStatementTimeout > p.DecisionTimeout {
		add("db_statement_timeout", "%s is longer than decision_timeout (%s), which bounds the whole decision; make it shorter",
			time.Duration(p.DBStatementTimeout), time.Duration(p.DecisionTimeout))
	}
	if p.HealthAddr != "" {
		_, port, err := net.SplitHostPort(p.HealthAddr)
		if err != nil {
			add("health_addr", "%q is not a listen address such as \":8081\" or \"0.0.0.0:8081\" (%v); \"\" disables the health endpoints", p.HealthAddr, strings.TrimPrefix(err.Error(), "address "+p.HealthAddr+": "))
		} else if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
			add("health_addr", "port %q of %q is not a number from 0 to 65535", port, p.HealthAddr)
		}
	}
	if !slices.Contains(logLevels, p.LogLevel) {
		add("log_level", "%q is not one of debug, info, warn, error", p.LogLevel)
	}
	if !slices.Contains(logFormats, p.LogFormat) {
		add("log_format", "%q is not one of json, text", p.LogFormat)
	}

	if p.InactiveSweep > 0 && p.InactiveSweep < DurationOrOff(time.Minute) {
		add("inactive_sweep", "%s is too often: the sweep reads every organisation's users; give at least 1m, such as 1h, or off", time.Duration(p.InactiveSweep))
	}

	streamProblems := p.Streams.problems()
	out = append(out, streamProblems...)

	if ack := p.Streams.Topology().AckWait; len(streamProblems) == 0 && p.DecisionTimeout > 0 && time.Duration(p.DecisionTimeout) >= ack {
		add("decision_timeout", "%s is not shorter than streams.ack_wait (%s): JetStream would hand a login to another replica while this one is still deciding it; lower decision_timeout or raise streams.ack_wait",
			time.Duration(p.DecisionTimeout), ack)
	}
	return out
}

// problems checks each stream setting, then the topology as a whole.
func (s Streams) problems() []*problem {
	var out []*problem
	add := func(key, format string, args ...any) {
		out = append(out, &problem{key: "streams." + key, msg: fmt.Sprintf(format, args...)})
	}
	if s.Replicas != 0 && s.Replicas != 1 && s.Replicas != 3 && s.Replicas != 5 {
		add("replicas", "must be 1 (a single server), 3 or 5 (a cluster), got %d", s.Replicas)
	}
	durations := []struct {
		key string
		v   Duration
	}{{"logins_max_age", s.LoginsMaxAge}, {"events_max_age", s.EventsMaxAge}, {"duplicate_window", s.DuplicateWindow}, {"ack_wait", s.AckWait}}
	for _, d := range durations {
		if d.v < 0 {
			add(d.key, "must be positive, got %s", time.Duration(d.v))
		}
	}
	if s.LoginsMaxBytes < 0 {
		add("logins_max_bytes", "must be positive, got %d", s.LoginsMaxBytes)
	}
	if s.LoginsMaxPerOrg < 0 {
		add("logins_max_per_org", "must be positive, got %d", s.LoginsMaxPerOrg)
	}
	if s.AckWait > 0 && s.AckWait < Duration(time.Second) {
		add("ack_wait", "must be at least 1s, got %s", time.Duration(s.AckWait))
	}
	if s.MaxDeliver < 0 || s.MaxDeliver == 1 {
		add("max_deliver", "must be at least 2 (one delivery and one retry), got %d", s.MaxDeliver)
	}
	if s.MaxAckPending < 0 {
		add("max_ack_pending", "must be positive, got %d", s.MaxAckPending)
	}
	if len(out) > 0 {
		return out
	}
	t := s.Topology()
	if t.DuplicateWindow > t.LoginsMaxAge || t.DuplicateWindow > t.EventsMaxAge {
		add("duplicate_window", "%s is longer than the streams keep messages (logins_max_age %s, events_max_age %s); make it no longer than both",
			t.DuplicateWindow, t.LoginsMaxAge, t.EventsMaxAge)
		return out
	}
	if err := t.Validate(); err != nil {
		out = append(out, &problem{key: "streams", msg: err.Error()})
	}
	return out
}

// String describes p for a log line: the database URL's password and any
// NATS URL credentials are redacted.
func (p Provisioner) String() string {
	var b strings.Builder
	kv := func(k string, v any) {
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		if s, ok := v.(string); ok {
			v = strconv.Quote(s)
		}
		fmt.Fprintf(&b, "%s=%v", k, v)
	}
	kv("database_url", redactDatabaseURL(p.DatabaseURL))
	kv("nats_url", redactNATSList(p.NATSURL))
	kv("nats_credentials", p.NATSCredentials)
	kv("workers", p.Workers)
	kv("max_batch", p.MaxBatch)
	kv("decision_timeout", time.Duration(p.DecisionTimeout))
	kv("drain_timeout", time.Duration(p.DrainTimeout))
	kv("db_lock_timeout", time.Duration(p.DBLockTimeout))
	kv("db_statement_timeout", time.Duration(p.DBStatementTimeout))
	kv("db_idle_in_transaction_timeout", time.Duration(p.DBIdleInTransactionTimeout))
	kv("health_addr", p.HealthAddr)
	kv("log_level", p.LogLevel)
	kv("log_format", p.LogFormat)
	kv("inactive_sweep", p.InactiveSweep.String())
	s := p.Streams
	kv("streams.replicas", s.Replicas)
	kv("streams.logins_max_age", time.Duration(s.LoginsMaxAge))
	kv("streams.logins_max_bytes", s.LoginsMaxBytes)
	kv("streams.logins_max_per_org", s.LoginsMaxPerOrg)
	kv("streams.events_max_age", time.Duration(s.EventsMaxAge))
	kv("streams.duplicate_window", time.Duration(s.DuplicateWindow))
	kv("streams.ack_wait", time.Duration(s.AckWait))
	kv("streams.max_deliver", s.MaxDeliver)
	kv("streams.max_ack_pending", s.MaxAckPending)
	return b.String()
}

const redacted = "xxxxx"

// dsnPassword matches password (and sslpassword) in a key=value
// connection string, quoted or not.
var dsnPassword = regexp.MustCompile(`(?i)(\b(?:ssl)?password\s*=\s*)('(?:[^'\\]|\\.)*'|\S*)`)

// redactDatabaseURL hides the password of a postgres:// URL (user info
// and password query parameters) or key=value connection string.
func redactDatabaseURL(s string) string {
	if s == "" {
		return ""
	}
	if !strings.Contains(s, "://") {
		return dsnPassword.ReplaceAllString(s, "${1}"+redacted)
	}
	u, err := url.Parse(s)
	if err != nil {
		return "(not shown: not a valid URL)"
	}
	q := u.Query()
	changed := false
	for k := range q {
		if strings.Contains(strings.ToLower(k), "password") {
			q.Set(k, redacted)
			changed = true
		}
	}
	if changed {
		u.RawQuery = q.Encode()
	}
	return u.Redacted()
}

func redactNATSList(s string) string {
	parts := strings.Split(s, ",")
	for i, part := range parts {
		parts[i] = redactNATS(strings.TrimSpace(part))
	}
	return strings.Join(parts, ",")
}

// redactNATS hides the password of a NATS URL, and a lone user part,
// which NATS reads as a token.
func redactNATS(s string) string {
	if !strings.Contains(s, "@") {
		return s
	}
	u, err := url.Parse(s)
	if err != nil || u.User == nil {
		if i := strings.LastIndexByte(s, '@'); i >= 0 {
			if j := strings.Index(s, "://"); j >= 0 && j < i {
				return s[:j+3] + redacted + s[i:]
			}
			return redacted + s[i:]
		}
		return s
	}
	if _, hasPassword := u.User.Password(); hasPassword {
		return u.Redacted()
	}
	u.User = url.User(redacted)
	return u.String()
}
