package config

import (
	"bytes"
	"cmp"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"

	"gopkg.in/yaml.v3"

	"github.com/jitprov/jitprov/internal/spelling"
)

// fieldError is one problem in a YAML file, located for an operator by
// file, line and field path: "orgs.yaml:7: organizations[0].name: …".
type fieldError struct {
	file string
	line int    // 1-based; 0 when unknown
	path string // e.g. organizations[0].connections[1].id; "" for the file as a whole
	msg  string
}

func (e *fieldError) Error() string {
	var b strings.Builder
	b.WriteString(e.file)
	if e.line > 0 {
		b.WriteString(":")
		b.WriteString(strconv.Itoa(e.line))
	}
	b.WriteString(": ")
	if e.path != "" {
		b.WriteString(oneLine(e.path))
		b.WriteString(": ")
	}
	b.WriteString(oneLine(e.msg))
	return b.String()
}

// oneLine keeps a problem on one line of the joined error (a key or a
// value of the file may hold a newline).
func oneLine(s string) string {
	return strings.NewReplacer("\r", `\r`, "\n", `\n`).Replace(s)
}

// joinSorted joins errs, sorted by line (stable, so problems on one line
// keep the order they were found in), one per line of the joined message.
func joinSorted(errs []*fieldError) error {
	if len(errs) == 0 {
		return nil
	}
	slices.SortStableFunc(errs, func(a, b *fieldError) int { return cmp.Compare(a.line, b.line) })
	out := make([]error, len(errs))
	for i, e := range errs {
		out[i] = e
	}
	return errors.Join(out...)
}

// document is a parsed YAML file: its node tree, indexed by field path so
// that a problem found in the decoded values can name its line.
type document struct {
	file    string
	root    *yaml.Node // the top-level value; nil for an empty file
	entries []*entry   // every value of the tree, in document order
	byPath  map[string]*entry
	errs    []*fieldError
	// broken are paths whose value could not be decoded (wrong type,
	// duplicate key): checks of the decoded value there are skipped, as
	// they would only repeat the problem.
	broken []string
	// expanded counts the values converted to JSON, bounding what
	// aliases can expand to.
	expanded int
	// readFiles: also check the files connections name (CheckOrgFile).
	readFiles bool
	// serve: also report what sso-edge refuses to serve although apply
	// accepts it (CheckOrgFile).
	serve bool
}

// entry is one value of the tree.
type entry struct {
	path   string
	parent string
	line   int        // the key's line for a mapping value, the item's for a list item
	key    *yaml.Node // nil for list items and the root
	val    *yaml.Node
}

// parseDocument parses data into a node tree. Syntax errors, and a second
// document in the file, are returned as a single *fieldError.
func parseDocument(file string, data []byte) (*document, error) {
	d := &document{file: file, byPath: map[string]*entry{}}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return d, nil // empty, or only comments
		}
		return nil, syntaxError(file, data, err)
	}
	var next yaml.Node
	switch err := dec.Decode(&next); {
	case errors.Is(err, io.EOF):
	case err != nil:
		return nil, syntaxError(file, data, err)
	default:
		return nil, &fieldError{file: file, line: next.Line, msg: "a second YAML document starts here (after ---); put everything in one document"}
	}
	if len(doc.Content) == 0 || isNull(doc.Content[0]) {
		return d, nil
	}
	d.root = doc.Content[0]
	d.index("", "", d.root.Line, nil, d.root)
	return d, nil
}

func (d *document) index(path, parent string, line int, key, val *yaml.Node) {
	e := &entry{path: path, parent: parent, line: line, key: key, val: val}
	d.entries = append(d.entries, e)
	if _, dup := d.byPath[path]; !dup {
		d.byPath[path] = e
	}
	switch val.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(val.Content); i += 2 {
			k, v := val.Content[i], val.Content[i+1]
			d.index(joinPath(path, k.Value), path, k.Line, k, v)
		}
	case yaml.SequenceNode:
		for i, item := range val.Content {
			d.index(fmt.Sprintf("%s[%d]", path, i), path, item.Line, nil, item)
		}
	}
}

func joinPath(parent, key string) string {
	if parent == "" {
		return key
	}
	return parent + "." + key
}

