package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jitprov/jitprov/internal/admin/client"
	"github.com/jitprov/jitprov/internal/cli"
	"github.com/jitprov/jitprov/internal/config"
)

// commands are the admin commands, in the order `jitprov help` lists them.
var commands = []*command{
	{name: "orgs list", summary: "The organisations the token may see, with their seats", max: 0, setup: orgsList},
	{name: "orgs get", args: "ORG", summary: "One organisation: seats, roles, policies, verified domains, connections", min: 1, max: 1, setup: orgsGet},
	{name: "connections list", args: "ORG", summary: "An organisation's connections with their IdP certificates' expiry (WARNING within 30 days)", min: 1, max: 1, setup: connectionsList},
	{name: "users list", args: "ORG", summary: "An organisation's users, newest first, a page at a time (--all: every page)", min: 1, max: 1, setup: usersList},
	{name: "users get", args: "ORG USER", summary: "One user: identities, role reviews, the decisions and admin actions about them", min: 2, max: 2, setup: usersGet},
	{name: "users suspend", args: "ORG USER", summary: "Stop a user signing in (the edge's fast path included); they keep their seat", min: 2, max: 2, setup: userAction("suspend")},
	{name: "users reactivate", args: "ORG USER", summary: "Let a suspended or deprovisioned user sign in again (a deprovisioned one takes a seat)", min: 2, max: 2, setup: userAction("reactivate")},
	{name: "users deprovision", args: "ORG USER", summary: "Remove a user's access and free their seat at once", min: 2, max: 2, setup: userAction("deprovision")},
	{name: "users approve", args: "ORG USER", summary: "Let a held sign-up in: they take a seat now (refused when none is free) and can sign in", min: 2, max: 2, setup: userAction("approve-signup")},
	{name: "users deny", args: "ORG USER --reason TEXT", summary: "Keep a held sign-up out (a reason is required); they never take a seat", min: 2, max: 2, setup: userAction("deny-signup")},
	{name: "users set-role", args: "ORG USER ROLE", summary: "Give a user another of the organisation's roles (never above the caller's)", min: 3, max: 3, setup: usersSetRole},
	{name: "users link", args: "ORG USER CONNECTION EXTERNAL_ID", summary: "Link an identity that is nobody's to a user (what the linking rules refuse)", min: 4, max: 4, setup: usersLink},
	{name: "users unlink", args: "ORG CONNECTION EXTERNAL_ID", summary: "Take an identity from its user; the user and their seat stay", min: 3, max: 3, setup: usersUnlink},
	{name: "reviews list", args: "ORG", summary: "Role reviews, pending first", min: 1, max: 1, setup: reviewsList},
	{name: "reviews approve", args: "ORG REVIEW", summary: "Give the user the role the review asks for", min: 2, max: 2, setup: reviewsApprove},
	{name: "reviews deny", args: "ORG REVIEW --reason TEXT", summary: "Close a review; the user keeps their role (a reason is required)", min: 2, max: 2, setup: reviewsDeny},
	{name: "audit", args: "ORG", summary: "The admin audit: who did what to whom, newest first", min: 1, max: 1, setup: auditList},
	{name: "conflicts", args: "ORG", summary: "Changes of people's fields that the fields' owners (field_owners) kept out, latest first", min: 1, max: 1, setup: conflictsList},
	{name: "decisions", args: "ORG", summary: "The provisioning log: every login's decision, newest first (why was Bob refused?)", min: 1, max: 1, setup: decisionsList},
	{name: "dry-run", args: "ORG -f IDENTITY.json | --connection ID --saml-response FILE | --connection ID --id-token FILE [--userinfo FILE]", summary: "What JIT would decide for a login of this identity (or SAML response, or ID token) now, writing nothing", min: 1, max: 1, setup: dryRun},
	{name: "apply", args: "-f ORGANIZATIONS.yaml", summary: "Create or update organisations and connections (--dry-run: only say what it would do); never deletes", max: 0, setup: apply},
	{name: "tokens list", summary: "API tokens (never their secrets)", max: 0, setup: tokensList},
	{name: "tokens create", args: "--name NAME --scope read|write|scim", summary: "Create an API token; its secret is printed this once", max: 0, setup: tokensCreate},
	{name: "tokens revoke", args: "TOKEN", summary: "Revoke a token at once", min: 1, max: 1, setup: tokensRevoke},
}

func orgsList(fs *flag.FlagSet) func(*env, []string) error {
	return func(e *env, _ []string) error {
		c, err := e.client()
		if err != nil {
			return err
		}
		orgs, err := c.Organizations(e.ctx)
		if err != nil {
			return err
		}
		return e.print(map[string]any{"organizations": orgs}, func(w io.Writer) error {
			if len(orgs) == 0 {
				e.note("No organisations: create them with `jitprov apply -f organizations.yaml`.")
				return nil
			}
			t := newTable("ID", "NAME", "SEATS", "DEFAULT ROLE", "ADMIN ROLE", "ROLES")
			for _, o := range orgs {
				t.add(o.ID, o.Name, seats(o), o.DefaultRole, o.AdminRole, list(o.Roles))
			}
			return t.write(w)
		})
	}
}

