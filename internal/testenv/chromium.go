package testenv

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// Chromium starts a real browser for t: Debian's chromium, headless, with a
// fresh profile, driven through the DevTools protocol. It returns the
// chromedp context of the browser's first tab, which has already started
// (so a context derived from it with a timeout bounds only what runs on
// it, not the browser's life); the browser is stopped when t ends. Where
// Browser (an HTTP client with cookies) reads a page's HTML, Chromium runs
// it as a person's browser does: scripts, redirects, forms, cookies.
//
// A machine without chromium fails the test, never skips it: `make test`
// installs it (scripts/test-deps.sh).
func Chromium(t testing.TB) context.Context {
	t.Helper()
	path, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatalf("testenv: a real browser is required and chromium is not installed (%v); "+
			"run `make test`, which installs it, or `apt-get install chromium`", err)
	}
	out := &Output{}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.Headless,
		chromedp.NoSandbox, // tests run as root, where the sandbox cannot start
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		// Nothing but the pages under test: no QUIC probes, no component
		// or sync traffic, no background fetches.
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.CombinedOutput(out),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	// chromedp's own complaints (an event it cannot decode, say) go to the
	// log shown on failure; t.Logf from its goroutines could outlive t.
	ctx, cancel := chromedp.NewContext(allocCtx, chromedp.WithErrorf(out.printf), chromedp.WithLogf(out.printf))
	t.Cleanup(func() {
		cancel()
		cancelAlloc() // waits for the process to exit, before t.TempDir is removed
		if t.Failed() {
			t.Logf("chromium's output (without its complaints of no D-Bus):\n%s", withoutDBus(out.String()))
		}
	})
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("testenv: start chromium (%s): %v\n%s", path, err, out.String())
	}
	return ctx
}

func (o *Output) printf(format string, args ...any) {
	fmt.Fprintf(o, format+"\n", args...)
}

// withoutDBus drops the lines in which chromium says it found no D-Bus,
// which a test machine has no need of, and which would bury the rest.
func withoutDBus(s string) string {
	var keep []string
	for line := range strings.Lines(s) {
		if !strings.Contains(line, ":ERROR:dbus/") {
			keep = append(keep, line)
		}
	}
	return strings.Join(keep, "")
}
