package config

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/jitprov/jitprov/internal/bus"
)

// env returns a getenv reading m.
func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

// writeFile writes data to provisioner.yaml in a temporary directory.
func writeFile(t *testing.T, data string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "provisioner.yaml")
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestLoadProvisionerDefaults(t *testing.T) {
	got, err := LoadProvisioner("", env(map[string]string{"JITPROV_DATABASE_URL": "postgres://jitprov@db/jitprov"}))
	if err != nil {
		t.Fatal(err)
	}
	want := Provisioner{
		DatabaseURL:                "postgres://jitprov@db/jitprov",
		NATSURL:                    "nats://127.0.0.1:4222",
		Workers:                    16,
		MaxBatch:                   32,
		DecisionTimeout:            Duration(10 * time.Second),
		DrainTimeout:               Duration(25 * time.Second),
		HealthAddr:                 ":8081",
		LogLevel:                   "info",
		LogFormat:                  "json",
		DBLockTimeout:              Duration(2 * time.Second),
		DBStatementTimeout:         Duration(5 * time.Second),
		DBIdleInTransactionTimeout: Duration(5 * time.Second),
		InactiveSweep:              DurationOrOff(time.Hour),
		Streams: Streams{
			Replicas:        1,
			LoginsMaxAge:    Duration(24 * time.Hour),
			LoginsMaxBytes:  1 << 30,
			LoginsMaxPerOrg: 100_000,
			EventsMaxAge:    Duration(7 * 24 * time.Hour),
			DuplicateWindow: Duration(2 * time.Hour),
			AckWait:         Duration(30 * time.Second),
			MaxDeliver:      240,
			MaxAckPending:   2048,
		},
	}
	if got != want {
		t.Errorf("defaults:\n got %+v\nwant %+v", got, want)
	}
	if got.Streams.Topology() != bus.DefaultTopology() {
		t.Errorf("default streams give topology %+v, want bus.DefaultTopology()", got.Streams.Topology())
	}
	// A minimal file is the same as no file.
	fromFile, err := LoadProvisioner("testdata/provisioner-minimal.yaml", nil)
	if err != nil {
		t.Fatal(err)
	}
	want.DatabaseURL = "postgres://jitprov@localhost/jitprov"
	if fromFile != want {
		t.Errorf("minimal file:\n got %+v\nwant %+v", fromFile, want)
	}
}

var fullFile = Provisioner{
	DatabaseURL:                "postgres://jitprov:s3cret@db.internal:5432/jitprov?sslmode=verify-full",
	NATSURL:                    "nats://nats-0.nats:4222,nats://nats-1.nats:4222,nats://nats-2.nats:4222",
	NATSCredentials:            "testdata/jitprov.creds",
	Workers:                    32,
	MaxBatch:                   32,
	DecisionTimeout:            Duration(8 * time.Second),
	DrainTimeout:               Duration(40 * time.Second),
	HealthAddr:                 "0.0.0.0:9090",
	LogLevel:                   "debug",
	LogFormat:                  "text",
	DBLockTimeout:              Duration(time.Second),
	DBStatementTimeout:         Duration(4 * time.Second),
	DBIdleInTransactionTimeout: Duration(20 * time.Second),
	InactiveSweep:              DurationOrOff(30 * time.Minute),
	Streams: Streams{
		Replicas:        3,
		LoginsMaxAge:    Duration(12 * time.Hour),
		LoginsMaxBytes:  512 << 20,
		LoginsMaxPerOrg: 5000,
		EventsMaxAge:    Duration(14 * 24 * time.Hour),
		DuplicateWindow: Duration(time.Hour),
		AckWait:         Duration(20 * time.Second),
		MaxDeliver:      5,
		MaxAckPending:   512,
	},
}

