package config

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// envReader applies JITPROV_* variables over settings read from a file,
// collecting the variables it cannot read. An empty variable counts as
// unset, and surrounding spaces are trimmed.
type envReader struct {
	getenv func(string) string
	errs   []error
}

func newEnvReader(getenv func(string) string) *envReader {
	if getenv == nil {
		getenv = func(string) string { return "" }
	}
	return &envReader{getenv: getenv}
}

func (r *envReader) get(name string) string { return strings.TrimSpace(r.getenv(name)) }

func (r *envReader) str(name string, dst *string) {
	if v := r.get(name); v != "" {
		*dst = v
	}
}

func (r *envReader) int(name string, dst *int) {
	if v := r.get(name); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			r.errs = append(r.errs, fmt.Errorf("%s=%q: not a whole number", name, v))
		}
		*dst = n
	}
}

func (r *envReader) bool(name string, dst *bool) {
	if v := r.get(name); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			r.errs = append(r.errs, fmt.Errorf("%s=%q: want true or false", name, v))
		}
		*dst = b
	}
}

// duration reads a positive duration; example names one in the error.
func (r *envReader) duration(name, example string, dst *Duration) {
	if v := r.get(name); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			r.errs = append(r.errs, fmt.Errorf("%s=%q: want a positive duration such as %s", name, v, example))
		}
		*dst = Duration(d)
	}
}

func (r *envReader) list(name string, dst *[]string) {
	if v := list(r.get(name)); v != nil {
		*dst = v
	}
}

func (r *envReader) err() error { return errors.Join(r.errs...) }
