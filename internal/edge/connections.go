package edge

import (
	"context"
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/crewjam/saml"
	"go.opentelemetry.io/otel/trace"
	"golang.org/x/sync/errgroup"

	"github.com/jitprov/jitprov/events"
	"github.com/jitprov/jitprov/internal/connection"
	"github.com/jitprov/jitprov/internal/edge/samlsp"
	"github.com/jitprov/jitprov/internal/store"
	"github.com/jitprov/jitprov/internal/telemetry"
)

// errUnknownConnection: no such organisation or SAML connection.
var errUnknownConnection = errors.New("unknown connection")

// maxMetadataBytes bounds an IdP metadata document.
const maxMetadataBytes = 1 << 20

// conn is a connection ready to serve: its organisation, and the
// settings and relying party of its protocol.
type conn struct {
	org    store.Organization
	id     string
	loaded time.Time
	saml   *samlSide // for protocol saml
	oidc   *oidcSide // for protocol oidc
}

type samlSide struct {
	settings connection.SAML
	sp       *samlsp.SP
	spCert   *x509.Certificate      // the SP's certificate (its own key pair's, or the edge's default)
	idp      *saml.EntityDescriptor // the IdP's metadata sp was built on; read-only
}

// registry builds each connection's service provider from the store and
// keeps it for refresh; when a metadata refresh fails, the last good
// service provider goes on serving.
type registry struct {
	store     store.Store
	spKey     *tls.Certificate // used by connections without a key pair of their own
	publicURL url.URL
	client    *http.Client
	tracer    trace.TracerProvider // of the requests to the IdPs
	refresh   time.Duration
	log       *slog.Logger
	// deriveEntityIDs serves a SAML connection without sp_entity_id under
	// the URL of its metadata (development mode); otherwise such a
	// connection is a configuration error (a loadError, not transient).
	deriveEntityIDs bool

	mu      sync.Mutex
	conns   map[string]*conn
	unknown map[string]time.Time // keys recently found unknown
}

// Retry bounds: a connection whose refresh failed is retried after
// refreshRetry, not at every request; an unknown connection is looked up
// again after unknownTTL.
const (
	refreshRetry = time.Minute
	unknownTTL   = 30 * time.Second
	maxUnknown   = 10_000 // unknown connections remembered at most
)

var connIDPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,127}$`)

// newRegistry returns a registry whose requests to the IdPs (SAML metadata,
// OIDC discovery, JWKS, token and userinfo endpoints) are client spans of
// tp (nil: of the provider of the span in the request's context).
func newRegistry(s store.Store, spKey *tls.Certificate, publicURL url.URL, metadataTimeout, refresh time.Duration,
	tp trace.TracerProvider, log *slog.Logger) *registry {
	return &registry{
		store: s, spKey: spKey, publicURL: publicURL, refresh: refresh, log: log, tracer: tp,
		conns: map[string]*conn{}, unknown: map[string]time.Time{},
		// Never http.DefaultClient: a metadata fetch must time out, and may
		// follow only a few redirects, all to https.
		client: &http.Client{Timeout: metadataTimeout, Transport: telemetry.HTTPTransport(nil, tp, "idp-metadata", telemetry.RedactQuery), CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) >= 3 {
				return errors.New("too many redirects")
			}
			if req.URL.Scheme != "https" {
				return fmt.Errorf("redirect to %s refused: IdP metadata is fetched over https only", req.URL.Redacted())
			}
			return nil
		}},
	}
}

func connKey(org, conn string) string { return org + "/" + conn }

// get returns the connection, loading or refreshing it when due.
func (r *registry) get(ctx context.Context, org, connID string) (*conn, error) {
	if !events.ValidOrganizationID(org) || !connIDPattern.MatchString(connID) {
		return nil, errUnknownConnection
	}
	key := connKey(org, connID)
	r.mu.Lock()
	cached := r.conns[key]
	unknownAt, isUnknown := r.unknown[key]
	r.mu.Unlock()
	if cached != nil && time.Since(cached.loaded) < r.refresh {
		return cached, nil
	}
	if isUnknown && time.Since(unknownAt) < unknownTTL {
		return nil, errUnknownConnection
	}
	fresh, err := r.load(ctx, org, connID)
	r.mu.Lock()
	defer r.mu.Unlock()
	switch {
	case errors.Is(err, errUnknownConnection):
		delete(r.conns, key) // removed from the store: stop serving it
		if len(r.unknown) >= maxUnknown {
			// Anyone can name connections that do not exist: forget the
			// oldest answers rather than grow without bound.
			for k, at := range r.unknown {
				if time.Since(at) >= unknownTTL {
					delete(r.unknown, k)
				}
			}
			if len(r.unknown) >= maxUnknown {
				clear(r.unknown)
			}
		}
		r.unknown[key] = time.Now()
		return nil, err
	case err != nil && cached != nil:
		r.log.WarnContext(ctx, "refreshing the connection failed; serving the last good copy, retrying in a minute",
			"org", org, "connection", connID, "err", err)
		retry := *cached
		retry.loaded = time.Now().Add(refreshRetry - r.refresh)
		r.conns[key] = &retry
		return &retry, nil
	case err != nil:
		return nil, err
	}
	delete(r.unknown, key)
	r.conns[key] = fresh
	return fresh, nil
}

// reloadConcurrency bounds the connections reload loads at once.
const reloadConcurrency = 8

// reload loads every connection served so far again, now — its settings
// from the store, its IdP metadata from its URL or file — instead of at
// its next refresh, and forgets the connections found unknown (one just
// added to the store is looked up at its next request). A connection
// that fails to load keeps being served from its last good copy, as when
// a refresh fails; its error is returned, with the others. It returns how
// many connections were loaded.
func (r *registry) reload(ctx context.Context) (int, error) {
	r.mu.Lock()
	keys := slices.Sorted(maps.Keys(r.conns))
	clear(r.unknown)
	r.mu.Unlock()
	var (
		mu     sync.Mutex
		errs   []error
		loaded int
	)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(reloadConcurrency)
	for _, key := range keys {
		orgID, connID, _ := strings.Cut(key, "/")
		g.Go(func() error {
			fresh, err := r.load(gctx, orgID, connID)
			r.mu.Lock()
			switch {
			case errors.Is(err, errUnknownConnection):
				delete(r.conns, key) // removed from the store: stop serving it
			case err == nil:
				r.conns[key] = fresh
			}
			r.mu.Unlock()
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				loaded++
			case !errors.Is(err, errUnknownConnection):
				errs = append(errs, err)
			}
			return nil
		})
	}
	_ = g.Wait()
	return loaded, errors.Join(errs...)
}

func (r *registry) load(ctx context.Context, orgID, connID string) (*conn, error) {
	var org store.Organization
	var c store.Connection
	err := r.store.InTx(ctx, func(ctx context.Context, tx store.Tx) error {
		var err error
		if org, err = tx.Organization(ctx, orgID); err != nil {
			return err
		}
		c, err = tx.Connection(ctx, orgID, connID)
		return err
	})
	if errors.Is(err, store.ErrNotFound) {
		return nil, errUnknownConnection
	} else if err != nil {
		return nil, &loadError{transient: true, err: err}
	}
	var loaded *conn
	switch c.Protocol {
	case string(events.ProtocolSAML):
		loaded, err = r.loadSAML(ctx, org, c)
	case string(events.ProtocolOIDC):
		loaded, err = r.loadOIDC(ctx, org, c)
	default:
		return nil, errUnknownConnection
	}
	if err != nil {
		return nil, newLoadError(c.Protocol, err)
	}
	return loaded, nil
}

func (r *registry) loadSAML(ctx context.Context, org store.Organization, c store.Connection) (*conn, error) {
	orgID, connID := org.ID, c.ID
	settings, problems := connection.CheckSAML(c.Settings, org.Roles)
	if len(problems) > 0 {
		return nil, fmt.Errorf("connection %s/%s: settings: %w", orgID, connID, connection.ProblemList(problems))
	}
	entityID, err := r.spEntityID(settings, orgID, connID)
	if err != nil {
		return nil, err
	}
	md, err := r.metadata(ctx, settings)
	if err != nil {
		return nil, fmt.Errorf("connection %s/%s: IdP metadata: %w", orgID, connID, err)
	}
	base := r.publicURL.JoinPath("saml", orgID, connID)
	cfg := samlsp.Config{
		EntityID:               entityID,
		ACSURL:                 *base.JoinPath("acs"),
		MetadataURL:            *base.JoinPath("metadata"),
		IDPMetadata:            md,
		AllowIDPInitiated:      settings.AllowIDPInitiated,
		AllowUnsignedAssertion: !settings.SignedAssertionRequired(),
		AllowSHA1:              settings.AllowSHA1,
		ClockSkew:              settings.Skew(),
	}
	if cfg.ClockSkew == 0 { // clock_skew: 0s, not the default
		cfg.ClockSkew = samlsp.NoClockSkew
	}
	pair := r.spKey
	if own, err := settings.SPKeyPair(); err != nil {
		return nil, fmt.Errorf("connection %s/%s: SP key pair: %w", orgID, connID, err)
	} else if own != nil {
		pair = own
	}
	if pair == nil {
		return nil, fmt.Errorf("connection %s/%s: no SP key pair: set sp_key_file and sp_cert_file, or the edge's default (JITPROV_EDGE_SP_KEY_FILE, JITPROV_EDGE_SP_CERT_FILE)", orgID, connID)
	}
	signer, ok := pair.PrivateKey.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("connection %s/%s: the SP key is not a signing key", orgID, connID)
	}
	cfg.Key, cfg.Certificate = signer, pair.Leaf
	sp, err := samlsp.New(cfg)
	if err != nil {
		return nil, fmt.Errorf("connection %s/%s: %w", orgID, connID, err)
	}
	return &conn{org: org, id: connID, loaded: time.Now(), saml: &samlSide{settings: settings, sp: sp, spCert: pair.Leaf, idp: md}}, nil
}

// spEntityID is the connection's SP entity id: sp_entity_id, pinned in
// its settings. Persistent NameIDs are keyed by it, so it must not follow
// the edge's public URL, which moves (another host, http to https): that
// would re-key every person of the connection. Only in development mode
// does a connection without one get the URL of its metadata, as every
// connection did before sp_entity_id was required; elsewhere the error
// names that value, which the IdP has in the metadata it imported.
func (r *registry) spEntityID(settings connection.SAML, orgID, connID string) (string, error) {
	if settings.SPEntityID != "" {
		return settings.SPEntityID, nil
	}
	derived := r.publicURL.JoinPath("saml", orgID, connID, "metadata").String()
	if r.deriveEntityIDs {
		return derived, nil
	}
	return "", fmt.Errorf("connection %s/%s: settings: no sp_entity_id, which sso-edge requires outside development mode "+
		"(a default following the edge's public URL would re-key every persistent NameID when the edge moves); "+
		"pin the entity id the IdP knows it by, which this edge has been using until now: sp_entity_id: %q, and apply the organisations file",
		orgID, connID, derived)
}

// metadata reads the IdP's metadata from the configured source, and
// checks it as `provisioner check` does.
func (r *registry) metadata(ctx context.Context, s connection.SAML) (*saml.EntityDescriptor, error) {
	if s.IDPMetadataURL == "" {
		return s.LocalIDPMetadata()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.IDPMetadataURL, nil)
	if err != nil {
		return nil, err
	}
	resp, err := r.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, statusError(s.IDPMetadataURL, resp)
	}
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxMetadataBytes+1))
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", s.IDPMetadataURL, err)
	}
	if len(raw) > maxMetadataBytes {
		return nil, fmt.Errorf("GET %s: metadata larger than %d bytes", s.IDPMetadataURL, maxMetadataBytes)
	}
	return connection.ParseIDPMetadata(raw)
}
