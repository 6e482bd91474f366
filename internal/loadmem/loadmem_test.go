package loadmem

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

func TestChargeRefusesPastTheLimitAndTakesNothing(t *testing.T) {
	b := New(100)
	if err := b.Charge(60); err != nil {
		t.Fatal(err)
	}
	err := b.Charge(41)
	if !errors.Is(err, ErrExceeded) {
		t.Fatalf("Charge(41) with 40 left = %v, want ErrExceeded", err)
	}
	if !strings.Contains(err.Error(), "100 B memory budget") || strings.Contains(err.Error(), "\n") {
		t.Errorf("error %q should name the budget on one line", err)
	}
	if b.Used() != 60 || b.Left() != 40 {
		t.Errorf("a refused charge changed the budget: used %d left %d", b.Used(), b.Left())
	}
	if err := b.Charge(40); err != nil {
		t.Errorf("the exact remainder must fit: %v", err)
	}
	if err := b.Charge(-1); err == nil {
		t.Error("a negative charge (an overflowed size) must fail")
	}
}

func TestNilBudgetIsUnlimited(t *testing.T) {
	var b *Budget = New(0)
	if b != nil {
		t.Fatal("New(0) should be the unlimited nil budget")
	}
	if err := b.Charge(1 << 62); err != nil {
		t.Fatal(err)
	}
	if b.Limit() != 0 || b.Left() <= 0 {
		t.Errorf("nil budget: limit %d left %d", b.Limit(), b.Left())
	}
}

func TestChargeIsExactUnderConcurrency(t *testing.T) {
	b := New(1000)
	var wg sync.WaitGroup
	var mu sync.Mutex
	ok := 0
	for i := 0; i < 50; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 10; j++ {
				if b.Charge(3) == nil {
					mu.Lock()
					ok++
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	if ok != 333 || b.Used() != 999 {
		t.Errorf("%d charges of 3 succeeded (used %d), want 333 (999)", ok, b.Used())
	}
}

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{
		"268435456": 268435456, "256Mi": 256 << 20, "2Gi": 2 << 30, "512M": 512e6,
		"1.5G": 1.5e9, "64k": 64e3, "1KiB": 1024, "100B": 100, " 3Mi ": 3 << 20,
	} {
		got, err := ParseSize(in)
		if err != nil || got != want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "Mi", "-1Mi", "lots", "1Xi", "NaN", "1e30Gi"} {
		if _, err := ParseSize(bad); err == nil {
			t.Errorf("ParseSize(%q) should fail", bad)
		}
	}
}

func TestSize(t *testing.T) {
	for n, want := range map[int64]string{512: "512 B", 256 << 20: "256 MiB", 3 << 29: "1.5 GiB", 1024: "1 KiB"} {
		if got := Size(n); got != want {
			t.Errorf("Size(%d) = %q, want %q", n, got, want)
		}
	}
}

// fakeCgroup points the package's files at a temporary tree for one test.
func fakeCgroup(t *testing.T, v2, v1 string) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if content != "" {
			if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		return p
	}
	old2, old1, oldInfo := cgroupV2Max, cgroupV1Max, meminfo
	cgroupV2Max, cgroupV1Max = write("memory.max", v2), write("memory.limit_in_bytes", v1)
	meminfo = write("meminfo", "MemTotal:       8000000 kB\nMemFree: 1 kB\n")
	t.Cleanup(func() { cgroupV2Max, cgroupV1Max, meminfo = old2, old1, oldInfo })
}

func TestDefaultFollowsTheContainerLimit(t *testing.T) {
	fakeCgroup(t, "536870912\n", "")
	got, why := Default(1)
	if got != 384<<20 || !strings.Contains(why, "cgroup v2") {
		t.Errorf("cgroup v2 512Mi: Default = %d (%s), want 384Mi", got, why)
	}
	if got, _ := Default(2); got != 192<<20 {
		t.Errorf("two loads at once share it: got %d, want 192Mi", got)
	}

	fakeCgroup(t, "", "1073741824\n")
	if got, why := Default(1); got != 768<<20 || !strings.Contains(why, "cgroup v1") {
		t.Errorf("cgroup v1 1Gi: Default = %d (%s), want 768Mi", got, why)
	}

	fakeCgroup(t, "", "9223372036854771712\n") // v1's "no limit"
	if got, why := Default(1); got != 8000000<<10/2 || !strings.Contains(why, "machine") {
		t.Errorf("unlimited v1: Default = %d (%s), want half of MemTotal", got, why)
	}

	fakeCgroup(t, "max\n", "")
	if _, _, ok := ContainerLimit(); ok {
		t.Error(`cgroup v2 "max" is no limit`)
	}
}
