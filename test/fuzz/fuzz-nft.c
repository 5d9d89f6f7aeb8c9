/* libFuzzer target: the parsers of net/nft over any bytes — the dump reader
 * (nft_state_feed behind nl_reply_feed) and the batch answer matcher (nft_acks_feed,
 * nft_acks_result, which maps the kernel's attribute offset back into our own batch).
 * Seeds are real kernel answers recorded by test/data/nft/record.py. An input whose first
 * message is NLMSG_ERROR is fed as the answers to a batch; anything else as a dump (and
 * as a plain reply). Sequence number and port id come from the first message so the
 * fuzzer gets past those checks. */
#include "lib/err.h"
#include "lib/ip.h"
#include "net/nft.h"
#include "net/nl.h"

#include <linux/netlink.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

static int feed_cb(const struct nl_msgv *m, void *arg, struct err *e)
{
	return nft_state_feed(arg, m, e);
}

/* Everything the parser filled must hold its promises. */
static void check_state(const struct nft_state *st)
{
	for (size_t i = 0; i < st->nchains; i++)
		if (strlen(st->chains[i].name) >= NFT_NAME_MAX || !nft_state_chain(st, st->chains[i].name))
			__builtin_trap();
	for (size_t i = 0; i < st->nsets; i++) {
		const struct nft_set_info *s = &st->sets[i];
		if ((s->nelems > s->elcap && s->elcap) || strlen(s->expr) >= sizeof(s->expr))
			__builtin_trap();
		for (size_t k = 0; k < s->nelems; k++)
			if (s->elems[k].len > NFT_KEY_MAX || strlen(s->elems[k].chain) >= NFT_NAME_MAX ||
			    (!s->elems[k].has_counter && (s->elems[k].packets || s->elems[k].bytes)))
				__builtin_trap();
	}
	for (size_t i = 0; i < st->nrules; i++) {
		const struct nft_rule_info *r = &st->rules[i];
		if (strlen(r->id) >= NFT_ID_MAX || strlen(r->exprs) >= sizeof(r->exprs))
			__builtin_trap();
		(void)nft_state_rule(st, r->id);
	}
}

static void dumps(const uint8_t *data, size_t size, uint32_t seq, uint32_t pid)
{
	for (int dump = 0; dump < 2; dump++) {
		struct nft_state st;
		struct nl_reply r;
		struct err e;
		nft_state_init(&st, "kvnet");
		/* sets the element dumps of the seeds refer to */
		st.sets = calloc(4, sizeof(*st.sets));
		if (st.sets) {
			st.setcap = st.nsets = 4;
			strcpy(st.sets[0].name, "peers");
			strcpy(st.sets[1].name, "epmap");
			strcpy(st.sets[2].name, "svc");
			strcpy(st.sets[3].name, "flows");
		}
		nl_reply_init(&r, seq, pid, dump, feed_cb, &st);
		size_t cut = size ? data[size - 1] % (size + 1) : 0;
		if (cut % 4)
			cut = size;
		int rc = nl_reply_feed(&r, data, cut, &e);
		if (rc == 1 && cut < size)
			(void)nl_reply_feed(&r, data + cut, size - cut, &e);
		check_state(&st);
		nft_state_free(&st);
	}
}

/* A batch with one message of each kind, for the answers to refer to. */
static void acks(const uint8_t *data, size_t size, uint32_t seq, uint32_t pid)
{
	struct nft_batch b;
	struct err e;
	struct nft_chain_spec c = {"ep-1", NFT_HOOK_NONE, 0, false};
	struct nft_set_spec s = {.name = "peers", .key = NFT_KEY_IPV4, .interval = true};
	struct nft_elem el[2];
	struct ip_addr lo = {.family = AF_INET, .b = {198, 18, 0, 0}};
	struct ip_addr hi = {.family = AF_INET, .b = {198, 18, 0, 255}};
	if (nft_batch_init(&b, "kvnet", &e) < 0)
		return;
	nft_table(&b, NFT_TABLE_ADD);
	nft_chain_add(&b, &c);
	nft_set_add(&b, &s);
	nft_elem_addr(&el[0], &lo, &hi);
	nft_elem_addr(&el[1], &hi, NULL);
	nft_elems(&b, &s, false, el, 2);
	nft_rule_begin(&b, NFT_RULE_APPEND, "ep-1", 0, "r1");
	nft_match_addr_set(&b, NFT_SRC, AF_INET, "peers", false);
	nft_match_l4proto(&b, 6);
	nft_match_port(&b, NFT_DST, 80, 90);
	nft_counter(&b);
	nft_verdict(&b, NFT_V_JUMP, "ep-1");
	nft_rule_end(&b);
	nft_rule_del(&b, "ep-1", 7);
	for (int first_is_begin = 0; first_is_begin < 2; first_is_begin++) {
		b.seq_begin = first_is_begin ? seq : seq - 1;
		b.batch_rc = 0;
		b.ktext_set = false;
		b.ktext[0] = 0;
		for (size_t i = 0; i < b.nmsgs; i++) {
			b.msgs[i].rc = 1;
			b.msgs[i].bad_off = 0;
		}
		if (nft_acks_feed(&b, pid, data, size, &e) == 0)
			(void)nft_acks_result(&b, &e);
		if (b.failed > b.nmsgs)
			__builtin_trap();
	}
	nft_batch_free(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint32_t seq = 0, pid = 0;
	uint16_t type = 0;
	if (size >= 16) {
		memcpy(&type, data + 4, 2);
		memcpy(&seq, data + 8, 4);
		memcpy(&pid, data + 12, 4);
	}
	if (type == NLMSG_ERROR)
		acks(data, size, seq, pid);
	else
		dumps(data, size, seq, pid);
	return 0;
}
