package provisioner

import (
	"context"
	"time"

	"github.com/jitprov/jitprov/events"
)

// What the external tests (package provisioner_test, which may import
// internal/admin: admin imports this package) reach inside for.

// KeepKnown is keepKnown: consumer provisioner-known's loop.
var KeepKnown = keepKnown

// SetClock sets the clock d takes each decision's DecidedAt from.
func (d *Decider) SetClock(now func() time.Time) { d.now = now }

// Remember records the known identity of a decided login into k, as the
// service does after each decision.
func Remember(ctx context.Context, k KnownIdentities, id events.Identity, res events.ProvisioningResult) error {
	return (&Service{opts: Options{Known: k}}).remember(ctx, id, res)
}

// RecordSeen is recordSeen: consumer provisioner-seen's loop.
var RecordSeen = recordSeen
