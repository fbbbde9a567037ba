package notify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/metric"

	"github.com/jitprov/jitprov/internal/bus"
)

// Parked is a job in the dead-letter stream.
type Parked struct {
	Seq      uint64
	ParkedAt time.Time
	Job      Job
	Error    string
	Attempts int
}

// ListParked lists the parked jobs, oldest first; org "" lists every
// organisation's.
func ListParked(ctx context.Context, js jetstream.JetStream, org string) ([]Parked, error) {
	stream, err := js.Stream(ctx, StreamDead)
	if err != nil {
		return nil, fmt.Errorf("notify: stream %s: %w", StreamDead, err)
	}
	info, err := stream.Info(ctx)
	if err != nil {
		return nil, fmt.Errorf("notify: stream %s: %w", StreamDead, err)
	}
	var out []Parked
	if info.State.Msgs == 0 {
		return out, nil
	}
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq; seq++ {
		p, err := getParked(ctx, stream, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue // replayed or expired
		} else if err != nil {
			return nil, err
		}
		if org == "" || p.Job.Org == org {
			out = append(out, p)
		}
	}
	return out, nil
}

func getParked(ctx context.Context, stream jetstream.Stream, seq uint64) (Parked, error) {
	m, err := stream.GetMsg(ctx, seq)
	if err != nil {
		return Parked{}, err
	}
	p := Parked{Seq: seq, ParkedAt: m.Time, Error: m.Header.Get(HeaderError)}
	p.Attempts, _ = strconv.Atoi(m.Header.Get(HeaderAttempts))
	if err := json.Unmarshal(m.Data, &p.Job); err != nil {
		return p, fmt.Errorf("notify: parked job %d is unreadable: %w", seq, err)
	}
	return p, nil
}

// Replay queues the parked job seq again as a new delivery with a full set
// of tries, and removes it from the dead-letter stream. It returns the job
// as queued.
func Replay(ctx context.Context, js jetstream.JetStream, seq uint64) (Job, error) {
	stream, err := js.Stream(ctx, StreamDead)
	if err != nil {
		return Job{}, fmt.Errorf("notify: stream %s: %w", StreamDead, err)
	}
	p, err := getParked(ctx, stream, seq)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return Job{}, fmt.Errorf("notify: no parked job %d (already replayed, or expired): %w", seq, err)
	} else if err != nil {
		return Job{}, err
	}
	j := p.Job
	j.Replay++
	data, err := json.Marshal(j)
	if err != nil {
		return Job{}, err
	}
	_, err = js.PublishMsg(ctx, &nats.Msg{Subject: subjectJobs + "." + j.Org, Data: data}, jetstream.WithMsgID(j.MsgID()))
	if err != nil {
		return Job{}, fmt.Errorf("notify: queue the replay of parked job %d: %w", seq, err)
	}
	// Queued first, then removed: a crash in between leaves the job both
	// queued and parked, and replaying it again queues another delivery,
	// never none.
	if err := stream.DeleteMsg(ctx, seq); err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) {
		return j, fmt.Errorf("notify: replayed parked job %d but could not remove it from %s: %w", seq, StreamDead, err)
	}
	return j, nil
}

// registerParkedGauge reports the jobs parked in NOTIFY_DEAD (those that
// `notifier dead list` shows), read from the stream's info at most every
// bus.GaugeCacheFor.
func registerParkedGauge(m metric.Meter, js jetstream.JetStream, log *slog.Logger) error {
	g, err := m.Int64ObservableGauge("jitprov.notifier.parked.jobs",
		metric.WithDescription("Jobs parked now in the dead-letter stream NOTIFY_DEAD, waiting for `notifier dead replay`."),
		metric.WithUnit("{job}"))
	if err != nil {
		return err
	}
	info := bus.NewCached(bus.GaugeCacheFor, func(ctx context.Context) (*jetstream.StreamInfo, error) {
		s, err := js.Stream(ctx, StreamDead)
		if err != nil {
			return nil, err
		}
		return s.Info(ctx)
	})
	_, err = m.RegisterCallback(func(ctx context.Context, o metric.Observer) error {
		si, err := info.Get(ctx)
		if err != nil {
			log.DebugContext(ctx, "parked gauge: no stream info", "stream", StreamDead, "err", err)
			return nil
		}
		o.ObserveInt64(g, int64(si.State.Msgs))
		return nil
	}, g)
	return err
}
