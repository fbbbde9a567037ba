package edge

import (
	"cmp"
	"net/http"
	"net/mail"
	"net/url"
	"strings"

	"github.com/jitprov/jitprov/events"
	"github.com/jitprov/jitprov/internal/edge/session"
)

// loginPage is the home-realm discovery form: a person types their work
// email, and the domain, verified for an organisation, picks its
// connection (SAML or OIDC).
type loginPage struct {
	Email, ReturnTo, Error string
	// Organization names the organisation whose connections are offered.
	Organization string
	Choices      []choice
}

// choice is one connection offered: its display name (or id) and where
// its login starts.
type choice struct {
	Name, URL string
	org       string
}

func (s *Server) loginForm(w http.ResponseWriter, r *http.Request) {
	// Without a return URL the login lands where the organisation chosen
	// says (its landing URL), so none is made up here.
	s.renderLogin(w, r, http.StatusOK, loginPage{
		ReturnTo: session.SafeReturnTo(r.URL.Query().Get("return_to"), s.cfg.AllowedReturnOrigins, "")})
}

// discover sends the person to their organisation's connection, chosen by
// the domain of their email among the organisations' verified domains.
func (s *Server) discover(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	if err := r.ParseForm(); err != nil {
		s.renderLogin(w, r, http.StatusBadRequest, loginPage{Error: "The form could not be read; please try again."})
		return
	}
	returnTo := session.SafeReturnTo(r.PostForm.Get("return_to"), s.cfg.AllowedReturnOrigins, "")
	query := ""
	if returnTo != "" {
		query = "?return_to=" + url.QueryEscape(returnTo)
	}
	email := strings.TrimSpace(r.PostForm.Get("email"))
	p := loginPage{Email: email, ReturnTo: returnTo}
	addr, err := mail.ParseAddress(email)
	at := strings.LastIndexByte(email, '@')
	if err != nil || addr.Address != email || at < 0 {
		p.Error = "Please enter your work email address."
		s.renderLogin(w, r, http.StatusBadRequest, p)
		return
	}
	conns, err := s.reg.store.ConnectionsByDomain(r.Context(), strings.ToLower(email[at+1:]))
	if err != nil {
		s.fail(w, r, pageUnavailable, "home-realm discovery", "err", err)
		return
	}
	orgs := map[string]bool{}
	for _, c := range conns {
		if c.Protocol != string(events.ProtocolSAML) && c.Protocol != string(events.ProtocolOIDC) {
			continue
		}
		orgs[c.OrganizationID] = true
		p.Choices = append(p.Choices, choice{Name: cmp.Or(c.DisplayName, c.ID), org: c.OrganizationID,
			URL: "/" + c.Protocol + "/" + url.PathEscape(c.OrganizationID) + "/" + url.PathEscape(c.ID) + "/login" + query})
	}
	if len(orgs) > 1 {
		// A domain verified for several organisations must not send one's
		// people to another's IdP.
		s.log.ErrorContext(r.Context(), "domain verified for several organisations; discovery refused", "domain", email[at+1:], "organisations", len(orgs))
		p.Choices, p.Error = nil, "Single sign-on for "+email[at+1:]+" is not set up unambiguously. Please ask your administrator."
		s.renderLogin(w, r, http.StatusConflict, p)
		return
	}
	switch len(p.Choices) {
	case 0:
		p.Error = "Single sign-on is not set up for " + email[at+1:] + ". Please check the address, or ask your administrator."
		s.renderLogin(w, r, http.StatusNotFound, p)
	case 1:
		http.Redirect(w, r, p.Choices[0].URL, http.StatusSeeOther)
	default:
		// One organisation offers several connections: name them as its
		// administrators did (display_name), under the organisation's name.
		p.Organization = p.Choices[0].org
		if org, err := s.organization(r.Context(), p.Choices[0].org); err == nil {
			p.Organization = cmp.Or(org.Name, org.ID)
		} else {
			s.log.WarnContext(r.Context(), "sign-in chooser: cannot read the organisation; showing its id", "org", p.Choices[0].org, "err", err)
		}
		s.renderLogin(w, r, http.StatusOK, p)
	}
}

func (s *Server) renderLogin(w http.ResponseWriter, r *http.Request, status int, p loginPage) {
	s.writeHTML(w, r, status, "login", p)
}
