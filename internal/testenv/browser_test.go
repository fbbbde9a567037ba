package testenv

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

const formsPage = `<!doctype html>
<title>forms</title>
<ul>
<li><form method="post" action="echo?from=one">
  <input type="hidden" name="request" value="r&amp;1">
  <input type="text" name="q" value="typed">
  <input type="checkbox" name="box" value="yes" checked>
  <input type="checkbox" name="box" value="no">
  <input type="checkbox" name="on" checked>
  <input type="radio" name="pick" value="a">
  <input type="radio" name="pick" value="b" checked>
  <input type="text" name="off" value="x" disabled>
  <input type="text" value="nameless">
  <input type="button" name="js" value="Script">
  <textarea name="note">some
text</textarea>
  <select name="colour"><option>red</option><option value="g" selected>green</option></select>
  <select name="size"><option value="s">small</option><option value="m">medium</option></select>
  <strong>Ada</strong>
  <button type="submit" name="person" value="ada">
    Sign in as <em>Ada</em>   Lovelace
  </button>
  <button type="button">Not a submit button</button>
  <input type="submit" name="go" value="Go &amp; see">
</form></li>
<li><form method="post" action="/elsewhere/echo"><button>Continue</button></form></li>
</ul>
<p><a href="../other?x=1">  The
 other page </a> <a name="anchor">No target</a></p>
`