// owners lists field owners as field=owner, by field; "" for none.
func owners(m map[string]string) string {
	var out []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		out = append(out, k+"="+m[k])
	}
	return list(out)
}

func seats(o client.Organization) string {
	if o.MaxSeats <= 0 {
		return fmt.Sprintf("%d/unlimited", o.SeatsUsed)
	}
	return fmt.Sprintf("%d/%d", o.SeatsUsed, o.MaxSeats)
}

func orgsGet(fs *flag.FlagSet) func(*env, []string) error {
	var o orgArg
	o.flag(fs)
	return func(e *env, args []string) error {
		org, _, err := o.take(args)
		if err != nil {
			return err
		}
		c, err := e.client()
		if err != nil {
			return err
		}
		d, err := c.Organization(e.ctx, org)
		if err != nil {
			return err
		}
		return e.print(d, func(w io.Writer) error {
			if err := fields(w, "ID", d.ID, "Name", d.Name, "Seats", seats(d), "Roles", list(d.Roles),
				"Default role", d.DefaultRole, "JIT role ceiling", d.JITRoleCeiling, "Admin role", d.AdminRole,
				"Update policy", d.UpdatePolicy, "Link by email", d.LinkByEmail, "Verified domains", list(d.VerifiedDomains),
				"Seat warning", strconv.Itoa(d.SeatWarningPercent)+"%", "Landing URL", d.LandingURL,
				"Field owners", owners(d.FieldOwners)); err != nil {
				return err
			}
			fmt.Fprintln(w, "\nConnections:")
			if len(d.Connections) == 0 {
				fmt.Fprintln(w, "  none")
				return nil
			}
			t := newTable("ID", "PROTOCOL", "DISPLAY NAME", "REPLACES")
			for _, cn := range d.Connections {
				t.add(cn.ID, cn.Protocol, cn.DisplayName, cn.Replaces)
			}
			return t.write(w)
		})
	}
}

func connectionsList(fs *flag.FlagSet) func(*env, []string) error {
	var o orgArg
	o.flag(fs)
	return func(e *env, args []string) error {
		org, _, err := o.take(args)
		if err != nil {
			return err
		}
		c, err := e.client()
		if err != nil {
			return err
		}
		conns, err := c.Connections(e.ctx, org)
		if err != nil {
			return err
		}
		return e.print(map[string]any{"connections": conns}, func(w io.Writer) error {
			if len(conns) == 0 {
				e.note("Organisation %s has no connections.", org)
				return nil
			}
			t := newTable("ID", "PROTOCOL", "DISPLAY NAME", "CERTIFICATE", "EXPIRES", "DAYS LEFT", "STATUS")
			var unreadable []string
			for _, cn := range conns {
				switch {
				case cn.CertificateError != "":
					t.add(cn.ID, cn.Protocol, cn.DisplayName, "unreadable (see below)", "", "", "WARNING")
					unreadable = append(unreadable, fmt.Sprintf("%s: the IdP's certificates could not be read: %s", cn.ID, cn.CertificateError))
				case len(cn.Certificates) == 0:
					t.add(cn.ID, cn.Protocol, cn.DisplayName, "", "", "", "")
				}
				for _, cert := range cn.Certificates {
					status := "ok"
					switch {
					case cert.Expired:
						status = "EXPIRED"
					case cert.Warning:
						status = "WARNING"
					}
					t.add(cn.ID, cn.Protocol, cn.DisplayName, cert.Subject, when(cert.NotAfter), strconv.Itoa(cert.DaysLeft), status)
				}
			}
			if err := t.write(w); err != nil {
				return err
			}
			for _, u := range unreadable {
				fmt.Fprintln(w, u)
			}
			return nil
		})
	}
}

func usersList(fs *flag.FlagSet) func(*env, []string) error {
	var o orgArg
	o.flag(fs)
	var q client.UserQuery
	var since string
	var all bool
	fs.StringVar(&q.Search, "search", "", "a part of the email or a name (case-insensitive)")
	fs.StringVar(&q.Status, "status", "", "active, suspended or deprovisioned")
	fs.StringVar(&q.Role, "role", "", "users with this role")
	fs.StringVar(&q.Connection, "connection", "", "users with an identity through this connection")
	fs.StringVar(&q.CreatedBy, "created-by", "", "jit, admin or app")
	fs.StringVar(&since, "since", "", "users created since: an RFC 3339 time (2026-12-01T00:00:00Z), a date (2026-12-01) or an age (72h)")
	pageFlags(fs, "users", &q.Limit, &q.Cursor, &all)
	return func(e *env, args []string) error {
		org, _, err := o.take(args)
		if err != nil {
			return err
		}
		if q.CreatedSince, err = parseSince(since); err != nil {
			return err
		}
		c, err := e.client()
		if err != nil {
			return err
		}
		if all && q.Limit == 0 {
			q.Limit = 500
		}
		return paged[client.User]{noun: "users", none: "No users match.", table: userTable}.run(e, all, q.Cursor,
			func(cursor string) ([]client.User, string, error) {
				q.Cursor = cursor
				p, err := c.Users(e.ctx, org, q)
				return p.Users, p.Next, err
			},
			func(us []client.User, next string) any { return client.UserPage{Users: us, Next: next} })
	}
}

