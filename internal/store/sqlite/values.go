package sqlite

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/google/uuid"
)

// timeLayout is how timestamps are stored: RFC 3339 in UTC with
// microseconds, as precise as Postgres's timestamptz. Its fixed width makes
// text order time order, so columns compare and sort as times.
const timeLayout = "2006-01-02T15:04:05.000000Z"

func formatTime(t time.Time) string { return t.UTC().Format(timeLayout) }

// timeText scans a stored timestamp; NULL is the zero time.
type timeText struct{ t *time.Time }

func (p timeText) Scan(src any) error {
	switch v := src.(type) {
	case nil:
		*p.t = time.Time{}
		return nil
	case string:
		t, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			return fmt.Errorf("stored timestamp %q: %w", v, err)
		}
		*p.t = t.UTC()
		return nil
	}
	return fmt.Errorf("stored timestamp: got %T, want text", src)
}

// jsonText scans a JSON text column into v.
type jsonText struct{ v any }

func (j jsonText) Scan(src any) error {
	var raw []byte
	switch s := src.(type) {
	case string:
		raw = []byte(s)
	case []byte:
		raw = s
	default:
		return fmt.Errorf("stored JSON: got %T, want text", src)
	}
	if err := json.Unmarshal(raw, j.v); err != nil {
		return fmt.Errorf("stored JSON %q: %w", raw, err)
	}
	return nil
}

// jsonValue renders v (string lists and maps, which always encode) as JSON
// text. It must be text: SQLite takes a BLOB argument to its JSON functions
// as its binary JSONB format.
func jsonValue(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("sqlite: encode %T as JSON: %v", v, err))
	}
	return string(b)
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func nonNilMap(m map[string][]string) map[string][]string {
	if m == nil {
		return map[string][]string{}
	}
	return m
}

// canonicalUUID checks s and returns it in lower-case canonical form, as
// Postgres's uuid type does.
func canonicalUUID(s string) (string, error) {
	u, err := uuid.Parse(s)
	if err != nil {
		return "", fmt.Errorf("%q is not a UUID: %w", s, err)
	}
	return u.String(), nil
}

// optionalUUID is canonicalUUID with "" meaning NULL.
func optionalUUID(s string) (any, error) {
	if s == "" {
		return nil, nil
	}
	return canonicalUUID(s)
}
