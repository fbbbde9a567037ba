package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLoadAdmin(t *testing.T) {
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	keys := filepath.Join(t.TempDir(), "keys")
	if err := os.WriteFile(keys, []byte("# current\n"+strings.Repeat("ab", 32)+"\n"+strings.Repeat("cd", 32)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	a, err := LoadAdmin("", env(map[string]string{"JITPROV_DATABASE_URL": "postgres://u:pw@db/jitprov", "JITPROV_SESSION_KEYS_FILE": keys,
		"JITPROV_ADMIN_TRUSTED_PROXIES": "10.0.0.0/8", "JITPROV_EDGE_INSECURE_COOKIES": "true"}))
	if err != nil {
		t.Fatal(err)
	}
	if a.Addr != ":8090" || a.HealthAddr != ":8083" || len(a.SessionKeys) != 2 || !a.InsecureCookies || a.TokenFailures != 10 || a.TokenRate != 600 {
		t.Errorf("got %+v", a)
	}
	if s := a.String(); strings.Contains(s, "pw") || strings.Contains(s, "abab") {
		t.Errorf("String leaks: %s", s)
	}
	_, err = LoadAdmin("", env(map[string]string{"JITPROV_ADMIN_TOKEN_FAILURES": "0", "JITPROV_ADMIN_TRUSTED_PROXIES": "proxy",
		"JITPROV_SESSION_KEYS": "x", "JITPROV_SESSION_KEYS_FILE": keys, "JITPROV_ADMIN_TOKEN_RATE": "many"}))
	for _, want := range []string{"JITPROV_SESSION_KEYS are both set", "JITPROV_ADMIN_TOKEN_RATE=\"many\""} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v, want it to say %q", err, want)
		}
	}
	_, err = LoadAdmin("", env(map[string]string{"JITPROV_ADMIN_TOKEN_FAILURES": "0", "JITPROV_ADMIN_TRUSTED_PROXIES": "proxy"}))
	for _, want := range []string{"JITPROV_DATABASE_URL: required", "JITPROV_ADMIN_TOKEN_FAILURES", "\"proxy\" is neither"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v, want it to say %q", err, want)
		}
	}
}