func userTable(us []client.User) *table {
	t := newTable("ID", "EMAIL", "NAME", "ROLE", "STATUS", "CREATED BY", "CREATED", "LAST LOGIN")
	for _, u := range us {
		t.add(u.ID, u.Email, name(u), u.Role, u.Status, u.CreatedBy, when(u.CreatedAt), when(u.LastLoginAt))
	}
	return t
}

// parseSince reads --since: RFC 3339, a date, or an age before now.
func parseSince(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, nil
	}
	if d, err := time.ParseDuration(s); err == nil && d > 0 {
		return time.Now().Add(-d), nil
	}
	return time.Time{}, fmt.Errorf("--since %q: want an RFC 3339 time (2026-12-01T00:00:00Z), a date (2026-12-01) or an age (72h)", s)
}

func name(u client.User) string {
	if u.DisplayName != "" {
		return u.DisplayName
	}
	return strings.TrimSpace(u.GivenName + " " + u.FamilyName)
}

func usersGet(fs *flag.FlagSet) func(*env, []string) error {
	var o orgArg
	o.flag(fs)
	return func(e *env, args []string) error {
		org, args, err := o.take(args)
		if err != nil {
			return err
		}
		c, err := e.client()
		if err != nil {
			return err
		}
		d, err := c.User(e.ctx, org, args[0])
		if err != nil {
			return err
		}
		return e.print(d, func(w io.Writer) error {
			u := d.User
			verified := "unverified"
			if u.EmailVerified {
				verified = "verified"
			}
			if err := fields(w, "ID", u.ID, "Organisation", u.OrganizationID, "Email", u.Email+" ("+verified+")", "Name", name(u),
				"Role", u.Role, "Status", u.Status, "Groups", list(u.Groups), "Created", when(u.CreatedAt)+" by "+u.CreatedBy,
				"Updated", when(u.UpdatedAt), "Last login", when(u.LastLoginAt)); err != nil {
				return err
			}
			section(w, "Identities", len(d.Identities))
			if len(d.Identities) > 0 {
				t := newTable("CONNECTION", "EXTERNAL ID", "LINKED BY", "FIRST SEEN", "LAST SEEN")
				for _, i := range d.Identities {
					t.add(i.ConnectionID, i.ExternalID, i.LinkedBy, when(i.FirstSeenAt), when(i.LastSeenAt))
				}
				t.write(w)
			}
			section(w, "Role reviews", len(d.Reviews))
			if len(d.Reviews) > 0 {
				reviewTable(d.Reviews).write(w)
			}
			section(w, "Decisions", len(d.Decisions))
			if len(d.Decisions) > 0 {
				decisionTable(d.Decisions).write(w)
			}
			section(w, "Admin actions", len(d.Audit))
			if len(d.Audit) > 0 {
				if err := auditTable(d.Audit).write(w); err != nil {
					return err
				}
			}
			if len(d.Conflicts) > 0 {
				section(w, "Changes kept out by the fields' owners", len(d.Conflicts))
				return conflictTable(d.Conflicts).write(w)
			}
			return nil
		})
	}
}

func section(w io.Writer, title string, n int) {
	if n == 0 {
		fmt.Fprintf(w, "\n%s: none\n", title)
		return
	}
	fmt.Fprintf(w, "\n%s:\n", title)
}

// past is how the table output says an action was done.
var past = map[string]string{"suspend": "suspended", "reactivate": "reactivated", "deprovision": "deprovisioned",
	"approve-signup": "approved", "deny-signup": "denied"}

func userAction(action string) func(fs *flag.FlagSet) func(*env, []string) error {
	return func(fs *flag.FlagSet) func(*env, []string) error {
		var o orgArg
		o.flag(fs)
		reason := fs.String("reason", "", "why, for the audit and the event")
		return func(e *env, args []string) error {
			org, args, err := o.take(args)
			if err != nil {
				return err
			}
			if action == "deny-signup" && strings.TrimSpace(*reason) == "" {
				return errors.New("deny takes a reason: --reason TEXT")
			}
			c, err := e.client()
			if err != nil {
				return err
			}
			do := map[string]func() (client.UserResult, error){
				"suspend":        func() (client.UserResult, error) { return c.Suspend(e.ctx, org, args[0], *reason) },
				"reactivate":     func() (client.UserResult, error) { return c.Reactivate(e.ctx, org, args[0], *reason) },
				"deprovision":    func() (client.UserResult, error) { return c.Deprovision(e.ctx, org, args[0], *reason) },
				"approve-signup": func() (client.UserResult, error) { return c.ApproveSignup(e.ctx, org, args[0]) },
				"deny-signup":    func() (client.UserResult, error) { return c.DenySignup(e.ctx, org, args[0], *reason) },
			}[action]
			res, err := do()
			if err != nil {
				return err
			}
			return e.print(res, func(w io.Writer) error {
				if !res.Changed {
					_, err := fmt.Fprintf(w, "%s: unchanged (status %s, role %s)\n", who(res.User), res.User.Status, res.User.Role)
					return err
				}
				_, err := fmt.Fprintf(w, "%s: %s (status %s, role %s)\n", who(res.User), past[action], res.User.Status, res.User.Role)
				return err
			})
		}
	}
}

