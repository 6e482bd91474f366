package queue

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tideserve/tide/internal/metrics"
)

// memBroker is a broker in memory that records what the worker did, in order.
// The real brokers' behaviour is proven against real servers in
// test/integration; this checks the worker's own rules.
type memBroker struct {
	mu          sync.Mutex
	queue       []*Message
	events      []string // "publish results id", "ack id", "retry id", "publish dead letters id: reason"
	failPublish bool
	fetched     chan struct{}
}

func (b *memBroker) Fetch(ctx context.Context, max int) ([]*Message, error) {
	b.mu.Lock()
	n := min(max, len(b.queue))
	out := b.queue[:n]
	b.queue = b.queue[n:]
	b.mu.Unlock()
	if b.fetched != nil {
		select {
		case b.fetched <- struct{}{}:
		default:
		}
	}
	if n == 0 {
		select {
		case <-ctx.Done():
		case <-time.After(5 * time.Millisecond):
		}
	}
	return out, nil
}

func (b *memBroker) record(e string) {
	b.mu.Lock()
	b.events = append(b.events, e)
	b.mu.Unlock()
}

func (b *memBroker) Publish(_ context.Context, to Destination, out Outgoing) error {
	if b.failPublish {
		return errors.New("stream unavailable")
	}
	e := fmt.Sprintf("publish %s %s", to, out.ID)
	if to == DeadLetters {
		e += ": " + out.Reason
	} else {
		e += " " + string(out.Body)
	}
	b.record(e)
	return nil
}
func (b *memBroker) Ack(_ context.Context, m *Message) error { b.record("ack " + m.ID); return nil }
func (b *memBroker) Retry(_ context.Context, m *Message, d time.Duration) error {
	b.record(fmt.Sprintf("retry %s after %s", m.ID, d))
	return nil
}
func (b *memBroker) Backlog(context.Context) (int64, error) { return 0, nil }
func (b *memBroker) StopFetching()                          { b.record("stop fetching") }
func (b *memBroker) Close() error                           { return nil }

func (b *memBroker) log() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.events...)
}

// statusHandler answers each request with the status its body asks for.
var statusHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	var status int
	fmt.Sscanf(string(body), `{"status": %d}`, &status)
	if status == 0 {
		status = 200
	}
	w.WriteHeader(status)
	if status == 200 {
		fmt.Fprintf(w, `{"prediction":[1],"path":%q}`, r.URL.Path)
		return
	}
	fmt.Fprintf(w, `{"error":"wanted %d\nsecond line"}`, status)
})

func newWorker(b Broker) *Worker {
	return &Worker{Broker: b, Answerer: &Answerer{Handler: statusHandler}, Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Series: metrics.New("test").Queue(), Concurrency: 4, MaxDeliveries: 3}
}

// settle runs the worker until every message has an ack or a retry.
func settle(t *testing.T, b *memBroker, msgs ...*Message) []string {
	t.Helper()
	b.queue = msgs
	w := newWorker(b)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- w.Run(ctx) }()
	deadline := time.Now().Add(5 * time.Second)
	for {
		n := 0
		for _, e := range b.log() {
			if strings.HasPrefix(e, "ack ") || strings.HasPrefix(e, "retry ") {
				n++
			}
		}
		if n >= len(msgs) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not settled: %v", b.log())
		}
		time.Sleep(2 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	got := b.log()
	if len(got) == 0 || got[len(got)-1] != "stop fetching" {
		t.Fatalf("events %v: the drain must end with the broker told to stop fetching", got)
	}
	return got[:len(got)-1]
}

