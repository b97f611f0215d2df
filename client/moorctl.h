/*
 * moorctl's shared pieces: the flag parser, the global options (from flags
 * or MOORCTL_* environment variables), the client they open, output in
 * etcdctl's formats (simple, json, table), and the verbs' entry points.
 */
#ifndef MOOR_CLIENT_MOORCTL_H
#define MOOR_CLIENT_MOORCTL_H

#include "client/moor.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

/* etcdctl's exit codes. */
#define EXIT_ERR 1
#define EXIT_BAD_CONN 2
#define EXIT_INTERRUPTED 5
#define EXIT_IO 6
#define EXIT_BAD_ARGS 128

enum ctl_format { FMT_SIMPLE, FMT_JSON, FMT_TABLE };

enum flag_type { F_BOOL, F_STR, F_INT };

struct ctl_flag {
	const char *name;
	char short_name; /* 0: none */
	enum flag_type type;
	void *dst; /* bool *, const char **, int64_t * */
	const char *help;
};

struct ctl_verb {
	const char *name;
	const char *usage; /* "get [options] <key> [range_end]" */
	const char *about;
	const struct ctl_flag *flags; /* terminated by name NULL; may be NULL */
	int min_args, max_args;       /* positionals; max -1: any */
	int (*run)(int argc, char **argv);
	int stop_after; /* stop parsing flags after this many positionals (0: never) */
};

struct ctl_globals {
	const char *endpoints;
	const char *dial_timeout;
	const char *command_timeout;
	const char *cacert, *cert, *key;
	bool insecure;
	const char *write_out;
	bool debug;
	enum ctl_format fmt;
};
extern struct ctl_globals g;

/* Parses argv for a verb (global flags too); fills positionals. Prints
 * usage and returns EXIT_BAD_ARGS on error, -1 when --help was shown. */
int ctl_parse(const struct ctl_verb *v, int argc, char **argv, char **pos, int *npos);
int ctl_usage_error(const struct ctl_verb *v, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Opens the client from the globals; exits with a message on error. */
moor_client *ctl_client(void);
/* A client on one endpoint only. */
moor_client *ctl_client_one(const char *endpoint);
/* Splits the --endpoints list; the strings live until exit. */
int ctl_endpoints(const char ***eps);
/* Prints "Error: ..." and returns the exit code for rc. */
int ctl_fail(int rc);
int ctl_parse_duration_ms(const char *s, int *ms);
int ctl_parse_hex(const char *s, uint64_t *out);

/* Output. */
void ctl_print_kv(const struct moor_kv *kv, bool keys_only, bool value_only);
json_t *ctl_json_u64(uint64_t v);
json_t *ctl_json_header(const struct moor_header *h);
json_t *ctl_json_kv(const struct moor_kv *kv);
json_t *ctl_json_response(const struct moor_response *r);
void ctl_json_print(json_t *j); /* prints and frees */
void ctl_print_response(const struct moor_response *r, bool keys_only, bool value_only);
/* A table: rows of `ncols` cells, the first row the header. */
void ctl_table(const char *const *cells, int nrows, int ncols);

/* Verbs. */
int cmd_put(int argc, char **argv);
int cmd_get(int argc, char **argv);
int cmd_del(int argc, char **argv);
int cmd_txn(int argc, char **argv);
int cmd_watch(int argc, char **argv);
int cmd_compaction(int argc, char **argv);
int cmd_lease(int argc, char **argv);
int cmd_member(int argc, char **argv);
int cmd_endpoint(int argc, char **argv);
int cmd_defrag(int argc, char **argv);
int cmd_snapshot(int argc, char **argv);
int cmd_alarm(int argc, char **argv);
int cmd_move_leader(int argc, char **argv);
int cmd_lock(int argc, char **argv);
int cmd_elect(int argc, char **argv);

/* A verb with sub-verbs: dispatches argv[1] among subs. */
int ctl_dispatch(const char *group, const struct ctl_verb *subs, int argc, char **argv);

/* SIGINT/SIGTERM seen (for lock, elect, watch, keep-alive). */
extern volatile int ctl_interrupted;
void ctl_catch_signals(void);

#endif
