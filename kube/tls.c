/* tls — BearSSL client behind the conn interface; see tls.h.
 *
 * We drive the BearSSL engine ourselves (no br_sslio): each step looks at the engine
 * state, writes pending records to the plain conn, reads records from it, and stops when
 * the state we want (application data to read or room to write) is there. Every socket
 * wait goes through conn_read_within/conn_write_within with what is left of the call's
 * deadline, so the handshake is bounded by the connect timeout and I/O by the io timeout.
 *
 * IP-address servers. BearSSL's "minimal" X.509 engine matches the expected name only
 * against DNS SANs (and the CN), never against iPAddress SANs; given "198.18.0.2" it
 * would look for a DNS name "198.18.0.2" and fail with a certificate that is right. So
 * tls_x509 below is an X.509 class that wraps the minimal engine: every call is
 * forwarded, and the first (end-entity) certificate's bytes are also kept. For an IP
 * literal the minimal engine gets no name (chain validation only; RFC 6066 forbids IPs
 * in SNI anyway), and when it reports the chain trusted we walk the kept DER to the
 * subjectAltName extension ourselves (tls_cert_has_ip_san) and require an iPAddress
 * entry equal to the server's address; otherwise the chain is rejected with
 * BR_ERR_X509_BAD_SERVER_NAME. The same wrapper implements insecure-skip-tls-verify by
 * not consulting the minimal engine at all and only decoding the end-entity public key.
 */
#include "kube/tls.h"

#include "kube/conn.h"
#include "kube/pem.h"
#include "lib/cursor.h"
#include "lib/err.h"
#include "lib/file.h"

#include <arpa/inet.h>
#include <bearssl.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define TLS_NAME_MAX 253
#define TLS_EE_MAX (16 * 1024)     /* end-entity certificate kept for the IP SAN check */
#define TLS_CLOSE_WAIT_MS 200      /* how long close() waits to send close_notify */
#define TLS_FILE_MAX (1024 * 1024) /* CA bundles and keys are far smaller */

struct tls_config {
	br_x509_trust_anchor *tas;   /* trust anchors; dn.data and key bytes malloc'd each */
	size_t ntas;                 /* used entries in tas */
	size_t tas_cap;              /* allocated entries in tas */
	br_x509_certificate *chain;  /* client chain, end-entity first; data malloc'd each */
	size_t nchain;               /* certificates in chain; 0 = no client identity */
	br_skey_decoder_context *key; /* decoded client private key (owns the key bytes) */
	unsigned issuer_key_type;    /* BR_KEYTYPE_RSA/EC of the client cert's signer */
	bool insecure;               /* insecure-skip-tls-verify */
	char server_name[TLS_NAME_MAX + 1]; /* tls-server-name, "" when unset */
};

/* ---- errors --------------------------------------------------------------------- */

struct br_err_name {
	int code;          /* BR_ERR_* */
	const char *name;  /* the macro's name */
	const char *text;  /* what it means, in words */
};

#define E(c, t) { c, #c, t }
static const struct br_err_name br_err_names[] = {
	E(BR_ERR_BAD_PARAM, "bad parameter"),
	E(BR_ERR_BAD_STATE, "bad engine state"),
	E(BR_ERR_UNSUPPORTED_VERSION, "server chose an unsupported protocol version"),
	E(BR_ERR_BAD_VERSION, "record version mismatch"),
	E(BR_ERR_BAD_LENGTH, "bad record length"),
	E(BR_ERR_TOO_LARGE, "record too large"),
	E(BR_ERR_BAD_MAC, "bad record MAC (data corrupted in transit)"),
	E(BR_ERR_NO_RANDOM, "no entropy for the random generator"),
	E(BR_ERR_UNKNOWN_TYPE, "unknown record type"),
	E(BR_ERR_UNEXPECTED, "unexpected message from the server"),
	E(BR_ERR_BAD_CCS, "bad ChangeCipherSpec"),
	E(BR_ERR_BAD_ALERT, "malformed alert"),
	E(BR_ERR_BAD_HANDSHAKE, "malformed handshake message (not a TLS server?)"),
	E(BR_ERR_OVERSIZED_ID, "session ID too long"),
	E(BR_ERR_BAD_CIPHER_SUITE, "server chose a cipher suite we did not offer"),
	E(BR_ERR_BAD_COMPRESSION, "server chose a compression we did not offer"),
	E(BR_ERR_BAD_FRAGLEN, "bad maximum fragment length"),
	E(BR_ERR_BAD_SECRENEG, "secure renegotiation failed"),
	E(BR_ERR_EXTRA_EXTENSION, "server sent an extension we did not ask for"),
	E(BR_ERR_BAD_SNI, "bad server name indication"),
	E(BR_ERR_BAD_HELLO_DONE, "malformed ServerHelloDone"),
	E(BR_ERR_LIMIT_EXCEEDED, "internal limit exceeded"),
	E(BR_ERR_BAD_FINISHED, "bad Finished message"),
	E(BR_ERR_RESUME_MISMATCH, "session resumption mismatch"),
	E(BR_ERR_INVALID_ALGORITHM, "unsupported or invalid algorithm"),
	E(BR_ERR_BAD_SIGNATURE, "bad signature in the handshake"),
	E(BR_ERR_WRONG_KEY_USAGE, "server key usage does not allow the chosen cipher suite"),
	E(BR_ERR_NO_CLIENT_AUTH, "server wants a client certificate and none is configured"),
	E(BR_ERR_IO, "I/O error"),
	E(BR_ERR_X509_INVALID_VALUE, "server certificate is malformed (invalid value)"),
	E(BR_ERR_X509_TRUNCATED, "server certificate is truncated"),
	E(BR_ERR_X509_EMPTY_CHAIN, "server sent no certificate"),
	E(BR_ERR_X509_INNER_TRUNC, "server certificate is malformed (inner truncation)"),
	E(BR_ERR_X509_BAD_TAG_CLASS, "server certificate is malformed (tag class)"),
	E(BR_ERR_X509_BAD_TAG_VALUE, "server certificate is malformed (tag value)"),
	E(BR_ERR_X509_INDEFINITE_LENGTH, "server certificate is malformed (indefinite length)"),
	E(BR_ERR_X509_EXTRA_ELEMENT, "server certificate is malformed (extra element)"),
	E(BR_ERR_X509_UNEXPECTED, "server certificate is malformed (unexpected element)"),
	E(BR_ERR_X509_NOT_CONSTRUCTED, "server certificate is malformed (not constructed)"),
	E(BR_ERR_X509_NOT_PRIMITIVE, "server certificate is malformed (not primitive)"),
	E(BR_ERR_X509_PARTIAL_BYTE, "server certificate is malformed (partial byte)"),
	E(BR_ERR_X509_BAD_BOOLEAN, "server certificate is malformed (boolean)"),
	E(BR_ERR_X509_OVERFLOW, "server certificate is malformed (value overflow)"),
	E(BR_ERR_X509_BAD_DN, "server certificate has an invalid distinguished name"),
	E(BR_ERR_X509_BAD_TIME, "server certificate has an invalid date"),
	E(BR_ERR_X509_UNSUPPORTED, "server certificate uses an unsupported feature"),
	E(BR_ERR_X509_LIMIT_EXCEEDED, "server certificate key or signature too large"),
	E(BR_ERR_X509_WRONG_KEY_TYPE, "server certificate has an unexpected key type"),
	E(BR_ERR_X509_BAD_SIGNATURE, "server certificate signature is invalid"),
	E(BR_ERR_X509_TIME_UNKNOWN, "current time unknown, cannot check validity"),
	E(BR_ERR_X509_EXPIRED, "server certificate expired or not yet valid"),
	E(BR_ERR_X509_DN_MISMATCH, "issuer/subject mismatch in the server's chain"),
	E(BR_ERR_X509_BAD_SERVER_NAME, "server certificate does not match the server name"),
	E(BR_ERR_X509_CRITICAL_EXTENSION, "server certificate has an unknown critical extension"),
	E(BR_ERR_X509_NOT_CA, "an issuer in the server's chain is not a CA"),
	E(BR_ERR_X509_FORBIDDEN_KEY_USAGE, "server certificate key usage forbids this use"),
	E(BR_ERR_X509_WEAK_PUBLIC_KEY, "server certificate public key is too small"),
	E(BR_ERR_X509_NOT_TRUSTED, "server certificate not trusted"),
};
#undef E