func TestWorkerSettlesEachOutcome(t *testing.T) {
	tests := []struct {
		name string
		msg  *Message
		want []string
	}{
		{"answered: published, then acked", &Message{ID: "a", Body: []byte(`{"feature1": 1}`), Deliveries: 1},
			[]string{`publish results a {"prediction":[1],"path":"/predict"}`, "ack a"}},
		{"refused: dead-lettered with one line, then acked", &Message{ID: "b", Body: []byte(`{"status": 422}`), Deliveries: 1},
			[]string{"publish dead letters b: 422: wanted 422 second line", "ack b"}},
		{"overloaded: handed back with backoff", &Message{ID: "c", Body: []byte(`{"status": 429}`), Deliveries: 2},
			[]string{"retry c after 2s"}},
		{"a server fault at the last delivery: dead-lettered", &Message{ID: "d", Body: []byte(`{"status": 500}`), Deliveries: 3},
			[]string{"publish dead letters d: gave up after 3 deliveries: 500: wanted 500 second line", "ack d"}},
		{"delivered past the limit: dead-lettered unasked", &Message{ID: "e", Body: []byte(`{}`), Deliveries: 4},
			[]string{"publish dead letters e: delivered 4 times and never settled: the workers that held it stopped", "ack e"}},
		{"an OIP request goes to the model's infer path", &Message{ID: "f", Model: "fraud", Body: []byte(`{"id": "x", "inputs": []}`), Deliveries: 1},
			[]string{`publish results f {"prediction":[1],"path":"/v2/models/fraud/infer"}`, "ack f"}},
		{"an OIP request naming no model, with no default: dead-lettered", &Message{ID: "g", Body: []byte(`{"inputs": []}`), Deliveries: 1},
			[]string{"publish dead letters g: an OIP request needs a Tide-Model header when the server serves several models and no --default-model", "ack g"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := settle(t, &memBroker{}, tt.msg)
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("got\n  %s\nwant\n  %s", strings.Join(got, "\n  "), strings.Join(tt.want, "\n  "))
			}
		})
	}
}

// TestWorkerNeverAcksWhatItCouldNotPublish: a failed publish hands the message
// back instead of acking it, so that it is never lost.
func TestWorkerNeverAcksWhatItCouldNotPublish(t *testing.T) {
	got := settle(t, &memBroker{failPublish: true}, &Message{ID: "a", Body: []byte(`{}`), Deliveries: 1})
	if len(got) != 1 || got[0] != "retry a after 1s" {
		t.Errorf("events %v, want only a retry", got)
	}
}

// TestWorkerDrainsWhatItHolds: once ctx ends the worker fetches nothing more,
// and a message it holds is answered and acked before Run returns.
func TestWorkerDrainsWhatItHolds(t *testing.T) {
	release := make(chan struct{})
	started := make(chan struct{})
	b := &memBroker{queue: []*Message{{ID: "slow", Body: []byte(`{}`), Deliveries: 1}}}
	w := newWorker(b)
	w.Answerer.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(started)
		<-release
		w.Write([]byte(`{"prediction":[0]}`))
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- w.Run(ctx) }()
	<-started
	cancel()
	b.mu.Lock()
	b.queue = []*Message{{ID: "late", Body: []byte(`{}`), Deliveries: 1}}
	b.mu.Unlock()
	select {
	case <-done:
		t.Fatal("Run returned while a message was in hand")
	case <-time.After(50 * time.Millisecond):
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got := b.log(); strings.Join(got, ";") != `stop fetching;publish results slow {"prediction":[0]};ack slow` {
		t.Errorf("events %v: want the broker told to stop fetching when the drain begins, then the held message answered and acked, and nothing fetched after", got)
	}
}

// TestWorkerWaitsForTheModels: nothing is fetched before Ready says so.
func TestWorkerWaitsForTheModels(t *testing.T) {
	b := &memBroker{fetched: make(chan struct{}, 1)}
	w := newWorker(b)
	var ready sync.Mutex
	isReady := false
	w.Ready = func() bool { ready.Lock(); defer ready.Unlock(); return isReady }
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go w.Run(ctx)
	select {
	case <-b.fetched:
		t.Fatal("fetched before the models were ready")
	case <-time.After(300 * time.Millisecond):
	}
	ready.Lock()
	isReady = true
	ready.Unlock()
	select {
	case <-b.fetched:
	case <-time.After(2 * time.Second):
		t.Fatal("no fetch once ready")
	}
}

func TestRetryDelay(t *testing.T) {
	for d, want := range map[int]time.Duration{0: time.Second, 1: time.Second, 2: 2 * time.Second, 5: 16 * time.Second, 6: 30 * time.Second, 100: 30 * time.Second} {
		if got := RetryDelay(d); got != want {
			t.Errorf("RetryDelay(%d) = %s, want %s", d, got, want)
		}
	}
}
