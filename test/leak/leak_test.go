// Package leak_test checks that no secret reaches an operator's eyes by
// the side doors: no log line, span (name, attributes, events, status,
// links) or Prometheus metric of any jitprov service holds a secret, a
// token, an assertion or a cookie.
//
// It runs the whole system as `jitprov dev` does (devmode.Run in this
// process: every service, the development IdP, SQLite and an embedded
// NATS), logging at debug level as JSON and recording every span, and then
// does what sends secrets through it: SAML and OpenID Connect sign-ins
// through the development IdP, a replayed assertion and a forged one, a
// seat alert delivered by signed webhook, admin API and SCIM calls with
// good, revoked and made-up tokens. Each secret it met on the way — those
// dev mode keeps in its folder, the tokens it made, every cookie the
// browser got, the SAML responses and authorisation codes it carried — is
// then searched for in everything the services wrote.
package leak_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"log/slog"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/jitprov/jitprov/internal/devmode"
	"github.com/jitprov/jitprov/internal/telemetry"
	"github.com/jitprov/jitprov/internal/testenv"
	"github.com/jitprov/jitprov/internal/testenv/devtest"
)

// TestFinder checks the search itself, which the main test relies on to
// say nothing leaked.
func TestFinder(t *testing.T) {
	s := &secrets{}
	s.add("token", "jp_0123456789abcdefghij")
	s.add("key line", strings.Repeat("MIIEvQIBADANBgkqhkiG9w0BAQEFAASC", 2))
	s.add("short", "abc") // ignored: too short to search for
	for _, c := range []struct {
		text string
		want int
	}{
		{`msg="token jp_0123456789abcdefghij refused"`, 1},
		{`url=/x?t=jp_0123456789abcdefghij`, 1},
		{"cut: " + strings.Repeat("MIIEvQIBADANBgkqhkiG9w0BAQEFAASC", 2)[20:50], 1},
		{`abc jp_0123 nothing here`, 0},
	} {
		if got := len(s.find(c.text)); got != c.want {
			t.Errorf("find(%q) = %d secrets, want %d", c.text, got, c.want)
		}
	}
	for text, leak := range map[string]bool{
		`err="signature of <samlp:Response>: verification error"`:                  false,
		`body=<saml:Assertion xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion"`:  true,
		`<ds:SignatureValue>kR3x...`:                                               true,
		`<NameID Format="urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress">`: true,
	} {
		if got := assertionXML.MatchString(text); got != leak {
			t.Errorf("assertionXML matches %q: %t, want %t", text, got, leak)
		}
	}
}

