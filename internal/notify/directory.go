package notify

import (
	"errors"
	"fmt"

	"github.com/jitprov/jitprov/internal/store"
)

// Directory holds every organisation's notification settings, with the
// webhook secrets read.
type Directory struct {
	orgs map[string]orgEntry
}

type orgEntry struct {
	name     string
	settings Settings
	secrets  map[string][]byte // webhook id → secret
}

// NewDirectory reads the webhook secrets of every organisation's settings
// (through getenv for secret_env) and reports every one missing at once.
// Organisations without settings get DefaultSettings.
func NewDirectory(orgs []store.Organization, settings map[string]Settings, getenv func(string) string) (*Directory, error) {
	d := &Directory{orgs: map[string]orgEntry{}}
	var errs []error
	for _, o := range orgs {
		s, ok := settings[o.ID]
		if !ok {
			s = DefaultSettings()
		}
		e := orgEntry{name: o.Name, settings: s, secrets: map[string][]byte{}}
		for _, w := range s.Webhooks {
			secret, err := w.ResolveSecret(getenv)
			if err != nil {
				errs = append(errs, fmt.Errorf("organisation %s: %w", o.ID, err))
				continue
			}
			e.secrets[w.ID] = secret
		}
		d.orgs[o.ID] = e
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return d, nil
}

// Settings returns the organisation's settings and display name; an
// organisation missing from the file gets the defaults (its admins).
func (d *Directory) Settings(org string) (Settings, string) {
	if e, ok := d.orgs[org]; ok {
		return e.settings, e.name
	}
	return DefaultSettings(), org
}

// webhook finds an organisation's webhook and its secret.
func (d *Directory) webhook(org, id string) (Webhook, []byte, bool) {
	e, ok := d.orgs[org]
	if !ok {
		return Webhook{}, nil, false
	}
	for _, w := range e.settings.Webhooks {
		if w.ID == id {
			return w, e.secrets[id], true
		}
	}
	return Webhook{}, nil, false
}
