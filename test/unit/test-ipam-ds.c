/* Tests for the ipam file datastore: updates and reads, a corrupt record named in the
 * error, journal replay, 8 processes x 25 allocations on one state directory (no
 * duplicates, every handle present), and SIGKILL at random points during commits
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
#include <unistd.h>

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
	struct ipam_addr got[IPAM_HANDLE_IPS_MAX]; /* result */
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
	T_CHECK(ipam_addr_eq(&o.got[0], &again.got[0]) && ipam_addr_eq(&o.got[1], &again.got[1]));
	struct ipam_state st;
	T_EQ(ipam_ds_read(&ds, &st, &e), 0);
	T_EQ(st.n_pools, 2);
	T_EQ(st.n_handles, 1);
	T_EQ(ipam_check(&st, NULL), 0);
	ipam_state_free(&st);
	/* the files, checked with python's json module */
	int rc;
	char *out =
	    t_sh(&rc,
		 "python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[\"ips\"])' "
		 "'%s/handle/net1.vmi.default.vm1.json'",
		 g_dir);
	T_EQ(rc, 0);
	T_STREQ(out, "['198.18.8.1', '2001:db8:8::1']\n");
	free(out);
	T_EQ(ipam_ds_update(&ds, fn_release, (void *)"net1.vmi.default.vm1", &e), 0);
	char path[400];
	snprintf(path, sizeof(path), "%s/handle/net1.vmi.default.vm1.json", g_dir);
	T_EQ(access(path, F_OK), -1);
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

/* The IPAMConfig record in the file datastore: DIR/config/default.json, the same JSON
 * as the kubernetes spec, read back, changed, removed; a bad one is named. */
static void test_config_record(void)
{
	struct ipam_ds_file f;
	struct ipam_ds ds;
	struct err e = {0};
	T_EQ(setup(&f, &ds), 0);
	struct ipam_config c = {.vm_persistence = IPAM_PERSIST_DISABLED};
	T_EQ(ipam_ds_update(&ds, fn_config, &c, &e), 0);
	int rc;
	char *out = t_sh(&rc, "python3 -c 'import json,sys; print(json.load(open(sys.argv[1])))' "
			      "'%s/config/default.json'",
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
	char path[400];
	snprintf(path, sizeof(path), "%s/config/default.json", g_dir);
	T_EQ(access(path, F_OK), -1);
	T_EQ(ipam_ds_read(&ds, &st, &e), 0);
	T_CHECK(!ipam_config_get(&st, &got));
	T_EQ(got.vm_persistence, IPAM_PERSIST_ENABLED);
	ipam_state_free(&st);
	/* written by hand with a wrong value: every read names the file */
	free(t_sh(&rc, "echo '{\"kubeVirtVMAddressPersistence\":\"Off\"}' > '%s'", path));
	T_EQ(ipam_ds_read(&ds, &st, &e), -EINVAL);
	T_CHECK(strstr(e.msg, "config/default.json") && strstr(e.msg, "kubeVirtVMAddress"));
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
	free(t_sh(&rc,
		  "printf '{\"cidr\":\"198.18.8.0/26\",\"us' > '%s/block/v4-198-18-8-0-26.json'",
		  g_dir));
	struct ipam_state st;
	T_EQ(ipam_ds_read(&ds, &st, &e), -EINVAL);
	ipam_state_free(&st);
	T_CHECK(strstr(e.msg, "block/v4-198-18-8-0-26.json") != NULL);
	t_note("%s", e.msg);
	T_EQ(ipam_ds_update(&ds, fn_alloc, &o, &e), -EINVAL);
	free(t_sh(&rc, "echo '{}' > '%s/handle/Bad_Name.json'; rm '%s/block/v4-198-18-8-0-26.json'",
		  g_dir, g_dir));
	T_EQ(ipam_ds_read(&ds, &st, &e), -EINVAL);
	ipam_state_free(&st);
	T_CHECK(strstr(e.msg, "handle/Bad_Name.json") != NULL);
	ipam_ds_file_close(&f);
	rmstate();
}

static void test_journal_replayed(void)
{
	struct ipam_ds_file f;
	struct ipam_ds ds;
	struct err e = {0};
	T_EQ(setup(&f, &ds), 0);
	struct op o = {.handle = "h1", .node = "node-a"};
	T_EQ(ipam_ds_update(&ds, fn_alloc, &o, &e), 0);
	/* as if a writer died after the commit point: journal deletes h1 and frees .1 */
	int rc;
	free(t_sh(&rc,
		  "cd '%s' && python3 -c 'import json; "
		  "b=json.load(open(\"block/v4-198-18-8-0-26.json\")); "
		  "b[\"allocations\"]=[]; b[\"used\"]=0; "
		  "json.dump({\"changes\":[{\"kind\":\"block\",\"name\":\"v4-198-18-8-0-26\","
		  "\"data\":json.dumps(b)},{\"kind\":\"handle\",\"name\":\"h1\",\"data\":None}]},"
		  "open(\"journal.json\",\"w\"))' && touch block/.stray.tmp",
		  g_dir));
	T_EQ(rc, 0);
	struct ipam_state st;
	T_EQ(ipam_ds_read(&ds, &st, &e), 0);
	T_EQ(st.n_handles, 0);
	T_EQ(ipam_check(&st, &e), -EUCLEAN); /* v6 block still lists h1: replay is exact */
	ipam_state_free(&st);
	char p[300];
	snprintf(p, sizeof(p), "%s/journal.json", g_dir);
	T_EQ(access(p, F_OK), -1);
	snprintf(p, sizeof(p), "%s/block/.stray.tmp", g_dir);
	T_EQ(access(p, F_OK), -1);
	/* a corrupt journal is an error naming it, not a crash */
	free(t_sh(&rc, "printf '{\"changes\":[' > '%s/journal.json'", g_dir));
	T_EQ(ipam_ds_read(&ds, &st, &e), -EUCLEAN);
	ipam_state_free(&st);
	T_CHECK(strstr(e.msg, "journal.json: journal: corrupt") != NULL);
	ipam_ds_file_close(&f);
	rmstate();
}

/* fn that, the first time, rewrites a record file behind the datastore's back (as a
 * writer ignoring the lock would): the commit must see the version moved. */
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
			  "cd '%s' && printf '%%s' '{\"cidr\":\"198.18.8.0/26\",\"affinity\":"
			  "\"node-b\",\"used\":1,\"allocations\":[{\"ip\":\"198.18.8.1\","
			  "\"handle\":\"other\"}]}' > block/v4-198-18-8-0-26.json && "
			  "printf '%%s' '{\"ips\":[\"198.18.8.1\"]}' > handle/other.json",
			  g_dir));
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

