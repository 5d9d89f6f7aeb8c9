/* swapq — the owner compare-and-swap on a worker thread, answers back on the loop. */
#include "agent/swapq.h"

#include "ipam/ds.h"
#include "ipam/ds_file.h"
#include "ipam/ds_kube.h"
#include "ipam/ipam.h"
#include "kube/client.h"
#include "kube/kubeconfig.h"
#include "lib/evloop.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

/* One queued job, then its result (the same node moves from one list to the other). */
struct sq_node {
	struct sq_node *next;	  /* list link */
	struct mig_ep m;	  /* the endpoint, copied at submission */
	struct swapq_fast fast;	  /* the fast path's texts (NULL: none); owned */
	uint64_t submit_us;	  /* submission time (monotonic) */
	struct swapq_result r;	  /* filled by the worker */
};

struct swapq {
	struct ev_loop *loop;	      /* the agent's loop (not owned) */
	struct ev_io *io;	      /* watcher of efd */
	int efd;		      /* eventfd: the worker's "results ready" */
	swapq_done_fn done;	      /* result callback (loop thread) */
	void *user;		      /* its argument */
	enum swapq_ds_kind kind;      /* datastore kind */
	struct ipam_ds *ds;	      /* SWAPQ_DS_CALLER */
	char kubeconfig[4096];	      /* KUBERNETES: path ("" = default sources) */
	char context[256];	      /* KUBERNETES: context */
	int io_timeout_ms;	      /* KUBERNETES: client I/O timeout */
	char dir[4096];		      /* FILE: state directory */
	/* worker-only (after start) */
	struct kcfg *kc;	      /* the worker's kubeconfig, loaded on first use */
	struct kube_client *kube;     /* the worker's API client */
	/* shared, under mu */
	pthread_mutex_t mu;	      /* guards what follows */
	pthread_cond_t cv;	      /* signalled when a job is queued or stop is set */
	struct sq_node *jobs, **jobs_tail;   /* queued, FIFO */
	struct sq_node *res, **res_tail;     /* finished, not delivered, FIFO */
	bool stop;		      /* the worker ends after its current job */
	unsigned pending;	      /* submitted and not delivered */
	/* loop-only */
	pthread_t th;		      /* the worker */
	bool started;		      /* th runs */
};

static uint64_t mono_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void node_free(struct sq_node *j)
{
	if (!j)
		return;
	free(j->fast.blocks);
	free(j->fast.handles);
	free(j);
}

/* ---- the worker ------------------------------------------------------------------ */

struct sq_arg {
	const struct mig_ep *m; /* the endpoint */
	bool take;		/* alternate -> active (else active -> alternate) */
	bool changed;		/* out */
};

static int op_swap(struct ipam_state *st, void *arg, struct err *e)
{
	struct sq_arg *c = arg;
	return mig_owner_swap(st, c->m, c->take, &c->changed, e);
}

/* The prepared state: swap, then one CAS per changed record. < 0: the caller falls
 * back to the full update (authoritative). */
static int swap_fast(struct ipam_ds_kube *k, const struct swapq_fast *f, struct sq_arg *arg,
		     struct err *e)
{
	struct ipam_change *ch = NULL;
	unsigned n_ch = 0;
	struct ipam_state stm, *st = &stm;
	char cont[16];
	ipam_state_init(st);
	int rc = ipam_ds_kube_load_page(st, IPAM_BLOCK, f->blocks, f->blocks_len, cont,
					sizeof(cont), e);
	if (rc == 0)
		rc = ipam_ds_kube_load_page(st, IPAM_HANDLE, f->handles, f->handles_len, cont,
					    sizeof(cont), e);
	if (rc == 0)
		rc = mig_owner_swap(st, arg->m, arg->take, &arg->changed, e);
	if (rc == 0)
		rc = ipam_state_diff(st, &ch, &n_ch, e);
	if (rc == 0 && n_ch) {
		k->st = st; /* what a failed commit restores */
		rc = ipam_ds_kube(k).ops->commit(k, ch, n_ch, e);
		k->st = NULL;
	}
	if (rc < 0)
		arg->changed = false;
	ipam_changes_free(ch, n_ch);
	ipam_state_free(st);
	return rc;
}

