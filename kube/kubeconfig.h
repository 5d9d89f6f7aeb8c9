/* kubeconfig — where the API server is and how to authenticate to it, resolved the way
 * kubectl (client-go) does, from kubeconfig files or from the in-cluster service account.
 *
 * Sources, in order (kcfg_load):
 *   1. opts.kubeconfig (a --kubeconfig flag; ':'-separated list allowed), files must exist;
 *   2. KUBECONFIG from opts.envp: ':'-separated files, missing ones skipped, merged;
 *   3. $HOME/.kube/config when it exists;
 *   4. in-cluster: KUBERNETES_SERVICE_HOST/_PORT and the service account directory.
 *
 * Merging (kubectl's rules): a cluster, user or context name is taken from the first
 * file that defines it (the whole entry; later files do not add fields to it);
 * current-context from the first file that sets one. Relative file paths in an entry
 * (certificate-authority, client-certificate, client-key, tokenFile) are relative to
 * the directory of the file that holds that entry. *-data fields win over their file
 * twins; a token wins over client certificates only in that both are sent.
 *
 * The environment is read only through opts.envp, never getenv(), so tests need not
 * touch the process environment.
 */
#ifndef KVNET_KUBE_KUBECONFIG_H
#define KVNET_KUBE_KUBECONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct err;
struct tls_config;

#define KCFG_SA_DIR "/var/run/secrets/kubernetes.io/serviceaccount"
#define KCFG_SYSTEM_CA "/etc/ssl/certs/ca-certificates.crt"
#define KCFG_TOKEN_MAX_AGE 60 /* seconds before kcfg_token() re-reads a token file */

struct kcfg_opts {
	const char *kubeconfig; /* --kubeconfig: path or ':'-list; NULL/"" = look further */
	const char *context;    /* --context: overrides current-context; NULL/"" = none */
	char *const *envp;      /* environment (KUBECONFIG, HOME, KUBERNETES_SERVICE_*);
				 * NULL = empty */
	const char *sa_dir;     /* service account directory; NULL = KCFG_SA_DIR */
	const char *system_ca;  /* CA bundle used when a cluster names no CA;
				 * NULL = KCFG_SYSTEM_CA */
};

/* The resolved configuration. Every string is owned by the struct (kcfg_free) and never
 * NULL unless the comment says so. */
struct kcfg {
	char *source;            /* "kubeconfig /a/config (context dev)" or "in-cluster" */
	char *context;           /* context name used; "" in-cluster */
	char *cluster;           /* cluster name; "" in-cluster */
	char *user;              /* user name; "" in-cluster */
	char *server;            /* server URL as configured */
	char *scheme;            /* "https" or "http" */
	char *host;              /* DNS name or IP literal (IPv6 without brackets) */
	char *port;              /* decimal port; 443/80 when the URL has none */
	char *path_prefix;       /* URL path before /api, no trailing '/'; usually "" */
	char *ns;                /* namespace: the context's, the service account's, or
				  * "default" */
	struct tls_config *tls;  /* trust + client identity + tls-server-name (owned) */
	bool insecure;           /* insecure-skip-tls-verify is set: the caller logs it */
	bool in_cluster;         /* came from the service account */
	bool client_cert;        /* a client certificate is configured in tls */
	char *token;             /* static bearer token; NULL when none */
	char *token_file;        /* file re-read for the token (tokenFile, in-cluster token);
				  * NULL when none */
	char *cached_token;      /* kcfg_token: last token read from token_file; NULL */
	int64_t cached_at;       /* kcfg_token: `now` when cached_token was read */
};

/* Resolve the configuration from the sources above (--context picks the context).
 * Returns 0 and *out (free with kcfg_free), or -errno with e naming the file, line
 * and entry: "kubeconfig /a/config: line 7 column 3: mapping values are not allowed
 * here", "kubeconfig /a/config: context \"dev\" not found", "kubeconfig /a/config:
 * context \"dev\": cluster \"c1\" not found", -ENOENT "no kubeconfig (KUBECONFIG,
 * ~/.kube/config) and not in a cluster (KUBERNETES_SERVICE_HOST unset)". */
int kcfg_load(struct kcfg **out, const struct kcfg_opts *opts, struct err *e);

/* Only the in-cluster source (KUBERNETES_SERVICE_HOST/PORT from envp; token, ca.crt and
 * namespace from sa_dir, NULL = KCFG_SA_DIR). An IPv6 host is bracketed in server. */
int kcfg_load_incluster(struct kcfg **out, char *const *envp, const char *sa_dir,
			struct err *e);

void kcfg_free(struct kcfg *k);

/* The bearer token to send, or NULL in *out when the config has none (client
 * certificates only). A token file is re-read when the cached copy is older than
 * KCFG_TOKEN_MAX_AGE seconds at `now` (any clock in seconds, the same one on every
 * call) or when `force` is set (the caller got a 401: bound tokens expire and are
 * rotated on disk). *out stays valid until the next call or kcfg_free.
 * Returns 0 (fresh or static token), 1 when re-reading failed but an earlier token is
 * returned instead (e says why, for a warning), or -errno when there is no token to
 * give (e says why: "tokenFile /x: open: No such file or directory"). */
int kcfg_token(struct kcfg *k, int64_t now, bool force, const char **out, struct err *e);

/* Parse one kubeconfig text (no I/O): the check kcfg_load runs on every file, exposed
 * for the fuzzer and for `-n` style validation. 0 or -EINVAL with "WHAT: line L column
 * C: why". */
int kcfg_check_text(const char *text, size_t len, const char *what, struct err *e);

#endif
