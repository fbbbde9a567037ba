// Package outbox renders events for the transactional outbox: a decision
// (the provisioner's, an admin's) writes them in its own transaction, and
// the outbox relay publishes them after commit under their event id.
package outbox

import (
	"context"

	"github.com/jitprov/jitprov/events"
	"github.com/jitprov/jitprov/internal/store"
)

// Message renders an event of type t about subject, in organisation org,
// from source, as an outbox row: the CloudEvent in binary mode with the
// trace context of ctx, validated against its schema.
func Message(ctx context.Context, t events.Type, source, org, subject string, data any) (store.OutboxMessage, error) {
	ev, err := events.New(t, source, subject, data)
	if err != nil {
		return store.OutboxMessage{}, err
	}
	subj, err := events.Subject(t, org)
	if err != nil {
		return store.OutboxMessage{}, err
	}
	msg, err := events.Encode(ctx, ev, subj)
	if err != nil {
		return store.OutboxMessage{}, err
	}
	return store.OutboxMessage{EventID: ev.ID(), Subject: subj, Header: msg.Header, Data: msg.Data}, nil
}

// User is u as user.* events announce it; conn and ext name the identity
// the event is about ("" for none: an admin's action on the user).
func User(u store.User, conn, ext string) events.User {
	createdBy := u.CreatedBy
	if createdBy == store.CreatedBySCIM {
		// v1 of every user.* event knows jit, admin and app: a user the
		// organisation's directory created is, to v1, an admin's.
		// user.created and user.updated v2 (UserV2) say scim.
		createdBy = store.CreatedByAdmin
	}
	return events.User{
		ID: u.ID, OrganizationID: u.OrganizationID, ConnectionID: conn, ExternalID: ext,
		Email: u.Email, EmailVerified: u.EmailVerified, GivenName: u.GivenName, FamilyName: u.FamilyName,
		DisplayName: u.DisplayName, Groups: u.Groups, Role: u.Role, Status: u.Status, Attributes: u.Attributes,
		CreatedBy: createdBy, CreatedAt: u.CreatedAt.UTC(), UpdatedAt: u.UpdatedAt.UTC(),
	}
}

// UserV2 is User for the v2 events (user.created and user.updated v2),
// whose created_by may be scim.
func UserV2(u store.User, conn, ext string) events.User {
	e := User(u, conn, ext)
	e.CreatedBy = u.CreatedBy
	return e
}
