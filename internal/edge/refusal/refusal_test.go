package refusal_test

import (
	"errors"
	"fmt"
	"io"
	"testing"

	"github.com/jitprov/jitprov/internal/edge/refusal"
)

var errInvalid = errors.New("test: invalid login")

type reason string

func (reason) Sentinel() error { return errInvalid }

type other string

func (other) Sentinel() error { return io.EOF }

func TestError(t *testing.T) {
	err := fmt.Errorf("edge: %w", &refusal.Error[reason]{Reason: "expired", Detail: "at noon", Cause: io.ErrUnexpectedEOF})
	for _, tc := range []struct {
		name   string
		target error
		want   bool
	}{
		{"the layer's sentinel", errInvalid, true},
		{"same reason, no detail", &refusal.Error[reason]{Reason: "expired"}, true},
		{"same reason, a detail", &refusal.Error[reason]{Reason: "expired", Detail: "x"}, false},
		{"another reason", &refusal.Error[reason]{Reason: "nonce"}, false},
		{"another layer's reason", &refusal.Error[other]{Reason: "expired"}, false},
		{"the cause", io.ErrUnexpectedEOF, true},
	} {
		if got := errors.Is(err, tc.target); got != tc.want {
			t.Errorf("%s: errors.Is = %t, want %t", tc.name, got, tc.want)
		}
	}
	if got, want := err.Error(), "edge: test: invalid login: expired: at noon"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	if r := refusal.ReasonOf[reason](err); r != "expired" {
		t.Errorf("ReasonOf = %q", r)
	}
	if r := refusal.ReasonOf[reason](io.EOF); r != "" {
		t.Errorf("ReasonOf(no refusal) = %q", r)
	}
	if got := refusal.New[reason]("nonce", "").Error(); got != "test: invalid login: nonce" {
		t.Errorf("New without detail: %q", got)
	}
}
