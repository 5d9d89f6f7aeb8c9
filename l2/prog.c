/* l2/prog — assembling the trunk, uplink and port-guard programs; see prog.h.
 *
 * Registers: r6 the skb (context) throughout, r7-r9 values kept across helper calls.
 * Packet bytes are copied to the stack with bpf_skb_load_bytes (a short packet is an
 * error the program sees, never a silent pass), into a 64-byte buffer at fp-64 and an
 * 8-byte one at fp-8; the verifier wants stack reads aligned to their size, so fields are
 * read in pieces that are (a MAC as three u16, an ARP sender address as two). */
#include "l2/prog.h"

#include "net/bpf.h"

#include <arpa/inet.h>
#include <errno.h>
#include <linux/if_ether.h>
#include <linux/pkt_cls.h>
#include <stddef.h>
#include <string.h>
#include <sys/socket.h>

#define BUF (-64)   /* fp offset of the 64-byte buffer */
#define SMALL (-8)  /* fp offset of the 8-byte buffer */
#define TGT (-32)   /* fp offset of a 16-byte address inside BUF's upper half */

enum {
	L_DROP,
	L_PASS,
	L_UNTAGGED,
	L_HAVE_VID,
	L_INPKT,
	L_TAGGED,
	L_ARP,
	L_IP4,
	L_IP6,
	L_SRC_OK,
	L_ICMP6,
	L_UDP6,
	L_NA,
	L_L4_6,
	L_VLAN0, /* L_VLAN0 + i: VLAN i of the trunk program */
};

/* Labels for address matches of the guard come after the trunk's VLAN labels. */
#define L_ADDR0 (L_VLAN0 + L2_VLAN_MAX)

static int16_t ctx_off(size_t off)
{
	return (int16_t)off;
}

/* Copy len bytes of the packet at offset (off_reg, or the constant off when off_reg < 0)
 * to the stack at fp + fp_off; a packet too short goes to fail. */
static void load(struct bpf_asm *a, int off_reg, int32_t off, int16_t fp_off, int32_t len,
		 unsigned fail)
{
	bpf_mov_reg(a, BPF_REG_1, BPF_REG_6);
	if (off_reg >= 0)
		bpf_mov_reg(a, BPF_REG_2, off_reg);
	else
		bpf_mov_imm(a, BPF_REG_2, off);
	bpf_mov_reg(a, BPF_REG_3, BPF_REG_10);
	bpf_alu_imm(a, BPF_ADD, BPF_REG_3, fp_off);
	bpf_mov_imm(a, BPF_REG_4, len);
	bpf_call(a, BPF_FUNC_skb_load_bytes);
	bpf_jmp_imm(a, BPF_JNE, BPF_REG_0, 0, fail);
}

/* if the u16 at fp + fp_off != the two bytes at p: goto label */
static void ne16(struct bpf_asm *a, int16_t fp_off, const uint8_t *p, unsigned label)
{
	bpf_ldx(a, BPF_H, BPF_REG_0, BPF_REG_10, fp_off);
	bpf_jmp32_imm(a, BPF_JNE, BPF_REG_0, bpf_imm_bytes(p, 2), label);
}

/* if the u32 at fp + fp_off != the four bytes at p: goto label */
static void ne32(struct bpf_asm *a, int16_t fp_off, const uint8_t *p, unsigned label)
{
	bpf_ldx(a, BPF_W, BPF_REG_0, BPF_REG_10, fp_off);
	bpf_jmp32_imm(a, BPF_JNE, BPF_REG_0, bpf_imm_bytes(p, 4), label);
}

/* if the skb carries an offloaded tag, or its ethertype (copied to fp + SMALL) is
 * 802.1Q / 802.1ad: goto tagged. A frame too short for an ethertype goes to short. */
