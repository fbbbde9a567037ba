package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/jitprov/jitprov/internal/testenv"
)

// The README's tour of `jitprov dev`, steps 1 to 3, in a real browser
// (headless Chromium), as a reviewer follows it: every step clicks the
// link or button the README names, by the text the page shows, and waits
// for what the next page shows. TestDevMode runs the same tour with an
// HTTP client; this one also runs the pages' scripts (the IdP's
// auto-posting SAML response), meta refreshes and the browser's own
// cookie rules.
func TestTourInARealBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs jitprov dev, and a browser")
	}
	bin := buildJitprov(t)
	dev := startDev(t, bin, t.TempDir(), testenv.FreePorts(t, 3))
	browser := testenv.Chromium(t)
	// The whole tour, generously: the machine is shared and busy.
	ctx, cancel := context.WithTimeout(browser, 4*time.Minute)
	defer cancel()
	b := &tourBrowser{t: t, ctx: ctx, browser: browser, app: dev.url + "/app"}
	start := time.Now()

	// "Open http://localhost:8090/ (the tour page ...)."
	b.do("open the tour page", chromedp.Navigate(dev.url+"/"), chromedp.WaitVisible(heading("jitprov, running on your machine")))

	// Step 1. "The demo application ... finds nobody. Choose Demo — SAML
	// and, on the development IdP's page, Sign in as Ada Lovelace."
	b.do("open the demo application", chromedp.Click(link("demo application")), chromedp.WaitVisible(text("Nobody is signed in.")))
	b.signIn("Demo — SAML", "Ada Lovelace")
	// "... the app shows her user id, her role member ... and her
	// organisation demo."
	adaID := b.mustShow("ada@demo.example", "member", "demo")
	// "Sign out, go back to the demo application, and sign in as Ada
	// again through Demo — OpenID Connect: the app shows the same user id."
	b.signOut()
	b.signIn("Demo — OpenID Connect", "Ada Lovelace")
	if id := b.mustShow("ada@demo.example", "member", "demo"); id != adaID {
		t.Errorf("Ada through OpenID Connect is user %s, want the user SAML created, %s", id, adaID)
	}

	// Step 2. "Sign out and, back at the demo application, sign in as Grace
	// Hopper (Demo — SAML or Demo — OpenID Connect) ... she gets member and
	// a role review is opened. The dev inbox shows the alert twice: the
	// mail to the admins and the signed webhook."
	b.signOut()
	b.signIn("Demo — SAML", "Grace Hopper")
	b.mustShow("grace@demo.example", "member", "demo")
	b.waitInbox("Dev inbox",
		inboxHas("mail · ", "Demo: grace@demo.example asks for role admin"),
		inboxHas("to admins@jitprov.dev", "Demo: grace@demo.example asks for role admin"),
		inboxHas("signature verified", "io.jitprov.role-review.requested.v1"))

	// Step 3. "Demo Small has 3 seats. Sign in, one after the other, as
	// Alan, Barbara, Edsger and Katherine (Demo Small (3 seats) — SAML at
	// the demo application; sign out between them). The second seat warns
	// the admins that seats run out; the fourth person gets "No seat
	// available", and two seconds later the inbox counts the people turned
	// away."
	b.do("back to the demo application", chromedp.Navigate(b.app), chromedp.WaitVisible(link("Sign out")))
	b.signOut()
	for i, who := range []string{"Alan Turing", "Barbara Liskov", "Edsger Dijkstra", "Katherine Johnson"} {
		if i < 3 {
			b.signIn("Demo Small (3 seats) — SAML", who)
			b.mustShow(strings.ToLower(strings.Fields(who)[0])+"@small.example", "viewer", "demo-small")
			b.signOut()
			continue
		}
		b.signInAs("Demo Small (3 seats) — SAML", who, heading("No seat available"))
	}
	b.do("open the tour page again", chromedp.Navigate(dev.url+"/"), chromedp.WaitVisible(heading("jitprov, running on your machine")))
	b.waitInbox("dev inbox",
		inboxHas("to admins@jitprov.dev", "Demo Small uses 2 of 3 seats"),
		inboxHas("to admins@jitprov.dev", "Demo Small: 1 person could not sign in — all 3 seats are taken"),
		inboxHas("signature verified", "io.jitprov.seats.exhausted.v1"))
	t.Logf("the tour took %s in the browser", time.Since(start).Round(time.Millisecond))
	dev.interrupt(t, 10*time.Second)
}

