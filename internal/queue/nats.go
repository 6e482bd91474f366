package queue

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// NATSOptions say where the NATS JetStream worker reads and writes.
type NATSOptions struct {
	URL          string // nats://[user:pass@]host:4222 (credentials stay out of the logs)
	Stream       string // the stream that holds the requests
	Consumer     string // the durable pull consumer the workers share (KEDA reads its pending count)
	Subject      string // the requests' subject (the consumer's filter)
	Results      string // subject results are published to; a stream must capture it ("" when an HTTP sink takes them)
	DeadLetters  string // subject dead letters are published to; a stream must capture it
	AckWait      time.Duration
	CreateStream bool // create Stream capturing Subject, Results and DeadLetters when it is missing
	Prefetch     int  // messages pulled ahead of the worker (its concurrency)
}

// NATS is a Broker on a JetStream durable pull consumer.
type NATS struct {
	o        NATSOptions
	nc       *nats.Conn
	js       jetstream.JetStream
	consumer jetstream.Consumer
	iter     jetstream.MessagesContext
	msgs     chan jetstream.Msg
	pumpDone chan struct{}
	stopping atomic.Bool // the worker fetches no more: the pump hands back what arrives
	stopOnce sync.Once
}

// DialNATS connects, makes sure the consumer exists, and starts pulling.
func DialNATS(ctx context.Context, o NATSOptions) (*NATS, error) {
	if o.Stream == "" || o.Consumer == "" || o.Subject == "" || o.DeadLetters == "" {
		return nil, errors.New("nats: stream, consumer, subject and dead-letter subject are all needed")
	}
	if o.Prefetch < 1 {
		o.Prefetch = 64
	}
	if o.AckWait <= 0 {
		o.AckWait = 30 * time.Second
	}
	nc, err := nats.Connect(o.URL, nats.Name("tide-queue-worker"), nats.MaxReconnects(-1), nats.Timeout(5*time.Second))
	if err != nil {
		return nil, fmt.Errorf("nats: connect to %s: %w", Redact(o.URL), err)
	}
	b := &NATS{o: o, nc: nc}
	if err := b.setUp(ctx); err != nil {
		nc.Close()
		return nil, err
	}
	return b, nil
}

func (b *NATS) setUp(ctx context.Context) error {
	js, err := jetstream.New(b.nc)
	if err != nil {
		return fmt.Errorf("nats: %w", err)
	}
	b.js = js
	stream, err := js.Stream(ctx, b.o.Stream)
	if errors.Is(err, jetstream.ErrStreamNotFound) && b.o.CreateStream {
		subjects := []string{b.o.Subject, b.o.DeadLetters}
		if b.o.Results != "" {
			subjects = append(subjects, b.o.Results)
		}
		stream, err = js.CreateStream(ctx, jetstream.StreamConfig{
			Name:     b.o.Stream,
			Subjects: subjects,
			Storage:  jetstream.FileStorage,
		})
	}
	if err != nil {
		return fmt.Errorf("nats: stream %q: %w", b.o.Stream, err)
	}
	b.consumer, err = stream.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{
		Durable:       b.o.Consumer,
		FilterSubject: b.o.Subject,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       b.o.AckWait,
		// The worker dead-letters a message at its own limit, with the reason;
		// the broker never drops one unseen.
		MaxDeliver:    -1,
		MaxAckPending: 1 << 16,
	})
	if err != nil {
		return fmt.Errorf("nats: consumer %q on stream %q: %w", b.o.Consumer, b.o.Stream, err)
	}
	b.iter, err = b.consumer.Messages(jetstream.PullMaxMessages(b.o.Prefetch))
	if err != nil {
		return fmt.Errorf("nats: pull from consumer %q: %w", b.o.Consumer, err)
	}
	// The pump turns the iterator's one-at-a-time Next into a channel, so that
	// Fetch can wait for the first message and then take what else is there.
	b.msgs = make(chan jetstream.Msg, b.o.Prefetch)
	b.pumpDone = make(chan struct{})
	go func() {
		defer close(b.pumpDone)
		defer close(b.msgs)
		for {
			m, err := b.iter.Next()
			if errors.Is(err, jetstream.ErrMsgIteratorClosed) {
				return
			}
			if err != nil {
				// Heartbeats missed, a reconnect: the iterator goes on. A
				// pause keeps a lasting failure (the consumer deleted) from
				// spinning; Fetch meanwhile finds nothing.
				time.Sleep(100 * time.Millisecond)
				continue
			}
			if b.stopping.Load() {
				m.Nak()
				continue
			}
			b.msgs <- m
		}
	}()
	return nil
}

