package notify

import "time"

// OnFlushPass has the flusher of a notifier run with cfg call f after each
// of its passes, with the time the pass looked at and the batch messages
// it sent (one Job per message, before it is split by recipient). Passes
// run one at a time, so a pass reported at or after some time has also
// finished every pass before it.
func OnFlushPass(cfg *Config, f func(now time.Time, sent []Job)) { cfg.flushed = f }

var AlertLabel = alertLabel
