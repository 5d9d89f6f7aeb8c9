/* cmd — one entry point per role. Only cmd/ parses options, owns process state and
 * decides the exit status; each function returns the status for main() to return. */
#ifndef KVNET_CMD_H
#define KVNET_CMD_H

struct role {
	const char *name;                 /* argv[0] basename or `kvnet NAME` */
	int (*fn)(int argc, char **argv); /* argv[0] is the role name */
	const char *help;                 /* one line for `kvnet help` */
};

/* The role table (main.c) and its length. */
extern const struct role kvnet_roles[];
extern const unsigned kvnet_nroles;

int cmd_cni(int argc, char **argv);
int cmd_agent(int argc, char **argv);
int cmd_ipamctl(int argc, char **argv);
int cmd_garpwatch(int argc, char **argv);
int cmd_config(int argc, char **argv);
int cmd_install(int argc, char **argv);
int cmd_uninstall(int argc, char **argv);
int cmd_flows(int argc, char **argv);
int cmd_policy(int argc, char **argv);
int cmd_version(int argc, char **argv);
int cmd_help(int argc, char **argv);

/* Print the role list to stdout (help) or stderr (usage error). */
void cmd_usage(int fd);

#endif
