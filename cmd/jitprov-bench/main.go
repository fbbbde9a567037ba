// Command jitprov-bench measures first-seen provisions per second and
// request→reply latency through JetStream and the provisioner, for one
// organisation and for many, beside pgbench running the same SQL
// transaction on the same database in the same run. It creates a scratch
// database on the server named by JITPROV_BENCH_DATABASE_URL (default: the
// local server) and drops it at the end.
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"flag"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/jitprov/jitprov/internal/bench"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "jitprov-bench:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context) error {
	o := bench.Options{Log: slog.New(slog.DiscardHandler)}
	flag.DurationVar(&o.Duration, "duration", 15*time.Second, "measured time per scenario (and pgbench's -T)")
	flag.DurationVar(&o.Warmup, "warmup", 3*time.Second, "unmeasured time before each scenario")
	flag.IntVar(&o.Concurrency, "concurrency", 64, "logins in flight")
	flag.IntVar(&o.Workers, "workers", 16, "workers per provisioner")
	flag.IntVar(&o.Replicas, "replicas", 2, "provisioners in the process")
	flag.BoolVar(&o.NATSSync, "nats-sync", true, "fsync every JetStream write (the single-node production setting)")
	orgs := flag.String("orgs", "1,100", "comma-separated organisation counts, one scenario each")
	probe := flag.String("stream-probe", "", "instead of the scenarios, measure acknowledged JetStream publishes a second to each of these stream counts, comma-separated (e.g. 1,4): how the fsync policy bounds one stream")
	admin := flag.String("db", envOr("JITPROV_BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"),
		"server to create the scratch database on")
	flag.Parse()
	if *probe != "" {
		var counts []int
		for _, f := range strings.Split(*probe, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil || n < 1 || n > 64 {
				return fmt.Errorf("-stream-probe: %q is not a stream count from 1 to 64", f)
			}
			counts = append(counts, n)
		}
		dir, err := os.MkdirTemp("", "jitprov-bench-nats-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		o.StoreDir = dir
		_, err = bench.StreamProbe(ctx, o, counts, o.Concurrency, o.Duration, os.Stdout)
		return err
	}
	for _, f := range strings.Split(*orgs, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return fmt.Errorf("-orgs: %q is not a positive whole number", f)
		}
		o.OrgCounts = append(o.OrgCounts, n)
	}

	dbURL, drop, err := scratchDatabase(ctx, *admin)
	if err != nil {
		return err
	}
	defer drop()
	o.DatabaseURL = dbURL
	dir, err := os.MkdirTemp("", "jitprov-bench-nats-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	o.StoreDir = dir
	_, err = bench.Run(ctx, o, os.Stdout)
	return err
}

func scratchDatabase(ctx context.Context, admin string) (string, func(), error) {
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		return "", nil, fmt.Errorf("connect to %s: %w", redacted(admin), err)
	}
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	name := "jitprov_bench_" + hex.EncodeToString(b)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		conn.Close(ctx)
		return "", nil, fmt.Errorf("create database %s: %w", name, err)
	}
	u, err := url.Parse(admin)
	if err != nil {
		return "", nil, err
	}
	u.Path = "/" + name
	return u.String(), func() {
		ctx := context.Background()
		if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			fmt.Fprintln(os.Stderr, "jitprov-bench: drop", name+":", err)
		}
		conn.Close(ctx)
	}, nil
}

func redacted(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}
