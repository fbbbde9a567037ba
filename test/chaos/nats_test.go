//go:build chaos

package chaos

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// natsNode is one nats-server process of the cluster.
type natsNode struct {
	name        string
	port        int // clients
	clusterPort int // routes
	httpPort    int // monitoring: /healthz
	proc        *proc
}

func (n *natsNode) url() string { return fmt.Sprintf("nats://127.0.0.1:%d", n.port) }

// natsCluster is a 3-node JetStream cluster on loopback, each node a real
// nats-server process built from the module graph, fsyncing every write
// (sync_interval: always), as the README asks of a production server.
type natsCluster struct {
	nodes []*natsNode
}

// newNATSCluster writes the nodes' configuration and starts them all.
func newNATSCluster(t *testing.T, binDir, logDir string) *natsCluster {
	t.Helper()
	c := &natsCluster{}
	for i := 1; i <= 3; i++ {
		c.nodes = append(c.nodes, &natsNode{name: "n" + strconv.Itoa(i), port: freePort(t), clusterPort: freePort(t), httpPort: freePort(t)})
	}
	store := t.TempDir()
	for _, n := range c.nodes {
		var routes []string
		for _, o := range c.nodes {
			if o != n {
				routes = append(routes, fmt.Sprintf("nats://127.0.0.1:%d", o.clusterPort))
			}
		}
		conf := fmt.Sprintf(`server_name: %s
listen: 127.0.0.1:%d
http: 127.0.0.1:%d
jetstream {
  store_dir: %q
  sync_interval: always
}
cluster {
  name: chaos
  listen: 127.0.0.1:%d
  routes: [%s]
}
`, n.name, n.port, n.httpPort, filepath.Join(store, n.name), n.clusterPort, strings.Join(routes, ", "))
		path := filepath.Join(store, n.name+".conf")
		if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
			t.Fatal(err)
		}
		n.proc = &proc{name: "nats-" + n.name, path: filepath.Join(binDir, "nats-server"), args: []string{"-c", path},
			env: []string{"PATH=/usr/bin:/bin"}, logPath: filepath.Join(logDir, "nats-"+n.name+".log")}
		t.Cleanup(n.proc.cleanup)
	}
	if err := c.startAll(); err != nil {
		t.Fatal(err)
	}
	if err := c.waitHealthy(context.Background(), 60*time.Second); err != nil {
		t.Fatal(err)
	}
	return c
}

// urls is the client URL list of every node, comma-separated, as
// JITPROV_NATS_URL takes it.
func (c *natsCluster) urls() string {
	var out []string
	for _, n := range c.nodes {
		out = append(out, n.url())
	}
	return strings.Join(out, ",")
}

func (c *natsCluster) node(name string) *natsNode {
	for _, n := range c.nodes {
		if n.name == name {
			return n
		}
	}
	return nil
}

func (c *natsCluster) startAll() error {
	for _, n := range c.nodes {
		if n.proc.running() {
			continue
		}
		if err := n.proc.start(); err != nil {
			return err
		}
	}
	return nil
}

// stopAll stops every node (SIGTERM: a restart, not a crash).
func (c *natsCluster) stopAll() error {
	for _, n := range c.nodes {
		if err := n.proc.signalGroup(syscall.SIGTERM, true); err != nil {
			return err
		}
	}
	for _, n := range c.nodes {
		if err := n.proc.wait(30 * time.Second); err != nil {
			return err
		}
	}
	return nil
}

// waitHealthy waits until every running node answers /healthz with 200:
// the server runs and its JetStream (meta group, streams, consumers) is
// current.
func (c *natsCluster) waitHealthy(ctx context.Context, within time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, within)
	defer cancel()
	client := &http.Client{Timeout: 2 * time.Second}
	for _, n := range c.nodes {
		if !n.proc.running() {
			continue
		}
		var last string
		for {
			if !n.proc.running() {
				return fmt.Errorf("nats-server %s exited while starting: %s", n.name, lastLine(n.proc.logPath))
			}
			resp, err := client.Get(fmt.Sprintf("http://127.0.0.1:%d/healthz", n.httpPort))
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					break
				}
				last = resp.Status
			} else {
				last = err.Error()
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("nats-server %s not healthy within %s: %s", n.name, within, last)
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
	return nil
}

// connect opens the suite's own client connection to the cluster: it
// reconnects forever, so that it outlives the faults it watches.
func (c *natsCluster) connect(t *testing.T) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	nc, err := nats.Connect(c.urls(), nats.Name("chaos-suite"), nats.MaxReconnects(-1), nats.ReconnectWait(200*time.Millisecond),
		nats.RetryOnFailedConnect(true))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return nc, js
}

// streamLeader is the node leading stream name's Raft group.
func streamLeader(ctx context.Context, js jetstream.JetStream, name string) (string, error) {
	s, err := js.Stream(ctx, name)
	if err != nil {
		return "", err
	}
	info, err := s.Info(ctx)
	if err != nil {
		return "", err
	}
	if info.Cluster == nil || info.Cluster.Leader == "" {
		return "", fmt.Errorf("stream %s has no leader", name)
	}
	return info.Cluster.Leader, nil
}

// freePort is a TCP port on 127.0.0.1 nobody listens on now, below the
// kernel's ephemeral range (32768 and up on Linux): a port the kernel
// hands out to outgoing connections could be taken by one of them before a
// server restarted on it binds it again.
func freePort(t testing.TB) int {
	t.Helper()
	for range 1000 {
		port := 15000 + rand.IntN(17000)
		portMu.Lock()
		taken := portsGiven[port]
		portsGiven[port] = true
		portMu.Unlock()
		if taken {
			continue
		}
		ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			continue
		}
		ln.Close()
		return port
	}
	t.Fatal("no free port between 15000 and 32000")
	return 0
}

// portsGiven are the ports freePort handed out in this run: each once.
var (
	portMu     sync.Mutex
	portsGiven = map[int]bool{}
)