static int flaky_load(void *ctx, struct ipam_state *st, struct err *e)
{
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

static void test_update_retry_bound(void)
{
	static const struct ipam_ds_ops ops = {.name = "flaky",
					       .begin = flaky_begin,
					       .load = flaky_load,
					       .commit = flaky_commit,
					       .end = flaky_end};
	struct flaky fl = {.conflicts = 3};
	struct ipam_ds ds = {.ops = &ops, .ctx = &fl};
	struct op o = {.handle = "h", .node = "n"};
	struct err e = {0};
	T_EQ(ipam_ds_update(&ds, fn_alloc, &o, &e), 0);
	T_EQ(fl.commits, 4);
	T_EQ(fl.loads, 4);
	fl = (struct flaky){.conflicts = 1000};
	T_EQ(ipam_ds_update(&ds, fn_alloc, &o, &e), -EAGAIN);
	T_EQ(fl.commits, IPAM_DS_TRIES);
	T_CHECK(strstr(e.msg, "flaky datastore") != NULL);
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
	/* independent duplicate count over the files: every address once */
	int rc;
	char *out = t_sh(&rc,
			 "cd '%s' && python3 -c 'import json,glob,collections; "
			 "c=collections.Counter(ip for f in glob.glob(\"handle/*.json\") "
			 "for ip in json.load(open(f))[\"ips\"]); "
			 "print(len(c), sum(1 for v in c.values() if v>1))'",
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
	int bad = 0, early = 0, journals = 0, temps = 0;
	char jp[300];
	snprintf(jp, sizeof(jp), "%s/journal.json", g_dir);
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
		/* was it killed after a commit point, or while writing a temp file? */
		journals += access(jp, F_OK) == 0;
		int rc;
		char *tmp = t_sh(&rc, "ls -a '%s'/*/ '%s' | grep -c '[.]tmp$'", g_dir, g_dir);
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
	t_note("%u handles left after 40 kills; %d kills left a journal to replay, %d a temp "
	       "file",
	       prev_handles, journals, temps);
	ipam_ds_file_close(&f);
	rmstate();
}

int main(void)
{
	T_RUN(test_update_and_read);
	T_RUN(test_config_record);
	T_RUN(test_corrupt_record_named);
	T_RUN(test_journal_replayed);
	T_RUN(test_file_cas_conflict_retried);
	T_RUN(test_update_retry_bound);
	T_RUN(test_concurrent_processes);
	T_RUN(test_sigkill_during_commits);
	return t_done();
}
