/* Unit tests for net/nft without a kernel: the reader replays real answers recorded by
 * test/data/nft/record.py (a ruleset nft -f loaded, read back with a plain python
 * socket), the answer matcher replays recorded batch answers, and the encoder's bytes are
 * checked against the layout written out by hand. */
#include "lib/err.h"
#include "lib/ip.h"
#include "net/nft.h"
#include "net/nl.h"
#include "test/lib/t.h"

#include <arpa/inet.h>
#include <errno.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define DIR "test/data/nft/"
#define PORTID 0x4b560002u

static int feed_cb(const struct nl_msgv *m, void *arg, struct err *e)
{
	return nft_state_feed(arg, m, e);
}

/* Replay a recorded answer (seq = first message's) into st. */
static int replay(const char *file, bool dump, struct nft_state *st, struct err *e)
{
	size_t len = 0;
	uint8_t *p = (uint8_t *)t_slurp(file, &len);
	struct nl_reply r;
	uint32_t seq = 0;
	if (!p || len < 16) {
		t_note("cannot read %s", file);
		free(p);
		return -ENOENT;
	}
	memcpy(&seq, p + 8, 4);
	nl_reply_init(&r, seq, PORTID, dump, feed_cb, st);
	int rc = nl_reply_feed(&r, p, len, e);
	free(p);
	return rc;
}

static struct nft_state loaded(void)
{
	struct nft_state st;
	struct err e = {0};
	nft_state_init(&st, "kvnet");
	T_EQ(replay(DIR "table.bin", false, &st, &e), 0);
	T_EQ(replay(DIR "chains.bin", true, &st, &e), 0);
	T_EQ(replay(DIR "sets.bin", true, &st, &e), 0);
	T_EQ(replay(DIR "elems-peers.bin", true, &st, &e), 0);
	T_EQ(replay(DIR "elems-epmap.bin", true, &st, &e), 0);
	T_EQ(replay(DIR "elems-svc.bin", true, &st, &e), 0);
	T_EQ(replay(DIR "elems-flows.bin", true, &st, &e), 0);
	T_EQ(replay(DIR "rules.bin", true, &st, &e), 0);
	if (e.code)
		t_note("%s", e.msg);
	return st;
}

