/* test-kubeconfig — kubeconfig files (merge, context, auth, paths), in-cluster, the token
 * provider, and one end-to-end TLS connection made from a kubeconfig. */
#include "kube/conn.h"
#include "kube/http.h"
#include "kube/kubeconfig.h"
#include "kube/tls.h"
#include "lib/err.h"
#include "test/lib/t.h"

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static char dir[64];    /* temp dir: PKI from tls-mkcerts.sh + kubeconfigs */
static pid_t echo_pid;  /* tls-echo.py requiring client certs */
static char echo_port[16];
static pid_t kapi_pid;  /* test/kubeapi/server.py */
static char kapi_url[128];
static FILE *kapi_out;  /* its stdout, open until it exits (it prints on SIGTERM) */

static void cleanup(void)
{
	if (echo_pid > 0) {
		kill(echo_pid, SIGTERM);
		waitpid(echo_pid, NULL, 0);
		echo_pid = 0;
	}
	if (kapi_pid > 0) {
		kill(kapi_pid, SIGTERM);
		waitpid(kapi_pid, NULL, 0);
		kapi_pid = 0;
	}
	if (kapi_out) {
		fclose(kapi_out);
		kapi_out = NULL;
	}
	if (dir[0]) {
		free(t_sh(NULL, "rm -rf '%s'", dir));
		dir[0] = '\0';
	}
}

static void on_signal(int sig)
{
	cleanup();
	signal(sig, SIG_DFL);
	raise(sig);
}

static const char *P(const char *name)
{
	static char buf[8][160];
	static unsigned i;
	char *p = buf[i++ % 8];
	snprintf(p, sizeof(buf[0]), "%s/%s", dir, name);
	return p;
}

