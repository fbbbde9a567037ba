package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/jitprov/jitprov/internal/admin/client"
	"github.com/jitprov/jitprov/internal/cli"
	"github.com/jitprov/jitprov/internal/loadtest"
)

// Exit statuses of the admin commands, for scripts (docs/admin.md, "The
// CLI").
const (
	exitOK          = 0
	exitUsage       = 1 // a wrong command line, a value the API refuses (invalid), a file that cannot be read
	exitNotFound    = 2 // no such organisation, user, review, identity or token
	exitDenied      = 3 // no token, or one unknown, expired or revoked (unauthorized); the token may not do this (forbidden)
	exitConflict    = 4 // the thing's state does not allow it (a review decided already; no free seat)
	exitUnavailable = 5 // the API cannot be reached, did not answer in time, its database does not answer, or rate limited: retry
	exitInternal    = 6 // the API failed, or what answered is not the admin API
)

// stdin is what -f - reads.
var stdin io.Reader = os.Stdin

// env is one admin command's run: its settings and where it writes.
type env struct {
	ctx            context.Context
	getenv         func(string) string
	stdout, stderr io.Writer

	server, token, output string
	timeout               time.Duration
	cmd                   *command
}

// client is the API client of the command's settings.
func (e *env) client() (*client.Client, error) {
	c, err := client.New(e.server, e.token, client.WithTimeout(e.timeout))
	if err != nil {
		return nil, cli.Exit(exitUsage, err)
	}
	if e.token == "" {
		return nil, cli.Exit(exitDenied, errors.New("no API token: pass --token or set JITPROV_TOKEN "+
			"(create one with `jitprov tokens create`, the first one with `admin token create` on the admin service's host)"))
	}
	return c, nil
}

// print writes v as the output format says: the table of tbl, or v as
// JSON or YAML.
func (e *env) print(v any, tbl func(w io.Writer) error) error {
	if e.output == formatTable {
		return tbl(e.stdout)
	}
	return writeData(e.stdout, e.output, v)
}

// note writes a remark for people to stderr, never into data output.
func (e *env) note(format string, args ...any) {
	fmt.Fprintf(e.stderr, format+"\n", args...)
}

// command is one admin command.
type command struct {
	name    string // "users list"
	args    string // positional arguments, for usage: "ORG USER"
	summary string
	// nargs: how many positional arguments it takes (min, max; max -1:
	// any).
	min, max int
	// setup adds its flags to fs and returns what runs it.
	setup func(fs *flag.FlagSet) func(e *env, args []string) error
}

func (c *command) usage() string {
	return strings.TrimSpace("jitprov " + c.name + " " + c.args)
}

// orgArg takes an organisation from --org or the first argument: ORG is
// positional everywhere, and --org is accepted too.
type orgArg struct{ org string }

func (o *orgArg) flag(fs *flag.FlagSet) {
	fs.StringVar(&o.org, "org", "", "the organisation (instead of the ORG argument)")
}

// take returns the organisation and the remaining arguments.
func (o *orgArg) take(args []string) (string, []string, error) {
	if o.org != "" {
		return o.org, args, nil
	}
	if len(args) == 0 || args[0] == "" {
		return "", nil, errors.New("name the organisation: ORG or --org ORG")
	}
	return args[0], args[1:], nil
}

// runAdmin runs the admin command args names (args[0] is its noun).
func runAdmin(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cmd, rest := lookup(args)
	if cmd == nil {
		name := args[0]
		if len(args) > 1 && hasNoun(args[0]) {
			if strings.HasPrefix(args[1], "-") {
				return cli.Exit(exitUsage, fmt.Errorf("name a command of %s: %s\n(see `jitprov help`)", args[0], strings.Join(verbs(args[0]), ", ")))
			}
			name = args[0] + " " + args[1]
		} else if hasNoun(args[0]) {
			return cli.Exit(exitUsage, fmt.Errorf("name a command of %s: %s\n(see `jitprov help`)", args[0], strings.Join(verbs(args[0]), ", ")))
		}
		fmt.Fprintln(stderr, usage)
		return cli.Exit(exitUsage, fmt.Errorf("unknown command %q", name))
	}
	e := &env{ctx: ctx, getenv: getenv, stdout: stdout, stderr: stderr, cmd: cmd}
	fs := flag.NewFlagSet("jitprov "+cmd.name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&e.server, "server", getenv("JITPROV_ADMIN_URL"), "")
	fs.StringVar(&e.token, "token", "", "")
	fs.StringVar(&e.output, "o", formatTable, "")
	fs.StringVar(&e.output, "output", formatTable, "")
	fs.DurationVar(&e.timeout, "timeout", client.DefaultTimeout, "")
	runCmd := cmd.setup(fs)
	pos, err := parseInterspersed(fs, rest)
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprint(stdout, commandHelp(cmd))
		return nil
	}
	if err != nil {
		return cli.Exit(exitUsage, fmt.Errorf("%v\nusage: %s (see `jitprov help %s`)", err, cmd.usage(), cmd.name))
	}
	if e.token == "" {
		e.token = getenv("JITPROV_TOKEN")
	}
	e.token = strings.TrimSpace(e.token)
	if !slices.Contains([]string{formatTable, formatJSON, formatYAML}, e.output) {
		return cli.Exit(exitUsage, fmt.Errorf("-o %q: want table, json or yaml", e.output))
	}
	if e.timeout <= 0 {
		return cli.Exit(exitUsage, errors.New("--timeout: want a positive duration such as 30s"))
	}
	n := len(pos)
	if strings.HasPrefix(cmd.args, "ORG") && flagSet(fs, "org") {
		n++ // --org stands for the ORG argument
	}
	if n < cmd.min || (cmd.max >= 0 && n > cmd.max) {
		got := "none"
		if len(pos) > 0 {
			got = strings.Join(pos, " ")
		}
		return cli.Exit(exitUsage, fmt.Errorf("%s takes %s; got %s\nusage: %s (see `jitprov help %s`)",
			cmd.name, argCount(cmd), got, cmd.usage(), cmd.name))
	}
	return exitFor(runCmd(e, pos))
}