static void test_replay_chains_sets(void)
{
	struct nft_state st = loaded();
	T_CHECK(st.exists);
	T_EQ(st.nchains, 3);
	const struct nft_chain_info *c = nft_state_chain(&st, "base-fwd");
	T_CHECK(c && c->base && c->hook == NFT_HOOK_FORWARD && c->priority == 0 && c->drop &&
		strcmp(c->type, "filter") == 0);
	c = nft_state_chain(&st, "ep-2");
	T_CHECK(c && !c->base && c->hook == NFT_HOOK_NONE);
	T_EQ(st.nsets, 6);
	/* the dynamic set: a 32-byte concatenation, size, timeout, a counter per element */
	const struct nft_set_info *fl = nft_state_set(&st, "flows");
	T_CHECK(fl && (fl->flags & NFT_SET_EVAL) && (fl->flags & NFT_SET_TIMEOUT) &&
		fl->key_len == 32 && fl->size == 100 && fl->timeout_ms == 60000 &&
		strcmp(fl->expr, "counter") == 0 && fl->nelems == 2);
	for (size_t i = 0; fl && i < fl->nelems; i++) {
		const struct nft_elem_info *el = &fl->elems[i];
		bool v1 = strcmp((const char *)el->key, "veth1") == 0;
		T_CHECK(el->has_counter && el->len == 32 && el->expires_ms > 0 &&
			el->expires_ms <= 60000);
		T_EQ(el->packets, v1 ? 3u : 2u);
		T_EQ(el->bytes, v1 ? 180u : 2920u);
		/* veth1's key: 198.18.1.2 at 16, port 40000 at 24, 80 at 28 */
		if (v1)
			T_CHECK(el->key[16] == 198 && el->key[19] == 2 && el->key[24] == 40000 >> 8 &&
				el->key[25] == (40000 & 0xff) && el->key[29] == 80);
	}
	const struct nft_set_info *s = nft_state_set(&st, "peers");
	T_CHECK(s && s->flags & NFT_SET_INTERVAL && s->key_type == 7 && s->key_len == 4);
	if (s) {
		/* 198.18.1.0/24, 198.18.4.0-99, 198.19.0.0/16: start and end (hi + 1) each,
		 * and the end element at 0.0.0.0 nft puts before a first range */
		char got[256] = "";
		const char *want[] = {"198.18.1.0", "198.18.2.0/end",	 "198.18.4.0",
				      "198.18.4.100/end", "198.19.0.0",	 "198.20.0.0/end",
				      "0.0.0.0/end"};
		int found = 0;
		for (size_t i = 0; i < s->nelems; i++) {
			struct ip_addr a = {.family = AF_INET};
			char buf[IP_STRLEN], one[64];
			memcpy(a.b, s->elems[i].key, 4);
			snprintf(one, sizeof(one), "%s%s", ip_fmt(&a, buf),
				 s->elems[i].end ? "/end" : "");
			for (int k = 0; k < 7; k++)
				found += strcmp(one, want[k]) == 0;
			snprintf(got + strlen(got), sizeof(got) - strlen(got), " %s", one);
		}
		T_EQ(s->nelems, 7);
		T_EQ(found, 7);
		t_note("peers:%s", got);
	}
	s = nft_state_set(&st, "ports");
	T_CHECK(s && s->key_type == 13 && s->key_len == 2);
	s = nft_state_set(&st, "epmap");
	T_CHECK(s && s->flags & NFT_SET_MAP && s->key_type == 41 && s->data_type == NFT_DATA_VERDICT);
	if (s) {
		T_EQ(s->nelems, 2);
		int ok = 0;
		for (size_t i = 0; i < s->nelems; i++) {
			const struct nft_elem_info *el = &s->elems[i];
			if (strcmp((const char *)el->key, "veth1") == 0 && el->has_verdict &&
			    el->verdict == NFT_JUMP && strcmp(el->chain, "ep-1") == 0)
				ok++;
			if (strcmp((const char *)el->key, "veth2") == 0 && el->has_verdict &&
			    el->verdict == NFT_GOTO && strcmp(el->chain, "ep-2") == 0)
				ok++;
		}
		T_EQ(ok, 2);
	}
	s = nft_state_set(&st, "svc");
	T_CHECK(s && s->key_len == 8 && (s->flags & NFT_SET_CONCAT) &&
		s->key_type == (12 << 6 | 13));
	if (s) {
		int ok = 0;
		T_EQ(s->nelems, 2);
		for (size_t i = 0; i < s->nelems; i++) {
			const struct nft_elem_info *el = &s->elems[i];
			if (el->key[0] == 6 && el->has_key_end && el->key[4] == 8000 >> 8 &&
			    el->key[5] == (8000 & 0xff) && el->key_end[4] == 8080 >> 8 &&
			    el->key_end[5] == (8080 & 0xff))
				ok++;
			if (el->key[0] == 17 && el->key[5] == 53 && el->key_end[5] == 53)
				ok++;
		}
		T_EQ(ok, 2);
	}
	nft_state_free(&st);
}

static void test_replay_rules(void)
{
	struct nft_state st = loaded();
	char ids[256] = "";
	for (size_t i = 0; i < st.nrules; i++)
		snprintf(ids + strlen(ids), sizeof(ids) - strlen(ids), "%s%s/%s", i ? " " : "",
			 st.rules[i].chain, st.rules[i].id);
	T_STREQ(ids, "ep-1/r1 ep-1/r2 ep-1/r3 ep-1/ ep-2/ base-fwd/ct-est base-fwd/ct-inv "
		     "base-fwd/dispatch");
	const struct nft_rule_info *r = nft_state_rule(&st, "r1");
	T_CHECK(r && r->has_counter && r->packets == 0 && r->handle > 0);
	if (r)
		T_STREQ(r->exprs, "meta,cmp,payload,lookup,meta,cmp,payload,cmp,counter,immediate");
	r = nft_state_rule(&st, "r3");
	if (T_CHECK(r)) /* nft writes the port range as two cmp */
		T_STREQ(r->exprs, "meta,cmp,meta,cmp,payload,bitwise,cmp,meta,cmp,payload,cmp,cmp,"
				  "log,counter,immediate");
	r = nft_state_rule(&st, "dispatch");
	if (T_CHECK(r))
		T_STREQ(r->exprs, "meta,lookup");
	nft_state_free(&st);

	/* other tables and families are skipped */
	struct nft_state other;
	struct err e = {0};
	nft_state_init(&other, "kvnet");
	T_EQ(replay(DIR "other.bin", true, &other, &e), 0);
	T_EQ(other.nrules, 8);
	nft_state_free(&other);
	nft_state_init(&other, "absent");
	T_EQ(replay(DIR "rules.bin", true, &other, &e), 0);
	T_EQ(other.nrules, 0);
	nft_state_free(&other);
}