// browserServer serves the forms page at /dir/forms, an auto-posting
// page at /dir/auto, echoes posted forms
// as JSON at /dir/echo and /elsewhere/echo, redirects n times at
// /redirect?n=n, and sets and shows a cookie.
func browserServer(t *testing.T) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /dir/forms", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprint(w, formsPage)
	})
	echo := func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseForm(); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"path": r.URL.Path, "query": r.URL.RawQuery, "form": r.PostForm})
	}
	mux.HandleFunc("POST /dir/echo", echo)
	mux.HandleFunc("POST /elsewhere/echo", echo)
	mux.HandleFunc("GET /dir/auto", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `<form method="post" action="echo"><input type="hidden" name="k" value="v"></form><script>document.forms[0].submit()</script>`)
	})
	mux.HandleFunc("GET /redirect", func(w http.ResponseWriter, r *http.Request) {
		n, _ := strconv.Atoi(r.URL.Query().Get("n"))
		if n == 0 {
			fmt.Fprint(w, "arrived")
			return
		}
		http.Redirect(w, r, "/redirect?n="+strconv.Itoa(n-1), http.StatusFound)
	})
	mux.HandleFunc("GET /set-cookie", func(w http.ResponseWriter, r *http.Request) {
		http.SetCookie(w, &http.Cookie{Name: "session", Value: "s1", Path: "/"})
		http.Redirect(w, r, "/cookie", http.StatusSeeOther)
	})
	mux.HandleFunc("GET /cookie", func(w http.ResponseWriter, r *http.Request) {
		c, err := r.Cookie("session")
		if err != nil {
			http.Error(w, "no session", http.StatusUnauthorized)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]string{"session": c.Value})
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

func TestBrowserForms(t *testing.T) {
	srv := browserServer(t)
	p := NewBrowser(t).Get(srv.URL + "/dir/forms")
	got := p.Forms()
	want := []Form{
		{
			Action: srv.URL + "/dir/echo?from=one",
			Fields: url.Values{
				"request": {"r&1"},
				"q":       {"typed"},
				"box":     {"yes"},
				"on":      {"on"},
				"pick":    {"b"},
				"note":    {"some\ntext"},
				"colour":  {"g"},
				"size":    {"s"},
			},
			Buttons: []Button{
				{Name: "person", Value: "ada", Label: "Sign in as Ada Lovelace"},
				{Name: "go", Value: "Go & see", Label: "Go & see"},
			},
		},
		{Action: srv.URL + "/elsewhere/echo", Fields: url.Values{}, Buttons: []Button{{Label: "Continue"}}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Forms:\n got %+v\nwant %+v", got, want)
	}
	if labels := p.ButtonLabels(); !slices.Equal(labels, []string{"Sign in as Ada Lovelace", "Go & see", "Continue"}) {
		t.Errorf("ButtonLabels: %q", labels)
	}
	// Forms returns fresh values: changing one leaves the next call's alone.
	got[0].Fields.Set("q", "changed")
	if q := p.Forms()[0].Fields.Get("q"); q != "typed" {
		t.Errorf("after changing a returned form, Forms gives q=%q", q)
	}
	if l := p.Link("The other page"); l != srv.URL+"/other?x=1" {
		t.Errorf("Link: %s", l)
	}
}

func TestBrowserClickAndSubmit(t *testing.T) {
	srv := browserServer(t)
	type echoed struct {
		Path, Query string
		Form        url.Values
	}
	tests := []struct {
		name string
		do   func(p *Page) *Page
		want echoed
	}{
		{"button with a name", func(p *Page) *Page { return p.Click("Sign in as Ada Lovelace") }, echoed{
			Path: "/dir/echo", Query: "from=one",
			Form: url.Values{"request": {"r&1"}, "q": {"typed"}, "box": {"yes"}, "on": {"on"}, "pick": {"b"},
				"note": {"some\ntext"}, "colour": {"g"}, "size": {"s"}, "person": {"ada"}},
		}},
		{"submit input", func(p *Page) *Page { return p.Click("Go & see") }, echoed{
			Path: "/dir/echo", Query: "from=one",
			Form: url.Values{"request": {"r&1"}, "q": {"typed"}, "box": {"yes"}, "on": {"on"}, "pick": {"b"},
				"note": {"some\ntext"}, "colour": {"g"}, "size": {"s"}, "go": {"Go & see"}},
		}},
		{"button without a name", func(p *Page) *Page { return p.Click("Continue") }, echoed{
			Path: "/elsewhere/echo", Form: url.Values{},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := NewBrowser(t)
			res := tt.do(b.Get(srv.URL + "/dir/forms"))
			var got echoed
			if err := json.Unmarshal([]byte(res.Body), &got); err != nil {
				t.Fatalf("%d %s: %v", res.Status, res.Body, err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("posted %+v, want %+v", got, tt.want)
			}
		})
	}

	t.Run("submit the only form", func(t *testing.T) {
		res := NewBrowser(t).Get(srv.URL + "/dir/auto").Submit()
		var got echoed
		if err := json.Unmarshal([]byte(res.Body), &got); err != nil {
			t.Fatalf("%d %s: %v", res.Status, res.Body, err)
		}
		if want := (echoed{Path: "/dir/echo", Form: url.Values{"k": {"v"}}}); !reflect.DeepEqual(got, want) {
			t.Errorf("posted %+v, want %+v", got, want)
		}
	})
}

func TestBrowserFailures(t *testing.T) {
	srv := browserServer(t)
	tests := []struct {
		name string
		do   func(b *Browser)
		want string
	}{
		{"no such button", func(b *Browser) { b.Get(srv.URL + "/dir/forms").Click("Sign in as Grace Hopper") }, `no button "Sign in as Grace Hopper"`},
		{"type=button is not clicked", func(b *Browser) { b.Get(srv.URL + "/dir/forms").Click("Not a submit button") }, "no button"},
		{"submit one of two forms", func(b *Browser) { b.Get(srv.URL + "/dir/forms").Submit() }, "want one form to submit"},
		{"no such link", func(b *Browser) { b.Get(srv.URL + "/dir/forms").Link("Elsewhere") }, `no link "Elsewhere"`},
		{"link without a target", func(b *Browser) { b.Get(srv.URL + "/dir/forms").Link("No target") }, `no link "No target"`},
		{"JSON of an error", func(b *Browser) { var v any; b.GetJSON(srv.URL+"/cookie", &v) }, "status 401"},
		{"no server", func(b *Browser) { b.Get("http://127.0.0.1:1/") }, "GET http://127.0.0.1:1/"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ft := &fatalRecorder{TB: t}
			if fatal := ft.run(func() { tt.do(NewBrowser(ft)) }); !strings.Contains(fatal, tt.want) {
				t.Errorf("failed with %q, want %q", fatal, tt.want)
			}
		})
	}
}

func TestBrowserRedirectsAndCookies(t *testing.T) {
	srv := browserServer(t)
	target := browserServer(t)
	host := strings.TrimPrefix(target.URL, "http://")

	t.Run("cookies", func(t *testing.T) {
		b := NewBrowser(t)
		var got map[string]string
		b.GetJSON(srv.URL+"/set-cookie", &got)
		if got["session"] != "s1" {
			t.Errorf("after a redirect the session is %v", got)
		}
		if p := NewBrowser(t).Get(srv.URL + "/cookie"); p.Status != http.StatusUnauthorized {
			t.Errorf("a new browser shares cookies: %d %s", p.Status, p.Body)
		}
	})

	tests := []struct {
		name       string
		opts       []BrowserOption
		url        string
		wantStatus int
		wantURL    string
	}{
		{"ten redirects are followed", nil, srv.URL + "/redirect?n=10", http.StatusOK, srv.URL + "/redirect?n=0"},
		{"the eleventh is not", nil, srv.URL + "/redirect?n=11", http.StatusFound, srv.URL + "/redirect?n=1"},
		{"MaxRedirects", []BrowserOption{MaxRedirects(2)}, srv.URL + "/redirect?n=3", http.StatusFound, srv.URL + "/redirect?n=1"},
		{"MaxRedirects zero", []BrowserOption{MaxRedirects(0)}, srv.URL + "/redirect?n=1", http.StatusFound, srv.URL + "/redirect?n=1"},
		{"StopAt leaves other hosts alone", []BrowserOption{StopAt(host)}, srv.URL + "/redirect?n=1", http.StatusOK, srv.URL + "/redirect?n=0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := NewBrowser(t, tt.opts...).Get(tt.url)
			if p.Status != tt.wantStatus || p.URL.String() != tt.wantURL {
				t.Errorf("got %d at %s, want %d at %s", p.Status, p.URL, tt.wantStatus, tt.wantURL)
			}
		})
	}

	t.Run("StopAt another host", func(t *testing.T) {
		mux := http.NewServeMux()
		mux.HandleFunc("GET /", func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, target.URL+"/cookie", http.StatusFound)
		})
		from := httptest.NewServer(mux)
		defer from.Close()
		p := NewBrowser(t, StopAt("elsewhere.test", host)).Get(from.URL + "/")
		if p.Status != http.StatusFound || p.Header.Get("Location") != target.URL+"/cookie" || p.URL.String() != from.URL+"/" {
			t.Errorf("got %d at %s to %s, want the redirect to %s", p.Status, p.URL, p.Header.Get("Location"), target.URL)
		}
		if p := NewBrowser(t).Get(from.URL + "/"); p.Status != http.StatusUnauthorized || p.URL.Host != host {
			t.Errorf("without StopAt: %d at %s, want the target's 401", p.Status, p.URL)
		}
	})
}

