package api

import (
	"errors"
	"io"
	"mime"
	"net/http"

	"github.com/jitprov/jitprov/events"
	"github.com/jitprov/jitprov/internal/admin"
	"github.com/jitprov/jitprov/internal/config"
)

// dryRun answers what JIT would decide for a login of the identity in the
// body (the login.first-seen event's data), writing nothing.
func (a *API) dryRun(w http.ResponseWriter, r *http.Request, p admin.Principal) {
	var id events.Identity
	if !decode(w, r, &id, false) {
		return
	}
	res, err := a.core.DryRun(r.Context(), p, r.PathValue("org"), id)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"result": res})
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
