package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"strings"

	"github.com/jitprov/jitprov/events"
	"github.com/jitprov/jitprov/internal/admin"
	"github.com/jitprov/jitprov/internal/config"
)

// dryRun answers what JIT would decide for a login, writing nothing. The
// body is one of: an identity (the login.first-seen event's data), bare or
// as {"identity": ...}; {"connection_id", "saml_response"}; or
// {"connection_id", "id_token", "userinfo"?}. The last two are mapped as
// the edge maps a login, without validation, and the answer also carries
// the mapped identity, the mapping's warnings and that caveat.
func (a *API) dryRun(w http.ResponseWriter, r *http.Request, p admin.Principal) {
	var raw json.RawMessage
	if !decode(w, r, &raw, false) {
		return
	}
	var keys map[string]json.RawMessage
	if err := json.Unmarshal(raw, &keys); err != nil {
		badRequest(w, http.StatusUnprocessableEntity, "", "the body is not a JSON object")
		return
	}
	_, hasIdentity := keys["identity"]
	_, hasSAML := keys["saml_response"]
	_, hasToken := keys["id_token"]
	org := r.PathValue("org")
	switch {
	case hasSAML || hasToken:
		var b struct {
			ConnectionID string          `json:"connection_id"`
			SAMLResponse string          `json:"saml_response"`
			IDToken      string          `json:"id_token"`
			Userinfo     json.RawMessage `json:"userinfo"`
		}
		if !strict(w, raw, &b) {
			return
		}
		var res admin.MappedDryRun
		var err error
		switch {
		case hasSAML && hasToken:
			badRequest(w, http.StatusUnprocessableEntity, "id_token", "give saml_response or id_token, not both")
			return
		case hasSAML:
			if len(b.Userinfo) > 0 {
				badRequest(w, http.StatusUnprocessableEntity, "userinfo", "only with an id_token")
				return
			}
			res, err = a.core.DryRunSAML(r.Context(), p, org, b.ConnectionID, b.SAMLResponse)
		default:
			if string(b.Userinfo) == "null" {
				b.Userinfo = nil
			}
			res, err = a.core.DryRunOIDC(r.Context(), p, org, b.ConnectionID, b.IDToken, b.Userinfo)
		}
		if err != nil {
			a.fail(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, res)
		return
	case hasIdentity:
		var b struct {
			Identity events.Identity `json:"identity"`
		}
		if !strict(w, raw, &b) {
			return
		}
		a.dryRunIdentity(w, r, p, b.Identity)
	default:
		var id events.Identity
		if !strict(w, raw, &id) {
			return
		}
		a.dryRunIdentity(w, r, p, id)
	}
}

func (a *API) dryRunIdentity(w http.ResponseWriter, r *http.Request, p admin.Principal, id events.Identity) {
	res, err := a.core.DryRun(r.Context(), p, r.PathValue("org"), id)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"result": res})
}

// strict decodes raw into dst, refusing unknown fields, as decode does.
func strict(w http.ResponseWriter, raw []byte, dst any) bool {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		field := ""
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			field = te.Field
		} else if f, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
			field = strings.Trim(f, `"`)
		}
		badRequest(w, http.StatusUnprocessableEntity, field, "the body is not the JSON object this route takes: "+err.Error())
		return false
	}
	return true
}

// MaxOrgFile bounds an organisations file sent to /api/v1/apply.
const MaxOrgFile = 1 << 20

// apply creates or updates the organisations and connections of the
// organisations file in the body (YAML, as `provisioner apply` reads it),
// or with ?dry_run=true says what it would do. It never deletes.
func (a *API) apply(w http.ResponseWriter, r *http.Request, p admin.Principal) {
	q := newQuery(r, "dry_run")
	dry := q.oneOf("dry_run", "true", "false") == "true"
	if q.err != nil {
		a.fail(w, r, q.err)
		return
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || (mt != "application/yaml" && mt != "application/x-yaml") {
		badRequest(w, http.StatusUnsupportedMediaType, "", "send the organisations file as Content-Type: application/yaml")
		return
	}
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxOrgFile))
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		badRequest(w, http.StatusRequestEntityTooLarge, "", "the organisations file is larger than 1 MiB")
		return
	} else if err != nil {
		badRequest(w, http.StatusBadRequest, "", "could not read the body")
		return
	}
	f, err := config.ParseOrgFile("organizations.yaml", data)
	if err != nil {
		// The file's problems, each with its line, for the operator.
		badRequest(w, http.StatusUnprocessableEntity, "body", err.Error())
		return
	}
	changes, err := a.core.Apply(r.Context(), p, f.Organizations, f.Connections, dry)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	if changes == nil {
		changes = []admin.Change{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"dry_run": dry, "changes": changes})
}

type connectionInfoView struct {
	connectionView
	Certificates []admin.CertInfo `json:"certificates"`
	// CertificateError says why the IdP's certificates could not be read.
	CertificateError string `json:"certificate_error,omitempty"`
}

// listConnections lists the organisation's connections with their IdP
// signing certificates' expiry (warning within admin.WarnDays).
func (a *API) listConnections(w http.ResponseWriter, r *http.Request, p admin.Principal) {
	if q := newQuery(r); q.err != nil {
		a.fail(w, r, q.err)
		return
	}
	list, err := a.core.Connections(r.Context(), p, r.PathValue("org"))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"connections": mapSlice(list, func(c admin.ConnectionInfo) connectionInfoView {
		certs := c.Certificates
		if certs == nil {
			certs = []admin.CertInfo{}
		}
		return connectionInfoView{connectionView: connectionView{ID: c.ID, Protocol: c.Protocol, DisplayName: c.DisplayName, Replaces: c.Replaces},
			Certificates: certs, CertificateError: c.CertError}
	})})
}
