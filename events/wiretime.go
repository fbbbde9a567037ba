package events

import (
	"encoding/json"
	"fmt"
	"reflect"
	"sync"
	"time"
)

// TimeLayout is how every time in event data is written: RFC 3339 in UTC
// with exactly six fraction digits, e.g. "2025-03-04T09:15:02.198410Z".
// Fixed width, so that the text sorts as the times do and every parser
// (JavaScript's Date.parse included) reads it the same way. Go's own
// encoding drops trailing zero digits, so "…02.1984Z" would sort after
// "…02.19841Z" and "…02Z" after both. Readers still accept any RFC 3339
// time (older events, other producers): the data types keep time.Time.
const TimeLayout = "2006-01-02T15:04:05.000000Z"

// wireTime is a time.Time written in TimeLayout.
type wireTime time.Time

// MarshalJSON implements json.Marshaler.
func (w wireTime) MarshalJSON() ([]byte, error) {
	t := time.Time(w).UTC()
	if y := t.Year(); y < 0 || y > 9999 {
		return nil, fmt.Errorf("events: time %v: year outside [0,9999]", t)
	}
	b := make([]byte, 0, len(TimeLayout)+2)
	b = append(b, '"')
	b = t.AppendFormat(b, TimeLayout)
	return append(b, '"'), nil
}

var (
	timeType      = reflect.TypeFor[time.Time]()
	wireTimeType  = reflect.TypeFor[wireTime]()
	marshalerType = reflect.TypeFor[json.Marshaler]()
)

// wireData returns data with every time.Time in it (in fields, pointers,
// slices, arrays and map values, at any depth) as a wireTime, so that
// encoding/json writes it in TimeLayout; every other value, field name,
// tag and field order is kept. This is the one place where event data
// gets its time format: build passes all data through it. Types it does
// not rewrite are kept as they are: those with their own MarshalJSON,
// structs with unexported or embedded fields, interface values (none of
// this package's data types has them).
func wireData(data any) any {
	if data == nil {
		return nil
	}
	v := reflect.ValueOf(data)
	wt, ok := cachedWireType(v.Type())
	if !ok {
		return data
	}
	return toWire(v, wt).Interface()
}

// wireTypes memoises wireTypeOf, as encoding/json memoises its encoders:
// a type's wire type never changes, and deriving it (reflect.StructOf)
// was most of the cost of building an event.
var wireTypes sync.Map // reflect.Type → wireTypeEntry

type wireTypeEntry struct {
	t  reflect.Type
	ok bool
}

func cachedWireType(t reflect.Type) (reflect.Type, bool) {
	if e, hit := wireTypes.Load(t); hit {
		w := e.(wireTypeEntry)
		return w.t, w.ok
	}
	wt, ok := wireTypeOf(t)
	wireTypes.Store(t, wireTypeEntry{wt, ok})
	return wt, ok
}

// wireTypeOf returns t with time.Time replaced by wireTime, and whether
// anything was replaced.
func wireTypeOf(t reflect.Type) (reflect.Type, bool) {
	if t == timeType {
		return wireTimeType, true
	}
	// A type with its own MarshalJSON says how it is written. (A pointer
	// is left to its element: *time.Time has time.Time's method.)
	if t.Kind() != reflect.Pointer && (t.Implements(marshalerType) || reflect.PointerTo(t).Implements(marshalerType)) {
		return t, false
	}
	switch t.Kind() {
	case reflect.Struct:
		fields := make([]reflect.StructField, t.NumField())
		changed := false
		for i := range fields {
			f := t.Field(i)
			if !f.IsExported() || f.Anonymous {
				return t, false
			}
			if ft, ok := wireTypeOf(f.Type); ok {
				f.Type, changed = ft, true
			}
			f.Index, f.Offset = nil, 0
			fields[i] = f
		}
		if !changed {
			return t, false
		}
		return reflect.StructOf(fields), true
	case reflect.Pointer:
		if e, ok := wireTypeOf(t.Elem()); ok {
			return reflect.PointerTo(e), true
		}
	case reflect.Slice:
		if e, ok := wireTypeOf(t.Elem()); ok {
			return reflect.SliceOf(e), true
		}
	case reflect.Array:
		if e, ok := wireTypeOf(t.Elem()); ok {
			return reflect.ArrayOf(t.Len(), e), true
		}
	case reflect.Map:
		if e, ok := wireTypeOf(t.Elem()); ok {
			return reflect.MapOf(t.Key(), e), true
		}
	}
	return t, false
}

// toWire copies v into a value of wt, a type wireTypeOf made from v's.
func toWire(v reflect.Value, wt reflect.Type) reflect.Value {
	if v.Type() == wt {
		return v
	}
	if v.Type() == timeType {
		return v.Convert(wireTimeType)
	}
	switch v.Kind() {
	case reflect.Struct:
		out := reflect.New(wt).Elem()
		for i := range v.NumField() {
			out.Field(i).Set(toWire(v.Field(i), wt.Field(i).Type))
		}
		return out
	case reflect.Pointer:
		if v.IsNil() {
			return reflect.Zero(wt)
		}
		p := reflect.New(wt.Elem())
		p.Elem().Set(toWire(v.Elem(), wt.Elem()))
		return p
	case reflect.Slice:
		if v.IsNil() {
			return reflect.Zero(wt)
		}
		out := reflect.MakeSlice(wt, v.Len(), v.Len())
		for i := range v.Len() {
			out.Index(i).Set(toWire(v.Index(i), wt.Elem()))
		}
		return out
	case reflect.Array:
		out := reflect.New(wt).Elem()
		for i := range v.Len() {
			out.Index(i).Set(toWire(v.Index(i), wt.Elem()))
		}
		return out
	case reflect.Map:
		if v.IsNil() {
			return reflect.Zero(wt)
		}
		out := reflect.MakeMapWithSize(wt, v.Len())
		for it := v.MapRange(); it.Next(); {
			out.SetMapIndex(it.Key(), toWire(it.Value(), wt.Elem()))
		}
		return out
	}
	panic(fmt.Sprintf("events: no wire form of %v as %v", v.Type(), wt))
}
