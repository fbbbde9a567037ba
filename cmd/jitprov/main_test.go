package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"strings"
	"testing"

	"github.com/jitprov/jitprov/internal/testenv"
)

func TestUsageAndStartErrors(t *testing.T) {
	taken, err := net.Listen("tcp", "localhost:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	port := taken.Addr().(*net.TCPAddr).Port
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "name a command"},
		{[]string{"serve"}, `unknown command "serve"`},
		{[]string{"dev", "extra"}, `unexpected argument "extra"`},
		{[]string{"loadtest"}, "name setup, run or compare"},
		{[]string{"loadtest", "storm"}, "jitprov loadtest storm: unknown"},
		{[]string{"loadtest", "setup", "-edge-url", "sso.example.com", "-dir", t.TempDir()}, "want the edge's public URL"},
		{[]string{"loadtest", "run", "-dir", t.TempDir()}, "run `jitprov loadtest setup` first"},
		{[]string{"loadtest", "run", "-mode", "open", "-dir", t.TempDir()}, "an open loop needs -rate"},
		{[]string{"loadtest", "run", "-o", "yaml"}, "-o \"yaml\": want text or json"},
		{[]string{"dev", "-log-level", "loud"}, "log level"},
		{[]string{"dev", "-database-url", "postgres://jitprov@db.prod.example/jitprov"}, "the database (DATABASE_URL) is on db.prod.example, not this machine"},
		{[]string{"dev", "-nats-url", "nats://127.0.0.1:4222,nats://nats.prod.example:4222"}, "the NATS server (NATS_URL) is on nats.prod.example"},
		{[]string{"dev", "-database-url", "host=db.prod.example dbname=jitprov"}, "is on db.prod.example"},
		{[]string{"dev", "-data", t.TempDir(), "-dev-port", fmt.Sprint(port)}, fmt.Sprintf("the demo port %d is taken (choose another with -dev-port)", port)},
		{[]string{"dev", "-data", t.TempDir(), "-dev-port", fmt.Sprint(testenv.FreePorts(t, 1)[0]), "-edge-port", fmt.Sprint(port)}, fmt.Sprintf("the edge port %d is taken (choose another with -edge-port)", port)},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			var out, errOut bytes.Buffer
			err := run(context.Background(), tc.args, func(string) string { return "" }, &out, &errOut)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("run(%q) = %v, want an error containing %q", tc.args, err, tc.want)
			}
		})
	}
}