static void if_tagged(struct bpf_asm *a, unsigned tagged, unsigned short_)
{
	static const uint8_t q[2] = { 0x81, 0x00 }, ad[2] = { 0x88, 0xa8 };
	bpf_ldx(a, BPF_W, BPF_REG_0, BPF_REG_6, ctx_off(offsetof(struct __sk_buff, vlan_present)));
	bpf_jmp32_imm(a, BPF_JNE, BPF_REG_0, 0, tagged);
	load(a, -1, 12, SMALL, 2, short_);
	bpf_ldx(a, BPF_H, BPF_REG_0, BPF_REG_10, SMALL);
	bpf_jmp32_imm(a, BPF_JEQ, BPF_REG_0, bpf_imm_bytes(q, 2), tagged);
	bpf_jmp32_imm(a, BPF_JEQ, BPF_REG_0, bpf_imm_bytes(ad, 2), tagged);
}

/* r1 = ifindex, r2 = 0 (egress); redirect; exit with its verdict */
static void redirect(struct bpf_asm *a, int ifindex)
{
	bpf_mov_imm(a, BPF_REG_1, ifindex);
	bpf_mov_imm(a, BPF_REG_2, 0);
	bpf_call(a, BPF_FUNC_redirect);
	bpf_exit(a);
}

/* The shared exits (the verifier refuses code no path reaches: pass only when used). */
static void verdicts(struct bpf_asm *a, bool pass)
{
	if (pass) {
		bpf_label(a, L_PASS);
		bpf_ret(a, TC_ACT_OK);
	}
	bpf_label(a, L_DROP);
	bpf_ret(a, TC_ACT_SHOT);
}

int l2_prog_trunk(struct bpf_asm *a, const struct l2_vlan_out *v, size_t n,
		  int untagged_ifindex)
{
	static const uint8_t q[2] = { 0x81, 0x00 };
	if (n > L2_VLAN_MAX)
		return -E2BIG;
	for (size_t i = 0; i < n; i++) {
		if (v[i].vid < 1 || v[i].vid > 4094 || v[i].ifindex <= 0)
			return -EINVAL;
		for (size_t j = 0; j < i; j++)
			if (v[j].vid == v[i].vid)
				return -EEXIST;
	}
	bpf_asm_init(a);
	bpf_mov_reg(a, BPF_REG_6, BPF_REG_1);
	/* the VLAN id into r7: from the offloaded tag, else from the frame */
	bpf_ldx(a, BPF_W, BPF_REG_0, BPF_REG_6, ctx_off(offsetof(struct __sk_buff, vlan_present)));
	bpf_jmp32_imm(a, BPF_JEQ, BPF_REG_0, 0, L_INPKT);
	bpf_ldx(a, BPF_W, BPF_REG_0, BPF_REG_6, ctx_off(offsetof(struct __sk_buff, vlan_proto)));
	bpf_jmp32_imm(a, BPF_JNE, BPF_REG_0, bpf_imm_bytes(q, 2), L_DROP); /* an S-tag */
	bpf_ldx(a, BPF_W, BPF_REG_7, BPF_REG_6, ctx_off(offsetof(struct __sk_buff, vlan_tci)));
	bpf_ja(a, L_HAVE_VID);
	bpf_label(a, L_INPKT);
	load(a, -1, 12, SMALL, 4, L_DROP); /* ethertype + TCI; a runt is dropped */
	bpf_ldx(a, BPF_H, BPF_REG_0, BPF_REG_10, SMALL);
	static const uint8_t ad[2] = { 0x88, 0xa8 };
	bpf_jmp32_imm(a, BPF_JEQ, BPF_REG_0, bpf_imm_bytes(ad, 2), L_DROP);
	bpf_jmp32_imm(a, BPF_JNE, BPF_REG_0, bpf_imm_bytes(q, 2), L_UNTAGGED);
	bpf_ldx(a, BPF_H, BPF_REG_7, BPF_REG_10, SMALL + 2);
	bpf_be16(a, BPF_REG_7);
	bpf_label(a, L_HAVE_VID);
	bpf_alu_imm(a, BPF_AND, BPF_REG_7, 0xfff);
	for (size_t i = 0; i < n; i++)
		bpf_jmp32_imm(a, BPF_JEQ, BPF_REG_7, v[i].vid, L_VLAN0 + (unsigned)i);
	bpf_ja(a, L_DROP); /* a VLAN that is none of ours */
	for (size_t i = 0; i < n; i++) {
		bpf_label(a, L_VLAN0 + (unsigned)i);
		bpf_mov_reg(a, BPF_REG_1, BPF_REG_6);
		bpf_call(a, BPF_FUNC_skb_vlan_pop);
		bpf_jmp_imm(a, BPF_JNE, BPF_REG_0, 0, L_DROP);
		/* an inner tag is not let through to a VM */
		if_tagged(a, L_DROP, L_DROP);
		redirect(a, v[i].ifindex);
	}
	bpf_label(a, L_UNTAGGED);
	if (untagged_ifindex > 0)
		redirect(a, untagged_ifindex);
	else
		bpf_ja(a, L_PASS);
	verdicts(a, untagged_ifindex <= 0);
	return 0;
}

