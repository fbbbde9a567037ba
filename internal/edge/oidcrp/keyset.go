package oidcrp

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// maxJWKSBytes bounds a JWKS document.
const maxJWKSBytes = 1 << 20

var errJWKSThrottled = errors.New("oidcrp: JWKS refresh throttled")

// jwksThrottle is the RoundTripper under go-oidc's RemoteKeySet. go-oidc
// refetches the JWKS whenever no cached key verifies a token (an unknown kid,
// or simply a bad signature), so every forged token would cost the IdP a
// request. jwksThrottle lets at most one request through per minInterval;
// in between it answers from the last good document (go-oidc then finds the
// same keys and refuses the token). Concurrent refreshes are already merged
// by go-oidc's own in-flight de-duplication.
type jwksThrottle struct {
	next        http.RoundTripper
	minInterval time.Duration
	now         func() time.Time

	mu      sync.Mutex
	last    time.Time // last completed non-redirect request
	tried   bool
	body    []byte // last 200 response body
	fetches atomic.Int64
}

func (t *jwksThrottle) RoundTrip(req *http.Request) (*http.Response, error) {
	t.mu.Lock()
	if t.tried && t.now().Sub(t.last) < t.minInterval {
		body := t.body
		t.mu.Unlock()
		if body == nil {
			return nil, errJWKSThrottled
		}
		return cachedResponse(req, body), nil
	}
	t.mu.Unlock()

	t.fetches.Add(1)
	resp, err := t.next.RoundTrip(req)
	if err != nil {
		t.mark(nil)
		return nil, err
	}
	if resp.StatusCode >= 300 && resp.StatusCode < 400 {
		return resp, nil // the client follows it (https only) and comes back here
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxJWKSBytes+1))
	if err != nil {
		t.mark(nil)
		return nil, fmt.Errorf("oidcrp: reading JWKS: %w", err)
	}
	if len(body) > maxJWKSBytes {
		t.mark(nil)
		return nil, fmt.Errorf("oidcrp: JWKS larger than %d bytes", maxJWKSBytes)
	}
	if resp.StatusCode == http.StatusOK {
		t.mark(body)
	} else {
		t.mark(nil)
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	resp.ContentLength = int64(len(body))
	return resp, nil
}

// mark records a completed fetch; a failed one keeps the last good body.
func (t *jwksThrottle) mark(body []byte) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.last = t.now()
	t.tried = true
	if body != nil {
		t.body = body
	}
}

func cachedResponse(req *http.Request, body []byte) *http.Response {
	return &http.Response{
		Status:        "200 OK",
		StatusCode:    http.StatusOK,
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        http.Header{"Content-Type": []string{"application/json"}},
		Body:          io.NopCloser(bytes.NewReader(body)),
		ContentLength: int64(len(body)),
		Request:       req,
	}
}
