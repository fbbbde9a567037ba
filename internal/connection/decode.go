package connection

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
)

// ProblemList is every problem found with a connection's settings, as one
// error (one problem per line).
type ProblemList []Problem

func (l ProblemList) Error() string {
	lines := make([]string, len(l))
	for i, p := range l {
		lines[i] = p.Error()
	}
	return strings.Join(lines, "\n")
}

// Unwrap lets errors.As find each Problem.
func (l ProblemList) Unwrap() []error {
	out := make([]error, len(l))
	for i, p := range l {
		out[i] = p
	}
	return out
}

// asError is nil for no problems.
func asError(ps []Problem) error {
	if len(ps) == 0 {
		return nil
	}
	return ProblemList(ps)
}

// decodeAll decodes the JSON object data into v, a pointer to a settings
// struct, and lists every problem at once: each unknown key, at any depth,
// and each value of the wrong type (encoding/json stops at the first).
// What decodes is kept, so that the rest can still be checked. Keys match
// the json tags as encoding/json matches them: exactly, else ignoring case.
func decodeAll(data []byte, v any) []Problem {
	if len(bytes.TrimSpace(data)) == 0 {
		return nil
	}
	return decodeValue(data, reflect.ValueOf(v).Elem(), "")
}

// settingDecoder is a setting that decodes itself, listing its problems
// (Constants: a flat mapping of known and free names).
type settingDecoder interface {
	decodeSetting(raw json.RawMessage, path string) []Problem
}

func decodeValue(raw json.RawMessage, v reflect.Value, path string) []Problem {
	if d, ok := v.Addr().Interface().(settingDecoder); ok {
		return d.decodeSetting(raw, path)
	}
	t := v.Type()
	switch {
	case t.Kind() == reflect.Struct:
		var obj map[string]json.RawMessage
		if err := json.Unmarshal(raw, &obj); err != nil {
			return []Problem{typeProblem(path, t, raw)}
		}
		var out []Problem
		for _, k := range slices.Sorted(maps.Keys(obj)) {
			i, ok := fieldIndex(t, k)
			if !ok {
				known := fieldNames(t)
				out = append(out, Problem{Field: joinField(path, k), Known: known,
					Msg: fmt.Sprintf("unknown setting (known settings: %s)", strings.Join(known, ", "))})
				continue
			}
			out = append(out, decodeValue(obj[k], v.Field(i), joinField(path, k))...)
		}
		return out
	case t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.Struct:
		var items []json.RawMessage
		if err := json.Unmarshal(raw, &items); err != nil {
			return []Problem{typeProblem(path, t, raw)}
		}
		if items == nil {
			return nil
		}
		list := reflect.MakeSlice(t, len(items), len(items))
		var out []Problem
		for i, item := range items {
			out = append(out, decodeValue(item, list.Index(i), fmt.Sprintf("%s[%d]", path, i))...)
		}
		v.Set(list)
		return out
	default:
		if err := json.Unmarshal(raw, v.Addr().Interface()); err != nil {
			return []Problem{typeProblem(path, t, raw)}
		}
		return nil
	}
}

// fieldIndex finds the field of struct type t whose json name is key.
func fieldIndex(t reflect.Type, key string) (int, bool) {
	folded := -1
	for i := range t.NumField() {
		name := jsonName(t.Field(i))
		if name == key {
			return i, true
		}
		if folded < 0 && name != "" && strings.EqualFold(name, key) {
			folded = i
		}
	}
	return folded, folded >= 0
}

func fieldNames(t reflect.Type) []string {
	var out []string
	for i := range t.NumField() {
		if name := jsonName(t.Field(i)); name != "" {
			out = append(out, name)
		}
	}
	return out
}

func jsonName(f reflect.StructField) string {
	name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
	if name == "-" || !f.IsExported() {
		return ""
	}
	return name
}

func joinField(parent, key string) string {
	if parent == "" {
		return key
	}
	return parent + "." + key
}

// typeProblem says what a setting of type t takes, and what it got.
func typeProblem(path string, t reflect.Type, raw json.RawMessage) Problem {
	got := strings.TrimSpace(string(raw))
	switch {
	case strings.HasPrefix(got, "{"):
		got = "a mapping"
	case strings.HasPrefix(got, "["):
		got = "a list"
	case len(got) > 60:
		got = got[:57] + "..."
	}
	return Problem{Field: path, Msg: fmt.Sprintf("expected %s, got %s", describeType(t), got)}
}

func describeType(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Pointer:
		return describeType(t.Elem())
	case reflect.Bool:
		return "true or false"
	case reflect.String:
		return "a string"
	case reflect.Int, reflect.Int64:
		return "a whole number"
	case reflect.Struct:
		return "a mapping"
	case reflect.Slice:
		if t.Elem().Kind() == reflect.String {
			return "a list of strings"
		}
		return "a list"
	}
	return t.String()
}

// without drops the problems on fields that could not be decoded (or
// below them): their zero value would only be reported again, as missing.
func without(ps []Problem, undecoded []Problem) []Problem {
	return slices.DeleteFunc(ps, func(p Problem) bool {
		for _, u := range undecoded {
			if u.Field == "" || p.Field == u.Field || strings.HasPrefix(p.Field, u.Field+".") || strings.HasPrefix(p.Field, u.Field+"[") {
				return true
			}
		}
		return false
	})
}
