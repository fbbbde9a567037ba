package console

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/jitprov/jitprov/internal/admin"
	"github.com/jitprov/jitprov/internal/edge/session"
	"github.com/jitprov/jitprov/internal/store"
)

// SessionReader reads the edge's session cookie (*session.Manager).
type SessionReader interface {
	Read(r *http.Request) (session.Session, error)
}

// SessionAuthenticator is an Authenticator on the edge's session cookie,
// for where the console shares the edge's host (jitprov dev). It reads the
// person's current role and status through the core on every request, so
// an admin who is demoted, suspended or deprovisioned loses the console at
// once, whatever their session says.
//
// Interim: internal/admin/authn's Authenticator replaces it where it is
// available.
type SessionAuthenticator struct {
	Sessions SessionReader
	Core     *admin.Core
}

// Principal is the signed-in admin.
func (a SessionAuthenticator) Principal(r *http.Request) (admin.Principal, error) {
	s, err := a.Sessions.Read(r)
	if err != nil {
		return admin.Principal{}, fmt.Errorf("%w: %w", ErrUnauthenticated, err)
	}
	// The console reads who the person is now, scoped to their own
	// organisation and read-only.
	sys := admin.Principal{Kind: store.ActorSystem, ID: "console-sign-in", Name: "console sign-in", Organization: s.OrganizationID}
	org, err := a.Core.Organization(r.Context(), sys, s.OrganizationID)
	if err != nil {
		if errors.Is(err, admin.ErrNotFound) {
			return admin.Principal{}, fmt.Errorf("%w: organisation %s: %w", ErrUnauthenticated, s.OrganizationID, err)
		}
		return admin.Principal{}, fmt.Errorf("%w: %w", admin.ErrUnavailable, err)
	}
	u, err := a.Core.User(r.Context(), sys, s.OrganizationID, s.UserID)
	switch {
	case errors.Is(err, admin.ErrNotFound):
		return admin.Principal{}, fmt.Errorf("%w: user %s: %w", ErrUnauthenticated, s.UserID, err)
	case err != nil:
		return admin.Principal{}, fmt.Errorf("%w: %w", admin.ErrUnavailable, err)
	case u.User.Status != store.StatusActive:
		return admin.Principal{}, fmt.Errorf("%w: user %s is %s", admin.ErrForbidden, u.User.ID, u.User.Status)
	case u.User.Role != org.Organization.AdminRole():
		return admin.Principal{}, fmt.Errorf("%w: user %s holds %q", admin.ErrForbidden, u.User.ID, u.User.Role)
	}
	return admin.Principal{Kind: store.ActorUser, ID: u.User.ID, Name: u.User.Email, Organization: s.OrganizationID,
		Write: true, Role: u.User.Role}, nil
}
