package devidp

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"sync"
	"time"
)

// errFull: too many logins under way.
var errFull = errors.New("too many sign-ins under way; try again in a few minutes")

// expiring is a bounded in-memory map whose entries expire after ttl:
// the logins under way (a development IdP keeps no state worth keeping
// across restarts).
type expiring[V any] struct {
	ttl time.Duration
	max int
	now func() time.Time

	mu      sync.Mutex
	entries map[string]entry[V]
}

type entry[V any] struct {
	v       V
	expires time.Time
}

func newExpiring[V any](ttl time.Duration, max int, now func() time.Time) *expiring[V] {
	return &expiring[V]{ttl: ttl, max: max, now: now, entries: map[string]entry[V]{}}
}

// add stores v under a new random key and returns the key.
func (e *expiring[V]) add(v V) (string, error) {
	key, err := randomID()
	if err != nil {
		return "", err
	}
	return key, e.put(key, v)
}

// get returns the live entry of key.
func (e *expiring[V]) get(key string) (V, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	en, ok := e.entries[key]
	if !ok || !e.now().Before(en.expires) {
		var zero V
		return zero, false
	}
	return en.v, true
}

// take returns the live entry of key and removes it.
func (e *expiring[V]) take(key string) (V, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	en, ok := e.entries[key]
	delete(e.entries, key)
	if !ok || !e.now().Before(en.expires) {
		var zero V
		return zero, false
	}
	return en.v, true
}

// update replaces the live entry of key by f's result, keeping its
// expiry; it reports whether there was one.
func (e *expiring[V]) update(key string, f func(V) V) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	en, ok := e.entries[key]
	if !ok || !e.now().Before(en.expires) {
		return false
	}
	en.v = f(en.v)
	e.entries[key] = en
	return true
}

// put stores v under key (which the caller made unguessable).
func (e *expiring[V]) put(key string, v V) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	now := e.now()
	if _, exists := e.entries[key]; !exists && len(e.entries) >= e.max {
		for k, en := range e.entries {
			if !now.Before(en.expires) {
				delete(e.entries, k)
			}
		}
		if len(e.entries) >= e.max {
			return errFull
		}
	}
	e.entries[key] = entry[V]{v: v, expires: now.Add(e.ttl)}
	return nil
}

// delete removes key.
func (e *expiring[V]) delete(key string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	delete(e.entries, key)
}

// randomID is 32 random bytes, URL-safe.
func randomID() (string, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b[:]), nil
}