// parentPath strips the last element of a path: a.b[2] → a.b → a → "".
func parentPath(path string) string {
	i := max(strings.LastIndexByte(path, '.'), strings.LastIndexByte(path, '['))
	if i < 0 {
		return ""
	}
	return path[:i]
}

func isNull(n *yaml.Node) bool {
	return n == nil || n.Kind == 0 || (n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null")
}

// present reports whether the file gives path a (non-null) value.
func (d *document) present(path string) bool {
	e, ok := d.byPath[path]
	return ok && !isNull(e.val)
}

// lineOf is the line of path, or of its nearest ancestor in the file (a
// missing field is reported on the line of the mapping that lacks it).
func (d *document) lineOf(path string) int {
	for {
		if e, ok := d.byPath[path]; ok {
			return e.line
		}
		if path == "" {
			return 0
		}
		path = parentPath(path)
	}
}

// errorf records a problem with the value at path.
func (d *document) errorf(path, format string, args ...any) {
	if d.isBroken(path) {
		return
	}
	d.errs = append(d.errs, &fieldError{file: d.file, line: d.lineOf(path), path: path, msg: fmt.Sprintf(format, args...)})
}

func (d *document) isBroken(path string) bool {
	for _, b := range d.broken {
		if b == "" || path == b || strings.HasPrefix(path, b+".") || strings.HasPrefix(path, b+"[") {
			return true
		}
	}
	return false
}

var (
	// (?s): yaml.v3 quotes values as written, newlines included (a
	// plain scalar folded over lines, a block scalar).
	reLine     = regexp.MustCompile(`(?s)^line (\d+): (.*)$`)
	reUnknown  = regexp.MustCompile(`(?s)^line (\d+): field (.+) not found in type (\S+)$`)
	reType     = regexp.MustCompile("(?s)^line (\\d+): cannot unmarshal (\\S+)(?: `(.*)`)? into (.+)$")
	reDupKey   = regexp.MustCompile(`(?s)^line (\d+): mapping key (".*") already defined at line (\d+)$`)
	reAnchor   = regexp.MustCompile(`^unknown anchor '(.*)' referenced$`)
	parserErrs = []string{
		"did not find expected ',' or ']'", "did not find expected ',' or '}'",
		"did not find expected '-' indicator", "did not find expected <document start>",
		"did not find expected <stream-start>", "did not find expected key",
		"did not find expected node content", "found duplicate %TAG directive",
		"found duplicate %YAML directive", "found incompatible YAML document",
		"found undefined tag handle",
	}
)

// syntaxError turns a yaml.v3 parse error into "file:line: invalid YAML: …".
// yaml.v3 v3.0.1 numbers the lines of parser (as opposed to scanner) errors
// from 0 and omits a line 0; both are corrected here.
func syntaxError(file string, data []byte, err error) error {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	line := 0
	if m := reLine.FindStringSubmatch(msg); m != nil {
		line, _ = strconv.Atoi(m[1])
		msg = m[2]
		if slices.Contains(parserErrs, msg) {
			line++
		}
	} else if m := reAnchor.FindStringSubmatch(msg); m != nil {
		line = lineContaining(data, "*"+m[1])
		msg = fmt.Sprintf("alias *%s refers to no anchor &%s defined before it", m[1], m[1])
	} else {
		line = 1
	}
	// At the end of a file without a final newline yaml.v3 names the line
	// after the last.
	line = min(line, lastLine(data))
	switch {
	case strings.Contains(msg, "tab character") || (strings.Contains(msg, "cannot start any token") && lineHasTab(data, line)):
		// yaml.v3 may name the line before the tab.
		for l := line; l <= line+1; l++ {
			if lineHasTab(data, l) {
				line = l
				break
			}
		}
		msg += " (YAML indents with spaces, not tabs)"
	case msg == "mapping values are not allowed in this context":
		msg += " (a value holding \": \" must be quoted, or the indentation is wrong)"
	}
	return &fieldError{file: file, line: line, msg: "invalid YAML: " + msg}
}

// lastLine is the number of the file's last line: an editor's, where a
// final line break ends the last line rather than starting another. Line
// breaks are YAML's, as yaml.v3 counts lines: LF, CR, CRLF, and NEL, LS
// and PS.
func lastLine(data []byte) int {
	n, open := 0, false
	for i := 0; i < len(data); i++ {
		switch {
		case data[i] == '\r' && i+1 < len(data) && data[i+1] == '\n':
			i++
			n, open = n+1, false
		case data[i] == '\r' || data[i] == '\n':
			n, open = n+1, false
		case bytes.HasPrefix(data[i:], []byte("\u0085")):
			i++
			n, open = n+1, false
		case bytes.HasPrefix(data[i:], []byte("\u2028")) || bytes.HasPrefix(data[i:], []byte("\u2029")):
			i += 2
			n, open = n+1, false
		default:
			open = true
		}
	}
	if open || n == 0 {
		n++
	}
	return n
}

func lineContaining(data []byte, s string) int {
	i := bytes.Index(data, []byte(s))
	if i < 0 {
		return 0
	}
	return 1 + bytes.Count(data[:i], []byte("\n"))
}

func lineHasTab(data []byte, line int) bool {
	lines := bytes.Split(data, []byte("\n"))
	return line >= 1 && line <= len(lines) && bytes.ContainsRune(lines[line-1], '\t')
}

// decode decodes data into out, rejecting unknown fields, and records what
// yaml.v3 refused (unknown fields, wrong types, duplicate keys) as problems
// of d, rewritten for operators. data must be the bytes d was parsed from.
func (d *document) decode(data []byte, out any) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	err := dec.Decode(out)
	if err == nil || errors.Is(err, io.EOF) {
		return
	}
	var te *yaml.TypeError
	if !errors.As(err, &te) {
		msg := strings.TrimPrefix(err.Error(), "yaml: ")
		d.errs = append(d.errs, &fieldError{file: d.file, line: d.locate(msg), msg: msg})
		d.broken = append(d.broken, "")
		return
	}
	for _, msg := range te.Errors {
		d.decodeProblem(msg)
	}
}