func TestNoSecretInLogsSpansOrMetrics(t *testing.T) {
	spans := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(spans))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	mp, metrics, err := telemetry.NewPrometheusMeter()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
	logs := &testenv.Output{}
	d := devtest.Start(t, devmode.Config{Logger: slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Tracer: tp, Meter: mp, Metrics: metrics})

	seen := &secrets{}
	seen.addFolder(t, filepath.Join(d.DataDir, "secrets"))
	seen.addFolder(t, d.DataDir) // admin-token, the IdP's keys

	rec := &recorder{base: http.DefaultTransport, s: seen}

	// SAML: a first sign-in, then the same response again (a replay) and a
	// forged one (the signature's bytes changed).
	b := testenv.NewBrowser(t, testenv.Timeout(30*time.Second))
	b.Client().Transport = rec
	post := b.Get(d.EdgeURL + "/saml/demo/devidp-saml/login").Click("Sign in as Ada Lovelace")
	form := post.Forms()[0]
	samlResponse := form.Fields.Get("SAMLResponse")
	if samlResponse == "" {
		t.Fatalf("the IdP's page has no SAMLResponse to post:\n%s", post.Body)
	}
	if home := post.Submit(); home.Status != http.StatusOK {
		t.Fatalf("SAML sign-in: status %d at %s:\n%s", home.Status, home.URL, home.Body)
	}
	if p := testenv.NewBrowser(t).Post(form.Action, form.Fields); p.Status < 400 {
		t.Fatalf("a replayed SAML response got status %d, want a refusal", p.Status)
	}
	forged := forge(t, samlResponse)
	seen.add("forged SAML response", forged)
	forgedForm := url.Values{"SAMLResponse": {forged}, "RelayState": {form.Fields.Get("RelayState")}}
	if p := testenv.NewBrowser(t).Post(form.Action, forgedForm); p.Status < 400 {
		t.Fatalf("a forged SAML response got status %d, want a refusal", p.Status)
	}

	// OpenID Connect: Ada again (one user, two identities), then Olivia.
	for _, who := range []string{"Ada Lovelace", "Olivia Operator"} {
		b := testenv.NewBrowser(t, testenv.Timeout(30*time.Second))
		b.Client().Transport = rec
		if home := b.Get(d.EdgeURL + "/oidc/demo/devidp-oidc/login").Click("Sign in as " + who); home.Status != http.StatusOK {
			t.Fatalf("OIDC sign-in of %s: status %d at %s:\n%s", who, home.Status, home.URL, home.Body)
		}
	}

	// demo-small has three seats: the fourth person's sign-in is refused
	// and an alert goes out by the signed webhook to the dev inbox.
	for _, who := range []string{"Alan Turing", "Barbara Liskov", "Edsger Dijkstra", "Katherine Johnson"} {
		b := testenv.NewBrowser(t, testenv.Timeout(30*time.Second))
		b.Client().Transport = rec
		b.Get(d.EdgeURL + "/saml/demo-small/devidp-saml/login").Click("Sign in as " + who).Submit()
	}

	// The admin API and SCIM: tokens made, used, revoked, and made up.
	admin := readSecret(t, filepath.Join(d.DataDir, "admin-token"))
	api := &http.Client{Transport: rec, Timeout: 30 * time.Second}
	created := call(t, api, "POST", d.DevURL+"/api/v1/tokens", admin,
		`{"name": "leak-test", "organization": "demo", "scope": "scim", "expires_in": "1h"}`, http.StatusCreated)
	var tok struct {
		Token struct {
			ID string `json:"id"`
		} `json:"token"`
		Secret string `json:"secret"`
	}
	if err := json.Unmarshal(created, &tok); err != nil || tok.Secret == "" {
		t.Fatalf("POST /api/v1/tokens: %v\n%s", err, created)
	}
	seen.add("SCIM token", tok.Secret)
	call(t, api, "GET", d.DevURL+"/scim/v2/Users?filter="+url.QueryEscape(`userName eq "ada@demo.example"`), tok.Secret, "", http.StatusOK)
	call(t, api, "GET", d.DevURL+"/api/v1/organizations/demo/users", tok.Secret, "", http.StatusForbidden)
	madeUp := "jp_" + strings.Repeat("Zq7", 15)
	seen.add("made-up token", madeUp)
	call(t, api, "GET", d.DevURL+"/api/v1/organizations", madeUp, "", http.StatusUnauthorized)
	call(t, api, "GET", d.DevURL+"/scim/v2/Users", madeUp, "", http.StatusUnauthorized)
	call(t, api, "DELETE", d.DevURL+"/api/v1/tokens/"+tok.Token.ID, admin, "", http.StatusOK)
	call(t, api, "GET", d.DevURL+"/scim/v2/Users", tok.Secret, "", http.StatusUnauthorized)

	// Wait for the seat alert's webhook: its delivery is what puts the
	// webhook secret to use.
	testenv.WaitHTTP(t, d.DevURL+"/inbox/", http.StatusOK, "demo-small", 2*time.Minute, nil)
	if err := tp.ForceFlush(context.Background()); err != nil {
		t.Fatal(err)
	}

	if len(spans.GetSpans()) == 0 {
		t.Fatal("no span was recorded: the test would find nothing")
	}
	if !strings.Contains(logs.String(), `"level":"DEBUG"`) && !strings.Contains(logs.String(), `"level":"INFO"`) {
		t.Fatalf("no log line was captured: the test would find nothing:\n%s", logs.String())
	}
	scrape := testenv.NewBrowser(t).Get(d.DevURL + "/metrics")
	if scrape.Status != http.StatusOK || !strings.Contains(scrape.Body, "jitprov_edge_logins_total") {
		t.Fatalf("GET /metrics: status %d, no jitprov_edge_logins_total:\n%s", scrape.Status, scrape.Body)
	}
	texts := map[string]string{"the logs": logs.String(), "the metrics (/metrics)": scrape.Body}
	for i, s := range spans.GetSpans() {
		texts[fmt.Sprintf("span %d %q", i, s.Name)] = spanText(s)
	}
	if n := seen.count(); n < 10 {
		t.Fatalf("only %d secrets were collected: the test lost track of what it sends", n)
	}
	for where, text := range texts {
		for _, name := range seen.find(text) {
			t.Errorf("%s hold %s", where, name)
		}
		if m := assertionXML.FindString(text); m != "" {
			t.Errorf("%s hold SAML XML: %q", where, m)
		}
	}
	// Personal data stays out of spans and metrics, which go to a
	// collector and a backend: the people's addresses (the logs, read by
	// the operator, may name them).
	people := []string{"ada@demo.example", "olivia@demo.example", "alan@small.example", "barbara@small.example",
		"edsger@small.example", "katherine@small.example"}
	for where, text := range texts {
		if where == "the logs" {
			continue
		}
		for _, p := range people {
			if strings.Contains(text, p) {
				t.Errorf("%s hold the address %s", where, p)
			}
		}
	}
	if t.Failed() {
		t.Logf("logs:\n%s", logs.String())
	}
}

