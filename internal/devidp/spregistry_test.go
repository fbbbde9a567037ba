package devidp

import (
	"context"
	"encoding/xml"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/crewjam/saml"
)

// TestSPRegistry: SP metadata is fetched on first use, kept for the TTL,
// fetched again after it, and a stale copy serves while the SP is down.
func TestSPRegistry(t *testing.T) {
	var fetches atomic.Int64
	var down atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		fetches.Add(1)
		if down.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		out, _ := xml.Marshal(&saml.EntityDescriptor{EntityID: "http://sp.test/md", SPSSODescriptors: []saml.SPSSODescriptor{{}}})
		_, _ = w.Write(out)
	}))
	t.Cleanup(srv.Close)
	ctx := context.Background()

	reg, err := newSPRegistry([]ServiceProvider{{MetadataURL: srv.URL, Organization: OrgDemo}}, srv.Client(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if fetches.Load() != 0 {
		t.Fatal("metadata fetched before first use")
	}
	for range 3 {
		md, org, err := reg.find(ctx, "http://sp.test/md")
		if err != nil || md.EntityID != "http://sp.test/md" || org != OrgDemo {
			t.Fatalf("find: %v, %v, %q", err, md, org)
		}
	}
	if n := fetches.Load(); n != 1 {
		t.Errorf("%d fetches within the TTL, want 1", n)
	}
	if _, _, err := reg.find(ctx, "http://other.test/md"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("unknown SP: %v, want os.ErrNotExist", err)
	}

	// A TTL of zero makes every copy stale.
	stale, err := newSPRegistry([]ServiceProvider{{MetadataURL: srv.URL}}, srv.Client(), time.Nanosecond)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := stale.find(ctx, "http://sp.test/md"); err != nil {
		t.Fatal(err)
	}
	before := fetches.Load()
	if _, _, err := stale.find(ctx, "http://sp.test/md"); err != nil || fetches.Load() != before+1 {
		t.Errorf("stale copy: %v, %d fetches, want one more", err, fetches.Load()-before)
	}
	down.Store(true)
	if md, _, err := stale.find(ctx, "http://sp.test/md"); err != nil || md == nil {
		t.Errorf("SP down: %v, want the stale copy", err)
	}
	if _, _, err := stale.find(ctx, "http://other.test/md"); err == nil || errors.Is(err, os.ErrNotExist) {
		t.Errorf("unknown SP while a fetch fails: %v, want the fetch error", err)
	}

	never, err := newSPRegistry([]ServiceProvider{{MetadataURL: srv.URL}}, srv.Client(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := never.find(ctx, "http://sp.test/md"); err == nil {
		t.Error("found an SP whose metadata was never fetched")
	}
}
