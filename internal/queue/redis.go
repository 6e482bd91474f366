package queue

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// RedisOptions say where the Redis Streams worker reads and writes. A request
// is a stream entry with a "body" field and optional "model" and "id" fields;
// results and dead letters are entries with "id", "status", "model", "body"
// (and "error", "deliveries" on a dead letter).
type RedisOptions struct {
	URL         string // redis://[:password@]host:6379/0 (credentials stay out of the logs)
	Stream      string // the requests' stream key
	Group       string // the consumer group the workers share (KEDA reads its lag)
	Consumer    string // this worker's name in the group (the pod's name)
	Results     string // the results' stream key ("" when an HTTP sink takes them)
	DeadLetters string // the dead letters' stream key
	// ClaimIdle: an entry delivered this long ago and not acked (its worker
	// died, or it was handed back) is claimed by the next worker that looks.
	// Redis has no delayed redelivery, so this is also the retry delay.
	ClaimIdle time.Duration
	// MaxLen caps the results and dead-letter streams, approximately (0: no cap).
	MaxLen int64
}

// Redis is a Broker on a Redis Streams consumer group.
type Redis struct {
	o         RedisOptions
	rdb       *redis.Client
	mu        sync.Mutex
	lastClaim time.Time
	cursor    string // XAUTOCLAIM's position
}

// DialRedis connects and makes sure the group exists. A new group starts at
// the stream's beginning, so that requests published before any worker ran
// are answered.
func DialRedis(ctx context.Context, o RedisOptions) (*Redis, error) {
	if o.Stream == "" || o.Group == "" || o.Consumer == "" || o.DeadLetters == "" {
		return nil, errors.New("redis: stream, group, consumer and dead-letter stream are all needed")
	}
	if o.ClaimIdle <= 0 {
		o.ClaimIdle = 30 * time.Second
	}
	opts, err := redis.ParseURL(o.URL)
	if err != nil {
		return nil, fmt.Errorf("redis: URL %s: %w", Redact(o.URL), err)
	}
	rdb := redis.NewClient(opts)
	err = rdb.XGroupCreateMkStream(ctx, o.Stream, o.Group, "0").Err()
	if err != nil && !strings.HasPrefix(err.Error(), "BUSYGROUP") {
		rdb.Close()
		return nil, fmt.Errorf("redis: group %q on stream %q at %s: %w", o.Group, o.Stream, Redact(o.URL), err)
	}
	return &Redis{o: o, rdb: rdb, cursor: "0-0"}, nil
}

// Fetch first takes over entries idle past ClaimIdle (at most every quarter of
// it), then reads new ones, waiting up to a second.
func (b *Redis) Fetch(ctx context.Context, max int) ([]*Message, error) {
	out, err := b.claim(ctx, max)
	if err != nil || len(out) >= max {
		return out, err
	}
	streams, err := b.rdb.XReadGroup(ctx, &redis.XReadGroupArgs{
		Group: b.o.Group, Consumer: b.o.Consumer, Streams: []string{b.o.Stream, ">"},
		Count: int64(max - len(out)), Block: time.Second,
	}).Result()
	if errors.Is(err, redis.Nil) || ctx.Err() != nil {
		return out, nil
	}
	if err != nil {
		return out, err
	}
	for _, s := range streams {
		for _, x := range s.Messages {
			out = append(out, b.message(x, 1))
		}
	}
	return out, nil
}

