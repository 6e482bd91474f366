package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// QueueSeries are the queue worker's series (serve --queue-url): what it consumed
// and how, beside the request series its in-process requests record. They are
// registered on first use, so a server without a queue does not show them.
type QueueSeries struct {
	messages *prometheus.CounterVec // result
	lag      prometheus.Histogram
	backlog  prometheus.Gauge
	inflight prometheus.Gauge
}

// Message results of tide_queue_messages_total.
const (
	QueueOK          = "ok"          // answered; the result published, then acked
	QueueDeadLetter  = "dlq"         // refused (or out of deliveries); sent to the dead-letter destination with its reason
	QueueRedelivered = "redelivered" // received again: an earlier delivery was not acked
	QueueRetried     = "retried"     // handed back for a later delivery (overload, a passed deadline, a failed publish)
)

// Queue returns the set's queue series, registering them the first time.
func (m *Set) Queue() *QueueSeries {
	m.queueOnce.Do(func() { m.queue = newQueueSeries(m.Registry) })
	return m.queue
}

func newQueueSeries(reg *prometheus.Registry) *QueueSeries {
	q := &QueueSeries{
		messages: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tide_queue_messages_total",
			Help: "Broker messages handled by the queue worker, by result: ok, dlq (dead-lettered), redelivered (received again), retried (handed back).",
		}, []string{"result"}),
		lag: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "tide_queue_consume_lag_seconds",
			Help:    "Time from a message's publication to the worker receiving it.",
			Buckets: []float64{0.001, 0.005, 0.025, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300},
		}),
		backlog: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "tide_queue_backlog_messages",
			Help: "Messages waiting in the broker for this worker's consumer group, as the broker last reported.",
		}),
		inflight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "tide_queue_inflight_messages",
			Help: "Messages this worker has received and not yet acked or handed back.",
		}),
	}
	reg.MustRegister(q.messages, q.lag, q.backlog, q.inflight)
	for _, r := range []string{QueueOK, QueueDeadLetter, QueueRedelivered, QueueRetried} {
		q.messages.WithLabelValues(r) // present at 0, so rate() works from the first scrape
	}
	return q
}

// Count adds one message with the result.
func (q *QueueSeries) Count(result string) { q.messages.WithLabelValues(result).Inc() }

// ObserveLag records how long a message waited in the broker.
func (q *QueueSeries) ObserveLag(d time.Duration) {
	if d >= 0 {
		q.lag.Observe(d.Seconds())
	}
}

// SetBacklog records the broker's count of waiting messages.
func (q *QueueSeries) SetBacklog(n int64) { q.backlog.Set(float64(n)) }

// InFlight moves the count of messages being handled by delta.
func (q *QueueSeries) InFlight(delta int) { q.inflight.Add(float64(delta)) }
