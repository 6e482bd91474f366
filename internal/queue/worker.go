package queue

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/tideserve/tide/internal/metrics"
)

// Worker consumes a Broker's messages and answers them through Answerer.
type Worker struct {
	Broker   Broker
	Answerer *Answerer
	Log      *slog.Logger
	Series   *metrics.QueueSeries
	// Ready reports whether the models are loaded; nothing is fetched before.
	Ready func() bool
	// Concurrency is how many messages are handled at once: the batcher joins
	// them into model runs, so it should be at least the largest batch.
	Concurrency int
	// MaxDeliveries: a message still failing with a passing condition (429,
	// 503, 504, 500) on this delivery goes to the dead letters, so that no
	// message is retried for ever or dropped unseen.
	MaxDeliveries int
	// BacklogEvery is how often the broker's backlog is read into the metrics.
	BacklogEvery time.Duration
}

// Run fetches and handles messages until ctx ends, then stops fetching,
// finishes and acks what it holds, and returns.
func (w *Worker) Run(ctx context.Context) error {
	if w.Concurrency < 1 || w.MaxDeliveries < 1 {
		return fmt.Errorf("queue worker: concurrency %d and max deliveries %d must be at least 1", w.Concurrency, w.MaxDeliveries)
	}
	for w.Ready != nil && !w.Ready() {
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(100 * time.Millisecond):
		}
	}
	w.Log.Info("queue worker consuming", "concurrency", w.Concurrency, "max_deliveries", w.MaxDeliveries)
	go w.watchBacklog(ctx)
	// In-flight messages finish after ctx ends: that is the drain.
	work := context.WithoutCancel(ctx)
	slots := make(chan struct{}, w.Concurrency)
	var wg sync.WaitGroup
	failures := 0
	for ctx.Err() == nil {
		free := takeSlots(ctx, slots)
		if free == 0 {
			break
		}
		msgs, err := w.Broker.Fetch(ctx, free)
		for range free - len(msgs) {
			<-slots
		}
		if err != nil && ctx.Err() == nil {
			failures++
			w.Log.Warn("queue fetch failed; retrying", "error", err, "failures", failures)
			sleep(ctx, min(time.Duration(failures)*250*time.Millisecond, 5*time.Second))
		} else if err == nil {
			failures = 0
		}
		for _, m := range msgs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer func() { <-slots }()
				w.handle(work, m)
			}()
		}
	}
	// Each message in hand is bounded by the Answerer's timeout and the
	// brokers' own; how long the drain may take overall is the server's
	// to say (Server.Background waits within its drain timeout).
	w.Broker.StopFetching()
	wg.Wait()
	w.Log.Info("queue worker drained")
	return nil
}

// takeSlots blocks for one free slot, then takes every other free one; 0 when
// ctx ended first.
func takeSlots(ctx context.Context, slots chan struct{}) int {
	select {
	case slots <- struct{}{}:
	case <-ctx.Done():
		return 0
	}
	n := 1
	for n < cap(slots) {
		select {
		case slots <- struct{}{}:
			n++
		default:
			return n
		}
	}
	return n
}

func sleep(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

func (w *Worker) watchBacklog(ctx context.Context) {
	every := w.BacklogEvery
	if every <= 0 {
		every = 2 * time.Second
	}
	for {
		if n, err := w.Broker.Backlog(ctx); err == nil {
			w.Series.SetBacklog(n)
		} else if ctx.Err() == nil {
			w.Log.Debug("queue backlog unreadable", "error", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(every):
		}
	}
}

// handle answers one message and settles it: published then acked, dead-lettered
// then acked, or handed back.
func (w *Worker) handle(ctx context.Context, m *Message) {
	w.Series.InFlight(1)
	defer w.Series.InFlight(-1)
	if m.Deliveries > 1 {
		w.Series.Count(metrics.QueueRedelivered)
	} else if !m.Published.IsZero() {
		w.Series.ObserveLag(time.Since(m.Published))
	}
	if m.Deliveries > w.MaxDeliveries {
		// Delivered past the limit without being settled: the workers that
		// held it stopped (a crash, an OOM kill). Asking again could stop this one.
		w.deadLetter(ctx, m, 0, fmt.Sprintf("delivered %d times and never settled: the workers that held it stopped", m.Deliveries))
		return
	}
	a := w.Answerer.Answer(ctx, m)
	switch a.Outcome {
	case Answered:
		w.settle(ctx, m, Results, Outgoing{ID: m.ID, Model: a.Model, Status: a.Status, Body: a.Body}, metrics.QueueOK)
	case Refused:
		w.deadLetter(ctx, m, a.Status, a.Reason)
	case Passing:
		if m.Deliveries >= w.MaxDeliveries {
			w.deadLetter(ctx, m, a.Status, fmt.Sprintf("gave up after %d deliveries: %s", m.Deliveries, a.Reason))
			return
		}
		w.retry(ctx, m, a.Reason)
	}
}

func (w *Worker) deadLetter(ctx context.Context, m *Message, status int, reason string) {
	w.Log.Warn("queue message dead-lettered", "id", m.ID, "model", m.Model, "status", status, "reason", reason)
	w.settle(ctx, m, DeadLetters, Outgoing{ID: m.ID, Model: m.Model, Status: status, Body: m.Body, Reason: reason, Tries: m.Deliveries}, metrics.QueueDeadLetter)
}

// settle publishes, and acks only once the broker has the outgoing message: a
// failed publish hands the request back instead, so that it is never lost.
func (w *Worker) settle(ctx context.Context, m *Message, to Destination, out Outgoing, result string) {
	if err := w.Broker.Publish(ctx, to, out); err != nil {
		w.retry(ctx, m, fmt.Sprintf("publishing to %s failed: %v", to, err))
		return
	}
	if err := w.Broker.Ack(ctx, m); err != nil {
		// Published but not acked: the broker delivers it again, and its
		// result is published twice (counted as redelivered then).
		w.Log.Warn("queue ack failed; the message will be delivered again", "id", m.ID, "error", err)
	}
	w.Series.Count(result)
}

func (w *Worker) retry(ctx context.Context, m *Message, reason string) {
	w.Series.Count(metrics.QueueRetried)
	delay := RetryDelay(m.Deliveries)
	w.Log.Debug("queue message handed back", "id", m.ID, "delivery", m.Deliveries, "delay", delay, "reason", reason)
	if err := w.Broker.Retry(ctx, m, delay); err != nil && !errors.Is(err, context.Canceled) {
		w.Log.Warn("queue retry failed; the broker redelivers after its ack wait", "id", m.ID, "error", err)
	}
}

// RetryDelay backs off per delivery: 1 s, 2 s, 4 s … at most 30 s.
func RetryDelay(deliveries int) time.Duration {
	if deliveries < 1 {
		deliveries = 1
	}
	if deliveries > 6 {
		return 30 * time.Second
	}
	return min(time.Second<<(deliveries-1), 30*time.Second)
}
