//go:build chaos

package chaos

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/html"

	"github.com/jitprov/jitprov/internal/testenv"
)

// outcome is how one person's sign-in ended, as their browser saw it.
type outcome string

const (
	outSignedIn     outcome = "signed-in"            // 303 from the ACS
	outSignedInWait outcome = "signed-in-after-wait" // the waiting page, then 303
	outRefused      outcome = "refused"              // "Sign-in is unavailable" at the ACS
	outSeats        outcome = "seats"                // "No seat available"
	outWaitFailed   outcome = "error-while-waiting"  // the waiting page, then an error page
	outWaiting      outcome = "still-waiting"        // the waiting page at the bound
	outOther        outcome = "other"                // anything else (details kept)
)

// login is one person's first sign-in.
type login struct {
	n        int
	org, ext string
	edge     int
	start    time.Time
	end      time.Time
	waited   bool
	outcome  outcome
	detail   string
	userID   string // from /auth/verify once signed in
}

// completed: the pipeline answered the person (a session or a decision
// page): what throughput counts.
func (l *login) completed() bool {
	return l.outcome == outSignedIn || l.outcome == outSignedInWait || l.outcome == outSeats
}

// loader drives an open-loop burst of first sign-ins through the edges:
// people arrive at a fixed rate whatever the system does (as they do), each
// a scripted browser (testenv.Browser's client and cookies) going
// edge → IdP → ACS → and, on "Setting up your account", following the
// page's refresh until signed in or the bound passes.
type loader struct {
	t           *testing.T
	d           *deployment
	rate        float64 // arrivals per second
	maxInFlight int
	strandBound time.Duration // how long after the fault's end a waiting person keeps waiting
	transports  []*http.Transport
	edges       []*service

	mu       sync.Mutex
	logins   []*login
	start    time.Time
	faultEnd time.Time // zero while the fault lasts (or before it)
	delayed  int       // arrivals that found maxInFlight people in flight

	wg sync.WaitGroup
}

// clientIPs is how many source addresses the people come from: loopback
// addresses 127.0.1.1 and up, so that an edge limiting requests per client
// address sees many people, not one (the flood's attacker comes from
// 127.0.0.2, alone).
const clientIPs = 64

func newLoader(t *testing.T, d *deployment, rate float64) *loader {
	l := &loader{t: t, d: d, rate: rate, maxInFlight: 600, strandBound: *flagStrandBound, edges: d.edges}
	for i := range clientIPs {
		tr := transportFrom(net.IPv4(127, 0, 1, byte(i+1)), 64)
		t.Cleanup(tr.CloseIdleConnections)
		l.transports = append(l.transports, tr)
	}
	return l
}

// transportFrom is an HTTP transport whose connections come from the
// loopback address ip.
func transportFrom(ip net.IP, idlePerHost int) *http.Transport {
	return &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: ip}}).DialContext,
		MaxIdleConns:        idlePerHost * 2,
		MaxIdleConnsPerHost: idlePerHost,
		IdleConnTimeout:     30 * time.Second,
	}
}

// setFaultEnd starts the waiting people's bound.
func (l *loader) setFaultEnd(at time.Time) {
	l.mu.Lock()
	l.faultEnd = at
	l.mu.Unlock()
}

// deadline is when a person who started at start stops waiting: the bound
// after the later of their start and the fault's end; far away while the
// fault lasts.
func (l *loader) deadline(start time.Time) time.Time {
	l.mu.Lock()
	fe := l.faultEnd
	l.mu.Unlock()
	if fe.IsZero() {
		return start.Add(30 * time.Minute)
	}
	if start.After(fe) {
		fe = start
	}
	return fe.Add(l.strandBound)
}

