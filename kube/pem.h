/* pem — base64 and PEM ("-----BEGIN LABEL-----") decoding, for kubeconfig data fields,
 * CA bundles, client certificates and keys. Input is untrusted text; nothing here reads
 * files or knows what the decoded bytes mean.
 *
 *   -----BEGIN CERTIFICATE-----      label: up to 47 printable characters
 *   MIIB...base64...                 body: base64, whitespace ignored
 *   -----END CERTIFICATE-----        must repeat the BEGIN label
 */
#ifndef KVNET_KUBE_PEM_H
#define KVNET_KUBE_PEM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct err;

#define PEM_LABEL_MAX 48

/* An upper bound of the bytes pem_base64_decode() writes for n input characters. */
size_t pem_base64_max(size_t n);

/* Decode standard base64 (RFC 4648 alphabet, '=' padding required for a partial last
 * group, space/tab/CR/LF ignored anywhere). Returns 0 and *outlen, -EINVAL on a bad
 * character, misplaced padding or a dangling character, -ENOSPC when out is too small.
 * Never writes past out[cap]. */
int pem_base64_decode(const char *in, size_t n, uint8_t *out, size_t cap, size_t *outlen);

struct pem_block {
	char label[PEM_LABEL_MAX]; /* "CERTIFICATE", "RSA PRIVATE KEY", ... NUL-terminated */
	uint8_t *der;              /* decoded body, malloc'd, owned by the caller (free()) */
	size_t len;                /* bytes in der */
};

/* Find the next PEM block in text[*off, n), decode it into *b and advance *off past its
 * END line. Returns 1 (a block; the caller frees b->der), 0 when no further BEGIN line
 * exists, or -errno with e ("pem: block N (LABEL): why"): -EINVAL for a missing or
 * mismatched END line, bad base64 or an encrypted (Proc-Type) block, -ENOMEM.
 * `what` names the source in messages ("ca.crt", "certificate-authority-data"). */
int pem_next(const char *text, size_t n, size_t *off, struct pem_block *b, const char *what,
	     struct err *e);

/* True when text contains a PEM BEGIN line (so it is PEM, not DER). */
bool pem_is_pem(const void *text, size_t n);

#endif
