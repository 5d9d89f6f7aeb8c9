/* garp-watch role: see and send the announcements a host or VM makes when it appears
 * somewhere (gratuitous ARP, RARP, unsolicited IPv6 neighbour advertisements).
 *
 *   kvnet garp-watch [-i IFACE ...] [--json] [--outgoing] [--count N] [-w FILE.pcap]
 *   kvnet garp-watch -r FILE.pcap [--json] [-w FILE.pcap]
 *   kvnet garp-watch --announce -i IFACE (--ip IP | --rarp) [--mac MAC] [--reply]
 *                    [--count N] [--interval MS]
 *
 * Watching prints one line per announcement (--json: one JSON object per line), live
 * from one AF_PACKET socket per -i interface (none: one socket for every interface of
 * the current network namespace), or from a capture file (-r). -w writes the frames
 * that matched to a pcap file (nanosecond timestamps). --count N stops after N events.
 * SIGINT/SIGTERM end a live watch cleanly: the pcap file is synced and closed and the
 * counters are printed on stderr.
 *
 * --announce sends N (default 1) announcements for IP from IFACE, --interval MS apart
 * (default 1000): a gratuitous ARP request (--reply: the reply form) for an IPv4
 * address, an unsolicited NA (Override, to ff02::1, target link-layer option) for IPv6,
 * or a RARP request-reverse (--rarp) like QEMU's. --mac defaults to IFACE's MAC.
 *
 * Exit status: 0 done; 1 a runtime error (message on stderr); 2 usage error.
 */
#include "cmd/cmd.h"
#include "lib/err.h"
#include "lib/evloop.h"
#include "lib/file.h"
#include "net/announce.h"
#include "net/packet.h"
#include "net/pcap.h"

#include <errno.h>
#include <getopt.h>
#include <net/if.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define GW_MAX_IFACES 16
#define GW_MAX_PCAP_READ (512u << 20)

/* Flag set by the signal handler of --announce (the watch uses the event loop). */
static volatile sig_atomic_t gw_stop;

/* The role's state. */
struct gw {
	const char *ifnames[GW_MAX_IFACES]; /* -i, in order */
	int nif;			    /* how many */
	bool json;			    /* --json */
	bool outgoing;			    /* --outgoing */
	bool announce;			    /* --announce */
	bool reply;			    /* --reply */
	bool rarp;			    /* --rarp */
	const char *ip;			    /* --ip */
	const char *mac;		    /* --mac */
	long count;			    /* --count; 0 = unlimited (watch) */
	long interval_ms;		    /* --interval */
	const char *wpath;		    /* -w */
	const char *rpath;		    /* -r */
	struct pcap_wr wr;		    /* the -w file (fd -1 when none) */
	struct pkt_sock *socks[GW_MAX_IFACES]; /* live capture sockets */
	int nsocks;			    /* how many are open */
	long events;			    /* events printed */
	int status;			    /* exit status so far */
	struct ev_loop *loop;		    /* live watch */
};

static int gw_usage(FILE *f, int status)
{
	fprintf(f,
		"usage: kvnet garp-watch [-i IFACE ...] [--json] [--outgoing] [--count N] [-w FILE.pcap]\n"
		"       kvnet garp-watch -r FILE.pcap [--json] [-w FILE.pcap]\n"
		"       kvnet garp-watch --announce -i IFACE (--ip IP | --rarp) [--mac MAC] [--reply]\n"
		"                        [--count N] [--interval MS]\n"
		"  -i IFACE       watch (or send on) this interface; repeat to watch several;\n"
		"                 default: every interface of the current network namespace\n"
		"  --json         one JSON object per event instead of a text line\n"
		"  --outgoing     also show frames this host sends\n"
		"  --count N      stop after N events (watch) / send N announcements (default 1)\n"
		"  -w FILE.pcap   write the matching frames to a pcap file (nanosecond timestamps)\n"
		"  -r FILE.pcap   read frames from a pcap file instead of the network\n"
		"  --announce     send: gratuitous ARP (IPv4), unsolicited NA (IPv6) or RARP\n"
		"  --ip IP        the address to announce\n"
		"  --mac MAC      the MAC to announce (default: the interface's)\n"
		"  --reply        send the ARP reply form of the gratuitous ARP\n"
		"  --rarp         send a RARP request-reverse for the MAC (no --ip)\n"
		"  --interval MS  time between announcements (default 1000)\n");
	return status;
}