static int kube_ready(struct swapq *q, struct err *e)
{
	if (q->kube)
		return 0;
	struct kcfg_opts ko = {
		.kubeconfig = q->kubeconfig[0] ? q->kubeconfig : NULL,
		.context = q->context[0] ? q->context : NULL,
		.envp = environ,
	};
	if (!q->kc) {
		int rc = kcfg_load(&q->kc, &ko, e);
		if (rc < 0) {
			q->kc = NULL;
			err_prefix(e, "migration: owner swap: kubernetes");
			return -ENOTCONN; /* tried again on the next job */
		}
	}
	q->kube = kube_client_from_kcfg(q->kc, q->io_timeout_ms, e);
	if (!q->kube)
		return err_prefix(e, "migration: owner swap: kubernetes"), -ENOTCONN;
	return 0;
}

static void run_job(struct swapq *q, struct sq_node *j)
{
	struct swapq_result *r = &j->r;
	struct sq_arg arg = { .m = &j->m, .take = r->kind != MIG_A_OWNER_RETURN };
	uint64_t t0 = mono_us();
	r->wait_us = t0 > j->submit_us ? t0 - j->submit_us : 0;
	err_clear(&r->e);
	switch (q->kind) {
	case SWAPQ_DS_CALLER:
		r->path = SWAPQ_PATH_FULL;
		r->rc = ipam_ds_update(q->ds, op_swap, &arg, &r->e);
		break;
	case SWAPQ_DS_KUBERNETES: {
		r->rc = kube_ready(q, &r->e);
		if (r->rc < 0)
			break;
		struct ipam_ds_kube k;
		ipam_ds_kube_init(&k, q->kube);
		if (j->fast.blocks && j->fast.handles) {
			struct err fe;
			err_clear(&fe);
			r->path = SWAPQ_PATH_FAST;
			r->rc = swap_fast(&k, &j->fast, &arg, &fe);
			if (r->rc == 0)
				break;
			snprintf(r->fast_why, sizeof(r->fast_why), "%s", fe.msg);
		}
		r->path = SWAPQ_PATH_FULL;
		struct ipam_ds ds = ipam_ds_kube(&k);
		arg.changed = false;
		r->rc = ipam_ds_update(&ds, op_swap, &arg, &r->e);
		break;
	}
	case SWAPQ_DS_FILE: {
		struct ipam_ds_file f;
		r->rc = ipam_ds_file_open(&f, q->dir, &r->e);
		if (r->rc < 0)
			break;
		r->path = SWAPQ_PATH_FULL;
		struct ipam_ds ds = ipam_ds_file(&f);
		r->rc = ipam_ds_update(&ds, op_swap, &arg, &r->e);
		ipam_ds_file_close(&f);
		break;
	}
	}
	r->changed = r->rc == 0 && arg.changed;
	r->cas_us = mono_us() - t0;
	r->done_ns = now_ns();
	free(j->fast.blocks); /* spent: freed here, not on the loop */
	free(j->fast.handles);
	memset(&j->fast, 0, sizeof(j->fast));
}

static void *worker(void *arg)
{
	struct swapq *q = arg;
	pthread_mutex_lock(&q->mu);
	for (;;) {
		while (!q->jobs && !q->stop)
			pthread_cond_wait(&q->cv, &q->mu);
		if (q->stop)
			break;
		struct sq_node *j = q->jobs;
		q->jobs = j->next;
		if (!q->jobs)
			q->jobs_tail = &q->jobs;
		j->next = NULL;
		pthread_mutex_unlock(&q->mu);
		run_job(q, j);
		pthread_mutex_lock(&q->mu);
		*q->res_tail = j;
		q->res_tail = &j->next;
		uint64_t one = 1;
		ssize_t w = write(q->efd, &one, sizeof(one)); /* cannot overflow: read drains */
		(void)w;
	}
	pthread_mutex_unlock(&q->mu);
	return NULL;
}

/* ---- the loop side ---------------------------------------------------------------- */

static void on_results(struct ev_loop *loop, struct ev_io *io, int fd, uint32_t revents,
		       void *user)
{
	(void)loop;
	(void)io;
	(void)revents;
	struct swapq *q = user;
	uint64_t v;
	ssize_t rd = read(fd, &v, sizeof(v));
	(void)rd;
	pthread_mutex_lock(&q->mu);
	struct sq_node *list = q->res;
	q->res = NULL;
	q->res_tail = &q->res;
	pthread_mutex_unlock(&q->mu);
	while (list) {
		struct sq_node *j = list;
		list = j->next;
		if (q->pending)
			q->pending--;
		q->done(q->user, &j->r);
		node_free(j);
	}
}

