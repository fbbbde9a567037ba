package notify

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"net/textproto"
	"strings"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// TLS modes of the SMTP connection.
const (
	SMTPStartTLS = "starttls" // plain connection upgraded by STARTTLS (port 587); required
	SMTPTLS      = "tls"      // TLS from the first byte (port 465)
	SMTPPlain    = "none"     // no TLS: a relay on localhost or in development only
)

// SMTPConfig is the mail server the notifier submits through.
type SMTPConfig struct {
	Addr string // host:port
	TLS  string // SMTPStartTLS (default), SMTPTLS or SMTPPlain
	// Username and Password authenticate with AUTH PLAIN (only over TLS,
	// or to a server on a loopback address).
	Username string
	Password string
	// From is the sender, e.g. "jitprov <noreply@example.com>".
	From string
	// HeloName is the name given in EHLO; default "localhost".
	HeloName string
	// TLSConfig overrides the TLS settings (tests trust their own CA).
	TLSConfig *tls.Config
}

// Mailer submits jobs as email.
type Mailer struct {
	cfg  SMTPConfig
	from *mail.Address
}

// NewMailer checks cfg and returns a Mailer.
func NewMailer(cfg SMTPConfig) (*Mailer, error) {
	if cfg.TLS == "" {
		cfg.TLS = SMTPStartTLS
	}
	if cfg.HeloName == "" {
		cfg.HeloName = "localhost"
	}
	if _, _, err := net.SplitHostPort(cfg.Addr); err != nil {
		return nil, fmt.Errorf("smtp: address %q is not host:port: %w", cfg.Addr, err)
	}
	switch cfg.TLS {
	case SMTPStartTLS, SMTPTLS, SMTPPlain:
	default:
		return nil, fmt.Errorf("smtp: tls %q is not starttls, tls or none", cfg.TLS)
	}
	from, err := mail.ParseAddress(cfg.From)
	if err != nil {
		return nil, fmt.Errorf("smtp: from %q is not an address such as \"jitprov <noreply@example.com>\": %w", cfg.From, err)
	}
	return &Mailer{cfg: cfg, from: from}, nil
}

// Send submits msg to one address. ctx's deadline bounds the whole
// exchange, so a server that stops answering cannot hold the sender.
func (m *Mailer) Send(ctx context.Context, to, deliveryID string, msg Message) error {
	body, err := m.compose(to, deliveryID, msg, time.Now())
	if err != nil {
		return permanent("email to %s: %w", to, err)
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", m.cfg.Addr)
	if err != nil {
		return fmt.Errorf("smtp %s: %w", m.cfg.Addr, err)
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Now()) })
	defer stop()
	host, _, _ := net.SplitHostPort(m.cfg.Addr)
	tlsConfig := m.cfg.TLSConfig
	if tlsConfig == nil {
		tlsConfig = &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12}
	}
	var c *smtp.Client
	switch m.cfg.TLS {
	case SMTPTLS:
		c = smtp.NewClient(tls.Client(conn, tlsConfig))
	case SMTPStartTLS:
		if c, err = smtp.NewClientStartTLS(conn, tlsConfig); err != nil {
			_ = conn.Close()
			return fmt.Errorf("smtp %s: STARTTLS: %w", m.cfg.Addr, err)
		}
	default:
		c = smtp.NewClient(conn)
	}
	defer c.Close()
	if err := c.Hello(m.cfg.HeloName); err != nil {
		return smtpErr(m.cfg.Addr, "EHLO", err)
	}
	if m.cfg.Username != "" {
		if err := c.Auth(sasl.NewPlainClient("", m.cfg.Username, m.cfg.Password)); err != nil {
			return smtpErr(m.cfg.Addr, "AUTH", err)
		}
	}
	rcpt, _ := mail.ParseAddress(to) // compose checked it
	if err := c.SendMail(m.from.Address, []string{rcpt.Address}, bytes.NewReader(body)); err != nil {
		return smtpErr(m.cfg.Addr, "sending to "+to, err)
	}
	_ = c.Quit()
	return nil
}

// smtpErr classifies a server's answer: 5xx is permanent (a refused
// mailbox or credentials), anything else is worth another try.
func smtpErr(addr, step string, err error) error {
	var se *smtp.SMTPError
	if errors.As(err, &se) && se.Code >= 500 {
		return permanent("smtp %s: %s: %w", addr, step, err)
	}
	return fmt.Errorf("smtp %s: %s: %w", addr, step, err)
}

// compose renders msg as a multipart/alternative mail, plain text and
// HTML, both quoted-printable UTF-8.
func (m *Mailer) compose(to, deliveryID string, msg Message, now time.Time) ([]byte, error) {
	rcpt, err := mail.ParseAddress(to)
	if err != nil {
		return nil, fmt.Errorf("%q is not an email address: %w", to, err)
	}
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	sum := sha256.Sum256([]byte(deliveryID))
	h := []struct{ k, v string }{
		{"From", m.from.String()},
		{"To", (&mail.Address{Address: rcpt.Address}).String()},
		{"Subject", mime.QEncoding.Encode("utf-8", msg.Subject)},
		{"Date", now.Format(time.RFC1123Z)},
		{"Message-ID", "<" + hex.EncodeToString(sum[:16]) + ".jitprov@" + domainOf(m.from.Address) + ">"},
		{"MIME-Version", "1.0"},
		{"Content-Type", "multipart/alternative; boundary=" + mw.Boundary()},
		{"Auto-Submitted", "auto-generated"},
		{"X-Jitprov-Delivery", printable(deliveryID)},
	}
	for _, kv := range h {
		fmt.Fprintf(&buf, "%s: %s\r\n", kv.k, kv.v)
	}
	buf.WriteString("\r\n")
	for _, part := range []struct{ typ, body string }{{"text/plain", msg.Text()}, {"text/html", msg.HTML()}} {
		w, err := mw.CreatePart(textproto.MIMEHeader{
			"Content-Type":              {part.typ + "; charset=utf-8"},
			"Content-Transfer-Encoding": {"quoted-printable"},
		})
		if err != nil {
			return nil, err
		}
		qp := quotedprintable.NewWriter(w)
		if _, err := qp.Write([]byte(part.body)); err != nil {
			return nil, err
		}
		if err := qp.Close(); err != nil {
			return nil, err
		}
	}
	if err := mw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// printable keeps the visible ASCII of s: nothing that could end a header.
func printable(s string) string {
	return strings.Map(func(r rune) rune {
		if r < '!' || r > '~' {
			return -1
		}
		return r
	}, s)
}

func domainOf(addr string) string {
	for i := len(addr) - 1; i >= 0; i-- {
		if addr[i] == '@' {
			return addr[i+1:]
		}
	}
	return "localhost"
}
