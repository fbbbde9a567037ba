package bus_test

import (
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/jitprov/jitprov/internal/bus"
	"github.com/jitprov/jitprov/internal/testenv"
)

// Debian's nats-server, 2.9: too old for jitprov's consumers. Against it
// Ensure stops before it creates anything, with an error that names the
// server, its version and the one needed, where before it left streams
// behind and failed on the first consumer ("multiple consumer filter
// subjects not supported by nats-server").
func TestEnsureRefusesAnOldServer(t *testing.T) {
	bin, err := exec.LookPath("nats-server")
	if err != nil {
		bin = "/usr/sbin/nats-server"
	}
	out, err := exec.Command(bin, "--version").Output()
	if err != nil {
		t.Fatalf("Debian's nats-server is needed (%v): run `make test`, which installs it, or `apt-get install nats-server`", err)
	}
	if !strings.Contains(string(out), "v2.9.") {
		t.Fatalf("%s is %s; this test needs Debian bookworm's 2.9", bin, strings.TrimSpace(string(out)))
	}
	port := testenv.FreePorts(t, 1)[0]
	srv := exec.Command(bin, "-a", "127.0.0.1", "-p", fmt.Sprint(port), "-js", "-sd", t.TempDir())
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Process.Kill(); _ = srv.Wait() })
	url := fmt.Sprintf("nats://127.0.0.1:%d", port)
	var nc *nats.Conn
	testenv.WaitFor(t, 30*time.Second, "Debian's nats-server answering", func() bool {
		nc, err = nats.Connect(url)
		return err == nil
	})
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}

	err = bus.Ensure(t.Context(), js, bus.DefaultTopology())
	if !errors.Is(err, bus.ErrServerTooOld) {
		t.Fatalf("Ensure on nats-server 2.9: %v, want ErrServerTooOld", err)
	}
	for _, want := range []string{"2.9.", "2.10.0 or later", fmt.Sprint(port)} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the error does not say %q: %v", want, err)
		}
	}
	names := js.StreamNames(t.Context())
	var streams []string
	for n := range names.Name() {
		streams = append(streams, n)
	}
	if names.Err() != nil || len(streams) != 0 {
		t.Errorf("streams left on the old server: %v (%v), want none", streams, names.Err())
	}
}