// assertionXML is a SAML message's XML, whatever its namespace prefix: an
// element with its attributes, or a signature's value. An element's bare
// name ("signature of <samlp:Response>") says where a check failed and is
// no leak.
var assertionXML = regexp.MustCompile(`<(\w+:)?(Assertion|Response|EncryptedAssertion|EncryptedData|NameID|Attribute)\s+[^>]*\w+=|<(\w+:)?(SignatureValue|CipherValue)>\S`)

// spanText is everything a span exports as text.
func spanText(s tracetest.SpanStub) string {
	var b strings.Builder
	b.WriteString(s.Name + "\n" + s.Status.Description + "\n")
	for _, kv := range s.Attributes {
		fmt.Fprintf(&b, "%s=%s\n", kv.Key, kv.Value.Emit())
	}
	for _, e := range s.Events {
		b.WriteString(e.Name + "\n")
		for _, kv := range e.Attributes {
			fmt.Fprintf(&b, "%s=%s\n", kv.Key, kv.Value.Emit())
		}
	}
	for _, l := range s.Links {
		for _, kv := range l.Attributes {
			fmt.Fprintf(&b, "%s=%s\n", kv.Key, kv.Value.Emit())
		}
	}
	return b.String()
}

// secrets are the secret values met, by what they are. A value is looked
// for as it is, URL-escaped, and — for long ones — by a 24-character
// stretch from its middle, so a value cut or re-encoded still shows.
type secrets struct {
	mu     sync.Mutex
	values map[string]string // value -> what it is
}

func (s *secrets) add(name, value string) {
	value = strings.TrimSpace(value)
	if len(value) < 12 { // too short to search for without false alarms
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.values == nil {
		s.values = map[string]string{}
	}
	if _, ok := s.values[value]; !ok {
		s.values[value] = name
	}
}

func (s *secrets) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.values)
}

// find names the secrets text holds.
func (s *secrets) find(text string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var found []string
	for v, name := range s.values {
		needles := []string{v, url.QueryEscape(v)}
		if len(v) > 48 {
			mid := len(v)/2 - 12
			needles = append(needles, v[mid:mid+24])
		}
		for _, n := range needles {
			if strings.Contains(text, n) {
				found = append(found, fmt.Sprintf("%s (%q…)", name, v[:min(8, len(v))]))
				break
			}
		}
	}
	return found
}