static const char *alert_name(int a)
{
	switch (a) {
	case 0: return "close_notify";
	case 10: return "unexpected_message";
	case 20: return "bad_record_mac";
	case 22: return "record_overflow";
	case 40: return "handshake_failure";
	case 42: return "bad_certificate";
	case 43: return "unsupported_certificate";
	case 44: return "certificate_revoked";
	case 45: return "certificate_expired";
	case 46: return "certificate_unknown";
	case 47: return "illegal_parameter";
	case 48: return "unknown_ca";
	case 49: return "access_denied";
	case 50: return "decode_error";
	case 51: return "decrypt_error";
	case 70: return "protocol_version";
	case 71: return "insufficient_security";
	case 80: return "internal_error";
	case 86: return "inappropriate_fallback";
	case 90: return "user_canceled";
	case 109: return "missing_extension";
	case 110: return "unsupported_extension";
	case 112: return "unrecognized_name";
	case 116: return "certificate_required";
	case 120: return "no_application_protocol";
	}
	return "unknown alert";
}

const char *tls_strerror(int br_err, char *buf, size_t n)
{
	if (br_err >= BR_ERR_SEND_FATAL_ALERT) {
		int a = br_err - BR_ERR_SEND_FATAL_ALERT;
		snprintf(buf, n, "we sent fatal alert %s (BR_ERR_SEND_FATAL_ALERT+%d)",
			 alert_name(a), a);
		return buf;
	}
	if (br_err >= BR_ERR_RECV_FATAL_ALERT) {
		int a = br_err - BR_ERR_RECV_FATAL_ALERT;
		snprintf(buf, n, "server sent fatal alert %s (BR_ERR_RECV_FATAL_ALERT+%d)",
			 alert_name(a), a);
		return buf;
	}
	for (size_t i = 0; i < sizeof(br_err_names) / sizeof(br_err_names[0]); i++)
		if (br_err_names[i].code == br_err) {
			snprintf(buf, n, "%s (%s)", br_err_names[i].text, br_err_names[i].name);
			return buf;
		}
	snprintf(buf, n, "BearSSL error %d", br_err);
	return buf;
}

/* ---- DER walk to the iPAddress SANs ---------------------------------------------- */

/* Read one DER element: tag (low-tag-number form only) and a definite length. */
static bool der_next(struct cur *c, uint8_t *tag, struct cur *val)
{
	uint8_t t, l;
	if (!cur_u8(c, &t) || !cur_u8(c, &l) || (t & 0x1f) == 0x1f)
		return false;
	size_t len = l;
	if (l & 0x80) {
		unsigned nb = l & 0x7f;
		if (nb == 0 || nb > 3)
			return false;
		len = 0;
		for (unsigned i = 0; i < nb; i++) {
			uint8_t b;
			if (!cur_u8(c, &b))
				return false;
			len = len << 8 | b;
		}
	}
	*tag = t;
	return cur_sub(c, len, val);
}

int tls_cert_has_ip_san(const uint8_t *der, size_t len, const uint8_t *ip, size_t iplen)
{
	static const uint8_t san_oid[] = { 0x55, 0x1d, 0x11 }; /* 2.5.29.17 */
	struct cur c, cert, tbs, el;
	uint8_t tag;

	cur_init(&c, der, len);
	if (!der_next(&c, &tag, &cert) || tag != 0x30)
		return -EINVAL;
	if (!der_next(&cert, &tag, &tbs) || tag != 0x30)
		return -EINVAL;
	/* tbsCertificate: [0] version, serial, sigalg, issuer, validity, subject, spki,
	 * [1] issuerUID, [2] subjectUID, [3] extensions — we only want [3]. */
	while (cur_left(&tbs) > 0) {
		if (!der_next(&tbs, &tag, &el))
			return -EINVAL;
		if (tag != 0xa3)
			continue;
		struct cur exts, ext;
		if (!der_next(&el, &tag, &exts) || tag != 0x30)
			return -EINVAL;
		while (cur_left(&exts) > 0) {
			struct cur oid, v, names, gn;
			if (!der_next(&exts, &tag, &ext) || tag != 0x30)
				return -EINVAL;
			if (!der_next(&ext, &tag, &oid) || tag != 0x06)
				return -EINVAL;
			if (cur_left(&oid) != sizeof(san_oid) ||
			    memcmp(oid.p + oid.off, san_oid, sizeof(san_oid)) != 0)
				continue;
			if (!der_next(&ext, &tag, &v))
				return -EINVAL;
			if (tag == 0x01 && !der_next(&ext, &tag, &v)) /* critical flag */
				return -EINVAL;
			if (tag != 0x04 || !der_next(&v, &tag, &names) || tag != 0x30)
				return -EINVAL;
			while (cur_left(&names) > 0) {
				if (!der_next(&names, &tag, &gn))
					return -EINVAL;
				if (tag == 0x87 && cur_left(&gn) == iplen &&
				    memcmp(gn.p + gn.off, ip, iplen) == 0)
					return 1;
			}
			return 0;
		}
		return 0;
	}
	return 0;
}

