/* kube-probe — drive kube/client and kube/informer from the command line, so the
 * integration tests (test/integration/test_kube_client.py) can run every operation
 * against the test API server and assert on what kvnet's client really did.
 *
 *   kube-probe CONN... CMD ARGS...
 *
 * CONN: --server https://HOST:PORT | http://HOST:PORT, --ca FILE, --token-file FILE,
 *       --cert FILE --key FILE, --server-name NAME, --insecure, --timeout-ms N
 *       or --kubeconfig FILE[:FILE...] [--context NAME]
 * CMD:  get RES NS NAME | list RES NS [label=S] [field=S] [limit=N]
 *       create RES NS FILE | update RES NS NAME FILE [status]
 *       patch RES NS NAME merge|json FILE [status] | delete RES NS NAME [uid=U] [rv=V]
 *       repeat N get RES NS NAME   (N gets on one client: keep-alive)
 *       watch RES NS [rv=V] [count=N] [timeout=S] [bookmarks]
 *       inform RES NS [seconds=N] [label=S] [field=S]
 * NS "-" means none (cluster-scoped, or all namespaces for list/watch/inform).
 * Output: bodies / one line per item or event; failures print
 * "ERR errno=NAME status=N reason=R msg=..." and exit 1. Usage errors exit 2.
 */
#include "kube/client.h"
#include "kube/informer.h"
#include "lib/json.h"
#include "kube/kubeconfig.h"
#include "kube/tls.h"
#include "lib/err.h"
#include "lib/evloop.h"
#include "test/lib/t.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct probe {
	const char *server;      /* --server URL */
	const char *kubeconfig;  /* --kubeconfig PATH[:PATH...] */
	const char *context;     /* --context NAME */
	struct kcfg *kcfg;       /* resolved kubeconfig, when one was given */
	const char *ca, *cert, *key, *token_file, *server_name;
	bool insecure;
	int timeout_ms;
	struct tls_config *tls;
	char host[256], port[8];
	bool https;
	time_t token_read;       /* when the token file was last read */
	char token[8192];
	struct kube_client *c;
	struct kube_informer *inf;
	struct ev_loop *loop;
};

static const struct {
	const char *name;
	const struct kube_res *res;
} resources[] = {
	{ "pods", &kube_res_pods },           { "nodes", &kube_res_nodes },
	{ "namespaces", &kube_res_namespaces }, { "vmis", &kube_res_vmis },
	{ "vms", &kube_res_vms },             { "vmims", &kube_res_vmims },
	{ "networkpolicies", &kube_res_netpols }, { "ippools", &kube_res_ippools },
	{ "ipamblocks", &kube_res_ipamblocks }, { "ipamhandles", &kube_res_ipamhandles },
	{ "ipamconfigs", &kube_res_ipamconfigs },
};

static const struct kube_res *res_find(const char *n)
{
	for (size_t i = 0; i < sizeof(resources) / sizeof(resources[0]); i++)
		if (strcmp(resources[i].name, n) == 0)
			return resources[i].res;
	return NULL;
}

static const char *errno_name(int r)
{
	switch (-r) {
	case ENOENT: return "ENOENT";
	case EEXIST: return "EEXIST";
	case ESTALE: return "ESTALE";
	case ETIME: return "ETIME";
	case EACCES: return "EACCES";
	case EPERM: return "EPERM";
	case EINVAL: return "EINVAL";
	case EBUSY: return "EBUSY";
	case EIO: return "EIO";
	case EPROTO: return "EPROTO";
	case ETIMEDOUT: return "ETIMEDOUT";
	case ECONNREFUSED: return "ECONNREFUSED";
	case ECONNRESET: return "ECONNRESET";
	case EMSGSIZE: return "EMSGSIZE";
	}
	return "OTHER";
}

static int fail(int r, struct kube_resp *resp, const struct err *e)
{
	printf("ERR errno=%s status=%d reason=%s msg=%s\n", errno_name(r), resp ? resp->status : 0,
	       resp && resp->reason[0] ? resp->reason : "-", e->msg);
	kube_resp_free(resp);
	return 1;
}

