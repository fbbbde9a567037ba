package edge_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/jitprov/jitprov/events"
	"github.com/jitprov/jitprov/internal/admin"
	"github.com/jitprov/jitprov/internal/bus"
	"github.com/jitprov/jitprov/internal/testenv"
)

// holdNewPeople makes acme hold every new person for an admin's approval.
func (w *world) holdNewPeople(t *testing.T) {
	t.Helper()
	if _, err := w.store.Pool().Exec(context.Background(), `UPDATE organizations SET new_people = 'hold' WHERE id = 'acme'`); err != nil {
		t.Fatal(err)
	}
}

// heldUser is the id of acme's held user of external id ext.
func (w *world) heldUser(t *testing.T, ext string) string {
	t.Helper()
	var id string
	if err := w.store.Pool().QueryRow(context.Background(), `SELECT u.id FROM users u JOIN identities i ON i.user_id = u.id
		WHERE i.external_id = $1 AND u.status = 'held'`, ext).Scan(&id); err != nil {
		t.Fatalf("no held user for %s: %v", ext, err)
	}
	return id
}

func (w *world) seatsUsed(t *testing.T) int {
	t.Helper()
	var n int
	if err := w.store.Pool().QueryRow(context.Background(), `SELECT seats_used FROM organizations WHERE id = 'acme'`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

const waitingForApproval = "Waiting for your administrator&#39;s approval"

// isWaitingForApproval reports whether p is the held sign-up's page.
func isWaitingForApproval(p *testenv.Page) bool {
	return p.Status == http.StatusAccepted && strings.Contains(p.Body, waitingForApproval)
}

// A held sign-up: the person sees "waiting for your administrator's
// approval", is not signed in (nor by a second sign-in: no fast path for
// held people), takes no seat; once an admin approves, the page they wait
// on signs them in without a new sign-in, and the approval took a seat.
func TestHeldSignupSignedInOnApproval(t *testing.T) {
	w := newWorld(t, 10, true)
	w.holdNewPeople(t)
	w.idp.signsIn(person("00u-hana", "hana@acme.example"))
	b := newBrowser(t)
	resp, _ := login(t, b, w.edgeURL, "/desk")
	if !isWaitingForApproval(resp) {
		t.Fatalf("held first login: %d %s, want the waiting-for-approval page", resp.Status, resp.Body)
	}
	next := refreshTarget(resp)
	if !strings.HasPrefix(next, "/login/continue?t=") {
		t.Fatalf("the page does not ask again by itself: refresh %q", next)
	}
	if v, _ := verify(t, b, w.edgeURL); v.Status != http.StatusUnauthorized {
		t.Fatalf("a held person is signed in: verify %d", v.Status)
	}
	userID := w.heldUser(t, "00u-hana")
	if n := w.seatsUsed(t); n != 0 {
		t.Fatalf("a held person took a seat: %d used", n)
	}
	// The admins are alerted: signup.held naming the person reaches ALERTS,
	// where the notifier plans it.
	js, err := jetstream.New(testenv.Connect(t, w.ns))
	if err != nil {
		t.Fatal(err)
	}
	actx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := js.OrderedConsumer(actx, bus.StreamAlerts, jetstream.OrderedConsumerConfig{FilterSubjects: []string{"jit.alert.signup.held.acme"}})
	if err != nil {
		t.Fatal(err)
	}
	m, err := c.Next(jetstream.FetchMaxWait(15 * time.Second))
	if err != nil {
		t.Fatalf("no signup.held alert: %v", err)
	}
	ev, err := events.Decode(&nats.Msg{Subject: m.Subject(), Header: m.Headers(), Data: m.Data()})
	if err != nil {
		t.Fatal(err)
	}
	if alert, err := events.DataAs[events.SignupHeld](ev, events.TypeSignupHeld); err != nil || alert.UserID != userID ||
		alert.Email != "hana@acme.example" || alert.Reason != events.ReasonApprovalRequired {
		t.Errorf("signup.held %+v, %v; want hana's held user %s", alert, err, userID)
	}
	// Still held: the page keeps waiting, with the same continuation.
	if again := b.Get(w.edgeURL + next); !isWaitingForApproval(again) || refreshTarget(again) != next {
		t.Fatalf("asking again while held: %d %s", again.Status, again.Body)
	}
	// A second sign-in of the held person (the known identity is recorded
	// by now) is held again, never the fast path.
	w.loginsDrained(t)
	other := newBrowser(t)
	if p, _ := login(t, other, w.edgeURL, "/"); !isWaitingForApproval(p) {
		t.Fatalf("the held person's second sign-in: %d %s, want the waiting-for-approval page", p.Status, p.Body)
	}
	if v, _ := verify(t, other, w.edgeURL); v.Status != http.StatusUnauthorized {
		t.Fatalf("the held person's second sign-in signed them in: verify %d", v.Status)
	}

	core := admin.New(w.store, w.log)
	if _, err := core.ApproveSignup(context.Background(), admin.Operator("test"), "acme", userID); err != nil {
		t.Fatal(err)
	}
	// The waiting page's next look signs the person in: no new sign-in.
	final := b.Get(w.edgeURL + next)
	if final.Status != http.StatusSeeOther || final.Header.Get("Location") != "/desk" {
		t.Fatalf("the waiting page after approval: %d %s, want 303 to /desk", final.Status, final.Body)
	}
	v, id := verify(t, b, w.edgeURL)
	if v.Status != http.StatusOK || id != userID || v.Header.Get("X-Jitprov-Role") != "member" {
		t.Fatalf("verify after approval: %d user %q role %q, want 200 as %s", v.Status, id, v.Header.Get("X-Jitprov-Role"), userID)
	}
	if n := w.seatsUsed(t); n != 1 {
		t.Errorf("seats used %d after approval, want 1", n)
	}
	// The continuation is spent.
	if again := b.Get(w.edgeURL + next); again.Status == http.StatusSeeOther {
		t.Errorf("the waiting page's token signed in twice")
	}
}

// A sign-up held while its person waited on "setting up your account"
// turns that page into the waiting-for-approval page; a denial then shows
// a clear refusal, and the person never takes a seat.
func TestHeldSignupDeniedWhileWaiting(t *testing.T) {
	w := newWorld(t, 10, true, withProvisionTimeout(300*time.Millisecond))
	w.holdNewPeople(t)
	w.stopProvisioner()
	w.idp.signsIn(person("00u-ivan", "ivan@acme.example"))
	b := newBrowser(t)
	resp, _ := login(t, b, w.edgeURL, "/")
	if resp.Status != http.StatusAccepted || strings.Contains(resp.Body, waitingForApproval) {
		t.Fatalf("login without a provisioner: %d %s, want the setting-up page", resp.Status, resp.Body)
	}
	w.startProvisioner()
	w.loginsDrained(t)
	held := b.Get(w.edgeURL + refreshTarget(resp))
	if !isWaitingForApproval(held) {
		t.Fatalf("the setting-up page once held: %d %s, want the waiting-for-approval page", held.Status, held.Body)
	}
	next := refreshTarget(held)
	core := admin.New(w.store, w.log)
	if _, err := core.DenySignup(context.Background(), admin.Operator("test"), "acme", w.heldUser(t, "00u-ivan"), "not an employee"); err != nil {
		t.Fatal(err)
	}
	// The denial rewrites the person's known identity (never fresh, status
	// deprovisioned) once user.deprovisioned is relayed: the page must
	// still tell the denial, not take the record for a newer login.
	knownIDs := w.knownIDs(t)
	waitUntil(t, func() bool {
		rec, err := knownIDs.Get(context.Background(), "acme", "idp", "00u-ivan")
		return err == nil && rec.Status == "deprovisioned"
	})
	denied := b.Get(w.edgeURL + next)
	if denied.Status != http.StatusForbidden || !strings.Contains(denied.Body, "did not approve") {
		t.Fatalf("the waiting page after denial: %d %s, want the refusal", denied.Status, denied.Body)
	}
	if v, _ := verify(t, b, w.edgeURL); v.Status != http.StatusUnauthorized {
		t.Errorf("a denied person is signed in: verify %d", v.Status)
	}
	if n := w.seatsUsed(t); n != 0 {
		t.Errorf("seats used %d, want 0", n)
	}
}
