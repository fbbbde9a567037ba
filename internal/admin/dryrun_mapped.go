package admin

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"

	"github.com/jitprov/jitprov/events"
	"github.com/jitprov/jitprov/internal/connection"
	"github.com/jitprov/jitprov/internal/edge"
	"github.com/jitprov/jitprov/internal/edge/oidcrp"
	"github.com/jitprov/jitprov/internal/edge/samlsp"
	"github.com/jitprov/jitprov/internal/store"
)

// NotValidated is the caveat of a dry run from a SAML response or an ID
// token.
const NotValidated = "not validated: a dry run of the mapping only; a real login is validated first (signature, issuer, audience, time, replay)"

// MappedDryRun is a dry run from what an IdP sent: the identity the edge
// would map it to, and what JIT would decide for it.
type MappedDryRun struct {
	Identity events.Identity           `json:"identity"`
	Result   events.ProvisioningResult `json:"result"`
	// Warnings are what the mapping dropped or ignored (the edge logs them).
	Warnings []string `json:"warnings,omitempty"`
	Caveat   string   `json:"caveat"`
}

// DryRunSAML maps a SAML Response (base64 as posted to the ACS, or its
// XML), or a bare assertion, by connection connID's settings exactly as
// the edge maps a login, then tells what JIT would decide (DryRun). The
// response is NOT validated — no signature, audience, time or replay
// check — and an encrypted assertion cannot be read here (no SP key).
func (c *Core) DryRunSAML(ctx context.Context, p Principal, orgID, connID, response string) (MappedDryRun, error) {
	org, sc, err := c.dryRunConnection(ctx, p, orgID, connID, events.ProtocolSAML)
	if err != nil {
		return MappedDryRun{}, err
	}
	settings, problems := connection.CheckSAML(sc.Settings, org.Roles)
	if len(problems) > 0 {
		return MappedDryRun{}, invalid("connection_id", "the connection's settings: %v", connection.ProblemList(problems))
	}
	a, err := samlsp.ReadUnverified(response)
	if errors.Is(err, samlsp.ErrEncrypted) {
		return MappedDryRun{}, invalid("saml_response", "%v", err)
	} else if err != nil {
		return MappedDryRun{}, invalid("saml_response", "cannot read it: %v", err)
	}
	var w warnings
	id, err := edge.MapSAML(org.ID, sc.ID, settings, a, w.logger())
	if err != nil {
		return MappedDryRun{}, invalid("saml_response", "a login with it would be refused: %v", err)
	}
	return c.mappedDryRun(ctx, p, orgID, id, &w)
}

// DryRunOIDC maps the claims of an ID token (compact JWT), merged with a
// userinfo response when userinfo is not empty, by connection connID's
// settings exactly as the edge maps a login, then tells what JIT would
// decide (DryRun). The token is NOT verified — no signature, issuer,
// audience, nonce or time check.
func (c *Core) DryRunOIDC(ctx context.Context, p Principal, orgID, connID, idToken string, userinfo []byte) (MappedDryRun, error) {
	org, sc, err := c.dryRunConnection(ctx, p, orgID, connID, events.ProtocolOIDC)
	if err != nil {
		return MappedDryRun{}, err
	}
	settings, problems := connection.CheckOIDC(sc.Settings, org.Roles)
	if len(problems) > 0 {
		return MappedDryRun{}, invalid("connection_id", "the connection's settings: %v", connection.ProblemList(problems))
	}
	cl, err := oidcrp.UnverifiedClaims(idToken, userinfo)
	if err != nil {
		field := "id_token"
		if r := oidcrp.ReasonOf(err); r == oidcrp.ReasonUserinfo || r == oidcrp.ReasonUserinfoSub {
			field = "userinfo"
		}
		return MappedDryRun{}, invalid(field, "cannot read it: %v", err)
	}
	var w warnings
	id, err := edge.MapOIDC(org.ID, sc.ID, settings, cl, w.logger())
	if err != nil {
		return MappedDryRun{}, invalid("id_token", "a login with it would be refused: %v", err)
	}
	return c.mappedDryRun(ctx, p, orgID, id, &w)
}

// dryRunConnection reads connection connID of orgID, for a principal who
// may read the organisation, and checks its protocol.
func (c *Core) dryRunConnection(ctx context.Context, p Principal, orgID, connID string, proto events.Protocol) (store.Organization, store.Connection, error) {
	if connID == "" {
		return store.Organization{}, store.Connection{}, invalid("connection_id", "required with a %s input", proto)
	}
	var org store.Organization
	var sc store.Connection
	err := c.inTx(ctx, p, orgID, false, func(tx store.Tx, o store.Organization) error {
		org = o
		var err error
		sc, err = tx.Connection(ctx, o.ID, connID)
		if errors.Is(err, store.ErrNotFound) {
			return invalid("connection_id", "organisation %q has no connection %q", orgID, connID)
		}
		return err
	})
	if err != nil {
		return org, sc, err
	}
	if sc.Protocol != string(proto) {
		return org, sc, invalid("connection_id", "connection %q is %s, not %s", connID, sc.Protocol, proto)
	}
	return org, sc, nil
}

func (c *Core) mappedDryRun(ctx context.Context, p Principal, orgID string, id events.Identity, w *warnings) (MappedDryRun, error) {
	res, err := c.DryRun(ctx, p, orgID, id)
	if err != nil {
		return MappedDryRun{}, err
	}
	return MappedDryRun{Identity: id, Result: res, Warnings: w.list(), Caveat: NotValidated}, nil
}

// warnings collects what the mapping logs.
type warnings struct {
	mu  sync.Mutex
	msg []string
}

func (w *warnings) logger() *slog.Logger { return slog.New(warnHandler{w, nil}) }

func (w *warnings) list() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.msg...)
}

type warnHandler struct {
	w     *warnings
	attrs []slog.Attr
}

func (h warnHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelWarn }

func (h warnHandler) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	b.WriteString(r.Message)
	add := func(a slog.Attr) bool {
		fmt.Fprintf(&b, " %s=%v", a.Key, a.Value)
		return true
	}
	for _, a := range h.attrs {
		add(a)
	}
	r.Attrs(add)
	h.w.mu.Lock()
	h.w.msg = append(h.w.msg, b.String())
	h.w.mu.Unlock()
	return nil
}

func (h warnHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return warnHandler{h.w, append(append([]slog.Attr(nil), h.attrs...), as...)}
}

func (h warnHandler) WithGroup(string) slog.Handler { return h }