func who(u client.User) string {
	if u.Email == "" {
		return "user " + u.ID
	}
	return fmt.Sprintf("user %s (%s)", u.ID, u.Email)
}

func usersSetRole(fs *flag.FlagSet) func(*env, []string) error {
	var o orgArg
	o.flag(fs)
	return func(e *env, args []string) error {
		org, args, err := o.take(args)
		if err != nil {
			return err
		}
		c, err := e.client()
		if err != nil {
			return err
		}
		res, err := c.SetRole(e.ctx, org, args[0], args[1])
		if err != nil {
			return err
		}
		return printUserResult(e, res, "role "+res.User.Role)
	}
}

func printUserResult(e *env, res client.UserResult, what string) error {
	return e.print(res, func(w io.Writer) error {
		state := "changed"
		if !res.Changed {
			state = "unchanged"
		}
		_, err := fmt.Fprintf(w, "%s: %s, %s\n", who(res.User), state, what)
		return err
	})
}

func usersLink(fs *flag.FlagSet) func(*env, []string) error {
	var o orgArg
	o.flag(fs)
	return func(e *env, args []string) error {
		org, args, err := o.take(args)
		if err != nil {
			return err
		}
		c, err := e.client()
		if err != nil {
			return err
		}
		res, err := c.Link(e.ctx, org, args[0], args[1], args[2])
		if err != nil {
			return err
		}
		return printUserResult(e, res, fmt.Sprintf("identity %s/%s linked", args[1], args[2]))
	}
}

func usersUnlink(fs *flag.FlagSet) func(*env, []string) error {
	var o orgArg
	o.flag(fs)
	return func(e *env, args []string) error {
		org, args, err := o.take(args)
		if err != nil {
			return err
		}
		c, err := e.client()
		if err != nil {
			return err
		}
		res, err := c.Unlink(e.ctx, org, args[0], args[1])
		if err != nil {
			return err
		}
		return printUserResult(e, res, fmt.Sprintf("identity %s/%s unlinked (the user and their seat stay)", args[0], args[1]))
	}
}

func reviewTable(rs []client.Review) *table {
	t := newTable("ID", "USER", "CURRENT ROLE", "REQUESTED ROLE", "STATUS", "CREATED", "DECIDED", "DECIDED BY", "REASON")
	for _, r := range rs {
		t.add(r.ID, r.UserID, r.CurrentRole, r.RequestedRole, r.Status, when(r.CreatedAt), when(r.DecidedAt), r.DecidedBy, r.Reason)
	}
	return t
}

func reviewsList(fs *flag.FlagSet) func(*env, []string) error {
	var o orgArg
	o.flag(fs)
	var q client.ReviewQuery
	fs.StringVar(&q.Status, "status", "", "pending, approved, denied or expired")
	fs.StringVar(&q.UserID, "user", "", "one user's reviews")
	fs.IntVar(&q.Limit, "limit", 0, "at most this many, 1 to 500 (default 50)")
	return func(e *env, args []string) error {
		org, _, err := o.take(args)
		if err != nil {
			return err
		}
		c, err := e.client()
		if err != nil {
			return err
		}
		rs, err := c.Reviews(e.ctx, org, q)
		if err != nil {
			return err
		}
		if rs == nil {
			rs = []client.Review{}
		}
		return e.print(map[string]any{"reviews": rs}, func(w io.Writer) error {
			if len(rs) == 0 {
				e.note("No role reviews match.")
				return nil
			}
			return reviewTable(rs).write(w)
		})
	}
}

func reviewsApprove(fs *flag.FlagSet) func(*env, []string) error {
	var o orgArg
	o.flag(fs)
	return func(e *env, args []string) error {
		org, args, err := o.take(args)
		if err != nil {
			return err
		}
		c, err := e.client()
		if err != nil {
			return err
		}
		res, err := c.Approve(e.ctx, org, args[0])
		if err != nil {
			return err
		}
		return e.print(res, func(w io.Writer) error {
			_, err := fmt.Fprintf(w, "review %s approved: %s now has role %s\n", res.Review.ID, who(res.User), res.User.Role)
			return err
		})
	}
}