/* ---- the X.509 class wrapping the minimal engine ---------------------------------- */

struct tls_x509 {
	const br_x509_class *vtable;     /* &tls_x509_vtable; first, as BearSSL requires */
	br_x509_minimal_context minimal; /* chain validation (and DNS name check) */
	br_x509_decoder_context ee_dec;  /* insecure mode: decodes the end-entity key */
	bool insecure;                   /* accept any chain, just take the EE key */
	bool check_ip;                   /* require an iPAddress SAN equal to ip */
	uint8_t ip[16];                  /* the server address, network order */
	size_t iplen;                    /* 4 or 16 */
	unsigned cert_index;             /* certificate being received, 0 = end-entity */
	uint8_t *ee;                     /* check_ip: the end-entity DER (TLS_EE_MAX) */
	size_t ee_len;                   /* bytes in ee */
	bool ee_too_big;                 /* the end-entity did not fit in ee */
	bool ip_rejected;                /* end_chain failed because of the IP check */
};

static struct tls_x509 *x_of(const br_x509_class **ctx)
{
	return (struct tls_x509 *)(void *)ctx;
}

static void x_start_chain(const br_x509_class **ctx, const char *server_name)
{
	struct tls_x509 *x = x_of(ctx);
	x->cert_index = 0;
	x->ee_len = 0;
	x->ee_too_big = false;
	x->ip_rejected = false;
	if (!x->insecure)
		x->minimal.vtable->start_chain(&x->minimal.vtable, server_name);
}

static void x_start_cert(const br_x509_class **ctx, uint32_t length)
{
	struct tls_x509 *x = x_of(ctx);
	if (x->insecure) {
		if (x->cert_index == 0)
			br_x509_decoder_init(&x->ee_dec, NULL, NULL);
		return;
	}
	x->minimal.vtable->start_cert(&x->minimal.vtable, length);
}

static void x_append(const br_x509_class **ctx, const unsigned char *buf, size_t len)
{
	struct tls_x509 *x = x_of(ctx);
	if (x->insecure) {
		if (x->cert_index == 0)
			br_x509_decoder_push(&x->ee_dec, buf, len);
		return;
	}
	x->minimal.vtable->append(&x->minimal.vtable, buf, len);
	if (x->check_ip && x->cert_index == 0) {
		if (!x->ee || len > TLS_EE_MAX - x->ee_len) {
			x->ee_too_big = true;
		} else {
			memcpy(x->ee + x->ee_len, buf, len);
			x->ee_len += len;
		}
	}
}

static void x_end_cert(const br_x509_class **ctx)
{
	struct tls_x509 *x = x_of(ctx);
	if (!x->insecure)
		x->minimal.vtable->end_cert(&x->minimal.vtable);
	x->cert_index++;
}

static unsigned x_end_chain(const br_x509_class **ctx)
{
	struct tls_x509 *x = x_of(ctx);
	if (x->insecure) {
		if (x->cert_index == 0)
			return BR_ERR_X509_EMPTY_CHAIN;
		if (!br_x509_decoder_get_pkey(&x->ee_dec)) {
			int r = br_x509_decoder_last_error(&x->ee_dec);
			return r ? (unsigned)r : BR_ERR_X509_TRUNCATED;
		}
		return 0;
	}
	unsigned r = x->minimal.vtable->end_chain(&x->minimal.vtable);
	if (r != 0 || !x->check_ip)
		return r;
	if (x->ee_too_big)
		return BR_ERR_X509_LIMIT_EXCEEDED;
	if (tls_cert_has_ip_san(x->ee, x->ee_len, x->ip, x->iplen) != 1) {
		x->ip_rejected = true;
		return BR_ERR_X509_BAD_SERVER_NAME;
	}
	return 0;
}

static const br_x509_pkey *x_get_pkey(const br_x509_class *const *ctx, unsigned *usages)
{
	struct tls_x509 *x = (struct tls_x509 *)(void *)ctx;
	if (x->insecure) {
		if (usages)
			*usages = BR_KEYTYPE_KEYX | BR_KEYTYPE_SIGN;
		return br_x509_decoder_get_pkey(&x->ee_dec);
	}
	return x->minimal.vtable->get_pkey(&x->minimal.vtable, usages);
}

static const br_x509_class tls_x509_vtable = {
	.context_size = sizeof(struct tls_x509),
	.start_chain = x_start_chain,
	.start_cert = x_start_cert,
	.append = x_append,
	.end_cert = x_end_cert,
	.end_chain = x_end_chain,
	.get_pkey = x_get_pkey,
};

/* ---- config ------------------------------------------------------------------------ */

struct tls_config *tls_config_new(void)
{
	return calloc(1, sizeof(struct tls_config));
}

static void free_client(struct tls_config *cfg)
{
	for (size_t i = 0; i < cfg->nchain; i++)
		free(cfg->chain[i].data);
	free(cfg->chain);
	cfg->chain = NULL;
	cfg->nchain = 0;
	free(cfg->key);
	cfg->key = NULL;
}

void tls_config_free(struct tls_config *cfg)
{
	if (!cfg)
		return;
	for (size_t i = 0; i < cfg->ntas; i++) {
		free(cfg->tas[i].dn.data);
		if (cfg->tas[i].pkey.key_type == BR_KEYTYPE_RSA) {
			free(cfg->tas[i].pkey.key.rsa.n);
			free(cfg->tas[i].pkey.key.rsa.e);
		} else {
			free(cfg->tas[i].pkey.key.ec.q);
		}
	}
	free(cfg->tas);
	free_client(cfg);
	free(cfg);
}