// arrive runs arrivals until ctx is done; it returns then, while the people
// in flight go on (wait for them with wait).
func (l *loader) arrive(ctx context.Context) {
	sem := make(chan struct{}, l.maxInFlight)
	interval := time.Duration(float64(time.Second) / l.rate)
	l.mu.Lock()
	if l.start.IsZero() {
		l.start = time.Now()
	}
	start := l.start
	l.mu.Unlock()
	for n := 0; ; n++ {
		next := start.Add(time.Duration(n) * interval)
		timer := time.NewTimer(time.Until(next))
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case <-timer.C:
		}
		select {
		case sem <- struct{}{}:
		default:
			l.mu.Lock()
			l.delayed++
			l.mu.Unlock()
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				return
			}
		}
		orgs := l.d.orgs
		rec := &login{n: n, org: orgs[n%len(orgs)].ID, ext: fmt.Sprintf("p%06d", n), edge: (n / len(orgs)) % len(l.edges), start: time.Now()}
		l.mu.Lock()
		l.logins = append(l.logins, rec)
		l.mu.Unlock()
		l.wg.Go(func() {
			defer func() { <-sem }()
			l.signIn(rec)
		})
	}
}

// wait waits for every person in flight (each bounded by deadline).
func (l *loader) wait() { l.wg.Wait() }

// snapshot is the logins recorded so far; call after wait for final ones.
func (l *loader) snapshot() []*login {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]*login(nil), l.logins...)
}

var (
	titleRe   = regexp.MustCompile(`<title>([^<]*)</title>`)
	refreshRe = regexp.MustCompile(`http-equiv="refresh" content="(\d+);url=([^"]+)"`)
)

// page is a response read in full.
type page struct {
	status int
	header http.Header
	body   string
}

func (p page) title() string {
	if m := titleRe.FindStringSubmatch(p.body); m != nil {
		return html.UnescapeString(m[1])
	}
	return ""
}

// refresh is the page's meta refresh: the delay and the target.
func (p page) refresh() (time.Duration, string, bool) {
	m := refreshRe.FindStringSubmatch(p.body)
	if m == nil {
		return 0, "", false
	}
	secs, _ := strconv.Atoi(m[1])
	return time.Duration(secs) * time.Second, html.UnescapeString(m[2]), true
}

func (p page) String() string {
	if t := p.title(); t != "" {
		return fmt.Sprintf("%d %q", p.status, t)
	}
	b := strings.TrimSpace(p.body)
	if len(b) > 120 {
		b = b[:120] + "…"
	}
	return fmt.Sprintf("%d %q", p.status, b)
}

func do(client *http.Client, req *http.Request) (page, error) {
	resp, err := client.Do(req)
	if err != nil {
		return page{}, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return page{}, err
	}
	return page{status: resp.StatusCode, header: resp.Header, body: string(body)}, nil
}

// get fetches u with the header pairs given.
func get(ctx context.Context, client *http.Client, u string, header ...string) (page, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return page{}, err
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	return do(client, req)
}

