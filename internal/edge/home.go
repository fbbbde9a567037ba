package edge

import (
	"cmp"
	"context"
	"errors"
	"net/http"

	"github.com/jitprov/jitprov/internal/edge/session"
	"github.com/jitprov/jitprov/internal/store"
)

// landing is where a login of org without a (valid) return URL lands:
// the organisation's landing URL (landing_url in the organisations file),
// else the edge's (Config.DefaultReturnTo), by default the edge's own
// landing page, "/". Both are set by administrators, not by the request:
// no open redirect.
func (s *Server) landing(org store.Organization) string {
	return cmp.Or(org.LandingURL, s.cfg.DefaultReturnTo)
}

// homePage is the edge's landing page: who is signed in, and the way out.
type homePage struct {
	SignedIn           bool
	Who, OrgName, Role string
	// Landing is the organisation's landing URL, when it is not this page.
	Landing string
}

// home serves the edge's landing page at "/", where a login without a
// return URL lands unless the organisation or the edge names another
// place: who the person is signed in as, a link on to the organisation's
// landing URL, and sign-out; or, without a session, a link to sign in.
func (s *Server) home(w http.ResponseWriter, r *http.Request) {
	sess, err := s.sessions.Read(r)
	if err != nil {
		if !errors.Is(err, session.ErrNoSession) {
			s.log.InfoContext(r.Context(), "session refused", "err", err)
		}
		s.writeHTML(w, r, http.StatusOK, "home", homePage{})
		return
	}
	p := homePage{SignedIn: true, Who: cmp.Or(sess.Email, sess.UserID), OrgName: sess.OrganizationID, Role: sess.Role}
	org, err := s.organization(r.Context(), sess.OrganizationID)
	if err != nil {
		// The page still says who the person is; the name can wait.
		s.log.WarnContext(r.Context(), "landing page: cannot read the organisation; showing its id", "org", sess.OrganizationID, "err", err)
	} else {
		p.OrgName = cmp.Or(org.Name, org.ID)
		if l := s.landing(org); l != "/" {
			p.Landing = l
		}
	}
	s.writeHTML(w, r, http.StatusOK, "home", p)
}

// organization reads an organisation from the store.
func (s *Server) organization(ctx context.Context, id string) (store.Organization, error) {
	var org store.Organization
	err := s.reg.store.InTx(ctx, func(ctx context.Context, tx store.Tx) error {
		var err error
		org, err = tx.Organization(ctx, id)
		return err
	})
	return org, err
}
