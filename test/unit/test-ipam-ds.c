/* Tests for the ipam file datastore: updates and reads (checked with an independent
 * reader, test/lib/ipam-log.py), a corrupt record named in the error, the older layout
 * imported, a crash before each commit step, torn writes of the last frame at every
 * byte, one fdatasync per commit, 8 processes x 25 allocations on one state directory
 * (no duplicates, every handle present), and SIGKILL at random points during commits
 * (the state always loads and is consistent). */
#include "ipam/ds_file.h"
#include "lib/err.h"
#include "test/lib/t.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <sys/stat.h>
#include <unistd.h>

#define LOGPY "test/lib/ipam-log.py"

static char g_dir[256]; /* test code: the current temporary state directory */

static void mkstate(void)
{
	snprintf(g_dir, sizeof(g_dir), "/tmp/kvt-%d-ipamds-XXXXXX", (int)getpid());
	if (!mkdtemp(g_dir))
		abort();
}

static void rmstate(void)
{
	int st;
	free(t_sh(&st, "rm -rf '%s'", g_dir));
}

struct op {
	const char *handle;			   /* handle to allocate */
	const char *node;			   /* on this node */
	struct ip_addr got[IPAM_HANDLE_IPS_MAX]; /* result */
	unsigned n;				   /* addresses got */
};

static int fn_pools(struct ipam_state *st, void *arg, struct err *e)
{
	(void)arg;
	struct ipam_cidr c4, c6;
	ipam_cidr_parse(&c4, "198.18.8.0/22", NULL);
	ipam_cidr_parse(&c6, "2001:db8:8::/116", NULL);
	int r = ipam_pool_add(st, "p4", &c4, 0, NULL, 0, e);
	return r ? r : ipam_pool_add(st, "p6", &c6, 0, NULL, 0, e);
}

static int fn_alloc(struct ipam_state *st, void *arg, struct err *e)
{
	struct op *o = arg;
	return ipam_alloc(st, o->handle, o->node, IPAM_V4 | IPAM_V6, NULL, o->got, &o->n, e);
}

static int fn_release(struct ipam_state *st, void *arg, struct err *e)
{
	return ipam_release_handle(st, arg, true, e);
}

static int setup(struct ipam_ds_file *f, struct ipam_ds *ds)
{
	mkstate();
	if (ipam_ds_file_open(f, g_dir, NULL))
		return -1;
	*ds = ipam_ds_file(f);
	return ipam_ds_update(ds, fn_pools, NULL, NULL);
}

static void test_update_and_read(void)
{
	struct ipam_ds_file f;
	struct ipam_ds ds;
	struct err e = {0};
	T_EQ(setup(&f, &ds), 0);
	struct op o = {.handle = "net1.vmi.default.vm1", .node = "node-a"};
	T_EQ(ipam_ds_update(&ds, fn_alloc, &o, &e), 0);
	T_EQ(o.n, 2);
	struct op again = {.handle = "net1.vmi.default.vm1", .node = "node-b"};
	T_EQ(ipam_ds_update(&ds, fn_alloc, &again, &e), 0);
	T_CHECK(ip_eq(&o.got[0], &again.got[0]) && ip_eq(&o.got[1], &again.got[1]));
	struct ipam_state st;
	T_EQ(ipam_ds_read(&ds, &st, &e), 0);
	T_EQ(st.n_pools, 2);
	T_EQ(st.n_handles, 1);
	T_EQ(ipam_check(&st, NULL), 0);
	ipam_state_free(&st);
	/* the log, checked with the independent reader */
	int rc;
	char *out = t_sh(&rc, LOGPY " '%s' ips", g_dir);
	T_EQ(rc, 0);
	T_STREQ(out, "198.18.8.1\n2001:db8:8::1\n");
	free(out);
	T_EQ(ipam_ds_update(&ds, fn_release, (void *)"net1.vmi.default.vm1", &e), 0);
	out = t_sh(&rc, LOGPY " '%s' dump | python3 -c 'import json,sys; "
			"print(sorted(json.load(sys.stdin)[\"handle\"]))'",
		   g_dir);
	T_STREQ(out, "[]\n");
	free(out);
	T_EQ(ipam_ds_read(&ds, &st, &e), 0);
	T_EQ(st.n_handles, 0);
	ipam_state_free(&st);
	/* an aborted update writes nothing */
	T_EQ(ipam_ds_update(&ds, fn_release, (void *)"nope", &e), -ENOENT);
	ipam_ds_file_close(&f);
	rmstate();
}

