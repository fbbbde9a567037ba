package testenv

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/html"
)

// Browser is a scripted web browser for tests: an HTTP client with a cookie
// jar that fetches pages, follows redirects, and reads and submits the
// pages' HTML forms as a person would. It fails its test on any transport
// error, so, like t.Fatal, its methods and its pages' are for the goroutine
// running that test.
type Browser struct {
	t      testing.TB
	client *http.Client
}

// BrowserOption configures a Browser made by NewBrowser.
type BrowserOption func(*browserConfig)

type browserConfig struct {
	stopAt       []string
	maxRedirects int
	timeout      time.Duration
}

// StopAt makes the browser stop before following a redirect to any of the
// hosts ("host:port", as in url.URL.Host): the redirect response is
// returned, so the test can take over, for example as the relying party
// the redirect is meant for.
func StopAt(hosts ...string) BrowserOption {
	return func(c *browserConfig) { c.stopAt = append(c.stopAt, hosts...) }
}

// MaxRedirects bounds the redirects followed for one request (default 10);
// the redirect response beyond the bound is returned rather than followed.
// Zero follows none.
func MaxRedirects(n int) BrowserOption {
	return func(c *browserConfig) { c.maxRedirects = n }
}

// Timeout bounds each request, redirects included (default 30s).
func Timeout(d time.Duration) BrowserOption {
	return func(c *browserConfig) { c.timeout = d }
}

// NewBrowser returns a browser with an empty cookie jar that reports
// failures to t.
func NewBrowser(t testing.TB, opts ...BrowserOption) *Browser {
	t.Helper()
	cfg := browserConfig{maxRedirects: 10, timeout: 30 * time.Second}
	for _, o := range opts {
		o(&cfg)
	}
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &Browser{t: t, client: &http.Client{
		Jar:     jar,
		Timeout: cfg.timeout,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			for _, h := range cfg.stopAt {
				if req.URL.Host == h {
					return http.ErrUseLastResponse
				}
			}
			if len(via) > cfg.maxRedirects {
				return http.ErrUseLastResponse
			}
			return nil
		},
	}}
}

// Client is the browser's HTTP client, cookie jar and redirect policy
// included, for requests the browser's methods are not for: those made
// from goroutines other than the test's, whose errors the caller handles
// rather than failing the test. Its requests and the browser's share the
// cookies. Its Transport (default http.DefaultTransport) may be set before
// the browser's first request, to pool connections among many browsers.
func (b *Browser) Client() *http.Client { return b.client }

// Page is a response as the browser saw it, its body read in full.
type Page struct {
	Status int
	URL    *url.URL // the URL of the final request, after redirects
	Header http.Header
	Body   string

	b   *Browser
	doc *html.Node
}

// Do sends req, following redirects as configured, and returns the page.
func (b *Browser) Do(req *http.Request) *Page {
	b.t.Helper()
	resp, err := b.client.Do(req)
	if err != nil {
		b.t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		b.t.Fatalf("%s %s: reading the body: %v", req.Method, req.URL, err)
	}
	return &Page{Status: resp.StatusCode, URL: resp.Request.URL, Header: resp.Header, Body: string(body), b: b}
}

// Get fetches u.
func (b *Browser) Get(u string) *Page {
	b.t.Helper()
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		b.t.Fatal(err)
	}
	return b.Do(req)
}

// GetJSON fetches u and decodes its JSON body into v. Anything but a 2xx
// response with a JSON body fails the test.
func (b *Browser) GetJSON(u string, v any) {
	b.t.Helper()
	p := b.Get(u)
	if p.Status < 200 || p.Status > 299 {
		b.t.Fatalf("GET %s: status %d:\n%s", p.URL, p.Status, p.Body)
	}
	if err := json.Unmarshal([]byte(p.Body), v); err != nil {
		b.t.Fatalf("GET %s: %v:\n%s", p.URL, err, p.Body)
	}
}

// Post posts form to u, URL-encoded, as an HTML form does.
func (b *Browser) Post(u string, form url.Values) *Page {
	b.t.Helper()
	req, err := http.NewRequest(http.MethodPost, u, strings.NewReader(form.Encode()))
	if err != nil {
		b.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return b.Do(req)
}

// Form is an HTML form of a page.
type Form struct {
	// Action is the form's action resolved against the page URL.
	Action string
	// Fields are the name-value pairs the form submits without a
	// button: its named inputs (hidden ones included; checkboxes and
	// radio buttons when checked), text areas and selects.
	Fields url.Values
	// Buttons are the form's submit buttons, in document order.
	Buttons []Button
}

// Button is a submit button of a form: a <button> or an <input
// type="submit">.
type Button struct {
	Name, Value string
	// Label is the text the button shows, whitespace collapsed.
	Label string
}

// Forms parses the page's forms. Each call returns fresh values, free to
// be modified.
func (p *Page) Forms() []Form {
	p.b.t.Helper()
	var out []Form
	var walk func(n *html.Node, f *Form)
	walk = func(n *html.Node, f *Form) {
		if n.Type == html.ElementNode {
			switch n.Data {
			case "form":
				if f != nil { // forms do not nest; the parser drops inner ones
					break
				}
				action, err := p.URL.Parse(Attr(n, "action"))
				if err != nil {
					p.b.t.Fatalf("form action at %s: %v", p.URL, err)
				}
				nf := Form{Action: action.String(), Fields: url.Values{}}
				for c := n.FirstChild; c != nil; c = c.NextSibling {
					walk(c, &nf)
				}
				out = append(out, nf)
				return
			case "input":
				if f != nil {
					addInput(f, n)
				}
			case "button":
				if f != nil {
					if t := strings.ToLower(Attr(n, "type")); t == "" || t == "submit" {
						f.Buttons = append(f.Buttons, Button{Name: Attr(n, "name"), Value: Attr(n, "value"), Label: collapse(Text(n))})
					}
				}
				return
			case "textarea":
				if f != nil && Attr(n, "name") != "" && !hasAttr(n, "disabled") {
					f.Fields.Add(Attr(n, "name"), Text(n))
				}
				return
			case "select":
				if f != nil && Attr(n, "name") != "" && !hasAttr(n, "disabled") {
					addSelect(f, n)
				}
				return
			}
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c, f)
		}
	}
	walk(p.document(), nil)
	return out
}

