/* test-tls — the BearSSL client against a python3 `ssl` echo server over loopback, with a
 * PKI made at test time by the openssl command (test/lib/tls-mkcerts.sh). */
#include "kube/conn.h"
#include "kube/tls.h"
#include "lib/err.h"
#include "test/lib/t.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

struct server {
	pid_t pid;        /* the python process */
	char port[2][16]; /* one per --host */
};

static char dir[64];            /* the temporary PKI */
static struct server plain_srv; /* no client certificate: 127.0.0.1 and ::1 */
static struct server mtls_srv;  /* requires a client certificate from ca.crt */
static struct server ec_srv;    /* EC server certificate, requires a client certificate */

static void cleanup(void)
{
	if (plain_srv.pid > 0)
		kill(plain_srv.pid, SIGTERM);
	if (mtls_srv.pid > 0)
		kill(mtls_srv.pid, SIGTERM);
	if (ec_srv.pid > 0)
		kill(ec_srv.pid, SIGTERM);
	if (ec_srv.pid > 0)
		waitpid(ec_srv.pid, NULL, 0);
	if (plain_srv.pid > 0)
		waitpid(plain_srv.pid, NULL, 0);
	if (mtls_srv.pid > 0)
		waitpid(mtls_srv.pid, NULL, 0);
	plain_srv.pid = mtls_srv.pid = ec_srv.pid = 0;
	if (dir[0]) {
		char *out = t_sh(NULL, "rm -rf '%s'", dir);
		free(out);
		dir[0] = '\0';
	}
}

static void on_signal(int sig)
{
	cleanup();
	signal(sig, SIG_DFL);
	raise(sig);
}

static const char *path(const char *name)
{
	static char buf[4][128];
	static unsigned i;
	char *p = buf[i++ % 4];
	snprintf(p, sizeof(buf[0]), "%s/%s", dir, name);
	return p;
}

/* Start tls-echo.py; read one port line per host. */
static int start_server(struct server *s, const char *name, bool require_client,
			const char *host1, const char *host2)
{
	int pfd[2];
	if (pipe(pfd) < 0)
		return -1;
	s->pid = fork();
	if (s->pid == 0) {
		dup2(pfd[1], 1);
		close(pfd[0]);
		close(pfd[1]);
		const char *argv[16];
		int n = 0;
		argv[n++] = "python3";
		argv[n++] = "test/lib/tls-echo.py";
		char crt[64], key[64];
		snprintf(crt, sizeof(crt), "%s.crt", name);
		snprintf(key, sizeof(key), "%s.key", name);
		argv[n++] = "--cert";
		argv[n++] = path(crt);
		argv[n++] = "--key";
		argv[n++] = path(key);
		if (require_client) {
			argv[n++] = "--client-ca";
			argv[n++] = path("ca.crt");
		}
		argv[n++] = "--host";
		argv[n++] = host1;
		if (host2) {
			argv[n++] = "--host";
			argv[n++] = host2;
		}
		argv[n] = NULL;
		execvp("python3", (char **)argv);
		_exit(127);
	}
	close(pfd[1]);
	FILE *f = fdopen(pfd[0], "r");
	int ok = 0;
	for (int i = 0; i < (host2 ? 2 : 1); i++) {
		if (!fgets(s->port[i], sizeof(s->port[i]), f))
			break;
		s->port[i][strcspn(s->port[i], "\n")] = '\0';
		ok++;
	}
	fclose(f);
	return ok == (host2 ? 2 : 1) ? 0 : -1;
}

static struct tls_config *cfg_with_ca(const char *ca_name)
{
	struct err e = { 0 };
	struct tls_config *cfg = tls_config_new();
	if (ca_name && tls_config_add_ca_file(cfg, path(ca_name), &e) < 0)
		t_note("add ca: %s", e.msg);
	return cfg;
}

static int set_client(struct tls_config *cfg, const char *crt, const char *key, struct err *e)
{
	size_t cl = 0, kl = 0;
	char *c = t_slurp(path(crt), &cl), *k = t_slurp(path(key), &kl);
	int r = c && k ? tls_config_set_client(cfg, c, cl, crt, k, kl, key, e) : -ENOENT;
	free(c);
	free(k);
	return r;
}

static int dial(const char *host, const char *port, const struct tls_config *cfg,
		const char *name, const struct conn_opts *o, struct conn **c, struct err *e)
{
	int r = conn_open_tcp(c, host, port, o, e);
	if (r == 0)
		r = tls_wrap(c, cfg, name, e);
	return r;
}

