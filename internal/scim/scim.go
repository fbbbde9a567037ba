// Package scim is jitprov's SCIM 2.0 service provider (RFC 7643, RFC
// 7644): the face through which an organisation's IdP (Okta, Entra ID, …)
// creates, changes and removes its people and groups beside JIT.
//
// The protocol — routing, request validation against the core User,
// EnterpriseUser and Group schemas, filter and PATCH path parsing, list
// responses and SCIM error bodies — is github.com/elimity-com/scim (with
// github.com/scim2/filter-parser underneath). What the operations do is the
// admin core's directory (internal/admin): one transaction per change, its
// events through the outbox and an audit row, seats following status. This
// package maps between the two: SCIM resources to admin.Person and back,
// filters to the directory's lookups, PATCH operations to the whole Person
// they make.
//
// The admin service serves it under /scim/v2/, on its own listener when
// JITPROV_ADMIN_SCIM_ADDR is set, for a token of scope scim (one per
// organisation: the token says which).
package scim

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"strconv"
	"strings"

	scimlib "github.com/elimity-com/scim"
	scimerr "github.com/elimity-com/scim/errors"
	"github.com/elimity-com/scim/optional"
	"github.com/elimity-com/scim/schema"

	"github.com/jitprov/jitprov/internal/admin"
	"github.com/jitprov/jitprov/internal/admin/authn"
)

func init() {
	// Entra ID sends booleans as strings ("active": "False"); the library
	// accepts them only with this switch, a package-level setting of its
	// own. jitprov's SCIM is the library's only user in the process.
	schema.SetAllowStringValues(true)
}

// Prefix is where the admin service mounts SCIM.
const Prefix = "/scim/v2/"

// MaxBody bounds a request body (RFC 7644's maxPayloadSize).
const MaxBody = 1 << 20

// docsURL documents jitprov's SCIM for the IdP's admin.
const docsURL = "https://github.com/jitprov/jitprov/blob/main/docs/scim.md"

// MaxResults is the largest page a list returns.
const MaxResults = 1000

// Authenticator tells who a request comes from (internal/admin/authn).
type Authenticator interface {
	Principal(r *http.Request) (admin.Principal, error)
}

// Config wires the SCIM face.
type Config struct {
	Core  *admin.Core
	Authn Authenticator
	Log   *slog.Logger
	// BaseURL is the public URL of /scim/v2 (e.g.
	// https://admin.example.com/scim/v2), for resources' meta.location and
	// the Location header; "" gives absolute paths (/scim/v2/Users/{id}),
	// right on whichever host the request reached.
	BaseURL string
}

type principalKey struct{}

func principal(r *http.Request) admin.Principal {
	p, _ := r.Context().Value(principalKey{}).(admin.Principal)
	return p
}

