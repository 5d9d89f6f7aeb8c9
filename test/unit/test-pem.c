/* test-pem — base64 and PEM decoding, and the iPAddress SAN walk over real certificates. */
#include "kube/pem.h"
#include "kube/tls.h"
#include "lib/err.h"
#include "test/lib/t.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int b64(const char *in, char *out, size_t cap, size_t *n)
{
	return pem_base64_decode(in, strlen(in), (uint8_t *)out, cap, n);
}

static void test_base64_vectors(void)
{
	/* RFC 4648 section 10 */
	static const char *v[][2] = { { "", "" },         { "Zg==", "f" },
				      { "Zm8=", "fo" },     { "Zm9v", "foo" },
				      { "Zm9vYg==", "foob" }, { "Zm9vYmE=", "fooba" },
				      { "Zm9vYmFy", "foobar" } };
	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		char out[16];
		size_t n = 99;
		T_EQ(b64(v[i][0], out, sizeof(out), &n), 0);
		T_EQ(n, strlen(v[i][1]));
		T_MEMEQ(out, v[i][1], n);
	}
	char out[16];
	size_t n;
	T_EQ(b64(" Zm9v\r\nYmFy \n", out, sizeof(out), &n), 0);
	T_EQ(n, 6);
}

static void test_base64_rejects(void)
{
	char out[16];
	size_t n;
	T_EQ(b64("Zm9", out, sizeof(out), &n), -EINVAL);     /* dangling */
	T_EQ(b64("Zg=", out, sizeof(out), &n), -EINVAL);     /* half padding */
	T_EQ(b64("Z===", out, sizeof(out), &n), -EINVAL);    /* too much padding */
	T_EQ(b64("Zg==Zg==", out, sizeof(out), &n), -EINVAL); /* data after padding */
	T_EQ(b64("Zm9v!", out, sizeof(out), &n), -EINVAL);
	T_EQ(b64("Zm9vYmFy", out, 5, &n), -ENOSPC);
	T_EQ(b64("Zm9vYmE=", out, 4, &n), -ENOSPC);
}

static void test_pem_blocks(void)
{
	const char *t = "junk\n-----BEGIN A-----\nZm9v\n-----END A-----\n"
			"-----BEGIN B B-----\nYmFy\n-----END B B-----\ntrailer";
	size_t off = 0;
	struct pem_block b;
	struct err e = { 0 };
	T_CHECK(pem_is_pem(t, strlen(t)));
	T_EQ(pem_next(t, strlen(t), &off, &b, "x", &e), 1);
	T_STREQ(b.label, "A");
	T_EQ(b.len, 3);
	T_MEMEQ(b.der, "foo", 3);
	free(b.der);
	T_EQ(pem_next(t, strlen(t), &off, &b, "x", &e), 1);
	T_STREQ(b.label, "B B");
	T_MEMEQ(b.der, "bar", 3);
	free(b.der);
	T_EQ(pem_next(t, strlen(t), &off, &b, "x", &e), 0);
	T_CHECK(!pem_is_pem("Zm9v", 4));
}

static void test_pem_errors(void)
{
	size_t off;
	struct pem_block b;
	struct err e = { 0 };
	const char *noend = "\n\n-----BEGIN CERTIFICATE-----\nZm9v\n-----END CERTIFICATEX-----\n";
	off = 0;
	T_EQ(pem_next(noend, strlen(noend), &off, &b, "ca.crt", &e), -EINVAL);
	T_STREQ(e.msg, "ca.crt: line 3: PEM block CERTIFICATE: no matching END line");
	const char *bad = "-----BEGIN X-----\nZm9v!\n-----END X-----\n";
	off = 0;
	T_EQ(pem_next(bad, strlen(bad), &off, &b, "key", &e), -EINVAL);
	T_STREQ(e.msg, "key: line 1: PEM block X: bad base64 body");
	const char *enc = "-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\n"
			  "DEK-Info: AES-128-CBC,00\n\nZm9v\n-----END RSA PRIVATE KEY-----\n";
	off = 0;
	T_EQ(pem_next(enc, strlen(enc), &off, &b, "key", &e), -EINVAL);
	T_STREQ(e.msg, "key: line 1: PEM block RSA PRIVATE KEY: encrypted keys are not supported");
	const char *nolabel = "-----BEGIN ";
	off = 0;
	T_EQ(pem_next(nolabel, strlen(nolabel), &off, &b, "x", &e), -EINVAL);
}

/* A certificate made by the openssl command: SANs DNS, 127.0.0.1, ::1, 198.18.0.2. */
static void test_ip_san_walk(void)
{
	int st = 0;
	char *pem = t_sh(&st,
			 "d=$(mktemp -d) && test/lib/tls-mkcerts.sh $d && cat $d/server.crt "
			 "$d/ca.crt; rm -rf $d");
	T_EQ(st, 0);
	if (!pem)
		return;
	size_t off = 0;
	struct pem_block srv, ca;
	struct err e = { 0 };
	T_EQ(pem_next(pem, strlen(pem), &off, &srv, "server.crt", &e), 1);
	T_EQ(pem_next(pem, strlen(pem), &off, &ca, "ca.crt", &e), 1);
	uint8_t a4[4], a6[16];
	inet_pton(AF_INET, "198.18.0.2", a4);
	T_EQ(tls_cert_has_ip_san(srv.der, srv.len, a4, 4), 1);
	inet_pton(AF_INET, "127.0.0.1", a4);
	T_EQ(tls_cert_has_ip_san(srv.der, srv.len, a4, 4), 1);
	inet_pton(AF_INET, "198.18.0.3", a4);
	T_EQ(tls_cert_has_ip_san(srv.der, srv.len, a4, 4), 0);
	inet_pton(AF_INET6, "::1", a6);
	T_EQ(tls_cert_has_ip_san(srv.der, srv.len, a6, 16), 1);
	inet_pton(AF_INET6, "2001:db8::1", a6);
	T_EQ(tls_cert_has_ip_san(srv.der, srv.len, a6, 16), 0);
	/* the CA has no SAN extension at all */
	T_EQ(tls_cert_has_ip_san(ca.der, ca.len, a4, 4), 0);
	/* every truncation is either "no" or malformed, never a read past the end */
	for (size_t n = 0; n < srv.len; n++) {
		uint8_t *cut = malloc(n ? n : 1);
		memcpy(cut, srv.der, n);
		int r = tls_cert_has_ip_san(cut, n, a4, 4);
		T_CHECK(r == 0 || r == -EINVAL);
		free(cut);
	}
	free(srv.der);
	free(ca.der);
	free(pem);
}

int main(void)
{
	T_RUN(test_base64_vectors);
	T_RUN(test_base64_rejects);
	T_RUN(test_pem_blocks);
	T_RUN(test_pem_errors);
	T_RUN(test_ip_san_walk);
	return t_done();
}
