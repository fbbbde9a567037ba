package devmode

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// lockName is the lock file in the data folder. It is never removed: the
// lock is the kernel's lock on the open file, not the file's existence,
// and removing it would let two processes lock two different files.
const lockName = "lock"

// holder is who holds a data folder, as written into its lock file for
// the next process that finds it locked.
type holder struct {
	PID     int       `json:"pid"`
	Started time.Time `json:"started"`
	Tour    string    `json:"tour"`
	Edge    string    `json:"edge"`
	NATS    string    `json:"nats"`
}

func (h holder) String() string {
	t := h.Started.Local()
	started := t.Format("2006-01-02 15:04:05")
	if t.Format(time.DateOnly) == time.Now().Format(time.DateOnly) {
		started = t.Format("15:04:05") // today
	}
	parts := []string{fmt.Sprintf("pid %d", h.PID), "started " + started}
	for _, p := range []struct{ name, url string }{{"tour", h.Tour}, {"edge", h.Edge}, {"NATS", h.NATS}} {
		if p.url != "" {
			parts = append(parts, p.name+" "+p.url)
		}
	}
	return strings.Join(parts, ", ")
}

// lockDataDir takes an exclusive lock on the data folder dir (named as
// the person gave it, name) and writes h into the lock file. The lock
// lasts until unlock, or until the process ends, however it ends (the
// kernel releases it): a crash never leaves a stale lock. A folder that
// another process holds is refused at once, naming that process.
func lockDataDir(dir, name string, h holder) (unlock func(), err error) {
	path := filepath.Join(dir, lockName)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("devmode: cannot open the data folder's lock %s: %w", path, err)
	}
	locked, err := tryLock(f)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("devmode: cannot lock the data folder (%s): %w", path, err)
	}
	if !locked {
		f.Close()
		who := "another jitprov dev"
		var other holder
		if b, err := os.ReadFile(path); err == nil && json.Unmarshal(b, &other) == nil && other.PID != 0 {
			who = "jitprov dev (" + other.String() + ")"
		}
		return nil, fmt.Errorf("devmode: the data folder %s is in use by %s; stop it, or give this one another folder with -data DIR", name, who)
	}
	b, err := json.MarshalIndent(h, "", "  ")
	if err == nil {
		if err = f.Truncate(0); err == nil {
			_, err = f.WriteAt(append(b, '\n'), 0)
		}
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("devmode: cannot write the data folder's lock %s: %w", path, err)
	}
	return func() { f.Close() }, nil
}