static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int usage_error(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "garp-watch: ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n");
	va_end(ap);
	return gw_usage(stderr, 2);
}

static bool parse_long(const char *s, long min, long max, long *out)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < min || v > max)
		return false;
	*out = v;
	return true;
}

/* --- output -------------------------------------------------------------------------- */

static void fmt_time(const struct timespec *ts, char *buf, size_t cap)
{
	struct tm tm;
	time_t t = ts->tv_sec;
	gmtime_r(&t, &tm);
	size_t n = strftime(buf, cap, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf + n, cap - n, ".%09ldZ", ts->tv_nsec);
}

/* A JSON string (quotes included) for s. */
static void json_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;
		if (ch == '"' || ch == '\\')
			fprintf(f, "\\%c", ch);
		else if (ch < 0x20 || ch >= 0x7f)
			fprintf(f, "\\u%04x", ch);
		else
			fputc(ch, f);
	}
	fputc('"', f);
}

static const char *op_name(const struct ann_event *ev)
{
	switch (ev->op) {
	case 1:
		return "request";
	case 2:
		return "reply";
	case 3:
		return "request-reverse";
	case 4:
		return "reply-reverse";
	}
	return "";
}

static void print_event(const struct gw *g, const struct ann_event *ev)
{
	char t[64], ip[IP_STRLEN], mac[18], src[18];
	fmt_time(&ev->ts, t, sizeof(t));
	ann_mac_fmt(ev->mac, mac);
	ann_mac_fmt(ev->src_mac, src);
	if (ev->ip.family)
		ip_fmt(&ev->ip, ip);
	if (g->json) {
		printf("{\"time\":\"%s\",\"ts_ns\":%lld,\"ifindex\":%d,\"ifname\":", t,
		       (long long)ev->ts.tv_sec * 1000000000LL + ev->ts.tv_nsec, ev->ifindex);
		if (ev->ifname[0])
			json_str(stdout, ev->ifname);
		else
			fputs("null", stdout);
		printf(",\"kind\":\"%s\"", ann_kind_name(ev->kind));
		if (ev->kind == ANN_NA)
			printf(",\"flags\":{\"router\":%s,\"override\":%s}",
			       ev->na_flags & ANN_NA_ROUTER ? "true" : "false",
			       ev->na_flags & ANN_NA_OVERRIDE ? "true" : "false");
		else
			printf(",\"op\":\"%s\"", op_name(ev));
		if (ev->ip.family)
			printf(",\"ip\":\"%s\"", ip);
		else
			fputs(",\"ip\":null", stdout);
		printf(",\"mac\":\"%s\",\"src_mac\":\"%s\"", mac, src);
		if (ev->has_vlan)
			printf(",\"vlan\":%u", ev->vlan);
		else
			fputs(",\"vlan\":null", stdout);
		fputs("}\n", stdout);
		return;
	}
	printf("%s %s %s %s %s", t, ev->ifname[0] ? ev->ifname : "-", ann_kind_name(ev->kind),
	       ev->ip.family ? ip : "-", mac);
	if (ev->kind == ANN_NA)
		printf(" flags=%s%s", ev->na_flags & ANN_NA_ROUTER ? "R" : "",
		       ev->na_flags & ANN_NA_OVERRIDE ? "O" : "");
	else
		printf(" op=%s", op_name(ev));
	if (memcmp(ev->mac, ev->src_mac, 6) != 0)
		printf(" src=%s", src);
	if (ev->has_vlan)
		printf(" vlan=%u", ev->vlan);
	fputc('\n', stdout);
}

/* Print an event and write its frame; false when -w failed (status set). */
static bool deliver(struct gw *g, const struct ann_event *ev, const uint8_t *data, size_t caplen,
		    size_t len)
{
	struct err e = {0};
	print_event(g, ev);
	fflush(stdout);
	g->events++;
	if (g->wr.fd >= 0 && pcap_wr_frame(&g->wr, &ev->ts, data, caplen, len, &e) < 0) {
		fprintf(stderr, "garp-watch: %s\n", e.msg);
		g->status = 1;
		return false;
	}
	return true;
}