static void wfile(const char *name, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void wfile(const char *name, const char *fmt, ...)
{
	char tmp[200];
	snprintf(tmp, sizeof(tmp), "%s.tmp", P(name));
	FILE *f = fopen(tmp, "w");
	if (!f) {
		t_note("cannot write %s", tmp);
		return;
	}
	va_list ap;
	va_start(ap, fmt);
	vfprintf(f, fmt, ap);
	va_end(ap);
	fclose(f);
	rename(tmp, P(name)); /* atomic, like kubelet's token rotation */
}

/* base64 of a file in the temp dir, one line. */
static char *b64_of(const char *name)
{
	char *s = t_sh(NULL, "base64 -w0 '%s'", P(name));
	return s;
}

static int load(struct kcfg **k, const char *kubeconfig_env, const char *ctx, struct err *e)
{
	char env0[512];
	snprintf(env0, sizeof(env0), "KUBECONFIG=%s", kubeconfig_env);
	char *envp[] = { env0, "HOME=/nonexistent", NULL };
	struct kcfg_opts o = { .context = ctx, .envp = envp, .system_ca = P("none.crt") };
	return kcfg_load(k, &o, e);
}

static void test_token_and_relative_ca(void)
{
	wfile("tok.yaml", "apiVersion: v1\n"
			  "kind: Config\n"
			  "current-context: dev\n"
			  "clusters:\n"
			  "- name: c1\n"
			  "  cluster:\n"
			  "    server: https://198.18.0.2:6443\n"
			  "    certificate-authority: ca.crt\n"
			  "users:\n"
			  "- name: u1\n"
			  "  user:\n"
			  "    token: abc.def-123\n"
			  "contexts:\n"
			  "- name: dev\n"
			  "  context: {cluster: c1, user: u1, namespace: kube-system}\n");
	struct kcfg *k = NULL;
	struct err e = { 0 };
	int r = load(&k, P("tok.yaml"), NULL, &e);
	if (r < 0)
		t_note("%s", e.msg);
	T_EQ(r, 0);
	if (!k)
		return;
	T_STREQ(k->context, "dev");
	T_STREQ(k->cluster, "c1");
	T_STREQ(k->user, "u1");
	T_STREQ(k->scheme, "https");
	T_STREQ(k->host, "198.18.0.2");
	T_STREQ(k->port, "6443");
	T_STREQ(k->path_prefix, "");
	T_STREQ(k->ns, "kube-system");
	T_CHECK(!k->insecure && !k->in_cluster && !k->client_cert);
	T_EQ(tls_config_num_anchors(k->tls), 1);
	const char *tok = NULL;
	T_EQ(kcfg_token(k, 100, false, &tok, &e), 0);
	T_STREQ(tok, "abc.def-123");
	T_CHECK(strstr(k->source, "tok.yaml (context dev)") != NULL);
	kcfg_free(k);
}

static void test_token_file_rotation(void)
{
	mkdir(P("sub"), 0755);
	wfile("sub/token", "first-token\n");
	wfile("sub/tf.yaml", "current-context: x\n"
			     "clusters: [{name: c, cluster: {server: 'https://api.kvnet.test', "
			     "insecure-skip-tls-verify: true}}]\n"
			     "users: [{name: u, user: {tokenFile: token}}]\n"
			     "contexts: [{name: x, context: {cluster: c, user: u}}]\n");
	struct kcfg *k = NULL;
	struct err e = { 0 };
	int r = load(&k, P("sub/tf.yaml"), NULL, &e);
	if (r < 0)
		t_note("%s", e.msg);
	T_EQ(r, 0);
	if (!k)
		return;
	T_STREQ(k->port, "443");
	T_STREQ(k->ns, "default");
	T_CHECK(k->insecure);
	T_EQ(tls_config_num_anchors(k->tls), 0);
	T_STREQ(k->token_file, P("sub/token")); /* relative to the kubeconfig's directory */
	const char *tok = NULL;
	T_EQ(kcfg_token(k, 1000, false, &tok, &e), 0);
	T_STREQ(tok, "first-token");

	wfile("sub/token", "second-token\n"); /* rotated on disk */
	T_EQ(kcfg_token(k, 1030, false, &tok, &e), 0);
	T_STREQ(tok, "first-token"); /* cached: 30 s old */
	T_EQ(kcfg_token(k, 1030, true, &tok, &e), 0);
	T_STREQ(tok, "second-token"); /* forced after a 401 */

	wfile("sub/token", "third-token");
	T_EQ(kcfg_token(k, 1089, false, &tok, &e), 0);
	T_STREQ(tok, "second-token"); /* 59 s */
	T_EQ(kcfg_token(k, 1090, false, &tok, &e), 0);
	T_STREQ(tok, "third-token"); /* 60 s: re-read */

	/* the file disappears: the last token is still returned, with a warning */
	unlink(P("sub/token"));
	err_clear(&e);
	T_EQ(kcfg_token(k, 2000, true, &tok, &e), 1);
	T_STREQ(tok, "third-token");
	T_CHECK(strstr(e.msg, "token file") != NULL && e.code == ENOENT);
	/* a token with a line break inside would inject an HTTP header */
	wfile("sub/token", "abc\nX-Evil: 1\n");
	T_EQ(kcfg_token(k, 3000, true, &tok, &e), 1);
	T_CHECK(strstr(e.msg, "not a single printable token") != NULL);
	kcfg_free(k);
}

static void test_client_cert_files_and_data(void)
{
	char *cert = b64_of("client-ec.crt"), *key = b64_of("client-ec.p8"), *ca = b64_of("ca.crt");
	wfile("cc.yaml",
	      "current-context: files\n"
	      "clusters:\n"
	      "- name: c\n"
	      "  cluster:\n"
	      "    server: https://[2001:db8::1]:6443/prefix/\n"
	      "    certificate-authority-data: %s\n"
	      "    tls-server-name: api.kvnet.test\n"
	      "users:\n"
	      "- name: files\n"
	      "  user: {client-certificate: client-rsa.crt, client-key: client-rsa.key}\n"
	      "- name: data\n"
	      "  user:\n"
	      "    client-certificate-data: %s\n"
	      "    client-key-data: %s\n"
	      "contexts:\n"
	      "- {name: files, context: {cluster: c, user: files}}\n"
	      "- {name: data, context: {cluster: c, user: data}}\n",
	      ca, cert, key);
	free(cert);
	free(key);
	free(ca);
	struct kcfg *k = NULL;
	struct err e = { 0 };
	int r = load(&k, P("cc.yaml"), NULL, &e);
	if (r < 0)
		t_note("%s", e.msg);
	T_EQ(r, 0);
	if (k) {
		T_CHECK(k->client_cert);
		T_STREQ(k->host, "2001:db8::1");
		T_STREQ(k->port, "6443");
		T_STREQ(k->path_prefix, "/prefix");
		T_EQ(tls_config_num_anchors(k->tls), 1);
		const char *tok = "x";
		T_EQ(kcfg_token(k, 0, false, &tok, &e), 0);
		T_CHECK(tok == NULL);
	}
	kcfg_free(k);
	k = NULL;
	r = load(&k, P("cc.yaml"), "data", &e);
	if (r < 0)
		t_note("%s", e.msg);
	T_EQ(r, 0);
	T_CHECK(k && k->client_cert && tls_config_has_client(k->tls));
	kcfg_free(k);
}

static void test_merge_first_wins(void)
{
	mkdir(P("b"), 0755);
	wfile("a.yaml", "current-context: a\n"
			"clusters: [{name: c1, cluster: {server: 'https://198.18.0.1', "
			"certificate-authority: ca.crt}}]\n"
			"contexts: [{name: a, context: {cluster: c1, user: u1}}]\n");
	wfile("b/b.yaml", "current-context: b\n"
			  "clusters:\n"
			  "- {name: c1, cluster: {server: 'https://198.18.0.99'}}\n"
			  "- {name: c2, cluster: {server: 'http://198.18.0.3:8080', "
			  "certificate-authority: ../ca.crt}}\n"
			  "users: [{name: u1, user: {tokenFile: tok}}]\n"
			  "contexts:\n"
			  "- {name: a, context: {cluster: c2}}\n"
			  "- {name: b, context: {cluster: c2, user: u1, namespace: nb}}\n");
	wfile("b/tok", "token-b\n");
	char list[400];
	snprintf(list, sizeof(list), "%s:%s:%s", P("a.yaml"), P("missing.yaml"), P("b/b.yaml"));
	struct kcfg *k = NULL;
	struct err e = { 0 };
	int r = load(&k, list, NULL, &e);
	if (r < 0)
		t_note("%s", e.msg);
	T_EQ(r, 0);
	if (k) {
		T_STREQ(k->context, "a");      /* current-context of the first file */
		T_STREQ(k->cluster, "c1");     /* a's context "a", not b's */
		T_STREQ(k->host, "198.18.0.1"); /* a's c1, not b's */
		T_STREQ(k->token_file, P("b/tok")); /* b's user, path relative to b/ */
		const char *tok;
		T_EQ(kcfg_token(k, 0, false, &tok, &e), 0);
		T_STREQ(tok, "token-b");
		T_CHECK(strstr(k->source, "a.yaml:") != NULL && strstr(k->source, "b/b.yaml") != NULL);
		T_CHECK(strstr(k->source, "missing.yaml") == NULL);
	}
	kcfg_free(k);
	k = NULL;
	/* --context picks b's context, whose cluster is only in b */
	r = load(&k, list, "b", &e);
	if (r < 0)
		t_note("%s", e.msg);
	T_EQ(r, 0);
	if (k) {
		T_STREQ(k->scheme, "http");
		T_STREQ(k->port, "8080");
		T_STREQ(k->ns, "nb");
		T_EQ(tls_config_num_anchors(k->tls), 1); /* ../ca.crt from b/ */
	}
	kcfg_free(k);
}

static void test_missing_names_are_named(void)
{
	wfile("miss.yaml", "current-context: nope\n"
			   "clusters: [{name: c, cluster: {server: 'https://198.18.0.1', "
			   "insecure-skip-tls-verify: true}}]\n"
			   "contexts:\n"
			   "- {name: nocluster, context: {cluster: ghost}}\n"
			   "- {name: nouser, context: {cluster: c, user: phantom}}\n"
			   "- {name: ok, context: {cluster: c}}\n");
	struct kcfg *k = NULL;
	struct err e = { 0 };
	char want[300];
	T_EQ(load(&k, P("miss.yaml"), NULL, &e), -ENOENT);
	snprintf(want, sizeof(want), "kubeconfig %s: context \"nope\" not found", P("miss.yaml"));
	T_STREQ(e.msg, want);
	T_EQ(load(&k, P("miss.yaml"), "nocluster", &e), -ENOENT);
	snprintf(want, sizeof(want),
		 "kubeconfig %s: context \"nocluster\": cluster \"ghost\" not found",
		 P("miss.yaml"));
	T_STREQ(e.msg, want);
	T_EQ(load(&k, P("miss.yaml"), "nouser", &e), -ENOENT);
	snprintf(want, sizeof(want),
		 "kubeconfig %s: context \"nouser\": user \"phantom\" not found", P("miss.yaml"));
	T_STREQ(e.msg, want);
	T_EQ(load(&k, P("miss.yaml"), "ok", &e), 0); /* no user: anonymous */
	T_CHECK(k && k->token == NULL && k->token_file == NULL);
	kcfg_free(k);
}

static void test_malformed_yaml_has_line_and_column(void)
{
	struct err e = { 0 };
	const char *bad = "clusters:\n- name: a\n  cluster: {server: x\n";
	T_EQ(kcfg_check_text(bad, strlen(bad), "bad.yaml", &e), -EINVAL);
	t_note("%s", e.msg);
	T_CHECK(strncmp(e.msg, "kubeconfig bad.yaml: line 4 column 1: ", 38) == 0);

	const char *tab = "clusters:\n\t- name: a\n";
	T_EQ(kcfg_check_text(tab, strlen(tab), "tab.yaml", &e), -EINVAL);
	T_CHECK(strncmp(e.msg, "kubeconfig tab.yaml: line 2 column 1: ", 38) == 0);

	const char *type = "current-context: a\nclusters: 5\n";
	T_EQ(kcfg_check_text(type, strlen(type), "t.yaml", &e), -EINVAL);
	T_STREQ(e.msg, "kubeconfig t.yaml: line 2 column 11: clusters: expected a list");

	const char *b = "clusters:\n- name: c\n  cluster:\n    insecure-skip-tls-verify: maybe\n";
	T_EQ(kcfg_check_text(b, strlen(b), "b.yaml", &e), -EINVAL);
	T_STREQ(e.msg, "kubeconfig b.yaml: line 4 column 31: "
		       "clusters[0].cluster.insecure-skip-tls-verify: expected true or false");

	const char *noname = "users:\n- user: {token: x}\n";
	T_EQ(kcfg_check_text(noname, strlen(noname), "n.yaml", &e), -EINVAL);
	T_STREQ(e.msg, "kubeconfig n.yaml: line 2 column 3: users[0]: no name");

	/* aliases are references, never expanded: a cycle is harmless */
	const char *alias = "a: &x [*x, *x]\nclusters: &c [{name: q, cluster: *c}]\n";
	int r = kcfg_check_text(alias, strlen(alias), "alias.yaml", &e);
	T_CHECK(r == 0 || r == -EINVAL);

	T_EQ(kcfg_check_text("", 0, "empty.yaml", &e), 0);
}

static void test_bad_server_urls(void)
{
	static const char *bad[][2] = {
		{ "198.18.0.1:6443", "must start with https:// or http://" },
		{ "https://2001:db8::1:6443", "an IPv6 address needs [brackets]" },
		{ "https://[2001:db8::1:6443", "missing ']'" },
		{ "https://198.18.0.1:99999", "bad port" },
		{ "https://:6443", "no host" },
		{ "https://u:p@198.18.0.1", "user info in the URL is not supported" },
		{ "https://198.18.0.1/x?y=1", "query or fragment not allowed" },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		wfile("url.yaml",
		      "current-context: x\n"
		      "clusters: [{name: c, cluster: {server: '%s', insecure-skip-tls-verify: "
		      "true}}]\n"
		      "contexts: [{name: x, context: {cluster: c}}]\n",
		      bad[i][0]);
		struct kcfg *k = NULL;
		struct err e = { 0 };
		T_EQ(load(&k, P("url.yaml"), NULL, &e), -EINVAL);
		if (!strstr(e.msg, bad[i][1]))
			t_note("%s: got %s", bad[i][0], e.msg);
		T_CHECK(strstr(e.msg, bad[i][1]) != NULL);
		T_CHECK(strstr(e.msg, "cluster \"c\": server \"") != NULL);
	}
}

static void test_insecure_with_ca_refused_and_unsupported_auth(void)
{
	wfile("ins.yaml", "current-context: x\n"
			  "clusters: [{name: c, cluster: {server: 'https://198.18.0.1', "
			  "insecure-skip-tls-verify: true, certificate-authority: ca.crt}}]\n"
			  "users: [{name: u, user: {exec: {command: aws}}}]\n"
			  "contexts: [{name: x, context: {cluster: c, user: u}},"
			  " {name: y, context: {cluster: d, user: u}}]\n"
			  "---\n"
			  "ignored: second document\n");
	wfile("ins2.yaml", "clusters: [{name: d, cluster: {server: 'https://198.18.0.1', "
			   "certificate-authority: nonexistent.crt}}]\n");
	struct kcfg *k = NULL;
	struct err e = { 0 };
	T_EQ(load(&k, P("ins.yaml"), NULL, &e), -EINVAL);
	T_CHECK(strstr(e.msg, "cluster \"c\": insecure-skip-tls-verify together with a "
			      "certificate authority is not allowed") != NULL);
	char list[300];
	snprintf(list, sizeof(list), "%s:%s", P("ins.yaml"), P("ins2.yaml"));
	T_EQ(load(&k, list, "y", &e), -ENOENT);
	t_note("%s", e.msg);
	T_CHECK(strstr(e.msg, "cluster \"d\": certificate-authority: ") != NULL);
	T_CHECK(strstr(e.msg, "nonexistent.crt: open: ") != NULL);

	wfile("ins3.yaml", "current-context: x\n"
			   "clusters: [{name: c, cluster: {server: 'https://198.18.0.1', "
			   "insecure-skip-tls-verify: true}}]\n"
			   "users: [{name: u, user: {exec: {command: aws}}}]\n"
			   "contexts: [{name: x, context: {cluster: c, user: u}}]\n");
	T_EQ(load(&k, P("ins3.yaml"), NULL, &e), -ENOTSUP);
	T_CHECK(strstr(e.msg, "user \"u\": exec, auth-provider and basic auth") != NULL);

	/* no CA and the system bundle missing: said clearly */
	wfile("nosys.yaml", "current-context: x\n"
			    "clusters: [{name: c, cluster: {server: 'https://198.18.0.1'}}]\n"
			    "contexts: [{name: x, context: {cluster: c}}]\n");
	T_EQ(load(&k, P("nosys.yaml"), NULL, &e), -ENOENT);
	T_CHECK(strstr(e.msg, "no certificate-authority given and the system CA bundle") != NULL);

	/* client-certificate without client-key */
	wfile("half.yaml", "current-context: x\n"
			   "clusters: [{name: c, cluster: {server: 'https://198.18.0.1', "
			   "certificate-authority: ca.crt}}]\n"
			   "users: [{name: u, user: {client-certificate: client-ec.crt}}]\n"
			   "contexts: [{name: x, context: {cluster: c, user: u}}]\n");
	T_EQ(load(&k, P("half.yaml"), NULL, &e), -EINVAL);
	T_CHECK(strstr(e.msg, "user \"u\": client-certificate without client-key") != NULL);

	/* wrong key for the certificate, from files */
	wfile("wrongkey.yaml", "current-context: x\n"
			       "clusters: [{name: c, cluster: {server: 'https://198.18.0.1', "
			       "certificate-authority: ca.crt}}]\n"
			       "users: [{name: u, user: {client-certificate: client-ec.crt, "
			       "client-key: client-rsa.key}}]\n"
			       "contexts: [{name: x, context: {cluster: c, user: u}}]\n");
	T_EQ(load(&k, P("wrongkey.yaml"), NULL, &e), -EINVAL);
	t_note("%s", e.msg);
	T_CHECK(strstr(e.msg, "user \"u\": client-key ") != NULL);
	T_CHECK(strstr(e.msg, "does not match client certificate") != NULL);
}

static void write_sa(const char *sub)
{
	char d[200];
	snprintf(d, sizeof(d), "%s", P(sub));
	mkdir(d, 0755);
	char name[100];
	snprintf(name, sizeof(name), "%s/token", sub);
	wfile(name, "sa-token-1\n");
	snprintf(name, sizeof(name), "%s/namespace", sub);
	wfile(name, "kvnet-system");
	free(t_sh(NULL, "cp '%s' '%s/ca.crt'", P("ca.crt"), d));
}

static void test_in_cluster_v4_and_v6(void)
{
	write_sa("sa");
	char *env4[] = { "KUBERNETES_SERVICE_HOST=198.18.0.1", "KUBERNETES_SERVICE_PORT=443",
			 NULL };
	struct kcfg *k = NULL;
	struct err e = { 0 };
	int r = kcfg_load_incluster(&k, env4, P("sa"), &e);
	if (r < 0)
		t_note("%s", e.msg);
	T_EQ(r, 0);
	if (k) {
		T_STREQ(k->server, "https://198.18.0.1:443");
		T_STREQ(k->host, "198.18.0.1");
		T_STREQ(k->port, "443");
		T_STREQ(k->ns, "kvnet-system");
		T_STREQ(k->source, "in-cluster");
		T_CHECK(k->in_cluster);
		T_EQ(tls_config_num_anchors(k->tls), 1);
		const char *tok;
		T_EQ(kcfg_token(k, 50, false, &tok, &e), 0);
		T_STREQ(tok, "sa-token-1");
		wfile("sa/token", "sa-token-2\n");
		T_EQ(kcfg_token(k, 111, false, &tok, &e), 0);
		T_STREQ(tok, "sa-token-2");
	}
	kcfg_free(k);

	char *env6[] = { "PATH=/bin", "KUBERNETES_SERVICE_HOST=2001:db8::10",
			 "KUBERNETES_SERVICE_PORT=6443", NULL };
	k = NULL;
	/* via kcfg_load: no KUBECONFIG, no ~/.kube/config → in-cluster */
	struct kcfg_opts o = { .envp = env6, .sa_dir = P("sa") };
	r = kcfg_load(&k, &o, &e);
	if (r < 0)
		t_note("%s", e.msg);
	T_EQ(r, 0);
	if (k) {
		T_STREQ(k->server, "https://[2001:db8::10]:6443");
		T_STREQ(k->host, "2001:db8::10");
		T_STREQ(k->port, "6443");
	}
	kcfg_free(k);
}

static void test_nothing_configured(void)
{
	char *envp[] = { "HOME=/nonexistent", NULL };
	struct kcfg_opts o = { .envp = envp, .sa_dir = P("nosa") };
	struct kcfg *k = NULL;
	struct err e = { 0 };
	T_EQ(kcfg_load(&k, &o, &e), -ENOENT);
	T_STREQ(e.msg, "no kubeconfig (KUBECONFIG, ~/.kube/config) and not in a cluster "
		       "(KUBERNETES_SERVICE_HOST unset)");
	char *env2[] = { "KUBERNETES_SERVICE_HOST=198.18.0.1", "KUBERNETES_SERVICE_PORT=443",
			 NULL };
	T_EQ(kcfg_load_incluster(&k, env2, P("nosa"), &e), -ENOENT);
	T_CHECK(strncmp(e.msg, "in-cluster: ", 12) == 0 && strstr(e.msg, "ca.crt") != NULL);
	char *env3[] = { "KUBERNETES_SERVICE_HOST=198.18.0.1/evil", "KUBERNETES_SERVICE_PORT=443",
			 NULL };
	T_EQ(kcfg_load_incluster(&k, env3, P("sa"), &e), -EINVAL);
	T_CHECK(strstr(e.msg, "not a host and a port") != NULL);
	/* an explicit --kubeconfig must exist */
	struct kcfg_opts o2 = { .kubeconfig = P("nope.yaml"), .envp = env2 };
	T_EQ(kcfg_load(&k, &o2, &e), -ENOENT);
	T_CHECK(strstr(e.msg, "nope.yaml: open: ") != NULL);
}

/* A kubeconfig all the way to a TLS handshake with a client certificate. */
static void test_end_to_end_tls(void)
{
	char *cert = b64_of("client-ec.crt"), *key = b64_of("client-ec.key");
	wfile("e2e.yaml",
	      "current-context: x\n"
	      "clusters: [{name: c, cluster: {server: 'https://127.0.0.1:%s', "
	      "certificate-authority: ca.crt, tls-server-name: api.kvnet.test}}]\n"
	      "users: [{name: u, user: {client-certificate-data: %s, client-key-data: %s}}]\n"
	      "contexts: [{name: x, context: {cluster: c, user: u}}]\n",
	      echo_port, cert, key);
	free(cert);
	free(key);
	struct kcfg *k = NULL;
	struct conn *c = NULL;
	struct err e = { 0 };
	int r = load(&k, P("e2e.yaml"), NULL, &e);
	if (r == 0)
		r = conn_open_tcp(&c, k->host, k->port, NULL, &e);
	if (r == 0)
		r = tls_wrap(&c, k->tls, k->host, &e);
	if (r < 0)
		t_note("%s", e.msg);
	T_EQ(r, 0);
	if (c) {
		char buf[64] = { 0 };
		size_t n = 0;
		while (n < 16) {
			ssize_t got = conn_read(c, buf + n, sizeof(buf) - 1 - n, &e);
			if (got <= 0)
				break;
			n += (size_t)got;
		}
		T_STREQ(buf, "hello client-ec\n");
	}
	conn_close(c);
	kcfg_free(k);
}

/* GET path from the API server the kubeconfig names, with its token (if any). */
static int api_get(struct kcfg *k, const char *token, const char *path, struct http_resp *resp,
		   struct err *e)
{
	struct conn *c = NULL;
	char host[300];
	snprintf(host, sizeof(host), "%s:%s", k->host, k->port);
	int r = conn_open_tcp(&c, k->host, k->port, NULL, e);
	if (r == 0)
		r = tls_wrap(&c, k->tls, k->host, e);
	if (r == 0) {
		struct http_req req = { .method = "GET", .target = path, .host = host,
					.token = token };
		r = http_do(c, &req, resp, NULL, e);
	}
	conn_close(c);
	return r;
}

/* The project's test API server (HTTPS, tokens re-read on change, client certs): a
 * kubeconfig with a tokenFile, then a rotation: the cached token gets 401, a forced
 * re-read gets the new one. And the same with a client certificate. */
static void test_against_kubeapi_server(void)
{
	if (kapi_pid <= 0) {
		T_CHECK(!"kubeapi server not started");
		return;
	}
	const char *port = strrchr(kapi_url, ':') + 1;
	size_t tl = 0;
	char *tokens = t_slurp(P("kapi/tokens"), &tl);
	T_CHECK(tokens != NULL);
	if (!tokens)
		return;
	tokens[strcspn(tokens, ",\n")] = '\0';
	wfile("kapi-token", "%s\n", tokens);
	wfile("kapi.yaml",
	      "current-context: tok\n"
	      "clusters: [{name: k, cluster: {server: 'https://127.0.0.1:%s', "
	      "certificate-authority: kapi/ca.crt}}]\n"
	      "users:\n"
	      "- {name: tok, user: {tokenFile: kapi-token}}\n"
	      "- {name: agent, user: {client-certificate: kapi/client-kvnet-agent.crt, "
	      "client-key: kapi/client-kvnet-agent.key}}\n"
	      "contexts:\n"
	      "- {name: tok, context: {cluster: k, user: tok, namespace: default}}\n"
	      "- {name: agent, context: {cluster: k, user: agent}}\n",
	      port);
	free(tokens);

	struct kcfg *k = NULL;
	struct err e = { 0 };
	struct http_resp resp = { 0 };
	const char *tok = NULL;
	int r = load(&k, P("kapi.yaml"), NULL, &e);
	if (r == 0)
		r = kcfg_token(k, 1000, false, &tok, &e);
	if (r == 0)
		r = api_get(k, tok, "/api/v1/namespaces/default/pods", &resp, &e);
	if (r < 0)
		t_note("%s", e.msg);
	T_EQ(r, 0);
	T_EQ(resp.status, 200);
	T_CHECK(resp.body && strstr(resp.body, "\"PodList\"") != NULL);
	http_resp_free(&resp);

	/* rotation on both sides; our copy is cached for 60 s */
	wfile("kapi/tokens", "rotated-token-0123456789abcdef,kvnet-test,kvnet-test,"
			     "\"system:masters\"\n");
	wfile("kapi-token", "rotated-token-0123456789abcdef\n");
	if (k) {
		T_EQ(kcfg_token(k, 1010, false, &tok, &e), 0);
		memset(&resp, 0, sizeof(resp));
		T_EQ(api_get(k, tok, "/api/v1/namespaces/default/pods", &resp, &e), 0);
		T_EQ(resp.status, 401);
		http_resp_free(&resp);
		T_EQ(kcfg_token(k, 1010, true, &tok, &e), 0); /* forced after the 401 */
		T_STREQ(tok, "rotated-token-0123456789abcdef");
		memset(&resp, 0, sizeof(resp));
		T_EQ(api_get(k, tok, "/api/v1/namespaces/default/pods", &resp, &e), 0);
		T_EQ(resp.status, 200);
		http_resp_free(&resp);
	}
	kcfg_free(k);

	k = NULL;
	r = load(&k, P("kapi.yaml"), "agent", &e);
	memset(&resp, 0, sizeof(resp));
	if (r == 0)
		r = api_get(k, NULL, "/api/v1/nodes", &resp, &e);
	if (r < 0)
		t_note("%s", e.msg);
	T_EQ(r, 0);
	T_EQ(resp.status, 200);
	http_resp_free(&resp);
	kcfg_free(k);
}

static int start_kubeapi(void)
{
	int pfd[2];
	if (pipe(pfd) < 0)
		return -1;
	kapi_pid = fork();
	if (kapi_pid == 0) {
		dup2(pfd[1], 1);
		close(pfd[0]);
		close(pfd[1]);
		execlp("python3", "python3", "test/kubeapi/server.py", "--pki", P("kapi"),
		       "--listen", "127.0.0.1:0", (char *)NULL);
		_exit(127);
	}
	close(pfd[1]);
	kapi_out = fdopen(pfd[0], "r");
	char line[200] = "";
	bool ok = kapi_out && fgets(line, sizeof(line), kapi_out) != NULL;
	line[strcspn(line, "\n")] = '\0';
	if (!ok || strncmp(line, "kubeapi listening https://", 26) != 0)
		return -1;
	snprintf(kapi_url, sizeof(kapi_url), "%s", line + 18);
	return 0;
}

static int start_echo(void)
{
	int pfd[2];
	if (pipe(pfd) < 0)
		return -1;
	echo_pid = fork();
	if (echo_pid == 0) {
		dup2(pfd[1], 1);
		close(pfd[0]);
		close(pfd[1]);
		execlp("python3", "python3", "test/lib/tls-echo.py", "--cert", P("server.crt"),
		       "--key", P("server.key"), "--client-ca", P("ca.crt"), (char *)NULL);
		_exit(127);
	}
	close(pfd[1]);
	FILE *f = fdopen(pfd[0], "r");
	bool ok = fgets(echo_port, sizeof(echo_port), f) != NULL;
	fclose(f);
	echo_port[strcspn(echo_port, "\n")] = '\0';
	return ok ? 0 : -1;
}

int main(void)
{
	atexit(cleanup);
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	signal(SIGPIPE, SIG_IGN);
	snprintf(dir, sizeof(dir), "/tmp/kvt-%d-kcfg-XXXXXX", (int)getpid());
	if (!mkdtemp(dir)) {
		dir[0] = '\0';
		printf("not ok - mkdtemp\n");
		return 1;
	}
	int st = 0;
	char *out = t_sh(&st, "test/lib/tls-mkcerts.sh '%s' 2>&1", dir);
	free(out);
	if (st != 0 || start_echo() < 0) {
		printf("not ok - test PKI or tls-echo.py failed\n");
		return 1;
	}
	T_RUN(test_token_and_relative_ca);
	T_RUN(test_token_file_rotation);
	T_RUN(test_client_cert_files_and_data);
	T_RUN(test_merge_first_wins);
	T_RUN(test_missing_names_are_named);
	T_RUN(test_malformed_yaml_has_line_and_column);
	T_RUN(test_bad_server_urls);
	T_RUN(test_insecure_with_ca_refused_and_unsupported_auth);
	T_RUN(test_in_cluster_v4_and_v6);
	T_RUN(test_nothing_configured);
	T_RUN(test_end_to_end_tls);
	if (start_kubeapi() < 0)
		t_note("test/kubeapi/server.py did not start");
	T_RUN(test_against_kubeapi_server);
	return t_done();
}