struct dnbuf {
	uint8_t *p;  /* the DN so far, malloc'd */
	size_t len;  /* bytes in p */
	bool oom;    /* an append failed */
};

static void dn_append(void *ctx, const void *buf, size_t len)
{
	struct dnbuf *d = ctx;
	if (d->oom || len == 0)
		return;
	uint8_t *np = realloc(d->p, d->len + len);
	if (!np) {
		d->oom = true;
		return;
	}
	memcpy(np + d->len, buf, len);
	d->p = np;
	d->len += len;
}

static void *dup_bytes(const void *p, size_t n)
{
	void *q = malloc(n ? n : 1);
	if (q && n)
		memcpy(q, p, n);
	return q;
}

/* Turn one DER certificate into a trust anchor appended to cfg. */
static int add_anchor(struct tls_config *cfg, const uint8_t *der, size_t len, const char *what,
		      unsigned idx, struct err *e)
{
	br_x509_decoder_context dc;
	struct dnbuf dn = { 0 };
	char why[160];

	br_x509_decoder_init(&dc, dn_append, &dn);
	br_x509_decoder_push(&dc, der, len);
	const br_x509_pkey *pk = br_x509_decoder_get_pkey(&dc);
	if (!pk || dn.oom) {
		int be = br_x509_decoder_last_error(&dc);
		free(dn.p);
		if (dn.oom)
			return err_set(e, ENOMEM, "%s: certificate %u", what, idx);
		return err_setx(e, EINVAL, "%s: certificate %u: cannot decode: %s", what, idx,
				tls_strerror(be ? be : BR_ERR_X509_TRUNCATED, why, sizeof(why)));
	}
	if (cfg->ntas == cfg->tas_cap) {
		size_t nc = cfg->tas_cap ? cfg->tas_cap * 2 : 4;
		br_x509_trust_anchor *nt = realloc(cfg->tas, nc * sizeof(*nt));
		if (!nt) {
			free(dn.p);
			return err_set(e, ENOMEM, "%s: certificate %u", what, idx);
		}
		cfg->tas = nt;
		cfg->tas_cap = nc;
	}
	br_x509_trust_anchor ta = { 0 };
	ta.dn.data = dn.p;
	ta.dn.len = dn.len;
	ta.flags = br_x509_decoder_isCA(&dc) ? BR_X509_TA_CA : 0;
	ta.pkey.key_type = pk->key_type;
	bool ok;
	if (pk->key_type == BR_KEYTYPE_RSA) {
		ta.pkey.key.rsa.n = dup_bytes(pk->key.rsa.n, pk->key.rsa.nlen);
		ta.pkey.key.rsa.nlen = pk->key.rsa.nlen;
		ta.pkey.key.rsa.e = dup_bytes(pk->key.rsa.e, pk->key.rsa.elen);
		ta.pkey.key.rsa.elen = pk->key.rsa.elen;
		ok = ta.pkey.key.rsa.n && ta.pkey.key.rsa.e;
	} else {
		ta.pkey.key.ec.curve = pk->key.ec.curve;
		ta.pkey.key.ec.q = dup_bytes(pk->key.ec.q, pk->key.ec.qlen);
		ta.pkey.key.ec.qlen = pk->key.ec.qlen;
		ok = ta.pkey.key.ec.q != NULL;
	}
	cfg->tas[cfg->ntas++] = ta; /* freed with cfg even when a copy failed */
	if (!ok)
		return err_set(e, ENOMEM, "%s: certificate %u", what, idx);
	return 0;
}

/* Call fn for each certificate in data (PEM CERTIFICATE blocks, or one DER blob). */
typedef int (*cert_fn)(struct tls_config *cfg, const uint8_t *der, size_t len,
		       const char *what, unsigned idx, struct err *e);

static int each_cert(struct tls_config *cfg, const void *data, size_t len, const char *what,
		     cert_fn fn, unsigned *count, struct err *e)
{
	*count = 0;
	if (!pem_is_pem(data, len)) {
		if (len == 0 || ((const uint8_t *)data)[0] != 0x30)
			return err_setx(e, EINVAL, "%s: neither PEM nor a DER certificate", what);
		*count = 1;
		return fn(cfg, data, len, what, 1, e);
	}
	size_t off = 0;
	struct pem_block b;
	int r;
	while ((r = pem_next(data, len, &off, &b, what, e)) == 1) {
		if (strcmp(b.label, "CERTIFICATE") == 0 ||
		    strcmp(b.label, "TRUSTED CERTIFICATE") == 0) {
			(*count)++;
			r = fn(cfg, b.der, b.len, what, *count, e);
		}
		free(b.der);
		if (r < 0)
			return r;
	}
	if (r < 0)
		return r;
	if (*count == 0)
		return err_setx(e, EINVAL, "%s: no CERTIFICATE block found", what);
	return 0;
}

int tls_config_add_ca(struct tls_config *cfg, const void *data, size_t len, const char *what,
		      struct err *e)
{
	unsigned n;
	return each_cert(cfg, data, len, what, add_anchor, &n, e);
}

int tls_config_add_ca_file(struct tls_config *cfg, const char *path, struct err *e)
{
	char *buf = NULL;
	size_t len = 0;
	int r = file_read(path, TLS_FILE_MAX, &buf, &len, e);
	if (r < 0)
		return r;
	r = tls_config_add_ca(cfg, buf, len, path, e);
	free(buf);
	return r;
}

static int add_chain_cert(struct tls_config *cfg, const uint8_t *der, size_t len,
			  const char *what, unsigned idx, struct err *e)
{
	br_x509_certificate *nc = realloc(cfg->chain, (cfg->nchain + 1) * sizeof(*nc));
	if (!nc)
		return err_set(e, ENOMEM, "%s: certificate %u", what, idx);
	cfg->chain = nc;
	nc[cfg->nchain].data = dup_bytes(der, len);
	nc[cfg->nchain].data_len = len;
	if (!nc[cfg->nchain].data)
		return err_set(e, ENOMEM, "%s: certificate %u", what, idx);
	cfg->nchain++;
	return 0;
}

