package events

import "testing"

// Decode reads the data of every type into its Go type: each needs one.
func TestEveryTypeHasADataType(t *testing.T) {
	for _, typ := range Types() {
		if _, ok := dataTypes[typ]; !ok {
			t.Errorf("%s has no entry in dataTypes", typ)
		}
	}
}
