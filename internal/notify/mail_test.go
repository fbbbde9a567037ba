package notify_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"io"
	"math/big"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/jitprov/jitprov/internal/notify"
)

// authServer is a real SMTP server (go-smtp) that offers STARTTLS or
// implicit TLS and requires AUTH PLAIN, as a mail provider does.
type authServer struct {
	addr     string
	pool     *x509.CertPool
	mu       sync.Mutex
	received []string // "user → rcpt"
	tlsSeen  []bool
}

func startAuthServer(t *testing.T, implicit bool) *authServer {
	t.Helper()
	cert, pool := selfSigned(t, "localhost")
	a := &authServer{pool: pool}
	srv := smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		return &authSession{srv: a, conn: c}, nil
	}))
	srv.Domain = "localhost"
	srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	srv.AllowInsecureAuth = false // AUTH only after TLS
	srv.ReadTimeout, srv.WriteTimeout = 10*time.Second, 10*time.Second
	var ln net.Listener
	var err error
	if implicit {
		ln, err = tls.Listen("tcp", "127.0.0.1:0", srv.TLSConfig)
	} else {
		ln, err = net.Listen("tcp", "127.0.0.1:0")
	}
	if err != nil {
		t.Fatal(err)
	}
	a.addr = ln.Addr().String()
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return a
}

type authSession struct {
	srv  *authServer
	conn *smtp.Conn
	user string
}

func (s *authSession) AuthMechanisms() []string { return []string{sasl.Plain} }
func (s *authSession) Auth(string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(_, user, pass string) error {
		if user != "jitprov" || pass != "test-fixture-password" {
			return &smtp.SMTPError{Code: 535, EnhancedCode: smtp.EnhancedCode{5, 7, 8}, Message: "authentication failed"}
		}
		s.user = user
		return nil
	}), nil
}
func (s *authSession) Reset()        {}
func (s *authSession) Logout() error { return nil }
func (s *authSession) Mail(string, *smtp.MailOptions) error {
	if s.user == "" {
		return smtp.ErrAuthRequired
	}
	return nil
}
func (s *authSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	if strings.HasSuffix(to, "@nowhere.example") {
		return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such mailbox"}
	}
	s.srv.mu.Lock()
	defer s.srv.mu.Unlock()
	_, isTLS := s.conn.TLSConnectionState() // as the message is submitted, after any STARTTLS
	s.srv.received = append(s.srv.received, s.user+" → "+to)
	s.srv.tlsSeen = append(s.srv.tlsSeen, isTLS)
	return nil
}
func (s *authSession) Data(r io.Reader) error { _, err := io.Copy(io.Discard, r); return err }

// The mailer submits over STARTTLS or implicit TLS with AUTH PLAIN; a
// wrong password and a refused mailbox are permanent (the job is parked,
// not retried), an unreachable server is worth another try.
func TestMailerTLSAndAuth(t *testing.T) {
	msg := notify.Message{Subject: "Acme uses 45 of 50 seats", Lines: []string{"Seats run out."}}
	for _, tc := range []struct {
		name      string
		implicit  bool
		mode      string
		password  string
		to        string
		permanent bool
		fails     bool
	}{
		{name: "starttls", mode: notify.SMTPStartTLS, password: "test-fixture-password", to: "ada@acme.example"},
		{name: "implicit tls", implicit: true, mode: notify.SMTPTLS, password: "test-fixture-password", to: "ada@acme.example"},
		{name: "wrong password", mode: notify.SMTPStartTLS, password: "guess", to: "ada@acme.example", fails: true, permanent: true},
		{name: "refused mailbox", mode: notify.SMTPStartTLS, password: "test-fixture-password", to: "ghost@nowhere.example", fails: true, permanent: true},
		{name: "plain to a TLS-only server refuses auth", mode: notify.SMTPPlain, password: "test-fixture-password", to: "ada@acme.example", fails: true, permanent: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := startAuthServer(t, tc.implicit)
			m, err := notify.NewMailer(notify.SMTPConfig{Addr: srv.addr, TLS: tc.mode, Username: "jitprov", Password: tc.password,
				From: "jitprov <noreply@jitprov.test>", TLSConfig: &tls.Config{RootCAs: srv.pool, ServerName: "localhost", MinVersion: tls.VersionTLS12}})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			err = m.Send(ctx, tc.to, "d-1", msg)
			var perm *notify.PermanentError
			switch {
			case !tc.fails && err != nil:
				t.Fatalf("Send: %v", err)
			case tc.fails && err == nil:
				t.Fatal("Send succeeded, want a failure")
			case tc.fails && errors.As(err, &perm) != tc.permanent:
				t.Errorf("Send: %v; permanent %t, want %t", err, errors.As(err, &perm), tc.permanent)
			}
			if tc.fails {
				return
			}
			srv.mu.Lock()
			defer srv.mu.Unlock()
			if len(srv.received) != 1 || srv.received[0] != "jitprov → "+tc.to || !srv.tlsSeen[0] {
				t.Errorf("server received %v (tls %v)", srv.received, srv.tlsSeen)
			}
		})
	}

	// A server that does not answer: a timeout, worth another try.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close() // accept and say nothing
		}
	}()
	m, _ := notify.NewMailer(notify.SMTPConfig{Addr: ln.Addr().String(), TLS: notify.SMTPPlain, From: "noreply@jitprov.test"})
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	start := time.Now()
	err = m.Send(ctx, "ada@acme.example", "d-2", msg)
	var perm *notify.PermanentError
	if err == nil || errors.As(err, &perm) || time.Since(start) > 3*time.Second {
		t.Errorf("silent server: %v after %s; want a retryable failure at the deadline", err, time.Since(start))
	}
}

func selfSigned(t *testing.T, host string) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: host}, DNSNames: []string{host},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true, IsCA: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: cert}, pool
}
