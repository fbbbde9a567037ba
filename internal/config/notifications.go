package config

import (
	"fmt"
	"net/mail"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/jitprov/jitprov/events"
	"github.com/jitprov/jitprov/internal/notify"
)

// notifications validates an organisation's notifications block at path p
// and fills its defaults.
func (d *document) notifications(p string, n *notifyEntry) notify.Settings {
	s := notify.DefaultSettings()
	if n == nil {
		return s
	}
	if n.Admins != nil {
		s.Admins = *n.Admins
	}
	seen := map[string]int{}
	for i, e := range n.Emails {
		ep := fmt.Sprintf("%s.emails[%d]", p, i)
		a, err := mail.ParseAddress(e)
		if err != nil || a.Name != "" || !strings.Contains(a.Address, "@") {
			d.errorf(ep, "%q is not an email address; write a bare address such as it-alerts@example.com", e)
			continue
		}
		key := strings.ToLower(a.Address)
		if j, dup := seen[key]; dup {
			d.errorf(ep, "%q is listed twice (also emails[%d]); list each address once", e, j)
			continue
		}
		seen[key] = i
		s.Emails = append(s.Emails, a.Address)
	}
	ids := map[string]int{}
	for i, w := range n.Webhooks {
		wp := fmt.Sprintf("%s.webhooks[%d]", p, i)
		hook := notify.Webhook{ID: w.ID, URL: w.URL, Format: w.Format, Secret: w.Secret,
			SecretEnv: w.SecretEnv, SecretFile: w.SecretFile, Alerts: w.Alerts}
		if hook.ID == "" {
			hook.ID = fmt.Sprintf("webhook-%d", i+1)
		} else if !connIDPattern.MatchString(hook.ID) {
			d.errorf(wp+".id", "%q is not a valid webhook id: use a-z, 0-9, '-' and '_', starting with a letter or digit", w.ID)
		}
		if j, dup := ids[hook.ID]; dup {
			d.errorf(wp+".id", "%q is already the id of webhooks[%d]; give each webhook its own id", hook.ID, j)
		}
		ids[hook.ID] = i
		u, err := url.Parse(w.URL)
		switch {
		case w.URL == "":
			d.errorf(wp+".url", "required: where to POST alerts, e.g. url: https://hooks.example.com/jitprov")
		case err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http"):
			d.errorf(wp+".url", "%q is not an http(s) URL", w.URL)
		case u.User != nil:
			d.errorf(wp+".url", "the URL carries credentials; the shared secret signs deliveries instead")
		}
		switch hook.Format {
		case "":
			hook.Format = notify.FormatCloudEvents
		case notify.FormatCloudEvents, notify.FormatSlack:
		default:
			d.errorf(wp+".format", "%q is not a webhook format; use cloudevents or slack", w.Format)
		}
		given := 0
		for _, v := range []string{w.Secret, w.SecretEnv, w.SecretFile} {
			if v != "" {
				given++
			}
		}
		switch {
		case given == 0:
			d.errorf(wp+".secret_env", "required: where the shared secret that signs deliveries is, as secret_env or secret_file (or secret, which leaves it in this file)")
		case given > 1:
			d.errorf(wp+".secret_env", "give one of secret, secret_env and secret_file")
		}
		for j, a := range w.Alerts {
			if t, ok := events.TypeFromShort(a); !ok || !isAlert(t) {
				d.errorf(fmt.Sprintf("%s.alerts[%d]", wp, j), "%q is not an alert; use %s", a, alertNames())
			}
		}
		s.Webhooks = append(s.Webhooks, hook)
	}
	positive := func(field string, v *Duration, dst *time.Duration) {
		if v == nil {
			return
		}
		if *v <= 0 {
			d.errorf(p+"."+field, "must be positive, e.g. 1h")
			return
		}
		*dst = time.Duration(*v)
	}
	positive("seat_cooldown", n.SeatCooldown, &s.SeatCooldown)
	positive("digest_interval", n.DigestInterval, &s.DigestInterval)
	if n.SeatDelay != nil {
		if *n.SeatDelay < 0 {
			d.errorf(p+".seat_delay", "must not be negative; 0 sends the first turned-away login at once")
		} else {
			s.SeatDelay = time.Duration(*n.SeatDelay)
		}
	}
	switch n.RoleReviews {
	case "":
	case notify.ReviewsEach, notify.ReviewsDigest:
		s.RoleReviews = n.RoleReviews
	default:
		d.errorf(p+".role_reviews", "%q is not a mode; use each (one message per review) or digest (one per digest_interval)", n.RoleReviews)
	}
	return s
}

func isAlert(t events.Type) bool { return slices.Contains(events.AlertTypes(), t) }

func alertNames() string {
	var names []string
	for _, a := range events.AlertTypes() {
		names = append(names, a.Short())
	}
	return strings.Join(names, ", ")
}
