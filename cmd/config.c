/* config role: `kvnet config -n [-d] [-c FILE]` parses the configuration file, applies
 * the KVNET_<SECTION>_<KEY> environment overrides and prints the effective
 * configuration as canonical INI (every section and key, schema order). The output
 * parses back to the same configuration.
 *
 *   -n        parse and print (the only mode; required, like `bgpd -n`)
 *   -d        precede each key with its documentation (dist/kvnet.conf is
 *             `kvnet config -n -d -c /dev/null` in an environment without KVNET_ vars)
 *   -c FILE   the file to read; default /etc/kvnet/kvnet.conf, and only that default
 *             may be missing (then the built-in defaults apply)
 *
 * Exit status: 0 printed; 1 the configuration is invalid (message on stderr);
 * 2 usage error.
 */
#include "cmd/cmd.h"
#include "conf/conf.h"
#include "lib/err.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

extern char **environ;

static int config_usage(void)
{
	fprintf(stderr, "usage: kvnet config -n [-d] [-c FILE]\n"
			"  -n       parse the configuration and print the effective values\n"
			"  -d       with each key's documentation as # comments\n"
			"  -c FILE  configuration file (default " CONF_DEFAULT_PATH ")\n");
	return 2;
}

int cmd_config(int argc, char **argv)
{
	const char *path = CONF_DEFAULT_PATH;
	bool explicit_path = false, check = false;
	unsigned flags = 0;
	struct conf c;
	struct err e = { 0 };
	int opt;

	opterr = 0;
	while ((opt = getopt(argc, argv, "+nc:dh")) != -1) {
		switch (opt) {
		case 'n':
			check = true;
			break;
		case 'c':
			path = optarg;
			explicit_path = true;
			break;
		case 'd':
			flags |= CONF_FMT_DOC;
			break;
		case 'h':
			config_usage();
			return 0;
		default:
			if (optopt == 'c')
				fprintf(stderr, "kvnet config: -c needs a FILE\n");
			else
				fprintf(stderr, "kvnet config: unknown option '-%c'\n", optopt);
			return config_usage();
		}
	}
	if (optind < argc) {
		fprintf(stderr, "kvnet config: unexpected argument '%s'\n", argv[optind]);
		return config_usage();
	}
	if (!check) {
		fprintf(stderr, "kvnet config: -n is required (parse and print)\n");
		return config_usage();
	}

	if (conf_load(&c, path, !explicit_path, environ, &e) < 0) {
		fprintf(stderr, "kvnet config: %s\n", e.msg);
		return 1;
	}

	size_t need = conf_format(&c, flags, NULL, 0);
	char *buf = malloc(need + 1);
	if (!buf) {
		fprintf(stderr, "kvnet config: out of memory\n");
		return 1;
	}
	conf_format(&c, flags, buf, need + 1);
	int rc = fputs(buf, stdout) < 0 || fflush(stdout) != 0 ? 1 : 0;
	if (rc)
		fprintf(stderr, "kvnet config: writing the configuration failed\n");
	free(buf);
	return rc;
}
