package pickle

// memo is the pickle memo. Picklers number entries 0, 1, 2, ... so they live in
// a slice; an index beyond the end (legal, but only a hand-made stream does it)
// goes to a map, so that PUT 2³¹ cannot allocate 2³¹ slots.
type memo struct {
	dense  []memoSlot
	sparse map[int]any
	count  int
}

type memoSlot struct {
	v   any
	set bool
}

func (m *memo) get(idx int) (any, bool) {
	if idx >= 0 && idx < len(m.dense) {
		return m.dense[idx].v, m.dense[idx].set
	}
	v, ok := m.sparse[idx]
	return v, ok
}

// put stores v, refusing a new entry beyond limit.
func (m *memo) put(idx int, v any, limit int) bool {
	if _, exists := m.get(idx); !exists {
		if m.count >= limit {
			return false
		}
		m.count++
	}
	switch {
	case idx >= 0 && idx < len(m.dense):
		m.dense[idx] = memoSlot{v, true}
	case idx == len(m.dense):
		m.dense = append(m.dense, memoSlot{v, true})
	default:
		if m.sparse == nil {
			m.sparse = map[int]any{}
		}
		m.sparse[idx] = v
	}
	return true
}
