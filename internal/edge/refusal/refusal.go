// Package refusal is the error type of the edge's guard layers (samlsp for
// SAML responses, oidcrp for OpenID Connect logins): a refused login with
// a Reason for metrics and logs and a Detail for operators' logs.
package refusal

import (
	"errors"
	"fmt"
)

// Reason is a guard layer's reason type: a string whose Sentinel is the
// layer's ErrInvalid, which every refusal of that layer matches.
type Reason interface {
	~string
	Sentinel() error
}

// Error is a refused login. Neither Reason nor Detail is meant for the
// browser: show a generic page and log the error.
type Error[R Reason] struct {
	Reason R
	Detail string
	// Cause is the underlying library error, if any.
	Cause error
}

// New returns a refusal for reason with a formatted Detail.
func New[R Reason](reason R, format string, args ...any) *Error[R] {
	return &Error[R]{Reason: reason, Detail: fmt.Sprintf(format, args...)}
}

func (e *Error[R]) Error() string {
	msg := e.Reason.Sentinel().Error() + ": " + string(e.Reason)
	if e.Detail != "" {
		msg += ": " + e.Detail
	}
	return msg
}

// Is reports whether target is the layer's sentinel, or an *Error with the
// same Reason and an empty Detail, so that
//
//	errors.Is(err, &samlsp.RejectError{Reason: samlsp.ReasonExpired})
//
// works as well as errors.As.
func (e *Error[R]) Is(target error) bool {
	if target == e.Reason.Sentinel() {
		return true
	}
	var t *Error[R]
	if errors.As(target, &t) {
		return t.Detail == "" && t.Reason == e.Reason
	}
	return false
}

// Unwrap returns Cause.
func (e *Error[R]) Unwrap() error { return e.Cause }

// ReasonOf returns the Reason of an *Error[R] in err's chain, or "".
func ReasonOf[R Reason](err error) R {
	var e *Error[R]
	if errors.As(err, &e) {
		return e.Reason
	}
	return ""
}
