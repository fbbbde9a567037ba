package events

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"
)

// ownFormat writes itself; wireData must leave it alone.
type ownFormat struct{ At time.Time }

func (o ownFormat) MarshalJSON() ([]byte, error) { return []byte(`"own"`), nil }

// wireData rewrites time.Time wherever encoding/json would write one, and
// keeps everything else as encoding/json writes it.
func TestWireDataShapes(t *testing.T) {
	at := time.Date(2025, 3, 4, 9, 15, 2, 198410000, time.FixedZone("CET", 3600))
	const fixed = `"2025-03-04T08:15:02.198410Z"`
	type inner struct {
		At time.Time `json:"at"`
	}
	type shapes struct {
		Name    string               `json:"name,omitempty"`
		At      time.Time            `json:"at"`
		Ptr     *time.Time           `json:"ptr"`
		NilPtr  *time.Time           `json:"nil_ptr,omitempty"`
		Slice   []time.Time          `json:"slice"`
		NilList []time.Time          `json:"nil_list"`
		Array   [1]time.Time         `json:"array"`
		Map     map[string]time.Time `json:"map"`
		Inner   inner                `json:"inner"`
		Inners  []*inner             `json:"inners"`
		Own     ownFormat            `json:"own"`
		Raw     json.RawMessage      `json:"raw"`
		Skip    string               `json:"-"`
	}
	v := shapes{Name: "<&>", At: at, Ptr: &at, Slice: []time.Time{at}, Array: [1]time.Time{at},
		Map: map[string]time.Time{"k": at}, Inner: inner{at}, Inners: []*inner{{at}, nil},
		Own: ownFormat{at}, Raw: json.RawMessage(`{"x":1}`), Skip: "hidden"}
	want := `{"name":"<&>","at":` + fixed + `,"ptr":` + fixed + `,"slice":[` + fixed + `],"nil_list":null,"array":[` + fixed + `],` +
		`"map":{"k":` + fixed + `},"inner":{"at":` + fixed + `},"inners":[{"at":` + fixed + `},null],"own":"own","raw":{"x":1}}`
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(wireData(v)); err != nil {
		t.Fatal(err)
	}
	if got := string(bytes.TrimSpace(buf.Bytes())); got != want {
		t.Errorf("wireData encodes as\n%s\nwant\n%s", got, want)
	}

	// Values without a time.Time are passed through unchanged.
	for _, same := range []any{nil, "s", 1, json.RawMessage(`{}`), map[string]any{"at": at}, ownFormat{at}} {
		got, err := json.Marshal(wireData(same))
		if err != nil {
			t.Fatal(err)
		}
		w, _ := json.Marshal(same)
		if !bytes.Equal(got, w) {
			t.Errorf("wireData(%T) = %s, want it unchanged %s", same, got, w)
		}
	}
}
