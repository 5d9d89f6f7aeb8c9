/* netns test for agent/cthand: the hand-over calls a transport makes, between two node
 * namespaces A and B with real conntrack tables, checked with conntrack(8).
 *
 * A holds entries of the VM (198.18.1.2, 2001:db8:1::2): a DNAT-ed TCP connection to the
 * Service-like 198.18.7.7:80 (-> 198.18.6.1:8080), one DNAT-ed and SNAT-ed (7.7:81 ->
 * 6.1:8081 from 198.18.0.9:50005, as a masquerading Service), an IPv6 one DNAT-ed
 * ([2001:db8:7::7]:80 -> [2001:db8:6::1]:8080), TCP over IPv6, UDP, ICMP;
 * and entries of another VM (198.18.1.3). The VM's entries are collected on A, encoded in
 * chunks of two entries and applied on B one chunk at a time: B lists exactly the VM's
 * entries with their NAT and TCP state; applying again changes nothing (updated, not
 * duplicated); a chunk of another VM's entries is skipped as foreign; a malformed chunk is
 * refused; A keeps every entry. A tracker opened before the copy collects what changed
 * after it (new, updated, destroyed entries of the VM, from conntrack events), and that
 * delta alone tops B up. */
#include "agent/cthand.h"
#include "lib/err.h"
#include "net/ct.h"
#include "net/nl.h"
#include "test/lib/t.h"
#include "test/lib/tns.h"

#include <errno.h>
#include <linux/netfilter/nf_conntrack_common.h>
#include <linux/netfilter/nf_conntrack_tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *A, *B;

static int sh_ok(const char *ns, const char *cmd)
{
	int st = -1;
	free(tns_sh(&st, ns, "%s", cmd));
	if (st != 0)
		t_note("command failed in %s (%d): %s", ns, st, cmd);
	return st == 0;
}

/* Lines of `conntrack -L -f FAMILY` in ns matching the extended regex re. */
static long ct_lines(const char *ns, const char *re)
{
	int st = -1;
	char *out = tns_sh(&st, ns,
			   "{ conntrack -L -f ipv4 2>/dev/null; conntrack -L -f ipv6 2>/dev/null; } "
			   "| grep -cE '%s'",
			   re);
	char *end = NULL;
	long v = out && (st == 0 || st == 1) ? strtol(out, &end, 10) : -1;
	if (end == out)
		v = -1;
	free(out);
	return v;
}

/* The Service DNAT rule (its NAT expression also switches conntrack on in the namespace,
 * so traffic is tracked). */
static const char *NAT_CHAIN =
    "nft add table inet kvt && nft add chain inet kvt nat "
    "'{ type nat hook prerouting priority dstnat; }' && "
    "nft add rule inet kvt nat ip daddr 198.18.7.7 tcp dport 80 dnat ip to 198.18.6.1:8080";

/* The DNAT entry is made as the kernel makes NAT entries: the reply tuple given un-NATed
 * and --dst-nat; the kernel rewrites the reply to come from 198.18.6.1:8080. */
static int setup(void)
{
	return sh_ok(A, NAT_CHAIN) && sh_ok(B, NAT_CHAIN) &&
	       sh_ok(A, "ip link set lo up && ip addr add 198.18.1.2/32 dev lo && "
			"ip addr add 198.18.6.1/32 dev lo") &&
	       sh_ok(A, "conntrack -I -p tcp -s 198.18.1.2 -d 198.18.7.7 --sport 40001 --dport 80 "
			"-r 198.18.7.7 -q 198.18.1.2 --reply-port-src 80 --reply-port-dst 40001 "
			"--dst-nat 198.18.6.1:8080 --state ESTABLISHED -u SEEN_REPLY,ASSURED "
			"-t 3600 2>/dev/null") &&
	       sh_ok(A, "conntrack -I -p tcp -s 198.18.1.2 -d 198.18.7.7 --sport 40005 --dport 81 "
			"-r 198.18.7.7 -q 198.18.1.2 --reply-port-src 81 --reply-port-dst 40005 "
			"--dst-nat 198.18.6.1:8081 --src-nat 198.18.0.9:50005 --state ESTABLISHED "
			"-u SEEN_REPLY,ASSURED -t 3600 2>/dev/null") &&
	       sh_ok(A, "conntrack -I -p tcp -s 2001:db8:1::2 -d 2001:db8:7::7 --sport 40030 "
			"--dport 80 -r 2001:db8:7::7 -q 2001:db8:1::2 --reply-port-src 80 "
			"--reply-port-dst 40030 --dst-nat [2001:db8:6::1]:8080 --state ESTABLISHED "
			"-u SEEN_REPLY,ASSURED -t 3600 2>/dev/null") &&
	       sh_ok(A, "conntrack -I -p tcp -s 2001:db8:1::2 -d 2001:db8:6::1 "
			"--sport 40002 --dport 443 --state ESTABLISHED -u SEEN_REPLY,ASSURED "
			"-t 3600 -m 7 2>/dev/null") &&
	       sh_ok(A, "conntrack -I -p udp -s 198.18.1.2 -d 198.18.6.1 --sport 5353 --dport 53 "
			"-t 60 2>/dev/null") &&
	       sh_ok(A, "conntrack -I -p icmp -s 198.18.1.2 -d 198.18.6.1 --icmp-type 8 "
			"--icmp-code 0 --icmp-id 77 -t 30 2>/dev/null") &&
	       sh_ok(A, "for p in 41001 41002 41003; do conntrack -I -p tcp -s 198.18.1.3 "
			"-d 198.18.6.1 --sport $p --dport 80 --state ESTABLISHED -t 3600 "
			"2>/dev/null || exit 1; done");
}

