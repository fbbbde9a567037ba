package testenv

import (
	"bytes"
	"compress/flate"
	"encoding/base64"
	"encoding/xml"
	"io"
	"net/http"
	"strings"

	"github.com/crewjam/saml"
)

// SPMetadataURL is where a test IdP (crewjam/saml's, whose
// ServiceProviderProvider gets r and the SP's entity id) fetches the
// metadata of the sso-edge SP that sent r: next to the ACS URL its
// AuthnRequest names, <edge>/saml/<org>/<connection>/metadata. sso-edge's
// entity ids are pinned, not URLs, and several edges of a test may serve
// one. Without an AuthnRequest (an IdP-initiated login) it is id itself,
// which the test then gives as a metadata URL.
func SPMetadataURL(r *http.Request, id string) string {
	deflated, err := base64.StdEncoding.DecodeString(r.URL.Query().Get("SAMLRequest"))
	if err != nil || len(deflated) == 0 {
		return id
	}
	raw, err := io.ReadAll(io.LimitReader(flate.NewReader(bytes.NewReader(deflated)), 1<<20))
	if err != nil {
		return id
	}
	var req saml.AuthnRequest
	if err := xml.Unmarshal(raw, &req); err != nil || !strings.HasSuffix(req.AssertionConsumerServiceURL, "/acs") {
		return id
	}
	return strings.TrimSuffix(req.AssertionConsumerServiceURL, "/acs") + "/metadata"
}
