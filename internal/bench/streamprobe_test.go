package bench

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"
)

// The probe reports one row per stream count, each with acknowledged
// publishes, and prints them; a publish failure would fail it.
func TestStreamProbeReportsEveryStreamCount(t *testing.T) {
	var out bytes.Buffer
	res, err := StreamProbe(context.Background(), Options{StoreDir: t.TempDir(), NATSSync: true}, []int{1, 3}, 3, 200*time.Millisecond, &out)
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 2 || res[0].Streams != 1 || res[1].Streams != 3 {
		t.Fatalf("rows %+v, want one for 1 stream and one for 3", res)
	}
	for _, r := range res {
		if r.PerSecond <= 0 || !r.SyncAlways || r.Publishers != 3 {
			t.Errorf("row %+v: want acknowledged publishes, fsync on, 3 publishers", r)
		}
	}
	if !strings.Contains(out.String(), "fsync every write: true") {
		t.Errorf("output does not say the fsync policy:\n%s", out.String())
	}
}