static int start(struct swapq *q, struct err *e)
{
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old); /* the worker inherits: every signal blocked */
	int rc = pthread_create(&q->th, NULL, worker, q);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc != 0)
		return err_set(e, rc, "migration: owner swap queue: worker thread");
	q->started = true;
	return 0;
}

struct swapq *swapq_new(struct ev_loop *loop, const struct swapq_ds *ds, swapq_done_fn done,
			void *user, struct err *e)
{
	struct swapq *q = calloc(1, sizeof(*q));
	if (!q) {
		err_set(e, ENOMEM, "migration: owner swap queue");
		return NULL;
	}
	q->loop = loop;
	q->done = done;
	q->user = user;
	q->kind = ds->kind;
	q->ds = ds->ds;
	snprintf(q->kubeconfig, sizeof(q->kubeconfig), "%s", ds->kubeconfig ? ds->kubeconfig : "");
	snprintf(q->context, sizeof(q->context), "%s", ds->context ? ds->context : "");
	snprintf(q->dir, sizeof(q->dir), "%s", ds->dir ? ds->dir : "");
	q->io_timeout_ms = ds->io_timeout_ms;
	q->jobs_tail = &q->jobs;
	q->res_tail = &q->res;
	if (ds->kind == SWAPQ_DS_CALLER && !ds->ds) {
		err_setx(e, EINVAL, "migration: owner swap queue: no datastore");
		free(q);
		return NULL;
	}
	q->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (q->efd < 0) {
		err_set(e, errno, "migration: owner swap queue: eventfd");
		free(q);
		return NULL;
	}
	if (ev_io_add(loop, q->efd, EPOLLIN, on_results, q, NULL, &q->io, e) < 0) {
		close(q->efd);
		free(q);
		return NULL;
	}
	pthread_mutex_init(&q->mu, NULL);
	pthread_cond_init(&q->cv, NULL);
	if (start(q, e) < 0) {
		swapq_free(q);
		return NULL;
	}
	return q;
}

int swapq_submit(struct swapq *q, const struct mig_ep *m, enum mig_act_kind kind, uint64_t id,
		 uint64_t gen, struct swapq_fast *fast_take, struct err *e)
{
	int rc = 0;
	struct sq_node *j = NULL;
	struct swapq_fast none = { 0 }, *f = fast_take ? fast_take : &none;
	if (kind != MIG_A_OWNER_TAKE && kind != MIG_A_OWNER_RECLAIM && kind != MIG_A_OWNER_RETURN) {
		rc = err_setx(e, EINVAL, "migration: owner swap queue: %s is not an owner action",
			      mig_act_name(kind));
		goto fail;
	}
	j = calloc(1, sizeof(*j));
	if (!j) {
		rc = err_set(e, ENOMEM, "migration: owner swap queue");
		goto fail;
	}
	j->m = *m;
	j->fast = *f;
	memset(f, 0, sizeof(*f));
	j->submit_us = mono_us();
	j->r.id = id;
	j->r.gen = gen;
	j->r.kind = kind;
	pthread_mutex_lock(&q->mu);
	*q->jobs_tail = j;
	q->jobs_tail = &j->next;
	q->pending++;
	pthread_cond_signal(&q->cv);
	pthread_mutex_unlock(&q->mu);
	return 0;
fail:
	free(f->blocks);
	free(f->handles);
	memset(f, 0, sizeof(*f));
	return rc;
}

unsigned swapq_pending(const struct swapq *q)
{
	return q->pending;
}

void swapq_free(struct swapq *q)
{
	if (!q)
		return;
	if (q->started) {
		pthread_mutex_lock(&q->mu);
		q->stop = true;
		pthread_cond_signal(&q->cv);
		pthread_mutex_unlock(&q->mu);
		pthread_join(q->th, NULL);
	}
	while (q->jobs) {
		struct sq_node *j = q->jobs;
		q->jobs = j->next;
		node_free(j);
	}
	while (q->res) {
		struct sq_node *j = q->res;
		q->res = j->next;
		node_free(j);
	}
	if (q->io)
		ev_io_del(q->io);
	if (q->efd >= 0)
		close(q->efd);
	pthread_mutex_destroy(&q->mu);
	pthread_cond_destroy(&q->cv);
	kube_client_free(q->kube);
	kcfg_free(q->kc);
	free(q);
}

const char *swapq_path_name(enum swapq_path p)
{
	switch (p) {
	case SWAPQ_PATH_NONE:
		return "none";
	case SWAPQ_PATH_FAST:
		return "fast";
	case SWAPQ_PATH_FULL:
		return "full";
	}
	return "?";
}