/* Read up to '\n' (included) into buf. Returns length, 0 on EOF, -errno. */
static ssize_t read_line(struct conn *c, char *buf, size_t cap, struct err *e)
{
	size_t n = 0;
	while (n + 1 < cap) {
		ssize_t r = conn_read(c, buf + n, 1, e);
		if (r <= 0)
			return r < 0 ? r : (ssize_t)n;
		if (buf[n++] == '\n')
			break;
	}
	buf[n] = '\0';
	return (ssize_t)n;
}

/* Handshake, greeting, an echo, and a clean close_notify. */
static void echo_ok(struct conn *c, const char *want_hello)
{
	struct err e = { 0 };
	char line[128];
	T_EQ(read_line(c, line, sizeof(line), &e), (ssize_t)strlen(want_hello));
	T_STREQ(line, want_hello);
	T_EQ(conn_write(c, "ping\n", 5, &e), 0);
	T_EQ(read_line(c, line, sizeof(line), &e), 5);
	T_STREQ(line, "ping\n");
	T_EQ(conn_write(c, "bye\n", 4, &e), 0);
	T_EQ(read_line(c, line, sizeof(line), &e), 4);
	T_EQ(conn_read(c, line, sizeof(line), &e), 0); /* close_notify → EOF */
}

static void test_handshake_and_echo_dns_name(void)
{
	struct err e = { 0 };
	struct conn *c = NULL;
	struct tls_config *cfg = cfg_with_ca("ca.crt");
	T_EQ(tls_config_num_anchors(cfg), 1);
	int r = dial("127.0.0.1", plain_srv.port[0], cfg, "api.kvnet.test", NULL, &c, &e);
	if (r < 0)
		t_note("%s", e.msg);
	T_EQ(r, 0);
	if (c) {
		T_CHECK(strncmp(c->peer, "127.0.0.1:", 10) == 0);
		echo_ok(c, "hello -\n");
	}
	conn_close(c);
	tls_config_free(cfg);
}

static void test_ip_san_v4(void)
{
	struct err e = { 0 };
	struct conn *c = NULL;
	struct tls_config *cfg = cfg_with_ca("ca.crt");
	int r = dial("127.0.0.1", plain_srv.port[0], cfg, "127.0.0.1", NULL, &c, &e);
	if (r < 0)
		t_note("%s", e.msg);
	T_EQ(r, 0);
	if (c)
		echo_ok(c, "hello -\n");
	conn_close(c);
	tls_config_free(cfg);
}

static void test_ip_san_v6_bracketed(void)
{
	struct err e = { 0 };
	struct conn *c = NULL;
	struct tls_config *cfg = cfg_with_ca("ca.crt");
	int r = dial("[::1]", plain_srv.port[1], cfg, "[::1]", NULL, &c, &e);
	if (r < 0)
		t_note("%s", e.msg);
	T_EQ(r, 0);
	if (c)
		echo_ok(c, "hello -\n");
	conn_close(c);
	tls_config_free(cfg);
}

/* tls-server-name overrides the URL host: 198.18.0.2 is in the IP SANs. */
static void test_server_name_override_ip(void)
{
	struct err e = { 0 };
	struct conn *c = NULL;
	struct tls_config *cfg = cfg_with_ca("ca.crt");
	T_EQ(tls_config_set_server_name(cfg, "198.18.0.2", &e), 0);
	int r = dial("127.0.0.1", plain_srv.port[0], cfg, "wrong.kvnet.test", NULL, &c, &e);
	if (r < 0)
		t_note("%s", e.msg);
	T_EQ(r, 0);
	if (c)
		echo_ok(c, "hello -\n");
	conn_close(c);
	tls_config_free(cfg);
}

static void test_ip_not_in_sans(void)
{
	struct err e = { 0 };
	struct conn *c = NULL;
	char want[160];
	struct tls_config *cfg = cfg_with_ca("ca.crt");
	T_EQ(tls_config_set_server_name(cfg, "198.18.0.3", &e), 0);
	T_EQ(dial("127.0.0.1", plain_srv.port[0], cfg, NULL, NULL, &c, &e), -EPROTO);
	T_CHECK(c == NULL);
	snprintf(want, sizeof(want),
		 "tls 127.0.0.1:%s: handshake failed: server certificate has no IP address SAN "
		 "198.18.0.3 (BR_ERR_X509_BAD_SERVER_NAME)",
		 plain_srv.port[0]);
	T_STREQ(e.msg, want);
	tls_config_free(cfg);
}

