package main

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jitprov/jitprov/internal/testenv"
)

// One `jitprov dev` per data folder. A second one on the same folder, on
// other ports, stops at once naming the first and touches nothing; when
// the first stops — cleanly, or killed with SIGKILL — the next one starts.
func TestDevModeDataFolderLock(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs jitprov dev")
	}
	bin := buildJitprov(t)
	data := t.TempDir()
	first := startDev(t, bin, data, testenv.FreePorts(t, 3))

	orgs := filepath.Join(data, "organizations.yaml") // written by the first start
	orgsBefore, orgsInfo := readFile(t, orgs)

	out, err := runDevUntilExit(t, bin, data, testenv.FreePorts(t, 3), 30*time.Second)
	if err == nil {
		t.Fatalf("a second jitprov dev on the folder of the first exited with success:\n%s", out)
	}
	want := fmt.Sprintf("jitprov: devmode: the data folder %s is in use by jitprov dev (pid %d, started ", data, first.cmd.Process.Pid)
	if !strings.Contains(out, want) || !strings.Contains(out, "tour "+first.url+", edge http://localhost:") ||
		!strings.Contains(out, "; stop it, or give this one another folder with -data DIR") {
		t.Errorf("the second jitprov dev said:\n%s\nwant a line starting %q, naming the first's URLs and -data DIR", out, want)
	}
	if got, info := readFile(t, orgs); got != orgsBefore || !info.ModTime().Equal(orgsInfo.ModTime()) {
		t.Errorf("the second jitprov dev rewrote %s", orgs)
	}
	if lock, _ := readFile(t, filepath.Join(data, "lock")); !strings.Contains(lock, fmt.Sprintf(`"pid": %d,`, first.cmd.Process.Pid)) {
		t.Errorf("the lock file does not name the first (pid %d) any more:\n%s", first.cmd.Process.Pid, lock)
	}

	// Stopped, the first lets the next one in.
	first.interrupt(t, 10*time.Second)
	second := startDev(t, bin, data, testenv.FreePorts(t, 3))
	if lock, _ := readFile(t, filepath.Join(data, "lock")); !strings.Contains(lock, fmt.Sprintf(`"pid": %d,`, second.cmd.Process.Pid)) {
		t.Errorf("the lock file does not name the second (pid %d):\n%s", second.cmd.Process.Pid, lock)
	}

	// Killed, it leaves no lock behind: the kernel released it.
	if err := second.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-second.done
	third := startDev(t, bin, data, testenv.FreePorts(t, 3))
	third.interrupt(t, 10*time.Second)
}

// runDevUntilExit runs jitprov dev and returns its output once it exits;
// it fails the test if the process starts serving (prints its banner) or
// has not exited within the limit.
func runDevUntilExit(t *testing.T, bin, data string, ports []int, limit time.Duration) (string, error) {
	t.Helper()
	cmd := exec.Command(bin, "dev", "-data", data, "-host", "localhost",
		"-edge-port", fmt.Sprint(ports[0]), "-dev-port", fmt.Sprint(ports[1]), "-nats-port", fmt.Sprint(ports[2]))
	cmd.Env = append(os.Environ(), "DATABASE_URL=", "JITPROV_DATABASE_URL=", "NATS_URL=", "JITPROV_NATS_URL=")
	out := &lockedBuffer{}
	cmd.Stderr = out
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	served := make(chan struct{})
	copied := make(chan struct{})
	go func() {
		defer close(copied)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			out.Write([]byte(sc.Text() + "\n"))
			if strings.Contains(sc.Text(), "Press Ctrl-C to stop") {
				close(served)
			}
		}
	}()
	done := make(chan error, 1)
	go func() {
		<-copied // Wait closes the pipe: read it all first
		done <- cmd.Wait()
	}()
	select {
	case err := <-done:
		return out.String(), err
	case <-served:
		t.Errorf("a second jitprov dev started serving on the data folder of the first:\n%s", out.String())
	case <-time.After(limit):
		t.Errorf("jitprov dev still running after %s, want it refused at once:\n%s", limit, out.String())
	}
	_ = cmd.Process.Kill()
	<-done
	t.FailNow()
	return "", nil
}

func readFile(t *testing.T, path string) (string, os.FileInfo) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b), info
}
