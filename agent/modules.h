/* modules — the table of feature modules every agent runs (agent/agent.h says how a
 * module plugs in). agent_new() creates them in table order once the hub exists (so
 * they can register hooks, kinds and contributions) and agent_free() frees them in
 * reverse order before anything else.
 */
#ifndef KVNET_AGENT_MODULES_H
#define KVNET_AGENT_MODULES_H

struct agent;
struct err;

struct agent_module {
	const char *name;				/* for messages */
	void *(*create)(struct agent *a, struct err *e); /* NULL with e on failure */
	void (*destroy)(void *state);			/* NULL-safe */
};

/* The table and its length. */
const struct agent_module *agent_modules(unsigned *n);

#endif
