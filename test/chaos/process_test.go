//go:build chaos

package chaos

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// proc is one child process of the suite, run (and re-run) from the same
// command line: its own process group, so that a signal reaches it and
// whatever it forked; its stderr and stdout appended to one log file per
// process; killed with the test binary (Pdeathsig) so that a timed-out run
// leaves nothing behind.
type proc struct {
	name    string
	path    string
	args    []string
	env     []string
	logPath string
	cred    *syscall.Credential // run as another user (Postgres as root)

	mu       sync.Mutex
	cmd      *exec.Cmd
	done     chan struct{} // closed when the current run has exited
	expected bool          // the suite stopped or killed the current run
	starts   int
	exits    []exitRecord // runs that ended without the suite asking
	crashed  bool         // the last run ended without the suite asking
}

// exitRecord is a run that ended by itself: a crash or a refusal to start.
type exitRecord struct {
	At       time.Time
	Err      string
	LastLine string
}

func (e exitRecord) String() string {
	return fmt.Sprintf("exited at %s (%s): %s", e.At.Format("15:04:05.000"), e.Err, e.LastLine)
}

// start runs the process once more. It returns when the process has been
// started, not when it is ready.
func (p *proc) start() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd != nil && !isClosed(p.done) {
		return fmt.Errorf("%s is already running (pid %d)", p.name, p.cmd.Process.Pid)
	}
	logf, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("%s: log file: %w", p.name, err)
	}
	p.starts++
	fmt.Fprintf(logf, "=== chaos: start #%d of %s at %s: %s %s\n", p.starts, p.name,
		time.Now().Format(time.RFC3339Nano), p.path, strings.Join(p.args, " "))
	cmd := exec.Command(p.path, p.args...)
	cmd.Env = p.env
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL, Credential: p.cred}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("%s: start: %w", p.name, err)
	}
	done := make(chan struct{})
	p.cmd, p.done, p.expected = cmd, done, false
	go func() {
		werr := cmd.Wait()
		logf.Close()
		p.mu.Lock()
		p.crashed = !p.expected
		if !p.expected {
			msg := "exit status 0"
			if werr != nil {
				msg = werr.Error()
			}
			p.exits = append(p.exits, exitRecord{At: time.Now(), Err: msg, LastLine: lastLine(p.logPath)})
		}
		p.mu.Unlock()
		close(done)
	}()
	return nil
}

// running reports whether the current run has not exited.
func (p *proc) running() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cmd != nil && !isClosed(p.done)
}

// pid of the current run, 0 when none.
func (p *proc) pid() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return 0
	}
	return p.cmd.Process.Pid
}

// exited is closed when the current run ends.
func (p *proc) exited() <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.done == nil {
		c := make(chan struct{})
		close(c)
		return c
	}
	return p.done
}

// lastRunCrashed reports whether the last run ended without the suite
// asking.
func (p *proc) lastRunCrashed() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.crashed && isClosed(p.done)
}

// unexpectedExits lists the runs that ended without the suite asking.
func (p *proc) unexpectedExits() []exitRecord {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]exitRecord(nil), p.exits...)
}

// signalGroup sends sig to the process group of the current run. expectExit
// marks the exit it may cause as the suite's doing.
func (p *proc) signalGroup(sig syscall.Signal, expectExit bool) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil || isClosed(p.done) {
		return fmt.Errorf("%s is not running", p.name)
	}
	if expectExit {
		p.expected = true
	}
	p.mark("%s to the process group", sigName(sig))
	if err := syscall.Kill(-p.cmd.Process.Pid, sig); err != nil {
		return fmt.Errorf("%s: signal %s: %w", p.name, sig, err)
	}
	return nil
}

func sigName(sig syscall.Signal) string {
	switch sig {
	case syscall.SIGKILL:
		return "SIGKILL"
	case syscall.SIGTERM:
		return "SIGTERM"
	case syscall.SIGSTOP:
		return "SIGSTOP"
	case syscall.SIGCONT:
		return "SIGCONT"
	case syscall.SIGQUIT:
		return "SIGQUIT"
	}
	return sig.String()
}

// mark writes a line of the suite's into the process's log, so that the
// log shows what was done to the process, and when.
func (p *proc) mark(format string, args ...any) {
	if f, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644); err == nil {
		fmt.Fprintf(f, "=== chaos: %s: %s\n", time.Now().Format(time.RFC3339Nano), fmt.Sprintf(format, args...))
		f.Close()
	}
}

// signalLeader sends sig to the process itself only (Postgres's postmaster
// decides how to shut its backends down).
func (p *proc) signalLeader(sig syscall.Signal, expectExit bool) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil || isClosed(p.done) {
		return fmt.Errorf("%s is not running", p.name)
	}
	if expectExit {
		p.expected = true
	}
	p.mark("%s to the process", sigName(sig))
	if err := p.cmd.Process.Signal(sig); err != nil {
		return fmt.Errorf("%s: signal %s: %w", p.name, sig, err)
	}
	return nil
}