/* --- -r ------------------------------------------------------------------------------ */

static int read_file(struct gw *g)
{
	struct err e = {0};
	char *buf;
	size_t len;
	struct pcap_rd r;
	struct pcap_rec rec;
	int rc;

	if (file_read(g->rpath, GW_MAX_PCAP_READ, &buf, &len, &e) < 0) {
		fprintf(stderr, "garp-watch: %s\n", e.msg);
		return 1;
	}
	if (pcap_rd_init(&r, (const uint8_t *)buf, len, &e) < 0) {
		fprintf(stderr, "garp-watch: %s: %s\n", g->rpath, e.msg);
		free(buf);
		return 1;
	}
	if (r.linktype != PCAP_LINKTYPE_ETHERNET) {
		fprintf(stderr, "garp-watch: %s: link type %u is not Ethernet (1)\n", g->rpath,
			r.linktype);
		free(buf);
		return 1;
	}
	while ((rc = pcap_rd_next(&r, &rec, &e)) == 1) {
		struct ann_event ev;
		if (ann_parse(rec.data, rec.caplen, &ev, NULL) < 0)
			continue;
		ev.ifindex = 0;
		ev.ifname[0] = '\0';
		ev.ts = rec.ts;
		if (!deliver(g, &ev, rec.data, rec.caplen, rec.len))
			break;
		if (g->count && g->events >= g->count)
			break;
	}
	if (rc < 0) {
		fprintf(stderr, "garp-watch: %s: %s\n", g->rpath, e.msg);
		g->status = 1;
	}
	free(buf);
	return g->status;
}

/* --- live ---------------------------------------------------------------------------- */

static void on_frames(struct ev_loop *loop, struct ev_io *io, int fd, uint32_t revents, void *ud)
{
	struct gw *g = ud;
	struct pkt_sock *s = NULL;
	struct err e = {0};
	(void)io;
	(void)revents;
	for (int i = 0; i < g->nsocks; i++)
		if (pkt_fd(g->socks[i]) == fd)
			s = g->socks[i];
	if (!s)
		return;
	for (;;) {
		struct ann_event ev;
		struct pkt_frame f;
		int rc = pkt_next(s, &ev, &f, &e);
		if (rc == 0)
			return;
		if (rc < 0) {
			fprintf(stderr, "garp-watch: %s\n", e.msg);
			g->status = 1;
			ev_stop(loop);
			return;
		}
		if (!deliver(g, &ev, f.data, f.caplen, f.len) ||
		    (g->count && g->events >= g->count)) {
			ev_stop(loop);
			return;
		}
	}
}

static void on_signal(struct ev_loop *loop, struct ev_signal *sig, int signo,
		      const struct signalfd_siginfo *si, void *ud)
{
	(void)sig;
	(void)signo;
	(void)si;
	(void)ud;
	ev_stop(loop);
}

