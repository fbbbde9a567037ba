// Package devinbox is development mode's inbox: an SMTP server and a
// webhook receiver that keep what the notifier sends, and a page to read
// it. For `jitprov dev` only: it keeps messages in memory, accepts mail
// from anyone who can reach its port, and listens on loopback.
package devinbox

import (
	"bytes"
	"encoding/json"
	"errors"
	"html/template"
	"io"
	"mime"
	"mime/multipart"
	"net"
	"net/http"
	"net/mail"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/jitprov/jitprov/events/webhooksig"
)

// Message is one mail or webhook delivery received.
type Message struct {
	ID       int       `json:"id"`
	Channel  string    `json:"channel"` // "mail" or "webhook"
	At       time.Time `json:"at"`
	To       []string  `json:"to,omitempty"`
	Subject  string    `json:"subject"`
	Text     string    `json:"text"`
	HTML     string    `json:"html,omitempty"`
	Type     string    `json:"type,omitempty"`     // webhook: the CloudEvent type, or the content type
	Verified bool      `json:"verified,omitempty"` // webhook: the signature verified
}

// keep bounds the messages kept; the oldest go first.
const keep = 500

// Inbox keeps the messages.
type Inbox struct {
	secret []byte
	mu     sync.Mutex
	msgs   []Message
	next   int
	smtp   *smtp.Server
}

// New returns an inbox whose webhook verifies signatures with secret.
func New(secret []byte) *Inbox {
	in := &Inbox{secret: secret}
	s := smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) { return &session{in: in}, nil }))
	s.Domain = "inbox.jitprov.dev"
	s.ReadTimeout, s.WriteTimeout = 30*time.Second, 30*time.Second
	s.MaxMessageBytes = 1 << 20
	s.MaxRecipients = 50
	in.smtp = s
	return in
}

// ServeSMTP accepts mail on ln until Close.
func (in *Inbox) ServeSMTP(ln net.Listener) error {
	if err := in.smtp.Serve(ln); err != nil && !errors.Is(err, smtp.ErrServerClosed) {
		return err
	}
	return nil
}

// Close stops the SMTP server.
func (in *Inbox) Close() error { return in.smtp.Close() }

// Messages returns the messages kept, newest first.
func (in *Inbox) Messages() []Message {
	in.mu.Lock()
	defer in.mu.Unlock()
	out := slices.Clone(in.msgs)
	slices.Reverse(out)
	return out
}

func (in *Inbox) add(m Message) {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.next++
	m.ID, m.At = in.next, time.Now()
	in.msgs = append(in.msgs, m)
	if len(in.msgs) > keep {
		in.msgs = slices.Delete(in.msgs, 0, len(in.msgs)-keep)
	}
}

// Handler serves GET / (the page), GET /messages.json and POST /webhook,
// relative to where it is mounted (use http.StripPrefix).
func (in *Inbox) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", in.page)
	mux.HandleFunc("GET /messages.json", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		_ = json.NewEncoder(w).Encode(in.Messages())
	})
	mux.HandleFunc("POST /webhook", in.webhook)
	return mux
}

