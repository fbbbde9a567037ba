package scim_test

import (
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// F5: a filter of deeply nested parentheses (200 kB of query string, under
// net/http's 1 MB header limit) overflows the goroutine stack in the
// filter parser: "fatal error: stack overflow" is not a panic, nothing
// recovers it, and the whole admin service (API, console and every
// organisation's SCIM) dies. Any SCIM token can do it. The request runs in
// a child process so that the test itself survives to report.
func TestSecurityFilterNestingCrashesServer(t *testing.T) {
	n := 100000
	nested := strings.Repeat("(", n) + `value eq "x"` + strings.Repeat(")", n)
	switch os.Getenv("REVIEW_CRASH_CHILD") {
	case "filter":
		h := newHarness(t, 10)
		f := strings.Repeat("(", n) + `userName eq "x"` + strings.Repeat(")", n)
		r := h.scim(t, http.MethodGet, "/Users?filter="+url.QueryEscape(f), "")
		t.Logf("child: status %d", r.status)
		return
	case "patch":
		h := newHarness(t, 10)
		g := h.scim(t, http.MethodPost, "/Groups", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group"],"displayName":"G"}`)
		id := g.json(t)["id"].(string)
		body := mustJSON(map[string]any{"schemas": []string{"urn:ietf:params:scim:api:messages:2.0:PatchOp"},
			"Operations": []any{map[string]any{"op": "remove", "path": "members[" + nested + "]"}}})
		r := h.scim(t, http.MethodPatch, "/Groups/"+id, body)
		t.Logf("child: status %d", r.status)
		return
	}
	for _, mode := range []string{"filter", "patch"} {
		t.Run(mode, func(t *testing.T) {
			cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestSecurityFilterNestingCrashesServer$", "-test.v")
			cmd.Env = append(os.Environ(), "REVIEW_CRASH_CHILD="+mode)
			out, err := cmd.CombinedOutput()
			if strings.Contains(string(out), "stack overflow") {
				t.Errorf("one %s request with 100000 nested parentheses killed the server process: fatal error: stack overflow (child: %v)", mode, err)
			} else if err != nil {
				t.Errorf("child failed: %v\n%s", err, out[max(0, len(out)-2000):])
			}
		})
	}
}
