/* tls — TLS 1.2 client (BearSSL) layered on a plain conn; same conn.h interface.
 *
 * A struct tls_config holds what a kubeconfig (or the in-cluster service account) says
 * about trust and identity: CA trust anchors, an optional tls-server-name, an optional
 * client certificate chain and key (RSA or EC), and insecure-skip-tls-verify. It is
 * built once and shared by every connection made from it; it must outlive them.
 *
 * Verification: the chain must end at one of the trust anchors and the end-entity
 * certificate must match the name: a DNS name is checked by BearSSL against the DNS
 * SANs; an IP literal is checked by us against the iPAddress SANs (see tls.c). Nothing
 * is verified only when insecure is set explicitly; the caller logs that loudly.
 *
 * Protocol: TLS 1.2 only (BearSSL has no 1.3), ECDHE with AES-GCM or ChaCha20-Poly1305,
 * no renegotiation. Memory: about 41 KB per connection (the BR_SSL_BUFSIZE_BIDI
 * record buffer plus engine and checker state), +16 KB during the handshake when the
 * server is addressed by IP. Entropy: getrandom() plus BearSSL's own system seeder.
 *
 * Errors are -EPROTO for TLS failures, with text naming the BearSSL error, e.g.
 *   tls 198.18.0.2:6443: handshake failed: server certificate not trusted
 *   (BR_ERR_X509_NOT_TRUSTED)
 * and the transport's -errno (-ETIMEDOUT, -ECONNRESET, ...) for I/O failures.
 */
#ifndef KVNET_KUBE_TLS_H
#define KVNET_KUBE_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct conn;
struct err;
struct tls_config;

/* A new empty config (no anchors, no client cert, verify on). NULL when out of memory. */
struct tls_config *tls_config_new(void);
void tls_config_free(struct tls_config *cfg);

/* Add trust anchors from `data`: PEM text with one or more CERTIFICATE blocks, or one
 * DER certificate. `what` names the source in messages. Returns 0, or -EINVAL with e
 * ("WHAT: certificate 2: cannot decode: ...") when nothing usable is found or a
 * certificate is malformed; anchors added before a failure stay. */
int tls_config_add_ca(struct tls_config *cfg, const void *data, size_t len, const char *what,
		      struct err *e);

/* As tls_config_add_ca, with the bytes read from a file (message names the path). */
int tls_config_add_ca_file(struct tls_config *cfg, const char *path, struct err *e);

/* Set the client identity: a certificate chain (PEM, end-entity first, or one DER
 * certificate) and its private key (PEM: "RSA PRIVATE KEY", "EC PRIVATE KEY" or PKCS#8
 * "PRIVATE KEY"). The key must belong to the first certificate (checked: a mismatch is
 * -EINVAL "client key does not match client certificate"). Replaces an earlier one. */
int tls_config_set_client(struct tls_config *cfg, const void *cert, size_t certlen,
			  const char *cert_what, const void *key, size_t keylen,
			  const char *key_what, struct err *e);

/* Name to verify instead of the host from the URL (kubeconfig tls-server-name); NULL or
 * "" clears it. -ENAMETOOLONG above 253 characters. */
int tls_config_set_server_name(struct tls_config *cfg, const char *name, struct err *e);

/* insecure-skip-tls-verify: accept any server certificate. Off unless set here. */
void tls_config_set_insecure(struct tls_config *cfg, bool insecure);
bool tls_config_insecure(const struct tls_config *cfg);
size_t tls_config_num_anchors(const struct tls_config *cfg);
bool tls_config_has_client(const struct tls_config *cfg);

/* Take the plain conn *c and replace it with a TLS conn over it, after a handshake done
 * within (*c)->opts.connect_timeout_ms. The name verified is cfg's server name when set,
 * else `server_name` (the URL's host; an IPv6 literal may carry brackets). On failure
 * the plain conn is closed, *c is NULL and e says why. The result reads and writes with
 * the plain conn's io timeout; conn_pending() is true while decrypted bytes wait. */
int tls_wrap(struct conn **c, const struct tls_config *cfg, const char *server_name,
	     struct err *e);

/* The name and code of a BearSSL error ("server certificate not trusted
 * (BR_ERR_X509_NOT_TRUSTED)"), into buf. Returns buf. */
const char *tls_strerror(int br_err, char *buf, size_t n);

/* Does the DER certificate `der` carry an iPAddress subjectAltName equal to ip (4 or 16
 * bytes)? 1 yes, 0 no, -EINVAL when the DER is malformed where we walk it. Exposed for
 * the fuzzer; used by the verifier when the server is addressed by IP. */
int tls_cert_has_ip_san(const uint8_t *der, size_t len, const uint8_t *ip, size_t iplen);

/* Name of BearSSL's system entropy source ("getrandom", "urandom", ...), or NULL when the
 * library has none (we seed with getrandom() ourselves anyway). */
const char *tls_system_seeder(void);

#endif
