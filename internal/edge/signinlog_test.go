package edge_test

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/jitprov/jitprov/internal/telemetry"
	"github.com/jitprov/jitprov/internal/testenv"
)

// knownRecord reports whether the provisioner's record of acme/idp's
// person ext is in the known identities (the fast path reads it).
func knownRecord(t *testing.T, w *world, ext string) bool {
	t.Helper()
	_, err := w.knownIDs(t).Get(context.Background(), "acme", "idp", ext)
	return err == nil
}

// signInLines are the "signed in" records in out (JSON lines).
func signInLines(t *testing.T, out *testenv.Output) []map[string]any {
	t.Helper()
	var lines []map[string]any
	sc := bufio.NewScanner(strings.NewReader(out.String()))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var rec map[string]any
		if json.Unmarshal(sc.Bytes(), &rec) == nil && rec["msg"] == "signed in" {
			lines = append(lines, rec)
		}
	}
	return lines
}

// Every sign-in is logged once at info, one line: the outcome, the
// protocol, organisation and connection, whether it took the fast path,
// the user id and the request's trace id — the returning one (fast path)
// included, which used to leave no line at any level. No token, assertion
// or claim value is in it.
func TestEverySignInIsLoggedOnce(t *testing.T) {
	var out testenv.Output
	log, err := telemetry.NewLogger(&out, "info", "json")
	if err != nil {
		t.Fatal(err)
	}
	tp := sdktrace.NewTracerProvider()
	t.Cleanup(func() { _ = tp.Shutdown(t.Context()) })
	w := newWorld(t, 10, true, withLogger(log), withTracer(tp))
	w.idp.signsIn(person("00u-lin", "lin@acme.example"))

	tests := []struct {
		name     string
		outcome  string
		fastPath bool
	}{
		{"first sign-in", "created", false},
		{"returning, unchanged claims", "existing", true},
	}
	var userID string
	for i, tt := range tests {
		b := newBrowser(t)
		resp, form := login(t, b, w.edgeURL, "/app")
		if resp.Status != http.StatusSeeOther {
			t.Fatalf("%s: ACS %d %s", tt.name, resp.Status, resp.Body)
		}
		if i == 0 {
			_, userID = verify(t, b, w.edgeURL)
			// The fast path needs the provisioner's record of the person.
			waitUntil(t, func() bool { return knownRecord(t, w, "00u-lin") })
		}
		lines := signInLines(t, &out)
		if len(lines) != i+1 {
			t.Fatalf("%s: %d sign-in lines in all, want %d:\n%s", tt.name, len(lines), i+1, out.String())
		}
		rec := lines[i]
		for k, want := range map[string]any{
			"level": "INFO", "outcome": tt.outcome, "protocol": "saml", "org": "acme", "connection": "idp",
			"fast_path": tt.fastPath, "user_id": userID,
		} {
			if rec[k] != want {
				t.Errorf("%s: %s = %v, want %v (%v)", tt.name, k, rec[k], want, rec)
			}
		}
		if id, _ := rec["trace_id"].(string); len(id) != 32 {
			t.Errorf("%s: trace_id %v, want the request's", tt.name, rec["trace_id"])
		}
		raw, _ := json.Marshal(rec)
		for _, secret := range []string{form.Get("SAMLResponse")[:40], "lin@acme.example"} {
			if strings.Contains(string(raw), secret) {
				t.Errorf("%s: the sign-in line carries %q: %s", tt.name, secret, raw)
			}
		}
		allowed := []string{"time", "level", "msg", "outcome", "protocol", "org", "connection", "fast_path", "user_id", "login_id", "trace_id", "span_id"}
		for k := range rec {
			if !slices.Contains(allowed, k) {
				t.Errorf("%s: the sign-in line carries %s=%v", tt.name, k, rec[k])
			}
		}
	}
}