/* Strip leading zero bytes of a big-endian integer. */
static void trim0(const uint8_t **p, size_t *n)
{
	while (*n > 0 && **p == 0) {
		(*p)++;
		(*n)--;
	}
}

/* Is the decoded private key the one for the public key in the client certificate? */
static int key_matches_cert(const struct tls_config *cfg, const char *key_what, struct err *e)
{
	br_x509_decoder_context dc;
	br_x509_decoder_init(&dc, NULL, NULL);
	br_x509_decoder_push(&dc, cfg->chain[0].data, cfg->chain[0].data_len);
	const br_x509_pkey *pk = br_x509_decoder_get_pkey(&dc);
	char why[160];
	if (!pk)
		return err_setx(e, EINVAL, "client certificate: cannot decode: %s",
				tls_strerror(br_x509_decoder_last_error(&dc), why, sizeof(why)));
	int kt = br_skey_decoder_key_type(cfg->key);
	if ((int)pk->key_type != kt)
		return err_setx(e, EINVAL, "%s: client key (%s) does not match client certificate (%s)",
				key_what, kt == BR_KEYTYPE_RSA ? "RSA" : "EC",
				pk->key_type == BR_KEYTYPE_RSA ? "RSA" : "EC");
	bool same = false;
	if (kt == BR_KEYTYPE_RSA) {
		const br_rsa_private_key *sk = br_skey_decoder_get_rsa(cfg->key);
		br_rsa_compute_modulus cm = br_rsa_compute_modulus_get_default();
		size_t ml = cm(NULL, sk);
		uint8_t *mod = ml ? malloc(ml) : NULL;
		if (ml && !mod)
			return err_set(e, ENOMEM, "%s", key_what);
		if (mod && cm(mod, sk) == ml) {
			const uint8_t *a = mod, *b = pk->key.rsa.n;
			size_t al = ml, bl = pk->key.rsa.nlen;
			trim0(&a, &al);
			trim0(&b, &bl);
			same = al == bl && memcmp(a, b, al) == 0;
		}
		free(mod);
	} else {
		const br_ec_private_key *sk = br_skey_decoder_get_ec(cfg->key);
		uint8_t kbuf[BR_EC_KBUF_PUB_MAX_SIZE];
		br_ec_public_key pub;
		size_t ql = br_ec_compute_pub(br_ec_get_default(), &pub, kbuf, sk);
		same = ql != 0 && pub.curve == pk->key.ec.curve && ql == pk->key.ec.qlen &&
		       memcmp(pub.q, pk->key.ec.q, ql) == 0;
	}
	if (!same)
		return err_setx(e, EINVAL, "%s: client key does not match client certificate",
				key_what);
	return 0;
}

/* Decode the first private key in key (PEM) into cfg->key. */
static int load_key(struct tls_config *cfg, const void *key, size_t keylen, const char *what,
		    struct err *e)
{
	size_t off = 0;
	struct pem_block b;
	int r;
	char why[160];
	if (!pem_is_pem(key, keylen))
		return err_setx(e, EINVAL, "%s: private key is not PEM", what);
	while ((r = pem_next(key, keylen, &off, &b, what, e)) == 1) {
		if (strcmp(b.label, "RSA PRIVATE KEY") == 0 ||
		    strcmp(b.label, "EC PRIVATE KEY") == 0 || strcmp(b.label, "PRIVATE KEY") == 0)
			break;
		free(b.der);
	}
	if (r < 0)
		return r;
	if (r == 0)
		return err_setx(e, EINVAL,
				"%s: no RSA PRIVATE KEY, EC PRIVATE KEY or PRIVATE KEY block found",
				what);
	cfg->key = malloc(sizeof(*cfg->key));
	if (!cfg->key) {
		free(b.der);
		return err_set(e, ENOMEM, "%s", what);
	}
	br_skey_decoder_init(cfg->key);
	br_skey_decoder_push(cfg->key, b.der, b.len);
	memset(b.der, 0, b.len);
	free(b.der);
	int be = br_skey_decoder_last_error(cfg->key);
	int kt = br_skey_decoder_key_type(cfg->key);
	if (be != 0 || (kt != BR_KEYTYPE_RSA && kt != BR_KEYTYPE_EC))
		return err_setx(e, EINVAL, "%s: %s: cannot decode (RSA or EC keys only): %s", what,
				b.label, be ? tls_strerror(be, why, sizeof(why)) : "no key");
	return 0;
}

int tls_config_set_client(struct tls_config *cfg, const void *cert, size_t certlen,
			  const char *cert_what, const void *key, size_t keylen,
			  const char *key_what, struct err *e)
{
	unsigned n;
	free_client(cfg);
	int r = each_cert(cfg, cert, certlen, cert_what, add_chain_cert, &n, e);
	if (r == 0)
		r = load_key(cfg, key, keylen, key_what, e);
	if (r == 0)
		r = key_matches_cert(cfg, key_what, e);
	if (r == 0) {
		br_x509_decoder_context dc;
		br_x509_decoder_init(&dc, NULL, NULL);
		br_x509_decoder_push(&dc, cfg->chain[0].data, cfg->chain[0].data_len);
		cfg->issuer_key_type = br_x509_decoder_get_signer_key_type(&dc);
	}
	if (r < 0) {
		if (cfg->key)
			memset(cfg->key, 0, sizeof(*cfg->key));
		free_client(cfg);
	}
	return r;
}

int tls_config_set_server_name(struct tls_config *cfg, const char *name, struct err *e)
{
	if (!name) {
		cfg->server_name[0] = '\0';
		return 0;
	}
	size_t l = strlen(name);
	if (l > TLS_NAME_MAX)
		return err_setx(e, ENAMETOOLONG, "tls-server-name: longer than %d characters",
				TLS_NAME_MAX);
	memcpy(cfg->server_name, name, l + 1);
	return 0;
}

void tls_config_set_insecure(struct tls_config *cfg, bool insecure)
{
	cfg->insecure = insecure;
}

bool tls_config_insecure(const struct tls_config *cfg)
{
	return cfg->insecure;
}

size_t tls_config_num_anchors(const struct tls_config *cfg)
{
	return cfg->ntas;
}

bool tls_config_has_client(const struct tls_config *cfg)
{
	return cfg->nchain > 0 && cfg->key;
}

const char *tls_system_seeder(void)
{
	const char *name = NULL;
	if (!br_prng_seeder_system(&name))
		return NULL;
	return name;
}