static void test_dns_name_mismatch(void)
{
	struct err e = { 0 };
	struct conn *c = NULL;
	char want[200];
	struct tls_config *cfg = cfg_with_ca("ca.crt");
	T_EQ(dial("127.0.0.1", plain_srv.port[0], cfg, "wrong.kvnet.test", NULL, &c, &e),
	     -EPROTO);
	snprintf(want, sizeof(want),
		 "tls 127.0.0.1:%s: handshake failed: server certificate does not match name "
		 "\"wrong.kvnet.test\" (BR_ERR_X509_BAD_SERVER_NAME)",
		 plain_srv.port[0]);
	T_STREQ(e.msg, want);
	tls_config_free(cfg);
}

static void test_wrong_ca(void)
{
	struct err e = { 0 };
	struct conn *c = NULL;
	char want[200];
	struct tls_config *cfg = cfg_with_ca("other-ca.crt");
	T_EQ(dial("127.0.0.1", plain_srv.port[0], cfg, "api.kvnet.test", NULL, &c, &e),
	     -EPROTO);
	T_EQ(e.code, EPROTO);
	snprintf(want, sizeof(want),
		 "tls 127.0.0.1:%s: handshake failed: server certificate not trusted "
		 "(BR_ERR_X509_NOT_TRUSTED)",
		 plain_srv.port[0]);
	T_STREQ(e.msg, want);
	tls_config_free(cfg);
}

static void test_bundle_and_der_anchors(void)
{
	struct err e = { 0 };
	struct conn *c = NULL;
	struct tls_config *cfg = cfg_with_ca("bundle.crt");
	T_EQ(tls_config_num_anchors(cfg), 2);
	T_EQ(dial("127.0.0.1", plain_srv.port[0], cfg, "api.kvnet.test", NULL, &c, &e), 0);
	conn_close(c);
	tls_config_free(cfg);

	cfg = cfg_with_ca("ca.der");
	T_EQ(tls_config_num_anchors(cfg), 1);
	T_EQ(dial("127.0.0.1", plain_srv.port[0], cfg, "api.kvnet.test", NULL, &c, &e), 0);
	conn_close(c);
	tls_config_free(cfg);
}

static void test_insecure_only_when_set(void)
{
	struct err e = { 0 };
	struct conn *c = NULL;
	struct tls_config *cfg = cfg_with_ca(NULL);
	T_CHECK(!tls_config_insecure(cfg));
	/* no CA, not insecure: refused before any byte is sent */
	T_EQ(dial("127.0.0.1", plain_srv.port[0], cfg, "api.kvnet.test", NULL, &c, &e),
	     -EINVAL);
	T_CHECK(strstr(e.msg, "no certificate authority configured") != NULL);
	tls_config_set_insecure(cfg, true);
	T_CHECK(tls_config_insecure(cfg));
	int r = dial("127.0.0.1", plain_srv.port[0], cfg, "wrong.kvnet.test", NULL, &c, &e);
	if (r < 0)
		t_note("%s", e.msg);
	T_EQ(r, 0);
	if (c)
		echo_ok(c, "hello -\n");
	conn_close(c);
	tls_config_free(cfg);

	/* a wrong CA is ignored only when insecure is set */
	cfg = cfg_with_ca("other-ca.crt");
	T_EQ(dial("127.0.0.1", plain_srv.port[0], cfg, "api.kvnet.test", NULL, &c, &e),
	     -EPROTO);
	tls_config_set_insecure(cfg, true);
	T_EQ(dial("127.0.0.1", plain_srv.port[0], cfg, "api.kvnet.test", NULL, &c, &e), 0);
	conn_close(c);
	tls_config_free(cfg);
}

static void client_cert_case(const char *crt, const char *key, const char *hello)
{
	struct err e = { 0 };
	struct conn *c = NULL;
	struct tls_config *cfg = cfg_with_ca("ca.crt");
	int r = set_client(cfg, crt, key, &e);
	if (r < 0)
		t_note("%s", e.msg);
	T_EQ(r, 0);
	T_CHECK(tls_config_has_client(cfg));
	r = dial("127.0.0.1", mtls_srv.port[0], cfg, "api.kvnet.test", NULL, &c, &e);
	if (r < 0)
		t_note("%s", e.msg);
	T_EQ(r, 0);
	if (c)
		echo_ok(c, hello);
	conn_close(c);
	tls_config_free(cfg);
}