func reviewsDeny(fs *flag.FlagSet) func(*env, []string) error {
	var o orgArg
	o.flag(fs)
	reason := fs.String("reason", "", "why (required): the person's admin and the audit read it")
	return func(e *env, args []string) error {
		org, args, err := o.take(args)
		if err != nil {
			return err
		}
		if strings.TrimSpace(*reason) == "" {
			return errors.New("deny takes a reason: --reason TEXT")
		}
		c, err := e.client()
		if err != nil {
			return err
		}
		res, err := c.Deny(e.ctx, org, args[0], *reason)
		if err != nil {
			return err
		}
		return e.print(res, func(w io.Writer) error {
			_, err := fmt.Fprintf(w, "review %s denied: %s keeps role %s\n", res.Review.ID, who(res.User), res.User.Role)
			return err
		})
	}
}

func auditTable(es []client.AuditEntry) *table {
	t := newTable("SEQ", "AT", "ACTOR", "ACTION", "TARGET", "DETAILS")
	for _, a := range es {
		actor := a.ActorType + ":" + a.ActorID
		if a.ActorName != "" {
			actor += " (" + a.ActorName + ")"
		}
		details := ""
		if len(a.Details) > 0 {
			raw, _ := json.Marshal(a.Details)
			details = string(raw)
		}
		t.add(strconv.FormatInt(a.Seq, 10), when(a.At), actor, a.Action, a.Target, details)
	}
	return t
}

// pageFlags declares a list's paging flags: --limit, --cursor and --all.
func pageFlags(fs *flag.FlagSet, noun string, limit *int, cursor *string, all *bool) {
	fs.IntVar(limit, "limit", 0, noun+" per page, 1 to 500 (default 50)")
	fs.StringVar(cursor, "cursor", "", "the page after the one that printed this cursor")
	fs.BoolVar(all, "all", false, "every page")
}

// paged prints a list the API serves in pages of T.
type paged[T any] struct {
	noun  string // what the list holds, for the note on the next page: "users"
	none  string // the note when nothing matches
	table func([]T) *table
}

// run fetches the page at cursor — and, with all, every page after it —
// and prints what it got: as data, the page that wrap makes of it (with
// the cursor of the next page, "" after the last); as a table, with a note
// on how to get the next page. fetch gets one page and the next cursor.
func (l paged[T]) run(e *env, all bool, cursor string, fetch func(cursor string) ([]T, string, error), wrap func(items []T, next string) any) error {
	items := []T{}
	var next string
	for {
		got, n, err := fetch(cursor)
		if err != nil {
			return err
		}
		items, next = append(items, got...), n
		if !all || next == "" {
			break
		}
		cursor = next
	}
	return e.print(wrap(items, next), func(w io.Writer) error {
		if len(items) == 0 {
			e.note("%s", l.none)
			return nil
		}
		if err := l.table(items).write(w); err != nil {
			return err
		}
		if next != "" {
			e.note("More %s: add --cursor %s, or --all for every page.", l.noun, next)
		}
		return nil
	})
}

func auditList(fs *flag.FlagSet) func(*env, []string) error {
	var o orgArg
	o.flag(fs)
	var q client.AuditQuery
	var all bool
	fs.StringVar(&q.Target, "target", "", "the actions on this target (a user id, a review id)")
	pageFlags(fs, "entries", &q.Limit, &q.Cursor, &all)
	return func(e *env, args []string) error {
		org, _, err := o.take(args)
		if err != nil {
			return err
		}
		c, err := e.client()
		if err != nil {
			return err
		}
		return paged[client.AuditEntry]{noun: "entries", none: "No admin actions match.", table: auditTable}.run(e, all, q.Cursor,
			func(cursor string) ([]client.AuditEntry, string, error) {
				q.Cursor = cursor
				p, err := c.Audit(e.ctx, org, q)
				return p.Entries, p.Next, err
			},
			func(es []client.AuditEntry, next string) any { return client.AuditPage{Entries: es, Next: next} })
	}
}

func conflictsList(fs *flag.FlagSet) func(*env, []string) error {
	var o orgArg
	o.flag(fs)
	var q client.ConflictQuery
	var all bool
	fs.StringVar(&q.User, "user", "", "one user's conflicts (a user id)")
	fs.StringVar(&q.Field, "field", "", "one field's conflicts: email, given_name, family_name, display_name, groups, role, attributes.NAME")
	pageFlags(fs, "conflicts", &q.Limit, &q.Cursor, &all)
	return func(e *env, args []string) error {
		org, _, err := o.take(args)
		if err != nil {
			return err
		}
		c, err := e.client()
		if err != nil {
			return err
		}
		return paged[client.FieldConflict]{noun: "conflicts", none: "No overruled changes match.", table: conflictTable}.run(e, all, q.Cursor,
			func(cursor string) ([]client.FieldConflict, string, error) {
				q.Cursor = cursor
				p, err := c.Conflicts(e.ctx, org, q)
				return p.Conflicts, p.Next, err
			},
			func(cs []client.FieldConflict, next string) any {
				return client.ConflictPage{Conflicts: cs, Next: next}
			})
	}
}

