package oidcrp

import "strings"

// Lookup finds a claim by a dotted path into nested JSON objects:
// "realm_access.roles" is raw["realm_access"]["roles"]. Claim names may
// themselves contain dots (namespaced claims such as
// "https://example.com/roles"), so at each level a key equal to the whole
// remaining path wins, then keys equal to a prefix ending before a dot,
// longest first. Only JSON objects (map[string]any) are descended into;
// arrays are not indexed. An empty path finds nothing.
func Lookup(raw map[string]any, dottedPath string) (any, bool) {
	if dottedPath == "" || raw == nil {
		return nil, false
	}
	return lookup(raw, dottedPath, 0)
}

func lookup(m map[string]any, path string, depth int) (any, bool) {
	if v, ok := m[path]; ok {
		return v, true
	}
	if depth >= 16 {
		return nil, false
	}
	for i := strings.LastIndexByte(path, '.'); i > 0; i = strings.LastIndexByte(path[:i], '.') {
		child, ok := m[path[:i]].(map[string]any)
		if !ok || i+1 >= len(path) {
			continue
		}
		if v, ok := lookup(child, path[i+1:], depth+1); ok {
			return v, true
		}
	}
	return nil, false
}
