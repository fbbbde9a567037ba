package oidcrp

import "testing"

func TestLookup(t *testing.T) {
	raw := map[string]any{
		"email":                     "a@b.c",
		"realm_access":              map[string]any{"roles": []any{"admin"}},
		"https://example.com/roles": []any{"ns"},
		"https://example.com":       map[string]any{"groups": "g"},
		"a":                         map[string]any{"b.c": 1, "b": map[string]any{"c": 2}},
		"x":                         "not an object",
	}
	for path, want := range map[string]any{
		"email":                      "a@b.c",
		"https://example.com/roles":  "ns",
		"https://example.com.groups": "g",
		"a.b.c":                      1, // exact key at a level wins over descending
	} {
		got, ok := Lookup(raw, path)
		if !ok {
			t.Errorf("%s: not found", path)
			continue
		}
		if l, isList := got.([]any); isList {
			got = l[0]
		}
		if got != want {
			t.Errorf("%s = %v, want %v", path, got, want)
		}
	}
	if v, ok := Lookup(raw, "realm_access.roles"); !ok || v.([]any)[0] != "admin" {
		t.Errorf("realm_access.roles = %v", v)
	}
	for _, path := range []string{"", "missing", "x.y", "realm_access.", ".email", "realm_access.roles.0"} {
		if v, ok := Lookup(raw, path); ok {
			t.Errorf("%q found %v", path, v)
		}
	}
	if _, ok := Lookup(nil, "a"); ok {
		t.Error("nil map")
	}
}
