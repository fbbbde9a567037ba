package devmode

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jitprov/jitprov/internal/store"
	"github.com/jitprov/jitprov/internal/store/sqlite"
	"github.com/jitprov/jitprov/internal/testenv"
)

// The organisations file of dev mode is written from the template only
// when it does not exist, and applied as it is at every start: a
// person's edits are kept and take effect. A file from an older template,
// or one that does not name this run's development IdP, is applied all
// the same, with a warning that says what to do.
func TestOrganizationsFileKeepsEdits(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "organizations.yaml")
	vars := orgVars{IdP: "http://localhost:8090/dev-idp", ClientID: clientID, ClientSecretFile: filepath.Join(dir, "oidc-client-secret"),
		InboxWebhook: "http://localhost:8090/inbox/webhook", WebhookSecretFile: filepath.Join(dir, "webhook-secret")}
	st, err := sqlite.Open(ctx, filepath.Join(dir, "jitprov.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)
	seats := func(t *testing.T, org string) int {
		t.Helper()
		var o store.Organization
		if err := st.InTx(ctx, func(ctx context.Context, tx store.Tx) error {
			o, err = tx.Organization(ctx, org)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		return o.MaxSeats
	}
	written := func(t *testing.T) []byte {
		t.Helper()
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		return data
	}

	tests := []struct {
		name string
		// edit changes the file before the start (nil: leave it).
		edit func(data []byte) []byte
		vars orgVars
		// wantSeats is demo's max_seats after the start.
		wantSeats int
		// wantFile is what the file holds after the start ("" when the
		// template's); wantLog and wantNotLog are in and not in the log.
		wantFile           string
		wantLog, wantNoLog []string
		wantNew            bool
	}{
		{name: "first start writes the template", vars: vars, wantSeats: 50,
			wantLog: []string{"wrote the organisations file from the dev template"}, wantNoLog: []string{"level=WARN"}},
		{name: "an edit is kept and applied", vars: vars, wantSeats: 7,
			edit:     func(d []byte) []byte { return bytes.Replace(d, []byte("max_seats: 50"), []byte("max_seats: 7"), 1) },
			wantFile: "max_seats: 7", wantLog: []string{"applying the organisations file as it is: your edits are kept"}, wantNoLog: []string{"level=WARN"}},
		{name: "the next start keeps it too", vars: vars, wantSeats: 7, wantFile: "max_seats: 7", wantNoLog: []string{"level=WARN", "wrote the organisations file"}},
		{name: "a file from an older template is applied, and the new one written beside it", vars: vars, wantSeats: 7,
			edit: func(d []byte) []byte {
				return bytes.Replace(d, []byte(fmt.Sprintf("# jitprov dev template version %d\n", orgsTemplateVersion)), nil, 1)
			},
			wantFile: "max_seats: 7", wantNew: true,
			wantLog: []string{"level=WARN", "written from an older dev template", "template=" + path + ".new", fmt.Sprintf("file_version=1 template_version=%d", orgsTemplateVersion)}},
		{name: "other ports than the file's", vars: func() orgVars {
			v := vars
			v.IdP, v.InboxWebhook = "http://localhost:9090/dev-idp", "http://localhost:9090/inbox/webhook"
			return v
		}(),
			edit: func(d []byte) []byte {
				return append([]byte(fmt.Sprintf("# jitprov dev template version %d\n", orgsTemplateVersion)), d...)
			}, // merged
			wantSeats: 7, wantFile: "max_seats: 7", wantNoLog: []string{"older dev template"},
			wantLog: []string{"level=WARN", "does not name this run's development IdP http://localhost:9090/dev-idp, inbox webhook http://localhost:9090/inbox/webhook"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.edit != nil {
				if err := os.WriteFile(path, tt.edit(written(t)), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			_ = os.Remove(path + ".new")
			var out testenv.Output
			if _, err := applyOrganizations(ctx, st, path, tt.vars, out.Logger()); err != nil {
				t.Fatal(err)
			}
			if got := seats(t, "demo"); got != tt.wantSeats {
				t.Errorf("demo has %d seats, want %d", got, tt.wantSeats)
			}
			if data := string(written(t)); tt.wantFile != "" && !strings.Contains(data, tt.wantFile) {
				t.Errorf("the file lost the edit %q:\n%s", tt.wantFile, data)
			}
			if _, err := os.Stat(path + ".new"); (err == nil) != tt.wantNew {
				t.Errorf("%s.new exists: %t, want %t", path, err == nil, tt.wantNew)
			}
			for _, w := range tt.wantLog {
				if !strings.Contains(out.String(), w) {
					t.Errorf("the log lacks %q:\n%s", w, out.String())
				}
			}
			for _, w := range tt.wantNoLog {
				if strings.Contains(out.String(), w) {
					t.Errorf("the log has %q:\n%s", w, out.String())
				}
			}
		})
	}
}