static void vm_addrs(struct ip_addr a[2])
{
	ip_parse("198.18.1.2", &a[0]);
	ip_parse("2001:db8:1::2", &a[1]);
}

static void test_collect_encode_apply(void)
{
	struct err e = {0};
	struct nl_sock *sa = NULL, *sb = NULL;
	struct ct_list l = {0};
	struct ip_addr vm[2];
	uint8_t buf[CT_WIRE_HDR + 2 * CT_WIRE_ENTRY + 50];
	vm_addrs(vm);
	T_EQ(ct_open(&sa, tns_path(A), &e), 0);
	T_EQ(ct_open(&sb, tns_path(B), &e), 0);
	if (!sa || !sb)
		goto out;
	T_EQ(ct_lines(A, "."), 9);
	T_EQ(ct_lines(A, "dport=80 src=198\\.18\\.6\\.1 dst=198\\.18\\.1\\.2 sport=8080"), 1);
	T_EQ(cthand_collect(sa, vm, 2, &l, &e), 0);
	T_EQ(l.n, 6); /* the VM's six, not the other VM's three */

	size_t pos = 0;
	int chunks = 0;
	unsigned applied = 0;
	long len;
	while ((len = cthand_encode(&l, &pos, buf, sizeof(buf), &e)) > 0) {
		struct cthand_result r;
		T_CHECK(len <= (long)ct_wire_size(2));
		int rc = cthand_apply(sb, vm, 2, buf, (size_t)len, &r, &e);
		if (rc < 0)
			t_note("%s", e.msg);
		T_EQ(rc, 0);
		T_EQ(r.foreign + r.failed, 0);
		applied += r.applied;
		chunks++;
	}
	T_EQ(len, 0);
	T_EQ(chunks, 3);
	T_EQ(applied, 6);
	/* B as conntrack(8) sees it: the VM's entries, NAT and TCP state and mark kept */
	T_EQ(ct_lines(B, "."), 6);
	T_EQ(ct_lines(B, "ESTABLISHED src=198\\.18\\.1\\.2 dst=198\\.18\\.7\\.7 sport=40001 "
			 "dport=80 src=198\\.18\\.6\\.1 dst=198\\.18\\.1\\.2 sport=8080 dport=40001 "
			 "\\[ASSURED\\]"),
	     1);
	T_EQ(ct_lines(B, "ESTABLISHED src=198\\.18\\.1\\.2 dst=198\\.18\\.7\\.7 sport=40005 "
			 "dport=81 src=198\\.18\\.6\\.1 dst=198\\.18\\.0\\.9 sport=8081 "
			 "dport=50005 \\[ASSURED\\]"),
	     1);
	T_EQ(ct_lines(B, "ESTABLISHED src=2001:db8:1::2 dst=2001:db8:7::7 sport=40030 dport=80 "
			 "src=2001:db8:6::1 dst=2001:db8:1::2 sport=8080 dport=40030 \\[ASSURED\\]"),
	     1);
	T_EQ(ct_lines(B, "ESTABLISHED src=2001:db8:1::2 dst=2001:db8:6::1 sport=40002 "
			 "dport=443 .*\\[ASSURED\\] mark=7"),
	     1);
	T_EQ(ct_lines(B, "^udp .*sport=5353 dport=53"), 1);
	T_EQ(ct_lines(B, "^icmp .*type=8 code=0 id=77"), 1);
	/* conntrack's own NAT view agrees: the three DNAT entries (both families) */
	int st = -1;
	char *dn = tns_sh(&st, B, "conntrack -L --dst-nat 2>/dev/null | grep -c 'dport=8[01] '");
	T_CHECK(dn && atoi(dn) == 3);
	free(dn);
	dn = tns_sh(&st, B, "conntrack -L --src-nat 2>/dev/null | grep -c 'dport=50005 '");
	T_CHECK(dn && atoi(dn) == 1);
	free(dn);
	dn = tns_sh(&st, B, "conntrack -L -f ipv6 --dst-nat 2>/dev/null | grep -c 'dport=40030 '");
	T_CHECK(dn && atoi(dn) == 1);
	free(dn);

	/* a top-up (at the cut-over): every entry updated, none added */
	pos = 0;
	while ((len = cthand_encode(&l, &pos, buf, sizeof(buf), &e)) > 0) {
		struct cthand_result r;
		T_EQ(cthand_apply(sb, vm, 2, buf, (size_t)len, &r, &e), 0);
		T_EQ(r.applied, r.entries);
	}
	T_EQ(ct_lines(B, "."), 6);
	/* the source still holds everything: the VM could come back */
	T_EQ(ct_lines(A, "."), 9);
out:
	ct_list_free(&l);
	if (sa)
		nl_close(sa);
	if (sb)
		nl_close(sb);
}

