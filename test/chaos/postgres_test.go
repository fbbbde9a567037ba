//go:build chaos

package chaos

import (
	"context"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// pgServer is a throwaway PostgreSQL cluster of the suite's own: initdb in
// a fresh directory, a free loopback port, trust authentication, fsync on.
// The suite stops and starts it at will; the machine's own server is never
// touched.
type pgServer struct {
	port int
	dir  string // owned by the server's OS user
	proc *proc
}

// postgresBin finds the newest PostgreSQL installation's bin directory.
func postgresBin() (string, error) {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	if len(dirs) == 0 {
		return "", fmt.Errorf("no PostgreSQL server binaries under /usr/lib/postgresql/*/bin: install the postgresql package (make chaos runs scripts/test-deps.sh, which does)")
	}
	sort.Slice(dirs, func(i, j int) bool { return pgVersion(dirs[i]) < pgVersion(dirs[j]) })
	return dirs[len(dirs)-1], nil
}

func pgVersion(binDir string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return v
}

// pgCredential is who runs initdb and postgres: as root, the postgres OS
// user (initdb refuses to run as root); otherwise whoever runs the suite.
func pgCredential() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("running as root, and there is no postgres OS user to run initdb as: %w", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

// newPostgres makes and starts a cluster, removed when t ends.
func newPostgres(t *testing.T, logDir string) *pgServer {
	t.Helper()
	bin, err := postgresBin()
	if err != nil {
		t.Fatal(err)
	}
	cred, err := pgCredential()
	if err != nil {
		t.Fatal(err)
	}
	// Not under t.TempDir: its parents are private to this user, and the
	// server's user must reach the data directory.
	dir, err := os.MkdirTemp("", "jitprov-chaos-pg-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	if cred != nil {
		if err := os.Chown(dir, int(cred.Uid), int(cred.Gid)); err != nil {
			t.Fatal(err)
		}
	}
	data := filepath.Join(dir, "data")
	logPath := filepath.Join(logDir, "postgres.log")
	env := []string{"PATH=" + bin + ":/usr/bin:/bin", "LC_ALL=C.UTF-8", "HOME=" + dir}
	// --no-sync only for initdb's own files; the server runs with fsync on.
	if _, err := runOnce(context.Background(), 2*time.Minute, logPath, cred, env, filepath.Join(bin, "initdb"),
		"-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"); err != nil {
		t.Fatal(err)
	}
	port := freePort(t)
	pg := &pgServer{port: port, dir: dir, proc: &proc{
		name: "postgres", path: filepath.Join(bin, "postgres"), env: env, logPath: logPath, cred: cred,
		args: []string{"-D", data, "-p", strconv.Itoa(port),
			"-c", "listen_addresses=127.0.0.1", "-c", "unix_socket_directories=",
			"-c", "fsync=on", "-c", "synchronous_commit=on", "-c", "max_connections=300",
			"-c", "shared_buffers=128MB", "-c", "log_min_messages=warning"},
	}}
	t.Cleanup(pg.proc.cleanup)
	if err := pg.start(context.Background()); err != nil {
		t.Fatal(err)
	}
	return pg
}

// url of database db.
func (pg *pgServer) url(db string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", pg.port, db)
}

// start starts the server and waits until it accepts connections.
func (pg *pgServer) start(ctx context.Context) error {
	if err := pg.proc.start(); err != nil {
		return err
	}
	return pg.waitReady(ctx, 60*time.Second)
}

func (pg *pgServer) waitReady(ctx context.Context, within time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, within)
	defer cancel()
	var last error
	for {
		if !pg.proc.running() {
			return fmt.Errorf("postgres exited while starting (see %s): %s", pg.proc.logPath, lastLine(pg.proc.logPath))
		}
		c, err := pgx.Connect(ctx, pg.url("postgres"))
		if err == nil {
			c.Close(context.Background())
			return nil
		}
		last = err
		select {
		case <-ctx.Done():
			return fmt.Errorf("postgres did not accept connections within %s: %w", within, last)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// stopImmediate stops the server as `pg_ctl stop -m immediate` does
// (SIGQUIT to the postmaster): no checkpoint, every session cut, crash
// recovery at the next start.
func (pg *pgServer) stopImmediate() error {
	if err := pg.proc.signalLeader(syscall.SIGQUIT, true); err != nil {
		return err
	}
	return pg.proc.wait(30 * time.Second)
}

// createDatabase creates database name.
func (pg *pgServer) createDatabase(ctx context.Context, name string) error {
	c, err := pgx.Connect(ctx, pg.url("postgres"))
	if err != nil {
		return err
	}
	defer c.Close(context.Background())
	_, err = c.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize())
	return err
}
