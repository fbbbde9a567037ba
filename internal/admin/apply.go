package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"time"

	"github.com/jitprov/jitprov/internal/store"
)

// Actions of a Change.
const (
	ActionCreate    = "create"
	ActionUpdate    = "update"
	ActionUnchanged = "unchanged"
	// ActionKept: in the store and not in the file. Apply never deletes:
	// an organisation or connection missing from a file is kept, and said.
	ActionKept = "kept"
)

// Change is what applying a file does to one organisation or connection.
type Change struct {
	Kind         string   `json:"kind"` // "organization" or "connection"
	Organization string   `json:"organization"`
	Connection   string   `json:"connection,omitempty"`
	Action       string   `json:"action"`
	Fields       []string `json:"fields,omitempty"` // what an update changes
}

// Apply creates or updates the organisations and connections of a file
// (config.ParseOrgFile's), or with dryRun only says what it would do; the
// changes it returns are what it does. Only a principal of every
// organisation may apply. Nothing is ever deleted: what the store has and
// the file lacks is reported as kept.
func (c *Core) Apply(ctx context.Context, p Principal, orgs []store.Organization, conns []store.Connection, dryRun bool) ([]Change, error) {
	if !p.global() || (!dryRun && !p.Write) {
		return nil, fmt.Errorf("%w: applying an organisations file takes an operator's write access to every organisation", ErrForbidden)
	}
	current, err := c.store.Organizations(ctx)
	if err != nil {
		return nil, mapErr(err)
	}
	currentConns, err := c.store.Connections(ctx, "")
	if err != nil {
		return nil, mapErr(err)
	}
	changes := diff(current, currentConns, orgs, conns)
	if dryRun {
		return changes, nil
	}
	if err := c.store.ApplyOrganizations(ctx, orgs, conns); err != nil {
		return nil, mapErr(err)
	}
	var summary []string
	for _, ch := range changes {
		if ch.Action != ActionUnchanged {
			summary = append(summary, fmt.Sprintf("%s %s/%s", ch.Action, ch.Organization, ch.Connection))
		}
	}
	err = c.store.InTx(ctx, func(ctx context.Context, tx store.Tx) error {
		return tx.AppendAudit(ctx, store.AuditEntry{ActorType: p.Kind, ActorID: p.ID, ActorName: p.Name,
			Action: "organizations.apply", Details: map[string]any{"changes": summary}})
	})
	return changes, mapErr(err)
}

// diff compares the file's organisations and connections with the store's.
func diff(curOrgs []store.Organization, curConns []store.Connection, orgs []store.Organization, conns []store.Connection) []Change {
	var out []Change
	byOrg := map[string]store.Organization{}
	for _, o := range curOrgs {
		byOrg[o.ID] = o
	}
	type key struct{ org, id string }
	byConn := map[key]store.Connection{}
	for _, c := range curConns {
		byConn[key{c.OrganizationID, c.ID}] = c
	}
	inFile := map[string]bool{}
	connInFile := map[key]bool{}
	for _, o := range orgs {
		inFile[o.ID] = true
		ch := Change{Kind: "organization", Organization: o.ID, Action: ActionCreate}
		if cur, ok := byOrg[o.ID]; ok {
			ch.Fields = orgFields(cur, o)
			ch.Action = ActionUpdate
			if len(ch.Fields) == 0 {
				ch.Action = ActionUnchanged
			}
		}
		out = append(out, ch)
		for _, c := range conns {
			if c.OrganizationID != o.ID {
				continue
			}
			k := key{c.OrganizationID, c.ID}
			connInFile[k] = true
			cc := Change{Kind: "connection", Organization: o.ID, Connection: c.ID, Action: ActionCreate}
			if cur, ok := byConn[k]; ok {
				cc.Fields = connFields(cur, c)
				cc.Action = ActionUpdate
				if len(cc.Fields) == 0 {
					cc.Action = ActionUnchanged
				}
			}
			out = append(out, cc)
		}
	}
	for _, o := range curOrgs {
		if !inFile[o.ID] {
			out = append(out, Change{Kind: "organization", Organization: o.ID, Action: ActionKept})
		}
	}
	for _, c := range curConns {
		if k := (key{c.OrganizationID, c.ID}); !connInFile[k] {
			out = append(out, Change{Kind: "connection", Organization: c.OrganizationID, Connection: c.ID, Action: ActionKept})
		}
	}
	return out
}

func orgFields(a, b store.Organization) []string {
	var f []string
	add := func(name string, same bool) {
		if !same {
			f = append(f, name)
		}
	}
	norm := func(s []string) []string {
		if len(s) == 0 {
			return nil
		}
		return s
	}
	add("name", a.Name == b.Name)
	add("max_seats", a.MaxSeats == b.MaxSeats)
	add("roles", slices.Equal(a.Roles, b.Roles))
	add("default_role", a.DefaultRole == b.DefaultRole)
	add("jit_role_ceiling", a.JITRoleCeiling == b.JITRoleCeiling)
	add("update_policy", a.UpdatePolicy == b.UpdatePolicy)
	add("link_by_email", a.LinkByEmail == b.LinkByEmail)
	add("verified_domains", slices.Equal(norm(a.VerifiedDomains), norm(b.VerifiedDomains)))
	add("seat_warning_percent", a.SeatWarningPercent == b.SeatWarningPercent)
	add("landing_url", a.LandingURL == b.LandingURL)
	add("initial_admins", slices.Equal(norm(a.InitialAdmins), norm(b.InitialAdmins)))
	aNew, aFull := a.HoldSettings()
	bNew, bFull := b.HoldSettings()
	add("new_people", aNew == bNew)
	add("when_full", aFull == bFull)
	add("inactive_after", a.InactiveAfter/time.Second == b.InactiveAfter/time.Second) // stored to the second
	// Each field whose owner changes, named as the file does
	// (field_owners.email, field_owners.attributes.department).
	keys := slices.Sorted(maps.Keys(a.FieldOwners))
	for k := range b.FieldOwners {
		if _, ok := a.FieldOwners[k]; !ok {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	for _, k := range keys {
		add("field_owners."+k, a.FieldOwners[k] == b.FieldOwners[k])
	}
	return f
}

func connFields(a, b store.Connection) []string {
	var f []string
	if a.Protocol != b.Protocol {
		f = append(f, "protocol")
	}
	if a.DisplayName != b.DisplayName {
		f = append(f, "display_name")
	}
	if a.Replaces != b.Replaces {
		f = append(f, "replaces")
	}
	if !sameJSON(a.Settings, b.Settings) {
		f = append(f, "settings")
	}
	return f
}

// sameJSON compares two JSON documents by value (stores may reorder keys
// and drop spaces); empty is {}.
func sameJSON(a, b []byte) bool {
	if len(bytes.TrimSpace(a)) == 0 {
		a = []byte("{}")
	}
	if len(bytes.TrimSpace(b)) == 0 {
		b = []byte("{}")
	}
	var va, vb any
	if json.Unmarshal(a, &va) != nil || json.Unmarshal(b, &vb) != nil {
		return bytes.Equal(a, b)
	}
	return reflect.DeepEqual(va, vb)
}
