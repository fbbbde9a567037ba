package testenv

import (
	"bytes"
	"io"
	"mime"
	"mime/multipart"
	"net"
	"net/mail"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
)

// MailSink is a real SMTP server (emersion/go-smtp) in the test process
// that keeps every mail it accepts. It offers no TLS or AUTH: point a
// client at it with TLS "none".
type MailSink struct {
	Addr string
	mu   sync.Mutex
	msgs []Mail
}

// Mail is one accepted mail: its envelope and raw content.
type Mail struct {
	From string
	To   []string
	Raw  []byte
}

// SMTP starts a MailSink on a free loopback port, closed when t ends.
func SMTP(t testing.TB) *MailSink {
	t.Helper()
	sink := &MailSink{}
	srv := smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) { return &mailSession{sink: sink}, nil }))
	srv.Domain = "mail.test"
	srv.ReadTimeout, srv.WriteTimeout = 10*time.Second, 10*time.Second
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("testenv: smtp listen: %v", err)
	}
	sink.Addr = ln.Addr().String()
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return sink
}

// Mails returns the mails accepted so far.
func (s *MailSink) Mails() []Mail {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Mail(nil), s.msgs...)
}

type mailSession struct {
	sink *MailSink
	cur  Mail
}

func (m *mailSession) Reset()        { m.cur = Mail{} }
func (m *mailSession) Logout() error { return nil }
func (m *mailSession) Mail(from string, _ *smtp.MailOptions) error {
	m.cur.From = from
	return nil
}
func (m *mailSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	m.cur.To = append(m.cur.To, to)
	return nil
}
func (m *mailSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	m.cur.Raw = b
	m.sink.mu.Lock()
	m.sink.msgs = append(m.sink.msgs, m.cur)
	m.sink.mu.Unlock()
	return nil
}

// ParsedMail is a multipart/alternative mail read back.
type ParsedMail struct {
	Subject, Text, HTML string
	Header              mail.Header
}

// ParseMail reads raw as a multipart/alternative mail with a text and an
// HTML part, failing t when it is not one.
func ParseMail(t testing.TB, raw []byte) ParsedMail {
	t.Helper()
	msg, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("mail does not parse: %v", err)
	}
	var dec mime.WordDecoder
	subject, err := dec.DecodeHeader(msg.Header.Get("Subject"))
	if err != nil {
		t.Fatal(err)
	}
	out := ParsedMail{Subject: subject, Header: msg.Header}
	mt, params, err := mime.ParseMediaType(msg.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/alternative" {
		t.Fatalf("content type %q (%v), want multipart/alternative", msg.Header.Get("Content-Type"), err)
	}
	mr := multipart.NewReader(msg.Body, params["boundary"])
	for {
		p, err := mr.NextPart() // decodes quoted-printable
		if err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(p)
		switch ct, _, _ := mime.ParseMediaType(p.Header.Get("Content-Type")); ct {
		case "text/plain":
			out.Text = string(b)
		case "text/html":
			out.HTML = string(b)
		}
	}
	return out
}