// addFolder adds the secrets dev mode keeps in dir: each file's content,
// and for PEM files each line of the key's base64 body.
func (s *secrets) addFolder(t *testing.T, dir string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatalf("dev mode's folder: %v", err)
	}
	for _, e := range entries {
		if e.IsDir() {
			continue
		}
		name := e.Name()
		if !isSecretFile(name) {
			continue
		}
		raw, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Contains(raw, []byte("PRIVATE KEY")) {
			s.add(name, string(raw))
			continue
		}
		for line := range strings.Lines(string(raw)) {
			if line = strings.TrimSpace(line); !strings.HasPrefix(line, "-----") {
				s.add(name+" (a line of the key)", line)
			}
		}
	}
}

// isSecretFile: dev mode's secrets are keys (*.key, *key.pem), the admin
// token and the files of its secrets folder; its certificates and public
// metadata are not.
func isSecretFile(name string) bool {
	switch {
	case strings.HasSuffix(name, ".crt"), strings.HasSuffix(name, ".lock"), strings.HasSuffix(name, ".yaml"),
		strings.HasSuffix(name, ".db"), strings.Contains(name, ".db-"), strings.HasSuffix(name, "cert.pem"):
		return false
	}
	return true
}

// recorder is the browsers' and API client's transport: it adds to s what
// a request and its response carry that is secret — cookies, bearer
// tokens, SAML responses, authorisation codes, OIDC state.
type recorder struct {
	base http.RoundTripper
	s    *secrets
}

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	if a := req.Header.Get("Authorization"); strings.HasPrefix(a, "Bearer ") {
		r.s.add("bearer token", strings.TrimPrefix(a, "Bearer "))
	}
	for _, c := range req.Cookies() {
		r.s.add("cookie "+c.Name, c.Value)
	}
	for _, k := range []string{"code", "SAMLResponse", "SAMLRequest"} {
		r.s.add("the query's "+k, req.URL.Query().Get(k))
	}
	if req.Body != nil && req.Method == http.MethodPost {
		body, err := io.ReadAll(req.Body)
		req.Body.Close()
		if err != nil {
			return nil, err
		}
		req.Body = io.NopCloser(bytes.NewReader(body))
		if form, err := url.ParseQuery(string(body)); err == nil {
			r.s.add("a posted SAMLResponse", form.Get("SAMLResponse"))
		}
	}
	resp, err := r.base.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	for _, c := range resp.Cookies() {
		r.s.add("cookie "+c.Name, c.Value)
	}
	if loc, err := resp.Location(); err == nil {
		r.s.add("the redirect's code", loc.Query().Get("code"))
		r.s.add("the redirect's SAMLRequest", loc.Query().Get("SAMLRequest"))
	}
	return resp, nil
}

// forge changes one byte of the response's signature value.
func forge(t *testing.T, samlResponse string) string {
	t.Helper()
	raw, err := base64.StdEncoding.DecodeString(samlResponse)
	if err != nil {
		t.Fatalf("SAMLResponse: %v", err)
	}
	i := bytes.Index(raw, []byte("SignatureValue>"))
	if i < 0 {
		t.Fatalf("the SAML response has no signature:\n%s", raw)
	}
	i += len("SignatureValue>") + 10
	if raw[i] == 'A' {
		raw[i] = 'B'
	} else {
		raw[i] = 'A'
	}
	return base64.StdEncoding.EncodeToString(raw)
}

func call(t *testing.T, c *http.Client, method, u, token, body string, want int) []byte {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, u, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, u, err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		t.Fatalf("%s %s: status %d, want %d:\n%s", method, u, resp.StatusCode, want, out)
	}
	return out
}

func readSecret(t *testing.T, path string) string {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(raw))
}
