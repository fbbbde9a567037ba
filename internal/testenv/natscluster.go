package testenv

import (
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Cluster is a JetStream cluster of real nats-servers embedded in the test
// process, on loopback, whose nodes a test can stop and start again (same
// ports, same storage) to inject failovers.
type Cluster struct {
	t     testing.TB
	opts  []*server.Options
	nodes []*server.Server // nil while a node is stopped
}

// NATSCluster starts a JetStream cluster of n nodes (fsync on every write)
// and waits until it has a meta leader; with n = 1, a single server that a
// test can restart. Every node is shut down when t ends.
func NATSCluster(t testing.TB, n int) *Cluster {
	t.Helper()
	clientPorts, routePorts := freePorts(t, n), freePorts(t, n)
	routes := make([]string, n)
	for i, p := range routePorts {
		routes[i] = fmt.Sprintf("nats://127.0.0.1:%d", p)
	}
	c := &Cluster{t: t, nodes: make([]*server.Server, n)}
	for i := range n {
		c.opts = append(c.opts, &server.Options{
			ServerName: fmt.Sprintf("n%d", i+1),
			Host:       "127.0.0.1",
			Port:       clientPorts[i],
			JetStream:  true,
			StoreDir:   t.TempDir(),
			SyncAlways: true,
			NoSigs:     true,
			NoLog:      true,
		})
		if n > 1 {
			c.opts[i].Cluster = server.ClusterOpts{Name: "jitprov-test", Host: "127.0.0.1", Port: routePorts[i]}
			c.opts[i].Routes = server.RoutesFromStr(strings.Join(routes, ","))
		}
	}
	for i := range n {
		c.Start(i)
	}
	t.Cleanup(func() {
		for i := range c.nodes {
			c.Stop(i)
		}
	})
	if n > 1 {
		c.WaitForMetaLeader()
	}
	return c
}

// URLs is the client URL list of every node, as a NATS client takes it.
func (c *Cluster) URLs() string {
	urls := make([]string, len(c.opts))
	for i, o := range c.opts {
		urls[i] = fmt.Sprintf("nats://127.0.0.1:%d", o.Port)
	}
	return strings.Join(urls, ",")
}

// Connect opens a client connection to the cluster — even while no node
// runs yet — that reconnects for as long as the test runs, closed when t
// ends.
func (c *Cluster) Connect(t testing.TB) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(c.URLs(), nats.Name(t.Name()), nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond),
		nats.RetryOnFailedConnect(true))
	if err != nil {
		t.Fatalf("testenv: connect to the nats cluster: %v", err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// ConnectTo opens a client connection to node i alone, closed when t
// ends: a client that node i's failure cuts off.
func (c *Cluster) ConnectTo(t testing.TB, i int) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(fmt.Sprintf("nats://127.0.0.1:%d", c.opts[i].Port), nats.Name(t.Name()),
		nats.NoReconnect(), nats.DontRandomize(), nats.IgnoreDiscoveredServers())
	if err != nil {
		t.Fatalf("testenv: connect to nats node %s: %v", c.opts[i].ServerName, err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// Start starts node i (again), on its ports and storage.
func (c *Cluster) Start(i int) {
	c.t.Helper()
	if c.nodes[i] != nil {
		return
	}
	s, err := server.NewServer(c.opts[i])
	if err != nil {
		c.t.Fatalf("testenv: nats node %s: %v", c.opts[i].ServerName, err)
	}
	s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		c.t.Fatalf("testenv: nats node %s did not start", c.opts[i].ServerName)
	}
	c.nodes[i] = s
}

// Stop shuts node i down, as a killed process would leave it: its peers
// see it gone and elect new leaders for what it led.
func (c *Cluster) Stop(i int) {
	if s := c.nodes[i]; s != nil {
		s.Shutdown()
		s.WaitForShutdown()
		c.nodes[i] = nil
	}
}

// Server is node i's server, nil while it is stopped.
func (c *Cluster) Server(i int) *server.Server { return c.nodes[i] }

// Node returns the index of the node named name ("n1"…), or -1.
func (c *Cluster) Node(name string) int {
	for i, o := range c.opts {
		if o.ServerName == name {
			return i
		}
	}
	return -1
}

// StreamLeader returns the index of the node leading stream, waiting until
// one leads it.
func (c *Cluster) StreamLeader(js jetstream.JetStream, stream string) int {
	c.t.Helper()
	var leader int
	c.eventually("a leader of stream "+stream, func(ctx context.Context) error {
		s, err := js.Stream(ctx, stream)
		if err != nil {
			return err
		}
		info := s.CachedInfo()
		if info.Cluster == nil || info.Cluster.Leader == "" {
			return fmt.Errorf("stream %s has no leader", stream)
		}
		if leader = c.Node(info.Cluster.Leader); leader < 0 {
			return fmt.Errorf("stream %s is led by unknown node %q", stream, info.Cluster.Leader)
		}
		return nil
	})
	return leader
}

// WaitForMetaLeader waits until the running nodes agree on a JetStream
// meta leader that knows every running node as a current peer, so that
// replicated streams can be placed.
func (c *Cluster) WaitForMetaLeader() {
	c.t.Helper()
	running := 0
	for _, s := range c.nodes {
		if s != nil {
			running++
		}
	}
	c.eventually("a JetStream meta leader with every node as a peer", func(context.Context) error {
		for _, s := range c.nodes {
			if s != nil && s.JetStreamIsLeader() {
				if peers := s.JetStreamClusterPeers(); len(peers) < running {
					return fmt.Errorf("the meta leader knows %d current peers of %d nodes", len(peers), running)
				}
				return nil
			}
		}
		return fmt.Errorf("no meta leader among %d nodes", running)
	})
}

func (c *Cluster) eventually(what string, check func(context.Context) error) {
	c.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		err := check(ctx)
		cancel()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("testenv: no %s within 30s: %v", what, err)
		}
		time.Sleep(50 * time.Millisecond) // poll interval of a condition, not a wait for a result
	}
}

// freePorts returns n TCP ports free on loopback at the time of the call.
func freePorts(t testing.TB, n int) []int {
	t.Helper()
	ports := make([]int, n)
	for i := range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("testenv: free port: %v", err)
		}
		ports[i] = ln.Addr().(*net.TCPAddr).Port
		defer ln.Close()
	}
	return ports
}
