// Package cli is what jitprov's commands share around their own logic:
// the signal-aware main, signals as events, and the NATS connection.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/nats-io/nats.go"
)

// Main runs run on a context cancelled by SIGINT or SIGTERM (a graceful
// shutdown), and exits with "name: error" and status 1 when run fails, or
// the status an *ExitError carries. A request for help (flag.ErrHelp) is
// not a failure.
func Main(name string, run func(context.Context) error) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx)
	stop()
	if code := ExitCode(err); code != 0 {
		fmt.Fprintln(os.Stderr, name+":", err)
		os.Exit(code)
	}
}

// ExitError is an error with the exit status a command ends with.
type ExitError struct {
	Code int
	Err  error
}

func (e *ExitError) Error() string { return e.Err.Error() }
func (e *ExitError) Unwrap() error { return e.Err }

// Exit gives err the exit status code (nil stays nil).
func Exit(code int, err error) error {
	if err == nil {
		return nil
	}
	return &ExitError{Code: code, Err: err}
}

// ExitCode is the status a command that returned err exits with: 0 for
// nil and flag.ErrHelp, an *ExitError's code, else 1.
func ExitCode(err error) int {
	var ee *ExitError
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, &ee) && ee.Code != 0:
		return ee.Code
	}
	return 1
}

// Notify returns a channel that receives a value each time the process
// gets one of sigs (e.g. SIGHUP: reload), until ctx is done. Signals that
// come while a value waits to be received make no second one.
func Notify(ctx context.Context, sigs ...os.Signal) <-chan struct{} {
	in := make(chan os.Signal, 1)
	signal.Notify(in, sigs...)
	out := make(chan struct{}, 1)
	go func() {
		defer signal.Stop(in)
		for {
			select {
			case <-ctx.Done():
				return
			case <-in:
				select {
				case out <- struct{}{}:
				default:
				}
			}
		}
	}()
	return out
}

// ConnectNATS connects to the NATS server(s) at url as name, with the
// .creds file creds if set. With a logger it is a service's connection:
// it returns at once even when no server answers yet, connects and
// reconnects forever in the background, and logs disconnections and
// reconnections (the service waits for JetStream at start, with its
// readiness saying so). Without one it is a one-off tool's connection,
// which fails at once when NATS cannot be reached.
func ConnectNATS(name, url, creds string, log *slog.Logger) (*nats.Conn, error) {
	opts := []nats.Option{nats.Name(name)}
	if log != nil {
		opts = append(opts, nats.MaxReconnects(-1), nats.RetryOnFailedConnect(true),
			nats.DisconnectErrHandler(func(_ *nats.Conn, err error) { log.Warn("nats disconnected", "err", err) }),
			nats.ReconnectHandler(func(nc *nats.Conn) { log.Info("nats reconnected", "server", nc.ConnectedUrlRedacted()) }))
	}
	if creds != "" {
		opts = append(opts, nats.UserCredentials(creds))
	}
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		return nil, fmt.Errorf("cannot connect to NATS (nats_url, JITPROV_NATS_URL): %w", err)
	}
	return nc, nil
}