func TestLoadProvisionerFile(t *testing.T) {
	got, err := LoadProvisioner("testdata/provisioner-full.yaml", env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if got != fullFile {
		t.Errorf("got  %+v\nwant %+v", got, fullFile)
	}
	wantTopology := bus.Topology{Replicas: 3, LoginsMaxAge: 12 * time.Hour, LoginsMaxBytes: 512 << 20, LoginsMaxPerOrg: 5000,
		EventsMaxAge: 14 * 24 * time.Hour, DuplicateWindow: time.Hour, AckWait: 20 * time.Second, MaxDeliver: 5, MaxAckPending: 512}
	if got.Streams.Topology() != wantTopology {
		t.Errorf("topology %+v, want %+v", got.Streams.Topology(), wantTopology)
	}
}

func TestLoadProvisionerEnvOverridesFile(t *testing.T) {
	got, err := LoadProvisioner("testdata/provisioner-full.yaml", env(map[string]string{
		"JITPROV_DATABASE_URL":     "postgres://other@db2/jitprov",
		"JITPROV_NATS_URL":         "nats://nats:4222",
		"JITPROV_NATS_CREDENTIALS": "testdata/provisioner-minimal.yaml",
		"JITPROV_WORKERS":          " 4 ",
		"JITPROV_HEALTH_ADDR":      ":9999",
		"JITPROV_LOG_LEVEL":        "warn",
		"JITPROV_LOG_FORMAT":       "json",
		"JITPROV_STREAM_REPLICAS":  "5",
		"JITPROV_UNRELATED":        "x",
	}))
	if err != nil {
		t.Fatal(err)
	}
	want := fullFile
	want.DatabaseURL = "postgres://other@db2/jitprov"
	want.NATSURL = "nats://nats:4222"
	want.NATSCredentials = "testdata/provisioner-minimal.yaml"
	want.Workers = 4
	want.HealthAddr = ":9999"
	want.LogLevel = "warn"
	want.LogFormat = "json"
	want.Streams.Replicas = 5
	if got != want {
		t.Errorf("got  %+v\nwant %+v", got, want)
	}
}

func TestLoadProvisionerStreamZeroMeansDefault(t *testing.T) {
	path := writeFile(t, "database_url: postgres://db/jitprov\nstreams:\n  replicas: 3\n  max_deliver: 0\n")
	got, err := LoadProvisioner(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := bus.DefaultTopology()
	want.Replicas = 3
	if got.Streams.Topology() != want || got.Streams.MaxDeliver != want.MaxDeliver {
		t.Errorf("got %+v, want %+v", got.Streams, want)
	}
}

func TestLoadProvisionerErrors(t *testing.T) {
	const db = "database_url: postgres://db/jitprov\n"
	tests := []struct {
		name string
		file string // "" for no file
		env  map[string]string
		want []string // each must appear in the error, in this order
	}{
		{"no database_url", "", nil, []string{"database_url: required"}},
		{"workers not a number", db, map[string]string{"JITPROV_WORKERS": "abc"}, []string{`JITPROV_WORKERS="abc": not a whole number`}},
		{"replicas not a number", db, map[string]string{"JITPROV_STREAM_REPLICAS": "three"}, []string{`JITPROV_STREAM_REPLICAS="three": not a whole number`}},
		{"workers out of range from env", db, map[string]string{"JITPROV_WORKERS": "0"}, []string{`JITPROV_WORKERS: workers: must be between 1 and 1024, got 0`}},
		{"replicas from env", db, map[string]string{"JITPROV_STREAM_REPLICAS": "2"}, []string{`JITPROV_STREAM_REPLICAS: streams.replicas: must be 1 (a single server), 3 or 5 (a cluster), got 2`}},
		{"log level from env", db, map[string]string{"JITPROV_LOG_LEVEL": "trace"}, []string{`JITPROV_LOG_LEVEL: log_level: "trace" is not one of debug, info, warn, error`}},
		{"workers out of range in file", db + "workers: 2000\n", nil, []string{`provisioner.yaml:2: workers: must be between 1 and 1024, got 2000`}},
		{"unknown field", db + "worker: 3\n", nil, []string{`provisioner.yaml:2: unknown field "worker"; did you mean "workers"? (known fields: database_url, nats_url,`}},
		{"unknown stream field", db + "streams:\n  replica: 3\n", nil, []string{`provisioner.yaml:3: streams: unknown field "replica"; did you mean "replicas"? (known fields: replicas, logins_max_age,`}},
		{"duration without unit", db + "decision_timeout: 10\n", nil, []string{`provisioner.yaml:2: decision_timeout: expected a duration such as "500ms", "30s", "5m" or "24h", got 10`}},
		{"duration not a duration", db + "streams:\n  ack_wait: soon\n", nil, []string{`provisioner.yaml:3: streams.ack_wait: expected a duration such as "500ms", "30s", "5m" or "24h", got "soon"`}},
		{"workers not a number in file", db + "workers: many\n", nil, []string{`provisioner.yaml:2: workers: expected a whole number, got "many"`}},
		{"workers a fraction", db + "workers: 2.5\n", nil, []string{`provisioner.yaml:2: workers: expected a whole number, got 2.5`}},
		{"syntax error", db + "workers: [1\n", nil, []string{`provisioner.yaml:2: invalid YAML: did not find expected ',' or ']'`}},
		{"decision timeout not below ack wait", db + "decision_timeout: 1m\n", nil, []string{`provisioner.yaml:2: decision_timeout: 1m0s is not shorter than streams.ack_wait (30s)`}},
		{"duplicate window too long", db + "streams:\n  duplicate_window: 48h\n", nil, []string{`provisioner.yaml:3: streams.duplicate_window: 48h0m0s is longer than the streams keep messages`}},
		{"inactive sweep not a duration", db, map[string]string{"JITPROV_PROVISIONER_INACTIVE_SWEEP": "hourly"}, []string{`JITPROV_PROVISIONER_INACTIVE_SWEEP="hourly": not a duration such as 1h, or off`}},
		{"inactive sweep too often", db + "inactive_sweep: 10s\n", nil, []string{`provisioner.yaml:2: inactive_sweep: 10s is too often`}},
		{"inactive sweep too often from env", db, map[string]string{"JITPROV_PROVISIONER_INACTIVE_SWEEP": "5s"}, []string{`JITPROV_PROVISIONER_INACTIVE_SWEEP: inactive_sweep: 5s is too often`}},
		{"all at once", db + "workers: 0\nlog_level: loud\nlog_format: xml\nhealth_addr: localhost\n", map[string]string{"JITPROV_STREAM_REPLICAS": "x"},
			[]string{
				`JITPROV_STREAM_REPLICAS="x": not a whole number`,
				`provisioner.yaml:2: workers: must be between 1 and 1024, got 0`,
				`provisioner.yaml:5: health_addr: "localhost" is not a listen address`,
				`provisioner.yaml:3: log_level: "loud" is not one of debug, info, warn, error`,
				`provisioner.yaml:4: log_format: "xml" is not one of json, text`,
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := ""
			if tt.file != "" {
				path = writeFile(t, tt.file)
			}
			p, err := LoadProvisioner(path, env(tt.env))
			if err == nil {
				t.Fatalf("no error; got %v", p)
			}
			if p != (Provisioner{}) {
				t.Errorf("got a configuration with the error: %v", p)
			}
			msg, rest := err.Error(), err.Error()
			for _, w := range tt.want {
				i := strings.Index(rest, w)
				if i < 0 {
					t.Fatalf("error does not contain (in order)\n  %s\ngot:\n%s", w, msg)
				}
				rest = rest[i+len(w):]
			}
		})
	}
}

func TestLoadProvisionerMissingFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "missing.yaml")
	if _, err := LoadProvisioner(path, nil); err == nil || !strings.Contains(err.Error(), path) {
		t.Errorf("got %v, want an error naming %s", err, path)
	}
}