func conflictTable(cs []client.FieldConflict) *table {
	t := newTable("LAST", "USER", "FIELD", "SOURCE", "WANTED", "KEPT", "OWNER", "TIMES")
	for _, c := range cs {
		t.add(when(c.At), c.UserID, c.Field, c.Source, list(c.Rejected), list(c.Kept), c.Owner, strconv.Itoa(c.Count))
	}
	return t
}

func decisionTable(ds []client.Decision) *table {
	t := newTable("DECIDED", "OUTCOME", "REASON", "CONNECTION", "EXTERNAL ID", "USER", "LOGIN")
	for _, d := range ds {
		t.add(when(d.DecidedAt), d.Outcome, d.Reason, d.ConnectionID, d.ExternalID, d.UserID, d.LoginID)
	}
	return t
}

func decisionsList(fs *flag.FlagSet) func(*env, []string) error {
	var o orgArg
	o.flag(fs)
	var q client.DecisionQuery
	var since string
	var all bool
	fs.StringVar(&q.Outcome, "outcome", "", "created, existing, rejected, refused, failed or held (provisioning.result's outcome)")
	fs.StringVar(&q.Reason, "reason", "", "a refusal's reason, such as seats_exhausted")
	fs.StringVar(&q.Connection, "connection", "", "logins through this connection")
	fs.StringVar(&q.ExternalID, "external-id", "", "one person's logins: their id at the IdP")
	fs.StringVar(&q.UserID, "user", "", "one user's logins")
	fs.StringVar(&since, "since", "", "decisions since: an RFC 3339 time, a date (2026-12-01) or an age (24h)")
	pageFlags(fs, "decisions", &q.Limit, &q.Cursor, &all)
	return func(e *env, args []string) error {
		org, _, err := o.take(args)
		if err != nil {
			return err
		}
		if q.Since, err = parseSince(since); err != nil {
			return err
		}
		c, err := e.client()
		if err != nil {
			return err
		}
		return paged[client.Decision]{noun: "decisions", none: "No decisions match.", table: decisionTable}.run(e, all, q.Cursor,
			func(cursor string) ([]client.Decision, string, error) {
				q.Cursor = cursor
				p, err := c.Decisions(e.ctx, org, q)
				return p.Decisions, p.Next, err
			},
			func(ds []client.Decision, next string) any { return client.DecisionPage{Decisions: ds, Next: next} })
	}
}

// readInput reads the file -f names; "-" is standard input.
func readInput(path, what string) ([]byte, error) {
	if path == "" {
		return nil, fmt.Errorf("name the %s with -f FILE (- for standard input)", what)
	}
	if path == "-" {
		return io.ReadAll(stdin)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read the %s: %w", what, err)
	}
	return data, nil
}