static int fn_config(struct ipam_state *st, void *arg, struct err *e)
{
	if (!arg) {
		ipam_config_clear(st);
		return 0;
	}
	return ipam_config_set(st, arg, e);
}

/* The IPAMConfig record in the file datastore: record "config default" in the log, the
 * same JSON as the kubernetes spec, read back, changed, removed; a bad one is named. */
static void test_config_record(void)
{
	struct ipam_ds_file f;
	struct ipam_ds ds;
	struct err e = {0};
	T_EQ(setup(&f, &ds), 0);
	struct ipam_config c = {.vm_persistence = IPAM_PERSIST_DISABLED};
	T_EQ(ipam_ds_update(&ds, fn_config, &c, &e), 0);
	int rc;
	char *out = t_sh(&rc, LOGPY " '%s' dump | python3 -c 'import json,sys; "
			      "print(json.load(sys.stdin)[\"config\"][\"default\"])'",
			 g_dir);
	T_EQ(rc, 0);
	T_STREQ(out, "{'kubeVirtVMAddressPersistence': 'Disabled'}\n");
	free(out);
	struct ipam_state st;
	struct ipam_config got;
	T_EQ(ipam_ds_read(&ds, &st, &e), 0);
	T_CHECK(ipam_config_get(&st, &got));
	T_EQ(got.vm_persistence, IPAM_PERSIST_DISABLED);
	ipam_state_free(&st);
	T_EQ(ipam_ds_update(&ds, fn_config, NULL, &e), 0);
	out = t_sh(&rc, LOGPY " '%s' dump | python3 -c 'import json,sys; "
			"print(json.load(sys.stdin)[\"config\"])'",
		   g_dir);
	T_STREQ(out, "{}\n");
	free(out);
	T_EQ(ipam_ds_read(&ds, &st, &e), 0);
	T_CHECK(!ipam_config_get(&st, &got));
	T_EQ(got.vm_persistence, IPAM_PERSIST_ENABLED);
	ipam_state_free(&st);
	/* written by hand with a wrong value: every read names the file */
	free(t_sh(&rc, LOGPY " '%s' put config default '{\"kubeVirtVMAddressPersistence\":\"Off\"}'",
		  g_dir));
	T_EQ(ipam_ds_read(&ds, &st, &e), -EINVAL);
	T_CHECK(strstr(e.msg, "ipam.log") && strstr(e.msg, "kubeVirtVMAddress"));
	t_note("%s", e.msg);
	ipam_state_free(&st);
	ipam_ds_file_close(&f);
	rmstate();
}

static void test_corrupt_record_named(void)
{
	struct ipam_ds_file f;
	struct ipam_ds ds;
	struct err e = {0};
	T_EQ(setup(&f, &ds), 0);
	struct op o = {.handle = "h1", .node = "node-a"};
	T_EQ(ipam_ds_update(&ds, fn_alloc, &o, &e), 0);
	int rc;
	/* a valid frame whose record does not parse */
	free(t_sh(&rc, LOGPY " '%s' put block v4-198-18-8-0-26 '{\"cidr\":\"198.18.8.0/26\",\"us'",
		  g_dir));
	T_EQ(rc, 0);
	struct ipam_state st;
	T_EQ(ipam_ds_read(&ds, &st, &e), -EINVAL);
	ipam_state_free(&st);
	T_CHECK(strstr(e.msg, "block v4-198-18-8-0-26") != NULL);
	t_note("%s", e.msg);
	T_EQ(ipam_ds_update(&ds, fn_alloc, &o, &e), -EINVAL);
	ipam_ds_file_close(&f);
	rmstate();
	/* a frame with a bad record name */
	T_EQ(setup(&f, &ds), 0);
	free(t_sh(&rc, LOGPY " '%s' put handle Bad_Name '{}'", g_dir));
	T_EQ(ipam_ds_read(&ds, &st, &e), -EUCLEAN);
	ipam_state_free(&st);
	T_CHECK(strstr(e.msg, "ipam.log: journal: corrupt") != NULL);
	t_note("%s", e.msg);
	/* a log whose first frame is damaged is corrupt, not empty */
	free(t_sh(&rc, "printf X | dd of='%s/ipam.log' bs=1 seek=60 conv=notrunc 2>/dev/null",
		  g_dir));
	T_EQ(ipam_ds_read(&ds, &st, &e), -EUCLEAN);
	ipam_state_free(&st);
	T_CHECK(strstr(e.msg, "ipam.log: log: corrupt: the first frame") != NULL);
	ipam_ds_file_close(&f);
	rmstate();
}

