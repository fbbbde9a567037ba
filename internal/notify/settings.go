package notify

import (
	"fmt"
	"os"
	"slices"
	"strings"
	"time"
)

// Settings are one organisation's notification settings, declared under
// the organisation in the organisations file.
type Settings struct {
	// Admins mails the organisation's admins (active users with its last
	// role) at their email addresses in the store. Default true.
	Admins bool
	// Emails are further addresses that get every alert.
	Emails []string
	// Webhooks get alerts as CloudEvents (or Slack messages).
	Webhooks []Webhook
	// SeatCooldown: at most one seats.exhausted message per cool-down; it
	// carries the count of people turned away since the last. Default 1h.
	SeatCooldown time.Duration
	// SeatDelay gathers the first turned-away logins of a burst into one
	// message instead of sending the first alone. Default 30s.
	SeatDelay time.Duration
	// RoleReviews is ReviewsEach (one message per review, the default) or
	// ReviewsDigest (one message per DigestInterval listing them).
	RoleReviews    string
	DigestInterval time.Duration
}

// Role review delivery modes.
const (
	ReviewsEach   = "each"
	ReviewsDigest = "digest"
)

// Webhook formats.
const (
	FormatCloudEvents = "cloudevents"
	FormatSlack       = "slack"
)

// Webhook is an HTTPS endpoint that receives alerts.
type Webhook struct {
	// ID names the webhook in delivery records and the dead-letter list;
	// it must stay stable while alerts are in flight.
	ID  string
	URL string
	// Format is FormatCloudEvents (the event as structured-mode JSON) or
	// FormatSlack (an incoming-webhook text/blocks body).
	Format string
	// The shared secret that signs deliveries comes from one of these;
	// SecretEnv and SecretFile keep it out of the organisations file.
	Secret     string
	SecretEnv  string
	SecretFile string
	// Alerts limits the webhook to these alerts (short names such as
	// "seats.exhausted"); empty means all.
	Alerts []string
}

// DefaultSettings are an organisation's settings when it declares none.
func DefaultSettings() Settings {
	return Settings{Admins: true, SeatCooldown: time.Hour, SeatDelay: 30 * time.Second,
		RoleReviews: ReviewsEach, DigestInterval: time.Hour}
}

// ResolveSecret reads the webhook's shared secret from where it is kept.
func (w Webhook) ResolveSecret(getenv func(string) string) ([]byte, error) {
	switch {
	case w.Secret != "":
		return []byte(w.Secret), nil
	case w.SecretFile != "":
		b, err := os.ReadFile(w.SecretFile)
		if err != nil {
			return nil, fmt.Errorf("webhook %s: secret_file: %w", w.ID, err)
		}
		if s := strings.TrimSpace(string(b)); s != "" {
			return []byte(s), nil
		}
		return nil, fmt.Errorf("webhook %s: secret_file %s is empty", w.ID, w.SecretFile)
	case w.SecretEnv != "":
		if s := strings.TrimSpace(getenv(w.SecretEnv)); s != "" {
			return []byte(s), nil
		}
		return nil, fmt.Errorf("webhook %s: secret_env: variable %s is empty or unset", w.ID, w.SecretEnv)
	}
	return nil, fmt.Errorf("webhook %s: no secret configured", w.ID)
}

// Wants reports whether the webhook takes alerts of short name alert.
func (w Webhook) Wants(alert string) bool {
	return len(w.Alerts) == 0 || slices.Contains(w.Alerts, alert)
}
