// Command notifier tells organisations' admins about alerts — seats
// exhausted or running out, role reviews waiting, IdP certificates near
// expiry, logins that failed for good — by signed webhook and email,
// without spamming them and without losing one.
//
//	notifier [serve] [-config FILE]              run the service (default)
//	notifier dead list [-org ORG]                list parked deliveries
//	notifier dead replay [-org ORG] (-all | SEQ...)
//	                                             queue parked deliveries again
package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/jitprov/jitprov/internal/cli"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/jitprov/jitprov/internal/config"
	"github.com/jitprov/jitprov/internal/notify"
	"github.com/jitprov/jitprov/internal/store/postgres"
	"github.com/jitprov/jitprov/internal/telemetry"
)

func main() {
	cli.Main("notifier", func(ctx context.Context) error { return run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr) })
}

const usage = `usage:
  notifier [serve] [-config FILE]      run the service (default)
  notifier dead list [-org ORG]        list the deliveries parked after their last try
  notifier dead replay [-org ORG] (-all | SEQ...)
                                       queue parked deliveries again, each with a full set of tries

Settings come from the optional -config YAML file and JITPROV_* environment
variables (see docs/config.md). serve needs JITPROV_DATABASE_URL and
JITPROV_ORGANIZATIONS_FILE; dead needs only NATS (JITPROV_NATS_URL).`

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cmd := "serve"
	if len(args) > 0 && args[0] != "" && args[0][0] != '-' {
		cmd, args = args[0], args[1:]
	}
	sub := ""
	if cmd == "dead" {
		if len(args) == 0 || (args[0] != "list" && args[0] != "replay") {
			return fmt.Errorf("dead needs list or replay\n%s", usage)
		}
		sub, args = args[0], args[1:]
	}
	fs := flag.NewFlagSet(strings.TrimSpace("notifier "+cmd+" "+sub), flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprintln(stderr, usage) }
	cfgPath := fs.String("config", "", "YAML configuration file (optional)")
	org := fs.String("org", "", "only this organisation's parked deliveries (dead)")
	all := fs.Bool("all", false, "replay every parked delivery (of -org, if given)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	switch cmd {
	case "serve":
		if fs.NArg() > 0 {
			return fmt.Errorf("unexpected argument %q\n%s", fs.Arg(0), usage)
		}
		cfg, err := config.LoadNotifier(*cfgPath, getenv)
		if err != nil {
			return err
		}
		log, err := telemetry.NewLogger(stderr, cfg.LogLevel, cfg.LogFormat)
		if err != nil {
			return err
		}
		return serve(ctx, cfg, getenv, log)
	case "dead":
		if *cfgPath != "" {
			return errors.New("dead reads NATS settings from JITPROV_NATS_URL and JITPROV_NATS_CREDENTIALS, not from -config")
		}
		natsURL, creds := cmp.Or(getenv("JITPROV_NATS_URL"), "nats://127.0.0.1:4222"), getenv("JITPROV_NATS_CREDENTIALS")
		nc, err := cli.ConnectNATS("jitprov-notifier", natsURL, creds, nil)
		if err != nil {
			return err
		}
		defer nc.Close()
		js, err := jetstream.New(nc)
		if err != nil {
			return err
		}
		if sub == "list" {
			if fs.NArg() > 0 {
				return fmt.Errorf("unexpected argument %q\n%s", fs.Arg(0), usage)
			}
			return list(ctx, js, *org, stdout)
		}
		return replay(ctx, js, *org, *all, fs.Args(), stdout)
	}
	return fmt.Errorf("unknown command %q\n%s", cmd, usage)
}

func serve(ctx context.Context, cfg config.Notifier, getenv func(string) string, log *slog.Logger) error {
	log.InfoContext(ctx, "starting notifier", "config", cfg.String())
	orgs, err := config.LoadOrgFile(cfg.OrganizationsFile)
	if err != nil {
		return err
	}
	dir, err := notify.NewDirectory(orgs.Organizations, orgs.Notifications, getenv)
	if err != nil {
		return fmt.Errorf("webhook secrets of %s: %w", cfg.OrganizationsFile, err)
	}
	tel, err := telemetry.Setup(ctx, "jitprov-notifier")
	if err != nil {
		return err
	}
	defer tel.Flush(ctx, log)
	// Postgres need not answer yet (the admins are looked up per alert,
	// retried), nor NATS: Run waits for JetStream, alive and not ready.
	s, err := postgres.Open(ctx, cfg.DatabaseURL, postgres.Options{Logger: log, MaxConns: 4, Lazy: true, Tracer: tel.Tracer})
	if err != nil {
		return err
	}
	defer s.Close()
	nc, err := cli.ConnectNATS("jitprov-notifier", cfg.NATSURL, cfg.NATSCredentials, log)
	if err != nil {
		return err
	}
	defer nc.Close()
	return notify.Run(ctx, cfg.NotifyConfig(), notify.Deps{NATS: nc, Admins: s, Directory: dir,
		Logger: log, Tracer: tel.Tracer, Meter: tel.Meter, Metrics: tel.Metrics})
}

func list(ctx context.Context, js jetstream.JetStream, org string, stdout io.Writer) error {
	parked, err := notify.ListParked(ctx, js, org)
	if err != nil {
		return err
	}
	if len(parked) == 0 {
		fmt.Fprintln(stdout, "no parked deliveries")
		return nil
	}
	w := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "SEQ\tPARKED AT\tORG\tALERT\tRECIPIENT\tTRIES\tLAST ERROR")
	for _, p := range parked {
		fmt.Fprintf(w, "%d\t%s\t%s\t%s\t%s\t%d\t%s\n", p.Seq, p.ParkedAt.UTC().Format(time.RFC3339), p.Job.Org, p.Job.Alert,
			p.Job.Recipient.Key(), p.Attempts, oneLine(p.Error, 120))
	}
	if err := w.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%d parked; replay with `notifier dead replay SEQ...` or `-all`\n", len(parked))
	return nil
}

func replay(ctx context.Context, js jetstream.JetStream, org string, all bool, args []string, stdout io.Writer) error {
	var seqs []uint64
	switch {
	case all && len(args) > 0:
		return errors.New("give sequence numbers or -all, not both")
	case !all && org != "":
		return errors.New("-org chooses which parked deliveries -all replays; with sequence numbers, leave it out")
	case all:
		parked, err := notify.ListParked(ctx, js, org)
		if err != nil {
			return err
		}
		for _, p := range parked {
			seqs = append(seqs, p.Seq)
		}
	case len(args) == 0:
		return fmt.Errorf("name the parked deliveries to replay by their SEQ (see `notifier dead list`), or -all\n%s", usage)
	default:
		for _, a := range args {
			n, err := strconv.ParseUint(a, 10, 64)
			if err != nil {
				return fmt.Errorf("%q is not a sequence number from `notifier dead list`", a)
			}
			seqs = append(seqs, n)
		}
	}
	var errs []error
	done := 0
	for _, seq := range seqs {
		j, err := notify.Replay(ctx, js, seq)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		done++
		fmt.Fprintf(stdout, "replayed %d: %s to %s\n", seq, j.Alert, j.Recipient.Key())
	}
	fmt.Fprintf(stdout, "%d of %d replayed\n", done, len(seqs))
	return errors.Join(errs...)
}

func oneLine(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}
