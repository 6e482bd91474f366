// This file is copied into sigs.k8s.io/kube-network-policies/pkg/networkpolicy when
// hack/cluster builds the add-on (build_network_policies in
// hack/cluster/lib/addon-network-policies.sh); the directory's leading underscore keeps
// it out of this module's own packages.

package networkpolicy

import (
	"encoding/binary"

	"github.com/google/nftables/expr"
	"github.com/google/nftables/xt"
)

// xtQueue is "-j NFQUEUE --queue-num num [--queue-bypass]" as an nft_compat target,
// for kernels without the native nft queue expression (CONFIG_NFT_QUEUE off). The info
// is struct xt_NFQ_info_v3 (queuenum, queues_total, flags) in host byte order.
func xtQueue(num uint16, bypass bool) *expr.Target {
	info := make(xt.Unknown, 6)
	binary.NativeEndian.PutUint16(info[0:], num)
	binary.NativeEndian.PutUint16(info[2:], 1) // one queue, no fan-out
	if bypass {
		binary.NativeEndian.PutUint16(info[4:], 0x1) // NFQ_FLAG_BYPASS
	}
	return &expr.Target{Name: "NFQUEUE", Rev: 3, Info: &info}
}