// locate finds the line of a problem yaml.v3 reports without one (it
// stops decoding at the first): the node its message is about, or else
// the file's first value.
func (d *document) locate(msg string) int {
	find := func(match func(e *entry) *yaml.Node) int {
		for _, e := range d.entries {
			if n := match(e); n != nil {
				return n.Line
			}
		}
		return 0
	}
	line := 0
	switch {
	case strings.Contains(msg, "!!binary"):
		line = find(func(e *entry) *yaml.Node {
			_, err := base64.StdEncoding.DecodeString(e.val.Value)
			return when(e.val.Kind == yaml.ScalarNode && e.val.ShortTag() == "!!binary" && err != nil, e.val)
		})
	case strings.Contains(msg, "aliasing"):
		line = find(func(e *entry) *yaml.Node { return when(e.val.Kind == yaml.AliasNode, e.val) })
	case strings.Contains(msg, "merge"):
		line = find(func(e *entry) *yaml.Node { return when(e.key != nil && e.key.ShortTag() == "!!merge", e.key) })
	case strings.Contains(msg, "map key"):
		line = find(func(e *entry) *yaml.Node { return when(e.key != nil && e.key.Kind != yaml.ScalarNode, e.key) })
	}
	if line == 0 && d.root != nil {
		line = d.root.Line
	}
	return max(line, 1)
}

func when(ok bool, n *yaml.Node) *yaml.Node {
	if ok {
		return n
	}
	return nil
}

// requireInt reports a number at path that is not a whole number: yaml.v3
// would silently truncate 1.5 into an int field.
func (d *document) requireInt(path string) {
	e, ok := d.byPath[path]
	if !ok || isNull(e.val) || d.isBroken(path) || e.val.Kind != yaml.ScalarNode || e.val.ShortTag() == "!!int" {
		return
	}
	d.errs = append(d.errs, &fieldError{file: d.file, line: e.line, path: path, msg: "expected a whole number, got " + describeNode(e.val)})
	d.broken = append(d.broken, path)
}

