package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jitprov/jitprov/internal/notify"
)

func TestLoadNotifier(t *testing.T) {
	minimal := map[string]string{
		"JITPROV_DATABASE_URL":       "postgres://jitprov@db/jitprov",
		"JITPROV_ORGANIZATIONS_FILE": "/etc/jitprov/organizations.yaml",
	}
	with := func(kv ...string) map[string]string {
		m := map[string]string{}
		for k, v := range minimal {
			m[k] = v
		}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	dir := t.TempDir()
	pw := filepath.Join(dir, "smtp-password")
	if err := os.WriteFile(pw, []byte("test-fixture-password\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "notifier.yaml")
	if err := os.WriteFile(file, []byte("workers: 32\nper_org: 8\nbackoff_min: 1s\nsmtp:\n  addr: smtp.example.com:587\n  from: jitprov <noreply@example.com>\nlinks:\n  seats: https://app.example.com/orgs/{org}/seats\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name    string
		file    string
		env     map[string]string
		check   func(t *testing.T, n Notifier)
		wantErr []string
	}{
		{name: "defaults", env: minimal, check: func(t *testing.T, n Notifier) {
			if n.Workers != 16 || n.PerOrg != 4 || n.MaxAttempts != 8 || time.Duration(n.BackoffMin) != 5*time.Second ||
				n.HealthAddr != ":8082" || n.SMTP.Addr != "" || n.NATSURL != "nats://127.0.0.1:4222" {
				t.Errorf("defaults: %+v", n)
			}
			if n.NotifyConfig().SMTP != nil {
				t.Error("no SMTP address, yet a mail server configured")
			}
		}},
		{name: "file then env", file: file, env: with("JITPROV_NOTIFIER_WORKERS", "64", "JITPROV_SMTP_USERNAME", "jitprov", "JITPROV_SMTP_PASSWORD_FILE", pw),
			check: func(t *testing.T, n Notifier) {
				c := n.NotifyConfig()
				if n.Workers != 64 || n.PerOrg != 8 || c.BackoffMin != time.Second || c.SMTP == nil || c.SMTP.Password != "test-fixture-password" ||
					c.SMTP.TLS != notify.SMTPStartTLS || c.Links.Seats != "https://app.example.com/orgs/{org}/seats" {
					t.Errorf("got %+v / %+v", n, c)
				}
				if strings.Contains(n.String(), "test-fixture-password") {
					t.Error("String() shows the SMTP password")
				}
			}},
		{name: "required", env: nil, wantErr: []string{"JITPROV_DATABASE_URL: required", "JITPROV_ORGANIZATIONS_FILE: required"}},
		{name: "password in the clear", env: with("JITPROV_SMTP_ADDR", "smtp.example.com:25", "JITPROV_SMTP_TLS", "none",
			"JITPROV_SMTP_FROM", "noreply@example.com", "JITPROV_SMTP_USERNAME", "u", "JITPROV_SMTP_PASSWORD", "p"),
			wantErr: []string{"would send the SMTP password in the clear"}},
		{name: "smtp without from", env: with("JITPROV_SMTP_ADDR", "smtp.example.com:587"), wantErr: []string{"JITPROV_SMTP_FROM=\"\": required"}},
		{name: "smtp bad tls and address", env: with("JITPROV_SMTP_ADDR", "smtp.example.com", "JITPROV_SMTP_TLS", "ssl", "JITPROV_SMTP_FROM", "a@b.c"),
			wantErr: []string{"JITPROV_SMTP_ADDR=\"smtp.example.com\" is not host:port", "JITPROV_SMTP_TLS=\"ssl\" is not starttls, tls or none"}},
		{name: "two passwords", env: with("JITPROV_SMTP_PASSWORD_FILE", pw, "JITPROV_SMTP_PASSWORD", "p"), wantErr: []string{"both set"}},
		{name: "workers not a number", env: with("JITPROV_NOTIFIER_WORKERS", "many"), wantErr: []string{"JITPROV_NOTIFIER_WORKERS=\"many\": not a whole number"}},
		{name: "per org not below workers", env: with("JITPROV_NOTIFIER_WORKERS", "4"), wantErr: []string{"per_org (4) is not below workers (4)"}},
		{name: "timeouts above the ack wait", file: writeFile(t, "mail_timeout: 5m\n"), env: minimal, wantErr: []string{"must stay below 2m0s"}},
		{name: "retries outlive the job", file: writeFile(t, "max_attempts: 1000\nbackoff_max: 1h\n"), env: minimal, wantErr: []string{"it would expire instead of being parked"}},
		{name: "bad link", env: with("JITPROV_LINK_SEATS", "app/seats"), wantErr: []string{"links.seats=\"app/seats\" is not an http(s) URL"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, err := LoadNotifier(tt.file, func(k string) string { return tt.env[k] })
			if len(tt.wantErr) == 0 {
				if err != nil {
					t.Fatalf("LoadNotifier: %v", err)
				}
				tt.check(t, n)
				return
			}
			if err == nil {
				t.Fatalf("LoadNotifier succeeded, want errors %q", tt.wantErr)
			}
			for _, w := range tt.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}
