// Package client is a small typed client of the admin HTTP API
// (internal/admin/api, described by its openapi.yaml): what the jitprov
// CLI calls. Every failure is an *Error carrying the API's code, message
// and offending field, or saying why the API could not be reached, with
// what to do about it. The token is sent in the Authorization header only
// and is never part of an error or a URL.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// DefaultTimeout bounds a request, the answer's body included.
const DefaultTimeout = 30 * time.Second

// maxAnswer bounds an answer's body.
const maxAnswer = 32 << 20

// Client calls one admin API with one token.
type Client struct {
	base  *url.URL
	token string
	http  *http.Client
	// UserAgent is sent with every request.
	UserAgent string
}

// Option configures a Client.
type Option func(*Client)

// WithTimeout bounds each request (default DefaultTimeout).
func WithTimeout(d time.Duration) Option { return func(c *Client) { c.http.Timeout = d } }

// WithTransport makes requests through rt (tests, proxies).
func WithTransport(rt http.RoundTripper) Option { return func(c *Client) { c.http.Transport = rt } }

// New returns a client of the admin API at server (the admin service's
// base URL, such as https://sso.example.com; a trailing /api/v1 is
// accepted) authenticating with token (jpt_…).
func New(server, token string, opts ...Option) (*Client, error) {
	if server == "" {
		return nil, errors.New("no admin API address: pass --server URL or set JITPROV_ADMIN_URL (e.g. https://sso.example.com)")
	}
	u, err := url.Parse(server)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("the admin API address %q is not an http(s) URL such as https://sso.example.com (--server, JITPROV_ADMIN_URL)", server)
	}
	if u.User != nil {
		return nil, errors.New("the admin API address must not hold credentials: pass the token with --token or JITPROV_TOKEN")
	}
	u.Path = strings.TrimSuffix(strings.TrimSuffix(u.Path, "/"), "/api/v1")
	u.RawQuery, u.Fragment = "", ""
	c := &Client{base: u, token: token, UserAgent: "jitprov-cli",
		http: &http.Client{Timeout: DefaultTimeout,
			// An API never redirects; following one could carry the token
			// elsewhere.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
	for _, o := range opts {
		o(c)
	}
	return c, nil
}

// Server is the API's base URL.
func (c *Client) Server() string { return c.base.String() }

// Codes of an *Error beyond the API's own (unauthorized, forbidden,
// not_found, conflict, no_seat, invalid, rate_limited, unavailable,
// internal).
const (
	// CodeUnreachable: no answer (connection refused, DNS, timeout).
	CodeUnreachable = "unreachable"
	// CodeBadAnswer: an answer that is not the admin API's (another
	// server at that address, a proxy's page).
	CodeBadAnswer = "bad_answer"
)

// Error is a request that failed: the API's error body, or why there was
// none.
type Error struct {
	// Status is the HTTP status; 0 when the API did not answer.
	Status int
	// Code is the API's error code, or CodeUnreachable / CodeBadAnswer.
	Code    string
	Message string
	// Field is the request value at fault (a JSON field, query parameter
	// or header), if any.
	Field string
	// RetryAfter is the server's Retry-After, if any.
	RetryAfter time.Duration
	// Hint says what to do.
	Hint string
	// Err is the transport's error, for CodeUnreachable.
	Err error
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.Message)
	if e.Field != "" && !strings.HasPrefix(e.Message, e.Field+":") {
		b.WriteString(" (field " + strconv.Quote(e.Field) + ")")
	}
	if e.Hint != "" {
		b.WriteString(": " + e.Hint)
	}
	return b.String()
}

func (e *Error) Unwrap() error { return e.Err }

// IsCode reports whether err is an *Error with one of codes.
func IsCode(err error, codes ...string) bool {
	var e *Error
	if !errors.As(err, &e) {
		return false
	}
	for _, c := range codes {
		if e.Code == c {
			return true
		}
	}
	return false
}

