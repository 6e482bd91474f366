//go:build !linux

package loadgen

import "context"

// eventLoopAvailable: the event loop is epoll's; elsewhere the closed loop
// runs on goroutines.
const eventLoopAvailable = false

func (r *run) runEventLoops(context.Context) bool { return false }
