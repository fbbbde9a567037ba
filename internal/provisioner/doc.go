// Package provisioner turns login.first-seen events into users: the
// decision policy (lookup, link, update, seat check, role ceiling), and the
// JetStream consumer that runs it and answers each login.
//
// # How a batch is decided
//
// Deliveries wait in hand by organisation (one subject each). A free
// worker takes the logins in hand of the organisations that have waited
// longest and that no other worker is deciding, each organisation's
// together, up to Options.MaxBatch, and decides them
// (Decider.DecideBatch); it never waits for a batch to fill, so a lone
// login is decided at once. One organisation is decided by one worker at
// a time (per replica): the logins that arrive while its transaction
// runs are in the next batch, so batches grow with the load, and workers
// do not queue on the organisation's seat row.
//
// The organisations of a batch are decided in one transaction, one group
// (an organisation's logins) after another in the order of their ids, so
// that every transaction locks seat rows in the same order (applying
// the organisations file does too). When one of them cannot be decided
// with the others — its seats short or taken meanwhile, its row held by
// another session past lock_timeout, a conflict with a concurrent
// decision, a login the database refuses, the database away — the
// transaction is rolled back and each group is decided in a transaction
// of its own, as below, so that one organisation's trouble fails only
// its own logins; an organisation whose seats were short or whose row
// was held is decided alone for a minute, so that it does not send the
// others' transactions back, or keep them waiting, meanwhile. What a
// transaction logs is written once it commits: one rolled back and
// decided again does not log what it undid.
//
// A group is decided like this:
//
//  1. One round trip reads the organisation, its connections, and for
//     every login its stored decision and any user with its identity or
//     email (store.Tx.LookupLogins), locking nothing.
//  2. A login with a stored decision gets that answer again. A login of a
//     person the organisation knows (by identity or email), or one the
//     policy must weigh further, is decided by the per-login policy,
//     statement by statement, in the same transaction. A new person is
//     planned in memory: held, or created with the next seat of the
//     group's plan, in order — the first new people of the group get the
//     seats left, the later ones are turned away or held as the
//     organisation says, and the login whose seat reaches the warning
//     threshold carries the warning.
//  3. One round trip writes the users, identities, reviews, outbox events
//     and decisions and, last, reserves the group's seats in one
//     conditional UPDATE (store.Tx.WriteGroup), so the organisation's row
//     is locked from there to the commit only.
//
// The seats were read without a lock, so the reservation holds only if
// max_seats still allows them all and the warning threshold is crossed as
// planned (exactly the seats read when the plan crosses it, no crossing
// otherwise). When it does not hold, or the plan turns someone away, the
// group is decided again with the organisation's row locked before the
// lookups, the order of one login at a time, whose plan holds. When a
// concurrent decision created one of the group's people or decided one of
// its logins (a unique violation), the group is rolled back and its logins
// are decided one by one by Decide, which retries such races. Logins of a
// group that repeat an earlier one's login id, identity or email are
// decided after it, in a group of their own, so that they see it.
//
// Each login is then answered (the reply, the known-identities record,
// the ack, in that order) beside the next decisions.
package provisioner