// New returns the SCIM handler, to be mounted at Prefix.
func New(cfg Config) (http.Handler, error) {
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	users := &userHandler{core: cfg.Core, log: cfg.Log}
	groups := &groupHandler{core: cfg.Core, log: cfg.Log}
	// The scheme's URIs are references (RFC 7643 §5): left unset, the
	// library sends "", which a client's schema check refuses.
	spc := &scimlib.ServiceProviderConfig{
		DocumentationURI: optional.NewString(docsURL),
		AuthenticationSchemes: []scimlib.AuthenticationScheme{{Type: scimlib.AuthenticationTypeOauthBearerToken,
			Name: "Bearer token", Description: "An API token of scope scim, one per organisation (jitprov tokens create -scope scim).",
			SpecURI: optional.NewString("https://www.rfc-editor.org/rfc/rfc6750"), DocumentationURI: optional.NewString(docsURL + "#set-up"),
			Primary: true}},
		MaxResults: MaxResults, SupportFiltering: true, SupportPatch: true,
	}
	opts := []scimlib.ServerOption{scimlib.WithLogger(libLogger{cfg.Log})}
	// Without a base the library's locations are "Users/{id}", relative to
	// the request: read at /scim/v2/Users/{id} they name
	// /scim/v2/Users/Users/{id}.
	opts = append(opts, scimlib.WithBaseURL(cmp.Or(cfg.BaseURL, strings.TrimSuffix(Prefix, "/"))))
	srv, err := scimlib.NewServer(&scimlib.ServerArgs{ServiceProviderConfig: spc, ResourceTypes: []scimlib.ResourceType{
		{ID: optional.NewString("User"), Name: "User", Endpoint: "/Users", Description: optional.NewString("People of the organisation"),
			Schema: schema.CoreUserSchema(), SchemaExtensions: []scimlib.SchemaExtension{{Schema: schema.ExtensionEnterpriseUser()}},
			Handler: users},
		{ID: optional.NewString("Group"), Name: "Group", Endpoint: "/Groups", Description: optional.NewString("Groups of the organisation's people"),
			Schema: schema.CoreGroupSchema(), Handler: groups},
	}}, opts...)
	if err != nil {
		return nil, fmt.Errorf("scim: %w", err)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		p, err := cfg.Authn.Principal(r)
		var limited *authn.LimitError
		switch {
		case err == nil && !p.SCIM:
			writeError(w, scimerr.ScimError{Status: http.StatusForbidden,
				Detail: "this token is not a SCIM token: create one of scope scim for the organisation (docs/scim.md)"})
			return
		case errors.As(err, &limited):
			w.Header().Set("Retry-After", strconv.Itoa(max(1, int(math.Ceil(limited.RetryAfter.Seconds())))))
			writeError(w, scimerr.ScimError{Status: http.StatusTooManyRequests, Detail: limited.Msg})
			return
		case errors.Is(err, admin.ErrUnavailable):
			cfg.Log.ErrorContext(r.Context(), "scim: checking the token", "err", err)
			w.Header().Set("Retry-After", "5")
			writeError(w, scimerr.ScimError{Status: http.StatusServiceUnavailable, Detail: "jitprov cannot check the token just now; retry"})
			return
		case err != nil:
			w.Header().Set("WWW-Authenticate", `Bearer realm="jitprov SCIM"`)
			writeError(w, scimerr.ScimError{Status: http.StatusUnauthorized, Detail: err.Error()})
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, MaxBody)
		r = r.WithContext(context.WithValue(r.Context(), principalKey{}, p))
		if err := checkFilter(r.URL.Query().Get("filter")); err != nil {
			writeError(w, scimerr.ScimError{Status: http.StatusBadRequest, ScimType: scimerr.ScimTypeInvalidFilter, Detail: err.Error()})
			return
		}
		rewriteFilter(r)
		if err := readBody(r); err != nil {
			var tooLarge *http.MaxBytesError
			if errors.As(err, &tooLarge) {
				writeError(w, scimerr.ScimError{Status: http.StatusRequestEntityTooLarge, Detail: fmt.Sprintf("the request body is larger than %d bytes", MaxBody)})
				return
			}
			writeError(w, scimerr.ScimError{Status: http.StatusBadRequest, ScimType: scimerr.ScimTypeInvalidSyntax, Detail: err.Error()})
			return
		}
		// The library routes on the path after /v2.
		endpoint := strings.TrimPrefix(r.URL.Path, Prefix)
		r.URL.Path = "/v2/" + endpoint
		r.URL.RawPath = ""
		if r.Method != http.MethodGet {
			srv.ServeHTTP(w, r)
			return
		}
		buf := &bufferedResponse{header: w.Header(), status: http.StatusOK}
		srv.ServeHTTP(buf, r)
		buf.send(w, endpoint)
	}), nil
}

// Bounds of a filter: the library's parser recurses once per nesting level
// (a filter of 100,000 nested parentheses overflowed the stack and killed
// the process), so a filter is refused before it is parsed when it is
// longer or deeper than any client sends.
const (
	maxFilterLength = 4096
	maxFilterDepth  = 16
)

// checkFilter refuses a filter over the bounds.
func checkFilter(f string) error {
	if len(f) > maxFilterLength {
		return fmt.Errorf("the filter is %d bytes long, more than jitprov reads (%d)", len(f), maxFilterLength)
	}
	depth, quoted := 0, false
	for i := 0; i < len(f); i++ {
		switch c := f[i]; {
		case quoted && c == '\\':
			i++ // an escaped character in a string
		case c == '"':
			quoted = !quoted
		case quoted:
		case c == '(' || c == '[':
			if depth++; depth > maxFilterDepth {
				return fmt.Errorf("the filter nests more than %d levels of parentheses or brackets", maxFilterDepth)
			}
		case c == ')' || c == ']':
			depth--
		}
	}
	return nil
}

// readBody reads a request's body whole (http.MaxBytesReader bounds it),
// so that a body over the bound is refused with 413 whatever the
// endpoint, and then lets rewriteManager amend a user's PATCH.
func readBody(r *http.Request) error {
	if r.Body == nil || r.Method == http.MethodGet || r.Method == http.MethodDelete {
		return nil
	}
	raw, err := io.ReadAll(r.Body)
	if err != nil {
		return err
	}
	r.Body = io.NopCloser(bytes.NewReader(raw))
	return rewriteManager(r)
}