func TestProvisionerValidate(t *testing.T) {
	valid := fullFile
	if err := valid.Validate(); err != nil {
		t.Fatalf("valid configuration: %v", err)
	}
	tests := []struct {
		name   string
		change func(*Provisioner)
		want   string
	}{
		{"workers 0", func(p *Provisioner) { p.Workers = 0 }, "workers: must be between 1 and 1024, got 0"},
		{"workers too many", func(p *Provisioner) { p.Workers = 1025 }, "workers: must be between 1 and 1024, got 1025"},
		{"max_batch 0", func(p *Provisioner) { p.MaxBatch = 0 }, "max_batch: must be between 1 and 1024, got 0"},
		{"max_batch too many", func(p *Provisioner) { p.MaxBatch = 1025 }, "max_batch: must be between 1 and 1024, got 1025"},
		{"database_url missing", func(p *Provisioner) { p.DatabaseURL = "" }, "database_url: required: the Postgres connection URL"},
		{"database_url not postgres", func(p *Provisioner) { p.DatabaseURL = "mysql://u:pw@db/x" }, `database_url: scheme "mysql" is not postgres:// or postgresql://`},
		{"database_url garbage", func(p *Provisioner) { p.DatabaseURL = "db.internal" }, "database_url: neither a postgres:// URL nor a key=value connection string"},
		{"database_url bad URL hides password", func(p *Provisioner) { p.DatabaseURL = "postgres://u:hunter2@db:port/x" }, `database_url: not a valid URL (invalid port ":port" after host)`},
		{"log level", func(p *Provisioner) { p.LogLevel = "verbose" }, `log_level: "verbose" is not one of debug, info, warn, error`},
		{"log format", func(p *Provisioner) { p.LogFormat = "logfmt" }, `log_format: "logfmt" is not one of json, text`},
		{"nats_url missing", func(p *Provisioner) { p.NATSURL = "" }, "nats_url: required"},
		{"nats_url scheme", func(p *Provisioner) { p.NATSURL = "http://user:pw@nats:4222" }, `nats_url: scheme "http" of "http://user:xxxxx@nats:4222" is not one of nats, tls, ws, wss`},
		{"nats credentials missing", func(p *Provisioner) { p.NATSCredentials = "testdata/none.creds" }, "nats_credentials: cannot use the credentials file: stat testdata/none.creds: no such file or directory"},
		{"health addr", func(p *Provisioner) { p.HealthAddr = "8081" }, `health_addr: "8081" is not a listen address`},
		{"health port", func(p *Provisioner) { p.HealthAddr = ":http" }, `health_addr: port "http" of ":http" is not a number from 0 to 65535`},
		{"decision timeout", func(p *Provisioner) { p.DecisionTimeout = 0 }, "decision_timeout: must be positive, got 0s"},
		{"drain timeout", func(p *Provisioner) { p.DrainTimeout = -1 }, "drain_timeout: must be positive, got -1ns"},
		{"negative lock timeout", func(p *Provisioner) { p.DBLockTimeout = -1 }, "db_lock_timeout: must be positive (or 0 for the server's setting), got -1ns"},
		{"tiny idle timeout", func(p *Provisioner) { p.DBIdleInTransactionTimeout = Duration(time.Millisecond) },
			"db_idle_in_transaction_timeout: 1ms is too short for a healthy decision; use at least 100ms"},
		{"lock timeout beyond the statement's", func(p *Provisioner) { p.DBLockTimeout = Duration(6 * time.Second) },
			"db_lock_timeout: 6s is longer than db_statement_timeout (4s), which would end the wait first; make it shorter"},
		{"statement timeout beyond the decision's", func(p *Provisioner) { p.DBStatementTimeout = Duration(9 * time.Second) },
			"db_statement_timeout: 9s is longer than decision_timeout (8s), which bounds the whole decision; make it shorter"},
		{"replicas", func(p *Provisioner) { p.Streams.Replicas = 2 }, "streams.replicas: must be 1 (a single server), 3 or 5 (a cluster), got 2"},
		{"ack wait", func(p *Provisioner) { p.Streams.AckWait = Duration(time.Millisecond) }, "streams.ack_wait: must be at least 1s, got 1ms"},
		{"max deliver", func(p *Provisioner) { p.Streams.MaxDeliver = 1 }, "streams.max_deliver: must be at least 2"},
		{"max bytes", func(p *Provisioner) { p.Streams.LoginsMaxBytes = -1 }, "streams.logins_max_bytes: must be positive, got -1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := fullFile
			tt.change(&p)
			err := p.Validate()
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v\nwant it to contain %s", err, tt.want)
			}
			if strings.Contains(err.Error(), "hunter2") || strings.Contains(err.Error(), ":pw@") {
				t.Errorf("the error shows a password: %v", err)
			}
		})
	}

	// Every problem at once, one per line.
	p := Provisioner{}
	err := p.Validate()
	if err == nil {
		t.Fatal("zero Provisioner is valid")
	}
	want := []string{"database_url: ", "nats_url: ", "workers: ", "max_batch: ", "decision_timeout: ", "drain_timeout: ", "log_level: ", "log_format: "}
	lines := strings.Split(err.Error(), "\n")
	if len(lines) != len(want) {
		t.Fatalf("got %d problems, want %d:\n%v", len(lines), len(want), err)
	}
	for i, w := range want {
		if !strings.HasPrefix(lines[i], w) {
			t.Errorf("problem %d is %q, want it to start with %q", i, lines[i], w)
		}
	}
}