// kill9 kills the process group and waits for the run to end.
func (p *proc) kill9() error {
	if err := p.signalGroup(syscall.SIGKILL, true); err != nil {
		return err
	}
	return p.wait(10 * time.Second)
}

// stop asks the process to stop (SIGTERM), and kills it after grace.
func (p *proc) stop(grace time.Duration) error {
	if !p.running() {
		return nil
	}
	if err := p.signalGroup(syscall.SIGTERM, true); err != nil {
		return err
	}
	if err := p.wait(grace); err == nil {
		return nil
	}
	// A frozen process cannot act on SIGTERM.
	_ = p.signalGroup(syscall.SIGCONT, true)
	_ = p.signalGroup(syscall.SIGKILL, true)
	return p.wait(10 * time.Second)
}

// wait waits up to d for the current run to end.
func (p *proc) wait(d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-p.exited():
		return nil
	case <-t.C:
		return fmt.Errorf("%s did not exit within %s", p.name, d)
	}
}

// cleanup kills whatever still runs, frozen or not, and waits for it.
func (p *proc) cleanup() {
	if !p.running() {
		return
	}
	_ = p.signalGroup(syscall.SIGKILL, true)
	_ = p.signalGroup(syscall.SIGCONT, true)
	_ = p.wait(10 * time.Second)
}

func isClosed(c chan struct{}) bool {
	if c == nil {
		return true
	}
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// lastLine is the last non-empty line of a log file, for exit reports.
func lastLine(path string) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if l := strings.TrimSpace(lines[i]); l != "" && !strings.HasPrefix(l, "=== chaos:") {
			if len(l) > 400 {
				l = l[:400] + "…"
			}
			return l
		}
	}
	return ""
}

// runOnce runs a one-shot command (initdb, provisioner migrate) to
// completion within d, its output appended to logPath, and returns the
// output with the error.
func runOnce(ctx context.Context, d time.Duration, logPath string, cred *syscall.Credential, env []string, path string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.Env = env
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL, Credential: cred}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	err := cmd.Run()
	if f, ferr := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644); ferr == nil {
		fmt.Fprintf(f, "=== chaos: %s %s\n%s", path, strings.Join(args, " "), out.String())
		f.Close()
	}
	if err != nil {
		return out.String(), fmt.Errorf("%s %s: %w: %s", path, strings.Join(args, " "), err, strings.TrimSpace(out.String()))
	}
	return out.String(), nil
}

// logSummary counts the ERROR-level records of a JSON-lines log by
// message, for the report of a failed scenario. A sampled line (the edge
// logs one line per kind of refusal and interval) counts with the events
// it says it held back ("suppressed"), under its message without the
// note of them.
func logSummary(path string) map[string]int {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	out := map[string]int{}
	r := bufio.NewReaderSize(f, 1<<20)
	for {
		line, err := r.ReadBytes('\n')
		if bytes.Contains(line, []byte(`"level":"ERROR"`)) {
			msg, _, _ := strings.Cut(jsonField(line, "msg"), " (and ")
			out[msg] += 1 + jsonInt(line, "suppressed")
		}
		if err != nil { // io.EOF, or a file cut short
			return out
		}
	}
}

// jsonInt pulls a top-level number field out of a JSON log line; 0 when
// there is none.
func jsonInt(line []byte, key string) int {
	k := []byte(`"` + key + `":`)
	i := bytes.Index(line, k)
	if i < 0 {
		return 0
	}
	n := 0
	for _, c := range line[i+len(k):] {
		if c < '0' || c > '9' {
			break
		}
		n = n*10 + int(c-'0')
	}
	return n
}

// jsonField pulls a top-level string field out of a JSON log line without
// decoding it all (good enough for slog's JSON handler).
func jsonField(line []byte, key string) string {
	k := []byte(`"` + key + `":"`)
	i := bytes.Index(line, k)
	if i < 0 {
		return ""
	}
	rest := line[i+len(k):]
	var b strings.Builder
	for j := 0; j < len(rest); j++ {
		switch rest[j] {
		case '\\':
			if j+1 < len(rest) {
				b.WriteByte(rest[j+1])
				j++
			}
		case '"':
			return b.String()
		default:
			b.WriteByte(rest[j])
		}
	}
	return b.String()
}

// grepLog returns the lines of a log file that contain s.
func grepLog(path, s string) [][]byte {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	var out [][]byte
	for _, line := range bytes.Split(data, []byte("\n")) {
		if bytes.Contains(line, []byte(s)) {
			out = append(out, line)
		}
	}
	return out
}
