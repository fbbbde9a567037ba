package client_test

// The client against the real API is tested in cmd/jitprov (admin_test.go,
// on Postgres); these are what a real API does not easily produce.

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/jitprov/jitprov/internal/admin/client"
)

const secret = "jpt_secretsecretsecret"

func TestNew(t *testing.T) {
	for _, tc := range []struct {
		server, want string
	}{
		{"", "--server"},
		{"admin.example.com", "not an http(s) URL"},
		{"ftp://admin.example.com", "not an http(s) URL"},
		{"https://user:pw@admin.example.com", "must not hold credentials"},
	} {
		if _, err := client.New(tc.server, secret); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("New(%q) = %v, want %q", tc.server, err, tc.want)
		}
	}
	for _, s := range []string{"https://a.example", "https://a.example/", "https://a.example/api/v1", "https://a.example/api/v1/"} {
		c, err := client.New(s, secret)
		if err != nil || c.Server() != "https://a.example" {
			t.Errorf("New(%q).Server() = %q, %v", s, c.Server(), err)
		}
	}
}

func TestErrors(t *testing.T) {
	var gotAuth, gotPath string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotAuth, gotPath = r.Header.Get("Authorization"), r.URL.EscapedPath()
		switch {
		case strings.HasSuffix(r.URL.Path, "/limited"):
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Retry-After", "7")
			w.WriteHeader(429)
			w.Write([]byte(`{"error":{"code":"rate_limited","message":"too many requests"}}`))
		case strings.HasSuffix(r.URL.Path, "/redirect"):
			http.Redirect(w, r, "https://elsewhere.example/", http.StatusFound)
		case strings.HasSuffix(r.URL.Path, "/slow"):
			time.Sleep(200 * time.Millisecond)
		case strings.HasPrefix(r.URL.Path, "/api/v1/organizations/"):
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(401)
			w.Write([]byte(`{"error":{"code":"unauthorized","message":"the token is not valid"}}`))
		default:
			w.Write([]byte("<html>a proxy</html>"))
		}
	}))
	defer srv.Close()
	c, _ := client.New(srv.URL, secret, client.WithTimeout(100*time.Millisecond))
	ctx := context.Background()

	_, err := c.User(ctx, "acme", "a/b c")
	var e *client.Error
	if !errors.As(err, &e) || e.Status != 401 || e.Code != "unauthorized" || !strings.Contains(err.Error(), "jitprov tokens create") {
		t.Errorf("401: %#v", err)
	}
	if gotAuth != "Bearer "+secret || gotPath != "/api/v1/organizations/acme/users/a%2Fb%20c" {
		t.Errorf("sent %q to %q", gotAuth, gotPath)
	}
	_, err = c.Organizations(ctx)
	if !client.IsCode(err, client.CodeBadAnswer) || !strings.Contains(err.Error(), "without the admin API's JSON") {
		t.Errorf("HTML: %v", err)
	}
	_, err = c.Organization(ctx, "limited")
	if !errors.As(err, &e) || e.RetryAfter != 7*time.Second || !strings.Contains(err.Error(), "wait 7s") {
		t.Errorf("429: %v", err)
	}
	_, err = c.Organization(ctx, "redirect")
	if !client.IsCode(err, client.CodeBadAnswer) {
		t.Errorf("a redirect is followed: %v", err)
	}
	_, err = c.Organization(ctx, "slow")
	if !client.IsCode(err, client.CodeUnreachable) || !strings.Contains(err.Error(), "did not answer in time") {
		t.Errorf("timeout: %v", err)
	}
	srv.Close()
	_, err = c.Organizations(ctx)
	if !client.IsCode(err, client.CodeUnreachable) || !strings.Contains(err.Error(), "cannot reach") {
		t.Errorf("closed: %v", err)
	}
	if err != nil && strings.Contains(err.Error(), secret) {
		t.Error("an error shows the token")
	}
}
