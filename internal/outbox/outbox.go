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
	return events.User{
		ID: u.ID, OrganizationID: u.OrganizationID, ConnectionID: conn, ExternalID: ext,
		Email: u.Email, EmailVerified: u.EmailVerified, GivenName: u.GivenName, FamilyName: u.FamilyName,
		DisplayName: u.DisplayName, Groups: u.Groups, Role: u.Role, Status: u.Status, Attributes: u.Attributes,
		CreatedBy: u.CreatedBy, CreatedAt: u.CreatedAt.UTC(), UpdatedAt: u.UpdatedAt.UTC(),
	}
}