static void test_client_cert_rsa(void)
{
	client_cert_case("client-rsa.crt", "client-rsa.key", "hello client-rsa\n");
}

static void test_client_cert_rsa_pkcs8(void)
{
	client_cert_case("client-rsa.crt", "client-rsa.p8", "hello client-rsa\n");
}

static void test_client_cert_ec(void)
{
	client_cert_case("client-ec.crt", "client-ec.key", "hello client-ec\n");
}

static void test_client_cert_ec_pkcs8(void)
{
	client_cert_case("client-ec.crt", "client-ec.p8", "hello client-ec\n");
}

/* An ECDSA server certificate (ECDHE_ECDSA suites) and an EC client identity. */
static void test_ec_server_certificate(void)
{
	struct err e = { 0 };
	struct conn *c = NULL;
	struct tls_config *cfg = cfg_with_ca("ca.crt");
	T_EQ(set_client(cfg, "client-ec.crt", "client-ec.key", &e), 0);
	int r = dial("127.0.0.1", ec_srv.port[0], cfg, "127.0.0.1", NULL, &c, &e);
	if (r < 0)
		t_note("%s", e.msg);
	T_EQ(r, 0);
	if (c)
		echo_ok(c, "hello client-ec\n");
	conn_close(c);
	tls_config_free(cfg);
}

static void test_client_cert_missing_is_clear(void)
{
	struct err e = { 0 };
	struct conn *c = NULL;
	struct tls_config *cfg = cfg_with_ca("ca.crt");
	int r = dial("127.0.0.1", mtls_srv.port[0], cfg, "api.kvnet.test", NULL, &c, &e);
	T_CHECK(r < 0);
	t_note("without a client certificate: %s", e.msg);
	T_CHECK(strstr(e.msg, "handshake failed: ") != NULL);
	T_CHECK(strstr(e.msg, "server sent fatal alert ") != NULL);
	T_CHECK(strstr(e.msg, "no client certificate is configured") != NULL);
	conn_close(c);
	tls_config_free(cfg);
}

static void test_client_key_mismatch(void)
{
	struct err e = { 0 };
	struct tls_config *cfg = tls_config_new();
	T_EQ(set_client(cfg, "client-rsa.crt", "client-ec.key", &e), -EINVAL);
	T_STREQ(e.msg, "client-ec.key: client key (EC) does not match client certificate (RSA)");
	T_EQ(set_client(cfg, "client-rsa.crt", "server.key", &e), -EINVAL);
	T_STREQ(e.msg, "server.key: client key does not match client certificate");
	T_CHECK(!tls_config_has_client(cfg));
	T_EQ(set_client(cfg, "client-ec.crt", "client-ec.p8", &e), 0);
	T_CHECK(tls_config_has_client(cfg));
	T_EQ(set_client(cfg, "client-ec.crt", "client-rsa.crt", &e), -EINVAL);
	T_CHECK(strstr(e.msg, "no RSA PRIVATE KEY, EC PRIVATE KEY or PRIVATE KEY block") != NULL);
	tls_config_free(cfg);
}

static void test_bad_ca_data(void)
{
	struct err e = { 0 };
	struct tls_config *cfg = tls_config_new();
	T_EQ(tls_config_add_ca(cfg, "hello", 5, "certificate-authority-data", &e), -EINVAL);
	T_STREQ(e.msg, "certificate-authority-data: neither PEM nor a DER certificate");
	const char *bad = "-----BEGIN CERTIFICATE-----\nMIIBkTCB+wIJ\n-----END CERTIFICATE-----\n";
	T_EQ(tls_config_add_ca(cfg, bad, strlen(bad), "ca.crt", &e), -EINVAL);
	T_CHECK(strncmp(e.msg, "ca.crt: certificate 1: cannot decode: ", 38) == 0);
	const char *nocert = "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n";
	T_EQ(tls_config_add_ca(cfg, nocert, strlen(nocert), "ca.crt", &e), -EINVAL);
	T_STREQ(e.msg, "ca.crt: no CERTIFICATE block found");
	T_EQ(tls_config_add_ca_file(cfg, "/nonexistent/ca.crt", &e), -ENOENT);
	T_EQ(tls_config_num_anchors(cfg), 0);
	tls_config_free(cfg);
}

