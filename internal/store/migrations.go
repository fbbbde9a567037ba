package store

import (
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"
)

// Migration is one numbered SQL file of a backend's schema.
type Migration struct {
	Version int
	Name    string
	SQL     string
}

// ReadMigrations reads the files NNNN_name.sql in dir of fsys, in version
// order, and checks that the versions run 1, 2, 3… without gaps. backend
// names the backend in errors.
func ReadMigrations(fsys fs.FS, dir, backend string) ([]Migration, error) {
	entries, err := fs.ReadDir(fsys, dir)
	if err != nil {
		return nil, err
	}
	var out []Migration
	for _, e := range entries {
		name := e.Name()
		num, _, ok := strings.Cut(name, "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v <= 0 || !strings.HasSuffix(name, ".sql") {
			return nil, fmt.Errorf("%s: migration file %q is not named NNNN_name.sql", backend, name)
		}
		raw, err := fs.ReadFile(fsys, path.Join(dir, name))
		if err != nil {
			return nil, err
		}
		out = append(out, Migration{Version: v, Name: name, SQL: string(raw)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Version < out[j].Version })
	for i := range out {
		if out[i].Version != i+1 {
			return nil, fmt.Errorf("%s: migration %s: versions must run 1, 2, 3… without gaps", backend, out[i].Name)
		}
	}
	return out, nil
}