func dryRun(fs *flag.FlagSet) func(*env, []string) error {
	var o orgArg
	o.flag(fs)
	file := fs.String("f", "", "the identity: a JSON object as login.first-seen carries it (connection_id, protocol, external_id, email, …); - for standard input")
	conn := fs.String("connection", "", "the connection that maps --saml-response or --id-token")
	samlFile := fs.String("saml-response", "", "a SAML Response (base64 as posted to the ACS, or XML; - for standard input), mapped as sso-edge maps a login; NOT validated")
	tokenFile := fs.String("id-token", "", "an OIDC ID token (compact JWT; - for standard input), mapped as sso-edge maps a login; NOT verified")
	userinfoFile := fs.String("userinfo", "", "with --id-token: a userinfo response (JSON) merged into the token's claims")
	return func(e *env, args []string) error {
		org, _, err := o.take(args)
		if err != nil {
			return err
		}
		given := 0
		for _, f := range []string{*file, *samlFile, *tokenFile} {
			if f != "" {
				given++
			}
		}
		switch {
		case given != 1:
			return usageErr("give one of -f IDENTITY.json, --saml-response FILE or --id-token FILE")
		case *file != "" && *conn != "":
			return usageErr("--connection goes with --saml-response or --id-token; -f takes the connection_id in the identity")
		case *file == "" && *conn == "":
			return usageErr("--connection ID is required with --saml-response or --id-token")
		case *userinfoFile != "" && *tokenFile == "":
			return usageErr("--userinfo goes with --id-token")
		}
		var data []byte
		switch {
		case *samlFile != "":
			resp, err := readInput(*samlFile, "SAML response file")
			if err != nil {
				return err
			}
			data, _ = json.Marshal(map[string]string{"connection_id": *conn, "saml_response": string(bytes.TrimSpace(resp))})
		case *tokenFile != "":
			tok, err := readInput(*tokenFile, "ID token file")
			if err != nil {
				return err
			}
			body := map[string]any{"connection_id": *conn, "id_token": string(bytes.TrimSpace(tok))}
			if *userinfoFile != "" {
				ui, err := readInput(*userinfoFile, "userinfo file")
				if err != nil {
					return err
				}
				var obj map[string]json.RawMessage
				if err := json.Unmarshal(ui, &obj); err != nil {
					return fmt.Errorf("%s is not a JSON object: %v", *userinfoFile, err)
				}
				body["userinfo"] = json.RawMessage(bytes.TrimSpace(ui))
			}
			data, _ = json.Marshal(body)
		default:
			if data, err = readInput(*file, "identity file"); err != nil {
				return err
			}
			var obj map[string]json.RawMessage
			if err := json.Unmarshal(data, &obj); err != nil {
				return fmt.Errorf("%s is not a JSON object: %v", *file, err)
			}
		}
		c, err := e.client()
		if err != nil {
			return err
		}
		res, err := c.DryRun(e.ctx, org, bytes.TrimSpace(data))
		if err != nil {
			return err
		}
		return e.print(res, func(w io.Writer) error {
			r := res.Result
			kv := []string{"Outcome", string(r.Outcome), "Reason", string(r.Reason), "Message", r.Message}
			if r.User != nil {
				kv = append(kv, "User", r.User.ID+" "+r.User.Email, "Role", r.User.Role, "Status", r.User.Status)
			}
			if r.RoleReview != nil {
				kv = append(kv, "Role review", r.RoleReview.ID+" for "+r.RoleReview.RequestedRole)
			}
			if id := res.Identity; id != nil {
				kv = append(kv, "Mapped identity", id.ExternalID+" via "+id.ConnectionID, "Email", fmt.Sprintf("%s (verified: %t)", id.Email, id.EmailVerified),
					"Name", strings.TrimSpace(id.GivenName+" "+id.FamilyName+" "+id.DisplayName),
					"Groups", strings.Join(id.Groups, ", "), "Roles", strings.Join(id.Roles, ", "))
				for _, warning := range res.Warnings {
					kv = append(kv, "Warning", warning)
				}
			}
			if err := fields(w, kv...); err != nil {
				return err
			}
			if res.Caveat != "" {
				if _, err := fmt.Fprintf(w, "(%s)\n", res.Caveat); err != nil {
					return err
				}
			}
			_, err := fmt.Fprintln(w, "(a dry run: nothing was written)")
			return err
		})
	}
}

func apply(fs *flag.FlagSet) func(*env, []string) error {
	file := fs.String("f", "", "the organisations file (docs/config.md); - for standard input")
	dry := fs.Bool("dry-run", false, "only say what applying would do")
	return func(e *env, _ []string) error {
		data, err := readInput(*file, "organisations file")
		if err != nil {
			return err
		}
		// The file's problems, each with its line, before anything is sent.
		name := *file
		if name == "-" {
			name = "<stdin>"
		}
		if _, err := config.ParseOrgFile(name, data); err != nil {
			return cli.Exit(exitUsage, countedProblems(name, err))
		}
		c, err := e.client()
		if err != nil {
			return err
		}
		res, err := c.Apply(e.ctx, data, *dry)
		var ce *client.Error
		if errors.As(err, &ce) && ce.Field == "body" {
			// The server names the file organizations.yaml: name it as the
			// operator does.
			ce.Message = strings.ReplaceAll(ce.Message, "organizations.yaml:", name+":")
		}
		if err != nil {
			return err
		}
		if res.Changes == nil {
			res.Changes = []client.Change{}
		}
		return e.print(res, func(w io.Writer) error { return writeChanges(w, name, res) })
	}
}

// writeChanges is apply's table: each organisation and connection, what
// applying does to it, and a summary that says nothing is deleted.
func writeChanges(w io.Writer, name string, res client.ApplyResult) error {
	t := newTable("KIND", "ORGANIZATION", "CONNECTION", "ACTION", "FIELDS")
	count := map[string]int{}
	for _, ch := range res.Changes {
		action := ch.Action
		if res.DryRun {
			action = map[string]string{"create": "would create", "update": "would update", "kept": "kept"}[ch.Action]
			if action == "" {
				action = ch.Action
			}
		} else if ch.Action == "create" || ch.Action == "update" {
			action += "d"
		}
		t.add(ch.Kind, ch.Organization, ch.Connection, action, list(ch.Fields))
		count[ch.Action]++
	}
	if err := t.write(w); err != nil {
		return err
	}
	if res.DryRun {
		fmt.Fprintf(w, "\n%s (dry run, nothing written): %d to create, %d to update, %d unchanged, %d kept\n", name,
			count["create"], count["update"], count["unchanged"], count["kept"])
	} else {
		fmt.Fprintf(w, "\n%s applied: %d created, %d updated, %d unchanged, %d kept\n", name,
			count["create"], count["update"], count["unchanged"], count["kept"])
	}
	if res.DryRun && count["create"]+count["update"] > 0 {
		fmt.Fprintf(w, "Apply it with: jitprov apply -f %s\n", name)
	}
	if count["kept"] > 0 {
		fmt.Fprintln(w, "Kept: in the store but not in the file. Apply never deletes an organisation or a connection;")
		fmt.Fprintln(w, "to stop a connection being used, replace it (replaces:) or remove it from the store by hand.")
	} else {
		fmt.Fprintln(w, "Apply never deletes: what the store has and a file lacks is kept.")
	}
	return nil
}

