/* conn — a byte stream to the API server: plain TCP, or TLS layered on top of it.
 *
 * HTTP (kube/http) speaks only through this interface, so the same client code runs
 * over TCP, TLS (kube/tls wraps a plain conn) and, in tests, a socketpair. Every call
 * honours the timeouts given at open time; a timeout is -ETIMEDOUT with a message.
 *
 * Ownership: conn_open_*() return a conn the caller closes with conn_close(); tls_wrap()
 * (kube/tls.h) takes the plain conn it wraps (_take semantics) and closes it with itself.
 *
 * Timeouts: a timeout bounds one whole call (all of a write, the wait for the first bytes
 * of a read), measured on CLOCK_MONOTONIC; EINTR is retried within the same deadline.
 * Sockets are non-blocking and close-on-exec; writes never raise SIGPIPE.
 */
#ifndef KVNET_KUBE_CONN_H
#define KVNET_KUBE_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct err;

struct conn_opts {
	int connect_timeout_ms;  /* TCP connect (and TLS handshake); 0 = 10 s */
	int io_timeout_ms;       /* each read/write waits at most this; 0 = 30 s, -1 = forever */
};

/* The operations a transport implements. Used by kube/conn.c and kube/tls.c only. */
struct conn_ops {
	/* > 0 bytes read, 0 on orderly EOF, -errno on error (message in e). */
	ssize_t (*read)(void *impl, void *buf, size_t n, int timeout_ms, struct err *e);
	/* Write all n bytes or fail: 0 or -errno. */
	int (*write)(void *impl, const void *buf, size_t n, int timeout_ms, struct err *e);
	/* True when read() can return data without touching the socket (TLS records). */
	bool (*pending)(void *impl);
	void (*close)(void *impl);
};

/* Room for "[IPv6]:port" or a 253-byte DNS name plus ":port". */
#define CONN_PEER_MAX 272

struct conn {
	const struct conn_ops *ops; /* transport */
	void *impl;                 /* transport state, owned */
	int fd;                     /* the socket, for poll()/epoll; owned by impl */
	struct conn_opts opts;      /* timeouts, with the 0 defaults already resolved */
	char peer[CONN_PEER_MAX];   /* "host:port" ("[v6]:port") or "fd N", for messages */
};

/* Resolve a conn_opts timeout field: 0 → the default, < 0 → -1 (forever). */
int conn_timeout_ms(int v, int dflt);

/* Connect to host:port over TCP (host: name, IPv4, or IPv6 with or without brackets).
 * Returns 0 and *out, or -errno with e naming the address and the reason. */
int conn_open_tcp(struct conn **out, const char *host, const char *port,
		  const struct conn_opts *o, struct err *e);

/* Wrap an already connected socket (tests: socketpair). Takes fd: it is made
 * non-blocking and close-on-exec, and closed by conn_close() — or right away when this
 * fails. o may be NULL (defaults). */
int conn_open_fd(struct conn **out, int fd, const struct conn_opts *o, struct err *e);

/* Read up to n bytes within io_timeout_ms: > 0 bytes, 0 on orderly EOF, -ETIMEDOUT
 * ("conn HOST:PORT: read: timed out after N ms") or another -errno. */
ssize_t conn_read(struct conn *c, void *buf, size_t n, struct err *e);
/* Write all n bytes within io_timeout_ms: 0, or -errno (-ETIMEDOUT, -EPIPE ...). */
int conn_write(struct conn *c, const void *buf, size_t n, struct err *e);
/* As conn_read/conn_write with an explicit timeout (ms, -1 forever), for the TLS
 * handshake, which runs within the connect timeout. */
ssize_t conn_read_within(struct conn *c, void *buf, size_t n, int timeout_ms, struct err *e);
int conn_write_within(struct conn *c, const void *buf, size_t n, int timeout_ms,
		      struct err *e);
/* True when conn_read() can return bytes without waiting on the socket. */
bool conn_pending(struct conn *c);
int conn_fd(const struct conn *c);
/* Close and free; NULL is fine. */
void conn_close(struct conn *c);

#endif