static int token_fn(void *user, bool force, char *buf, size_t cap, struct err *e)
{
	struct probe *p = user;
	time_t now = time(NULL);
	if (force || !p->token_read || now - p->token_read >= 60) {
		FILE *f = fopen(p->token_file, "r");
		if (!f)
			return err_set(e, errno, "token file %s", p->token_file);
		if (!fgets(p->token, sizeof(p->token), f))
			p->token[0] = '\0';
		fclose(f);
		p->token[strcspn(p->token, "\r\n")] = '\0';
		p->token_read = now;
	}
	snprintf(buf, cap, "%s", p->token);
	return 0;
}

static char *slurp_arg(const char *path, size_t *len)
{
	return t_slurp(strcmp(path, "-") == 0 ? "/dev/stdin" : path, len);
}

static int parse_server(struct probe *p, struct err *e)
{
	const char *s = p->server;
	if (strncmp(s, "https://", 8) == 0) {
		p->https = true;
		s += 8;
	} else if (strncmp(s, "http://", 7) == 0) {
		s += 7;
	} else {
		return err_setx(e, EINVAL, "--server %s: want https://HOST:PORT", p->server);
	}
	const char *colon = s[0] == '[' ? strstr(s, "]:") : strrchr(s, ':');
	if (!colon)
		return err_setx(e, EINVAL, "--server %s: no port", p->server);
	if (s[0] == '[') {
		snprintf(p->host, sizeof(p->host), "%.*s", (int)(colon - s - 1), s + 1);
		colon++;
	} else {
		snprintf(p->host, sizeof(p->host), "%.*s", (int)(colon - s), s);
	}
	snprintf(p->port, sizeof(p->port), "%s", colon + 1);
	p->port[strcspn(p->port, "/")] = '\0';
	return 0;
}

extern char **environ;

static int setup(struct probe *p, struct err *e)
{
	if (p->kubeconfig) {
		struct kcfg_opts ko = { .kubeconfig = p->kubeconfig, .context = p->context,
					.envp = environ };
		int r = kcfg_load(&p->kcfg, &ko, e);
		if (r < 0)
			return r;
		p->c = kube_client_from_kcfg(p->kcfg, p->timeout_ms, e);
		return p->c ? 0 : -EINVAL;
	}
	if (!p->server)
		return err_setx(e, EINVAL, "--server is required");
	int r = parse_server(p, e);
	if (r < 0)
		return r;
	if (p->https) {
		p->tls = tls_config_new();
		if (!p->tls)
			return err_set(e, ENOMEM, "tls config");
		if (p->ca && (r = tls_config_add_ca_file(p->tls, p->ca, e)) < 0)
			return r;
		if (p->cert) {
			size_t cl, kl;
			char *cert = t_slurp(p->cert, &cl), *key = p->key ? t_slurp(p->key, &kl) : NULL;
			if (!cert || !key) {
				free(cert);
				free(key);
				return err_setx(e, ENOENT, "cannot read --cert/--key");
			}
			r = tls_config_set_client(p->tls, cert, cl, p->cert, key, kl, p->key, e);
			free(cert);
			free(key);
			if (r < 0)
				return r;
		}
		if (p->insecure)
			tls_config_set_insecure(p->tls, true);
	}
	struct kube_server srv = {
		.https = p->https,
		.host = p->host,
		.port = p->port,
		.tls = p->tls,
		.server_name = p->server_name,
		.token = p->token_file ? token_fn : NULL,
		.token_user = p,
		.io_timeout_ms = p->timeout_ms,
		.connect_timeout_ms = p->timeout_ms,
	};
	p->c = kube_client_new(&srv, e);
	return p->c ? 0 : -EINVAL;
}

static const char *kv(int argc, char **argv, const char *key)
{
	size_t n = strlen(key);
	for (int i = 0; i < argc; i++)
		if (strncmp(argv[i], key, n) == 0 && argv[i][n] == '=')
			return argv[i] + n + 1;
	return NULL;
}

