/* vlan-host.bpf.c — the legacy host's own 802.1Q tagging for bench-l2-migrate's iperf3
 * host (this kernel has no 8021q and no act_vlan): tc egress "vpush" tags every frame
 * with VID, tc ingress "vpop" takes the tag of VID off and drops any other frame.
 * Independent of kvnet's programs (l2/prog.c); built with clang -target bpf by the
 * bench and loaded with `tc filter add ... bpf da obj FILE sec vpush|vpop`. */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/pkt_cls.h>

#ifndef VID
#define VID 100
#endif

static long (*bpf_skb_vlan_push)(void *skb, __be16 proto, __u16 tci) =
	(void *)BPF_FUNC_skb_vlan_push;
static long (*bpf_skb_vlan_pop)(void *skb) = (void *)BPF_FUNC_skb_vlan_pop;

__attribute__((section("vpush"), used)) int vlan_push_prog(struct __sk_buff *skb)
{
	if (skb->vlan_present)
		return TC_ACT_SHOT;
	return bpf_skb_vlan_push(skb, __builtin_bswap16(ETH_P_8021Q), VID) ? TC_ACT_SHOT
									  : TC_ACT_OK;
}

__attribute__((section("vpop"), used)) int vlan_pop_prog(struct __sk_buff *skb)
{
	if (!skb->vlan_present || (skb->vlan_tci & 0xfff) != VID)
		return TC_ACT_SHOT;
	return bpf_skb_vlan_pop(skb) ? TC_ACT_SHOT : TC_ACT_OK;
}

char _license[] __attribute__((section("license"), used)) = "GPL";
