package notify

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	htmltemplate "html/template"
	"strings"
	"time"

	"github.com/jitprov/jitprov/events"
)

// Links are where an admin acts on an alert; "{org}" is replaced by the
// organisation id. Empty links are left out of messages.
type Links struct {
	Seats       string // seat usage and the plan, for seat alerts
	RoleReviews string // the review queue
	Connections string // the IdP connections, for certificates
	Logins      string // the sign-in log, for failed logins
	// Signups is where held sign-ups are approved or denied; "{user}" is
	// replaced by the held user's id. Empty: the seats link.
	Signups string
}

func (l Links) forAlert(alert, org string) string {
	var t string
	switch alert {
	case events.TypeSeatsExhausted.Short(), events.TypeSeatsThresholdReached.Short(), events.TypeInactiveUsersSuspended.Short():
		t = l.Seats
	case events.TypeRoleReviewRequested.Short():
		t = l.RoleReviews
	case events.TypeIdPCertificateExpiring.Short():
		t = l.Connections
	case events.TypeProvisioningFailed.Short():
		t = l.Logins
	case events.TypeSignupHeld.Short():
		t = cmp.Or(l.Signups, l.Seats)
	}
	return strings.ReplaceAll(t, "{org}", org)
}

// Message is a job rendered for people.
type Message struct {
	Subject string
	// Lines are the body, one paragraph each, plain text.
	Lines []string
	// Link is where the admin acts, with ActionText its label.
	Link       string
	ActionText string
}

// Text is the plain-text body.
func (m Message) Text() string {
	var b strings.Builder
	for _, l := range m.Lines {
		b.WriteString(l + "\n\n")
	}
	if m.Link != "" {
		fmt.Fprintf(&b, "%s: %s\n\n", m.ActionText, m.Link)
	}
	b.WriteString("-- \njitprov notifier\n")
	return b.String()
}

var htmlBody = htmltemplate.Must(htmltemplate.New("mail").Parse(`<!doctype html>
<html><body style="font-family: sans-serif; line-height: 1.4">
<h2 style="font-size: 1.1em">{{.Subject}}</h2>
{{range .Lines}}<p>{{.}}</p>
{{end}}{{if .Link}}<p><a href="{{.Link}}" style="display: inline-block; padding: .5em 1em; background: #1f4fd1; color: #fff; text-decoration: none; border-radius: 4px">{{.ActionText}}</a></p>
{{end}}<p style="color: #666; font-size: .85em">jitprov notifier</p>
</body></html>
`))

// HTML is the HTML body; every value is escaped.
func (m Message) HTML() string {
	var b bytes.Buffer
	if err := htmlBody.Execute(&b, m); err != nil {
		return "" // the template is fixed and its data strings: cannot happen
	}
	return b.String()
}

// Slack is an incoming-webhook body: text for notifications, blocks for
// the message itself.
func (m Message) Slack() ([]byte, error) {
	text := "*" + slackEscape(m.Subject) + "*"
	for _, l := range m.Lines {
		text += "\n" + slackEscape(l)
	}
	blocks := []map[string]any{{"type": "section", "text": map[string]string{"type": "mrkdwn", "text": text}}}
	if m.Link != "" {
		blocks = append(blocks, map[string]any{"type": "actions", "elements": []map[string]any{{
			"type": "button", "text": map[string]string{"type": "plain_text", "text": m.ActionText}, "url": m.Link,
		}}})
	}
	return json.Marshal(map[string]any{"text": slackEscape(m.Subject), "blocks": blocks})
}

// slackEscape escapes what Slack's mrkdwn treats as markup.
func slackEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}