static bool has(int argc, char **argv, const char *word)
{
	for (int i = 0; i < argc; i++)
		if (strcmp(argv[i], word) == 0)
			return true;
	return false;
}

/* Print one list page as "PAGE <body>" (the python side parses it) and return the
 * page's metadata.continue in cont ("" on the last page). */
static int print_page(const struct kube_resp *r, char *cont, size_t cap)
{
	struct json_doc d;
	cont[0] = '\0';
	printf("PAGE %s\n", r->body);
	int rc = json_parse(&d, r->body, r->len, NULL, 0, 0, NULL);
	if (rc != -ENOSPC)
		return rc < 0 ? rc : 0;
	struct json_tok *tok = calloc(d.n, sizeof(*tok));
	if (!tok)
		return -ENOMEM;
	rc = json_parse(&d, r->body, r->len, tok, d.n, 0, NULL);
	int t = rc == 0 ? json_find(&d, 0, "metadata", "continue", NULL) : -1;
	if (t >= 0 && json_str(&d, t, cont, cap) != 0)
		cont[0] = '\0';
	free(tok);
	return rc;
}

static volatile sig_atomic_t stop_flag;

static void on_term(int sig)
{
	(void)sig;
	stop_flag = 1;
}

static void inf_add(void *u, const struct kube_obj *o)
{
	(void)u;
	printf("ADD %s/%s %s\n", o->ns, o->name, o->rv);
	fflush(stdout);
}

static void inf_update(void *u, const struct kube_obj *old, const struct kube_obj *o)
{
	(void)u;
	printf("UPDATE %s/%s %s->%s\n", o->ns, o->name, old->rv, o->rv);
	fflush(stdout);
}

static void inf_del(void *u, const struct kube_obj *o)
{
	(void)u;
	printf("DEL %s/%s %s\n", o->ns, o->name, o->rv);
	fflush(stdout);
}

static void inf_synced(void *u)
{
	struct probe *p = u;
	printf("SYNCED count=%zu rv=%s\n", kube_informer_count(p->inf), kube_informer_rv(p->inf));
	fflush(stdout);
}

static void inf_error(void *u, const struct err *e)
{
	(void)u;
	printf("ERROR %s\n", e->msg);
	fflush(stdout);
}

static void on_tick(struct ev_loop *loop, struct ev_timer *t, void *user)
{
	(void)t;
	(void)user;
	if (stop_flag)
		ev_stop(loop);
}

static void on_deadline(struct ev_loop *loop, struct ev_timer *t, void *user)
{
	(void)t;
	(void)user;
	ev_stop(loop);
}

static void on_stdin(struct ev_loop *loop, struct ev_io *io, int fd, uint32_t revents, void *u)
{
	char buf[256];
	(void)io;
	(void)revents;
	(void)u;
	ssize_t n = read(fd, buf, sizeof(buf));
	if (n <= 0)
		ev_stop(loop);
}

static int cmd_inform(struct probe *p, const struct kube_res *r, const char *ns, int argc,
		      char **argv, struct err *e)
{
	const char *secs = kv(argc, argv, "seconds");
	struct kube_informer_opts o = {
		.ns = ns,
		.label_selector = kv(argc, argv, "label"),
		.field_selector = kv(argc, argv, "field"),
		.backoff_min_ms = 100,
		.backoff_max_ms = 1000,
	};
	const char *ps = kv(argc, argv, "page");
	if (ps)
		o.page_size = (unsigned)atoi(ps);
	struct kube_informer_ops ops = { inf_add, inf_update, inf_del, inf_synced, inf_error };
	struct ev_timer *tick, *deadline;
	struct ev_io *in;
	p->loop = ev_loop_new(e);
	if (!p->loop)
		return -ENOMEM;
	p->inf = kube_informer_new(p->loop, p->c, r, &o, &ops, p, e);
	if (!p->inf)
		return -EINVAL;
	signal(SIGTERM, on_term);
	signal(SIGINT, on_term);
	int rc = 0;
	if (ev_timer_add(p->loop, 50, 50, on_tick, p, NULL, &tick, e) < 0 ||
	    ev_timer_add(p->loop, secs ? (uint64_t)atoi(secs) * 1000 : 600000, 0, on_deadline, p,
			 NULL, &deadline, e) < 0)
		rc = -EINVAL;
	/* stdin closing ends the run (when stdin is a pipe; a file cannot be polled) */
	struct err ignore;
	if (!rc && ev_io_add(p->loop, 0, EPOLLIN, on_stdin, p, NULL, &in, &ignore) < 0)
		in = NULL;
	if (!rc) {
		kube_informer_start(p->inf, e);
		rc = ev_run(p->loop, e);
	}
	struct kube_informer_stats st;
	kube_informer_stats(p->inf, &st);
	printf("STATS lists=%llu relists=%llu watches=%llu reconnects=%llu events=%llu "
	       "bookmarks=%llu errors=%llu count=%zu\n",
	       (unsigned long long)st.lists, (unsigned long long)st.relists,
	       (unsigned long long)st.watches, (unsigned long long)st.reconnects,
	       (unsigned long long)st.events, (unsigned long long)st.bookmarks,
	       (unsigned long long)st.errors, kube_informer_count(p->inf));
	kube_informer_free(p->inf);
	ev_loop_free(p->loop);
	return rc;
}