/* a batch shaped like the recorded one: NEWTABLE, then NEWRULE in chain "missing" */
static void test_replay_batch_answers(void)
{
	struct nft_batch b;
	struct err e = {0};
	size_t len;
	nft_batch_init(&b, "kvnet", &e);
	nft_table(&b, NFT_TABLE_ADD);
	nft_rule_begin(&b, NFT_RULE_APPEND, "missing", 0, NULL);
	nft_rule_end(&b);
	T_EQ(nft_batch_count(&b), 2);

	uint8_t *p = (uint8_t *)t_slurp(DIR "batch-err.bin", &len);
	b.seq_begin = 300;
	for (size_t i = 0; i < b.nmsgs; i++)
		b.msgs[i].rc = 1;
	T_EQ(nft_acks_feed(&b, PORTID, p, len, &e), 0);
	T_EQ(nft_acks_result(&b, &e), -ENOENT);
	T_EQ(b.failed, 1);
	T_STREQ(e.msg, "nft kvnet: rule missing #1: add: attribute 2 (\"missing\"): No such file "
		       "or directory");
	/* another port id is refused */
	T_EQ(nft_acks_feed(&b, PORTID + 1, p, len, &e), -ESRCH);
	free(p);

	p = (uint8_t *)t_slurp(DIR "batch-ack.bin", &len);
	nft_batch_reset(&b);
	nft_table(&b, NFT_TABLE_ADD);
	b.seq_begin = 200;
	b.msgs[0].rc = 1;
	T_EQ(nft_acks_feed(&b, PORTID, p, len, &e), 0);
	T_EQ(nft_acks_result(&b, &e), 0);
	/* the same answer for a batch of two: one is missing */
	nft_table(&b, NFT_TABLE_ADD);
	b.msgs[0].rc = b.msgs[1].rc = 1;
	T_EQ(nft_acks_feed(&b, PORTID, p, len, &e), 0);
	T_EQ(nft_acks_result(&b, &e), -EPROTO);
	T_CHECK(strstr(e.msg, "answered 1 of 2") != NULL);
	/* sequence numbers of no message of the batch */
	b.seq_begin = 900;
	T_EQ(nft_acks_feed(&b, PORTID, p, len, &e), -EPROTO);
	free(p);

	p = (uint8_t *)t_slurp(DIR "batch-genid.bin", &len);
	nft_batch_reset(&b);
	nft_table(&b, NFT_TABLE_ADD);
	b.seq_begin = 400;
	b.msgs[0].rc = 1;
	T_EQ(nft_acks_feed(&b, PORTID, p, len, &e), 0);
	T_EQ(nft_acks_result(&b, &e), -ERESTART);
	T_CHECK(strstr(e.msg, "generation") != NULL);
	free(p);
	nft_batch_free(&b);
}

/* the bytes of a table message and of a small rule, against the layout */
static void test_encoder_bytes(void)
{
	struct nft_batch b;
	struct err e = {0};
	nft_batch_init(&b, "kvnet", &e);
	nft_table(&b, NFT_TABLE_CREATE);
	static const uint8_t table[] = {
	    32, 0, 0, 0,		  /* nlmsg_len */
	    0x00, 0x0a,			  /* NFNL_SUBSYS_NFTABLES << 8 | NFT_MSG_NEWTABLE */
	    0x05, 0x06,			  /* REQUEST | ACK | CREATE | EXCL */
	    0, 0, 0, 0, 0, 0, 0, 0,	  /* seq, port id (set at commit) */
	    NFPROTO_INET, 0, 0, 0,	  /* nfgenmsg */
	    10, 0, NFTA_TABLE_NAME, 0, 'k', 'v', 'n', 'e', 't', 0, 0, 0, /* name, padded */
	};
	T_EQ(b.len, sizeof(table));
	T_MEMEQ(b.buf, table, sizeof(table));

	nft_batch_reset(&b);
	nft_rule_begin(&b, NFT_RULE_APPEND, "c", 0, "id");
	nft_verdict(&b, NFT_V_DROP, NULL);
	nft_rule_end(&b);
	static const uint8_t rule[] = {
	    104, 0, 0, 0, 0x06, 0x0a, 0x05, 0x0c, 0, 0, 0, 0, 0, 0, 0, 0, /* NEWRULE, APPEND */
	    NFPROTO_INET, 0, 0, 0,
	    10, 0, NFTA_RULE_TABLE, 0, 'k', 'v', 'n', 'e', 't', 0, 0, 0,
	    6, 0, NFTA_RULE_CHAIN, 0, 'c', 0, 0, 0,
	    9, 0, NFTA_RULE_USERDATA, 0, 0 /* comment */, 3, 'i', 'd', 0, 0, 0, 0,
	    52, 0, NFTA_RULE_EXPRESSIONS, 0x80,			 /* nested */
	    48, 0, NFTA_LIST_ELEM, 0x80,
	    14, 0, NFTA_EXPR_NAME, 0, 'i', 'm', 'm', 'e', 'd', 'i', 'a', 't', 'e', 0, 0, 0,
	    28, 0, NFTA_EXPR_DATA, 0x80,
	    8, 0, NFTA_IMMEDIATE_DREG, 0, 0, 0, 0, 0,		 /* NFT_REG_VERDICT */
	    16, 0, NFTA_IMMEDIATE_DATA, 0x80,
	    12, 0, NFTA_DATA_VERDICT, 0x80,
	    8, 0, NFTA_VERDICT_CODE, 0, 0, 0, 0, 0,		 /* NF_DROP, big-endian */
	};
	T_EQ(b.len, sizeof(rule));
	T_MEMEQ(b.buf, rule, sizeof(rule));
	nft_batch_free(&b);
}

