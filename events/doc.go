// Package events is jitprov's public event contract: the CloudEvents every
// service publishes and consumes, their NATS subjects, constructors, and
// decoding that validates each event against its JSON Schema.
//
// Events travel over NATS in CloudEvents binary content mode: attributes as
// "ce-*" headers, data as the message body (application/json), and W3C trace
// context in "traceparent"/"tracestate" headers. docs/events.md describes
// the wire format for services written in other languages.
package events
