package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"syscall"
	"testing"
	"time"
)

// SIGHUP reaches the channel Notify returns (sso-edge reloads its
// connections on it), however many come before it is received.
func TestNotify(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	hup := Notify(ctx, syscall.SIGHUP)
	for range 2 {
		if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case <-hup:
	case <-time.After(time.Minute): // a bound, not a wait: the signal comes at once
		t.Fatal("no value for SIGHUP")
	}
}

func TestExitCode(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want int
	}{
		{nil, 0},
		{flag.ErrHelp, 0},
		{fmt.Errorf("wrapped: %w", flag.ErrHelp), 0},
		{errors.New("plain"), 1},
		{Exit(4, errors.New("conflict")), 4},
		{fmt.Errorf("context: %w", Exit(2, errors.New("not found"))), 2},
		{Exit(0, errors.New("a code 0 is still a failure")), 1},
	} {
		if got := ExitCode(tc.err); got != tc.want {
			t.Errorf("ExitCode(%v) = %d, want %d", tc.err, got, tc.want)
		}
	}
	if Exit(3, nil) != nil {
		t.Error("Exit(3, nil) is not nil")
	}
}