func (d *document) decodeProblem(msg string) {
	if m := reUnknown.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		name, typ := m[2], m[3]
		path := ""
		for _, e := range d.entries {
			if e.key != nil && e.key.Line == line && e.key.Value == name {
				path = e.parent
				break
			}
		}
		text := fmt.Sprintf("unknown field %q", name)
		if known := knownFields()[typ]; len(known) > 0 {
			if s := suggest(name, known); s != "" {
				text += fmt.Sprintf("; did you mean %q?", s)
			}
			text += " (known fields: " + strings.Join(known, ", ") + ")"
		}
		d.errs = append(d.errs, &fieldError{file: d.file, line: line, path: path, msg: text})
		return
	}
	if m := reType.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		tag, value, goType := m[2], m[3], m[4]
		want := typeNames[goType]
		if want == "" {
			want = goType
		}
		e := d.findValue(line, tag, value)
		if e == nil {
			d.errs = append(d.errs, &fieldError{file: d.file, line: line, msg: fmt.Sprintf("expected %s, got %s", want, describeTag(tag, value))})
			return
		}
		d.errs = append(d.errs, &fieldError{file: d.file, line: e.line, path: e.path, msg: fmt.Sprintf("expected %s, got %s", want, describeNode(e.val))})
		d.broken = append(d.broken, e.path)
		return
	}
	if m := reDupKey.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		name, _ := strconv.Unquote(m[2])
		path := ""
		for _, e := range d.entries {
			if e.key != nil && e.key.Line == line && e.key.Value == name {
				path = e.parent
				break
			}
		}
		d.errs = append(d.errs, &fieldError{file: d.file, line: line, path: path,
			msg: fmt.Sprintf("key %q is given twice (first on line %s); keep one", name, m[3])})
		d.broken = append(d.broken, path)
		return
	}
	line := 0
	if m := reLine.FindStringSubmatch(msg); m != nil {
		line, _ = strconv.Atoi(m[1])
		msg = m[2]
	}
	d.errs = append(d.errs, &fieldError{file: d.file, line: line, msg: msg})
}

// findValue finds the value yaml.v3 refused: on line, of the kind tag
// names, with the (possibly shortened) value it quoted.
func (d *document) findValue(line int, tag, value string) *entry {
	kind := yaml.ScalarNode
	switch tag {
	case "!!map":
		kind = yaml.MappingNode
	case "!!seq":
		kind = yaml.SequenceNode
	}
	for _, e := range d.entries {
		if e.val.Line != line || e.val.Kind != kind {
			continue
		}
		if kind == yaml.ScalarNode {
			if short, ok := strings.CutSuffix(value, "..."); ok {
				if !strings.HasPrefix(e.val.Value, short) {
					continue
				}
			} else if e.val.Value != value {
				continue
			}
		}
		return e
	}
	return nil
}

func describeNode(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.AliasNode:
		return "an alias"
	}
	return describeTag(n.ShortTag(), n.Value)
}

func describeTag(tag, value string) string {
	switch tag {
	case "!!map":
		return "a mapping"
	case "!!seq":
		return "a list"
	case "!!null":
		return "nothing (null)"
	case "!!str":
		return strconv.Quote(value)
	}
	return value
}

// typeNames describe the Go types of the decoded files as an operator
// knows them.
var typeNames = map[string]string{
	"int":                "a whole number",
	"int64":              "a whole number",
	"*int":               "a whole number",
	"string":             "a string",
	"[]string":           "a list of strings",
	"map[string]string":  "a mapping of names to values",
	"config.orgFile":     `a mapping with the key "organizations"`,
	"[]config.orgEntry":  "a list of organisations",
	"config.orgEntry":    "a mapping of organisation fields",
	"[]config.connEntry": "a list of connections",
	"config.connEntry":   "a mapping of connection fields",
	"config.Provisioner": "a mapping of provisioner settings",
	"config.Streams":     "a mapping of stream settings",
	"config.Duration":    `a duration such as "500ms", "30s", "5m" or "24h"`,
}

// knownFields lists the YAML keys of each decoded struct type, by the type
// name yaml.v3 reports. It is computed once and never changes.
var knownFields = sync.OnceValue(func() map[string][]string {
	out := map[string][]string{}
	for _, v := range []any{orgFile{}, orgEntry{}, connEntry{}, Provisioner{}, Streams{}, Edge{}} {
		t := reflect.TypeOf(v)
		var names []string
		for i := range t.NumField() {
			name, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ",")
			if name != "" && name != "-" {
				names = append(names, name)
			}
		}
		out[t.String()] = names
	}
	return out
})

// suggest returns the known name closest to name when it is a likely typo.
func suggest(name string, known []string) string {
	best, bestDist := "", 3
	for _, k := range known {
		if d := spelling.Distance(strings.ToLower(name), k); d < bestDist {
			best, bestDist = k, d
		}
	}
	return best
}