func addInput(f *Form, n *html.Node) {
	name, value := Attr(n, "name"), Attr(n, "value")
	switch strings.ToLower(Attr(n, "type")) {
	case "submit":
		f.Buttons = append(f.Buttons, Button{Name: name, Value: value, Label: collapse(value)})
		return
	case "button", "reset", "image", "file":
		return
	case "checkbox", "radio":
		if !hasAttr(n, "checked") {
			return
		}
		if !hasAttr(n, "value") {
			value = "on"
		}
	}
	if name != "" && !hasAttr(n, "disabled") {
		f.Fields.Add(name, value)
	}
}

func addSelect(f *Form, sel *html.Node) {
	var options []*html.Node
	var walk func(n *html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.ElementNode && n.Data == "option" {
			options = append(options, n)
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(sel)
	value := func(o *html.Node) string {
		if hasAttr(o, "value") {
			return Attr(o, "value")
		}
		return collapse(Text(o))
	}
	selected := false
	for _, o := range options {
		if hasAttr(o, "selected") {
			f.Fields.Add(Attr(sel, "name"), value(o))
			selected = true
		}
	}
	if !selected && !hasAttr(sel, "multiple") && len(options) > 0 {
		f.Fields.Add(Attr(sel, "name"), value(options[0]))
	}
}

// Click submits the form whose button reads label, with the button's name
// and value, as a browser does; no such button fails the test.
func (p *Page) Click(label string) *Page {
	p.b.t.Helper()
	for _, f := range p.Forms() {
		for _, bt := range f.Buttons {
			if bt.Label == label {
				if bt.Name != "" {
					f.Fields.Set(bt.Name, bt.Value)
				}
				return p.b.Post(f.Action, f.Fields)
			}
		}
	}
	p.b.t.Fatalf("no button %q at %s (status %d):\n%s", label, p.URL, p.Status, p.Body)
	return nil
}

// Submit posts the page's only form without pressing a button, as an
// auto-posting page's script does; a page without exactly one form fails
// the test.
func (p *Page) Submit() *Page {
	p.b.t.Helper()
	fs := p.Forms()
	if len(fs) != 1 {
		p.b.t.Fatalf("want one form to submit at %s, found %d:\n%s", p.URL, len(fs), p.Body)
	}
	return p.b.Post(fs[0].Action, fs[0].Fields)
}

// ButtonLabels lists the labels of the page's form buttons, in document
// order.
func (p *Page) ButtonLabels() []string {
	p.b.t.Helper()
	var out []string
	for _, f := range p.Forms() {
		for _, b := range f.Buttons {
			out = append(out, b.Label)
		}
	}
	return out
}

// Link returns the target, resolved against the page URL, of the first
// link reading label; no such link fails the test.
func (p *Page) Link(label string) string {
	p.b.t.Helper()
	for _, a := range p.Elements("a") {
		if !hasAttr(a, "href") || collapse(Text(a)) != label {
			continue
		}
		u, err := p.URL.Parse(Attr(a, "href"))
		if err != nil {
			p.b.t.Fatalf("link %q at %s: %v", label, p.URL, err)
		}
		return u.String()
	}
	p.b.t.Fatalf("no link %q at %s (status %d):\n%s", label, p.URL, p.Status, p.Body)
	return ""
}

// Elements returns the page's elements of the tag (lower case, as "dd"),
// in document order, for checks of its markup with Attr and Text.
func (p *Page) Elements(tag string) []*html.Node {
	var out []*html.Node
	var walk func(n *html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.ElementNode && n.Data == tag {
			out = append(out, n)
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(p.document())
	return out
}

// document parses the body as HTML, once.
func (p *Page) document() *html.Node {
	if p.doc == nil {
		doc, err := html.Parse(strings.NewReader(p.Body))
		if err != nil { // only a reader's error, which a strings.Reader has not
			p.b.t.Fatalf("parsing %s: %v", p.URL, err)
		}
		p.doc = doc
	}
	return p.doc
}

// Attr returns the value of n's attribute key, or "" without one.
func Attr(n *html.Node, key string) string {
	for _, a := range n.Attr {
		if a.Namespace == "" && a.Key == key {
			return a.Val
		}
	}
	return ""
}

func hasAttr(n *html.Node, key string) bool {
	for _, a := range n.Attr {
		if a.Namespace == "" && a.Key == key {
			return true
		}
	}
	return false
}

// Text returns the text inside n, entities decoded and markup left out,
// as it stands in the document (whitespace kept).
func Text(n *html.Node) string {
	var b strings.Builder
	var walk func(n *html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.TextNode {
			b.WriteString(n.Data)
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(n)
	return b.String()
}

// collapse trims s and collapses its runs of white space to one space, as
// a browser shows text.
func collapse(s string) string { return strings.Join(strings.Fields(s), " ") }