static int run(struct probe *p, int argc, char **argv)
{
	struct err e = { 0 };
	struct kube_resp resp = { 0 };
	int rc;
	int rep = 1;
	if (argc >= 2 && strcmp(argv[0], "repeat") == 0) {
		rep = atoi(argv[1]);
		argc -= 2;
		argv += 2;
	}
	if (argc < 3) {
		fprintf(stderr, "kube-probe: usage: see the comment at the top of kube-probe.c\n");
		return 2;
	}
	const char *cmd = argv[0];
	const struct kube_res *r = res_find(argv[1]);
	const char *ns = strcmp(argv[2], "-") == 0 ? NULL : argv[2];
	if (!r) {
		fprintf(stderr, "kube-probe: unknown resource %s\n", argv[1]);
		return 2;
	}
	if ((rc = setup(p, &e)) < 0)
		return fail(rc, NULL, &e);
	argc -= 3;
	argv += 3;
	if (strcmp(cmd, "get") == 0 && argc >= 1) {
		for (int i = 0; i < rep; i++) {
			kube_resp_free(&resp);
			rc = kube_get(p->c, r, ns, argv[0], &resp, &e);
			if (rc < 0)
				return fail(rc, &resp, &e);
		}
		printf("%s\n", resp.body);
	} else if (strcmp(cmd, "list") == 0) {
		char cont[1024] = "";
		int pages = 0;
		do {
			struct kube_list_opts o = {
				.label_selector = kv(argc, argv, "label"),
				.field_selector = kv(argc, argv, "field"),
				.limit = kv(argc, argv, "limit") ? (unsigned)atoi(kv(argc, argv, "limit")) : 0,
				.continue_token = pages ? cont : NULL,
			};
			kube_resp_free(&resp);
			rc = kube_list(p->c, r, ns, &o, &resp, &e);
			if (rc < 0)
				return fail(rc, &resp, &e);
			print_page(&resp, cont, sizeof(cont));
			pages++;
		} while (cont[0]);
	} else if ((strcmp(cmd, "create") == 0 && argc >= 1) ||
		   (strcmp(cmd, "update") == 0 && argc >= 2) ||
		   (strcmp(cmd, "patch") == 0 && argc >= 3)) {
		size_t len;
		const char *file = argv[strcmp(cmd, "create") == 0 ? 0 : strcmp(cmd, "update") == 0 ? 1 : 2];
		char *body = slurp_arg(file, &len);
		if (!body) {
			fprintf(stderr, "kube-probe: cannot read %s\n", file);
			return 2;
		}
		if (cmd[0] == 'c')
			rc = kube_create(p->c, r, ns, body, len, &resp, &e);
		else if (cmd[0] == 'u')
			rc = kube_update(p->c, r, ns, argv[0], has(argc, argv, "status") ? "status" : NULL,
					 body, len, &resp, &e);
		else
			rc = kube_patch(p->c, r, ns, argv[0], has(argc, argv, "status") ? "status" : NULL,
					strcmp(argv[1], "json") == 0 ? KUBE_PATCH_JSON : KUBE_PATCH_MERGE,
					body, len, &resp, &e);
		free(body);
		if (rc < 0)
			return fail(rc, &resp, &e);
		printf("%s\n", resp.body);
	} else if (strcmp(cmd, "delete") == 0 && argc >= 1) {
		rc = kube_delete(p->c, r, ns, argv[0], kv(argc, argv, "uid"), kv(argc, argv, "rv"),
				 &resp, &e);
		if (rc < 0)
			return fail(rc, &resp, &e);
		printf("%s\n", resp.body);
	} else if (strcmp(cmd, "watch") == 0) {
		struct kube_watch_opts o = {
			.resource_version = kv(argc, argv, "rv"),
			.bookmarks = has(argc, argv, "bookmarks"),
			.timeout_seconds = kv(argc, argv, "timeout") ? (unsigned)atoi(kv(argc, argv, "timeout")) : 0,
			.label_selector = kv(argc, argv, "label"),
		};
		int count = kv(argc, argv, "count") ? atoi(kv(argc, argv, "count")) : -1;
		struct kube_watch *w;
		rc = kube_watch_open(p->c, r, ns, &o, &w, &e);
		if (rc < 0)
			return fail(rc, NULL, &e);
		static const char *const tn[] = { "ADDED", "MODIFIED", "DELETED", "BOOKMARK", "ERROR" };
		while (count != 0) {
			struct kube_event ev;
			rc = kube_watch_next(w, false, &ev, &e);
			if (rc < 0) {
				kube_watch_close(w);
				return fail(rc, NULL, &e);
			}
			if (rc == 0) {
				printf("END\n");
				break;
			}
			printf("%s rv=%s code=%d len=%zu\n", tn[ev.type], ev.rv, ev.code, ev.object_len);
			fflush(stdout);
			if (count > 0)
				count--;
		}
		kube_watch_close(w);
	} else if (strcmp(cmd, "inform") == 0) {
		rc = cmd_inform(p, r, ns, argc, argv, &e);
		if (rc < 0)
			return fail(rc, NULL, &e);
	} else {
		fprintf(stderr, "kube-probe: bad command %s\n", cmd);
		return 2;
	}
	struct kube_client_stats st;
	kube_client_stats(p->c, &st);
	fprintf(stderr, "kube-probe: requests=%llu connects=%llu retries=%llu\n",
		(unsigned long long)st.requests, (unsigned long long)st.connects,
		(unsigned long long)st.retries);
	kube_resp_free(&resp);
	return 0;
}