static void test_old_layout_imported(void)
{
	struct ipam_ds_file f;
	struct ipam_ds ds;
	struct err e = {0};
	mkstate();
	/* the per-record layout with a journal left by a crash after its commit point */
	int rc;
	free(t_sh(&rc,
		  "cd '%s' && mkdir pool block handle && "
		  "printf '%%s' '{\"cidr\":\"198.18.8.0/22\"}' > pool/p4.json && "
		  "printf '%%s' '{\"cidr\":\"2001:db8:8::/116\"}' > pool/p6.json && "
		  "printf '%%s' '{\"cidr\":\"198.18.8.0/26\",\"affinity\":\"node-a\",\"used\":1,"
		  "\"allocations\":[{\"ip\":\"198.18.8.1\",\"handle\":\"h1\"}]}' > "
		  "block/v4-198-18-8-0-26.json && "
		  "printf '%%s' '{\"ips\":[\"198.18.8.1\"]}' > handle/h1.json && "
		  "python3 -c 'import json; json.dump({\"changes\":[{\"kind\":\"handle\","
		  "\"name\":\"h2\",\"data\":json.dumps({\"ips\":[\"198.18.8.2\"]})},"
		  "{\"kind\":\"block\",\"name\":\"v4-198-18-8-0-26\",\"data\":json.dumps("
		  "{\"cidr\":\"198.18.8.0/26\",\"affinity\":\"node-a\",\"used\":2,\"allocations\":"
		  "[{\"ip\":\"198.18.8.1\",\"handle\":\"h1\"},{\"ip\":\"198.18.8.2\",\"handle\":"
		  "\"h2\"}]})}]}, open(\"journal.json\",\"w\"))'",
		  g_dir));
	T_EQ(rc, 0);
	T_EQ(ipam_ds_file_open(&f, g_dir, &e), 0);
	ds = ipam_ds_file(&f);
	struct ipam_state st;
	T_EQ(ipam_ds_read(&ds, &st, &e), 0);
	T_EQ(st.n_handles, 2);
	T_EQ(ipam_check(&st, &e), 0);
	ipam_state_free(&st);
	/* the first commit writes ipam.log with everything in it */
	struct op o = {.handle = "h3", .node = "node-a"};
	T_EQ(ipam_ds_update(&ds, fn_alloc, &o, &e), 0);
	T_STREQ(ipam_addr_str(&o.got[0], (char[64]){0}, 64), "198.18.8.3");
	char *out = t_sh(&rc, LOGPY " '%s' ips | sort", g_dir);
	T_STREQ(out, "198.18.8.1\n198.18.8.2\n198.18.8.3\n2001:db8:8::1\n");
	free(out);
	ipam_ds_file_close(&f);
	rmstate();
}

/* fn that, the first time, writes records behind the datastore's back (as a writer
 * ignoring the lock would): the commit must see the log moved. */
struct sneaky {
	int calls;   /* times fn ran */
	struct op o; /* the allocation */
};

static int fn_sneaky(struct ipam_state *st, void *arg, struct err *e)
{
	struct sneaky *s = arg;
	if (s->calls++ == 0) {
		int rc;
		free(t_sh(&rc,
			  LOGPY " '%s' put block v4-198-18-8-0-26 '{\"cidr\":\"198.18.8.0/26\","
			  "\"affinity\":\"node-b\",\"used\":1,\"allocations\":[{\"ip\":"
			  "\"198.18.8.1\",\"handle\":\"other\"}]}' && "
			  LOGPY " '%s' put handle other '{\"ips\":[\"198.18.8.1\"]}'",
			  g_dir, g_dir));
	}
	return fn_alloc(st, &s->o, e);
}