func argCount(c *command) string {
	switch {
	case c.min == c.max && c.min == 0:
		return "no arguments"
	case c.min == c.max:
		return cmp.Or(c.args, fmt.Sprint(c.min, " arguments"))
	case c.max < 0:
		return fmt.Sprintf("at least %d arguments", c.min)
	}
	return fmt.Sprintf("%d to %d arguments", c.min, c.max)
}

// exitFor gives an API error the exit status its code calls for.
func exitFor(err error) error {
	var ce *client.Error
	var ee *cli.ExitError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &ee):
		return err
	case !errors.As(err, &ce):
		return cli.Exit(exitUsage, err)
	}
	code := exitInternal
	switch ce.Code {
	case "invalid":
		code = exitUsage
	case "not_found":
		code = exitNotFound
	case "unauthorized", "forbidden":
		code = exitDenied
	case "conflict", "no_seat":
		code = exitConflict
	case "unavailable", "rate_limited", client.CodeUnreachable:
		code = exitUnavailable
	}
	return cli.Exit(code, err)
}

// parseInterspersed parses flags anywhere among the arguments, as kubectl
// does (jitprov users get acme u1 -o json); after "--" everything is an
// argument.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if consumed := args[:len(args)-len(rest)]; len(consumed) > 0 && consumed[len(consumed)-1] == "--" {
			return append(pos, rest...), nil
		}
		if len(rest) == 0 {
			return pos, nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// flagSet reports whether the command line set the flag name.
func flagSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

// lookup finds the command args names: "noun verb" or a single word.
func lookup(args []string) (*command, []string) {
	if len(args) > 1 {
		for _, c := range commands {
			if c.name == args[0]+" "+args[1] {
				return c, args[2:]
			}
		}
	}
	for _, c := range commands {
		if c.name == args[0] {
			return c, args[1:]
		}
	}
	return nil, nil
}

func hasNoun(noun string) bool { return len(verbs(noun)) > 0 }

func verbs(noun string) []string {
	var out []string
	for _, c := range commands {
		if v, ok := strings.CutPrefix(c.name, noun+" "); ok {
			out = append(out, v)
		}
	}
	return out
}

const globalFlags = `Flags of every admin command (anywhere on the line):
  --server URL      the admin service (default $JITPROV_ADMIN_URL), e.g. https://sso.example.com
  --token TOKEN     an API token, jpt_… (default $JITPROV_TOKEN; prefer the variable:
                    a flag is visible to other users of the machine)
  -o, --output FMT  table (default), json or yaml: json and yaml print the API's answer
  --timeout D       bound each request (default 30s)
`

const exitCodes = `Exit status:
  0  done (a repeat that changed nothing included)
  1  usage: a wrong command line, a value the API refuses, a file that cannot be read
  2  not found: no such organisation, user, review, identity or token
  3  denied: no token, or one unknown, expired or revoked; or the token may not do this
  4  conflict: a review decided already, an identity linked elsewhere, no free seat
  5  unavailable: the API cannot be reached or its database does not answer; rate limited (retry)
  6  the API failed, or what answered is not the admin API
`

// commandHelp is one command's help: usage, summary, flags.
func commandHelp(c *command) string {
	var b strings.Builder
	fmt.Fprintf(&b, "usage: %s [flags]\n\n%s\n", c.usage(), c.summary)
	fs := flag.NewFlagSet(c.name, flag.ContinueOnError)
	c.setup(fs)
	var own strings.Builder
	fs.SetOutput(&own)
	fs.PrintDefaults()
	if own.Len() > 0 {
		fmt.Fprintf(&b, "\nFlags:\n%s", own.String())
	}
	fmt.Fprintf(&b, "\n%s\n%s", globalFlags, exitCodes)
	return b.String()
}

// help writes `jitprov help [COMMAND]`.
func help(args []string, stdout io.Writer) error {
	if len(args) > 0 {
		if c, rest := lookup(args); c != nil && len(rest) == 0 {
			fmt.Fprint(stdout, commandHelp(c))
			return nil
		}
		if args[0] == "dev" {
			fmt.Fprintln(stdout, devUsage)
			return nil
		}
		if args[0] == "loadtest" {
			fmt.Fprintln(stdout, loadtest.Usage)
			return nil
		}
		if hasNoun(args[0]) && len(args) == 1 {
			for _, c := range commands {
				if strings.HasPrefix(c.name, args[0]+" ") {
					fmt.Fprintf(stdout, "  %-44s %s\n", strings.TrimPrefix(c.usage(), "jitprov "), firstLine(c.summary))
				}
			}
			return nil
		}
		return cli.Exit(exitUsage, fmt.Errorf("no command %q: see `jitprov help`", strings.Join(args, " ")))
	}
	fmt.Fprintln(stdout, usage)
	return nil
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}

// commandList is the commands' lines of the usage.
func commandList() string {
	var b strings.Builder
	for _, c := range commands {
		fmt.Fprintf(&b, "  %-46s %s\n", strings.TrimPrefix(c.usage(), "jitprov "), firstLine(c.summary))
	}
	return b.String()
}
