// What both examples share: turning a NATS message into a CloudEvent and
// validating its data against jitprov's JSON Schemas (docs/events.md §1).
import { readFileSync } from "node:fs";
import Ajv2020 from "ajv/dist/2020.js";
import addFormats from "ajv-formats";
import { HTTP } from "cloudevents";

// The schemas are the contract (schemas/ in the repository). A service of
// your own would vendor the files it needs; these examples read them from
// the repository they live in, or from JITPROV_SCHEMAS.
const schemaDir = process.env.JITPROV_SCHEMAS ?? new URL("../../schemas/", import.meta.url).pathname;

// JSON Schema draft 2020-12 (ajv/dist/2020), with the formats checked as
// jitprov checks them (ajv-formats: date-time with a zone offset, uuid,
// email). strict: false, because Ajv's strict mode is Ajv's own lint of
// schemas, beyond the standard, and it refuses some of jitprov's (an
// `if`/`then` requiring a property declared elsewhere: strictRequired,
// strictTypes); it does not change what validates.
const ajv = new Ajv2020({ strict: false, allErrors: true });
addFormats(ajv);

const validators = new Map();

// validator returns the data validator of a ce-type such as
// "io.jitprov.user.created.v1" (schemas/user.created/v1.json).
function validator(type) {
  let v = validators.get(type);
  if (!v) {
    const m = /^io\.jitprov\.(.+)\.(v\d+)$/.exec(type);
    if (!m) throw new Error(`not a jitprov event type: ${type}`);
    const schema = JSON.parse(readFileSync(`${schemaDir}/${m[1]}/${m[2]}.json`, "utf8"));
    v = ajv.compile(schema);
    validators.set(type, v);
  }
  return v;
}

// toEvent reads a NATS message in the CloudEvents binary mode (attributes in
// ce-* headers, data in the body) with the SDK's HTTP binding, which
// implements the same mode: every header name is lower-cased first. It
// throws if the message is not a valid CloudEvent, or if its data does not
// validate against the schema of its type.
export function toEvent(msg, types) {
  const headers = {};
  for (const [k, v] of msg.headers ?? []) {
    // Header names in another case are the same header (docs/events.md):
    // two spellings with different values are ambiguous.
    const lk = k.toLowerCase();
    if (lk in headers && headers[lk] !== v[0]) {
      throw new Error(`header ${lk} arrives under two spellings with different values`);
    }
    headers[lk] = v[0];
  }
  if (!headers["ce-specversion"]) throw new Error("not a CloudEvent in binary mode (no ce-specversion header)");
  const event = HTTP.toEvent({ headers, body: msg.string() });
  event.validate(); // the SDK does not check a received event by itself
  if (!types.includes(event.type)) {
    return { event, known: false };
  }
  const ct = (event.datacontenttype ?? "").split(";")[0].trim().toLowerCase();
  if (ct !== "application/json") throw new Error(`data is ${event.datacontenttype}, want application/json`);
  const validate = validator(event.type);
  if (event.dataschema && event.dataschema !== validate.schema.$id) {
    throw new Error(`ce-dataschema is ${event.dataschema}, want ${validate.schema.$id}`);
  }
  if (!validate(event.data)) {
    throw new Error(`${event.type} data breaks its schema: ${ajv.errorsText(validate.errors)}`);
  }
  return { event, known: true };
}

// checkData throws if data does not validate against the schema of type:
// check what you publish before jitprov refuses it (a login that breaks
// the contract is terminated, never answered).
export function checkData(type, data) {
  const validate = validator(type);
  if (!validate(data)) {
    throw new Error(`${type} data breaks its schema: ${ajv.errorsText(validate.errors)}`);
  }
}

// log writes one JSON line to stdout: easy to read, and to match in a test.
export function log(record) {
  process.stdout.write(JSON.stringify(record) + "\n");
}