// signIn is one person's SP-initiated sign-in. It records how it ended.
func (l *loader) signIn(rec *login) {
	b := testenv.NewBrowser(l.t, testenv.MaxRedirects(0), testenv.Timeout(30*time.Second))
	client := b.Client()
	client.Transport = l.transports[rec.n%len(l.transports)]
	ctx := context.Background()
	edge := l.edges[rec.edge].base
	finish := func(o outcome, detail string) {
		l.mu.Lock()
		rec.outcome, rec.detail, rec.end = o, detail, time.Now()
		l.mu.Unlock()
	}

	start, err := get(ctx, client, edge+"/saml/"+rec.org+"/idp/login?return_to="+url.QueryEscape("/app/"+rec.ext))
	if err != nil || start.status != http.StatusFound {
		finish(outOther, fmt.Sprintf("login start: %v %v", err, start))
		return
	}
	at, err := url.Parse(start.header.Get("Location"))
	if err != nil {
		finish(outOther, "login start: bad Location: "+err.Error())
		return
	}
	atIdP, err := get(ctx, client, at.String(), personHeader, rec.org+"/"+rec.ext)
	if err != nil || atIdP.status != http.StatusOK {
		finish(outOther, fmt.Sprintf("IdP: %v %v", err, atIdP))
		return
	}
	action, form, err := responseForm(atIdP.body)
	if err != nil {
		finish(outOther, "IdP: "+err.Error())
		return
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, action, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	acs, err := do(client, req)
	if err != nil {
		finish(outOther, "ACS: "+err.Error())
		return
	}
	o, detail := classify(acs)
	if o != outWaiting {
		if o == outSignedIn {
			l.verify(ctx, client, edge, rec)
		}
		finish(o, detail)
		return
	}

	// "Setting up your account": follow its refresh, as a browser does,
	// until signed in, an error page, or the bound.
	l.mu.Lock()
	rec.waited = true
	l.mu.Unlock()
	cur := acs
	for {
		delay, target, ok := cur.refresh()
		if !ok {
			finish(outOther, "waiting page without a refresh: "+cur.String())
			return
		}
		if time.Now().Add(delay).After(l.deadline(rec.start)) {
			finish(outWaiting, "")
			return
		}
		<-time.After(delay) // the page's own refresh delay: the browser's pace
		next, err := get(ctx, client, edge+target)
		if err != nil {
			continue // a browser shows its own error and the person reloads
		}
		switch o, detail := classify(next); o {
		case outWaiting:
			cur = next
		case outSignedIn:
			l.verify(ctx, client, edge, rec)
			finish(outSignedInWait, "")
			return
		case outSeats: // the waiting page may end in the decision's page
			finish(outSeats, "after waiting")
			return
		default:
			finish(outWaitFailed, detail)
			return
		}
	}
}

// verify asks the edge who is signed in, and keeps the user id.
func (l *loader) verify(ctx context.Context, client *http.Client, edge string, rec *login) {
	p, err := get(ctx, client, edge+"/auth/verify")
	if err == nil && p.status == http.StatusOK {
		l.mu.Lock()
		rec.userID = p.header.Get("X-Jitprov-User-Id")
		l.mu.Unlock()
	}
}

// classify reads the edge's answer to the ACS post or to a continue.
func classify(p page) (outcome, string) {
	switch {
	case p.status == http.StatusSeeOther:
		return outSignedIn, ""
	case p.status == http.StatusAccepted && p.title() == "Setting up your account":
		return outWaiting, ""
	case p.status == http.StatusForbidden && p.title() == "No seat available":
		return outSeats, ""
	case p.status == http.StatusServiceUnavailable && p.title() == "Sign-in is unavailable":
		return outRefused, p.String()
	}
	return outOther, p.String()
}

// responseForm reads the IdP's auto-posting form: where it posts and what.
func responseForm(body string) (string, url.Values, error) {
	doc, err := html.Parse(strings.NewReader(body))
	if err != nil {
		return "", nil, err
	}
	var action string
	fields := url.Values{}
	var walk func(n *html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.ElementNode {
			switch n.Data {
			case "form":
				action = testenv.Attr(n, "action")
			case "input":
				if name := testenv.Attr(n, "name"); name != "" {
					fields.Set(name, testenv.Attr(n, "value"))
				}
			}
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(doc)
	if action == "" || fields.Get("SAMLResponse") == "" {
		return "", nil, errors.New("no SAML response form")
	}
	return action, fields, nil
}

// windows counts completions per window of width w from the loader's
// start, for the logins keep selects.
func windows(logins []*login, start time.Time, w time.Duration, keep func(*login) bool) []int {
	var out []int
	for _, l := range logins {
		if !l.completed() || (keep != nil && !keep(l)) {
			continue
		}
		i := int(l.end.Sub(start) / w)
		if i < 0 {
			continue
		}
		for len(out) <= i {
			out = append(out, 0)
		}
		out[i]++
	}
	return out
}

func median(xs []int) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := append([]int(nil), xs...)
	sort.Ints(s)
	if len(s)%2 == 1 {
		return float64(s[len(s)/2])
	}
	return float64(s[len(s)/2-1]+s[len(s)/2]) / 2
}
