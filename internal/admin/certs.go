package admin

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/crewjam/saml"

	"github.com/jitprov/jitprov/events"
	"github.com/jitprov/jitprov/internal/connection"
	"github.com/jitprov/jitprov/internal/edge/samlsp"
	"github.com/jitprov/jitprov/internal/store"
)

// WarnDays is how close to its expiry an IdP certificate gets a warning
// badge.
const WarnDays = 30

// CertInfo is an IdP signing certificate as the connections page shows it.
type CertInfo struct {
	Subject     string    `json:"subject"`
	Fingerprint string    `json:"fingerprint_sha256"`
	NotAfter    time.Time `json:"not_after"`
	DaysLeft    int       `json:"days_left"`
	Expired     bool      `json:"expired"`
	// Warning: it expires within WarnDays (or has expired).
	Warning bool `json:"warning"`
}

// ConnectionInfo is a connection with its IdP's signing certificates
// (SAML; none for OIDC, whose keys rotate under the provider's control).
type ConnectionInfo struct {
	store.Connection
	Certificates []CertInfo
	// CertError says why the certificates could not be read.
	CertError string
}

// metadataCache keeps fetched IdP metadata for a while: a page view must
// not fetch every IdP's metadata.
type metadataCache struct {
	mu      sync.Mutex
	client  *http.Client
	ttl     time.Duration
	entries map[string]metadataEntry
}

type metadataEntry struct {
	md  *saml.EntityDescriptor
	err error
	at  time.Time
}

func (m *metadataCache) get(ctx context.Context, url string, now time.Time) (*saml.EntityDescriptor, error) {
	m.mu.Lock()
	e, ok := m.entries[url]
	m.mu.Unlock()
	if ok && now.Sub(e.at) < m.ttl {
		return e.md, e.err
	}
	md, err := m.fetch(ctx, url)
	m.mu.Lock()
	m.entries[url] = metadataEntry{md: md, err: err, at: now}
	m.mu.Unlock()
	return md, err
}

func (m *metadataCache) fetch(ctx context.Context, url string) (*saml.EntityDescriptor, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := m.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetch the IdP's metadata: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("fetch the IdP's metadata: %s answered %s", req.URL.Host, resp.Status)
	}
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("read the IdP's metadata: %w", err)
	}
	return connection.ParseIDPMetadata(raw)
}

// Connections lists an organisation's connections with the expiry of
// their IdP signing certificates.
func (c *Core) Connections(ctx context.Context, p Principal, orgID string) ([]ConnectionInfo, error) {
	var conns []store.Connection
	err := c.inTx(ctx, p, orgID, false, func(tx store.Tx, org store.Organization) error {
		var err error
		conns, err = tx.Connections(ctx, org.ID)
		return err
	})
	if err != nil {
		return nil, err
	}
	now := c.now()
	out := make([]ConnectionInfo, 0, len(conns))
	for _, sc := range conns {
		info := ConnectionInfo{Connection: sc}
		if sc.Protocol == string(events.ProtocolSAML) {
			certs, err := c.samlCertificates(ctx, sc, now)
			info.Certificates = certs
			if err != nil {
				info.CertError = err.Error()
			}
		}
		out = append(out, info)
	}
	return out, nil
}

func (c *Core) samlCertificates(ctx context.Context, sc store.Connection, now time.Time) ([]CertInfo, error) {
	s, err := connection.DecodeSAML(sc.Settings)
	if err != nil {
		return nil, err
	}
	var md *saml.EntityDescriptor
	if s.IDPMetadataURL != "" {
		md, err = c.metadata.get(ctx, s.IDPMetadataURL, now)
	} else {
		md, err = s.LocalIDPMetadata()
	}
	if err != nil {
		return nil, err
	}
	certs, err := samlsp.SigningCertificates(md)
	var out []CertInfo
	for _, cert := range certs {
		sum := sha256.Sum256(cert.Raw)
		left := int(cert.NotAfter.Sub(now).Hours() / 24)
		expired := now.After(cert.NotAfter)
		if expired {
			left = 0
		}
		out = append(out, CertInfo{Subject: cert.Subject.String(), Fingerprint: hex.EncodeToString(sum[:]), NotAfter: cert.NotAfter.UTC(),
			DaysLeft: left, Expired: expired, Warning: expired || cert.NotAfter.Sub(now) <= WarnDays*24*time.Hour})
	}
	return out, err
}