func (in *Inbox) webhook(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		http.Error(w, "cannot read the body", http.StatusBadRequest)
		return
	}
	sigErr := webhooksig.Verify(in.secret, r.Header.Get(webhooksig.HeaderDelivery), body, r.Header.Get(webhooksig.HeaderSignature), time.Now(), 0)
	if sigErr != nil {
		// A receiver refuses what it cannot verify; the notifier parks it.
		http.Error(w, "signature: "+sigErr.Error(), http.StatusUnauthorized)
		return
	}
	m := Message{Channel: "webhook", Verified: true, Type: r.Header.Get("Content-Type")}
	var pretty bytes.Buffer
	if json.Indent(&pretty, body, "", "  ") == nil {
		m.Text = pretty.String()
	} else {
		m.Text = string(body)
	}
	var ev struct {
		Type  string `json:"type"`
		Count any    `json:"jitprovcount"`
	}
	if json.Unmarshal(body, &ev) == nil && ev.Type != "" {
		m.Type, m.Subject = ev.Type, ev.Type
		if ev.Count != nil {
			m.Subject += " (" + strings.Trim(strings.TrimSpace(jsonString(ev.Count)), `"`) + " alerts)"
		}
	} else {
		var slack struct {
			Text string `json:"text"`
		}
		if json.Unmarshal(body, &slack) == nil && slack.Text != "" {
			m.Subject = slack.Text
		} else if strings.HasPrefix(m.Type, "application/cloudevents-batch") {
			m.Subject = "digest (CloudEvents batch)"
		}
	}
	in.add(m)
	w.WriteHeader(http.StatusNoContent)
}

func jsonString(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

var pageTmpl = template.Must(template.New("inbox").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>jitprov dev inbox</title>
<meta http-equiv="refresh" content="5">
<style>body{font-family:sans-serif;max-width:60em;margin:2em auto;padding:0 1em}
.m{border:1px solid #ccc;border-radius:6px;padding:.5em 1em;margin:1em 0}
.meta{color:#666;font-size:.85em}pre{white-space:pre-wrap;background:#f6f6f6;padding:.5em}
.banner{background:#fff3cd;border:1px solid #e0c060;padding:.5em 1em;border-radius:6px}</style></head>
<body><p class="banner">Development inbox — what the notifier sent, kept in memory by <code>jitprov dev</code>. Not for production.</p>
<h1>Inbox ({{len .}})</h1>
{{if not .}}<p>Nothing yet. Sign in as a person of <em>demo-small</em> until its 3 seats are taken, or as Grace (who claims the admin role), and watch alerts arrive here. This page refreshes itself.</p>{{end}}
{{range .}}<div class="m"><div class="meta">#{{.ID}} · {{.Channel}} · {{.At.Format "15:04:05"}}{{if .To}} · to {{range $i, $t := .To}}{{if $i}}, {{end}}{{$t}}{{end}}{{end}}{{if .Verified}} · signature verified{{end}}</div>
<h3>{{.Subject}}</h3><pre>{{.Text}}</pre></div>
{{end}}</body></html>
`))

func (in *Inbox) page(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	_ = pageTmpl.Execute(w, in.Messages())
}

// session receives one SMTP transaction.
type session struct {
	in *Inbox
	to []string
}

func (s *session) Reset()        { s.to = nil }
func (s *session) Logout() error { return nil }
func (s *session) Mail(string, *smtp.MailOptions) error {
	return nil
}
func (s *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.to = append(s.to, to)
	return nil
}

func (s *session) Data(r io.Reader) error {
	msg, err := mail.ReadMessage(r)
	if err != nil {
		return err
	}
	m := Message{Channel: "mail", To: slices.Clone(s.to)}
	var dec mime.WordDecoder
	if m.Subject, err = dec.DecodeHeader(msg.Header.Get("Subject")); err != nil {
		m.Subject = msg.Header.Get("Subject")
	}
	mt, params, err := mime.ParseMediaType(msg.Header.Get("Content-Type"))
	if err == nil && strings.HasPrefix(mt, "multipart/") {
		mr := multipart.NewReader(msg.Body, params["boundary"])
		for {
			p, err := mr.NextPart()
			if err != nil {
				break
			}
			b, _ := io.ReadAll(io.LimitReader(p, 1<<20))
			switch ct, _, _ := mime.ParseMediaType(p.Header.Get("Content-Type")); ct {
			case "text/plain":
				m.Text = string(b)
			case "text/html":
				m.HTML = string(b)
			}
		}
	} else {
		b, _ := io.ReadAll(io.LimitReader(msg.Body, 1<<20))
		m.Text = string(b)
	}
	s.in.add(m)
	return nil
}
