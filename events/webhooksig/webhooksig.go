// Package webhooksig signs and verifies the deliveries of jitprov's
// notifier webhooks, so that a receiver can tell a delivery came from
// jitprov and reject a replayed one.
//
// Every delivery carries the headers
//
//	Jitprov-Delivery: <delivery id>
//	Jitprov-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256>
//
// where the MAC is computed with the webhook's shared secret over the
// timestamp, the delivery id and the raw request body, joined by dots:
// "<t>.<delivery id>.<body>". A receiver recomputes it, compares in
// constant time, and refuses a timestamp outside its tolerance (Verify's
// default is five minutes). Several v1 values may appear while a secret is
// rotated; one match is enough. The delivery id is the same on every try
// of one delivery and is covered by the signature: a receiver that keeps
// the ids it has seen also drops a replay inside the tolerance.
package webhooksig

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Headers of a delivery.
const (
	HeaderSignature = "Jitprov-Signature"
	HeaderDelivery  = "Jitprov-Delivery"
)

// DefaultTolerance is how far a delivery's timestamp may be from the
// receiver's clock.
const DefaultTolerance = 5 * time.Minute

// Errors of Verify.
var (
	ErrMalformed = errors.New("webhooksig: malformed signature header")
	ErrMismatch  = errors.New("webhooksig: signature does not match")
	ErrStale     = errors.New("webhooksig: timestamp outside the tolerance (replayed or clock skew)")
)

// Sign returns the Jitprov-Signature header value for delivery id's body
// sent at t.
func Sign(secret []byte, id string, body []byte, t time.Time) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	return "t=" + ts + ",v1=" + hex.EncodeToString(mac(secret, ts, id, body))
}

func mac(secret []byte, ts, id string, body []byte) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(ts))
	m.Write([]byte("."))
	m.Write([]byte(id))
	m.Write([]byte("."))
	m.Write(body)
	return m.Sum(nil)
}

// Verify checks header (the Jitprov-Signature value) against the delivery
// id (the Jitprov-Delivery value) and body with secret, and that its
// timestamp is within tolerance of now (0 means DefaultTolerance).
func Verify(secret []byte, id string, body []byte, header string, now time.Time, tolerance time.Duration) error {
	if tolerance <= 0 {
		tolerance = DefaultTolerance
	}
	var ts string
	var sigs [][]byte
	for part := range strings.SplitSeq(header, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return fmt.Errorf("%w: %q is not key=value", ErrMalformed, part)
		}
		switch k {
		case "t":
			ts = v
		case "v1":
			b, err := hex.DecodeString(v)
			if err != nil || len(b) != sha256.Size {
				return fmt.Errorf("%w: v1 is not a hex SHA-256 MAC", ErrMalformed)
			}
			sigs = append(sigs, b)
		}
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return fmt.Errorf("%w: no valid t=", ErrMalformed)
	}
	if len(sigs) == 0 {
		return fmt.Errorf("%w: no v1=", ErrMalformed)
	}
	want := mac(secret, ts, id, body)
	matched := false
	for _, s := range sigs {
		if hmac.Equal(s, want) {
			matched = true
		}
	}
	if !matched {
		return ErrMismatch
	}
	if d := now.Sub(time.Unix(sec, 0)); d > tolerance || d < -tolerance {
		return fmt.Errorf("%w: signed %s ago", ErrStale, d.Round(time.Second))
	}
	return nil
}
