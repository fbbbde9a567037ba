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