// Render turns a job into its message. orgName is the organisation's
// display name, or its id.
func Render(j Job, orgName string, links Links) (Message, error) {
	if orgName == "" {
		orgName = j.Org
	}
	evs := make([]events.Event, len(j.Events))
	for i, raw := range j.Events {
		if err := json.Unmarshal(raw, &evs[i]); err != nil {
			return Message{}, fmt.Errorf("notify: job %s: event %d is not a CloudEvent: %w", j.ID, i, err)
		}
	}
	last := evs[len(evs)-1]
	m := Message{Link: links.forAlert(j.Alert, j.Org)}
	switch j.Alert {
	case events.TypeSeatsExhausted.Short():
		d, err := events.DataAs[events.SeatsExhausted](last, events.TypeSeatsExhausted)
		if err != nil {
			return m, err
		}
		n := j.People
		if n == 0 {
			n = j.Count
		}
		people, were := plural(n, "person", "people"), "were"
		if n == 1 {
			were = "was"
		}
		m.Subject = fmt.Sprintf("%s: %s could not sign in — %s", orgName, people, allSeatsTaken(d.MaxSeats))
		m.Lines = []string{
			fmt.Sprintf("Since %s, %s signed in through single sign-on for the first time and %s turned away, because %s uses %s.",
				stamp(j.Since), people, were, orgName, allOfItsSeats(d.MaxSeats)),
			"Add seats, or free some by removing people who left, and they can sign in again.",
		}
		if j.Count > n {
			m.Lines[0] += fmt.Sprintf(" (%s in all.)", plural(j.Count, "sign-in attempt", "sign-in attempts"))
		}
		if d.Email != "" {
			m.Lines = append(m.Lines, fmt.Sprintf("The latest was %s.", d.Email))
		}
		m.ActionText = "Manage seats"
	case events.TypeSeatsThresholdReached.Short():
		d, err := events.DataAs[events.SeatsThresholdReached](last, events.TypeSeatsThresholdReached)
		if err != nil {
			return m, err
		}
		m.Subject = fmt.Sprintf("%s uses %d of %s", orgName, d.SeatsUsed, plural(d.MaxSeats, "seat", "seats"))
		taken := "are"
		if d.SeatsUsed == 1 {
			taken = "is"
		}
		m.Lines = []string{fmt.Sprintf("%s has reached %d%% of its seats: %d of %d %s taken. When all are taken, people signing in for the first time are turned away.",
			orgName, d.ThresholdPercent, d.SeatsUsed, d.MaxSeats, taken)}
		m.ActionText = "Manage seats"
	case events.TypeRoleReviewRequested.Short():
		m.ActionText = "Review requests"
		if len(evs) == 1 && j.Count <= 1 {
			d, err := events.DataAs[events.RoleReviewRequested](last, events.TypeRoleReviewRequested)
			if err != nil {
				return m, err
			}
			who := cmp.Or(d.Email, d.UserID)
			m.Subject = fmt.Sprintf("%s: %s asks for role %s", orgName, who, d.RequestedRole)
			m.Lines = []string{fmt.Sprintf("%s's identity provider claims role %q for %s, above what sign-in grants on its own; they have role %q until an admin approves or denies it.",
				orgName, d.RequestedRole, who, d.CurrentRole)}
			break
		}
		m.Subject = fmt.Sprintf("%s: %s waiting", orgName, plural(j.Count, "role review", "role reviews"))
		m.Lines = []string{fmt.Sprintf("Since %s, identity providers claimed roles above what sign-in grants on its own for %s:",
			stamp(j.Since), plural(j.Count, "person", "people"))}
		for _, ev := range evs {
			d, err := events.DataAs[events.RoleReviewRequested](ev, events.TypeRoleReviewRequested)
			if err != nil {
				return m, err
			}
			m.Lines = append(m.Lines, fmt.Sprintf("• %s asks for %s (has %s)", cmp.Or(d.Email, d.UserID), d.RequestedRole, d.CurrentRole))
		}
		if more := j.Count - len(evs); more > 0 {
			m.Lines = append(m.Lines, fmt.Sprintf("… and %d more.", more))
		}
	case events.TypeIdPCertificateExpiring.Short():
		d, err := events.DataAs[events.IdPCertificateExpiring](last, events.TypeIdPCertificateExpiring)
		if err != nil {
			return m, err
		}
		if d.Expired {
			m.Subject = fmt.Sprintf("%s: the signing certificate of connection %s has expired", orgName, d.ConnectionID)
		} else {
			m.Subject = fmt.Sprintf("%s: the signing certificate of connection %s expires in %s", orgName, d.ConnectionID, plural(d.DaysLeft, "day", "days"))
		}
		m.Lines = []string{
			fmt.Sprintf("The identity provider of connection %s signs with certificate %q (SHA-256 %s), valid until %s.",
				d.ConnectionID, d.Subject, d.FingerprintSHA256, stamp(d.NotAfter)),
			"Once it expires, nobody can sign in through this connection. Have the IdP roll over to a new certificate and update the connection's metadata before then.",
		}
		m.ActionText = "Open connections"
	case events.TypeProvisioningFailed.Short():
		d, err := events.DataAs[events.ProvisioningFailed](last, events.TypeProvisioningFailed)
		if err != nil {
			return m, err
		}
		who := cmp.Or(d.Email, d.ExternalID)
		m.Subject = fmt.Sprintf("%s: sign-in of %s failed", orgName, who)
		m.Lines = []string{
			fmt.Sprintf("%s signed in through connection %s at %s, and jitprov could not provision their account: %s.",
				who, d.ConnectionID, stamp(d.FailedAt), d.Reason),
			fmt.Sprintf("They saw an error page and can try again. Operators find the details in the provisioner's logs under login id %s.", d.LoginID),
		}
		m.ActionText = "Open the sign-in log"
	case events.TypeSignupHeld.Short():
		d, err := events.DataAs[events.SignupHeld](last, events.TypeSignupHeld)
		if err != nil {
			return m, err
		}
		m.Link = strings.ReplaceAll(m.Link, "{user}", d.UserID)
		who := cmp.Or(d.Email, d.DisplayName, d.ExternalID)
		if d.Email != "" && d.DisplayName != "" {
			who = fmt.Sprintf("%s (%s)", d.DisplayName, d.Email)
		}
		m.Subject = fmt.Sprintf("%s: %s waits for your approval", orgName, who)
		why := fmt.Sprintf("%s holds every new person until an admin approves them.", orgName)
		if d.Reason == events.ReasonSeatsExhausted {
			why = fmt.Sprintf("%s uses %s, and holds new people rather than turn them away when it is full.", orgName, allOfItsSeats(d.MaxSeats))
		}
		m.Lines = []string{
			fmt.Sprintf("%s signed in through connection %s for the first time. %s", who, d.ConnectionID, why),
			"They take no seat and cannot use any application until you approve them; approving takes a seat then (free one first if all are taken). " +
				"They are waiting on a page that signs them in as soon as you approve. Denying keeps them out, with the reason you give.",
		}
		m.ActionText = "Approve or deny"
	case events.TypeInactiveUsersSuspended.Short():
		d, err := events.DataAs[events.InactiveUsersSuspended](last, events.TypeInactiveUsersSuspended)
		if err != nil {
			return m, err
		}
		after := inactiveFor(time.Duration(d.InactiveAfterSeconds) * time.Second)
		m.Subject = fmt.Sprintf("%s: %s suspended after %s without signing in", orgName, plural(d.Count, "person", "people"), after)
		taken := "are"
		if d.SeatsUsed == 1 {
			taken = "is"
		}
		m.Lines = []string{fmt.Sprintf("At %s jitprov suspended %s of %s who had not signed in for %s (the organisation's inactive_after), and freed their seats: %d of %d %s taken now.",
			stamp(d.SweptAt), plural(d.Count, "person", "people"), orgName, after, d.SeatsUsed, d.MaxSeats, taken)}
		for i, u := range d.Users {
			if i == maxListed {
				m.Lines = append(m.Lines, fmt.Sprintf("… and %d more.", len(d.Users)-maxListed))
				break
			}
			who := cmp.Or(u.Email, u.UserID)
			if u.DisplayName != "" {
				who = fmt.Sprintf("%s (%s)", u.DisplayName, who)
			}
			m.Lines = append(m.Lines, fmt.Sprintf("• %s, last seen %s", who, stamp(u.LastSeenAt)))
		}
		m.Lines = append(m.Lines, "Whoever signs in again is reactivated while a seat is free. Deprovision those who left; reactivate in the console whoever should have access without signing in.")
		m.ActionText = "Manage seats"
	default:
		return m, fmt.Errorf("notify: job %s: no message for alert %q", j.ID, j.Alert)
	}
	return m, nil
}

// allSeatsTaken says that every one of max seats is taken, in the
// number it needs.
func allSeatsTaken(max int) string {
	switch max {
	case 0:
		return "the organisation has no seats"
	case 1:
		return "its only seat is taken"
	}
	return fmt.Sprintf("all %d seats are taken", max)
}

// allOfItsSeats is "all of its N seats", in the number it needs.
func allOfItsSeats(max int) string {
	switch max {
	case 0:
		return "no seats at all (max_seats is 0)"
	case 1:
		return "its only seat"
	}
	return fmt.Sprintf("all of its %d seats", max)
}

func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}

// maxListed bounds the people one message lists by name.
const maxListed = 50

// inactiveFor is an inactive_after for people: "90 days", or a duration.
func inactiveFor(d time.Duration) string {
	const day = 24 * time.Hour
	if d >= day && d%day == 0 {
		return plural(int(d/day), "day", "days")
	}
	return d.String()
}

func stamp(t time.Time) string { return t.UTC().Format("2006-01-02 15:04 UTC") }
