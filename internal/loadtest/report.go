package loadtest

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
)

// WriteText prints the report as a table.
func (rep *Report) WriteText(w io.Writer) error {
	fmt.Fprintf(w, "jitprov loadtest %s against %s (%d CPUs here)\n", rep.RunID, rep.EdgeURL, rep.CPUs)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "scenario\tmode\torgs\tlogins\tseconds\tsigned in/s\tp50 ms\tp95 ms\tp99 ms\tp99.9 ms\tmax ms\t")
	for _, s := range rep.Scenarios {
		mode := fmt.Sprintf("closed %d", s.Concurrency)
		if s.Mode == ModeOpen {
			mode = fmt.Sprintf("open %g/s", s.TargetRate)
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%.1f\t%.1f\t%.1f\t%.1f\t%.1f\t%.1f\t%.1f\t\n", s.Name, mode, s.Orgs, s.Logins,
			s.Seconds, s.Rate, s.P50, s.P95, s.P99, s.P999, s.Max)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, s := range rep.Scenarios {
		var parts []string
		for _, k := range slices.Sorted(maps.Keys(s.Outcomes)) {
			parts = append(parts, fmt.Sprintf("%s %d", k, s.Outcomes[k]))
		}
		note := ""
		if s.Exhausted {
			note = fmt.Sprintf(" (all %d signed responses used before the end: raise -logins)", s.Signed)
		}
		fmt.Fprintf(w, "%s outcomes: %s; %d responses signed beforehand in %.2fs%s\n", s.Name, strings.Join(parts, ", "), s.Signed, s.SignSeconds, note)
		if sc := s.Scrapes; sc != nil {
			fmt.Fprintf(w, "%s scrapes of %d /metrics every %gs: %d (%d failed), mean %.1f ms, max %.1f ms, %d bytes a round\n",
				s.Name, len(sc.URLs), sc.Every, sc.Count, sc.Errors, sc.MeanMs, sc.MaxMs, sc.Bytes)
		}
	}
	if inv := rep.Invariants; inv != nil {
		fmt.Fprintf(w, "invariant users = created answers: %d = %d %s\n", inv.RunUsers, inv.CreatedAnswers, okText(inv.UsersOK))
		bad := 0
		for _, s := range inv.Seats {
			if s.SeatsUsed != s.ActiveUsers {
				bad++
				fmt.Fprintf(w, "  %s: seats_used %d, active users %d\n", s.Org, s.SeatsUsed, s.ActiveUsers)
			}
		}
		fmt.Fprintf(w, "invariant seats_used = active users in %d organisations: %s\n", len(inv.Seats), okText(inv.SeatsOK))
	}
	return nil
}

func okText(ok bool) string {
	if ok {
		return "ok"
	}
	return "FAILED"
}

// WriteJSON prints the report as one JSON object.
func (rep *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(rep)
}

// WriteText prints the comparison: the scenarios, CPU per login and peak
// memory of each process, pgbench, the ratios against the targets, the
// invariants.
func (rep *CompareReport) WriteText(w io.Writer) error {
	fmt.Fprintf(w, "jitprov loadtest compare %s (%d CPUs here; %v)\n", rep.RunID, rep.CPUs, settingsText(rep.Settings))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "scenario\ttarget\torgs\tlogins\tsigned in/s\tp50 ms\tp95 ms\tp99 ms\tp99.9 ms\tCPU ms/login\t")
	for _, s := range rep.Scenarios {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%.1f\t%.1f\t%.1f\t%.1f\t%.1f\t%s\t\n", s.Name, s.Target, s.Orgs, s.Logins,
			s.Rate, s.P50, s.P95, s.P99, s.P999, cpuText(s.CPUMsPerLogin))
	}
	if p := rep.Pgbench; p != nil {
		fmt.Fprintf(tw, "pgbench\tdecision tx\t%s\t%d clients\t%.1f\t(avg %.1f)\t\t\t\t\t\n", "", p.Clients, p.TPS, p.LatencyAvgMs)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, s := range rep.Scenarios {
		var parts []string
		for _, k := range slices.Sorted(maps.Keys(s.Outcomes)) {
			parts = append(parts, fmt.Sprintf("%s %d", k, s.Outcomes[k]))
		}
		note := ""
		if s.Signed > 0 {
			note = fmt.Sprintf("; %d responses signed beforehand in %.2fs", s.Signed, s.SignSeconds)
		}
		if s.Exhausted {
			note += " (all used before the end: raise -logins)"
		}
		if s.LoginsPerTransaction > 0 {
			note += fmt.Sprintf("; the provisioner decided %.2f logins per transaction", s.LoginsPerTransaction)
		}
		fmt.Fprintf(w, "%s outcomes: %s%s\n", s.Name, strings.Join(parts, ", "), note)
	}
	fmt.Fprintf(w, "peak RSS (VmHWM): %s\n", byProcess(rep.PeakRSSMB, "%s %.0f MB", ", "))
	fmt.Fprintln(w, "ratios (the performance targets, docs/performance.md):")
	for _, t := range rep.Targets {
		met := "met"
		if !t.Met {
			met = "NOT met"
		}
		fmt.Fprintf(w, "  %-40s %8.3f  want %-6s %s\n", t.Name, t.Value, t.Want, met)
	}
	for _, k := range slices.Sorted(maps.Keys(rep.Ratios)) {
		if !slices.ContainsFunc(rep.Targets, func(t TargetCheck) bool { return t.Name == k }) {
			fmt.Fprintf(w, "  %-40s %8.3f\n", k, rep.Ratios[k])
		}
	}
	for _, k := range slices.Sorted(maps.Keys(rep.Invariant)) {
		inv := rep.Invariant[k]
		fmt.Fprintf(w, "invariants %s: users = created answers %d = %d %s; seats_used = active users in %d organisations %s\n",
			k, inv.RunUsers, inv.CreatedAnswers, okText(inv.UsersOK), len(inv.Seats), okText(inv.SeatsOK))
	}
	if e := rep.UserCreated; e != nil {
		fmt.Fprintf(w, "invariant one user.created per user (edge organisations): %d users, %d events, %d without, %d with several %s\n",
			e.Users, e.Events, e.Missing, e.Duplicates, okText(e.OK))
	}
	if rep.WorkDir != "" {
		fmt.Fprintf(w, "kept: %s (logs, binaries, state), database %s\n", rep.WorkDir, rep.Database)
	}
	return nil
}

// WriteJSON prints the comparison as one JSON object.
func (rep *CompareReport) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(rep)
}

func cpuText(m map[string]float64) string { return byProcess(m, "%s %.2f", " ") }

// byProcess prints m's figures by process name, the nodes of a NATS
// cluster (nats-server-n1…) in parentheses after their sum (nats-server).
func byProcess(m map[string]float64, format, sep string) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		if strings.HasPrefix(k, ProcNATS+"-") {
			continue
		}
		part := fmt.Sprintf(format, k, m[k])
		if k == ProcNATS {
			var nodes []string
			for _, n := range slices.Sorted(maps.Keys(m)) {
				if node, ok := strings.CutPrefix(n, ProcNATS+"-"); ok {
					nodes = append(nodes, fmt.Sprintf(format, node, m[n]))
				}
			}
			if len(nodes) > 0 {
				part += " (" + strings.Join(nodes, sep) + ")"
			}
		}
		parts = append(parts, part)
	}
	return strings.Join(parts, sep)
}

func settingsText(m map[string]any) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, fmt.Sprintf("%s=%v", k, m[k]))
	}
	return strings.Join(parts, " ")
}
