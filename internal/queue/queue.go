// Package queue is asynchronous inference: a worker that consumes inference
// requests from a broker (NATS JetStream or Redis Streams), answers each through
// the server's own handler in process, publishes the answer with the request's
// correlation id, and only then acks. Delivery is at least once: a worker that
// dies before its ack leaves the message to be delivered again.
//
// The worker owns the delivery rules (what is answered, dead-lettered or handed
// back, and the order publish-then-ack); a Broker only moves bytes. Answering
// through the HTTP handler, not a second decoder, keeps one owner for decoding,
// validation, the error each bad input gets, batching and the request metrics:
// a message gets exactly the answer the same body gets over HTTP.
package queue

import (
	"context"
	"net/url"
	"time"
)

// Message headers (NATS headers; fields of a Redis Streams entry), shared by
// requests, results and dead letters.
const (
	HeaderID     = "Tide-Request-Id" // correlation id; copied onto the result
	HeaderModel  = "Tide-Model"      // the model to ask; default: --default-model or the only one
	HeaderStatus = "Tide-Status"     // on results and dead letters: the HTTP status the answer had
	HeaderError  = "Tide-Error"      // on dead letters: the one-line reason
	HeaderTries  = "Tide-Deliveries" // on dead letters: how many deliveries the message had
)

// The same, as the fields of a Redis Streams entry.
const (
	FieldID         = "id"
	FieldModel      = "model"
	FieldBody       = "body"
	FieldStatus     = "status"
	FieldError      = "error"
	FieldDeliveries = "deliveries"
)

// Message is one inference request as a broker delivered it.
type Message struct {
	ID         string    // correlation id: the request's Tide-Request-Id, else the broker's id
	Model      string    // from Tide-Model; "" for the default
	Body       []byte    // an OIP v2 JSON inference request, or /predict's object or array
	Deliveries int       // 1 on the first delivery
	Published  time.Time // when the broker took it (zero when unknown)

	handle any // the broker's own reference, for Ack and Retry
}

// Outgoing is a result or a dead letter.
type Outgoing struct {
	ID     string
	Model  string
	Status int    // the HTTP status of the answer
	Body   []byte // the answer's body (a result), or the request's body (a dead letter)
	Reason string // a dead letter's one-line reason
	Tries  int    // a dead letter's deliveries
}

// Destination says where an Outgoing goes.
type Destination int

const (
	Results Destination = iota
	DeadLetters
)

func (d Destination) String() string {
	if d == DeadLetters {
		return "dead letters"
	}
	return "results"
}

// Broker moves messages. Publish must return only once the broker has taken
// the message durably (a stream's ack), because the worker acks the request
// right after it.
type Broker interface {
	// Fetch waits up to about a second for at most max messages; none is not an error.
	Fetch(ctx context.Context, max int) ([]*Message, error)
	Publish(ctx context.Context, to Destination, out Outgoing) error
	Ack(ctx context.Context, m *Message) error
	// Retry hands the message back for a later delivery, no sooner than delay
	// where the broker can say so.
	Retry(ctx context.Context, m *Message, delay time.Duration) error
	// Backlog is the number of messages waiting for this consumer group.
	Backlog(ctx context.Context) (int64, error)
	// StopFetching is called once the worker fetches no more (its drain
	// begins): a broker that pulls ahead hands back what it pulled and did
	// not hand out, so that it goes to another worker now rather than after
	// the ack wait.
	StopFetching()
	Close() error
}

// Redact is a broker URL fit for logs and errors: its credentials left out.
func Redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(an unparsable URL)"
	}
	return RedactURL(u)
}

// RedactURL is Redact for a parsed URL; u is left as it is.
func RedactURL(u *url.URL) string {
	c := *u
	if c.User != nil {
		c.User = url.User("redacted")
	}
	return c.String()
}
