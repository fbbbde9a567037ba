package cli

import (
	"context"
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
