package api

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/jitprov/jitprov/internal/admin"
)

func (a *API) listTokens(w http.ResponseWriter, r *http.Request, p admin.Principal) {
	q := newQuery(r, "organization")
	if q.err != nil {
		a.fail(w, r, q.err)
		return
	}
	list, err := a.core.Tokens(r.Context(), p, q.str("organization"))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"tokens": mapSlice(list, tokenOf)})
}

type createTokenBody struct {
	Name         string `json:"name"`
	Organization string `json:"organization"`
	Scope        string `json:"scope"`
	// ExpiresAt (RFC 3339) or ExpiresIn (a Go duration such as "720h");
	// neither: admin.DefaultTokenLifetime.
	ExpiresAt string `json:"expires_at"`
	ExpiresIn string `json:"expires_in"`
}

type createdTokenBody struct {
	Token  tokenView `json:"token"`
	Secret string    `json:"secret"`
}

// idempotencyNS derives a token's id from its creator and Idempotency-Key.
var idempotencyNS = uuid.MustParse("5b0c3a3e-8d5c-4d5e-9b0a-7f1c2e9d4a10")

// createToken creates a token (201) and answers its secret, once.
//
// With an Idempotency-Key header, the token's id is derived from the key
// and the principal, so one key never makes two tokens, whichever replica
// a retry reaches. A retry reaching the replica that answered within
// idempotencyTTL gets the same answer again (Idempotent-Replayed: true);
// a retry after that, or on another replica, is a conflict naming the
// token: its secret was shown once, so revoke it if the answer was lost
// and create another with a new key. The same key with another body is
// refused.
func (a *API) createToken(w http.ResponseWriter, r *http.Request, p admin.Principal) {
	var body createTokenBody
	raw, ok := decodeKeep(w, r, &body)
	if !ok {
		return
	}
	req := admin.NewToken{Name: body.Name, OrganizationID: body.Organization, Scope: body.Scope}
	switch {
	case body.ExpiresAt != "" && body.ExpiresIn != "":
		a.fail(w, r, &admin.FieldError{Field: "expires_in", Msg: "give expires_at or expires_in, not both"})
		return
	case body.ExpiresAt != "":
		t, err := time.Parse(time.RFC3339, body.ExpiresAt)
		if err != nil {
			a.fail(w, r, &admin.FieldError{Field: "expires_at", Msg: "want an RFC 3339 time such as 2027-03-01T00:00:00Z"})
			return
		}
		req.ExpiresAt = t
	case body.ExpiresIn != "":
		d, err := time.ParseDuration(body.ExpiresIn)
		if err != nil || d <= 0 {
			a.fail(w, r, &admin.FieldError{Field: "expires_in", Msg: "want a positive duration such as 720h"})
			return
		}
		req.ExpiresAt = time.Now().Add(d)
	}
	key := r.Header.Get("Idempotency-Key")
	var slot string
	if key != "" {
		if len(key) > 200 {
			a.fail(w, r, &admin.FieldError{Field: "Idempotency-Key", Msg: "at most 200 characters"})
			return
		}
		slot = p.Kind + ":" + p.ID + "\x00" + key
		req.ID = uuid.NewSHA1(idempotencyNS, []byte(slot)).String()
		sum := sha256.Sum256(raw)
		if prev, found := a.idem.get(slot); found {
			if !bytes.Equal(prev.bodyHash[:], sum[:]) {
				a.fail(w, r, &admin.FieldError{Field: "Idempotency-Key", Msg: "this key was used for another request; use a new key"})
				return
			}
			w.Header().Set("Idempotent-Replayed", "true")
			writeJSON(w, http.StatusCreated, prev.body)
			return
		}
		created, err := a.core.CreateToken(r.Context(), p, req)
		if errors.Is(err, admin.ErrConflict) {
			a.fail(w, r, fmt.Errorf("%w: token %s was created for this Idempotency-Key already and its secret shown once; "+
				"if that answer was lost, revoke it and create another with a new key", admin.ErrConflict, req.ID))
			return
		}
		if err != nil {
			a.fail(w, r, err)
			return
		}
		out := createdTokenBody{Token: tokenOf(created.Token), Secret: created.Secret}
		a.idem.put(slot, sum, out)
		writeJSON(w, http.StatusCreated, out)
		return
	}
	created, err := a.core.CreateToken(r.Context(), p, req)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, createdTokenBody{Token: tokenOf(created.Token), Secret: created.Secret})
}

func (a *API) revokeToken(w http.ResponseWriter, r *http.Request, p admin.Principal) {
	t, changed, err := a.core.RevokeToken(r.Context(), p, r.PathValue("id"))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, struct {
		Token   tokenView `json:"token"`
		Changed bool      `json:"changed"`
	}{tokenOf(t), changed})
}

// decodeKeep is decode for a required body, also returning the body's
// bytes re-encoded canonically (for the idempotency check).
func decodeKeep(w http.ResponseWriter, r *http.Request, dst *createTokenBody) ([]byte, bool) {
	if !decode(w, r, dst, false) {
		return nil, false
	}
	return []byte(fmt.Sprintf("%q|%q|%q|%q|%q", dst.Name, dst.Organization, dst.Scope, dst.ExpiresAt, dst.ExpiresIn)), true
}

// idempotencyTTL is how long a created token's answer is kept for a
// retry with the same Idempotency-Key. It holds the secret in memory, so
// it is short: a client retries within seconds.
const idempotencyTTL = 10 * time.Minute

type idemEntry struct {
	bodyHash [sha256.Size]byte
	body     createdTokenBody
	at       time.Time
}

// idempotency keeps the answers of token creations with an
// Idempotency-Key, in this replica's memory, for idempotencyTTL.
type idempotency struct {
	now     func() time.Time
	mu      sync.Mutex
	entries map[string]idemEntry
}

func newIdempotency(now func() time.Time) *idempotency {
	return &idempotency{now: now, entries: map[string]idemEntry{}}
}

func (c *idempotency) get(slot string) (idemEntry, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[slot]
	if ok && c.now().Sub(e.at) > idempotencyTTL {
		delete(c.entries, slot)
		return idemEntry{}, false
	}
	return e, ok
}

func (c *idempotency) put(slot string, hash [sha256.Size]byte, body createdTokenBody) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	for k, e := range c.entries { // few tokens are created: sweeping is cheap
		if now.Sub(e.at) > idempotencyTTL {
			delete(c.entries, k)
		}
	}
	c.entries[slot] = idemEntry{bodyHash: hash, body: body, at: now}
}