/* A chunk of another VM's entries, sent for this VM: nothing created. */
static void test_foreign_and_malformed(void)
{
	struct err e = {0};
	struct nl_sock *sa = NULL, *sb = NULL;
	struct ct_list other = {0};
	struct ip_addr vm[2], o;
	struct cthand_result r;
	uint8_t buf[4096];
	vm_addrs(vm);
	ip_parse("198.18.1.3", &o);
	T_EQ(ct_open(&sa, tns_path(A), &e), 0);
	T_EQ(ct_open(&sb, tns_path(B), &e), 0);
	if (!sa || !sb)
		goto out;
	T_EQ(cthand_collect(sa, &o, 1, &other, &e), 0);
	T_EQ(other.n, 3);
	size_t pos = 0;
	long len = cthand_encode(&other, &pos, buf, sizeof(buf), &e);
	T_EQ(len, (long)ct_wire_size(3));
	T_EQ(cthand_apply(sb, vm, 2, buf, (size_t)len, &r, &e), 0);
	T_EQ(r.entries, 3);
	T_EQ(r.foreign, 3);
	T_EQ(r.applied, 0);
	T_EQ(ct_lines(B, "198\\.18\\.1\\.3"), 0);
	/* cut short: refused whole */
	T_EQ(cthand_apply(sb, &o, 1, buf, (size_t)len - 1, &r, &e), -EBADMSG);
	T_EQ(r.applied, 0);
	T_EQ(ct_lines(B, "198\\.18\\.1\\.3"), 0);
	/* a chunk size that holds no entry */
	pos = 0;
	T_EQ(cthand_encode(&other, &pos, buf, ct_wire_size(1) - 1, &e), -EMSGSIZE);
	T_EQ(pos, 0);
	T_EQ(cthand_apply(sb, vm, 0, buf, (size_t)len, &r, &e), -EINVAL);
out:
	ct_list_free(&other);
	if (sa)
		nl_close(sa);
	if (sb)
		nl_close(sb);
}

/* Read the tracker until its delta holds the connection from source port sport
 * (bounded: 5 s of polls). */
static int track_until(struct cthand_track *t, uint16_t sport, struct err *e)
{
	for (int i = 0; i < 50; i++) {
		struct pollfd p = {.fd = cthand_track_fd(t), .events = POLLIN};
		if (poll(&p, 1, 100) == 1) {
			int rc = cthand_track_read(t, e);
			if (rc < 0)
				return rc;
		}
		const struct ct_list *d = cthand_track_list(t);
		for (size_t k = 0; k < d->n; k++)
			if (d->v[k].orig.sport == sport)
				return 0;
	}
	return -ETIMEDOUT;
}