static int watch_live(struct gw *g)
{
	struct err e = {0};
	unsigned flags = g->outgoing ? PKT_F_OUTGOING : 0;
	int n = g->nif ? g->nif : 1;

	g->loop = ev_loop_new(&e);
	if (!g->loop) {
		fprintf(stderr, "garp-watch: %s\n", e.msg);
		return 1;
	}
	if (ev_signal_add(g->loop, SIGINT, on_signal, g, NULL, NULL, &e) < 0 ||
	    ev_signal_add(g->loop, SIGTERM, on_signal, g, NULL, NULL, &e) < 0) {
		fprintf(stderr, "garp-watch: %s\n", e.msg);
		return 1;
	}
	for (int i = 0; i < n; i++) {
		int ifindex = 0;
		if (g->nif) {
			ifindex = (int)if_nametoindex(g->ifnames[i]);
			if (ifindex == 0) {
				fprintf(stderr, "garp-watch: interface %s: %s\n", g->ifnames[i],
					strerror(errno));
				return 1;
			}
		}
		struct pkt_sock *s = pkt_open(ifindex, flags, &e);
		if (!s) {
			fprintf(stderr, "garp-watch: %s%s%s\n", g->nif ? g->ifnames[i] : "",
				g->nif ? ": " : "", e.msg);
			return 1;
		}
		g->socks[g->nsocks++] = s;
		if (ev_io_add(g->loop, pkt_fd(s), EPOLLIN, on_frames, g, NULL, NULL, &e) < 0) {
			fprintf(stderr, "garp-watch: %s\n", e.msg);
			return 1;
		}
	}
	if (ev_run(g->loop, &e) < 0) {
		fprintf(stderr, "garp-watch: %s\n", e.msg);
		g->status = 1;
	}
	struct pkt_stats total = {0};
	for (int i = 0; i < g->nsocks; i++) {
		struct pkt_stats st;
		if (pkt_stats(g->socks[i], &st, &e) == 0) {
			total.events += st.events;
			total.ignored += st.ignored;
			total.malformed += st.malformed;
			total.dropped += st.dropped;
		}
	}
	fprintf(stderr, "garp-watch: %llu events, %llu not announcements, %llu malformed, "
			"%llu dropped by the kernel\n",
		(unsigned long long)total.events, (unsigned long long)total.ignored,
		(unsigned long long)total.malformed, (unsigned long long)total.dropped);
	return g->status;
}

/* --- --announce ---------------------------------------------------------------------- */

static void on_stop_signal(int signo)
{
	(void)signo;
	gw_stop = 1;
}

static int announce(struct gw *g)
{
	struct err e = {0};
	struct pkt_announce a = {.kind = ANN_RARP};
	uint8_t mac[6];
	char ipbuf[IP_STRLEN], macbuf[18];

	if (g->nif != 1)
		return usage_error("--announce needs exactly one -i IFACE");
	if (!g->rarp && !g->ip)
		return usage_error("--announce needs --ip IP (or --rarp)");
	if (g->rarp && (g->ip || g->reply))
		return usage_error("--rarp takes no --ip and no --reply");
	if (g->ip && !ip_parse(g->ip, &a.ip))
		return usage_error("--ip: '%s' is not an IPv4 or IPv6 address", g->ip);
	if (g->mac && !ann_mac_parse(g->mac, mac))
		return usage_error("--mac: '%s' is not a MAC like 02:00:00:00:00:01", g->mac);
	if (g->reply && a.ip.family != AF_INET)
		return usage_error("--reply is for IPv4 (gratuitous ARP) only");
	if (!g->rarp)
		a.kind = a.ip.family == AF_INET ? ANN_GARP : ANN_NA;
	a.arp_reply = g->reply;
	a.ifindex = (int)if_nametoindex(g->ifnames[0]);
	if (a.ifindex == 0) {
		fprintf(stderr, "garp-watch: interface %s: %s\n", g->ifnames[0], strerror(errno));
		return 1;
	}
	if (!g->mac && pkt_ifmac(a.ifindex, mac, &e) < 0) {
		fprintf(stderr, "garp-watch: %s: %s\n", g->ifnames[0], e.msg);
		return 1;
	}
	a.mac = mac;
	struct sigaction sa = {.sa_handler = on_stop_signal};
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	long n = g->count ? g->count : 1;
	for (long i = 0; i < n && !gw_stop; i++) {
		if (i > 0) {
			struct timespec d = {g->interval_ms / 1000, (g->interval_ms % 1000) * 1000000};
			while (nanosleep(&d, &d) < 0 && errno == EINTR && !gw_stop)
				;
			if (gw_stop)
				break;
		}
		if (pkt_announce_send(&a, &e) < 0) {
			fprintf(stderr, "garp-watch: %s: %s\n", g->ifnames[0], e.msg);
			return 1;
		}
		printf("sent %s%s %s %s on %s\n", ann_kind_name(a.kind),
		       a.kind == ANN_GARP ? (a.arp_reply ? " reply" : " request") : "",
		       a.kind == ANN_RARP ? "-" : ip_fmt(&a.ip, ipbuf), ann_mac_fmt(mac, macbuf),
		       g->ifnames[0]);
		fflush(stdout);
	}
	return 0;
}