static void test_file_cas_conflict_retried(void)
{
	struct ipam_ds_file f;
	struct ipam_ds ds;
	struct err e = {0};
	T_EQ(setup(&f, &ds), 0);
	struct sneaky s = {.o = {.handle = "h1", .node = "node-a"}};
	T_EQ(ipam_ds_update(&ds, fn_sneaky, &s, &e), 0);
	T_EQ(s.calls, 2); /* -ESTALE once, then a fresh load */
	/* the retry loaded the block another writer created and kept it */
	T_STREQ(s.o.n ? ipam_addr_str(&s.o.got[0], (char[64]){0}, 64) : "",
		"198.18.8.64"); /* node-b owns .0/26 */
	struct ipam_state st;
	T_EQ(ipam_ds_read(&ds, &st, &e), 0);
	T_CHECK(ipam_handle_find(&st, "other") != NULL);
	T_CHECK(ipam_handle_find(&st, "h1") != NULL);
	T_EQ(ipam_check(&st, &e), 0);
	ipam_state_free(&st);
	ipam_ds_file_close(&f);
	rmstate();
}

/* A datastore whose commit conflicts a given number of times: the retry bound. */
struct flaky {
	int conflicts; /* commits still to refuse with -ESTALE */
	int commits;   /* commits attempted */
	int loads;     /* loads done */
};

static int flaky_begin(void *ctx, struct err *e)
{
	(void)ctx;
	(void)e;
	return 0;
}

static int flaky_load(void *ctx, const struct ipam_ds_scope *scope, struct ipam_state *st,
		      struct err *e)
{
	(void)scope;
	struct flaky *f = ctx;
	f->loads++;
	const char *p4 = "{\"cidr\":\"198.18.9.0/24\"}";
	const char *p6 = "{\"cidr\":\"2001:db8:9::/112\"}";
	int r = ipam_state_load(st, IPAM_POOL, "p4", "7", p4, strlen(p4), e);
	return r ? r : ipam_state_load(st, IPAM_POOL, "p6", "8", p6, strlen(p6), e);
}

static int flaky_commit(void *ctx, const struct ipam_change *c, unsigned n, struct err *e)
{
	struct flaky *f = ctx;
	(void)c;
	(void)n;
	f->commits++;
	if (f->conflicts-- > 0)
		return err_setx(e, ESTALE, "conflict");
	return 0;
}

static void flaky_end(void *ctx)
{
	(void)ctx;
}

/* Sleep callback that records the delays instead of waiting. */
struct naps {
	unsigned n;	   /* delays asked for */
	unsigned us[16];   /* the first 16 of them */
};

static void nap(void *arg, unsigned us)
{
	struct naps *z = arg;
	if (z->n < 16)
		z->us[z->n] = us;
	z->n++;
}

static void test_update_retry_bound(void)
{
	static const struct ipam_ds_ops ops = {.name = "flaky",
					       .begin = flaky_begin,
					       .load = flaky_load,
					       .commit = flaky_commit,
					       .end = flaky_end};
	struct flaky fl = {.conflicts = 3};
	struct naps z = {0};
	struct ipam_ds_backoff bo = {.seed = 42, .sleep = nap, .sleep_arg = &z};
	struct ipam_ds ds = {.ops = &ops, .ctx = &fl, .backoff = &bo};
	struct op o = {.handle = "h", .node = "n"};
	struct err e = {0};
	T_EQ(ipam_ds_update(&ds, fn_alloc, &o, &e), 0);
	T_EQ(fl.commits, 4);
	T_EQ(fl.loads, 4);
	T_EQ(z.n, 3); /* a backoff before each retry, none before the first try */
	fl = (struct flaky){.conflicts = 1000};
	z = (struct naps){0};
	T_EQ(ipam_ds_update(&ds, fn_alloc, &o, &e), -EAGAIN);
	T_EQ(fl.commits, IPAM_DS_TRIES);
	T_EQ(z.n, IPAM_DS_TRIES - 1);
	T_CHECK(strstr(e.msg, "flaky datastore") != NULL);
	/* no conflict, no backoff */
	fl = (struct flaky){0};
	z = (struct naps){0};
	T_EQ(ipam_ds_update(&ds, fn_alloc, &o, &e), 0);
	T_EQ(z.n, 0);
}