func TestProvisionerString(t *testing.T) {
	tests := []struct {
		name, db, nats string
		want           []string
		secret         string
	}{
		{"URL password", "postgres://jitprov:s3cret@db:5432/jitprov?sslmode=require", "nats://nats:4222",
			[]string{`database_url="postgres://jitprov:xxxxx@db:5432/jitprov?sslmode=require"`, `nats_url="nats://nats:4222"`}, "s3cret"},
		{"query password", "postgres://db/jitprov?user=jitprov&password=s3cret", "nats://nats:4222",
			[]string{`database_url="postgres://db/jitprov?password=xxxxx&user=jitprov"`}, "s3cret"},
		{"key=value password", "host=db user=jitprov password='s3 cret' dbname=jitprov", "nats://nats:4222",
			[]string{`database_url="host=db user=jitprov password=xxxxx dbname=jitprov"`}, "s3 cret"},
		{"NATS password", "postgres://db/jitprov", "nats://svc:s3cret@nats-0:4222, nats://svc:s3cret@nats-1:4222",
			[]string{`nats_url="nats://svc:xxxxx@nats-0:4222,nats://svc:xxxxx@nats-1:4222"`}, "s3cret"},
		{"NATS token", "postgres://db/jitprov", "nats://s3cret@nats:4222",
			[]string{`nats_url="nats://xxxxx@nats:4222"`}, "s3cret"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := fullFile
			p.DatabaseURL, p.NATSURL = tt.db, tt.nats
			s := p.String()
			for _, w := range tt.want {
				if !strings.Contains(s, w) {
					t.Errorf("String() = %s\nwant it to contain %s", s, w)
				}
			}
			if strings.Contains(s, tt.secret) {
				t.Errorf("String() shows the secret: %s", s)
			}
		})
	}
	s := fullFile.String()
	for _, w := range []string{`workers=32`, `decision_timeout=8s`, `health_addr="0.0.0.0:9090"`, `streams.replicas=3`, `streams.ack_wait=20s`} {
		if !strings.Contains(s, w) {
			t.Errorf("String() = %s\nwant it to contain %s", s, w)
		}
	}
}

