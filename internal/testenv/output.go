package testenv

import (
	"bytes"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// Output collects what a command or a logger writes, from any number of
// goroutines: a process's stderr, a service's logs.
type Output struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (o *Output) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.buf.Write(p)
}

// String is everything written so far.
func (o *Output) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.buf.String()
}

// Count is how many times s was written.
func (o *Output) Count(s string) int { return strings.Count(o.String(), s) }

// Logger is a text logger writing to o.
func (o *Output) Logger() *slog.Logger { return slog.New(slog.NewTextHandler(o, nil)) }

// WaitHTTP polls GET url until it answers status with a body containing
// want, and fails t after within. It fails at once with what stopped
// delivers, if anything: the service under test returning while it is
// waited for.
func WaitHTTP(t testing.TB, url string, status int, want string, within time.Duration, stopped <-chan error) {
	t.Helper()
	client := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(within)
	var got int
	var body string
	for {
		got, body = 0, ""
		if resp, err := client.Get(url); err != nil {
			body = err.Error()
		} else {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			got, body = resp.StatusCode, string(b)
		}
		if got == status && strings.Contains(body, want) {
			return
		}
		select {
		case err := <-stopped:
			t.Fatalf("testenv: the service stopped (%v) while %s was awaited to answer %d %q", err, url, status, want)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("testenv: %s did not answer %d %q within %s (last: %d %q)", url, status, want, within, got, body)
		}
		time.Sleep(50 * time.Millisecond) // the poll interval of a condition
	}
}

// WaitFor polls cond until it holds, and fails t when it has not within
// the limit: a wait on the awaited state itself (a consumer's own
// account, a row), never a sleep before asserting.
func WaitFor(t testing.TB, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, within)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