// countedProblems puts the number of a file's problems above them, each on
// a line of its own (FILE:LINE: …).
func countedProblems(path string, err error) error {
	var list interface{ Unwrap() []error }
	if !errors.As(err, &list) {
		return fmt.Errorf("%w; nothing was sent", err)
	}
	n := len(list.Unwrap())
	what := "problems"
	if n == 1 {
		what = "problem"
	}
	return fmt.Errorf("%s: %d %s; nothing was sent:\n%w", path, n, what, err)
}

func tokenState(t client.Token) string {
	switch {
	case !t.RevokedAt.IsZero():
		return "revoked"
	case !t.ExpiresAt.IsZero() && t.ExpiresAt.Before(time.Now()):
		return "expired"
	}
	return "active"
}

func tokensList(fs *flag.FlagSet) func(*env, []string) error {
	org := fs.String("org", "", "one organisation's tokens")
	return func(e *env, _ []string) error {
		c, err := e.client()
		if err != nil {
			return err
		}
		ts, err := c.Tokens(e.ctx, *org)
		if err != nil {
			return err
		}
		if ts == nil {
			ts = []client.Token{}
		}
		return e.print(map[string]any{"tokens": ts}, func(w io.Writer) error {
			if len(ts) == 0 {
				e.note("No tokens.")
				return nil
			}
			t := newTable("ID", "NAME", "ORGANIZATION", "SCOPE", "STATE", "CREATED", "EXPIRES", "LAST USED", "CREATED BY")
			for _, tk := range ts {
				t.add(tk.ID, tk.Name, orGlobal(tk.OrganizationID), tk.Scope, tokenState(tk), when(tk.CreatedAt), when(tk.ExpiresAt),
					when(tk.LastUsedAt), tk.CreatedBy)
			}
			return t.write(w)
		})
	}
}

func orGlobal(org string) string {
	if org == "" {
		return "(global)"
	}
	return org
}

func tokensCreate(fs *flag.FlagSet) func(*env, []string) error {
	var nt client.NewToken
	var expires, key string
	fs.StringVar(&nt.Name, "name", "", "what the token is for (required)")
	fs.StringVar(&nt.Scope, "scope", "", "read, write, or scim: an organisation's SCIM client, with --org (required)")
	fs.StringVar(&nt.Organization, "org", "", "the one organisation it acts on (default: global, every organisation)")
	fs.StringVar(&expires, "expires", "", "a lifetime such as 720h, or an RFC 3339 time (default 90 days, at most 366)")
	fs.StringVar(&key, "idempotency-key", "", "a key that makes a retry of this command create no second token")
	return func(e *env, _ []string) error {
		if nt.Name == "" || nt.Scope == "" {
			return errors.New("tokens create takes --name NAME and --scope read|write|scim")
		}
		if expires != "" {
			if _, err := time.Parse(time.RFC3339, expires); err == nil {
				nt.ExpiresAt = expires
			} else if d, err := time.ParseDuration(expires); err == nil && d > 0 {
				nt.ExpiresIn = expires
			} else {
				return fmt.Errorf("--expires %q: want a lifetime such as 720h or an RFC 3339 time", expires)
			}
		}
		c, err := e.client()
		if err != nil {
			return err
		}
		ct, err := c.CreateToken(e.ctx, nt, key)
		if err != nil {
			return err
		}
		e.note("The secret is shown this once: store it now (JITPROV_TOKEN). Revoke it with `jitprov tokens revoke %s`.", ct.Token.ID)
		return e.print(ct, func(w io.Writer) error {
			return fields(w, "ID", ct.Token.ID, "Name", ct.Token.Name, "Organization", orGlobal(ct.Token.OrganizationID),
				"Scope", ct.Token.Scope, "Expires", when(ct.Token.ExpiresAt), "Secret", ct.Secret)
		})
	}
}

func tokensRevoke(fs *flag.FlagSet) func(*env, []string) error {
	return func(e *env, args []string) error {
		c, err := e.client()
		if err != nil {
			return err
		}
		res, err := c.RevokeToken(e.ctx, args[0])
		if err != nil {
			return err
		}
		return e.print(res, func(w io.Writer) error {
			state := "revoked"
			if !res.Changed {
				state = "revoked already: unchanged"
			}
			_, err := fmt.Fprintf(w, "token %s (%s): %s\n", res.Token.ID, res.Token.Name, state)
			return err
		})
	}
}

// usageErr is a wrong command line.
func usageErr(msg string) error { return cli.Exit(exitUsage, errors.New(msg)) }
