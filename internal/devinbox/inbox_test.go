package devinbox_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/jitprov/jitprov/events/webhooksig"
	"github.com/jitprov/jitprov/internal/devinbox"
	"github.com/jitprov/jitprov/internal/notify"
)

func TestInboxKeepsMailAndVerifiedWebhooks(t *testing.T) {
	secret := []byte("test-fixture-secret")
	in := devinbox.New(secret)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = in.ServeSMTP(ln) }()
	t.Cleanup(func() { _ = in.Close() })
	srv := httptest.NewServer(http.StripPrefix("/inbox", in.Handler()))
	t.Cleanup(srv.Close)

	// A mail, as the notifier sends it.
	m, err := notify.NewMailer(notify.SMTPConfig{Addr: ln.Addr().String(), TLS: notify.SMTPPlain, From: "jitprov <noreply@jitprov.dev>"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := m.Send(ctx, "admins@demo.example", "d-1", notify.Message{Subject: "Demo uses 3 of 3 seats", Lines: []string{"Ünïcode body"}}); err != nil {
		t.Fatal(err)
	}

	// A signed webhook delivery, and a forged one.
	body := []byte(`{"specversion":"1.0","id":"1","source":"/t","type":"io.jitprov.seats.exhausted.v1","jitprovcount":7}`)
	post := func(sig string) int {
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/inbox/webhook", bytes.NewReader(body))
		req.Header.Set(webhooksig.HeaderSignature, sig)
		req.Header.Set(webhooksig.HeaderDelivery, "d-1")
		req.Header.Set("Content-Type", "application/cloudevents+json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if got := post(webhooksig.Sign(secret, "d-1", body, time.Now())); got != http.StatusNoContent {
		t.Errorf("signed delivery answered %d, want 204", got)
	}
	if got := post(webhooksig.Sign([]byte("guess"), "d-1", body, time.Now())); got != http.StatusUnauthorized {
		t.Errorf("forged delivery answered %d, want 401", got)
	}

	resp, err := http.Get(srv.URL + "/inbox/messages.json")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var msgs []devinbox.Message
	if err := json.NewDecoder(resp.Body).Decode(&msgs); err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 2 {
		t.Fatalf("got %d messages, want 2: %+v", len(msgs), msgs)
	}
	hook, mail := msgs[0], msgs[1] // newest first
	if hook.Channel != "webhook" || !hook.Verified || hook.Subject != "io.jitprov.seats.exhausted.v1 (7 alerts)" {
		t.Errorf("webhook message %+v", hook)
	}
	if mail.Channel != "mail" || mail.Subject != "Demo uses 3 of 3 seats" || !strings.Contains(mail.Text, "Ünïcode body") ||
		len(mail.To) != 1 || mail.To[0] != "admins@demo.example" {
		t.Errorf("mail message %+v", mail)
	}
	page, err := http.Get(srv.URL + "/inbox/")
	if err != nil {
		t.Fatal(err)
	}
	defer page.Body.Close()
	var b bytes.Buffer
	_, _ = b.ReadFrom(page.Body)
	if !strings.Contains(b.String(), "Not for production") || !strings.Contains(b.String(), "Demo uses 3 of 3 seats") {
		t.Errorf("inbox page:\n%s", b.String())
	}
}