/* Buffered plaintext is visible through conn_pending(); bigger transfers work. */
static void test_pending_and_bulk(void)
{
	struct err e = { 0 };
	struct conn *c = NULL;
	struct tls_config *cfg = cfg_with_ca("ca.crt");
	T_EQ(dial("127.0.0.1", plain_srv.port[0], cfg, "api.kvnet.test", NULL, &c, &e), 0);
	if (!c) {
		tls_config_free(cfg);
		return;
	}
	char line[64];
	T_EQ(read_line(c, line, sizeof(line), &e), 8);
	T_CHECK(!conn_pending(c));
	T_EQ(conn_write(c, "0123456789abcdef", 16, &e), 0);
	char b[4];
	T_EQ(conn_read(c, b, 4, &e), 4);
	T_CHECK(conn_pending(c)); /* the rest of the record is decrypted and waiting */
	char rest[16];
	T_EQ(conn_read(c, rest, sizeof(rest), &e), 12);
	T_MEMEQ(rest, "456789abcdef", 12);

	size_t big = 256 * 1024, chunk = 32 * 1024;
	unsigned char *out = malloc(big), *in = malloc(big);
	for (size_t i = 0; i < big; i++)
		out[i] = (unsigned char)(i * 131 + 7);
	size_t got = 0;
	bool ok = true;
	for (size_t off = 0; off < big && ok; off += chunk) {
		ok = conn_write(c, out + off, chunk, &e) == 0;
		while (ok && got < off + chunk) {
			ssize_t r = conn_read(c, in + got, big - got, &e);
			ok = r > 0;
			got += r > 0 ? (size_t)r : 0;
		}
	}
	T_CHECK(ok);
	T_EQ(got, big);
	T_MEMEQ(in, out, big);
	free(out);
	free(in);
	conn_close(c);
	tls_config_free(cfg);
}

static void test_read_timeout_names_peer(void)
{
	struct err e = { 0 };
	struct conn *c = NULL;
	struct conn_opts o = { .io_timeout_ms = 100 };
	struct tls_config *cfg = cfg_with_ca("ca.crt");
	T_EQ(dial("127.0.0.1", plain_srv.port[0], cfg, "api.kvnet.test", &o, &c, &e), 0);
	char line[64];
	if (c) {
		T_EQ(read_line(c, line, sizeof(line), &e), 8);
		T_EQ(conn_read(c, line, sizeof(line), &e), -ETIMEDOUT);
		t_note("%s", e.msg);
		/* what is left of the deadline when the wait began: shape, not a time */
		char want[96];
		unsigned ms = 0;
		snprintf(want, sizeof(want), "tls 127.0.0.1:%s: read: timed out after ",
			 plain_srv.port[0]);
		T_CHECK(strncmp(e.msg, want, strlen(want)) == 0);
		T_CHECK(sscanf(e.msg + strlen(want), "%u ms", &ms) == 1 && ms > 0 && ms <= 100);
	}
	conn_close(c);
	tls_config_free(cfg);
}

/* A loopback listener that accepts and says nothing (or says `say`). */
static int mute_listener(char *port, size_t plen)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t sl = sizeof(sa);
	if (bind(fd, (struct sockaddr *)&sa, sl) < 0 || listen(fd, 4) < 0 ||
	    getsockname(fd, (struct sockaddr *)&sa, &sl) < 0) {
		close(fd);
		return -1;
	}
	snprintf(port, plen, "%u", ntohs(sa.sin_port));
	return fd;
}

static void test_handshake_timeout(void)
{
	struct err e = { 0 };
	struct conn *c = NULL;
	char port[16];
	struct conn_opts o = { .connect_timeout_ms = 150 };
	int lfd = mute_listener(port, sizeof(port));
	struct tls_config *cfg = cfg_with_ca("ca.crt");
	T_EQ(dial("127.0.0.1", port, cfg, "api.kvnet.test", &o, &c, &e), -ETIMEDOUT);
	T_CHECK(c == NULL);
	t_note("%s", e.msg);
	/* The message names what is left of the handshake deadline when the read began, so
	 * on a busy machine it may be a little under 150: check its shape, not a time. */
	char want[96];
	unsigned ms = 0;
	snprintf(want, sizeof(want), "tls 127.0.0.1:%s: handshake: read: timed out after ", port);
	T_CHECK(strncmp(e.msg, want, strlen(want)) == 0);
	T_CHECK(sscanf(e.msg + strlen(want), "%u ms", &ms) == 1 && ms > 0 && ms <= 150);
	close(lfd);
	tls_config_free(cfg);
}

