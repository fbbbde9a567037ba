package api

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/jitprov/jitprov/internal/admin"
	"github.com/jitprov/jitprov/internal/admin/authn"
)

// Error codes, the "code" of every error body.
const (
	CodeUnauthorized = "unauthorized" // 401: no or bad credentials
	CodeForbidden    = "forbidden"    // 403: the principal may not do this
	CodeNotFound     = "not_found"    // 404
	CodeConflict     = "conflict"     // 409: no longer in a state that allows this
	CodeNoSeat       = "no_seat"      // 409: the organisation has no free seat
	CodeInvalid      = "invalid"      // 422 (415, 413, 400 for the body itself): a request value is wrong; see "field"
	CodeUnavailable  = "unavailable"  // 503: the database does not answer; retry
	CodeRateLimited  = "rate_limited" // 429: see Retry-After
	CodeInternal     = "internal"     // 500: a bug; the log says more
)

// Error is the body of every error answer: {"error": {...}}.
type Error struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Field   string `json:"field,omitempty"`
}

type errorBody struct {
	Error Error `json:"error"`
}

// fail answers err as the JSON error body its kind calls for.
func (a *API) fail(w http.ResponseWriter, r *http.Request, err error) {
	status, e := a.classify(err)
	var lim *authn.LimitError
	switch {
	case errors.As(err, &lim):
		w.Header().Set("Retry-After", strconv.Itoa(max(1, int((lim.RetryAfter+time.Second-1)/time.Second))))
	case status == http.StatusUnauthorized:
		w.Header().Set("WWW-Authenticate", `Bearer realm="jitprov admin"`)
	case status == http.StatusServiceUnavailable:
		w.Header().Set("Retry-After", "1")
	}
	if status >= 500 {
		a.log.ErrorContext(r.Context(), "admin API request failed", "method", r.Method, "path", r.URL.Path, "status", status, "err", err)
	}
	writeJSON(w, status, errorBody{Error: e})
}

func (a *API) classify(err error) (int, Error) {
	var fe *admin.FieldError
	var lim *authn.LimitError
	switch {
	case errors.As(err, &lim):
		return http.StatusTooManyRequests, Error{Code: CodeRateLimited, Message: lim.Msg}
	case errors.Is(err, authn.ErrUnauthenticated):
		return http.StatusUnauthorized, Error{Code: CodeUnauthorized, Message: words(err, authn.ErrUnauthenticated)}
	case errors.As(err, &fe):
		return http.StatusUnprocessableEntity, Error{Code: CodeInvalid, Message: fe.Msg, Field: fe.Field}
	case errors.Is(err, admin.ErrInvalid):
		return http.StatusUnprocessableEntity, Error{Code: CodeInvalid, Message: words(err, admin.ErrInvalid)}
	case errors.Is(err, admin.ErrUnavailable):
		return http.StatusServiceUnavailable, Error{Code: CodeUnavailable, Message: "the database does not answer; try again shortly"}
	case errors.Is(err, admin.ErrForbidden):
		return http.StatusForbidden, Error{Code: CodeForbidden, Message: words(err, admin.ErrForbidden)}
	case errors.Is(err, admin.ErrNotFound):
		return http.StatusNotFound, Error{Code: CodeNotFound, Message: words(err, admin.ErrNotFound)}
	case errors.Is(err, admin.ErrNoSeat):
		return http.StatusConflict, Error{Code: CodeNoSeat, Message: "the organisation has no free seat: deprovision someone or raise max_seats"}
	case errors.Is(err, admin.ErrConflict):
		return http.StatusConflict, Error{Code: CodeConflict, Message: words(err, admin.ErrConflict)}
	}
	return http.StatusInternalServerError, Error{Code: CodeInternal, Message: "something went wrong on our side; the service's log has the details"}
}

// words is err's message without the sentinel's own prefix
// ("admin: forbidden: …").
func words(err, sentinel error) string {
	msg := err.Error()
	if rest, ok := strings.CutPrefix(msg, sentinel.Error()+": "); ok && rest != "" {
		return rest
	}
	return msg
}

// badRequest is a problem with the request itself rather than a value: a
// body that is not JSON, too large, of the wrong type.
func badRequest(w http.ResponseWriter, status int, field, msg string) {
	writeJSON(w, status, errorBody{Error: Error{Code: CodeInvalid, Message: msg, Field: field}})
}
