// Command jitprov-login publishes one login.first-seen event, as sso-edge
// does, and prints the provisioner's answer: a way to try the pipeline or
// check it from a shell.
//
//	jitprov-login -org acme -connection okta -id alice -email alice@acme.example [-role manager]...
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/jitprov/jitprov/events"
	"github.com/jitprov/jitprov/internal/bus"
)

type list []string

func (l *list) String() string     { return strings.Join(*l, ",") }
func (l *list) Set(v string) error { *l = append(*l, v); return nil }

func main() {
	var id events.Identity
	var roles, groups list
	natsURL := flag.String("nats", envOr("JITPROV_NATS_URL", nats.DefaultURL), "NATS server URL")
	timeout := flag.Duration("timeout", 5*time.Second, "how long to wait for the answer")
	flag.StringVar(&id.OrganizationID, "org", "", "organisation id (required)")
	flag.StringVar(&id.ConnectionID, "connection", "", "connection id (required)")
	flag.StringVar(&id.ExternalID, "id", "", "external id at the IdP (required)")
	flag.StringVar(&id.Email, "email", "", "email")
	flag.BoolVar(&id.EmailVerified, "email-verified", true, "the IdP vouches for the email")
	flag.StringVar(&id.GivenName, "given-name", "", "given name")
	flag.StringVar(&id.FamilyName, "family-name", "", "family name")
	protocol := flag.String("protocol", "saml", "saml or oidc")
	flag.Var(&roles, "role", "claimed role (repeatable)")
	flag.Var(&groups, "group", "group (repeatable)")
	flag.Parse()
	id.Protocol, id.Roles, id.Groups, id.AuthenticatedAt = events.Protocol(*protocol), roles, groups, time.Now().UTC()
	if id.OrganizationID == "" || id.ConnectionID == "" || id.ExternalID == "" {
		fmt.Fprintln(os.Stderr, "jitprov-login: -org, -connection and -id are required")
		flag.Usage()
		os.Exit(2)
	}
	if err := run(*natsURL, *timeout, id); err != nil {
		fmt.Fprintln(os.Stderr, "jitprov-login:", err)
		os.Exit(1)
	}
}

func run(url string, timeout time.Duration, id events.Identity) error {
	nc, err := nats.Connect(url, nats.Name("jitprov-login"))
	if err != nil {
		return fmt.Errorf("connect to NATS at %s: %w", url, err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	c, err := bus.NewClient(nc, js, "/jitprov/jitprov-login")
	if err != nil {
		return err
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	res, err := c.Provision(ctx, id)
	if errors.Is(err, bus.ErrPending) {
		return fmt.Errorf("%w (is a provisioner running?)", err)
	}
	if err != nil {
		return err
	}
	out, _ := json.MarshalIndent(res, "", "  ")
	fmt.Println(string(out))
	return nil
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}
