// Package api is the admin HTTP API: JSON over the admin core
// (internal/admin), authenticated by internal/admin/authn. The routes,
// their bodies and their errors are described by openapi.yaml, served at
// /api/v1/openapi.yaml; a test holds the two to each other.
//
// Retries. Status and role changes are naturally idempotent: a repeated
// suspend, reactivate, deprovision or role change changes nothing, emits
// nothing, and answers "changed": false. Linking an identity to the user
// it is linked to already is the same. Deciding a review twice is a
// conflict (409), never a second decision; unlinking twice answers 404
// (the identity is nobody's already); revoking a revoked token answers
// "changed": false. Creating a token is the one write a retry could
// repeat, so it takes an Idempotency-Key (see createToken).
package api

import (
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"strings"
	"time"

	"github.com/jitprov/jitprov/internal/admin"
)

//go:embed openapi.yaml
var openAPI []byte

// OpenAPI is the API's OpenAPI 3 document.
func OpenAPI() []byte { return openAPI }

// MaxBody bounds a request body.
const MaxBody = 64 << 10

// Principals authenticates requests: *authn.Authenticator.
type Principals interface {
	Principal(r *http.Request) (admin.Principal, error)
}

// Config is what an API needs.
type Config struct {
	Core  *admin.Core
	Authn Principals
	Log   *slog.Logger
	// Now is the clock of the idempotency cache (nil: time.Now).
	Now func() time.Time
}

// API serves the admin API.
type API struct {
	core  *admin.Core
	authn Principals
	log   *slog.Logger
	idem  *idempotency
	mux   *http.ServeMux
}

// route is one route: the mux serves exactly these.
type route struct {
	pattern string // "METHOD /path"
	handle  func(a *API, w http.ResponseWriter, r *http.Request, p admin.Principal)
}

const orgPath = "/api/v1/organizations/{org}"

var routes = []route{
	{"GET /api/v1/organizations", (*API).listOrganizations},
	{"GET " + orgPath, (*API).getOrganization},
	{"GET " + orgPath + "/connections", (*API).listConnections},
	{"GET " + orgPath + "/users", (*API).listUsers},
	{"GET " + orgPath + "/users/{id}", (*API).getUser},
	{"POST " + orgPath + "/users/{id}/suspend", (*API).suspend},
	{"POST " + orgPath + "/users/{id}/reactivate", (*API).reactivate},
	{"POST " + orgPath + "/users/{id}/deprovision", (*API).deprovision},
	{"POST " + orgPath + "/users/{id}/approve-signup", (*API).approveSignup},
	{"POST " + orgPath + "/users/{id}/deny-signup", (*API).denySignup},
	{"PUT " + orgPath + "/users/{id}/role", (*API).changeRole},
	{"POST " + orgPath + "/users/{id}/identities", (*API).link},
	{"DELETE " + orgPath + "/identities/{connection}/{external_id}", (*API).unlink},
	{"GET " + orgPath + "/reviews", (*API).listReviews},
	{"POST " + orgPath + "/reviews/{id}/approve", (*API).approve},
	{"POST " + orgPath + "/reviews/{id}/deny", (*API).deny},
	{"GET " + orgPath + "/decisions", (*API).listDecisions},
	{"GET " + orgPath + "/audit", (*API).listAudit},
	{"GET " + orgPath + "/conflicts", (*API).listConflicts},
	{"POST " + orgPath + "/dry-run", (*API).dryRun},
	{"POST /api/v1/apply", (*API).apply},
	{"GET /api/v1/tokens", (*API).listTokens},
	{"POST /api/v1/tokens", (*API).createToken},
	{"DELETE /api/v1/tokens/{id}", (*API).revokeToken},
}

// OpenAPIPath serves the document, without credentials.
const OpenAPIPath = "/api/v1/openapi.yaml"

// Routes are the patterns the API serves ("GET /api/v1/tokens"), the
// OpenAPI document's included.
func Routes() []string {
	out := []string{"GET " + OpenAPIPath}
	for _, rt := range routes {
		out = append(out, rt.pattern)
	}
	return out
}

// New returns the API.
func New(cfg Config) *API {
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	a := &API{core: cfg.Core, authn: cfg.Authn, log: cfg.Log, idem: newIdempotency(cfg.Now), mux: http.NewServeMux()}
	a.mux.HandleFunc("GET "+OpenAPIPath, func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/yaml")
		_, _ = w.Write(openAPI)
	})
	for _, rt := range routes {
		a.mux.HandleFunc(rt.pattern, func(w http.ResponseWriter, r *http.Request) {
			p, err := a.authn.Principal(r)
			if err == nil && p.SCIM {
				err = fmt.Errorf("%w: token %s is a SCIM token: it reaches the SCIM endpoints (/scim/v2/) only", admin.ErrForbidden, p.ID)
			}
			if err != nil {
				a.fail(w, r, err)
				return
			}
			rt.handle(a, w, r, p)
		})
	}
	// Anything else under /api/ is a JSON 404, never the mux's text one.
	a.mux.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusNotFound, errorBody{Error: Error{Code: CodeNotFound, Message: "no such route: " + r.Method + " " + r.URL.Path + "; see " + OpenAPIPath}})
	})
	return a
}

// Handler serves the API under /api/. Browsers' cross-origin writes are
// refused (http.CrossOriginProtection): the session cookie cannot be used
// from another site. Clients that are not browsers send neither Origin
// nor Sec-Fetch-Site and pass.
func (a *API) Handler() http.Handler {
	cop := http.NewCrossOriginProtection()
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusForbidden, errorBody{Error: Error{Code: CodeForbidden, Message: "cross-origin requests that change something are refused"}})
	}))
	return cop.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		a.mux.ServeHTTP(w, r)
	}))
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(true)
	_ = enc.Encode(v)
}

// decode reads r's JSON body into dst: at most MaxBody bytes, one
// object, no unknown fields. An empty body leaves dst as it is when
// optional. It answers the problem itself and returns false.
func decode(w http.ResponseWriter, r *http.Request, dst any, optional bool) bool {
	raw, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBody))
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		badRequest(w, http.StatusRequestEntityTooLarge, "", "the body is larger than 64 KiB")
		return false
	case err != nil:
		badRequest(w, http.StatusBadRequest, "", "could not read the body")
		return false
	case len(strings.TrimSpace(string(raw))) == 0:
		if optional {
			return true
		}
		badRequest(w, http.StatusUnprocessableEntity, "", "a JSON body is required")
		return false
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		badRequest(w, http.StatusUnsupportedMediaType, "", "send the body as Content-Type: application/json")
		return false
	}
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		field := ""
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			field = te.Field
		} else if f, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
			field = strings.Trim(f, `"`)
			badRequest(w, http.StatusUnprocessableEntity, field, "unknown field "+f)
			return false
		}
		badRequest(w, http.StatusUnprocessableEntity, field, "the body is not the JSON object this route takes: "+err.Error())
		return false
	}
	if dec.More() {
		badRequest(w, http.StatusUnprocessableEntity, "", "the body holds more than one JSON value")
		return false
	}
	return true
}
