/*
 * A cluster of real moord processes on 127.0.0.1 for libmoor's tests:
 * free ports from the kernel, data under a mkdtemp() directory that
 * fx_cluster_stop removes, each daemon started with fork/exec and stopped by
 * its pid, every wait bounded.
 */
#ifndef MOOR_TESTS_CLIENT_FIXTURE_H
#define MOOR_TESTS_CLIENT_FIXTURE_H

#include "client/moor.h"

#include <sys/types.h>

#define FX_MAX 5

struct fx_cluster {
	int n;
	char dir[64];
	char moord[256];
	int cport[FX_MAX], pport[FX_MAX];
	pid_t pid[FX_MAX];
	char url[FX_MAX][64];
	const char *urls[FX_MAX];
	char initial[512];
	uint64_t id[FX_MAX]; /* member ids, learned from status */
};

/* Starts n members and waits (bounded) for a leader: 0 or -1. */
int fx_cluster_start(struct fx_cluster *fx, int n);
void fx_cluster_stop(struct fx_cluster *fx);
int fx_member_start(struct fx_cluster *fx, int i);
/* SIGKILL and reap. */
void fx_member_kill(struct fx_cluster *fx, int i);
/* Until every running member names the same leader (bounded): its index,
 * or -1. */
int fx_wait_leader(struct fx_cluster *fx, int timeout_ms);
/* The index of a member by client URL, or -1. */
int fx_index_of(struct fx_cluster *fx, const char *url);
/* When set, clients from fx_client log here. */
extern moor_client_log_fn fx_log_fn;
extern void *fx_log_ctx;
/* A client over every member, the given one first (-1: in order). */
moor_client *fx_client(struct fx_cluster *fx, int first, int request_timeout_ms);
void fx_sleep_ms(int ms);
uint64_t fx_now_ms(void);

#endif