int l2_prog_uplink(struct bpf_asm *a, uint16_t vid, int trunk_ifindex)
{
	if (vid > 4094 || trunk_ifindex <= 0)
		return -EINVAL;
	bpf_asm_init(a);
	bpf_mov_reg(a, BPF_REG_6, BPF_REG_1);
	if_tagged(a, L_DROP, L_DROP);
	if (vid) {
		bpf_mov_reg(a, BPF_REG_1, BPF_REG_6);
		bpf_mov_imm(a, BPF_REG_2, htons(ETH_P_8021Q));
		bpf_mov_imm(a, BPF_REG_3, vid);
		bpf_call(a, BPF_FUNC_skb_vlan_push);
		bpf_jmp_imm(a, BPF_JNE, BPF_REG_0, 0, L_DROP);
	}
	redirect(a, trunk_ifindex);
	verdicts(a, false);
	return 0;
}

/* Jump to ok when the 4-byte IPv4 address at fp + off (read as two u16, off even) is one
 * of g's; the caller continues (no match) after. */
static void match_v4(struct bpf_asm *a, const struct l2_guard *g, int16_t off, unsigned ok,
		     unsigned *next)
{
	for (size_t i = 0; i < g->n_ips; i++) {
		if (g->ips[i].family != AF_INET)
			continue;
		unsigned miss = (*next)++;
		ne16(a, off, g->ips[i].b, miss);
		ne16(a, (int16_t)(off + 2), g->ips[i].b + 2, miss);
		bpf_ja(a, ok);
		bpf_label(a, miss);
	}
}

/* Jump to ok when the 16-byte address at fp + off (4-aligned) is one of g's v6 ones,
 * link-local, or (unspec) all zero. */
static void match_v6(struct bpf_asm *a, const struct l2_guard *g, int16_t off, bool unspec,
		     unsigned ok, unsigned *next)
{
	static const uint8_t zero[16], ll[4] = { 0xfe, 0x80, 0, 0 }, llmask[4] = { 0xff, 0xc0, 0, 0 };
	for (size_t i = 0; i < g->n_ips; i++) {
		if (g->ips[i].family != AF_INET6)
			continue;
		unsigned miss = (*next)++;
		for (int w = 0; w < 4; w++)
			ne32(a, (int16_t)(off + 4 * w), g->ips[i].b + 4 * w, miss);
		bpf_ja(a, ok);
		bpf_label(a, miss);
	}
	unsigned miss = (*next)++;
	bpf_ldx(a, BPF_W, BPF_REG_0, BPF_REG_10, off);
	bpf_alu_imm(a, BPF_AND, BPF_REG_0, bpf_imm_bytes(llmask, 4));
	bpf_jmp32_imm(a, BPF_JNE, BPF_REG_0, bpf_imm_bytes(ll, 4), miss);
	bpf_ja(a, ok);
	bpf_label(a, miss);
	if (unspec) {
		miss = (*next)++;
		for (int w = 0; w < 4; w++)
			ne32(a, (int16_t)(off + 4 * w), zero, miss);
		bpf_ja(a, ok);
		bpf_label(a, miss);
	}
}

static void guard_arp(struct bpf_asm *a, const struct l2_guard *g, unsigned *next)
{
	static const uint8_t zero[4];
	bpf_label(a, L_ARP);
	load(a, -1, ETH_HLEN, BUF, 28, L_DROP);
	/* sender hardware address at 8 */
	for (int k = 0; k < 3; k++)
		ne16(a, (int16_t)(BUF + 8 + 2 * k), g->mac + 2 * k, L_DROP);
	if (!g->n_ips)
		return bpf_ja(a, L_PASS);
	/* sender protocol address at 14: 0.0.0.0 (a probe) or the VM's */
	unsigned notzero = (*next)++;
	ne16(a, BUF + 14, zero, notzero);
	ne16(a, BUF + 16, zero, notzero);
	bpf_ja(a, L_PASS);
	bpf_label(a, notzero);
	match_v4(a, g, BUF + 14, L_PASS, next);
	bpf_ja(a, L_DROP);
}