// tourBrowser is the real browser of the tour, failing t with where it is
// and what it shows when a step does not come about.
type tourBrowser struct {
	t            *testing.T
	ctx, browser context.Context
	app          string // the demo application's URL
}

// do runs the actions of one step of the tour.
func (b *tourBrowser) do(step string, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	if err := chromedp.Do(b.ctx, actions...); err != nil {
		b.t.Fatalf("%s: %v\n%s", step, err, b.where())
	}
}

// where tells the page the browser is at and its text, read with a fresh
// deadline of its own: the tour's may be what ran out.
func (b *tourBrowser) where() string {
	ctx, cancel := context.WithTimeout(b.browser, 10*time.Second)
	defer cancel()
	loc, err := chromedp.Run(ctx, chromedp.Location())
	if err != nil {
		return "(the browser's location cannot be read: " + err.Error() + ")"
	}
	body, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body ? document.body.innerText : ""`))
	if err != nil {
		body = "(cannot read the page: " + err.Error() + ")"
	}
	return "the browser is at " + loc + ", showing:\n" + body
}

// signIn starts at the demo application, signed out: it chooses the
// sign-in button named choice and, on the development IdP's page, the
// person, and waits for the app to show who is signed in.
func (b *tourBrowser) signIn(choice, person string) {
	b.t.Helper()
	b.signInAs(choice, person, dd("user-id"))
}

// signInAs is signIn waiting for the page that shows landed instead.
func (b *tourBrowser) signInAs(choice, person, landed string) {
	b.t.Helper()
	label := "Sign in as " + person
	b.do("choose "+choice, chromedp.Click(link(choice)), chromedp.WaitVisible(button(label)))
	// The IdP answers SAML with a page whose script posts the response to
	// sso-edge; OpenID Connect redirects. Either way the app, or the
	// edge's page of a sign-in refused, shows next.
	b.do(label, chromedp.Click(button(label)), chromedp.WaitVisible(landed))
}

// signOut signs out from the app and goes back to the demo application,
// where the sign-in choices are.
func (b *tourBrowser) signOut() {
	b.t.Helper()
	b.do("sign out", chromedp.Click(link("Sign out")), chromedp.WaitVisible(heading("Signed out")))
	b.do("go back to the demo application", chromedp.Navigate(b.app), chromedp.WaitVisible(text("Nobody is signed in.")))
}

// mustShow checks the app shows the person, and returns their user id.
func (b *tourBrowser) mustShow(email, role, org string) string {
	b.t.Helper()
	got := map[string]string{}
	for _, id := range []string{"email", "role", "organization", "user-id"} {
		v, err := chromedp.Run(b.ctx, chromedp.Text(chromedp.ID(id)))
		if err != nil {
			b.t.Fatalf("the app's %s: %v\n%s", id, err, b.where())
		}
		got[id] = strings.TrimSpace(v)
	}
	if got["email"] != email || got["role"] != role || got["organization"] != org || got["user-id"] == "" {
		b.t.Fatalf("the app shows %v, want %s, %s in %s\n%s", got, email, role, org, b.where())
	}
	return got["user-id"]
}

// inboxHas is a message the dev inbox page lists: its channel's line
// (channel, and for mail its recipients; for a webhook, that its signature
// verified) and the start of its subject.
func inboxHas(meta, subject string) string {
	return `//div[@class="m"][div[@class="meta"][contains(., "` + meta + `")]]/h3[starts-with(normalize-space(), "` + subject + `")]`
}

// waitInbox opens the dev inbox from the link on the page the browser is
// at, and waits until the page, which refreshes itself every few seconds,
// lists each of messages (made by inboxHas).
func (b *tourBrowser) waitInbox(via string, messages ...string) {
	b.t.Helper()
	b.do("open the dev inbox", chromedp.Click(link(via)), chromedp.WaitVisible(`//h1[starts-with(., "Inbox (")]`))
	for _, m := range messages {
		// The query starts again on each page a refresh brings.
		if err := chromedp.Do(b.ctx, chromedp.WaitVisible(m)); err != nil {
			b.t.Fatalf("the dev inbox lacks %s: %v\n%s", m, err, b.where())
		}
	}
}

// Selectors, in XPath, by what a person reads: an element's text, its
// spaces collapsed.

func link(label string) string    { return xpath("//a", label) }
func button(label string) string  { return xpath("//button", label) }
func heading(title string) string { return xpath("//h1", title) }
func text(s string) string        { return xpath("//*", s) }
func dd(id string) string         { return `//dd[@id="` + id + `"]` }

func xpath(path, label string) string {
	return path + `[normalize-space()="` + label + `"]`
}
