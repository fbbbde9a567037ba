// Consumes user.created from jitprov's USERS stream, as docs/events.md §7
// tells a service to: one durable pull consumer per consuming service,
// explicit acks; each event validated (CloudEvent attributes and the data's
// JSON Schema), skipped if already seen, printed, then acked.
//
//   NATS_URL=nats://127.0.0.1:4222 node consume-users.mjs
//
// Environment: NATS_URL (default nats://127.0.0.1:4222), CONSUMER (the
// durable consumer's name, default node-user-created), FILTER (default
// jit.user.created.>; jit.user.created.<org> follows one organisation).
// Prints one JSON line per user on stdout; Ctrl-C stops it.
import { connect } from "@nats-io/transport-node";
import { AckPolicy, DeliverPolicy, jetstream, jetstreamManager } from "@nats-io/jetstream";
import { log, toEvent } from "./lib.mjs";

const servers = process.env.NATS_URL ?? "nats://127.0.0.1:4222";
const durable = process.env.CONSUMER ?? "node-user-created";
const filter = process.env.FILTER ?? "jit.user.created.>";

// The types this service handles; user.created v2 (a person SCIM created)
// shares the subject. Anything else on it is acked and skipped.
const handled = ["io.jitprov.user.created.v1", "io.jitprov.user.created.v2"];

const nc = await connect({ servers, name: "node-user-created" });

// The consumer is ours: the provisioner owns the stream, not this consumer.
// Same settings as `nats consumer add USERS … --deliver all --ack explicit
// --wait 30s --max-deliver 10 --max-pending 1000`. Adding it again with the
// same settings is a no-op, so every replica of the service may do it.
const jsm = await jetstreamManager(nc);
await jsm.consumers.add("USERS", {
  durable_name: durable,
  filter_subject: filter,
  deliver_policy: DeliverPolicy.All,
  ack_policy: AckPolicy.Explicit,
  ack_wait: 30_000_000_000, // nanoseconds
  max_deliver: 10,
  max_ack_pending: 1000,
});

const js = jetstream(nc);
const consumer = await js.consumers.get("USERS", durable);
const messages = await consumer.consume({ max_messages: 100 });

for (const sig of ["SIGINT", "SIGTERM"]) {
  process.once(sig, () => messages.stop()); // ends the loop below
}
console.error(`consuming ${filter} from USERS as ${durable} on ${servers}`);

// Delivery is at least once: the same event (same ce-id) can come twice.
// Keep processed ids for longer than your worst lag, or make the write
// idempotent on user.id; an in-memory set will do for an example.
const seen = new Set();

for await (const m of messages) {
  let parsed;
  try {
    parsed = toEvent(m, handled);
  } catch (err) {
    // Retrying cannot fix an event that breaks the contract: terminate it,
    // with the reason, rather than have it redelivered.
    console.error(`terminating ${m.subject} seq ${m.seq}: ${err.message}`);
    m.term(`invalid event: ${err.message}`.slice(0, 1000));
    continue;
  }
  const { event, known } = parsed;
  if (!known || seen.has(event.id)) {
    await m.ackAck();
    continue;
  }
  try {
    const { user, login_id, actor } = event.data;
    log({
      event: "user.created",
      type: event.type,
      id: event.id,
      login_id, // v1: the login that created the user
      actor, // v2: who created the user through SCIM
      user: { id: user.id, organization_id: user.organization_id, email: user.email, role: user.role, status: user.status },
    });
    seen.add(event.id);
    await m.ackAck(); // waits for the server to confirm the ack
  } catch (err) {
    console.error(`will retry ${event.id}: ${err.message}`);
    m.nak(5_000);
  }
}
await nc.drain();