static void test_backoff_jitter(void)
{
	/* each delay lies in [c/2, c] with c doubling from base up to max */
	struct ipam_ds_backoff a = {.base_us = 1000, .max_us = 16000, .seed = 7};
	unsigned ceil[] = {1000, 2000, 4000, 8000, 16000, 16000, 16000};
	bool in_range = true;
	unsigned first[7];
	for (unsigned t = 1; t <= 7; t++) {
		unsigned d = ipam_ds_backoff_us(&a, t);
		first[t - 1] = d;
		in_range &= d >= ceil[t - 1] / 2 && d <= ceil[t - 1];
	}
	T_CHECK(in_range);
	/* seeded: the same delays every time */
	struct ipam_ds_backoff b = {.base_us = 1000, .max_us = 16000, .seed = 7};
	bool same = true;
	for (unsigned t = 1; t <= 7; t++)
		same &= ipam_ds_backoff_us(&b, t) == first[t - 1];
	T_CHECK(same);
	/* jitter: 1000 draws at the cap spread over the range, and two seeds differ */
	struct ipam_ds_backoff c = {.base_us = 1000, .max_us = 16000, .seed = 8};
	unsigned lo = ~0u, hi = 0, differ = 0;
	struct ipam_ds_backoff d = {.base_us = 1000, .max_us = 16000, .seed = 9};
	for (int i = 0; i < 1000; i++) {
		unsigned x = ipam_ds_backoff_us(&c, 10);
		lo = x < lo ? x : lo;
		hi = x > hi ? x : hi;
		differ += x != ipam_ds_backoff_us(&d, 10);
	}
	T_CHECK(lo >= 8000 && lo < 8200 && hi <= 16000 && hi > 15800);
	T_CHECK(differ > 990);
	/* defaults, and huge conflict counts do not overflow */
	struct ipam_ds_backoff z = {.seed = 1};
	T_CHECK(ipam_ds_backoff_us(&z, 1) <= IPAM_DS_BACKOFF_BASE_US);
	unsigned big = ipam_ds_backoff_us(&z, 4000000000u);
	T_CHECK(big >= IPAM_DS_BACKOFF_MAX_US / 2 && big <= IPAM_DS_BACKOFF_MAX_US);
}

#define PROCS 8
#define PER_PROC 25

static void test_concurrent_processes(void)
{
	struct ipam_ds_file f;
	struct ipam_ds ds;
	struct err e = {0};
	T_EQ(setup(&f, &ds), 0);
	pid_t pid[PROCS];
	for (int p = 0; p < PROCS; p++) {
		pid[p] = fork();
		if (pid[p] == 0) {
			struct ipam_ds_file cf;
			if (ipam_ds_file_open(&cf, g_dir, NULL))
				_exit(2);
			struct ipam_ds cds = ipam_ds_file(&cf);
			for (int i = 0; i < PER_PROC; i++) {
				char h[64];
				snprintf(h, sizeof(h), "net1.p%d-%d", p, i);
				struct op o = {.handle = h, .node = p % 2 ? "node-b" : "node-a"};
				struct err ce = {0};
				if (ipam_ds_update(&cds, fn_alloc, &o, &ce) || o.n != 2) {
					fprintf(stderr, "child %d: %s\n", p, ce.msg);
					_exit(1);
				}
			}
			ipam_ds_file_close(&cf);
			_exit(0);
		}
	}
	for (int p = 0; p < PROCS; p++) {
		int ws = 0;
		waitpid(pid[p], &ws, 0);
		T_CHECK(WIFEXITED(ws) && WEXITSTATUS(ws) == 0);
	}
	struct ipam_state st;
	T_EQ(ipam_ds_read(&ds, &st, &e), 0);
	T_EQ(st.n_handles, PROCS * PER_PROC);
	T_EQ(ipam_check(&st, &e), 0);
	for (int p = 0; p < PROCS; p++)
		for (int i = 0; i < PER_PROC; i++) {
			char h[64];
			snprintf(h, sizeof(h), "net1.p%d-%d", p, i);
			const struct ipam_handle *hd = ipam_handle_find(&st, h);
			T_CHECK(hd && hd->n == 2);
		}
	ipam_state_free(&st);
	/* independent duplicate count over the log: every address once */
	int rc;
	char *out = t_sh(&rc, LOGPY " '%s' ips | sort | uniq -c | awk '{n++; d += $1 > 1} "
			      "END {print n, d}'",
			 g_dir);
	T_STREQ(out, "400 0\n");
	free(out);
	ipam_ds_file_close(&f);
	rmstate();
}

