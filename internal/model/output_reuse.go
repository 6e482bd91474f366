package model

import "context"

// OutputReuse is memory a caller lends the model it calls: the memory of the
// outputs of its last call, which it no longer reads, for the model to write
// the next call's outputs into instead of allocating. A caller that answers
// one call after another from the same place (the gRPC server's pooled calls)
// holds one, starts each call with Next and gives it to the model through the
// call's context (OutputReuseFrom).
//
// The rule that makes it safe: the caller calls Next only once nothing reads
// the last call's outputs any more (its answer is encoded), and never for a
// call that failed (a model may still be writing them: a request given up
// while its run goes on). Within one call, what a model keeps is not lent
// again, so a model called twice in one call never writes over its first
// outputs. An OutputReuse serves one call at a time.
type OutputReuse struct {
	lent, kept any
	keptBytes  int
}

// Next starts the caller's next call: what the model kept of the last one is
// lent to it.
func (r *OutputReuse) Next() {
	r.lent, r.kept, r.keptBytes = r.kept, nil, 0
}

// Take returns what is lent to this call, once (nil after, and when nothing
// is). The model checks that it is memory of its own kind and its own.
func (r *OutputReuse) Take() any {
	v := r.lent
	r.lent = nil
	return v
}

// Keep keeps v, the memory this call's outputs are in (bytes of it), to be
// lent on the caller's next call.
func (r *OutputReuse) Keep(v any, bytes int) {
	r.kept, r.keptBytes = v, bytes
}

// Bytes is how much memory the caller holds through r.
func (r *OutputReuse) Bytes() int { return r.keptBytes }

// OutputReuseKey is the context key a caller's context answers with its
// *OutputReuse (a context of the caller's own type can answer it without the
// allocation context.WithValue makes).
type OutputReuseKey struct{}

// OutputReuseFrom returns the memory the call's context lends, or nil.
func OutputReuseFrom(ctx context.Context) *OutputReuse {
	r, _ := ctx.Value(OutputReuseKey{}).(*OutputReuse)
	return r
}