func TestLoadProvisionerInactiveSweep(t *testing.T) {
	const db = "database_url: postgres://db/jitprov\n"
	for _, tc := range []struct {
		file, env string
		want      DurationOrOff
	}{
		{"", "", DurationOrOff(time.Hour)},
		{"inactive_sweep: off\n", "", -1},
		{"inactive_sweep: 15m\n", "", DurationOrOff(15 * time.Minute)},
		{"inactive_sweep: 15m\n", "off", -1},
		{"", "6h", DurationOrOff(6 * time.Hour)},
	} {
		p, err := LoadProvisioner(writeFile(t, db+tc.file), env(map[string]string{"JITPROV_PROVISIONER_INACTIVE_SWEEP": tc.env}))
		if err != nil {
			t.Fatalf("file %q, env %q: %v", tc.file, tc.env, err)
		}
		if p.InactiveSweep != tc.want {
			t.Errorf("file %q, env %q: InactiveSweep %s, want %s", tc.file, tc.env, p.InactiveSweep, tc.want)
		}
	}
}

func TestStreamsTopology(t *testing.T) {
	if got := (Streams{}).Topology(); got != bus.DefaultTopology() {
		t.Errorf("zero Streams: got %+v, want bus.DefaultTopology()", got)
	}
	got := Streams{Replicas: 3, AckWait: Duration(time.Minute), MaxDeliver: 4}.Topology()
	want := bus.DefaultTopology()
	want.Replicas, want.AckWait, want.MaxDeliver = 3, time.Minute, 4
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v, want %+v", got, want)
	}
}

