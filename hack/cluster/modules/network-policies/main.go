// Command kube-network-policies enforces Kubernetes NetworkPolicy on the local test
// cluster, whose bridge CNI does not. It is sigs.k8s.io/kube-network-policies (what kind
// runs): nftables hands the first packet of every connection to or from a pod that a
// policy selects to this process through nfqueue, and the process accepts or drops it
// by evaluating the policies it watches.
//
// What differs from upstream's release, all of it for this host:
//
//   - The kernel has nf_tables but not its native "queue" expression (CONFIG_NFT_QUEUE
//     is off, and there are no loadable modules), while the xtables NFQUEUE target runs
//     through nft_compat. hack/cluster builds this command against a copy of the module
//     whose controller emits the NFQUEUE target (_patch/xtqueue.go) in place of the
//     queue expression (build_network_policies in lib/addon-network-policies.sh); the
//     rules and verdicts are otherwise upstream's.
//   - SIGTERM (what the kubelet sends) stops the controller, which then deletes its
//     nftables table; upstream only does so on SIGINT. "-cleanup" deletes the table
//     and "-leftover" reports it, for the harness' cluster down and check-clean after
//     the pod was killed.
//
// AdminNetworkPolicy is left out (it needs the network-policy-api CRDs). NRI stays
// configured but finds no socket (containerd 1.6 has no NRI), so pod addresses come from
// the API server; turning it off instead (NRIdisabled) makes v0.8.0 dereference a nil
// plugin for every packet whose address is not a pod's.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"

	"github.com/google/nftables"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/component-base/logs"
	logsapi "k8s.io/component-base/logs/api/v1"
	nodeutil "k8s.io/component-helpers/node/util"
	"k8s.io/klog/v2"
	"sigs.k8s.io/kube-network-policies/pkg/networkpolicy"
)

// tableName is the inet table the controller owns (upstream's default).
const tableName = "kube-network-policies"

func main() {
	var (
		failOpen    = flag.Bool("fail-open", false, "accept packets when this process does not answer (nfqueue bypass)")
		queueID     = flag.Int("nfqueue-id", 98, "nfqueue number the rules send packets to")
		metricsAddr = flag.String("metrics-bind-address", "127.0.0.1:9080", "address of the /metrics endpoint; empty: none")
		hostname    = flag.String("hostname-override", "", "node name (default: the hostname)")
		dnsFix      = flag.Bool("netfilter-bug-1766-fix", false, "evaluate DNS on PREROUTING (only kernels before 6.12 need it)")
		cleanup     = flag.Bool("cleanup", false, "delete the nftables table and exit")
		leftover    = flag.Bool("leftover", false, "print the nftables table and exit 1 if it exists, exit 0 if not")
	)
	c := logsapi.NewLoggingConfiguration()
	logsapi.AddGoFlags(c, flag.CommandLine)
	flag.Parse()
	logs.InitLogs()
	if err := logsapi.ValidateAndApply(c, nil); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	if *leftover {
		t, err := findTable()
		if err != nil {
			fmt.Fprintln(os.Stderr, "kube-network-policies -leftover:", err)
			os.Exit(2)
		}
		if t != nil {
			fmt.Println("nftables table inet " + tableName)
			os.Exit(1)
		}
		return
	}
	if *cleanup {
		if err := deleteTable(); err != nil {
			fmt.Fprintln(os.Stderr, "kube-network-policies -cleanup:", err)
			os.Exit(1)
		}
		return
	}
	if err := run(networkpolicy.Config{
		FailOpen:            *failOpen,
		QueueID:             *queueID,
		NetfilterBug1766Fix: *dnsFix,
		NFTableName:         tableName,
	}, *hostname, *metricsAddr); err != nil {
		klog.ErrorS(err, "kube-network-policies")
		klog.FlushAndExit(klog.ExitFlushTimeout, 1)
	}
}

func run(cfg networkpolicy.Config, hostname, metricsAddr string) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	if cfg.NodeName, err = nodeutil.GetHostname(hostname); err != nil {
		return fmt.Errorf("node name: %w", err)
	}
	config, err := rest.InClusterConfig()
	if err != nil {
		return err
	}
	config.AcceptContentTypes = "application/vnd.kubernetes.protobuf,application/json"
	config.ContentType = "application/vnd.kubernetes.protobuf"
	client, err := kubernetes.NewForConfig(config)
	if err != nil {
		return err
	}
	if metricsAddr != "" {
		if _, _, err := net.SplitHostPort(metricsAddr); err != nil {
			return fmt.Errorf("metrics address %q: %w", metricsAddr, err)
		}
		ln, err := net.Listen("tcp", metricsAddr)
		if err != nil {
			return err
		}
		mux := http.NewServeMux()
		mux.Handle("/metrics", promhttp.Handler())
		go func() { _ = http.Serve(ln, mux) }()
	}
	factory := informers.NewSharedInformerFactory(client, 0)
	controller, err := networkpolicy.NewController(client,
		factory.Networking().V1().NetworkPolicies(),
		factory.Core().V1().Namespaces(),
		factory.Core().V1().Pods(),
		nil, nil, nil, nil, cfg)
	if err != nil {
		return err
	}
	done := make(chan error, 1)
	// Run installs the rules, answers the queue until ctx ends, then deletes its table.
	go func() { done <- controller.Run(ctx) }()
	factory.Start(ctx.Done())
	select {
	case err = <-done: // the queue could not be opened, or the caches never synced
		if err == nil {
			err = errors.New("controller stopped")
		}
		return err
	case <-ctx.Done():
		klog.InfoS("stopping: removing the nftables rules")
		<-done
		return nil
	}
}

// findTable returns the controller's inet table, or nil if the host has none.
func findTable() (*nftables.Table, error) {
	conn, err := nftables.New()
	if err != nil {
		return nil, err
	}
	tables, err := conn.ListTablesOfFamily(nftables.TableFamilyINet)
	if err != nil {
		return nil, err
	}
	for _, t := range tables {
		if t.Name == tableName {
			return t, nil
		}
	}
	return nil, nil
}

// deleteTable removes the controller's inet table if it is there.
func deleteTable() error {
	t, err := findTable()
	if err != nil || t == nil {
		return err
	}
	conn, err := nftables.New()
	if err != nil {
		return err
	}
	conn.DelTable(t)
	return conn.Flush()
}