// countingTransport counts the requests it carries.
type countingTransport struct {
	n    atomic.Int32
	next http.RoundTripper
}

func (c *countingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	c.n.Add(1)
	return c.next.RoundTrip(req)
}

func TestBrowserClient(t *testing.T) {
	srv := browserServer(t)
	b := NewBrowser(t, MaxRedirects(0))
	rt := &countingTransport{next: http.DefaultTransport}
	b.Client().Transport = rt

	// The browser's cookie reaches the client's requests, from other
	// goroutines, and the browser's redirect policy holds for them.
	if p := b.Get(srv.URL + "/set-cookie"); p.Status != http.StatusSeeOther {
		t.Fatalf("set-cookie: %d, want the 303 itself", p.Status)
	}
	const n = 4
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			resp, err := b.Client().Get(srv.URL + "/cookie")
			if err != nil {
				errs <- err
				return
			}
			defer resp.Body.Close()
			var got map[string]string
			if err := json.NewDecoder(resp.Body).Decode(&got); err != nil || got["session"] != "s1" {
				errs <- fmt.Errorf("the client's request: %d %v, %v; want session s1", resp.StatusCode, got, err)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	resp, err := b.Client().Get(srv.URL + "/redirect?n=1")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		t.Errorf("the client followed a redirect the browser would not: %d", resp.StatusCode)
	}
	if got := rt.n.Load(); got != n+2 {
		t.Errorf("the transport set on the client carried %d requests, want %d", got, n+2)
	}

	// Its errors are returned, the test goes on.
	if _, err := b.Client().Get("http://127.0.0.1:1/"); err == nil {
		t.Error("a request to no server succeeded")
	}
}

// fatalRecorder is a testing.TB whose Fatal and Fatalf record the message
// and end the goroutine, as the real ones do, without failing the test.
type fatalRecorder struct {
	testing.TB
	mu    sync.Mutex
	fatal string
}

func (r *fatalRecorder) Helper() {}

func (r *fatalRecorder) Fatal(args ...any) { r.fail(fmt.Sprint(args...)) }

func (r *fatalRecorder) Fatalf(format string, args ...any) { r.fail(fmt.Sprintf(format, args...)) }

func (r *fatalRecorder) fail(msg string) {
	r.mu.Lock()
	r.fatal = msg
	r.mu.Unlock()
	runtime.Goexit()
}

// run runs f on a goroutine of its own and returns the fatal message, or
// "" when f returned.
func (r *fatalRecorder) run(f func()) string {
	done := make(chan struct{})
	go func() {
		defer close(done)
		f()
	}()
	<-done
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.fatal
}