// Fetch waits up to a second for the first message, then takes what else is
// already pulled, up to max.
func (b *NATS) Fetch(ctx context.Context, max int) ([]*Message, error) {
	var out []*Message
	timer := time.NewTimer(time.Second)
	defer timer.Stop()
	select {
	case m, ok := <-b.msgs:
		if !ok {
			return nil, errors.New("nats: the consumer's pull stopped")
		}
		out = append(out, b.message(m))
	case <-timer.C:
		return nil, nil
	case <-ctx.Done():
		return nil, nil
	}
	for len(out) < max {
		select {
		case m, ok := <-b.msgs:
			if !ok {
				return out, nil
			}
			out = append(out, b.message(m))
		default:
			return out, nil
		}
	}
	return out, nil
}

func (b *NATS) message(m jetstream.Msg) *Message {
	msg := &Message{Body: m.Data(), Deliveries: 1, handle: m}
	h := m.Headers()
	msg.ID = h.Get(HeaderID)
	if msg.ID == "" {
		msg.ID = h.Get(jetstream.MsgIDHeader)
	}
	msg.Model = h.Get(HeaderModel)
	if md, err := m.Metadata(); err == nil {
		msg.Deliveries = int(md.NumDelivered)
		msg.Published = md.Timestamp
		if msg.ID == "" {
			msg.ID = md.Stream + ":" + strconv.FormatUint(md.Sequence.Stream, 10)
		}
	}
	return msg
}

// Publish sends to the results or dead-letter subject and waits for the
// stream's ack. Its Nats-Msg-Id lets the stream drop a second copy of the same
// request's result within its duplicate window (a redelivery's answer).
func (b *NATS) Publish(ctx context.Context, to Destination, out Outgoing) error {
	subject, kind := b.o.Results, "result"
	if to == DeadLetters {
		subject, kind = b.o.DeadLetters, "dead-letter"
	}
	m := nats.NewMsg(subject)
	m.Data = out.Body
	m.Header.Set(HeaderID, out.ID)
	m.Header.Set(jetstream.MsgIDHeader, kind+":"+out.ID)
	m.Header.Set(HeaderStatus, strconv.Itoa(out.Status))
	if out.Model != "" {
		m.Header.Set(HeaderModel, out.Model)
	}
	if to == DeadLetters {
		m.Header.Set(HeaderError, out.Reason)
		m.Header.Set(HeaderTries, strconv.Itoa(out.Tries))
	}
	_, err := b.js.PublishMsg(ctx, m)
	return err
}

// Ack does not wait for the server's confirmation: a lost ack only means a
// redelivery, whose result the stream drops by its message id, and waiting
// cost a sixth of the worker's CPU per message (bench/queue.sh).
func (b *NATS) Ack(_ context.Context, m *Message) error {
	return m.handle.(jetstream.Msg).Ack()
}

func (b *NATS) Retry(_ context.Context, m *Message, delay time.Duration) error {
	return m.handle.(jetstream.Msg).NakWithDelay(delay)
}

// Backlog is the consumer's backlog (NATSBacklog).
func (b *NATS) Backlog(ctx context.Context) (int64, error) { return NATSBacklog(ctx, b.consumer) }

// NATSBacklog is what a JetStream consumer has not had acked: not yet
// delivered plus in hand, the figure KEDA's nats-jetstream scaler reads. The
// worker's tide_queue_backlog_messages and tide load's backlog both read it.
func NATSBacklog(ctx context.Context, c jetstream.Consumer) (int64, error) {
	info, err := c.Info(ctx)
	if err != nil {
		return 0, err
	}
	return int64(info.NumPending) + int64(info.NumAckPending), nil
}

// StopFetching stops pulling and hands back at once what was pulled ahead and
// not handed out: the iterator's buffer and the pump's channel. Left to the
// ack wait, a draining pod's prefetched messages waited 30 s on the cluster.
func (b *NATS) StopFetching() {
	b.stopOnce.Do(func() {
		b.stopping.Store(true)
		b.iter.Drain() // what it buffered still comes out of Next: the pump naks it
		for m := range b.msgs {
			m.Nak()
		}
		<-b.pumpDone
	})
}

// Close stops pulling (handing back what was pulled ahead) and closes the
// connection once what was published and acked is flushed.
func (b *NATS) Close() error {
	b.StopFetching()
	return b.nc.Drain()
}
