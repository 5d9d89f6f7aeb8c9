/* agent role — the node daemon (agent/agent.h).
 *
 *   kvnet agent [-c FILE] [-n]
 *
 * -c FILE  configuration (default /etc/kvnet/kvnet.conf; a missing default file means
 *          the built-in defaults, a missing -c FILE is an error); KVNET_* overrides apply
 * -n       check the configuration, print the node name and the effective [agent] keys,
 *          exit
 *
 * Node name: [kubernetes] node_name, else $NODE_NAME, else the host name (mapped to an
 * object name like the CNI plugin does).
 *
 * Signals: SIGTERM / SIGINT stop the agent cleanly (socket removed, routes left as they
 * are: a restart drops no traffic); SIGHUP re-reads the configuration (log level and file,
 * resync interval, metrics, cross-node mode). Exit status 0 after a signal, 1 when the
 * agent cannot start, 2 for usage errors.
 */
#include "cmd/cmd.h"

#include "agent/agent.h"
#include "conf/conf.h"
#include "ipam/ipam.h"
#include "lib/err.h"
#include "lib/evloop.h"
#include "lib/log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <linux/capability.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <signal.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

extern char **environ;

/* The role's process state. */
struct agent_cmd {
	const char *path;    /* configuration file */
	bool path_given;     /* -c was given (a missing file is then an error) */
	struct log log;	     /* the logger */
	struct agent *agent; /* the daemon, with its modules (agent/modules.h) */
	int status;	     /* exit status */
};

static int load_conf(struct agent_cmd *c, struct conf *out, struct err *e)
{
	return conf_load(out, c->path, !c->path_given, environ, e);
}

static int open_log(struct agent_cmd *c, const struct conf *cf)
{
	log_close(&c->log);
	log_init(&c->log, "agent", cf->log.level);
	if (cf->log.file[0]) {
		int rc = log_open(&c->log, cf->log.file);
		if (rc < 0) {
			log_errorx(&c->log, "agent: log file %s: open: %s", cf->log.file,
				   strerror(-rc));
			return rc;
		}
	}
	return 0;
}

static void node_name(const struct conf *cf, char *out)
{
	char h[256];
	conf_node_name(cf, getenv("NODE_NAME"), h, sizeof(h));
	ipam_name_map(h, out);
}

/* Least privilege, once the sockets are bound and the capture is open: keep only
 * CAP_NET_ADMIN (routes, links), CAP_NET_RAW (the announcement capture, re-armed by the
 * kernel on the open socket) and CAP_BPF (loading the tc programs of L2 networks, with
 * CAP_NET_ADMIN; kernels before 5.8 have no CAP_BPF and refuse them) in the effective and permitted sets, none inheritable
 * or ambient, drop every other capability from the bounding set, and set no_new_privs
 * (no exec'd program can gain privileges). Failures are reported, not fatal: an agent
 * started without some capabilities keeps running with what it has. */
static void drop_privileges(struct agent_cmd *c)
{
#ifndef CAP_BPF
#define CAP_BPF 39 /* linux 5.8 */
#endif
	const uint64_t keep = (1ull << CAP_NET_ADMIN) | (1ull << CAP_NET_RAW) | (1ull << CAP_BPF);
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		log_warn(&c->log, "agent: prctl(PR_SET_NO_NEW_PRIVS)");
	unsigned dropped = 0;
	for (int cap = 0; cap <= 63; cap++) {
		if (keep & (1ull << cap))
			continue;
		int have = prctl(PR_CAPBSET_READ, cap, 0, 0, 0);
		if (have < 0)
			break; /* past the last capability this kernel knows */
		if (have == 1 && prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) == 0)
			dropped++;
	}
	prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
	struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct d[2];
	memset(d, 0, sizeof(d));
	if (syscall(SYS_capget, &h, d) < 0) {
		log_warn(&c->log, "agent: capget");
		return;
	}
	for (int i = 0; i < 2; i++) {
		uint32_t k = (uint32_t)(keep >> (32 * i));
		d[i].effective &= k;
		d[i].permitted &= k;
		d[i].inheritable = 0;
	}
	if (syscall(SYS_capset, &h, d) < 0) {
		log_warn(&c->log, "agent: capset (keeping net_admin and net_raw only)");
		return;
	}
	log_info(&c->log, "agent: privileges dropped: capabilities net_admin and net_raw kept, "
			  "%u others out of the bounding set; no_new_privs set", dropped);
}

