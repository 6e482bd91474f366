// Package loadmem bounds the memory one model load may take.
//
// A model file is outside input: a few megabytes of compressed pickle can expand
// to gigabytes, and a pod with a 512 MiB limit that tries would be OOM-killed and
// crash-loop on the same file. So every load runs against a Budget: each decoder
// charges the bytes it is about to allocate (the file, its decompressed stream,
// the arrays and strings decoded from it, the runtime's own structures) before it
// allocates them, and the first charge past the limit fails the load with
// ErrExceeded. The charges are cumulative, never released: garbage from an
// earlier stage still occupies memory until a collection, so counting it keeps
// the budget an honest bound on the load's footprint.
//
// The default limit comes from the container's memory limit (cgroup v2 or v1),
// or from the machine's memory outside a container (see Default).
package loadmem

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
)

// ErrExceeded reports a load that needs more memory than its budget.
var ErrExceeded = errors.New("memory budget exceeded")

// Budget is the allowance of one load. It is safe for concurrent use (a loader
// may decode parts in parallel). A nil *Budget is unlimited.
type Budget struct {
	limit int64
	used  atomic.Int64
}

// New returns a budget of limit bytes; limit <= 0 means unlimited.
func New(limit int64) *Budget {
	if limit <= 0 {
		return nil
	}
	return &Budget{limit: limit}
}

// Charge takes n bytes from the budget before they are allocated. It fails, and
// takes nothing, when the budget cannot hold them.
func (b *Budget) Charge(n int64) error {
	if n < 0 { // a size that overflowed on the way here
		return fmt.Errorf("negative allocation of %d bytes", n)
	}
	if b == nil {
		return nil
	}
	for {
		used := b.used.Load()
		if n > b.limit-used {
			return fmt.Errorf("the load needs more than its %s memory budget (%s used, %s more asked): %w",
				Size(b.limit), Size(used), Size(n), ErrExceeded)
		}
		if b.used.CompareAndSwap(used, used+n) {
			return nil
		}
	}
}

// Left is what the budget can still hold (math.MaxInt64 when unlimited).
func (b *Budget) Left() int64 {
	if b == nil {
		return 1<<63 - 1
	}
	return b.limit - b.used.Load()
}

// Used is what has been charged so far.
func (b *Budget) Used() int64 {
	if b == nil {
		return 0
	}
	return b.used.Load()
}

// Limit is the budget's size, 0 when unlimited.
func (b *Budget) Limit() int64 {
	if b == nil {
		return 0
	}
	return b.limit
}

// Size writes a byte count the way people read it: "256 MiB", "1.5 GiB", "512 B".
func Size(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	suffixes := []string{"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"}
	f, i := float64(n)/unit, 0
	for f >= unit && i < len(suffixes)-1 {
		f /= unit
		i++
	}
	s := strconv.FormatFloat(f, 'f', 1, 64)
	return strings.TrimSuffix(s, ".0") + " " + suffixes[i]
}

// ParseSize reads a byte count as people write it in flags and Kubernetes
// quantities: "268435456", "256Mi", "2Gi", "512M", "1.5G", "64k".
func ParseSize(s string) (int64, error) {
	t := strings.TrimSpace(s)
	if t == "" {
		return 0, errors.New("empty size")
	}
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		mult   int64
	}{
		{"Ki", 1 << 10}, {"Mi", 1 << 20}, {"Gi", 1 << 30}, {"Ti", 1 << 40},
		{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40},
		{"k", 1e3}, {"K", 1e3}, {"M", 1e6}, {"G", 1e9}, {"T", 1e12},
		{"B", 1},
	} {
		if strings.HasSuffix(t, u.suffix) && len(t) > len(u.suffix) {
			rest := strings.TrimSpace(strings.TrimSuffix(t, u.suffix))
			if _, err := strconv.ParseFloat(rest, 64); err == nil {
				t, mult = rest, u.mult
				break
			}
		}
	}
	f, err := strconv.ParseFloat(t, 64)
	if err != nil || f < 0 || f != f {
		return 0, fmt.Errorf("%q is not a size (e.g. 268435456, 256Mi, 2Gi)", s)
	}
	v := f * float64(mult)
	if v >= 1<<63 {
		return 0, fmt.Errorf("%q is too large", s)
	}
	return int64(v), nil
}

// Where the kernel reports a container's memory limit.
var (
	cgroupV2Max = "/sys/fs/cgroup/memory.max"
	cgroupV1Max = "/sys/fs/cgroup/memory/memory.limit_in_bytes"
	meminfo     = "/proc/meminfo"
)

// ContainerLimit returns the memory limit of this process's cgroup and where it
// was read, or ok false when there is none (no container, or "max"). cgroup v1
// reports "no limit" as a number near 2^63, which counts as none.
func ContainerLimit() (limit int64, source string, ok bool) {
	if b, err := os.ReadFile(cgroupV2Max); err == nil {
		s := strings.TrimSpace(string(b))
		if n, err := strconv.ParseInt(s, 10, 64); err == nil && n > 0 {
			return n, "cgroup v2 memory.max", true
		}
		return 0, "", false // "max": unlimited
	}
	if b, err := os.ReadFile(cgroupV1Max); err == nil {
		if n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64); err == nil && n > 0 && n < 1<<62 {
			return n, "cgroup v1 memory.limit_in_bytes", true
		}
	}
	return 0, "", false
}

// machineMemory is MemTotal from /proc/meminfo, or 0.
func machineMemory() int64 {
	f, err := os.Open(meminfo)
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) >= 2 && fields[0] == "MemTotal:" {
			kb, err := strconv.ParseInt(fields[1], 10, 64)
			if err == nil {
				return kb << 10
			}
		}
	}
	return 0
}

// Default is the budget for one load when none is configured, with a line that
// says where it came from (for the startup log): three quarters of the
// container's memory limit, shared by the loads that may run at once, so that the
// process's other memory (the models already served, requests in flight) keeps a
// quarter. Outside a container, half the machine's memory likewise. 0 (unlimited)
// only when neither is known.
func Default(concurrentLoads int) (int64, string) {
	if concurrentLoads < 1 {
		concurrentLoads = 1
	}
	if limit, src, ok := ContainerLimit(); ok {
		return limit * 3 / 4 / int64(concurrentLoads), fmt.Sprintf("3/4 of the %s %s", src, Size(limit))
	}
	if mem := machineMemory(); mem > 0 {
		return mem / 2 / int64(concurrentLoads), fmt.Sprintf("1/2 of the machine's %s (no container memory limit)", Size(mem))
	}
	return 0, "unlimited (no memory limit known)"
}