static void test_not_a_tls_server(void)
{
	struct err e = { 0 };
	struct conn *c = NULL;
	char port[16];
	int lfd = mute_listener(port, sizeof(port));
	struct tls_config *cfg = cfg_with_ca("ca.crt");
	pid_t pid = fork();
	if (pid == 0) {
		int s = accept(lfd, NULL, NULL);
		char buf[512];
		ssize_t r = read(s, buf, sizeof(buf));
		const char *resp = "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n";
		r = write(s, resp, strlen(resp));
		(void)r;
		usleep(200 * 1000);
		_exit(0);
	}
	int r = dial("127.0.0.1", port, cfg, "api.kvnet.test", NULL, &c, &e);
	T_CHECK(r < 0);
	t_note("%s", e.msg);
	T_CHECK(strstr(e.msg, "handshake failed: the server answered in plain HTTP, not TLS") !=
		NULL);
	waitpid(pid, NULL, 0);
	close(lfd);
	tls_config_free(cfg);
}

static void test_strerror_names(void)
{
	char b[160];
	T_STREQ(tls_strerror(62, b, sizeof(b)),
		"server certificate not trusted (BR_ERR_X509_NOT_TRUSTED)");
	T_STREQ(tls_strerror(256 + 48, b, sizeof(b)),
		"server sent fatal alert unknown_ca (BR_ERR_RECV_FATAL_ALERT+48)");
	T_STREQ(tls_strerror(512 + 40, b, sizeof(b)),
		"we sent fatal alert handshake_failure (BR_ERR_SEND_FATAL_ALERT+40)");
	T_STREQ(tls_strerror(11, b, sizeof(b)), "BearSSL error 11");
}

static void test_system_entropy(void)
{
	const char *s = tls_system_seeder();
	t_note("BearSSL system seeder: %s", s ? s : "(none)");
	T_CHECK(s != NULL);
}

int main(void)
{
	atexit(cleanup);
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	signal(SIGPIPE, SIG_IGN);
	snprintf(dir, sizeof(dir), "/tmp/kvt-%d-tls-XXXXXX", (int)getpid());
	if (!mkdtemp(dir)) {
		dir[0] = '\0';
		printf("not ok - mkdtemp\n");
		return 1;
	}
	int st = 0;
	char *out = t_sh(&st, "test/lib/tls-mkcerts.sh '%s' 2>&1", dir);
	if (st != 0) {
		printf("# %s\nnot ok - tls-mkcerts.sh failed (openssl missing?)\n", out ? out : "");
		free(out);
		return 1;
	}
	free(out);
	if (start_server(&plain_srv, "server", false, "127.0.0.1", "::1") < 0 ||
	    start_server(&mtls_srv, "server", true, "127.0.0.1", NULL) < 0 ||
	    start_server(&ec_srv, "server-ec", true, "127.0.0.1", NULL) < 0) {
		printf("not ok - tls-echo.py did not start\n");
		return 1;
	}

	T_RUN(test_handshake_and_echo_dns_name);
	T_RUN(test_ip_san_v4);
	T_RUN(test_ip_san_v6_bracketed);
	T_RUN(test_server_name_override_ip);
	T_RUN(test_ip_not_in_sans);
	T_RUN(test_dns_name_mismatch);
	T_RUN(test_wrong_ca);
	T_RUN(test_bundle_and_der_anchors);
	T_RUN(test_insecure_only_when_set);
	T_RUN(test_client_cert_rsa);
	T_RUN(test_client_cert_rsa_pkcs8);
	T_RUN(test_client_cert_ec);
	T_RUN(test_client_cert_ec_pkcs8);
	T_RUN(test_ec_server_certificate);
	T_RUN(test_client_cert_missing_is_clear);
	T_RUN(test_client_key_mismatch);
	T_RUN(test_bad_ca_data);
	T_RUN(test_pending_and_bulk);
	T_RUN(test_read_timeout_names_peer);
	T_RUN(test_handshake_timeout);
	T_RUN(test_not_a_tls_server);
	T_RUN(test_strerror_names);
	T_RUN(test_system_entropy);
	return t_done();
}