func (b *Redis) claim(ctx context.Context, max int) ([]*Message, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if time.Since(b.lastClaim) < b.o.ClaimIdle/4 {
		return nil, nil
	}
	msgs, next, err := b.rdb.XAutoClaim(ctx, &redis.XAutoClaimArgs{
		Stream: b.o.Stream, Group: b.o.Group, Consumer: b.o.Consumer,
		MinIdle: b.o.ClaimIdle, Start: b.cursor, Count: int64(max),
	}).Result()
	if err != nil {
		return nil, fmt.Errorf("redis: claim idle entries: %w", err)
	}
	b.cursor = next
	if next == "0-0" { // a full pass made: rest until the next quarter
		b.lastClaim = time.Now()
	}
	if len(msgs) == 0 {
		return nil, nil
	}
	// XAUTOCLAIM does not say how often each was delivered; XPENDING does.
	tries := make(map[string]int, len(msgs))
	pending, err := b.rdb.XPendingExt(ctx, &redis.XPendingExtArgs{
		Stream: b.o.Stream, Group: b.o.Group, Start: msgs[0].ID, End: msgs[len(msgs)-1].ID,
		Count: int64(len(msgs)), Consumer: b.o.Consumer,
	}).Result()
	if err == nil {
		for _, p := range pending {
			tries[p.ID] = int(p.RetryCount)
		}
	}
	out := make([]*Message, 0, len(msgs))
	for _, x := range msgs {
		d := tries[x.ID]
		if d < 2 {
			d = 2 // claimed: delivered before at least once
		}
		out = append(out, b.message(x, d))
	}
	return out, nil
}

func (b *Redis) message(x redis.XMessage, deliveries int) *Message {
	m := &Message{ID: field(x.Values, FieldID), Model: field(x.Values, FieldModel), Body: []byte(field(x.Values, FieldBody)),
		Deliveries: deliveries, handle: x.ID}
	if m.ID == "" {
		m.ID = b.o.Stream + ":" + x.ID
	}
	if ms, _, ok := strings.Cut(x.ID, "-"); ok { // an entry id starts with its time in ms
		if n, err := strconv.ParseInt(ms, 10, 64); err == nil {
			m.Published = time.UnixMilli(n)
		}
	}
	return m
}

func field(v map[string]any, k string) string {
	s, _ := v[k].(string)
	return s
}

func (b *Redis) Publish(ctx context.Context, to Destination, out Outgoing) error {
	stream := b.o.Results
	values := []any{FieldID, out.ID, FieldStatus, strconv.Itoa(out.Status), FieldModel, out.Model, FieldBody, out.Body}
	if to == DeadLetters {
		stream = b.o.DeadLetters
		values = append(values, FieldError, out.Reason, FieldDeliveries, strconv.Itoa(out.Tries))
	}
	args := &redis.XAddArgs{Stream: stream, Values: values}
	if b.o.MaxLen > 0 {
		args.MaxLen, args.Approx = b.o.MaxLen, true
	}
	return b.rdb.XAdd(ctx, args).Err()
}

func (b *Redis) Ack(ctx context.Context, m *Message) error {
	return b.rdb.XAck(ctx, b.o.Stream, b.o.Group, m.handle.(string)).Err()
}

// Retry leaves the entry pending: it is claimed again once idle for ClaimIdle.
func (b *Redis) Retry(context.Context, *Message, time.Duration) error { return nil }

// Backlog is the group's backlog (RedisBacklog).
func (b *Redis) Backlog(ctx context.Context) (int64, error) {
	return RedisBacklog(ctx, b.rdb, b.o.Stream, b.o.Group)
}

// RedisBacklog is a consumer group's backlog: its lag (entries not yet
// delivered; Redis 7) plus its pending entries (delivered, not acked). The
// worker's tide_queue_backlog_messages and tide load's backlog both read it.
func RedisBacklog(ctx context.Context, rdb *redis.Client, stream, group string) (int64, error) {
	groups, err := rdb.XInfoGroups(ctx, stream).Result()
	if err != nil {
		return 0, err
	}
	for _, g := range groups {
		if g.Name == group {
			return max(g.Lag, 0) + g.Pending, nil
		}
	}
	return 0, fmt.Errorf("redis: no group %q on stream %q", group, stream)
}

// StopFetching has nothing to hand back: an entry is delivered only when
// Fetch asks for it.
func (b *Redis) StopFetching() {}

func (b *Redis) Close() error { return b.rdb.Close() }