/* Child for the crash test: allocate and release forever. */
static void churn(unsigned seed)
{
	struct ipam_ds_file cf;
	if (ipam_ds_file_open(&cf, g_dir, NULL))
		_exit(2);
	struct ipam_ds cds = ipam_ds_file(&cf);
	for (unsigned i = 0;; i++) {
		char h[64];
		snprintf(h, sizeof(h), "c%u-%u", seed, i);
		struct op o = {.handle = h, .node = i % 3 ? "node-a" : "node-b"};
		if (ipam_ds_update(&cds, fn_alloc, &o, NULL))
			_exit(3);
		if (i % 2) {
			snprintf(h, sizeof(h), "c%u-%u", seed, i - 1);
			if (ipam_ds_update(&cds, fn_release, h, NULL))
				_exit(4);
		}
	}
}

static void test_sigkill_during_commits(void)
{
	struct ipam_ds_file f;
	struct ipam_ds ds;
	struct err e = {0};
	T_EQ(setup(&f, &ds), 0);
	srand((unsigned)getpid());
	int bad = 0, early = 0, temps = 0;
	unsigned prev_handles = 0;
	for (int round = 0; round < 40; round++) {
		pid_t pid = fork();
		if (pid == 0)
			churn((unsigned)round);
		/* kill somewhere in a commit: 0.5 .. 25 ms in */
		struct timespec ts = {0, 500000L + (long)(rand() % 24500) * 1000L};
		nanosleep(&ts, NULL);
		kill(pid, SIGKILL);
		int ws = 0;
		waitpid(pid, &ws, 0);
		if (!WIFSIGNALED(ws))
			early++;
		/* was it killed while writing a compaction? */
		int rc;
		char *tmp = t_sh(&rc, "ls -a '%s' | grep -c '[.]tmp$'", g_dir);
		temps += tmp && atoi(tmp) > 0;
		free(tmp);
		struct ipam_state st;
		e.msg[0] = 0;
		int r = ipam_ds_read(&ds, &st, &e);
		if (!r)
			r = ipam_check(&st, &e);
		if (r) {
			bad++;
			t_note("round %d: %s", round, e.msg);
		}
		/* every round adds at most one live handle per two allocations */
		T_CHECK(st.n_handles >= prev_handles);
		prev_handles = st.n_handles;
		ipam_state_free(&st);
	}
	T_EQ(bad, 0);
	T_EQ(early, 0);
	t_note("%u handles left after 40 kills; %d kills left a compaction's temp file",
	       prev_handles, temps);
	ipam_ds_file_close(&f);
	rmstate();
}

/* Crash hook for test_crash_before_each_step: the process dies before step `at`,
 * exiting with 50 + the updates it had completed. */
struct crash {
	enum ipam_file_step at; /* step to die before */
	int done;		/* updates completed */
};

static void crash_hook(void *arg, enum ipam_file_step s)
{
	struct crash *c = arg;
	if (s == c->at)
		_exit(50 + c->done);
}

static unsigned handles_now(struct ipam_ds *ds)
{
	struct ipam_state st;
	struct err e = {0};
	unsigned n = ~0u;
	if (ipam_ds_read(ds, &st, &e) == 0 && ipam_check(&st, &e) == 0)
		n = st.n_handles;
	else
		t_note("%s", e.msg);
	ipam_state_free(&st);
	return n;
}

