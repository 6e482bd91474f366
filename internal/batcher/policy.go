// Package batcher puts a model behind admission control and dynamic batching:
// a bounded number of model runs at once, a bounded queue in front of them (beyond
// it requests are shed, which the server answers with 429 and Retry-After), request
// deadlines that end queued work before it runs, and, for models with a batch
// dimension, requests joined along that dimension into one model run and split back.
//
// The batching decision is a pure function of the queue and the time (Decide),
// tested with tables in the style of Knative's autoscaler; the Batcher around it
// only moves requests and results.
package batcher

import (
	"fmt"
	"time"
)

// Config is one model's admission and batching policy.
type Config struct {
	// MaxBatchSize is the most rows one model run takes; 0 or 1 disables batching.
	MaxBatchSize int
	// MaxQueueDelay is how long the oldest queued request may wait for a batch to fill.
	MaxQueueDelay time.Duration
	// PreferredBatchSizes are batch sizes to run as soon as the queue reaches one
	// (e.g. sizes a GPU kernel is tuned for); the largest reachable one wins.
	PreferredBatchSizes []int
	// MaxInFlight is how many model runs may execute at once (0: unlimited).
	MaxInFlight int
	// MaxQueue is how many requests may wait for a run slot or a batch; one more is
	// shed (0: none wait — with MaxInFlight set, excess requests are shed at once).
	MaxQueue int
}

// Batching reports whether the config joins requests.
func (c Config) Batching() bool { return c.MaxBatchSize > 1 }

// Validate checks the config for contradictions.
func (c Config) Validate() error {
	switch {
	case c.MaxBatchSize < 0:
		return fmt.Errorf("max batch size %d is negative", c.MaxBatchSize)
	case c.MaxQueueDelay < 0:
		return fmt.Errorf("max queue delay %s is negative", c.MaxQueueDelay)
	case c.MaxInFlight < 0:
		return fmt.Errorf("max in-flight %d is negative", c.MaxInFlight)
	case c.MaxQueue < 0:
		return fmt.Errorf("max queue %d is negative", c.MaxQueue)
	case c.Batching() && c.MaxQueue == 0:
		return fmt.Errorf("batching needs a queue: set max queue > 0")
	}
	for _, p := range c.PreferredBatchSizes {
		if p < 1 || (c.Batching() && p > c.MaxBatchSize) {
			return fmt.Errorf("preferred batch size %d is outside 1..%d", p, c.MaxBatchSize)
		}
	}
	return nil
}

// Decide is the batching policy. rows are the row counts of the queued requests,
// oldest first, that can be joined (same inputs); oldest is when the first of them
// was queued. It returns how many requests (a prefix) to run now, or 0 and how long
// to wait before deciding again.
//
//   - A full batch (MaxBatchSize rows) runs at once; a first request larger than
//     the batch runs alone.
//   - A prefix whose rows equal the largest preferred size not exceeded by the
//     queue runs at once.
//   - Otherwise, when the oldest request has waited MaxQueueDelay, the prefix that
//     fits in one batch runs (cut back to a preferred size if one is reachable).
func Decide(now time.Time, rows []int, oldest time.Time, c Config) (n int, wait time.Duration) {
	if len(rows) == 0 {
		return 0, -1
	}
	if rows[0] >= c.MaxBatchSize {
		return 1, 0
	}
	total, fit := 0, 0
	for _, r := range rows {
		if total+r > c.MaxBatchSize {
			break
		}
		total += r
		fit++
	}
	if total == c.MaxBatchSize || fit < len(rows) {
		// Full, or the next request would overflow: nothing better can come by waiting.
		return fit, 0
	}
	// Decide runs on every enqueue: it scans the (few) preferred sizes in place
	// rather than sorting a copy.
	if largest := maxPreferred(c.PreferredBatchSizes); largest > 0 && total >= largest {
		if k := prefixWithRows(rows, largest); k > 0 {
			return k, 0
		}
	}
	waited := now.Sub(oldest)
	if waited >= c.MaxQueueDelay {
		// Cut back to the largest preferred size that a prefix adds up to exactly.
		bestSize, bestK := 0, 0
		for _, p := range c.PreferredBatchSizes {
			if p <= bestSize {
				continue
			}
			if k := prefixWithRows(rows[:fit], p); k > 0 {
				bestSize, bestK = p, k
			}
		}
		if bestK > 0 {
			return bestK, 0
		}
		return fit, 0
	}
	return 0, c.MaxQueueDelay - waited
}

func maxPreferred(sizes []int) int {
	m := 0
	for _, p := range sizes {
		m = max(m, p)
	}
	return m
}

// prefixWithRows returns k such that rows[:k] sums to exactly target, or 0.
func prefixWithRows(rows []int, target int) int {
	sum := 0
	for i, r := range rows {
		sum += r
		if sum == target {
			return i + 1
		}
		if sum > target {
			return 0
		}
	}
	return 0
}
