// Package schemas holds the JSON Schema (draft 2020-12) of every event's
// data, one file per type and version (e.g. login.first-seen/v1.json), and
// validates documents against them. A published version is never edited; a
// breaking change adds the next version beside it.
package schemas

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"sync"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

//go:embed */*.json
var files embed.FS

// BaseURL is the prefix of every schema's $id.
const BaseURL = "https://jitprov.io/schemas/"

// ErrUnknownSchema is returned for a path that names no schema.
var ErrUnknownSchema = errors.New("schemas: unknown schema")

// FS exposes the schema files, e.g. for publishing them.
func FS() fs.FS { return files }

// compiled is built once from the embedded files and never changes after.
var compiled = sync.OnceValues(func() (map[string]*jsonschema.Schema, error) {
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	c.AssertFormat()
	paths, err := fs.Glob(files, "*/*.json")
	if err != nil {
		return nil, err
	}
	for _, p := range paths {
		raw, err := files.ReadFile(p)
		if err != nil {
			return nil, err
		}
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
		if err != nil {
			return nil, fmt.Errorf("schemas: %s: %w", p, err)
		}
		if err := c.AddResource(BaseURL+p, doc); err != nil {
			return nil, fmt.Errorf("schemas: %s: %w", p, err)
		}
	}
	out := make(map[string]*jsonschema.Schema, len(paths))
	for _, p := range paths {
		s, err := c.Compile(BaseURL + p)
		if err != nil {
			return nil, fmt.Errorf("schemas: compile %s: %w", p, err)
		}
		out[p] = s
	}
	return out, nil
})

// Validate checks the JSON document data against the schema at path (for
// example "user.created/v1.json"). The error lists every violation with its
// JSON pointer.
func Validate(path string, data []byte) error {
	all, err := compiled()
	if err != nil {
		return err
	}
	s, ok := all[path]
	if !ok {
		return fmt.Errorf("%w %q", ErrUnknownSchema, path)
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
	if err != nil {
		return fmt.Errorf("data is not JSON: %w", err)
	}
	if err := s.Validate(doc); err != nil {
		return fmt.Errorf("data does not match %s: %w", path, err)
	}
	return nil
}
