package controller

import (
	"fmt"
	"log/slog"
	"os"
	"strings"

	"github.com/spf13/cobra"
	ctrl "sigs.k8s.io/controller-runtime"
)

// NewCommand is the tide-operator command: flags, logging, and the manager's run.
func NewCommand(version string) *cobra.Command {
	o := Options{
		Config:      Config{DefaultImage: "tide.local/tide:" + version, PrometheusAddress: "http://prometheus.monitoring.svc:9090"},
		MetricsAddr: ":8080",
		ProbeAddr:   ":8081",
		Concurrency: 4,
	}
	var logLevel string
	cmd := &cobra.Command{
		Use:           "tide-operator",
		Short:         "Run the Tide operator: Model objects become served, autoscaled models",
		Version:       version,
		SilenceUsage:  true,
		SilenceErrors: true,
		Args:          cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			var level slog.Level
			if err := level.UnmarshalText([]byte(logLevel)); err != nil {
				return fmt.Errorf("--log-level %q: want debug, info, warn or error", logLevel)
			}
			log := slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
			if o.OperatorNamespace == "" {
				o.OperatorNamespace = podNamespace()
			}
			restConfig, err := ctrl.GetConfig()
			if err != nil {
				return fmt.Errorf("kubeconfig: %w", err)
			}
			mgr, err := NewManager(restConfig, o, log)
			if err != nil {
				return err
			}
			log.Info("starting", "version", version, "default_image", o.DefaultImage, "leader_election", o.LeaderElection)
			return mgr.Start(ctrl.SetupSignalHandler())
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&o.DefaultImage, "default-image", o.DefaultImage, "Tide server image for Models that name none")
	fl.StringVar(&o.PrometheusAddress, "prometheus-address", o.PrometheusAddress, "Prometheus KEDA reads request rates from, for scale to zero")
	fl.StringVar(&o.OperatorNamespace, "operator-namespace", "", "namespace every Model's NetworkPolicy admits (the operator reads pods' repository index); default: this pod's")
	fl.StringVar(&o.MetricsAddr, "metrics-bind-address", o.MetricsAddr, `address of the Prometheus metrics endpoint ("0" turns it off)`)
	fl.StringVar(&o.ProbeAddr, "health-probe-bind-address", o.ProbeAddr, "address of /healthz and /readyz")
	fl.BoolVar(&o.LeaderElection, "leader-elect", false, "elect a leader, so that one of several replicas reconciles")
	fl.StringVar(&o.LeaderElectionNamespace, "leader-election-namespace", "", "namespace of the leader Lease (default: this pod's)")
	fl.IntVar(&o.Concurrency, "concurrency", o.Concurrency, "Models reconciled at once")
	fl.StringVar(&logLevel, "log-level", "info", "log level: debug, info, warn, error")
	return cmd
}

// podNamespace is the namespace the operator runs in, from its service account.
func podNamespace() string {
	b, err := os.ReadFile("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}
