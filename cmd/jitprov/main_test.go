package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
)

func TestUsageAndStartErrors(t *testing.T) {
	taken, err := net.Listen("tcp", "localhost:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	port := taken.Addr().(*net.TCPAddr).Port
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "name a command"},
		{[]string{"serve"}, `unknown command "serve"`},
		{[]string{"dev", "extra"}, `unexpected argument "extra"`},
		{[]string{"dev", "-log-level", "loud"}, "log level"},
		{[]string{"dev", "-data", t.TempDir(), "-dev-port", fmt.Sprint(port)}, fmt.Sprintf("the demo port %d is taken (choose another with -dev-port)", port)},
		{[]string{"dev", "-data", t.TempDir(), "-dev-port", fmt.Sprint(freePorts(t, 1)[0]), "-edge-port", fmt.Sprint(port)}, fmt.Sprintf("the edge port %d is taken (choose another with -edge-port)", port)},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			var out, errOut bytes.Buffer
			err := run(context.Background(), tc.args, func(string) string { return "" }, &out, &errOut)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("run(%q) = %v, want an error containing %q", tc.args, err, tc.want)
			}
		})
	}
}