int cmd_garpwatch(int argc, char **argv)
{
	enum { O_JSON = 256, O_ANNOUNCE, O_IP, O_MAC, O_COUNT, O_INTERVAL, O_REPLY, O_RARP, O_OUT };
	static const struct option opts[] = {
		{"json", no_argument, NULL, O_JSON},
		{"announce", no_argument, NULL, O_ANNOUNCE},
		{"ip", required_argument, NULL, O_IP},
		{"mac", required_argument, NULL, O_MAC},
		{"count", required_argument, NULL, O_COUNT},
		{"interval", required_argument, NULL, O_INTERVAL},
		{"reply", no_argument, NULL, O_REPLY},
		{"rarp", no_argument, NULL, O_RARP},
		{"outgoing", no_argument, NULL, O_OUT},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	struct gw g = {.interval_ms = 1000, .wr = {.fd = -1}};
	struct err e = {0};
	int opt;

	opterr = 0;
	optind = 1;
	while ((opt = getopt_long(argc, argv, "+:i:w:r:h", opts, NULL)) != -1) {
		switch (opt) {
		case 'i':
			if (g.nif == GW_MAX_IFACES)
				return usage_error("at most 16 -i interfaces");
			if (!*optarg || strlen(optarg) >= IF_NAMESIZE)
				return usage_error("-i: '%s' is not an interface name", optarg);
			g.ifnames[g.nif++] = optarg;
			break;
		case 'w':
			g.wpath = optarg;
			break;
		case 'r':
			g.rpath = optarg;
			break;
		case 'h':
			return gw_usage(stdout, 0);
		case O_JSON:
			g.json = true;
			break;
		case O_ANNOUNCE:
			g.announce = true;
			break;
		case O_IP:
			g.ip = optarg;
			break;
		case O_MAC:
			g.mac = optarg;
			break;
		case O_COUNT:
			if (!parse_long(optarg, 1, 1000000000L, &g.count))
				return usage_error("--count: '%s' is not a number from 1", optarg);
			break;
		case O_INTERVAL:
			if (!parse_long(optarg, 0, 3600000L, &g.interval_ms))
				return usage_error("--interval: '%s' is not milliseconds (0..3600000)",
						   optarg);
			break;
		case O_REPLY:
			g.reply = true;
			break;
		case O_RARP:
			g.rarp = true;
			break;
		case O_OUT:
			g.outgoing = true;
			break;
		case ':':
			if (optopt > 0 && optopt < 256)
				return usage_error("option -%c needs an argument", optopt);
			for (const struct option *o = opts; o->name; o++)
				if (o->val == optopt)
					return usage_error("option --%s needs an argument", o->name);
			return usage_error("an option needs an argument");
		default:
			return usage_error("unknown option %s", argv[optind - 1]);
		}
	}
	if (optind < argc)
		return usage_error("unexpected argument '%s'", argv[optind]);
	if (g.announce) {
		if (g.rpath || g.wpath || g.json || g.outgoing)
			return usage_error("--announce takes no -r, -w, --json or --outgoing");
		return announce(&g);
	}
	if (g.ip || g.mac || g.reply || g.rarp)
		return usage_error("--ip, --mac, --reply and --rarp go with --announce");
	if (g.rpath && (g.nif || g.outgoing))
		return usage_error("-r reads a file: no -i or --outgoing");
	if (g.rpath && g.wpath && strcmp(g.rpath, g.wpath) == 0)
		return usage_error("-r and -w name the same file '%s'", g.rpath);
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (g.wpath && pcap_wr_open(&g.wr, g.wpath, true, PKT_SNAPLEN, &e) < 0) {
		fprintf(stderr, "garp-watch: %s\n", e.msg);
		return 1;
	}
	int status = g.rpath ? read_file(&g) : watch_live(&g);
	if (pcap_wr_close(&g.wr, &e) < 0) {
		fprintf(stderr, "garp-watch: %s\n", e.msg);
		status = 1;
	}
	for (int i = 0; i < g.nsocks; i++)
		pkt_close(g.socks[i]);
	ev_loop_free(g.loop);
	return status;
}