static void guard_ip4(struct bpf_asm *a, const struct l2_guard *g, unsigned *next)
{
	static const uint8_t zero[4], dhcps[2] = { 0, 67 }, frag[4] = { 0x1f, 0xff, 0, 0 };
	bpf_label(a, L_IP4);
	load(a, -1, ETH_HLEN, BUF, 20, L_DROP);
	if (g->n_ips) {
		unsigned notzero = (*next)++;
		ne32(a, BUF + 12, zero, notzero);
		bpf_ja(a, L_SRC_OK);
		bpf_label(a, notzero);
		match_v4(a, g, BUF + 12, L_SRC_OK, next);
		bpf_ja(a, L_DROP);
	}
	bpf_label(a, L_SRC_OK);
	/* UDP from port 67 (a DHCP server) is dropped; a later fragment has no UDP header */
	bpf_ldx(a, BPF_B, BPF_REG_0, BPF_REG_10, BUF + 9);
	bpf_jmp32_imm(a, BPF_JNE, BPF_REG_0, IPPROTO_UDP, L_PASS);
	bpf_ldx(a, BPF_H, BPF_REG_0, BPF_REG_10, BUF + 6);
	bpf_alu_imm(a, BPF_AND, BPF_REG_0, bpf_imm_bytes(frag, 2));
	bpf_jmp32_imm(a, BPF_JNE, BPF_REG_0, 0, L_PASS);
	bpf_ldx(a, BPF_B, BPF_REG_2, BPF_REG_10, BUF);
	bpf_alu_imm(a, BPF_AND, BPF_REG_2, 0xf);
	bpf_alu_imm(a, BPF_LSH, BPF_REG_2, 2);
	bpf_alu_imm(a, BPF_ADD, BPF_REG_2, ETH_HLEN);
	bpf_mov_reg(a, BPF_REG_9, BPF_REG_2);
	load(a, BPF_REG_9, 0, SMALL, 2, L_DROP);
	bpf_ldx(a, BPF_H, BPF_REG_0, BPF_REG_10, SMALL);
	bpf_jmp32_imm(a, BPF_JEQ, BPF_REG_0, bpf_imm_bytes(dhcps, 2), L_DROP);
	bpf_ja(a, L_PASS);
}