/* build errors are sticky, name what is wrong, and nothing half-built is kept */
static void test_build_errors(void)
{
	struct nft_batch b;
	struct err e = {0};
	T_EQ(nft_batch_init(&b, "", &e), -EINVAL);
	nft_batch_init(&b, "kvnet", &e);
	struct nft_chain_spec c = {"", NFT_HOOK_NONE, 0, false};
	T_EQ(nft_chain_add(&b, &c), -EINVAL);
	T_CHECK(strstr(b.emsg, "chain name is empty") != NULL);
	T_EQ(nft_table(&b, NFT_TABLE_ADD), -EINVAL); /* sticky */
	nft_batch_reset(&b);
	T_EQ(nft_counter(&b), -EINVAL);
	T_CHECK(strstr(b.emsg, "outside a rule") != NULL);
	nft_batch_reset(&b);
	nft_rule_begin(&b, NFT_RULE_APPEND, "c", 0, NULL);
	T_EQ(nft_match_ifname(&b, NFT_IIFNAME, "a-name-of-16-chr"), -EINVAL);
	nft_batch_reset(&b);
	nft_rule_begin(&b, NFT_RULE_APPEND, "c", 0, NULL);
	T_EQ(nft_table(&b, NFT_TABLE_ADD), -EINVAL);
	T_CHECK(strstr(b.emsg, "still open") != NULL);
	nft_batch_reset(&b);
	struct nft_set_spec s = {.name = "p", .key = NFT_KEY_SERVICE, .interval = true};
	struct nft_elem el;
	nft_elem_port(&el, 90, 80);
	T_EQ(nft_elems(&b, &s, false, &el, 1), -EINVAL);
	T_CHECK(strstr(b.emsg, "ends before it starts") != NULL);
	nft_batch_free(&b);
}

/* elements are packed into messages of bounded size; ranges ending at the largest value
 * have no end element */
static void test_element_packing(void)
{
	struct nft_batch b;
	struct err e = {0};
	struct nft_set_spec s = {.name = "p", .key = NFT_KEY_IPV4, .interval = true};
	nft_batch_init(&b, "kvnet", &e);
	for (int i = 0; i < 5000; i++) {
		struct nft_elem el;
		struct ip_addr a = {.family = AF_INET, .b = {198, 18, (uint8_t)(i >> 4), (uint8_t)(i << 4)}};
		struct ip_addr z = a;
		z.b[3] |= 0x0f;
		nft_elem_addr(&el, &a, &z);
		T_EQ(nft_elems(&b, &s, false, &el, 1), 0);
	}
	struct nft_elem top;
	struct ip_addr lo = {.family = AF_INET, .b = {255, 255, 255, 0}};
	struct ip_addr hi = {.family = AF_INET, .b = {255, 255, 255, 255}};
	nft_elem_addr(&top, &lo, &hi);
	nft_elems(&b, &s, false, &top, 1);
	nft_table(&b, NFT_TABLE_ADD); /* closes the element message */
	T_CHECK(b.nmsgs > 2);
	for (size_t i = 0; i + 1 < b.nmsgs; i++) {
		uint32_t len;
		memcpy(&len, b.buf + b.msgs[i].off, 4);
		T_CHECK(len < 65536);
	}
	t_note("5001 ranges in %zu messages; first: %s", b.nmsgs - 1, b.msgs[0].what);
	T_CHECK(strncmp(b.msgs[0].what, "set p: add elements 1-", 22) == 0);
	const char *last = b.msgs[b.nmsgs - 2].what;
	T_STREQ(last + strlen(last) - 5, "-5001");
	nft_batch_free(&b);
}

int main(void)
{
	T_RUN(test_replay_chains_sets);
	T_RUN(test_replay_rules);
	T_RUN(test_replay_batch_answers);
	T_RUN(test_encoder_bytes);
	T_RUN(test_build_errors);
	T_RUN(test_element_packing);
	return t_done();
}
