package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/jitprov/jitprov/internal/testenv"
)

// The admin console in `jitprov dev`, in a real browser: Grace signs in
// and her review opens; Olivia, demo's initial admin, signs in to the
// console through the edge and the development IdP, finds Grace's review,
// approves it, sees Grace's new role in the users table and, at Grace's
// next sign-in, in the demo application; then deprovisions Ada and sees
// the seat count drop. A screenshot of each page is kept in
// $JITPROV_SCREENSHOTS, or else in a new folder the log names.
func TestAdminConsoleInARealBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs jitprov dev, and a browser")
	}
	shots := screenshotDir(t)
	bin := buildJitprov(t)
	dev := startDev(t, bin, t.TempDir(), testenv.FreePorts(t, 3))
	browser := testenv.Chromium(t)
	ctx, cancel := context.WithTimeout(browser, 4*time.Minute)
	defer cancel()
	b := &tourBrowser{t: t, ctx: ctx, browser: browser, app: dev.url + "/app"}
	shot := func(name string) {
		t.Helper()
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100)) // 100: PNG
		if err != nil {
			t.Fatalf("screenshot %s: %v", name, err)
		}
		if err := os.WriteFile(filepath.Join(shots, name+".png"), png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// A laptop's width.
	b.do("a laptop's window", chromedp.EmulateViewport(1280, 800))

	// Grace and Ada sign in to the demo application: Grace's IdP claims
	// admin, so a review opens; Ada is the one to deprovision.
	b.do("open the demo application", chromedp.Navigate(b.app), chromedp.WaitVisible(text("Nobody is signed in.")))
	b.signIn("Demo — SAML", "Grace Hopper")
	b.mustShow("grace@demo.example", "member", "demo")
	b.signOut()
	b.signIn("Demo — OpenID Connect", "Ada Lovelace")
	b.mustShow("ada@demo.example", "member", "demo")
	b.signOut()

	// The tour page links the console; the console sends Olivia to sign
	// in, and the edge brings her back.
	b.do("open the tour page", chromedp.Navigate(dev.url+"/"), chromedp.WaitVisible(heading("jitprov, running on your machine")))
	b.do("open the admin console", chromedp.Click(link("admin console")), chromedp.WaitVisible(`//input[@id="email"]`))
	shot("01-sign-in")
	b.do("type Olivia's email", chromedp.SendKeys(`//input[@id="email"]`, "olivia@demo.example"), chromedp.Click(button("Continue")),
		chromedp.WaitVisible(link("SAML (development IdP)")))
	b.do("choose SAML", chromedp.Click(link("SAML (development IdP)")), chromedp.WaitVisible(button("Sign in as Olivia Operator")))
	b.do("sign in as Olivia", chromedp.Click(button("Sign in as Olivia Operator")), chromedp.WaitVisible(heading("Dashboard")))
	b.mustSee("Signed in as olivia@demo.example", "3 of 50 used", "1 pending", "First logins: 3")
	shot("02-dashboard")

	// The review queue: Grace's review, approved.
	b.do("open the role reviews", chromedp.Click(link("Role reviews")), chromedp.WaitVisible(heading("Role reviews")))
	b.mustSee("grace@demo.example", "Asks for")
	shot("03-reviews")
	b.do("approve Grace's review", chromedp.Click(button("Approve")),
		chromedp.WaitVisible(text("Approved: grace@demo.example now has the role admin.")))
	b.mustSee("No pending reviews.")
	shot("04-approved")

	// The users table shows her role.
	b.do("open the users", chromedp.Click(link("Users")), chromedp.WaitVisible(heading("Users")))
	shot("05-users")
	// Wait for the filtered page first (its search box carries the value
	// as an attribute, which the page before never does): a query that
	// starts on the page being left can hang on its detached nodes.
	b.do("search for Grace", chromedp.SendKeys(`//input[@id="q"]`, "grace"), chromedp.Click(button("Filter")),
		chromedp.WaitVisible(`//input[@id="q"][@value="grace"]`),
		chromedp.WaitVisible(`//table[@id="users"]//tr[td/a[.="grace@demo.example"]]/td[@class="role"][.="admin"]`))
	shot("06-users-grace")

	// The audit log names Olivia.
	b.do("open the audit log", chromedp.Click(link("Audit log")), chromedp.WaitVisible(heading("Audit log")))
	shot("07-audit-decisions")
	b.do("open the admin actions", chromedp.Click(link("Admin actions")),
		chromedp.WaitVisible(`//table[@id="actions"]//td[.="Approved a role review"]`))
	b.mustSee("olivia@demo.example")
	shot("08-audit-actions")
	b.do("open the connections", chromedp.Click(link("Connections")), chromedp.WaitVisible(heading("Connections")))
	shot("09-connections")

	// Deprovision Ada: the seat count drops.
	b.do("open the users again", chromedp.Click(link("Users")), chromedp.WaitVisible(link("ada@demo.example")))
	b.do("open Ada's page", chromedp.Click(link("ada@demo.example")), chromedp.WaitVisible(heading("ada@demo.example")))
	shot("10-user-ada")
	b.do("deprovision Ada", chromedp.Click(link("Deprovision…")), chromedp.WaitVisible(heading("Deprovision ada@demo.example?")))
	shot("11-confirm-deprovision")
	b.do("confirm", chromedp.SendKeys(`//textarea[@id="reason"]`, "Left the company"), chromedp.Click(button("Deprovision")),
		chromedp.WaitVisible(text("ada@demo.example is deprovisioned; their seat is free.")))
	b.mustSee("Deprovisioned a user", "reason: Left the company")
	shot("12-ada-deprovisioned")
	b.do("back to the dashboard", chromedp.Click(link("Dashboard")), chromedp.WaitVisible(heading("Dashboard")))
	b.mustSee("2 of 50 used")
	shot("13-dashboard-after")

	// Grace's next sign-in: the demo application shows her new role. It
	// takes the known-identities fast path, whose record of Grace the
	// admin events rewrite (feat/known-invalidation).
	b.do("the demo application", chromedp.Navigate(b.app), chromedp.WaitVisible(link("Sign out")))
	b.signOut()
	b.signIn("Demo — SAML", "Grace Hopper")
	b.mustShow("grace@demo.example", "admin", "demo")
	shot("14-demo-app-grace-admin")
	dev.interrupt(t, 10*time.Second)
}

// mustSee checks the page the browser is at shows each of wants.
func (b *tourBrowser) mustSee(wants ...string) {
	b.t.Helper()
	body, err := chromedp.Run(b.ctx, chromedp.Evaluate[string](`document.body.innerText`))
	if err != nil {
		b.t.Fatalf("read the page: %v", err)
	}
	body = strings.Join(strings.Fields(body), " ")
	for _, w := range wants {
		if !strings.Contains(body, w) {
			b.t.Fatalf("the page does not show %q\n%s", w, b.where())
		}
	}
}

// screenshotDir is $JITPROV_SCREENSHOTS, or a new folder that outlives
// the test (its screenshots are its output); the log names it.
func screenshotDir(t *testing.T) string {
	dir := os.Getenv("JITPROV_SCREENSHOTS")
	if dir == "" {
		var err error
		if dir, err = os.MkdirTemp("", "jitprov-console-screenshots-"); err != nil {
			t.Fatal(err)
		}
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { t.Logf("screenshots of the console: %s", dir) })
	fmt.Fprintf(os.Stderr, "screenshots of the console go to %s\n", dir)
	return dir
}
