package loadgen

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"

	"github.com/tideserve/tide/internal/queue"
)

// Queue targets publish each request for queue workers to answer (serve
// --queue-url) instead of sending it: a request is one publish, its latency
// the broker's acknowledgement, and the run's backlog comes from the workers'
// consumer group.
const (
	// ProtocolNATS publishes to a JetStream subject: nats://HOST:PORT/SUBJECT.
	ProtocolNATS Protocol = "nats-publish"
	// ProtocolRedis adds to a Redis stream: redis://[:PASS@]HOST:PORT/STREAM.
	ProtocolRedis Protocol = "redis-publish"
)

// IsQueue reports whether the protocol publishes to a broker.
func (p Protocol) IsQueue() bool { return p == ProtocolNATS || p == ProtocolRedis }

// Queue URL shapes, for error messages.
const (
	natsURLForm  = "nats://[USER:PASS@]HOST:PORT/SUBJECT"
	redisURLForm = "redis://[:PASS@]HOST:PORT/STREAM"
)

// parseQueueTarget checks a nats:// or redis:// URL, whose path names the
// subject or the stream.
func parseQueueTarget(u *url.URL) (Target, error) {
	t, form, what := Target{URL: u, Protocol: ProtocolNATS}, natsURLForm, "subject (no wildcards)"
	if u.Scheme == "redis" {
		t.Protocol, form, what = ProtocolRedis, redisURLForm, "stream key"
	}
	name := strings.TrimPrefix(u.Path, "/")
	switch {
	case u.Host == "":
		return Target{}, fmt.Errorf("target %s: no host; want %s", queue.RedactURL(u), form)
	case name == "" || strings.ContainsAny(name, "/ ") || (t.Protocol == ProtocolNATS && strings.ContainsAny(name, "*>")):
		return Target{}, fmt.Errorf("target %s: the path must be one %s; want %s", queue.RedactURL(u), what, form)
	case u.RawQuery != "" || u.Fragment != "":
		return Target{}, fmt.Errorf("target %s: a queue URL takes no query or fragment", queue.RedactURL(u))
	}
	return t, nil
}

// Publisher sends one request to a broker and returns once the broker has it.
type Publisher interface {
	Publish(ctx context.Context, id string, body []byte) error
}

// QueuePublisher is a Publisher that also reads the workers' backlog.
type QueuePublisher interface {
	Publisher
	// FollowBacklog reads the group's backlog every second until ctx ends.
	FollowBacklog(ctx context.Context, group string)
	// Backlog is the last backlog read; -1 when unknown.
	Backlog() int64
	Close()
}

// NewQueuePublisher connects to a nats:// or redis:// target.
func NewQueuePublisher(ctx context.Context, t Target) (QueuePublisher, error) {
	if t.Protocol == ProtocolRedis {
		return NewRedisPublisher(ctx, t)
	}
	return NewNATSPublisher(ctx, t)
}

// runID distinguishes one run's request ids from another's.
func runID() string { return strconv.FormatUint(rand.Uint64()>>20, 36) }

// pollBacklog calls read every second until ctx ends, storing what it
// returns (-1 when it fails).
func pollBacklog(ctx context.Context, into *atomic.Int64, read func(context.Context) (int64, error)) {
	for {
		n, err := read(ctx)
		if err != nil {
			n = -1
		}
		into.Store(n)
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Second):
		}
	}
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
		return nil, fmt.Errorf("nats: connect to %s: %w", queue.RedactURL(&u), err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("nats: %w", err)
	}
	p := &NATSPublisher{nc: nc, js: js, subject: strings.TrimPrefix(t.URL.Path, "/"), run: runID()}
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
	m.Header.Set(queue.HeaderID, id)
	m.Header.Set(jetstream.MsgIDHeader, id)
	_, err := p.js.PublishMsg(ctx, m)
	return err
}

// FollowBacklog reads the consumer's backlog (messages not yet acked: pending
// plus in hand, what KEDA's nats-jetstream scaler reads) every second until ctx
// ends; -1 while the consumer does not exist.
func (p *NATSPublisher) FollowBacklog(ctx context.Context, consumer string) {
	pollBacklog(ctx, &p.backlog, func(ctx context.Context) (int64, error) {
		c, err := p.js.Consumer(ctx, p.stream, consumer)
		if err != nil {
			return 0, err
		}
		return queue.NATSBacklog(ctx, c)
	})
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

// RedisPublisher adds each request to a Redis stream as an entry with "id"
// (its run and sequence number) and "body" fields, the queue worker's format.
type RedisPublisher struct {
	rdb     *redis.Client
	stream  string
	run     string
	backlog atomic.Int64
}

// NewRedisPublisher connects to the target's server (database 0).
func NewRedisPublisher(ctx context.Context, t Target) (*RedisPublisher, error) {
	u := *t.URL
	u.Path = ""
	opts, err := redis.ParseURL(u.String())
	if err != nil {
		return nil, fmt.Errorf("redis: %s: %w", queue.RedactURL(&u), err)
	}
	p := &RedisPublisher{rdb: redis.NewClient(opts), stream: strings.TrimPrefix(t.URL.Path, "/"), run: runID()}
	p.backlog.Store(-1)
	if err := p.rdb.Ping(ctx).Err(); err != nil {
		p.rdb.Close()
		return nil, fmt.Errorf("redis: connect to %s: %w", queue.RedactURL(&u), err)
	}
	return p, nil
}

// Publish adds one entry; Redis has taken it when XADD answers.
func (p *RedisPublisher) Publish(ctx context.Context, id string, body []byte) error {
	return p.rdb.XAdd(ctx, &redis.XAddArgs{Stream: p.stream, Values: []any{queue.FieldID, "load-" + p.run + "-" + id, queue.FieldBody, body}}).Err()
}

// FollowBacklog reads the group's backlog (entries not yet delivered plus
// delivered and unacked) every second until ctx ends; -1 while the group
// does not exist.
func (p *RedisPublisher) FollowBacklog(ctx context.Context, group string) {
	pollBacklog(ctx, &p.backlog, func(ctx context.Context) (int64, error) {
		return queue.RedisBacklog(ctx, p.rdb, p.stream, group)
	})
}

// Backlog is the last backlog read; -1 when unknown.
func (p *RedisPublisher) Backlog() int64 { return p.backlog.Load() }

// Close closes the connection.
func (p *RedisPublisher) Close() { p.rdb.Close() }
