package bus

import (
	"errors"
	"fmt"

	"github.com/nats-io/nats.go"
)

// MinServerVersion is the oldest nats-server jitprov's streams and
// consumers work on: consumers with several filter subjects came in 2.10.
const MinServerVersion = "2.10.0"

// ErrServerTooOld is CheckServer's answer for a nats-server older than
// MinServerVersion: trying again does not help.
var ErrServerTooOld = errors.New("nats-server too old")

// CheckServer fails with ErrServerTooOld when the server nc is connected
// to is older than MinServerVersion, before anything is created on it.
// Not connected yet, it says nothing: the caller's first request fails
// and is tried again.
func CheckServer(nc *nats.Conn) error {
	v := nc.ConnectedServerVersion()
	if v == "" || versionAtLeast(v, MinServerVersion) {
		return nil
	}
	return fmt.Errorf("%w: the NATS server at %s runs nats-server %s; jitprov needs %s or later "+
		"(its consumers filter on several subjects). Upgrade the server, or point nats_url (JITPROV_NATS_URL) at one that is",
		ErrServerTooOld, nc.ConnectedUrlRedacted(), v, MinServerVersion)
}

// versionAtLeast compares two versions "major.minor.patch" (anything after
// the patch number, such as "-beta", is ignored); an unreadable v counts as
// new enough, leaving the server to refuse what it cannot do.
func versionAtLeast(v, min string) bool {
	var a, b [3]int
	if n, _ := fmt.Sscanf(v, "%d.%d.%d", &a[0], &a[1], &a[2]); n < 2 {
		return true
	}
	fmt.Sscanf(min, "%d.%d.%d", &b[0], &b[1], &b[2])
	for i := range a {
		if a[i] != b[i] {
			return a[i] > b[i]
		}
	}
	return true
}
