package scim

import (
	"bytes"
	"encoding/json"
	"net/http"
	"slices"
)

// listResponseID is the schema of a list's answer (RFC 7644 §3.4.2).
const listResponseID = "urn:ietf:params:scim:api:messages:2.0:ListResponse"

// bufferedResponse holds the library's answer to a GET so that two of its
// fields can be set right before it is sent:
//   - a ListResponse's itemsPerPage, which the library sets to the count
//     asked for, is the number of resources returned (RFC 7644 §3.4.2);
//   - ServiceProviderConfig's etag.supported, which the library always
//     sends false, is true: every resource has its ETag, and If-Match is
//     honoured.
type bufferedResponse struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (b *bufferedResponse) Header() http.Header         { return b.header }
func (b *bufferedResponse) WriteHeader(status int)      { b.status = status }
func (b *bufferedResponse) Write(p []byte) (int, error) { return b.body.Write(p) }

// send writes the answer to w, corrected; endpoint is the path after
// /scim/v2/.
func (b *bufferedResponse) send(w http.ResponseWriter, endpoint string) {
	body := b.body.Bytes()
	if b.status == http.StatusOK {
		if fixed, ok := correct(body, endpoint); ok {
			body = fixed
			w.Header().Del("Content-Length")
		}
	}
	w.WriteHeader(b.status)
	_, _ = w.Write(body)
}

// correct returns body corrected, or false when it needs nothing.
func correct(body []byte, endpoint string) ([]byte, bool) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber() // numbers pass through as written
	var doc map[string]any
	if dec.Decode(&doc) != nil {
		return nil, false
	}
	schemas, _ := doc["schemas"].([]any)
	switch {
	case endpoint == "ServiceProviderConfig":
		doc["etag"] = map[string]any{"supported": true}
	case slices.Contains(schemas, any(listResponseID)):
		resources, _ := doc["Resources"].([]any)
		doc["itemsPerPage"] = len(resources)
	default:
		return nil, false
	}
	out, err := json.Marshal(doc)
	if err != nil {
		return nil, false
	}
	return out, true
}