int main(int argc, char **argv)
{
	struct probe p = { .timeout_ms = 5000 };
	int i = 1;
	for (; i < argc && strncmp(argv[i], "--", 2) == 0; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (strcmp(a, "--insecure") == 0) {
			p.insecure = true;
			continue;
		}
		if (!v) {
			fprintf(stderr, "kube-probe: %s needs a value\n", a);
			return 2;
		}
		i++;
		if (strcmp(a, "--server") == 0)
			p.server = v;
		else if (strcmp(a, "--ca") == 0)
			p.ca = v;
		else if (strcmp(a, "--cert") == 0)
			p.cert = v;
		else if (strcmp(a, "--key") == 0)
			p.key = v;
		else if (strcmp(a, "--token-file") == 0)
			p.token_file = v;
		else if (strcmp(a, "--server-name") == 0)
			p.server_name = v;
		else if (strcmp(a, "--kubeconfig") == 0)
			p.kubeconfig = v;
		else if (strcmp(a, "--context") == 0)
			p.context = v;
		else if (strcmp(a, "--timeout-ms") == 0)
			p.timeout_ms = atoi(v);
		else {
			fprintf(stderr, "kube-probe: unknown option %s\n", a);
			return 2;
		}
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	int rc = run(&p, argc - i, argv + i);
	kube_client_free(p.c);
	tls_config_free(p.tls);
	kcfg_free(p.kcfg);
	return rc;
}