static void test_track_topup(void)
{
	struct err e = {0};
	struct nl_sock *sa = NULL, *sb = NULL;
	struct ct_list l = {0};
	struct ip_addr vm[2];
	struct cthand_result r;
	uint8_t buf[4096];
	vm_addrs(vm);
	T_CHECK(sh_ok(B, "conntrack -F 2>/dev/null"));
	struct cthand_track *t = cthand_track_new(tns_path(A), vm, 2, &e);
	T_CHECK(t != NULL);
	T_EQ(ct_open(&sa, tns_path(A), &e), 0);
	T_EQ(ct_open(&sb, tns_path(B), &e), 0);
	if (!t || !sa || !sb)
		goto out;
	/* the first copy */
	T_EQ(cthand_collect(sa, vm, 2, &l, &e), 0);
	size_t pos = 0;
	long len = cthand_encode(&l, &pos, buf, sizeof(buf), &e);
	T_EQ(cthand_apply(sb, vm, 2, buf, (size_t)len, &r, &e), 0);
	T_EQ(ct_lines(B, "."), (long)l.n);
	/* meanwhile on A: a short-lived connection of the VM (new, then destroyed), one of
	 * another VM, and, last, a new connection of the VM. (An update made through
	 * ctnetlink, like conntrack -U, sends no event unless asked to echo; updates from
	 * traffic do.) */
	T_CHECK(sh_ok(A, "conntrack -I -p udp -s 198.18.1.2 -d 198.18.6.1 --sport 5354 "
			 "--dport 53 -t 60 2>/dev/null "
			 "&& conntrack -D -p udp -s 198.18.1.2 --sport 5354 2>/dev/null "
			 "&& conntrack -I -p tcp -s 198.18.1.3 -d 198.18.6.1 --sport 41010 "
			 "--dport 22 --state ESTABLISHED -t 3600 2>/dev/null "
			 "&& conntrack -I -p tcp -s 198.18.1.2 -d 198.18.6.1 --sport 40010 "
			 "--dport 22 --state ESTABLISHED -u SEEN_REPLY,ASSURED -t 3600 2>/dev/null"));
	T_EQ(track_until(t, 40010, &e), 0);
	const struct ct_list *d = cthand_track_list(t);
	T_EQ(d->n, 1); /* the short-lived one came and went, the other VM's is not taken */
	for (size_t i = 0; i < d->n; i++) {
		char line[256];
		t_note("delta: %s", ct_entry_fmt(&d->v[i], line, sizeof(line)));
	}
	/* the top-up is the delta alone */
	pos = 0;
	len = cthand_encode(d, &pos, buf, sizeof(buf), &e);
	T_EQ(len, (long)ct_wire_size(1));
	T_EQ(cthand_apply(sb, vm, 2, buf, (size_t)len, &r, &e), 0);
	T_EQ(r.applied, 1);
	T_EQ(ct_lines(B, "."), (long)l.n + 1);
	T_EQ(ct_lines(B, "ESTABLISHED src=198\\.18\\.1\\.2 dst=198\\.18\\.6\\.1 sport=40010 "
			 "dport=22 .*\\[ASSURED\\]"),
	     1);
	T_EQ(ct_lines(B, "sport=5354 |198\\.18\\.1\\.3"), 0);
	cthand_track_reset(t);
	T_EQ(cthand_track_list(t)->n, 0);

	/* real traffic over A's lo: a whole TCP connection of the VM, from SYN to TIME_WAIT,
	 * folds into one delta entry with its last TCP state */
	T_CHECK(sh_ok(A, "python3 -c 'import socket\n"
			 "l = socket.socket(); l.bind((\"198.18.6.1\", 7000)); l.listen(1)\n"
			 "c = socket.socket(); c.bind((\"198.18.1.2\", 40020))\n"
			 "c.connect((\"198.18.6.1\", 7000)); p, _ = l.accept()\n"
			 "c.sendall(b\"x\"); p.recv(1); c.close(); p.recv(1); p.close()'"));
	T_EQ(track_until(t, 40020, &e), 0);
	T_EQ(d->n, 1);
	for (int i = 0; i < 50 && d->n == 1 && d->v[0].tcp.state != TCP_CONNTRACK_TIME_WAIT;
	     i++)
		track_until(t, 0, &e); /* the later state changes */
	T_EQ(d->n, 1);
	if (d->n != 1)
		goto out;
	T_CHECK(d->v[0].has_tcp);
	T_EQ(d->v[0].tcp.state, TCP_CONNTRACK_TIME_WAIT);
	T_CHECK(d->v[0].status & IPS_ASSURED);
	pos = 0;
	len = cthand_encode(d, &pos, buf, sizeof(buf), &e);
	T_EQ(cthand_apply(sb, vm, 2, buf, (size_t)len, &r, &e), 0);
	T_EQ(ct_lines(B, "TIME_WAIT src=198\\.18\\.1\\.2 dst=198\\.18\\.6\\.1 sport=40020 "
			 "dport=7000 .*\\[ASSURED\\]"),
	     1);
out:
	cthand_track_free(t);
	ct_list_free(&l);
	if (sa)
		nl_close(sa);
	if (sb)
		nl_close(sb);
}

int main(void)
{
	A = tns_new("a");
	B = tns_new("b");
	if (!A || !B || !setup()) {
		printf("not ok - test-agent-cthand: setup\n");
		return 1;
	}
	T_RUN(test_collect_encode_apply);
	T_RUN(test_foreign_and_malformed);
	T_RUN(test_track_topup);
	return t_done();
}