// rewriteManager wraps the string value Entra ID sends for the enterprise
// manager (`"path": "…:User:manager", "value": "<id>"`) into the complex
// value the schema defines (`{"value": "<id>"}`), before the library checks
// a user's PATCH against the schema.
func rewriteManager(r *http.Request) error {
	if r.Method != http.MethodPatch || !strings.HasPrefix(strings.TrimPrefix(r.URL.Path, Prefix), "Users/") {
		return nil
	}
	raw, err := io.ReadAll(r.Body)
	if err != nil {
		return fmt.Errorf("the request body could not be read: %w", err)
	}
	r.Body = io.NopCloser(bytes.NewReader(raw))
	var req map[string]any
	if json.Unmarshal(raw, &req) != nil {
		return nil // the library answers invalidSyntax
	}
	ops, _ := get(req, "Operations").([]any)
	changed := false
	for _, o := range ops {
		op, _ := o.(map[string]any)
		path, _ := get(op, "path").(string)
		if v, isString := get(op, "value").(string); isString && strings.HasSuffix(strings.ToLower(path), ":user:manager") {
			for k := range op {
				if strings.EqualFold(k, "value") {
					op[k] = map[string]any{"value": v}
				}
			}
			changed = true
		}
	}
	if changed {
		raw, _ = json.Marshal(req)
		r.Body = io.NopCloser(bytes.NewReader(raw))
		r.ContentLength = int64(len(raw))
	}
	return nil
}

func writeError(w http.ResponseWriter, e scimerr.ScimError) {
	raw, _ := e.MarshalJSON()
	w.Header().Set("Content-Type", "application/scim+json")
	w.WriteHeader(e.Status)
	_, _ = w.Write(raw)
}

// libLogger passes the library's error log to slog.
type libLogger struct{ log *slog.Logger }

func (l libLogger) Error(args ...any) { l.log.Error("scim: "+fmt.Sprint(args...), "component", "scim") }

// scimError maps the core's errors to SCIM errors: never an internal
// message to the client, which the library would otherwise echo.
func scimError(ctx context.Context, log *slog.Logger, op string, err error) error {
	var fe *admin.FieldError
	switch {
	case errors.As(err, &fe):
		return scimerr.ScimError{Status: http.StatusBadRequest, ScimType: scimerr.ScimTypeInvalidValue, Detail: fe.Error()}
	case errors.Is(err, admin.ErrNotFound):
		return scimerr.ScimError{Status: http.StatusNotFound, Detail: "no such resource in this organisation"}
	case errors.Is(err, admin.ErrNoSeat):
		return scimerr.ScimError{Status: http.StatusConflict, Detail: "the organisation has no free seat: raise its seat limit (max_seats) or deactivate someone, then retry"}
	case errors.Is(err, admin.ErrPrecondition):
		return scimerr.ScimError{Status: http.StatusPreconditionFailed, Detail: "the resource changed since the version named in If-Match; read it again"}
	case admin.IsUniqueness(err):
		return scimerr.ScimError{Status: http.StatusConflict, ScimType: scimerr.ScimTypeUniqueness, Detail: conflictDetail(err)}
	case errors.Is(err, admin.ErrConflict):
		return scimerr.ScimError{Status: http.StatusConflict, Detail: conflictDetail(err)}
	case errors.Is(err, admin.ErrForbidden):
		return scimerr.ScimError{Status: http.StatusForbidden, Detail: "this token may not do that"}
	case errors.Is(err, admin.ErrUnavailable):
		log.ErrorContext(ctx, "scim: "+op, "err", err)
		return scimerr.ScimError{Status: http.StatusInternalServerError, Detail: "jitprov's database is unavailable just now; retry"}
	}
	var se scimerr.ScimError
	if errors.As(err, &se) {
		return se
	}
	log.ErrorContext(ctx, "scim: "+op, "err", err)
	return scimerr.ScimError{Status: http.StatusInternalServerError, Detail: "jitprov could not do this; its log says why"}
}

// conflictDetail is the part of a conflict the client may read: the
// core's message names the users involved, which are the organisation's.
func conflictDetail(err error) string {
	msg := err.Error()
	if i := strings.Index(msg, "admin: conflict: "); i >= 0 {
		msg = msg[i+len("admin: conflict: "):]
	}
	msg = strings.TrimPrefix(msg, "uniqueness: ")
	if i := strings.Index(msg, ": store: conflict"); i >= 0 {
		msg = msg[:i]
	}
	if strings.Contains(msg, "postgres:") || strings.Contains(msg, "sqlite:") {
		return "a user of the organisation already has this userName or email"
	}
	return msg
}