/* The upper-layer part of IPv6, after a source that passed: r8 next header, r9 offset. */
static void guard_l4_6(struct bpf_asm *a, const struct l2_guard *g, unsigned *next)
{
	static const uint8_t dhcps[2] = { 0x02, 0x23 }; /* 547 */
	bpf_label(a, L_L4_6);
	bpf_ldx(a, BPF_B, BPF_REG_8, BPF_REG_10, BUF + 6);
	bpf_mov_imm(a, BPF_REG_9, ETH_HLEN + 40);
	/* one hop-by-hop header (MLD reports carry one) is stepped over */
	unsigned nohbh = (*next)++;
	bpf_jmp32_imm(a, BPF_JNE, BPF_REG_8, 0, nohbh);
	load(a, BPF_REG_9, 0, SMALL, 2, L_DROP);
	bpf_ldx(a, BPF_B, BPF_REG_8, BPF_REG_10, SMALL);
	bpf_ldx(a, BPF_B, BPF_REG_0, BPF_REG_10, SMALL + 1);
	bpf_alu_imm(a, BPF_ADD, BPF_REG_0, 1);
	bpf_alu_imm(a, BPF_LSH, BPF_REG_0, 3);
	bpf_alu_reg(a, BPF_ADD, BPF_REG_9, BPF_REG_0);
	bpf_label(a, nohbh);
	bpf_jmp32_imm(a, BPF_JEQ, BPF_REG_8, IPPROTO_ICMPV6, L_ICMP6);
	bpf_jmp32_imm(a, BPF_JEQ, BPF_REG_8, IPPROTO_UDP, L_UDP6);
	bpf_ja(a, L_PASS);

	bpf_label(a, L_ICMP6);
	load(a, BPF_REG_9, 0, SMALL, 4, L_DROP);
	bpf_ldx(a, BPF_B, BPF_REG_0, BPF_REG_10, SMALL);
	bpf_jmp32_imm(a, BPF_JEQ, BPF_REG_0, 134, L_DROP); /* router advertisement */
	bpf_jmp32_imm(a, BPF_JEQ, BPF_REG_0, 137, L_DROP); /* redirect */
	bpf_jmp32_imm(a, BPF_JEQ, BPF_REG_0, 136, L_NA);
	bpf_ja(a, L_PASS);
	bpf_label(a, L_NA);
	if (!g->n_ips) {
		bpf_ja(a, L_PASS);
	} else {
		bpf_alu_imm(a, BPF_ADD, BPF_REG_9, 8); /* the target address */
		load(a, BPF_REG_9, 0, TGT, 16, L_DROP);
		match_v6(a, g, TGT, false, L_PASS, next);
		bpf_ja(a, L_DROP);
	}

	bpf_label(a, L_UDP6);
	load(a, BPF_REG_9, 0, SMALL, 2, L_DROP);
	bpf_ldx(a, BPF_H, BPF_REG_0, BPF_REG_10, SMALL);
	bpf_jmp32_imm(a, BPF_JEQ, BPF_REG_0, bpf_imm_bytes(dhcps, 2), L_DROP);
	bpf_ja(a, L_PASS);
}

int l2_prog_guard(struct bpf_asm *a, const struct l2_guard *g)
{
	static const uint8_t arp[2] = { 0x08, 0x06 }, ip4[2] = { 0x08, 0x00 },
			     ip6[2] = { 0x86, 0xdd };
	if (g->n_ips > L2_PORT_IPS)
		return -E2BIG;
	for (size_t i = 0; i < g->n_ips; i++)
		if (g->ips[i].family != AF_INET && g->ips[i].family != AF_INET6)
			return -EAFNOSUPPORT;
	unsigned next = L_ADDR0;
	bpf_asm_init(a);
	bpf_mov_reg(a, BPF_REG_6, BPF_REG_1);
	/* a VM sends no tagged frame */
	bpf_ldx(a, BPF_W, BPF_REG_0, BPF_REG_6, ctx_off(offsetof(struct __sk_buff, vlan_present)));
	bpf_jmp32_imm(a, BPF_JNE, BPF_REG_0, 0, L_DROP);
	load(a, -1, 0, BUF, ETH_HLEN, L_DROP);
	for (int k = 0; k < 3; k++)
		ne16(a, (int16_t)(BUF + 6 + 2 * k), g->mac + 2 * k, L_DROP);
	bpf_ldx(a, BPF_H, BPF_REG_8, BPF_REG_10, BUF + 12);
	bpf_jmp32_imm(a, BPF_JEQ, BPF_REG_8, bpf_imm_bytes(arp, 2), L_ARP);
	bpf_jmp32_imm(a, BPF_JEQ, BPF_REG_8, bpf_imm_bytes(ip4, 2), L_IP4);
	bpf_jmp32_imm(a, BPF_JEQ, BPF_REG_8, bpf_imm_bytes(ip6, 2), L_IP6);
	bpf_ja(a, L_DROP); /* 802.1Q in the frame, LLDP, anything else */
	guard_arp(a, g, &next);
	guard_ip4(a, g, &next);
	/* IPv6: the source, then the upper layer */
	bpf_label(a, L_IP6);
	load(a, -1, ETH_HLEN, BUF, 40, L_DROP);
	if (g->n_ips) {
		match_v6(a, g, BUF + 8, true, L_L4_6, &next);
		bpf_ja(a, L_DROP);
	}
	guard_l4_6(a, g, &next);
	verdicts(a, true);
	return 0;
}

int l2_prog_gate(struct bpf_asm *a)
{
	bpf_asm_init(a);
	bpf_ret(a, TC_ACT_SHOT);
	return 0;
}
