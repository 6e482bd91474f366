package cli

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"time"

	"github.com/spf13/pflag"

	"github.com/tideserve/tide/internal/queue"
	"github.com/tideserve/tide/internal/server"
)

// queueFlags are serve's --queue-* flags: with --queue-url set, the server also
// answers inference requests from a broker (internal/queue).
type queueFlags struct {
	url           string
	stream        string
	subject       string
	group         string
	consumer      string
	results       string
	deadLetters   string
	concurrency   int
	maxDeliveries int
	ackWait       time.Duration
	timeout       time.Duration
	createStream  bool
}

func (q *queueFlags) register(fl *pflag.FlagSet) {
	fl.StringVar(&q.url, "queue-url", "", "also answer inference requests from this broker: nats://[user:pass@]HOST:4222 (JetStream) or redis://[:pass@]HOST:6379[/DB] (Redis Streams); set it from a Secret as TIDE_QUEUE_URL")
	fl.StringVar(&q.stream, "queue-stream", "tide-requests", "the requests' stream: a JetStream stream name or a Redis stream key")
	fl.StringVar(&q.subject, "queue-subject", "tide-requests", "NATS: the requests' subject (the consumer's filter)")
	fl.StringVar(&q.group, "queue-group", "tide", "the consumer the workers share: a JetStream durable consumer or a Redis consumer group")
	fl.StringVar(&q.consumer, "queue-consumer", "", "Redis: this worker's name in the group (default: the host name, which is the pod's)")
	fl.StringVar(&q.results, "queue-results", "tide-results", "where answers go: a NATS subject, a Redis stream key, or an http(s):// URL each answer is POSTed to; each carries the request's Tide-Request-Id")
	fl.StringVar(&q.deadLetters, "queue-dead-letters", "tide-dead-letters", "where refused messages go, with their one-line reason: a NATS subject or a Redis stream key")
	fl.IntVar(&q.concurrency, "queue-concurrency", 0, "messages handled at once (0: 64, or twice --max-batch-size when that is more); the batcher joins them into model runs")
	fl.IntVar(&q.maxDeliveries, "queue-max-deliveries", 5, "a message still failing with overload, a timeout or a server fault at this delivery is dead-lettered")
	fl.DurationVar(&q.ackWait, "queue-ack-wait", 30*time.Second, "an unacked message is delivered again after this (NATS ack wait; Redis: claimed from an idle worker, and the retry delay)")
	fl.DurationVar(&q.timeout, "queue-timeout", 30*time.Second, "each message's deadline; past it the message is handed back")
	fl.BoolVar(&q.createStream, "queue-create-stream", false, "NATS: create --queue-stream, capturing the request, result and dead-letter subjects, when it does not exist")
}

// dial connects to --queue-url's broker (with --queue-results' HTTP sink when it is a URL); nil when the flag is unset.
func (q *queueFlags) dial(ctx context.Context) (queue.Broker, error) {
	if q.url == "" {
		return nil, nil
	}
	u, err := url.Parse(q.url)
	if err != nil {
		return nil, fmt.Errorf("--queue-url: not a URL (%s)", queue.Redact(q.url))
	}
	dialCtx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	results, sink := q.results, ""
	if r, err := url.Parse(q.results); err == nil && (r.Scheme == "http" || r.Scheme == "https") {
		results, sink = "", q.results // answers go to the HTTP sink, not to the broker
	}
	b, err := q.dialBroker(dialCtx, u.Scheme, results)
	if err != nil || sink == "" {
		return b, err
	}
	h, err := queue.NewHTTPResults(b, sink)
	if err != nil {
		b.Close()
		return nil, fmt.Errorf("--queue-results: %w", err)
	}
	return h, nil
}

func (q *queueFlags) dialBroker(dialCtx context.Context, scheme, results string) (queue.Broker, error) {
	switch scheme {
	case "nats", "tls":
		return queue.DialNATS(dialCtx, queue.NATSOptions{URL: q.url, Stream: q.stream, Consumer: q.group, Subject: q.subject,
			Results: results, DeadLetters: q.deadLetters, AckWait: q.ackWait, CreateStream: q.createStream, Prefetch: q.concurrency})
	case "redis", "rediss":
		consumer := q.consumer
		if consumer == "" {
			consumer, _ = os.Hostname() // the pod's name: unique in the group, and stable across a container restart
		}
		return queue.DialRedis(dialCtx, queue.RedisOptions{URL: q.url, Stream: q.stream, Group: q.group, Consumer: consumer,
			Results: results, DeadLetters: q.deadLetters, ClaimIdle: q.ackWait})
	default:
		return nil, fmt.Errorf("--queue-url %s: want nats://, tls:// (NATS JetStream), redis:// or rediss:// (Redis Streams)", queue.Redact(q.url))
	}
}

// start dials the broker and hands the worker to srv, which runs it and
// drains it with its requests. The returned close ends the connection after
// Serve returns.
func (q *queueFlags) start(ctx context.Context, srv *server.Server, maxBatch int, log *slog.Logger) (func(), error) {
	if q.concurrency == 0 {
		q.concurrency = max(64, 2*maxBatch)
	}
	if q.concurrency < 1 || q.maxDeliveries < 1 || q.ackWait <= 0 || q.timeout < 0 {
		return nil, fmt.Errorf("--queue-concurrency %d, --queue-max-deliveries %d and --queue-ack-wait %s must be positive, --queue-timeout %s not negative",
			q.concurrency, q.maxDeliveries, q.ackWait, q.timeout)
	}
	b, err := q.dial(ctx)
	if err != nil || b == nil {
		return func() {}, err
	}
	log.Info("queue worker connected", "broker", queue.Redact(q.url), "stream", q.stream, "group", q.group)
	w := &queue.Worker{
		Broker:        b,
		Answerer:      &queue.Answerer{Handler: srv.Local(), DefaultModel: srv.DefaultModel, Timeout: q.timeout},
		Log:           log,
		Series:        srv.Metrics().Queue(),
		Ready:         srv.IsReady,
		Concurrency:   q.concurrency,
		MaxDeliveries: q.maxDeliveries,
	}
	srv.Background(w.Run)
	return func() { b.Close() }, nil
}
