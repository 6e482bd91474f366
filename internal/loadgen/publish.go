package loadgen

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// ProtocolNATS publishes each request to a JetStream subject, for a queue
// worker to answer (serve --queue-url): nats://HOST:PORT/SUBJECT. A request is
// one publish; its latency is the stream's ack, and the run's backlog comes
// from the worker's consumer.
const ProtocolNATS Protocol = "nats-publish"

// natsURLForm is the shape of a NATS target, for error messages.
const natsURLForm = "nats://[USER:PASS@]HOST:PORT/SUBJECT"

func parseNATSTarget(raw string, u *url.URL) (Target, error) {
	subject := strings.TrimPrefix(u.Path, "/")
	switch {
	case u.Host == "":
		return Target{}, fmt.Errorf("target %s: no host; want %s", redactURL(u), natsURLForm)
	case subject == "" || strings.ContainsAny(subject, "/ *>"):
		return Target{}, fmt.Errorf("target %s: the path must be one subject (no wildcards); want %s", redactURL(u), natsURLForm)
	case u.RawQuery != "" || u.Fragment != "":
		return Target{}, fmt.Errorf("target %s: a NATS URL takes no query or fragment", redactURL(u))
	}
	return Target{URL: u, Protocol: ProtocolNATS}, nil
}

// redactURL leaves a URL's credentials out of messages.
func redactURL(u *url.URL) string {
	c := *u
	if c.User != nil {
		c.User = url.User("redacted")
	}
	return c.String()
}

// Publisher sends one request to a broker and returns once the broker has it.
type Publisher interface {
	Publish(ctx context.Context, id string, body []byte) error
}

// NATSPublisher publishes to a JetStream subject; each message carries a
// Tide-Request-Id (its run and sequence number) and a Nats-Msg-Id, so a
// publish retried by the client is stored once.
type NATSPublisher struct {
	nc      *nats.Conn
	js      jetstream.JetStream
	subject string
	stream  string
	run     string // distinguishes this run's ids from another's
	backlog atomic.Int64
}

// NewNATSPublisher connects to the target's server and finds the stream that
// captures its subject (it must exist: the worker or its operator creates it).
func NewNATSPublisher(ctx context.Context, t Target) (*NATSPublisher, error) {
	u := *t.URL
	u.Path = ""
	nc, err := nats.Connect(u.String(), nats.Name("tide-load"), nats.Timeout(5*time.Second))
	if err != nil {
		return nil, fmt.Errorf("nats: connect to %s: %w", redactURL(&u), err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("nats: %w", err)
	}
	p := &NATSPublisher{nc: nc, js: js, subject: strings.TrimPrefix(t.URL.Path, "/"), run: strconv.FormatUint(rand.Uint64()>>20, 36)}
	p.backlog.Store(-1)
	if p.stream, err = js.StreamNameBySubject(ctx, p.subject); err != nil {
		nc.Close()
		return nil, fmt.Errorf("nats: no stream captures subject %q (create it, or start the worker with --queue-create-stream): %w", p.subject, err)
	}
	return p, nil
}

// Publish sends body and waits for the stream's ack.
func (p *NATSPublisher) Publish(ctx context.Context, id string, body []byte) error {
	m := nats.NewMsg(p.subject)
	m.Data = body
	id = "load-" + p.run + "-" + id
	m.Header.Set("Tide-Request-Id", id)
	m.Header.Set(jetstream.MsgIDHeader, id)
	_, err := p.js.PublishMsg(ctx, m)
	return err
}

// FollowBacklog reads the consumer's backlog (messages not yet acked: pending
// plus in hand, what KEDA's nats-jetstream scaler reads) every second until ctx
// ends. A consumer that does not exist yet reads as 0 once the stream is empty.
func (p *NATSPublisher) FollowBacklog(ctx context.Context, consumer string) {
	for {
		c, err := p.js.Consumer(ctx, p.stream, consumer)
		if err == nil {
			var info *jetstream.ConsumerInfo
			if info, err = c.Info(ctx); err == nil {
				p.backlog.Store(int64(info.NumPending) + int64(info.NumAckPending))
			}
		}
		if errors.Is(err, jetstream.ErrConsumerNotFound) {
			p.backlog.Store(-1)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Second):
		}
	}
}

// Backlog is the last backlog read; -1 when unknown.
func (p *NATSPublisher) Backlog() int64 { return p.backlog.Load() }

// Close flushes and closes the connection.
func (p *NATSPublisher) Close() { p.nc.Drain() }

// doPublish publishes one request and records it: 200 once the stream has
// it, an error otherwise.
func (r *run) doPublish(intended time.Time, late bool, rng *rand.Rand, seq uint64) {
	body := r.cfg.Body.Render(nil, rng, seq)
	r.rec.started(late)
	// As over HTTP, the publish outlives a cancelled run; its timeout bounds it.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	sent := time.Now()
	err := r.cfg.Publisher.Publish(ctx, strconv.FormatUint(seq, 10), body)
	if err != nil {
		r.rec.finished(time.Since(intended), time.Since(sent), 0, 0, err)
		return
	}
	r.rec.finished(time.Since(intended), time.Since(sent), 200, 0, nil)
}
