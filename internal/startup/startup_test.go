package startup_test

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/jitprov/jitprov/internal/startup"
	"github.com/jitprov/jitprov/internal/testenv"
)

var errDown = errors.New("connection refused")

func TestWait(t *testing.T) {
	for _, tc := range []struct {
		name     string
		failures int   // tries failing with errDown before the outcome
		outcome  error // of the last try
		want     error // of Wait; nil for success
		logs     []string
	}{
		{"first try succeeds", 0, nil, nil, nil},
		{"succeeds after failures", 3, nil, nil, []string{"waiting for the thing; retrying", "connection refused", "the thing ready", "tries=4"}},
		{"permanent error stops at once", 0, startup.Permanent(errors.New("password refused")), errors.New("password refused"), nil},
		{"permanent after failures", 2, startup.Permanent(errors.New("password refused")), errors.New("password refused"), []string{"connection refused"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var logs testenv.Output
			var status startup.Status
			tries := 0
			err := startup.Wait(t.Context(), logs.Logger(), &status, "the thing", func(context.Context) error {
				tries++
				if tries <= tc.failures {
					if got := status.Ready(t.Context()); got == nil || !strings.Contains(got.Error(), "starting") {
						t.Errorf("readiness while trying = %v, want starting", got)
					}
					return errDown
				}
				return tc.outcome
			})
			switch {
			case tc.want == nil && err != nil:
				t.Fatalf("Wait = %v, want success", err)
			case tc.want != nil && (err == nil || !strings.Contains(err.Error(), tc.want.Error()) || !strings.Contains(err.Error(), "the thing")):
				t.Fatalf("Wait = %v, want an error naming the thing and %q", err, tc.want)
			}
			if tries != tc.failures+1 {
				t.Errorf("%d tries, want %d", tries, tc.failures+1)
			}
			for _, w := range tc.logs {
				if !strings.Contains(logs.String(), w) {
					t.Errorf("logs lack %q:\n%s", w, logs.String())
				}
			}
		})
	}
}

// Readiness says what the service waits for and why, until Done.
func TestStatus(t *testing.T) {
	var status startup.Status
	if err := status.Ready(t.Context()); err == nil || err.Error() != "starting" {
		t.Errorf("before any step: %v, want starting", err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	tries := 0
	err := startup.Wait(ctx, slog.New(slog.DiscardHandler), &status, "the database", func(context.Context) error {
		if tries++; tries == 2 {
			got := status.Ready(t.Context())
			if got == nil || got.Error() != "starting: waiting for the database: connection refused" {
				t.Errorf("readiness after a failed try = %v", got)
			}
			cancel() // stopped while waiting
		}
		return errDown
	})
	if err == nil || !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "stopped while waiting for the database") {
		t.Errorf("Wait stopped = %v, want it to say it stopped while waiting, wrapping context.Canceled", err)
	}
	status.Done()
	if err := status.Ready(t.Context()); err != nil {
		t.Errorf("after Done: %v, want ready", err)
	}
}