/* ---- the TLS conn -------------------------------------------------------------------- */

struct tls_conn {
	br_ssl_client_context sc;  /* BearSSL client; sc.eng is the engine */
	struct tls_x509 x;         /* certificate checker installed in the engine */
	uint8_t *iobuf;            /* BR_SSL_BUFSIZE_BIDI bytes, records in and out */
	struct conn *inner;        /* the plain conn (owned) */
	const char *peer;          /* "host:port" for messages (the outer conn's) */
	char name[TLS_NAME_MAX + 3]; /* the name verified, for messages ("" if insecure) */
	bool handshaken;           /* the handshake completed */
	bool broken;               /* a transport error happened; the stream is unusable */
	bool eof;                  /* the server closed TCP without close_notify */
	bool got_bytes;            /* anything was received yet */
	bool saw_http;             /* the first bytes received were "HTTP/" */
	bool has_client;           /* a client certificate is configured (for messages) */
};

static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int left_ms(int64_t deadline)
{
	if (deadline < 0)
		return -1;
	int64_t d = deadline - mono_ms();
	return d < 0 ? 0 : d > 0x7fffffff ? 0x7fffffff : (int)d;
}

/* A transport error from the plain conn ("conn PEER: read: timed out ..."): say it
 * as ours ("tls PEER: handshake: read: timed out ..."), keeping the code. */
static int io_fail(struct tls_conn *t, const char *what, struct err *e)
{
	if (!e)
		return -EIO;
	char pre[CONN_PEER_MAX + 8];
	int n = snprintf(pre, sizeof(pre), "conn %s: ", t->peer);
	if (n > 0 && strncmp(e->msg, pre, (size_t)n) == 0) {
		char rest[ERR_MSG_MAX];
		snprintf(rest, sizeof(rest), "%s", e->msg + n);
		size_t wl = strlen(what);
		if (strncmp(rest, what, wl) == 0 && rest[wl] == ':') /* "read: read: ..." */
			return err_setx(e, e->code, "tls %s: %s", t->peer, rest);
		return err_setx(e, e->code, "tls %s: %s: %s", t->peer, what, rest);
	}
	return err_prefix(e, "tls %s: %s", t->peer, what);
}

/* The engine failed or closed with br error be: describe it. */
static int tls_fail(struct tls_conn *t, int be, const char *what, struct err *e)
{
	char why[300], buf[160];
	if (be == BR_ERR_X509_BAD_SERVER_NAME && t->x.ip_rejected)
		snprintf(why, sizeof(why),
			 "server certificate has no IP address SAN %s (BR_ERR_X509_BAD_SERVER_NAME)",
			 t->name);
	else if (be == BR_ERR_X509_BAD_SERVER_NAME)
		snprintf(why, sizeof(why),
			 "server certificate does not match name \"%s\" (BR_ERR_X509_BAD_SERVER_NAME)",
			 t->name);
	else if (t->saw_http)
		snprintf(why, sizeof(why), "the server answered in plain HTTP, not TLS (%s)",
			 tls_strerror(be, buf, sizeof(buf)));
	else if (!t->handshaken && !t->has_client && be > BR_ERR_RECV_FATAL_ALERT &&
		 be < BR_ERR_SEND_FATAL_ALERT)
		snprintf(why, sizeof(why), "%s; no client certificate is configured, and the "
			 "server may require one", tls_strerror(be, buf, sizeof(buf)));
	else
		tls_strerror(be, why, sizeof(why));
	return err_setx(e, EPROTO, "tls %s: %s failed: %s", t->peer, what, why);
}

/* A write failed during the handshake (EPIPE, ECONNRESET): servers that reject us send
 * an alert and close at once, while we may still be sending our flight. Feed the engine
 * whatever already arrived, without waiting; true when that closed it with an error
 * (the alert), which says far more than "Broken pipe". */
static bool salvage_alert(struct tls_conn *t)
{
	br_ssl_engine_context *eng = &t->sc.eng;
	for (unsigned i = 0; i < 64; i++) {
		unsigned st = br_ssl_engine_current_state(eng);
		if (st & BR_SSL_CLOSED)
			return br_ssl_engine_last_error(eng) != BR_ERR_OK;
		if (!(st & BR_SSL_RECVREC))
			return false;
		size_t len;
		unsigned char *b = br_ssl_engine_recvrec_buf(eng, &len);
		ssize_t r = conn_read_within(t->inner, b, len, 0, NULL);
		if (r <= 0)
			return false;
		br_ssl_engine_recvrec_ack(eng, (size_t)r);
	}
	return false;
}

/* Run the engine until its state has one of `want`. Returns 1 when it does, 0 when the
 * connection is closed (close_notify, or EOF from the peer after the handshake), -errno
 * on failure. */
static int run_until(struct tls_conn *t, unsigned want, int64_t deadline, const char *what,
		     struct err *e)
{
	br_ssl_engine_context *eng = &t->sc.eng;
	if (t->broken)
		return err_setx(e, EPIPE, "tls %s: %s: connection unusable after an earlier error",
				t->peer, what);
	if (t->eof)
		return 0;
	for (;;) {
		unsigned st = br_ssl_engine_current_state(eng);
		if (st & BR_SSL_CLOSED) {
			int be = br_ssl_engine_last_error(eng);
			return be == BR_ERR_OK ? 0 : tls_fail(t, be, what, e);
		}
		if (st & BR_SSL_SENDREC) {
			size_t len;
			unsigned char *b = br_ssl_engine_sendrec_buf(eng, &len);
			int r = conn_write_within(t->inner, b, len, left_ms(deadline), e);
			if (r < 0 && r != -ETIMEDOUT && !t->handshaken && salvage_alert(t))
				return tls_fail(t, br_ssl_engine_last_error(eng), what, e);
			if (r < 0) {
				t->broken = true;
				return io_fail(t, what, e);
			}
			br_ssl_engine_sendrec_ack(eng, len);
			continue;
		}
		if (st & want)
			return 1;
		if (st & BR_SSL_RECVREC) {
			size_t len;
			unsigned char *b = br_ssl_engine_recvrec_buf(eng, &len);
			ssize_t r = conn_read_within(t->inner, b, len, left_ms(deadline), e);
			if (r < 0) {
				t->broken = true;
				return io_fail(t, what, e);
			}
			if (r == 0) {
				t->eof = true;
				if (t->handshaken)
					return 0;
				return err_setx(e, ECONNRESET,
						"tls %s: %s failed: connection closed by the server",
						t->peer, what);
			}
			if (!t->handshaken && !t->got_bytes && r >= 5 && memcmp(b, "HTTP/", 5) == 0)
				t->saw_http = true;
			t->got_bytes = true;
			br_ssl_engine_recvrec_ack(eng, (size_t)r);
			continue;
		}
		/* Neither records to move nor the state we want: push out buffered
		 * application data; if even that changes nothing, we are stuck. */
		br_ssl_engine_flush(eng, 0);
		if (br_ssl_engine_current_state(eng) == st)
			return err_setx(e, EPROTO, "tls %s: %s failed: engine stalled in state 0x%x",
					t->peer, what, st);
	}
}

