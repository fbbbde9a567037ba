// Publishes a login to jitprov and waits for its answer, as docs/events.md
// §4 describes: subscribe to an inbox, JetStream-publish the login
// (login.first-seen, CloudEvents binary mode) naming the inbox in
// Jitprov-Reply-To, wait for the PubAck, then for a provisioning.result on
// the inbox until a deadline.
//
//   NATS_URL=nats://127.0.0.1:4222 node publish-login.mjs \
//     --org demo --connection devidp-saml --external-id node-1 --email node-1@demo.example
//
// Prints the PubAck and then the answer as JSON lines on stdout. Exit
// status: 0 answered; 2 not sent (the login breaks the contract) or not
// accepted (error PubAck: nothing stored);
// 3 no answer by the deadline (pending: see "Why was my login not
// answered?" in docs/events.md); 4 terminated, never to be answered (the
// server's termination advisory says why).
import { randomUUID } from "node:crypto";
import { parseArgs } from "node:util";
import { connect, createInbox, headers } from "@nats-io/transport-node";
import { JetStreamApiError, jetstream } from "@nats-io/jetstream";
import { CloudEvent, HTTP } from "cloudevents";
import { checkData, log, toEvent } from "./lib.mjs";

const { values: opt } = parseArgs({
  options: {
    org: { type: "string", default: "demo" },
    connection: { type: "string", default: "devidp-saml" },
    protocol: { type: "string", default: "saml" },
    "external-id": { type: "string" },
    email: { type: "string" },
    "email-verified": { type: "boolean", default: false },
    "given-name": { type: "string" },
    "family-name": { type: "string" },
    timeout: { type: "string", default: "15000" }, // ms: your sign-in page's deadline
    // Send the login even if it breaks the schema, to see what jitprov
    // does with it (it terminates it: exit status 4, with the reason).
    "no-check": { type: "boolean", default: false },
  },
});
const externalId = opt["external-id"] ?? `node-${randomUUID()}`;
// One NATS subject token: any other organisation id has no subject in the
// LOGINS stream, and the publish finds no responders (which nats.js
// reports as "jetstream is not enabled").
if (!/^[a-z0-9][a-z0-9_-]{0,62}$/.test(opt.org)) {
  console.error(`organisation id ${JSON.stringify(opt.org)} is not one of a-z, 0-9, - and _ (at most 63)`);
  process.exit(2);
}
const deadline = Date.now() + Number(opt.timeout);
const servers = process.env.NATS_URL ?? "nats://127.0.0.1:4222";

const nc = await connect({ servers, name: "node-login-publisher" });
const js = jetstream(nc);

// A fresh id per sign-in attempt: it is the login's idempotency key and
// its login_id; a UUID is one NATS subject token, as the reply subject wants.
const id = randomUUID();
const subject = `jit.login.first-seen.${opt.org}`;

// 1. The inbox, subscribed before publishing: answers are core NATS, lost
// if nobody listens. _INBOX.<random>.<ce-id>: the provisioner answers only
// subjects under _INBOX.
const inbox = `${createInbox()}.${id}`;
const answers = nc.subscribe(inbox);

// While developing: the server's termination advisory says why a login
// will never be answered (your NATS user needs to subscribe to
// $JS.EVENT.ADVISORY.>). Production code can leave this out.
const advisories = nc.subscribe("$JS.EVENT.ADVISORY.CONSUMER.MSG_TERMINATED.LOGINS.provisioner");

// 2. The login as a CloudEvent, in the binary mode of the SDK's HTTP
// binding: ce-* headers (lower case) and content-type
// "application/json; charset=utf-8", which jitprov reads as application/json.
const data = {
  organization_id: opt.org,
  connection_id: opt.connection,
  protocol: opt.protocol,
  external_id: externalId,
  email_verified: opt["email-verified"],
  authenticated_at: new Date().toISOString(),
};
if (opt.email) data.email = opt.email;
if (opt["given-name"]) data.given_name = opt["given-name"];
if (opt["family-name"]) data.family_name = opt["family-name"];

if (!opt["no-check"]) {
  try {
    checkData("io.jitprov.login.first-seen.v1", data);
  } catch (err) {
    console.error(err.message);
    process.exit(2);
  }
}

const event = new CloudEvent({
  id,
  source: "/examples/node/publish-login",
  type: "io.jitprov.login.first-seen.v1",
  dataschema: "https://jitprov.io/schemas/login.first-seen/v1.json",
  data,
});
const message = HTTP.binary(event);
const h = headers();
for (const [k, v] of Object.entries(message.headers)) h.set(k, String(v));
h.set("Jitprov-Reply-To", inbox);

// 3. JetStream publish, waiting for the PubAck. msgID sets Nats-Msg-Id
// (= ce-id: JetStream stores a re-sent copy once); expect.streamName sets
// Nats-Expected-Stream. No responders, a timeout or a lost connection are
// worth retrying with the same message until the deadline; an error PubAck
// is not (the login was refused: stream or organisation full).
let ack;
for (let wait = 50; ; wait = Math.min(wait * 2, 2000)) {
  try {
    ack = await js.publish(subject, message.body, {
      headers: h,
      msgID: id,
      expect: { streamName: "LOGINS" },
      timeout: Math.max(1, Math.min(2000, deadline - Date.now())),
    });
    break;
  } catch (err) {
    if (err instanceof JetStreamApiError) {
      log({ login_id: id, accepted: false, error: err.message });
      await nc.close();
      process.exit(2);
    }
    if (Date.now() + wait >= deadline) {
      // Maybe stored, maybe not: treat it as pending.
      log({ login_id: id, pending: true, error: `no PubAck by the deadline: ${err.message}` });
      await nc.close();
      process.exit(3);
    }
    console.error(`publish: ${err.message}; trying again in ${wait} ms`);
    await new Promise((r) => setTimeout(r, wait));
  }
}
log({ login_id: id, pub_ack: { stream: ack.stream, seq: ack.seq, duplicate: ack.duplicate } });

// 4. The first valid answer whose login_id is ours, or a termination
// advisory for our stream sequence, or the deadline.
const outcome = await new Promise((resolve) => {
  const timer = setTimeout(() => resolve({ exit: 3, line: { login_id: id, pending: true, error: "no answer by the deadline" } }), Math.max(0, deadline - Date.now()));
  const done = (r) => {
    clearTimeout(timer);
    resolve(r);
  };
  (async () => {
    for await (const m of answers) {
      try {
        const { event: answer, known } = toEvent(m, ["io.jitprov.provisioning.result.v1", "io.jitprov.provisioning.result.v2"]);
        if (!known || answer.data.login_id !== id) continue;
        return done({ exit: 0, line: { type: answer.type, answer: answer.data } });
      } catch (err) {
        console.error(`ignoring a message on the inbox: ${err.message}`);
      }
    }
  })();
  (async () => {
    for await (const m of advisories) {
      const a = m.json();
      if (a.stream_seq === ack.seq) {
        return done({ exit: 4, line: { login_id: id, terminated: true, reason: a.reason ?? "", deliveries: a.deliveries } });
      }
    }
  })();
});
log(outcome.line);
await nc.close();
process.exit(outcome.exit);
