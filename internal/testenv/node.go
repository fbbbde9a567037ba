package testenv

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// Node returns the path of node once dir's node_modules holds every
// package at the version dir's package-lock.json pins: already so when
// `make test` (scripts/test-deps.sh) ran `npm ci` there, else after this
// runs `npm ci --ignore-scripts` in dir. Node.js and npm are required,
// never skipped for: a missing one fails the test, saying how to install
// it.
func Node(t testing.TB, dir string) string {
	t.Helper()
	node := need(t, "node")
	if npmInstalled(t, dir) {
		return node
	}
	npm := need(t, "npm")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, npm, "ci", "--ignore-scripts", "--no-audit", "--no-fund", "--prefer-offline")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("npm ci in %s: %v\n%s", dir, err, out)
	}
	if !npmInstalled(t, dir) {
		t.Fatalf("npm ci left %s/node_modules unlike package-lock.json", dir)
	}
	return node
}

func need(t testing.TB, name string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("%s is required and not installed (%v): `make test` installs Node.js and npm "+
			"(scripts/test-deps.sh), or `apt-get install nodejs npm`", name, err)
	}
	return path
}

// npmInstalled: is every package of dir's package-lock.json in its
// node_modules at the locked version?
func npmInstalled(t testing.TB, dir string) bool {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(dir, "package-lock.json"))
	if err != nil {
		t.Fatal(err)
	}
	var lock struct {
		Packages map[string]struct {
			Version string `json:"version"`
		} `json:"packages"`
	}
	if err := json.Unmarshal(raw, &lock); err != nil {
		t.Fatalf("%s/package-lock.json: %v", dir, err)
	}
	for path, p := range lock.Packages {
		if path == "" {
			continue
		}
		raw, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(path), "package.json"))
		if err != nil {
			return false
		}
		var got struct {
			Version string `json:"version"`
		}
		if json.Unmarshal(raw, &got) != nil || got.Version != p.Version {
			return false
		}
	}
	return true
}
