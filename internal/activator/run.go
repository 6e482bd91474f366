package activator

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Addrs are the two listeners of a running activator.
type Addrs struct {
	// Proxy receives the traffic meant for the model (the Service's port).
	Proxy string
	// Ops serves /metrics (what KEDA's trigger reads), /healthz and the route (/v1/route).
	Ops string
}

// Run serves the proxy and its ops endpoints until ctx ends, then gives held requests
// the time they were promised (HoldTimeout) to finish. ready, if set, is called with
// the bound addresses once both listeners are open.
func Run(ctx context.Context, addrs Addrs, cfg Config, log *slog.Logger, ready func(Addrs)) error {
	cfg = cfg.withDefaults()
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	proxy, err := New(cfg, reg, log)
	if err != nil {
		return err
	}
	ops := http.NewServeMux()
	ops.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	ops.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("ok\n")) })
	proxy.registerControl(ops)

	// A held request may wait for HoldTimeout before the backend even starts to
	// answer, so the write timeout leaves room for it.
	front := &http.Server{Handler: proxy, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 90 * time.Second,
		WriteTimeout: cfg.HoldTimeout + 2*time.Minute}
	opsSrv := &http.Server{Handler: ops, ReadHeaderTimeout: 10 * time.Second}
	lf, err := net.Listen("tcp", addrs.Proxy)
	if err != nil {
		return fmt.Errorf("activator: %w", err)
	}
	lm, err := net.Listen("tcp", addrs.Ops)
	if err != nil {
		lf.Close()
		return fmt.Errorf("activator: %w", err)
	}
	errc := make(chan error, 2)
	go func() { errc <- front.Serve(lf) }()
	go func() { errc <- opsSrv.Serve(lm) }()
	bound := Addrs{Proxy: lf.Addr().String(), Ops: lm.Addr().String()}
	log.Info("activator listening", "addr", bound.Proxy, "metrics", bound.Ops, "target", cfg.Target.String(),
		"hold_timeout", cfg.HoldTimeout)
	if ready != nil {
		ready(bound)
	}
	select {
	case err = <-errc:
	case <-ctx.Done():
		err = nil
	}
	sctx, cancel := context.WithTimeout(context.Background(), cfg.HoldTimeout+10*time.Second)
	defer cancel()
	front.Shutdown(sctx)
	opsSrv.Shutdown(sctx)
	proxy.Close()
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}