// hints say what to do after each code.
var hints = map[string]string{
	"unauthorized": "the token is unknown, expired or revoked: create one with `jitprov tokens create` " +
		"(the first one with `admin token create` on the admin service's host) and pass it with --token or JITPROV_TOKEN",
	"forbidden":    "the token's organisation or scope does not allow this: use a write token of this organisation, or a global one",
	"not_found":    "check the names (`jitprov orgs list`, `jitprov users list ORG`, `jitprov reviews list ORG`)",
	"invalid":      "fix the value and try again (`jitprov help` lists each command's flags)",
	"rate_limited": "too many requests: wait and try again",
	"unavailable":  "the admin service's database does not answer: try again shortly",
	"internal":     "the admin service failed: its log has the details",
}

// do sends a request and decodes a JSON answer into out (nil: ignore it).
func (c *Client) do(ctx context.Context, method, path string, query url.Values, contentType string, body []byte, out any, header http.Header) error {
	// path's segments are escaped already (seg).
	u := c.base.String() + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return &Error{Code: CodeBadAnswer, Message: "could not build the request: " + err.Error()}
	}
	for k, v := range header {
		req.Header[k] = v
	}
	if body != nil {
		req.Header.Set("Content-Type", contentType)
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", c.UserAgent)
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return c.unreachable(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	if err != nil {
		return c.unreachable(err)
	}
	isJSON := strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json")
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		if out == nil {
			return nil
		}
		if !isJSON {
			return c.badAnswer(resp.StatusCode)
		}
		if err := json.Unmarshal(raw, out); err != nil {
			return &Error{Status: resp.StatusCode, Code: CodeBadAnswer, Message: "the admin API's answer could not be read: " + err.Error(),
				Hint: "is this CLI as new as the admin service?"}
		}
		return nil
	}
	var eb struct {
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
			Field   string `json:"field"`
		} `json:"error"`
	}
	if !isJSON || json.Unmarshal(raw, &eb) != nil || eb.Error.Code == "" {
		return c.badAnswer(resp.StatusCode)
	}
	e := &Error{Status: resp.StatusCode, Code: eb.Error.Code, Message: eb.Error.Message, Field: eb.Error.Field, Hint: hints[eb.Error.Code]}
	if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s > 0 {
		e.RetryAfter = time.Duration(s) * time.Second
		if e.Code == "rate_limited" {
			e.Hint = fmt.Sprintf("wait %s and try again", e.RetryAfter)
		}
	}
	if e.Code == "unauthorized" && c.token == "" {
		e.Message = "no token was sent"
		e.Hint = "pass one with --token or set JITPROV_TOKEN (create one with `jitprov tokens create`, the first one with `admin token create` on the admin service's host)"
	}
	return e
}

func (c *Client) unreachable(err error) *Error {
	msg := "cannot reach the admin API at " + c.base.String()
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		msg = "the admin API at " + c.base.String() + " did not answer in time"
	}
	// The transport's error names the URL (never the token): keep its
	// cause only.
	cause := err
	var ue *url.Error
	if errors.As(err, &ue) {
		cause = ue.Err
	}
	if errors.Is(err, context.Canceled) {
		return &Error{Code: CodeUnreachable, Message: "interrupted", Err: err}
	}
	return &Error{Code: CodeUnreachable, Message: msg + " (" + cause.Error() + ")", Err: err,
		Hint: "check --server / JITPROV_ADMIN_URL and that the admin service runs"}
}

func (c *Client) badAnswer(status int) *Error {
	return &Error{Status: status, Code: CodeBadAnswer,
		Message: fmt.Sprintf("%s answered %d %s without the admin API's JSON", c.base.String(), status, http.StatusText(status)),
		Hint:    "is --server / JITPROV_ADMIN_URL the admin service's address (the one that serves /api/v1/)?"}
}

func (c *Client) getJSON(ctx context.Context, path string, q url.Values, out any) error {
	return c.do(ctx, http.MethodGet, path, q, "", nil, out, nil)
}

func (c *Client) sendJSON(ctx context.Context, method, path string, in, out any) error {
	var body []byte
	if in != nil {
		var err error
		if body, err = json.Marshal(in); err != nil {
			return err
		}
	}
	return c.do(ctx, method, path, nil, "application/json", body, out, nil)
}

// seg escapes one path segment.
func seg(s string) string { return url.PathEscape(s) }

func orgPath(org string) string { return "/api/v1/organizations/" + seg(org) }