static void on_term(struct ev_loop *loop, struct ev_signal *sig, int signo,
		    const struct signalfd_siginfo *si, void *user)
{
	(void)sig;
	(void)si;
	struct agent_cmd *c = user;
	log_info(&c->log, "agent: %s: stopping (routes are left in place)",
		 signo == SIGTERM ? "SIGTERM" : "SIGINT");
	c->status = 0;
	ev_stop(loop);
}

static void on_hup(struct ev_loop *loop, struct ev_signal *sig, int signo,
		   const struct signalfd_siginfo *si, void *user)
{
	(void)loop;
	(void)sig;
	(void)signo;
	(void)si;
	struct agent_cmd *c = user;
	struct conf cf;
	struct err e = { 0 };
	if (load_conf(c, &cf, &e) < 0) {
		log_errorx(&c->log, "agent: SIGHUP: configuration not reloaded: %s", e.msg);
		return;
	}
	open_log(c, &cf);
	if (agent_reload(c->agent, &cf, &e) < 0) {
		log_err(&c->log, LOG_LVL_ERROR, &e);
		return;
	}
	log_info(&c->log, "agent: SIGHUP: configuration reloaded (log level %s)",
		 log_level_name(cf.log.level));
}

static void usage(FILE *f)
{
	fprintf(f, "usage: kvnet agent [-c FILE] [-n]\n");
}

int cmd_agent(int argc, char **argv)
{
	struct agent_cmd c;
	memset(&c, 0, sizeof(c));
	c.path = CONF_DEFAULT_PATH;
	c.status = 1;
	log_init(&c.log, "agent", LOG_LVL_INFO);
	bool check = false;
	int opt;
	optind = 1;
	while ((opt = getopt(argc, argv, "c:nh")) != -1) {
		switch (opt) {
		case 'c':
			c.path = optarg;
			c.path_given = true;
			break;
		case 'n':
			check = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return 2;
	}
	struct conf cf;
	struct err e = { 0 };
	if (load_conf(&c, &cf, &e) < 0) {
		fprintf(stderr, "kvnet agent: %s\n", e.msg);
		return 1;
	}
	char node[IPAM_NAME_MAX + 1];
	node_name(&cf, node);
	if (check) {
		char la[64];
		inet_ntop(cf.agent.listen.family, cf.agent.listen.addr, la, sizeof(la));
		printf("node = %s\ndatastore = %s\nlisten = %s%s%s:%u\nsocket = %s\n"
		       "endpoints_dir = %s\nresync_seconds = %u\ncross_node = %s\n",
		       node, cf.datastore.type == CONF_DATASTORE_KUBERNETES ? "kubernetes" : "file",
		       cf.agent.listen.family == AF_INET6 ? "[" : "", la,
		       cf.agent.listen.family == AF_INET6 ? "]" : "", cf.agent.listen.port,
		       cf.agent.socket, cf.agent.endpoints_dir, cf.agent.resync_seconds,
		       conf_cross_node_name(cf.network.cross_node));
		return 0;
	}
	if (open_log(&c, &cf) < 0)
		return 1;
	c.agent = agent_new(&cf, node, &c.log, &e);
	if (!c.agent) {
		log_err(&c.log, LOG_LVL_ERROR, &e);
		log_close(&c.log);
		return 1;
	}
	signal(SIGPIPE, SIG_IGN);
	struct ev_loop *loop = agent_loop(c.agent);
	if (ev_signal_add(loop, SIGTERM, on_term, &c, NULL, NULL, &e) < 0 ||
	    ev_signal_add(loop, SIGINT, on_term, &c, NULL, NULL, &e) < 0 ||
	    ev_signal_add(loop, SIGHUP, on_hup, &c, NULL, NULL, &e) < 0) {
		log_err(&c.log, LOG_LVL_ERROR, &e);
		goto out;
	}
	log_info(&c.log, "agent: kvnet %s starting on node %s (config %s)", KVNET_VERSION, node,
		 c.path);
	if (agent_start(c.agent, &e) < 0) {
		log_err(&c.log, LOG_LVL_ERROR, &e);
		goto out;
	}
	drop_privileges(&c);
	if (ev_run(loop, &e) < 0) {
		log_err(&c.log, LOG_LVL_ERROR, &e);
		c.status = 1;
	}
out:
	agent_free(c.agent);
	log_close(&c.log);
	return c.status;
}
