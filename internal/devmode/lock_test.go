package devmode

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// One holder per data folder: a second is refused at once, naming the
// first; once the first lets go, the next one takes it.
func TestLockDataDir(t *testing.T) {
	dir := t.TempDir()
	started := time.Now()
	first := holder{PID: os.Getpid(), Started: started, Tour: "http://localhost:8090", Edge: "http://localhost:8080", NATS: "nats://127.0.0.1:4223"}
	unlock, err := lockDataDir(dir, ".jitprov-dev", first)
	if err != nil {
		t.Fatal(err)
	}
	// flock locks belong to open files: a second open, even in this
	// process, is another holder.
	_, err = lockDataDir(dir, ".jitprov-dev", holder{PID: 1, Started: time.Now()})
	want := "devmode: the data folder .jitprov-dev is in use by jitprov dev (pid " + strconv.Itoa(os.Getpid()) + ", started " + started.Format("15:04:05") +
		", tour http://localhost:8090, edge http://localhost:8080, NATS nats://127.0.0.1:4223); stop it, or give this one another folder with -data DIR"
	if err == nil || err.Error() != want {
		t.Fatalf("second lock: got %v\nwant %s", err, want)
	}
	unlock()
	unlock, err = lockDataDir(dir, ".jitprov-dev", holder{PID: 2, Started: time.Now()})
	if err != nil {
		t.Fatalf("after the first let go: %v", err)
	}
	defer unlock()
	b, err := os.ReadFile(filepath.Join(dir, lockName))
	if err != nil || !strings.Contains(string(b), `"pid": 2`) {
		t.Errorf("lock file after the second took it: %q, %v", b, err)
	}
}

// A lock file whose holder wrote nothing (yet) still refuses, without the
// details.
func TestLockDataDirWithoutDetails(t *testing.T) {
	dir := t.TempDir()
	unlock, err := lockDataDir(dir, "data", holder{PID: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	if err := os.Truncate(filepath.Join(dir, lockName), 0); err != nil {
		t.Fatal(err)
	}
	_, err = lockDataDir(dir, "data", holder{PID: 2})
	if want := "the data folder data is in use by another jitprov dev; stop it"; err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("got %v, want %q", err, want)
	}
}