static ssize_t tls_read(void *impl, void *buf, size_t n, int timeout_ms, struct err *e)
{
	struct tls_conn *t = impl;
	if (n == 0)
		return err_setx(e, EINVAL, "tls %s: read: zero-length buffer", t->peer);
	int64_t deadline = timeout_ms < 0 ? -1 : mono_ms() + timeout_ms;
	int r = run_until(t, BR_SSL_RECVAPP, deadline, "read", e);
	if (r <= 0)
		return r;
	size_t len;
	unsigned char *b = br_ssl_engine_recvapp_buf(&t->sc.eng, &len);
	if (len > n)
		len = n;
	memcpy(buf, b, len);
	br_ssl_engine_recvapp_ack(&t->sc.eng, len);
	return (ssize_t)len;
}

static int tls_write(void *impl, const void *buf, size_t n, int timeout_ms, struct err *e)
{
	struct tls_conn *t = impl;
	br_ssl_engine_context *eng = &t->sc.eng;
	int64_t deadline = timeout_ms < 0 ? -1 : mono_ms() + timeout_ms;
	const uint8_t *p = buf;
	while (n > 0) {
		int r = run_until(t, BR_SSL_SENDAPP, deadline, "write", e);
		if (r == 0)
			return err_setx(e, EPIPE, "tls %s: write: connection closed", t->peer);
		if (r < 0)
			return r;
		size_t len;
		unsigned char *b = br_ssl_engine_sendapp_buf(eng, &len);
		if (len > n)
			len = n;
		memcpy(b, p, len);
		br_ssl_engine_sendapp_ack(eng, len);
		p += len;
		n -= len;
	}
	br_ssl_engine_flush(eng, 0);
	/* Push every record out: wait until nothing is left to send. */
	while (br_ssl_engine_current_state(eng) & BR_SSL_SENDREC) {
		size_t len;
		unsigned char *b = br_ssl_engine_sendrec_buf(eng, &len);
		int r = conn_write_within(t->inner, b, len, left_ms(deadline), e);
		if (r < 0) {
			t->broken = true;
			return io_fail(t, "write", e);
		}
		br_ssl_engine_sendrec_ack(eng, len);
	}
	return 0;
}

static bool tls_pending(void *impl)
{
	struct tls_conn *t = impl;
	return (br_ssl_engine_current_state(&t->sc.eng) & BR_SSL_RECVAPP) != 0;
}

static void tls_free(struct tls_conn *t)
{
	conn_close(t->inner);
	free(t->iobuf);
	free(t->x.ee);
	free(t);
}

static void tls_close(void *impl)
{
	struct tls_conn *t = impl;
	br_ssl_engine_context *eng = &t->sc.eng;
	if (t->handshaken && !t->broken && !t->eof &&
	    !(br_ssl_engine_current_state(eng) & BR_SSL_CLOSED)) {
		/* Best effort close_notify, briefly: the server does not need it. */
		br_ssl_engine_close(eng);
		int64_t deadline = mono_ms() + TLS_CLOSE_WAIT_MS;
		while (br_ssl_engine_current_state(eng) & BR_SSL_SENDREC) {
			size_t len;
			unsigned char *b = br_ssl_engine_sendrec_buf(eng, &len);
			if (conn_write_within(t->inner, b, len, left_ms(deadline), NULL) < 0)
				break;
			br_ssl_engine_sendrec_ack(eng, len);
		}
	}
	tls_free(t);
}

static const struct conn_ops tls_ops = {
	.read = tls_read,
	.write = tls_write,
	.pending = tls_pending,
	.close = tls_close,
};

/* Our client profile (instead of br_ssl_client_init_full, which links every suite BearSSL
 * has): TLS 1.2 only, ECDHE key exchange with ECDSA or RSA certificates, AES-GCM and
 * ChaCha20-Poly1305 — what the Kubernetes API server (Go crypto/tls) offers by default —
 * and no CBC, 3DES, RC4-era or static-RSA suites. This keeps dist/kvnet smaller. */
static void client_init(br_ssl_client_context *cc, br_x509_minimal_context *xc,
			const br_x509_trust_anchor *tas, size_t ntas)
{
	static const uint16_t suites[] = {
		BR_TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
		BR_TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
		BR_TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
		BR_TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
		BR_TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
		BR_TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
	};
	static const struct {
		int id;                        /* br_*_ID */
		const br_hash_class *vtable;   /* implementation */
		bool engine;                   /* also for handshake signatures */
	} hashes[] = {
		{ br_sha1_ID, &br_sha1_vtable, false }, /* old CA signatures only */
		{ br_sha224_ID, &br_sha224_vtable, false },
		{ br_sha256_ID, &br_sha256_vtable, true },
		{ br_sha384_ID, &br_sha384_vtable, true },
		{ br_sha512_ID, &br_sha512_vtable, true },
	};

	br_ssl_client_zero(cc);
	br_ssl_engine_set_versions(&cc->eng, BR_TLS12, BR_TLS12);
	br_ssl_engine_set_suites(&cc->eng, suites, sizeof(suites) / sizeof(suites[0]));
	br_ssl_engine_set_default_ec(&cc->eng);
	br_x509_minimal_init(xc, &br_sha256_vtable, tas, ntas);
	for (size_t i = 0; i < sizeof(hashes) / sizeof(hashes[0]); i++) {
		if (hashes[i].engine)
			br_ssl_engine_set_hash(&cc->eng, hashes[i].id, hashes[i].vtable);
		br_x509_minimal_set_hash(xc, hashes[i].id, hashes[i].vtable);
	}
	br_x509_minimal_set_rsa(xc, br_rsa_pkcs1_vrfy_get_default());
	br_x509_minimal_set_ecdsa(xc, br_ec_get_default(), br_ecdsa_vrfy_asn1_get_default());
	br_ssl_engine_set_default_rsavrfy(&cc->eng);
	br_ssl_engine_set_default_ecdsa(&cc->eng);
	br_ssl_engine_set_prf_sha256(&cc->eng, &br_tls12_sha256_prf);
	br_ssl_engine_set_prf_sha384(&cc->eng, &br_tls12_sha384_prf);
	br_ssl_engine_set_default_aes_gcm(&cc->eng);
	br_ssl_engine_set_default_chapol(&cc->eng);
}

