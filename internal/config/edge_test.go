package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestLoadEdge(t *testing.T) {
	keyFile := filepath.Join(t.TempDir(), "keys")
	if err := os.WriteFile(keyFile, []byte("# TEST KEYS\n"+strings.Repeat("ab", 32)+"\n"+strings.Repeat("cd", 32)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	base := map[string]string{
		"JITPROV_DATABASE_URL":    "postgres://jitprov:s3cret@db/jitprov",
		"JITPROV_EDGE_PUBLIC_URL": "https://sso.example.com",
		"JITPROV_SESSION_KEYS":    strings.Repeat("ab", 32),
	}
	with := func(kv ...string) func(string) string {
		m := map[string]string{}
		for k, v := range base {
			m[k] = v
		}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return func(k string) string { return m[k] }
	}
	e, err := LoadEdge("", with())
	if err != nil {
		t.Fatal(err)
	}
	if e.Addr != ":8080" || time.Duration(e.ProvisionTimeout) != 5*time.Second || e.Replicas != 1 || len(e.SessionKeys) != 1 ||
		time.Duration(e.MetadataRefresh) != 5*time.Minute {
		t.Errorf("defaults: %+v", e)
	}
	if strings.Contains(e.String(), "s3cret") || strings.Contains(e.String(), strings.Repeat("ab", 32)) {
		t.Errorf("String leaks a secret: %s", e)
	}
	for _, landing := range []string{"/welcome", "https://app.example.com/", "http://localhost:3000/home"} {
		if e, err := LoadEdge("", with("JITPROV_EDGE_LANDING_URL", landing)); err != nil || e.LandingURL != landing {
			t.Errorf("landing URL %q: %v, %q", landing, err, e.LandingURL)
		}
	}
	if e, err := LoadEdge("", with("JITPROV_EDGE_METADATA_REFRESH", "30s")); err != nil || time.Duration(e.MetadataRefresh) != 30*time.Second ||
		!strings.Contains(e.String(), "metadata_refresh=30s") {
		t.Errorf("JITPROV_EDGE_METADATA_REFRESH=30s: %v, %s", err, e)
	}
	e, err = LoadEdge("", with("JITPROV_SESSION_KEYS", "", "JITPROV_SESSION_KEYS_FILE", keyFile))
	if err != nil || len(e.SessionKeys) != 2 {
		t.Errorf("keys file: %v %d keys", err, len(e.SessionKeys))
	}
	tests := []struct {
		name string
		env  func(string) string
		want string
	}{
		{"no public URL", with("JITPROV_EDGE_PUBLIC_URL", ""), "JITPROV_EDGE_PUBLIC_URL"},
		{"plain http without insecure cookies", with("JITPROV_EDGE_PUBLIC_URL", "http://sso.local"), "plain http"},
		{"no session key", with("JITPROV_SESSION_KEYS", ""), "JITPROV_SESSION_KEYS_FILE or JITPROV_SESSION_KEYS: required"},
		{"both key sources", with("JITPROV_SESSION_KEYS_FILE", keyFile), "both set"},
		{"bad timeout", with("JITPROV_EDGE_PROVISION_TIMEOUT", "soon"), "JITPROV_EDGE_PROVISION_TIMEOUT"},
		{"bad origin", with("JITPROV_EDGE_RETURN_ORIGINS", "https://app.example.com/path"), "not an origin"},
		{"key without cert", with("JITPROV_EDGE_SP_KEY_FILE", "/k.pem"), "go together"},
		{"no database", with("JITPROV_DATABASE_URL", ""), "JITPROV_DATABASE_URL: required"},
		{"cookie domain not covering the edge", with("JITPROV_EDGE_COOKIE_DOMAIN", "other.com"), "is not in it"},
		{"cert check interval not a duration", with("JITPROV_EDGE_CERT_CHECK_INTERVAL", "daily"), "JITPROV_EDGE_CERT_CHECK_INTERVAL"},
		{"cert check interval zero", with("JITPROV_EDGE_CERT_CHECK_INTERVAL", "0"), "JITPROV_EDGE_CERT_CHECK_INTERVAL"},
		{"cert check interval too short", with("JITPROV_EDGE_CERT_CHECK_INTERVAL", "10s"), "at least 1m"},
		{"metadata refresh not a duration", with("JITPROV_EDGE_METADATA_REFRESH", "hourly"), `JITPROV_EDGE_METADATA_REFRESH="hourly": want a positive duration`},
		{"metadata refresh too short", with("JITPROV_EDGE_METADATA_REFRESH", "1s"), "JITPROV_EDGE_METADATA_REFRESH (metadata_refresh) is 1s: want at least 10s"},
		{"negative rate", with("JITPROV_EDGE_RATE_PER_CLIENT", "-5"), "JITPROV_EDGE_RATE_PER_CLIENT (rate_per_client) is -5"},
		{"rate not a number", with("JITPROV_EDGE_RATE_PER_CONNECTION", "lots"), `JITPROV_EDGE_RATE_PER_CONNECTION="lots": not a whole number`},
		{"trusted proxy not an address", with("JITPROV_EDGE_TRUSTED_PROXIES", "10.0.0.0/8, ingress.local"), `"ingress.local" is neither an address nor a CIDR range`},
		{"landing URL neither a path nor absolute", with("JITPROV_EDGE_LANDING_URL", "app.example.com/home"), "JITPROV_EDGE_LANDING_URL (landing_url)"},
		{"landing URL to another host by //", with("JITPROV_EDGE_LANDING_URL", "//evil.example/"), "JITPROV_EDGE_LANDING_URL (landing_url)"},
		{"landing URL of another scheme", with("JITPROV_EDGE_LANDING_URL", "javascript:alert(1)"), "JITPROV_EDGE_LANDING_URL (landing_url)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := LoadEdge("", tt.env); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

// Rate limits and trusted proxies: defaults, the variables, "0" turning a
// limit off.
func TestLoadEdgeRateLimits(t *testing.T) {
	base := map[string]string{"JITPROV_DATABASE_URL": "postgres://db/jitprov", "JITPROV_EDGE_PUBLIC_URL": "https://sso.example.com",
		"JITPROV_SESSION_KEYS": strings.Repeat("ab", 32)} // TEST KEY
	e, err := LoadEdge("", func(k string) string { return base[k] })
	if err != nil {
		t.Fatal(err)
	}
	if e.RatePerClient != 600 || e.RatePerConnection != 6000 || len(e.TrustedProxies) != 0 {
		t.Errorf("defaults: %d, %d, %v; want 600, 6000, none", e.RatePerClient, e.RatePerConnection, e.TrustedProxies)
	}
	base["JITPROV_EDGE_RATE_PER_CLIENT"], base["JITPROV_EDGE_RATE_PER_CONNECTION"] = "0", "120"
	base["JITPROV_EDGE_TRUSTED_PROXIES"] = "10.0.0.0/8, 192.0.2.7"
	if e, err = LoadEdge("", func(k string) string { return base[k] }); err != nil {
		t.Fatal(err)
	}
	proxies, err := e.Proxies()
	if err != nil || len(proxies) != 2 || proxies[1].String() != "192.0.2.7/32" {
		t.Errorf("proxies %v, %v; want 10.0.0.0/8 and 192.0.2.7/32", proxies, err)
	}
	if Rate(e.RatePerClient) >= 0 || Rate(e.RatePerConnection) != 120 {
		t.Errorf("rates %d, %d: want the per-client limit off (negative for the edge) and 120", Rate(e.RatePerClient), Rate(e.RatePerConnection))
	}
}

// The file is read first and the variables win; mistakes in the file name
// their line.
func TestLoadEdgeFile(t *testing.T) {
	dir := t.TempDir()
	keys := filepath.Join(dir, "keys")
	if err := os.WriteFile(keys, []byte(strings.Repeat("ab", 32)+"\n"), 0o600); err != nil { // TEST KEY
		t.Fatal(err)
	}
	file := filepath.Join(dir, "edge.yaml")
	write := func(body string) {
		if err := os.WriteFile(file, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("database_url: postgres://db/jitprov\npublic_url: https://sso.example.com\nsession_keys_file: " + keys +
		"\nprovision_timeout: 3s\nreturn_origins: [https://app.example.com]\n")
	e, err := LoadEdge(file, func(k string) string {
		if k == "JITPROV_EDGE_ADDR" {
			return ":9090"
		}
		return ""
	})
	if err != nil {
		t.Fatal(err)
	}
	if e.Addr != ":9090" || time.Duration(e.ProvisionTimeout) != 3*time.Second || len(e.SessionKeys) != 1 ||
		len(e.ReturnOrigins) != 1 || e.PublicURL != "https://sso.example.com" {
		t.Errorf("got %+v", e)
	}
	write("database_url: postgres://db/jitprov\npublic_url: https://sso.example.com\nsession_key: x\n")
	if _, err := LoadEdge(file, nil); err == nil || !strings.Contains(err.Error(), "edge.yaml:3") || !strings.Contains(err.Error(), "session_key") {
		t.Errorf("unknown key: got %v, want an error naming edge.yaml:3 and the key", err)
	}
}

// The certificate check runs daily by default, at another positive
// interval, or not at all ("off"), from the file or the variable.
func TestLoadEdgeCertCheckInterval(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "edge.yaml")
	base := "database_url: postgres://db/jitprov\npublic_url: https://sso.example.com\n"
	tests := []struct {
		name    string
		yaml    string // added to base
		env     string // JITPROV_EDGE_CERT_CHECK_INTERVAL
		want    time.Duration
		wantOff bool
		wantErr string // "" for no error
	}{
		{name: "default", want: 24 * time.Hour},
		{name: "variable", env: "6h", want: 6 * time.Hour},
		{name: "variable off", env: "off", wantOff: true},
		{name: "variable OFF", env: "OFF", wantOff: true},
		{name: "file", yaml: "cert_check_interval: 12h\n", want: 12 * time.Hour},
		{name: "file off", yaml: "cert_check_interval: off\n", wantOff: true},
		{name: "variable wins over the file", yaml: "cert_check_interval: off\n", env: "1h", want: time.Hour},
		{name: "file not a duration", yaml: "cert_check_interval: daily\n", wantErr: "edge.yaml:3: cert_check_interval: expected a duration"},
		{name: "file negative", yaml: "cert_check_interval: -5m\n", wantErr: "edge.yaml:3: expected a duration"},
		{name: "file zero", yaml: "cert_check_interval: 0s\n", wantErr: "want at least 1m, or off"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := os.WriteFile(file, []byte(base+tt.yaml), 0o600); err != nil {
				t.Fatal(err)
			}
			e, err := LoadEdge(file, func(k string) string {
				switch k {
				case "JITPROV_SESSION_KEYS":
					return strings.Repeat("ab", 32) // TEST KEY
				case "JITPROV_EDGE_CERT_CHECK_INTERVAL":
					return tt.env
				}
				return ""
			})
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("got %v, want an error containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := e.CertCheckInterval; got.Off() != tt.wantOff || (!tt.wantOff && time.Duration(got) != tt.want) {
				t.Errorf("got %s, want %s (off: %t)", got, tt.want, tt.wantOff)
			}
			if tt.wantOff && !strings.Contains(e.String(), "cert_check_interval=off") {
				t.Errorf("String: %s, want cert_check_interval=off", e)
			}
		})
	}
}

// The edge serves /metrics on an internal listener of its own: :8084 by
// default, another from the file or the variable, none for "" in the file
// or "off" in the variable, never the public listener's address.
func TestLoadEdgeMetricsAddr(t *testing.T) {
	dir := t.TempDir()
	keys := filepath.Join(dir, "keys")
	if err := os.WriteFile(keys, []byte(strings.Repeat("ab", 32)+"\n"), 0o600); err != nil { // TEST KEY
		t.Fatal(err)
	}
	tests := []struct {
		name, file string // file: the metrics_addr line, if any
		env        map[string]string
		want       string
		wantErr    string
	}{
		{name: "default", want: ":8084"},
		{name: "variable", env: map[string]string{"JITPROV_EDGE_METRICS_ADDR": "127.0.0.1:9100"}, want: "127.0.0.1:9100"},
		{name: "variable off", env: map[string]string{"JITPROV_EDGE_METRICS_ADDR": "off"}, want: ""},
		{name: "file", file: `metrics_addr: ":9200"`, want: ":9200"},
		{name: "file empty", file: `metrics_addr: ""`, want: ""},
		{name: "variable over file", file: `metrics_addr: ":9200"`, env: map[string]string{"JITPROV_EDGE_METRICS_ADDR": ":9300"}, want: ":9300"},
		{name: "the public listener", env: map[string]string{"JITPROV_EDGE_METRICS_ADDR": ":8080"}, wantErr: "public listener"},
		{name: "no port", env: map[string]string{"JITPROV_EDGE_METRICS_ADDR": "metrics"}, wantErr: "JITPROV_EDGE_METRICS_ADDR"},
		{name: "bad port", file: `metrics_addr: ":http"`, wantErr: "metrics_addr"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			file := filepath.Join(t.TempDir(), "edge.yaml")
			body := "database_url: postgres://db/jitprov\npublic_url: https://sso.example.com\nsession_keys_file: " + keys + "\n" + tc.file + "\n"
			if err := os.WriteFile(file, []byte(body), 0o600); err != nil {
				t.Fatal(err)
			}
			e, err := LoadEdge(file, func(k string) string { return tc.env[k] })
			switch {
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Errorf("got %v, want an error naming %q", err, tc.wantErr)
			case tc.wantErr == "" && err != nil:
				t.Errorf("got %v", err)
			case tc.wantErr == "" && e.MetricsAddr != tc.want:
				t.Errorf("metrics_addr %q, want %q", e.MetricsAddr, tc.want)
			}
		})
	}
}