static void test_crash_before_each_step(void)
{
	/* the state a process crash leaves before each step: the page cache survives a
	 * process, so a frame written but not yet synced is already the new state */
	static const struct {
		enum ipam_file_step step; /* die before this */
		bool new_state;		  /* the interrupted update is visible */
	} cases[] = {
	    {IPAM_FILE_APPEND, false},	   {IPAM_FILE_APPEND_SYNC, true},
	    {IPAM_FILE_SNAP_WRITE, false}, {IPAM_FILE_SNAP_SYNC, false},
	    {IPAM_FILE_SNAP_RENAME, false}, {IPAM_FILE_SNAP_DIR_SYNC, true},
	};
	for (unsigned ci = 0; ci < sizeof(cases) / sizeof(cases[0]); ci++) {
		struct ipam_ds_file f;
		struct ipam_ds ds;
		T_EQ(setup(&f, &ds), 0);
		unsigned before = handles_now(&ds);
		pid_t pid = fork();
		if (pid == 0) {
			struct ipam_ds_file cf;
			if (ipam_ds_file_open(&cf, g_dir, NULL))
				_exit(2);
			struct crash c = {.at = cases[ci].step};
			cf.crash_hook = crash_hook;
			cf.crash_arg = &c;
			struct ipam_ds cds = ipam_ds_file(&cf);
			/* enough updates to reach a compaction */
			for (int i = 0; i < IPAM_FILE_FRAMES_MAX + 2; i++, c.done++) {
				char h[32];
				snprintf(h, sizeof(h), "s%u-%d", ci, i);
				struct op o = {.handle = h, .node = "node-a"};
				if (ipam_ds_update(&cds, fn_alloc, &o, NULL))
					_exit(3);
			}
			_exit(4); /* the step never came */
		}
		int ws = 0;
		waitpid(pid, &ws, 0);
		T_CHECK(WIFEXITED(ws) && WEXITSTATUS(ws) >= 50);
		unsigned done = (unsigned)WEXITSTATUS(ws) - 50;
		unsigned after = handles_now(&ds);
		T_EQ(after, before + done + (cases[ci].new_state ? 1 : 0));
		/* the next update works, and no temporary file is left */
		struct op o = {.handle = "next", .node = "node-a"};
		struct err e = {0};
		T_EQ(ipam_ds_update(&ds, fn_alloc, &o, &e), 0);
		T_EQ(handles_now(&ds), after + 1);
		char p[300];
		snprintf(p, sizeof(p), "%s/.ipam.log.tmp", g_dir);
		T_EQ(access(p, F_OK), -1);
		t_note("crash before step %d after %u updates: %s state", cases[ci].step, done,
		       cases[ci].new_state ? "new" : "old");
		ipam_ds_file_close(&f);
		rmstate();
	}
}

static int put_file(const char *path, const char *buf, size_t len)
{
	FILE *fp = fopen(path, "w");
	if (!fp)
		return -1;
	size_t w = fwrite(buf, 1, len, fp);
	return fclose(fp) == 0 && w == len ? 0 : -1;
}

static char *get_file(const char *path, size_t *len)
{
	FILE *fp = fopen(path, "r");
	if (!fp)
		return NULL;
	char *b = malloc(1u << 20);
	*len = b ? fread(b, 1, 1u << 20, fp) : 0;
	fclose(fp);
	return b;
}