int tls_wrap(struct conn **c, const struct tls_config *cfg, const char *server_name,
	     struct err *e)
{
	struct conn *inner = *c;
	struct conn *outer = NULL;
	struct tls_conn *t = NULL;
	char host[TLS_NAME_MAX + 1];
	int r;

	*c = NULL;
	const char *name = cfg->server_name[0] ? cfg->server_name : server_name ? server_name : "";
	size_t nl = strlen(name);
	if (nl >= 2 && name[0] == '[' && name[nl - 1] == ']') {
		name++;
		nl -= 2;
	}
	if (nl > TLS_NAME_MAX) {
		r = err_setx(e, ENAMETOOLONG, "tls %s: server name too long", inner->peer);
		goto fail;
	}
	memcpy(host, name, nl);
	host[nl] = '\0';
	if (!cfg->insecure && host[0] == '\0') {
		r = err_setx(e, EINVAL, "tls %s: no server name to verify the certificate against",
			     inner->peer);
		goto fail;
	}
	if (!cfg->insecure && cfg->ntas == 0) {
		r = err_setx(e, EINVAL,
			     "tls %s: no certificate authority configured to verify the server",
			     inner->peer);
		goto fail;
	}

	t = calloc(1, sizeof(*t));
	outer = calloc(1, sizeof(*outer));
	if (!t || !outer || !(t->iobuf = malloc(BR_SSL_BUFSIZE_BIDI))) {
		r = err_set(e, ENOMEM, "tls %s: allocate", inner->peer);
		goto fail;
	}
	t->inner = inner;
	inner = NULL;
	memcpy(outer->peer, t->inner->peer, sizeof(outer->peer));
	t->peer = outer->peer;
	outer->ops = &tls_ops;
	outer->impl = t;
	outer->fd = t->inner->fd;
	outer->opts = t->inner->opts;

	client_init(&t->sc, &t->x.minimal, cfg->tas, cfg->ntas);
	t->x.vtable = &tls_x509_vtable;
	t->x.insecure = cfg->insecure;
	const char *sni = host;
	if (!cfg->insecure) {
		if (inet_pton(AF_INET, host, t->x.ip) == 1)
			t->x.iplen = 4;
		else if (inet_pton(AF_INET6, host, t->x.ip) == 1)
			t->x.iplen = 16;
		if (t->x.iplen) {
			t->x.check_ip = true;
			sni = NULL; /* no SNI for addresses; the minimal engine checks no name */
			t->x.ee = malloc(TLS_EE_MAX);
			if (!t->x.ee) {
				r = err_set(e, ENOMEM, "tls %s: allocate", t->peer);
				goto fail;
			}
		}
		snprintf(t->name, sizeof(t->name), "%s", host);
	} else if (inet_pton(AF_INET, host, t->x.ip) == 1 ||
		   inet_pton(AF_INET6, host, t->x.ip) == 1 || host[0] == '\0') {
		sni = NULL;
	}
	br_ssl_engine_set_x509(&t->sc.eng, &t->x.vtable);
	t->has_client = cfg->nchain && cfg->key;
	if (t->has_client) {
		if (br_skey_decoder_key_type(cfg->key) == BR_KEYTYPE_RSA)
			br_ssl_client_set_single_rsa(&t->sc, cfg->chain, cfg->nchain,
						     br_skey_decoder_get_rsa(cfg->key),
						     br_rsa_pkcs1_sign_get_default());
		else
			br_ssl_client_set_single_ec(&t->sc, cfg->chain, cfg->nchain,
						    br_skey_decoder_get_ec(cfg->key),
						    BR_KEYTYPE_SIGN, cfg->issuer_key_type,
						    br_ec_get_default(),
						    br_ecdsa_sign_asn1_get_default());
	}
	br_ssl_engine_set_buffer(&t->sc.eng, t->iobuf, BR_SSL_BUFSIZE_BIDI, 1);
	/* The API server never renegotiates; refusing it also means the certificate
	 * checker runs once, so the end-entity copy can go after the handshake. */
	br_ssl_engine_add_flags(&t->sc.eng, BR_OPT_NO_RENEGOTIATION);

	/* Seed from the kernel ourselves, so the static build never depends on which
	 * system source BearSSL was built with; BearSSL adds its own seeder on top. */
	uint8_t seed[32];
	ssize_t got = getrandom(seed, sizeof(seed), 0);
	if (got == (ssize_t)sizeof(seed))
		br_ssl_engine_inject_entropy(&t->sc.eng, seed, sizeof(seed));
	memset(seed, 0, sizeof(seed));

	if (!br_ssl_client_reset(&t->sc, sni, 0)) {
		r = tls_fail(t, br_ssl_engine_last_error(&t->sc.eng), "handshake", e);
		goto fail;
	}
	int timeout = outer->opts.connect_timeout_ms;
	int64_t deadline = timeout < 0 ? -1 : mono_ms() + timeout;
	r = run_until(t, BR_SSL_SENDAPP | BR_SSL_RECVAPP, deadline, "handshake", e);
	if (r == 0)
		r = err_setx(e, ECONNRESET, "tls %s: handshake failed: connection closed",
			     t->peer);
	if (r < 0)
		goto fail;
	t->handshaken = true;
	free(t->x.ee); /* ~41 KB per connection stays: the engine, the checker, the buffer */
	t->x.ee = NULL;
	*c = outer;
	return 0;
fail:
	conn_close(inner);
	if (t)
		tls_free(t);
	free(outer);
	return r;
}