// TestDocsExamples keeps the examples of docs/config.md valid.
func TestDocsExamples(t *testing.T) {
	doc, err := os.ReadFile("../../docs/config.md")
	if err != nil {
		t.Skipf("docs/config.md: %v", err)
	}
	var blocks []string
	for _, part := range strings.Split(string(doc), "```yaml\n")[1:] {
		block, _, _ := strings.Cut(part, "```")
		blocks = append(blocks, block)
	}
	var orgs, conns, prov, edge, notifier, notifications, owners int
	for _, b := range blocks {
		switch {
		case strings.Contains(b, "organizations_file:"):
			notifier++
			n, err := LoadNotifier(writeFile(t, b), env(map[string]string{"JITPROV_DATABASE_URL": "postgres://db/jitprov", "JITPROV_SMTP_PASSWORD": "test-fixture"}))
			if err != nil || n.Replicas != 3 || n.NotifyConfig().SMTP == nil {
				t.Errorf("notifier example: %v %+v", err, n)
			}
		case strings.HasPrefix(b, "    seat_warning_percent:"):
			notifications++
			if _, _, err := ParseOrganizations("docs/config.md", []byte("organizations:\n  - id: acme\n    name: Acme\n    max_seats: 5\n"+b)); err != nil {
				t.Errorf("notifications example: %v", err)
			}
		case strings.HasPrefix(b, "    update_policy:"): // an organisation's fields
			owners++
			parsed, _, err := ParseOrganizations("docs/config.md", []byte("organizations:\n  - id: acme\n    name: Acme\n    max_seats: 5\n"+b))
			if err != nil || len(parsed[0].FieldOwners) != strings.Count(b, "\n      ") {
				t.Errorf("field_owners example: %v %+v", err, parsed)
			}
		case strings.Contains(b, "public_url:"):
			edge++
			// The example's key files exist only in production: check the
			// file's keys and values, with a keys variable standing in.
			e, err := LoadEdge(writeFile(t, strings.Replace(b, "session_keys_file:", "# session_keys_file:", 1)),
				env(map[string]string{"JITPROV_SESSION_KEYS": strings.Repeat("ab", 32)}))
			if err != nil || e.Replicas != 3 {
				t.Errorf("sso-edge example: %v %+v", err, e)
			}
		case strings.HasPrefix(b, "      - id:"): // a connection of an organisation
			conns++
			if _, _, err := ParseOrganizations("docs/config.md", []byte("organizations:\n  - id: acme\n    name: Acme\n    max_seats: 5\n    connections:\n"+b)); err != nil {
				t.Errorf("connection example: %v", err)
			}
		case strings.Contains(b, "organizations:"):
			orgs++
			if _, _, err := ParseOrganizations("docs/config.md", []byte(b)); err != nil {
				t.Errorf("organisations example: %v", err)
			}
		case strings.Contains(b, "nats_url:"):
			prov++
			path := writeFile(t, b)
			p, err := LoadProvisioner(path, env(map[string]string{"JITPROV_DATABASE_URL": "postgres://db/jitprov"}))
			// The example's credentials file exists only in production.
			if err != nil && (strings.Count(err.Error(), "\n") > 0 || !strings.Contains(err.Error(), "nats_credentials: cannot use the credentials file")) {
				t.Errorf("provisioner example: %v", err)
			}
			if err == nil && p.Streams.Replicas != 3 {
				t.Errorf("provisioner example: %v", p)
			}
		}
	}
	if orgs == 0 || conns == 0 || prov == 0 || edge == 0 || notifier == 0 || notifications == 0 || owners == 0 {
		t.Errorf("found %d organisations, %d connection, %d provisioner, %d sso-edge, %d notifier, %d notifications and %d field_owners examples, want each",
			orgs, conns, prov, edge, notifier, notifications, owners)
	}
}