static void test_torn_last_frame(void)
{
	/* power loss while the last frame is written: any part of it may have reached the
	 * disk (its first k bytes, its last k bytes, or garbage over the rest); the state
	 * is the old one unless the whole frame is there */
	struct ipam_ds_file f;
	struct ipam_ds ds;
	struct err e = {0};
	T_EQ(setup(&f, &ds), 0);
	struct op o = {.handle = "old", .node = "node-a"};
	T_EQ(ipam_ds_update(&ds, fn_alloc, &o, &e), 0);
	T_EQ(handles_now(&ds), 1);
	size_t t0 = f.tail;
	o = (struct op){.handle = "new", .node = "node-a"};
	T_EQ(ipam_ds_update(&ds, fn_alloc, &o, &e), 0);
	size_t t1 = f.tail;
	char path[300];
	snprintf(path, sizeof(path), "%s/ipam.log", g_dir);
	size_t len;
	char *full = get_file(path, &len);
	char *torn = malloc(len);
	T_CHECK(full && torn && t1 > t0 && t1 <= len);
	if (!full || !torn || t1 <= t0 || t1 > len) {
		free(full);
		free(torn);
		return;
	}
	int wrong = 0, tried = 0;
	size_t flen = t1 - t0;
	for (int kind = 0; kind < 3; kind++)
		/* every byte of the header and of the last 64, every 7th in between */
		for (size_t k = 0; k < flen; k += (k < 64 || k + 64 >= flen) ? 1 : 7) {
			memcpy(torn, full, len);
			if (kind == 0) /* only the first k bytes reached the disk */
				memset(torn + t0 + k, 0, t1 - t0 - k);
			else if (kind == 1) /* only the last bytes (from k on) did */
				memset(torn + t0, 0, k + 1);
			else /* the first k bytes, then garbage */
				memset(torn + t0 + k, 0xa5, t1 - t0 - k);
			if (put_file(path, torn, len))
				wrong++;
			tried++;
			if (handles_now(&ds) != 1) {
				if (wrong++ < 3)
					t_note("torn kind %d at %zu: not the old state", kind, k);
			}
		}
	T_EQ(wrong, 0);
	t_note("%d torn versions of a %zu-byte frame all read as the old state", tried, flen);
	/* after a torn frame (garbage after it), the next update writes over it */
	memcpy(torn, full, len);
	memset(torn + t0 + (t1 - t0) / 2, 0xa5, t1 - t0 - (t1 - t0) / 2);
	T_EQ(put_file(path, torn, len), 0);
	o = (struct op){.handle = "again", .node = "node-a"};
	T_EQ(ipam_ds_update(&ds, fn_alloc, &o, &e), 0);
	T_EQ(handles_now(&ds), 2);
	int rc;
	char *out = t_sh(&rc, LOGPY " '%s' dump | python3 -c 'import json,sys; "
			      "print(sorted(json.load(sys.stdin)[\"handle\"]))'",
			 g_dir);
	T_STREQ(out, "['again', 'old']\n");
	free(out);
	/* the complete frame is the new state */
	T_EQ(put_file(path, full, len), 0);
	T_EQ(handles_now(&ds), 2);
	free(full);
	free(torn);
	ipam_ds_file_close(&f);
	rmstate();
}

static void test_one_sync_per_commit(void)
{
	struct ipam_ds_file f;
	struct ipam_ds ds;
	struct err e = {0};
	T_EQ(setup(&f, &ds), 0);
	T_EQ(f.syncs, 2); /* the first commit creates the log: file and directory */
	int more = 0;
	for (int i = 0; i < 2 * IPAM_FILE_FRAMES_MAX + 2; i++) {
		char h[32];
		snprintf(h, sizeof(h), "h%d", i);
		struct op o = {.handle = h, .node = "node-a"};
		unsigned s0 = f.syncs;
		T_EQ(ipam_ds_update(&ds, fn_alloc, &o, &e), 0);
		/* one fdatasync, or two syncs when the commit compacts the log */
		if (f.syncs - s0 != 1)
			more++;
		T_CHECK(f.syncs - s0 == 1 || (f.syncs - s0 == 2 && f.frames == 1));
	}
	T_CHECK(more >= 2 && more <= 6);
	t_note("%d commits: %d compactions, the rest one fdatasync each",
	       2 * IPAM_FILE_FRAMES_MAX + 2, more);
	/* a read makes no sync, an aborted update none either */
	unsigned s0 = f.syncs;
	struct ipam_state st;
	T_EQ(ipam_ds_read(&ds, &st, &e), 0);
	ipam_state_free(&st);
	T_EQ(ipam_ds_update(&ds, fn_release, (void *)"nope", &e), -ENOENT);
	T_EQ(f.syncs, s0);
	ipam_ds_file_close(&f);
	rmstate();
}

int main(void)
{
	T_RUN(test_update_and_read);
	T_RUN(test_config_record);
	T_RUN(test_corrupt_record_named);
	T_RUN(test_old_layout_imported);
	T_RUN(test_crash_before_each_step);
	T_RUN(test_torn_last_frame);
	T_RUN(test_one_sync_per_commit);
	T_RUN(test_file_cas_conflict_retried);
	T_RUN(test_update_retry_bound);
	T_RUN(test_backoff_jitter);
	T_RUN(test_concurrent_processes);
	T_RUN(test_sigkill_during_commits);
	return t_done();
}
